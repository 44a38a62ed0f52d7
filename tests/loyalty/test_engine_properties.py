"""Properties of the earn job over random order histories (SQLite; the backends agree in test_ledger).

(a) balances add up to the ledger, (b) keys are unique, (c) the ledger is a function of the order
set, not of arrival order or run times, and re-running changes nothing, (d) no review rating moves it.
The program has tiers, welcome, every-Nth, an offer with conditions, a segment-only offer, a
per-member and a program-wide budget, partial returns and expiry (the expire job runs in every
`run_once`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.records import OrderRecord, OrderStatus, ReviewRecord
from loyalty.engine import SETTLE_DELAY, OrderFact
from loyalty.ledger import balances, entries_of, run_once
from loyalty.plan import member_entries
from loyalty.rules import LoyaltySettings
from store import PageWrite, Store, connect, migrate
from store.store import StreamKey
from tests.scale import examples

T0 = datetime(2026, 1, 1, tzinfo=UTC)
END = T0 + timedelta(days=200)
KEY = StreamKey("ozon", "main", "orders")
BUYERS = ("b1", "b2", "b3")
PROGRAM = LoyaltySettings.model_validate({
    "enabled": True,
    "tiers": [{"name": "base", "min_spend": 0, "earn_rate": "0.03"},
              {"name": "silver", "min_spend": 3000, "earn_rate": "0.05"},
              {"name": "gold", "min_spend": 8000, "earn_rate": "0.08"}],
    "tier_policy": {"window": timedelta(days=30)},
    "return_window": timedelta(days=7),
    "expiry": {"policy": "after_days", "days": 40},
    "welcome": {"points": 100},
    "every_nth": {"n": 3, "points": 50, "period": timedelta(days=20)},
    "offers": [{"name": "spring", "starts": T0 + timedelta(days=10), "ends": T0 + timedelta(days=40),
                "multiplier": 2, "bonus_points": 20,
                "conditions": [{"field": "total", "op": "ge", "value": 1000},
                               {"field": "fulfilment", "op": "eq", "value": "fbs"}]},
               {"name": "winback", "starts": T0, "ends": END, "bonus_points": 40,
                "segments": ["at_risk", "sleeping"]}],
    "segments": {"sleeping_after": timedelta(days=30), "lost_after": timedelta(days=60)},
    "budget": {"per_member_points": 1500, "total_points": 500},
})

orders_st = st.lists(
    st.tuples(
        st.sampled_from(BUYERS),
        st.integers(0, 90 * 24 * 60),  # created, minutes after T0
        st.decimals(Decimal("0"), Decimal("6000"), places=2),
        st.sampled_from(list(OrderStatus)),
        st.integers(0, 10 * 24 * 60),  # updated, minutes after created
        st.integers(0, int(SETTLE_DELAY.total_seconds()) - 1),  # arrival, seconds after created
        st.integers(1, 5),  # a review's rating; another one for the other store
        st.integers(1, 5),
        st.integers(1, 99),  # percent of the total returned, when partially returned
    ),
    max_size=14,
)


def history(drawn: list[tuple]) -> list[tuple[OrderRecord, datetime, int, int]]:
    out = []
    for i, (buyer, created, total, status, updated, arrival, r1, r2, share) in enumerate(drawn):
        at = T0 + timedelta(minutes=created)
        returned = total * share / 100 if status == OrderStatus.PARTIALLY_RETURNED else Decimal(0)
        # The order arrives in its final status, so it reached that status before it arrived.
        changed = at + min(timedelta(minutes=updated), timedelta(seconds=arrival))
        rec = OrderRecord(marketplace="ozon", account="main", order_id=f"O{i}", created_at=at,
                          updated_at=changed, status_changed_at=changed, status=status,
                          platform_status=status.value, fulfilment="fbs", currency="RUB", total=total,
                          lines=(), buyer_key=buyer, returned_total=returned)
        out.append((rec, at + timedelta(seconds=arrival), r1, r2))
    return out


def review(o: OrderRecord, rating: int) -> ReviewRecord:
    return ReviewRecord(marketplace="ozon", account="main", review_id=f"R{o.order_id}", sku="sku", rating=rating,
                        text="bad" if rating < 3 else "good", pros="", cons="", created_at=o.updated_at,
                        answered=False, answer_text=None, order_id=o.order_id, buyer_key=o.buyer_key)


@contextmanager
def fresh_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = connect(f"sqlite:///{tmp}/store.db")
        migrate(engine)
        try:
            yield Store(engine)
        finally:
            engine.dispose()


def write(store: Store, orders=(), reviews=()) -> None:
    store.write_page(KEY, PageWrite(orders=list(orders), reviews=list(reviews)), now=END)


def ledger(store: Store) -> list[tuple]:
    """Comparable across stores: ids dropped (keys name entries, never row ids)."""
    return sorted(tuple(v for k, v in r.items() if k != "id") for r in entries_of(store))


def check_balances(store: Store, now: datetime) -> None:
    rows = entries_of(store)
    keys = [r["idempotency_key"] for r in rows]
    assert len(keys) == len(set(keys))  # (b)
    assert sum(r["amount"] for r in rows if r["kind"] == "earn") <= PROGRAM.budget.total_points
    for buyer in BUYERS:
        mine = [r["amount"] for r in rows if r["buyer_key"] == buyer]
        b = balances(store, ("ozon", "main", buyer), now)
        assert b.total == sum(mine, Decimal(0))  # (a)
        assert b.pending >= 0 and b.available >= 0 and b.debt >= 0


@settings(max_examples=examples(60), deadline=None)
@given(drawn=orders_st, runs=st.lists(st.integers(0, 100 * 24), max_size=5), shuffle=st.randoms())
def test_ledger_is_a_function_of_the_order_set(drawn, runs, shuffle):
    events = history(drawn)
    with fresh_store() as replay, fresh_store() as live:
        # Replay: every order and review (first ratings) at once, one run.
        write(replay, [o for o, *_ in events], [review(o, r1) for o, _, r1, _ in events])
        assert run_once(replay, PROGRAM, END).late == 0
        check_balances(replay, END)

        # Live: orders arrive (shuffled) within their settle delay; runs at increasing times.
        write(live, reviews=[review(o, r2) for o, _, _, r2 in events])  # (d) other ratings
        pending = list(events)
        shuffle.shuffle(pending)
        for now in [T0 + timedelta(hours=h) for h in sorted(runs)] + [END]:
            arrived = [o for o, arrival, *_ in pending if arrival <= now]
            pending = [e for e in pending if e[1] > now]
            write(live, arrived)
            assert run_once(live, PROGRAM, now).late == 0
            check_balances(live, now)
        assert ledger(live) == ledger(replay)  # (c), (d)

        before = ledger(live)
        write(live, reviews=[review(o, 6 - r2) for o, _, _, r2 in events])  # change every rating
        again = run_once(live, PROGRAM, END)
        assert (again.inserted, again.filled) == (0, 0) and ledger(live) == before


@settings(max_examples=examples(60), deadline=None)
@given(drawn=orders_st)
def test_engine_keys_are_unique_and_stable(drawn):
    facts = [OrderFact.from_row({**vars_of(o)}) for o, *_ in history(drawn)]
    for buyer in BUYERS:
        mine = [f for f in facts if f.buyer_key == buyer]
        out = member_entries(mine, PROGRAM, {}, END)
        keys = [e.idempotency_key for e in out]
        assert len(keys) == len(set(keys))
        assert member_entries(list(reversed(mine)), PROGRAM, {}, END) == out
        recorded = {e.idempotency_key: e for e in out}
        assert {e.idempotency_key for e in member_entries(mine, PROGRAM, recorded, END)} <= set(recorded)


def vars_of(o: OrderRecord) -> dict:
    return {f: getattr(o, f) for f in ("marketplace", "account", "order_id", "buyer_key", "created_at",
                                       "updated_at", "status", "total", "returned_total")}
