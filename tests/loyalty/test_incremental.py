"""Incremental runs write exactly what full runs write (loyalty/incremental.py).

1. Random histories (orders with status timelines, cancellations, partial returns, spends, expiry,
   budgets) arrive in random chunks; at every run time one store runs `run_changed` (only members
   with something new) and another `run_once` over every member, with the same rules, and between
   some runs the earn rate changes. The two ledgers must be identical, entry for entry, after every
   run.
2. Incremental runs end where ONE rebuild (`run_once` over every member, once, at the end) over the
   same store ends: the same balances, tiers and, per lot, what the buyer was granted and not
   given back. The histories leave out docs/loyalty-rules.md §9's exceptions (budgets, rule
   changes, returns in two steps).

With the engine-vs-model properties (test_engine_vs_reference.py: full runs equal the paper rules),
this makes incremental runs equal the paper rules too. Thousands of examples:

    LOYALSYNC_PROPERTY_RANDOM=1 LOYALSYNC_PROPERTY_EXAMPLES=2000 ./dev test -n0 tests/loyalty/test_incremental.py
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.incremental import run_changed
from loyalty.ledger import entries_of, run_once
from tests.loyalty.engine_driver import engine_view, fresh_store, members_of, migrated_template, send, write_orders
from tests.loyalty.history_strategies import History, histories
from tests.scale import examples

EXAMPLES = int(os.environ.get("LOYALSYNC_PROPERTY_EXAMPLES") or examples(150))


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("incremental"))


def _ledger(store) -> list[tuple]:
    return sorted(tuple(v for k, v in r.items() if k != "id") for r in entries_of(store))


@settings(max_examples=EXAMPLES * 2 // 3, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                                HealthCheck.function_scoped_fixture])
@given(history=histories(), rate_changes=st.sets(st.integers(0, 40), max_size=3))
def test_incremental_runs_write_what_full_runs_write(template_db: Path, history: History, rate_changes: set[int]):
    rules = history.settings
    with fresh_store(template_db) as changed_only, fresh_store(template_db) as everyone:
        spends = sorted(history.spends, key=lambda s: s.at)
        for i, (run_time, seen) in enumerate(history.arrivals()):
            if i in rate_changes:  # ops changed the earn rate: recorded lots keep theirs in both
                rules = rules.model_copy(update={"earn_rate": rules.earn_rate + Decimal("0.01")})
            while spends and spends[0].at <= run_time:
                spend = spends.pop(0)
                send(changed_only, spend)
                send(everyone, spend)
            write_orders(changed_only, seen, run_time)
            write_orders(everyone, seen, run_time)
            result = run_changed(changed_only, rules, run_time)
            run_once(everyone, rules, run_time)
            assert _ledger(changed_only) == _ledger(everyone), (i, run_time, result)


def _net(view: dict) -> dict:
    """Per member: tier, balances and, per lot, what the buyer keeps, D (0-valued lots dropped). A
    reward an order held, lost to one void and got back after another is taken back and granted
    again by live runs, where a rebuild grants it once (docs/loyalty-rules.md §9): its D is equal."""
    return {member: (v["tier"], v["balances"],
                     {lot: a - taken for lot, (a, _owed, taken) in v["lots"].items() if a - taken != 0})
            for member, v in view.items()}


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
@given(history=histories(budgets=False, two_step_returns=False))
def test_incremental_runs_end_where_one_rebuild_over_the_store_ends(template_db: Path, history: History):
    with fresh_store(template_db) as changed_only, fresh_store(template_db) as rebuilt:
        spends = sorted(history.spends, key=lambda s: s.at)
        for run_time, seen in history.arrivals():
            while spends and spends[0].at <= run_time:
                spend = spends.pop(0)
                send(changed_only, spend)
                send(rebuilt, spend)
            write_orders(changed_only, seen, run_time)
            write_orders(rebuilt, seen, run_time)  # the store knows what syncs saw; no run yet
            run_changed(changed_only, history.settings, run_time)
        run_once(rebuilt, history.settings, history.end)
        members = members_of(history)
        incremental = _net(engine_view(changed_only, history, members, history.end))
        rebuild = _net(engine_view(rebuilt, history, members, history.end))
    diff = [f"{'/'.join(m)}: incremental {incremental.get(m)} rebuild {rebuild.get(m)}"
            for m in sorted(set(incremental) | set(rebuild)) if incremental.get(m) != rebuild.get(m)]
    assert not diff, "\n  ".join(["incremental runs != one rebuild:", *diff]) + "\n" + history.describe()


def test_a_new_order_wakes_its_member_when_it_settles_not_before(template_db: Path):
    """b1 has one delivered order (100 ₽ at 5 %: 5 points). A new order (200 ₽) arrives ten minutes
    later: not settled (2 days), so the run reads no member. The run after it settled grants its
    10 points, and a full run over every member then writes nothing."""
    from datetime import UTC, datetime, timedelta

    from connectors.records import OrderRecord, OrderStatus
    from loyalty.rules import LoyaltySettings
    from store import PageWrite
    from store.store import StreamKey

    t0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
    rules = LoyaltySettings(enabled=True, earn_rate=Decimal("0.05"))

    def order(oid: str, created: datetime, total: int, status: OrderStatus) -> OrderRecord:
        return OrderRecord(marketplace="ozon", account="main", order_id=oid, created_at=created, updated_at=created,
                           status=status, platform_status=status.value, fulfilment="fbs", currency="RUB",
                           total=Decimal(total), lines=(), buyer_key="b1")

    def write(store, record: OrderRecord, now: datetime) -> None:
        store.write_pages(StreamKey("ozon", "main", "orders"), [PageWrite(orders=[record])], now=now)

    def earned(store) -> dict[str, Decimal]:
        return {r["order_id"]: r["amount"] for r in entries_of(store) if r["kind"] == "earn"}

    with fresh_store(template_db) as store:
        write(store, order("O1", t0 - timedelta(days=10), 100, OrderStatus.DELIVERED), t0)
        assert run_changed(store, rules, t0).full
        assert earned(store) == {"O1": Decimal(5)}
        # O1 was synced long before: outside the run's re-read margin (wall time, CHANGE_MARGIN).
        from loyalty.incremental import ORDERS, STATE

        long_ago = datetime.now(UTC) - timedelta(days=1)
        with store.engine.begin() as conn:
            conn.execute(ORDERS.update().values(changed_at=long_ago))
            conn.execute(STATE.update().where(STATE.c.name == "ledger.orders_changed")
                         .values(at=long_ago + timedelta(hours=1)))
        later = t0 + timedelta(minutes=10)
        write(store, order("O2", later - timedelta(minutes=5), 200, OrderStatus.CREATED), later)
        quiet = run_changed(store, rules, later)
        assert (quiet.full, quiet.changed_orders, quiet.run.members) == (False, 1, 0)
        settled = later + timedelta(days=2)
        woke = run_changed(store, rules, settled)
        assert woke.run.members == 1 and earned(store) == {"O1": Decimal(5), "O2": Decimal(10)}
        assert run_once(store, rules, settled).inserted == 0
