"""The loyalty jobs run concurrently give the same ledger and projection as one sequential run.

Four `run_once` (and two `refresh_members`) start at the same moment on one database; the result
must equal what a single sequential run writes into a fresh database from the same orders. On
PostgreSQL every thread has its own engine (its own connections); on SQLite the threads share the
store's engine, as the daemon and the CLI do.
"""

from __future__ import annotations

import os
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import loyalty.batch as write_batch
import loyalty.order_source as order_source
from connectors.records import OrderRecord, OrderStatus
from loyalty.ledger import balances, entries_of, run_once
from loyalty.membership import refresh_members, stored_members
from loyalty.rules import EveryNthReward, ExpiryPolicy, LoyaltySettings, Tier, TierPolicy, WelcomeReward
from store import PageWrite, Store, connect, migrate
from store.store import StreamKey

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KEY = StreamKey("ozon", "main", "orders")
THREADS = 4
MEMBERS = 40
BATCH = 7  # members per refresh transaction
PG_ADMIN_URL = os.environ.get("LOYALSYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

SETTINGS = LoyaltySettings(
    enabled=True,
    earn_rate=Decimal("0.05"),
    tiers=(Tier(name="bronze", min_spend=Decimal(0), earn_rate=Decimal("0.03")),
           Tier(name="silver", min_spend=Decimal(5000), earn_rate=Decimal("0.05")),
           Tier(name="gold", min_spend=Decimal(20000), earn_rate=Decimal("0.08"))),
    tier_policy=TierPolicy(window=60 * DAY, downgrade="one_down"),
    expiry=ExpiryPolicy(policy="after_days", days=45),  # lots expire within the 200 days
    welcome=WelcomeReward(points=Decimal(100)),
    every_nth=EveryNthReward(n=3, points=Decimal(25), period=90 * DAY),
)
NOW1 = T0 + 120 * DAY
NOW2 = T0 + 215 * DAY


def _order(oid: str, buyer: str, created: datetime, updated: datetime, status: OrderStatus,
           total: Decimal) -> OrderRecord:
    return OrderRecord(marketplace="ozon", account="main", order_id=oid, created_at=created, updated_at=updated,
                       status_changed_at=updated,
                       status=status, platform_status=status.value, fulfilment="fbo", currency="RUB",
                       total=total, lines=(), buyer_key=buyer)


def _phases() -> tuple[list[OrderRecord], list[OrderRecord]]:
    """Orders as first seen (delivered or on their way) and later (some cancelled or returned)."""
    rng = random.Random(20261122)
    first: list[OrderRecord] = []
    later: list[OrderRecord] = []
    n = 0
    for m in range(MEMBERS):
        buyer = f"b{m:02d}"
        for _ in range(rng.randint(4, 12)):
            n += 1
            oid = f"O{n:05d}"
            created = T0 + timedelta(days=rng.randint(0, 200), minutes=rng.randint(0, 1439))
            total = Decimal(rng.randint(200, 9000))
            delivered = created + timedelta(days=rng.randint(1, 5))
            seen_by_now1 = created <= NOW1
            fate = rng.random()
            if seen_by_now1:
                early = OrderStatus.DELIVERED if delivered <= NOW1 and rng.random() < 0.6 else OrderStatus.IN_DELIVERY
                upd = delivered if early is OrderStatus.DELIVERED else created
                first.append(_order(oid, buyer, created, upd, early, total))
            if fate < 0.15:
                status, upd = OrderStatus.CANCELLED, created + DAY
            elif fate < 0.30:
                status, upd = OrderStatus.RETURNED, delivered + timedelta(days=rng.randint(2, 10))
            else:
                status, upd = OrderStatus.DELIVERED, delivered
            if seen_by_now1 and upd <= NOW1 and status is OrderStatus.DELIVERED:
                continue  # already final in the first phase
            later.append(_order(oid, buyer, created, max(upd, NOW1 + DAY) if seen_by_now1 else upd, status,
                                total))
    return first, later


FIRST, LATER = _phases()


def _write(store: Store, orders: list[OrderRecord], now: datetime) -> None:
    for start in range(0, len(orders), 100):
        store.write_page(KEY, PageWrite(orders=orders[start:start + 100]), now=now)


def _at_once(n: int, job: Callable[[int], object]) -> list[object]:
    """`job(i)` in `n` threads released together; any exception is re-raised here."""
    barrier = threading.Barrier(n)

    def go(i: int) -> object:
        barrier.wait(timeout=30)
        return job(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return [f.result(timeout=120) for f in [pool.submit(go, i) for i in range(n)]]


def _ledger(store: Store) -> dict[str, dict]:
    """The ledger by idempotency key, without ids (keys name entries, never row ids)."""
    rows = entries_of(store)
    keys = [r["idempotency_key"] for r in rows]
    dupes = [k for k, c in Counter(keys).items() if c > 1]
    assert not dupes, f"idempotency keys written twice: {dupes[:5]}"
    return {r["idempotency_key"]: {f: v for f, v in r.items() if f not in ("id", "idempotency_key")} for r in rows}


def _check_invariant(store: Store, now: datetime) -> None:
    rows = entries_of(store)
    members = {(r["marketplace"], r["account"], r["buyer_key"]) for r in rows}
    assert len(members) == MEMBERS
    for member in members:
        b = balances(store, member, now)
        total = sum((r["amount"] for r in rows
                     if (r["marketplace"], r["account"], r["buyer_key"]) == member), Decimal(0))
        assert b.total == total, (member, b, total)
        assert b.pending >= 0 and b.available >= 0 and b.expired >= 0 and b.debt >= 0, (member, b)


class Backend:
    """Fresh databases of one kind, and per-thread stores on them."""

    def __init__(self, kind: str, tmp_path: Path):
        self.kind, self.tmp_path = kind, tmp_path
        self._engines: list = []
        self._pg_dbs: list[str] = []
        self._admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT") if kind == "postgres" else None

    def new_url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        name = f"loyalsync_test_{uuid.uuid4().hex[:12]}"
        try:
            with self._admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not usable: {exc}")
        self._pg_dbs.append(name)
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def store(self, url: str, *, fresh: bool = False) -> Store:
        engine = connect(url)
        self._engines.append(engine)
        if fresh:
            migrate(engine)
        return Store(engine)

    def close(self) -> None:
        for engine in self._engines:
            engine.dispose()
        if self._admin is not None:
            with self._admin.connect() as conn:
                for name in self._pg_dbs:
                    conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                                 {"n": name})
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            self._admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path: Path, monkeypatch) -> Iterator[Backend]:
    # Small batches: many transactions per run, so the concurrent runs interleave between them.
    monkeypatch.setattr(order_source, "MEMBER_BATCH", 7)
    monkeypatch.setattr(write_batch, "WRITE_MEMBERS", 20)  # three batches a write transaction
    b = Backend(request.param, tmp_path)
    try:
        yield b
    finally:
        b.close()


def _stores(backend: Backend, url: str, shared: Store) -> list[Store]:
    """One store per thread: its own engine on PostgreSQL, the shared one on SQLite."""
    if backend.kind == "postgres":
        return [backend.store(url) for _ in range(THREADS)]
    return [shared] * THREADS


def test_concurrent_run_once_equals_a_sequential_run(backend: Backend):
    ref_url, url = backend.new_url(), backend.new_url()
    ref, live = backend.store(ref_url, fresh=True), backend.store(url, fresh=True)
    assert len(FIRST) + len(LATER) >= 300 and len({o.buyer_key for o in FIRST + LATER}) == MEMBERS
    statuses = Counter(o.status for o in LATER)
    assert statuses[OrderStatus.CANCELLED] and statuses[OrderStatus.RETURNED] and statuses[OrderStatus.DELIVERED]

    for phase, (orders, now) in enumerate(((FIRST, NOW1), (LATER, NOW2))):
        _write(ref, orders, now)
        _write(live, orders, now)
        run_once(ref, SETTINGS, now)
        stores = _stores(backend, url, live)
        results = _at_once(THREADS, lambda i, s=stores, n=now: run_once(s[i], SETTINGS, n))
        expected, got = _ledger(ref), _ledger(live)
        assert expected, f"phase {phase}: the reference ledger is empty"
        assert got.keys() == expected.keys(), (
            f"phase {phase}: missing {sorted(expected.keys() - got.keys())[:5]}, "
            f"extra {sorted(got.keys() - expected.keys())[:5]}")
        diff = [k for k in expected if got[k] != expected[k]]
        assert not diff, (f"phase {phase}: {len(diff)} rows differ, "
                          f"e.g. {diff[0]}: {got[diff[0]]} != {expected[diff[0]]}")
        assert sum(r.inserted for r in results) + sum(r.expired for r in results) >= 1
        _check_invariant(live, now)
        _check_invariant(ref, now)
    kinds = Counter(r["kind"] for r in _ledger(live).values())
    assert kinds["earn"] and kinds["reverse"] and kinds["expire"], kinds
    # Once more, all at once, after everything is written: nothing changes.
    before = _ledger(live)
    again = _at_once(THREADS, lambda i: run_once(stores[i], SETTINGS, NOW2))
    assert all(r.inserted == r.filled == r.expired == 0 for r in again)
    assert _ledger(live) == before


def test_concurrent_refresh_members_equals_one_refresh(backend: Backend):
    ref_url, url = backend.new_url(), backend.new_url()
    ref, live = backend.store(ref_url, fresh=True), backend.store(url, fresh=True)
    for orders, now in ((FIRST, NOW1), (LATER, NOW2)):
        _write(ref, orders, now)
        _write(live, orders, now)
        refresh_members(ref, SETTINGS, now, batch=BATCH)
        stores = _stores(backend, url, live)
        results = _at_once(2, lambda i, s=stores, n=now: refresh_members(s[i], SETTINGS, n, batch=BATCH))
        assert all(r.members == MEMBERS for r in results)
        expected, got = stored_members(ref), stored_members(live)
        assert len(expected) == MEMBERS
        assert got == expected
    # Four at once with the same `now` again: nothing changes.
    before = stored_members(live)
    _at_once(THREADS, lambda i: refresh_members(stores[i], SETTINGS, NOW2, batch=BATCH))
    assert stored_members(live) == before
