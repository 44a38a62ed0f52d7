"""A full ledger run planned in worker processes writes exactly what one process writes (loyalty/parallel.py)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from connectors.records import OrderRecord, OrderStatus
from loyalty.batch import plan_member, write_plans
from loyalty.engine import SETTLE_DELAY, Entry
from loyalty.ledger import apply, entries_of, run_once
from loyalty.ledger_rows import member_rows
from loyalty.order_source import orders_of
from loyalty.parallel import WORKERS_ENV
from loyalty.rules import EveryNthReward, ExpiryPolicy, LoyaltySettings, Tier, WelcomeReward
from store import PageWrite, Store, connect, migrate
from store.store import StreamKey
from store.types import binders

T1 = datetime(2026, 6, 1, tzinfo=UTC)
RULES = LoyaltySettings(
    enabled=True, earn_rate=Decimal("0.03"),
    tiers=(Tier(name="base", min_spend=Decimal(0), earn_rate=Decimal("0.03")),
           Tier(name="silver", min_spend=Decimal(3000), earn_rate=Decimal("0.05"))),
    welcome=WelcomeReward(points=Decimal(100)), every_nth=EveryNthReward(n=3, points=Decimal(50)),
    expiry=ExpiryPolicy(policy="after_days", days=60))


def orders(seed: int, n: int, now: datetime, first: int = 0) -> list[OrderRecord]:
    """`n` orders of ~120 buyers over the 120 days before `now`, some cancelled, returned or partly returned."""
    rng = random.Random(seed)
    out = []
    for i in range(first, first + n):
        created = now - timedelta(minutes=rng.randrange(120 * 24 * 60))
        r = rng.random()
        status = (OrderStatus.CANCELLED if r < 0.1 else OrderStatus.RETURNED if r < 0.18
                  else OrderStatus.PARTIALLY_RETURNED if r < 0.25 else OrderStatus.IN_DELIVERY if r < 0.3
                  else OrderStatus.DELIVERED)
        changed = min(created + timedelta(hours=rng.randrange(30, 200)), now)
        total = Decimal(rng.randrange(300, 5000))
        out.append(OrderRecord(
            marketplace="ozon", account="main", order_id=f"O{i}", created_at=created, updated_at=changed,
            status=status, platform_status=status.value, fulfilment="fbs", currency="RUB", total=total, lines=(),
            buyer_key=_buyer(i, rng.randrange(120)), returned_total=total / 4 if 0.18 <= r < 0.25 else Decimal(0),
            status_changed_at=changed))
    return out


def _buyer(i: int, drawn: int) -> str | None:
    """Mostly ~120 buyers; every 29th order without a buyer key, every 31st with an empty one (no
    identity: counted, never planned)."""
    return None if i % 29 == 28 else "" if i % 31 == 30 else f"b{drawn:03d}"


def write(store: Store, records: list[OrderRecord], now: datetime, *, wildberries: bool = True) -> None:
    store.write_pages(StreamKey("ozon", "main", "orders"), [PageWrite(orders=records)], now=now)
    if not wildberries:
        return
    # The same buyer keys on another marketplace: other members (a key names a buyer per account).
    other = [replace(r, marketplace="wildberries", order_id=f"W{r.order_id}") for r in records[::7]]
    store.write_pages(StreamKey("wildberries", "main", "orders"), [PageWrite(orders=other)], now=now)


def ledger(store: Store) -> list[tuple]:
    fields = ("kind", "amount", "idempotency_key", "order_id", "rule", "effective_at", "available_from",
              "expires_at", "buyer_key", "remaining")
    return sorted(tuple(r[f] for f in fields) for r in entries_of(store))


def test_workers_write_what_one_process_writes(store: Store, tmp_path: Path, monkeypatch):
    one = Store(connect(f"sqlite:///{tmp_path / 'one.db'}"))
    migrate(one.engine)
    history = orders(7, 600, T1)
    later = T1 + timedelta(days=20)
    for s in (one, store):
        write(s, history, T1)
    monkeypatch.setenv(WORKERS_ENV, "1")
    first = run_once(one, RULES, T1)
    monkeypatch.setenv(WORKERS_ENV, "2")
    parallel = run_once(store, RULES, T1)
    assert (parallel.members, parallel.orders, parallel.inserted) == (first.members, first.orders, first.inserted)
    assert parallel.no_identity == first.no_identity and sum(first.no_identity.values()) > 20
    assert parallel.members > 120  # the wildberries members too
    assert first.inserted > 600 and ledger(store) == ledger(one)
    # More orders, spends, and 20 days of availability and expiry: runs over a ledger with history.
    more = orders(8, 200, later, first=600)
    for s in (one, store):
        write(s, more, later)
        apply(s, [Entry("spend", Decimal(-120), "spend:x", None, "promo_code", later - timedelta(days=1),
                        marketplace="ozon", account="main", buyer_key="b007")])
    monkeypatch.setenv(WORKERS_ENV, "1")
    run_once(one, RULES, later)
    monkeypatch.setenv(WORKERS_ENV, "2")
    again = run_once(store, RULES, later)
    assert again.inserted > 0 and ledger(store) == ledger(one)
    assert run_once(store, RULES, later).inserted == 0
    one.engine.dispose()


def test_a_plan_made_before_the_ledger_changed_is_made_again(sqlite_store: Store):
    """A worker read b1's rows, then the outbox wrote a spend for b1: the plan is stale, and writing
    it plans b1 again in the writing transaction (the spend is folded, not lost or doubled)."""
    store = sqlite_store
    write(store, [r for r in orders(3, 200, T1) if r.buyer_key in ("b001", "b002")], T1, wildberries=False)
    run_once(store, RULES, T1 - timedelta(days=30))
    members = [("ozon", "main", "b001"), ("ozon", "main", "b002")]
    facts = orders_of(store, RULES, members)
    with store.engine.connect() as conn:
        read = member_rows(conn, members)
    plans = [plan_member(m, facts[m], read[m], RULES, T1, SETTLE_DELAY, None, binders(store.engine.dialect))
             for m in members]
    apply(store, [Entry("spend", Decimal(-40), "spend:late", None, "promo_code", T1 - timedelta(days=1),
                        marketplace="ozon", account="main", buyer_key="b001")])
    replanned: list = []

    def replan(conn, stale):
        replanned.extend(stale)
        rows = member_rows(conn, stale, lock=True)
        return [plan_member(m, facts[m], rows[m], RULES, T1, SETTLE_DELAY, None, binders(conn.dialect)) for m in stale]

    with store.engine.begin() as conn:
        write_plans(conn, plans, T1, replan=replan)
    assert replanned == [("ozon", "main", "b001")]
    # What one run at T1 over the same ledger writes: nothing more.
    assert run_once(store, RULES, T1).inserted == 0
    spend = next(r for r in entries_of(store) if r["idempotency_key"] == "spend:late")
    assert spend["remaining"] == 0  # covered by b001's available points


def test_without_a_database_file_the_run_stays_in_this_process(monkeypatch, caplog):
    from loyalty.parallel import MIN_MEMBERS, workers_for

    monkeypatch.setenv(WORKERS_ENV, "4")
    assert workers_for(connect("sqlite:///:memory:"), 10_000) == 1
    assert workers_for(connect("sqlite:////tmp/x.db"), 10) == 4
    # A mistyped value: one clear warning, and the default (a small run stays in this process).
    monkeypatch.setenv(WORKERS_ENV, "four")
    assert workers_for(connect("sqlite:////tmp/x.db"), MIN_MEMBERS - 1) == 1
    assert f"{WORKERS_ENV}='four' is not a number of processes" in caplog.text


def test_a_plan_crosses_from_a_worker_whole():
    """Plans travel from worker processes pickled (`MemberPlan.__reduce__` lists its fields): every
    field, including one added later, must arrive as it left."""
    import pickle
    from dataclasses import fields

    from loyalty.batch import MemberPlan

    values = {"member": ("ozon", "main", "b1"), "seen": (3, 17), "rows": [("earn", "5", "k1")],
              "derived": [("expire", "-1", "k2")], "updates": {4: Decimal("2.5")},
              "moved": [(9, T1, None)], "late": ["O7"], "due": T1 + timedelta(days=3)}
    assert {f.name for f in fields(MemberPlan)} == set(values), "a new field: add it here and to __reduce__"
    plan = MemberPlan(**values)
    assert pickle.loads(pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL)) == plan


def test_a_worker_killed_mid_run_ends_the_run_with_a_clear_error_and_a_rerun_completes(
        sqlite_store: Store, tmp_path: Path, monkeypatch):
    """A worker killed (the OOM killer, a container limit) used to leave the run waiting forever for
    its chunk. Now the run stops with `WorkerLost`, what it wrote stays, and the next run ends with
    the ledger one clean run writes."""
    import multiprocessing
    import os
    import signal

    import pytest

    import loyalty.batch as write_batch
    import loyalty.parallel as parallel
    from loyalty.engine import SETTLE_DELAY as DELAY
    from loyalty.parallel import WorkerLost, every_buyer, plan_in_workers

    store = sqlite_store
    history = orders(11, 600, T1)
    write(store, history, T1, wildberries=False)
    clean = Store(connect(f"sqlite:///{tmp_path / 'clean.db'}"))
    migrate(clean.engine)
    write(clean, history, T1, wildberries=False)
    monkeypatch.setenv(WORKERS_ENV, "1")
    run_once(clean, RULES, T1)
    # Small chunks and groups, so chunks are still to plan when the first group is written.
    monkeypatch.setattr(parallel, "MEMBER_BATCH", 4)
    monkeypatch.setattr(write_batch, "WRITE_MEMBERS", 8)
    runs = plan_in_workers(store, every_buyer(store.engine), RULES, T1, DELAY, None, 2)
    written = next(runs)[0]
    assert written >= 8
    for child in multiprocessing.active_children():
        os.kill(child.pid, signal.SIGKILL)
    with pytest.raises(WorkerLost, match="LOYALSYNC_LOYALTY_WORKERS=1"):
        for _ in runs:
            pass
    assert 0 < len(ledger(store)) < len(ledger(clean))  # the first group is kept
    monkeypatch.setenv(WORKERS_ENV, "1")
    run_once(store, RULES, T1)
    assert ledger(store) == ledger(clean)
    clean.engine.dispose()
