"""Partial returns: the rate lot shrinks to what the kept goods earned at the recorded rate.

Each larger `returned_total` writes one reversal of the difference; a full return takes the rest;
fixed rewards (welcome, every-Nth, offer bonuses) stay until the whole order goes back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.records import OrderRecord, OrderStatus
from loyalty.engine import OrderFact
from loyalty.ledger import balances, entries_of, run_once
from loyalty.plan import member_entries
from loyalty.rules import LoyaltySettings
from store import PageWrite, Store, connect, migrate
from store.store import StreamKey
from tests.scale import examples

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
NOW = T0 + 10 * DAY
KEY = StreamKey("yandex_market", "main", "orders")
MEMBER = ("yandex_market", "main", "b1")
PROGRAM = LoyaltySettings.model_validate({"enabled": True, "earn_rate": "0.05", "welcome": {"points": 30},
                                          "return_window": timedelta(days=14)})


def fact(status: str, returned: str = "0", total: str = "1000", oid: str = "A") -> OrderFact:
    return OrderFact("yandex_market", "main", oid, "b1", T0, T0 + 3 * DAY, status, Decimal(total), "DBS", "RUB",
                     returned_total=Decimal(returned))


def run(*states: OrderFact) -> dict[str, Decimal]:
    """Feed the order's states one after another, recording what each run writes; all entries by key."""
    recorded: dict = {}
    for state in states:
        for e in member_entries([state], PROGRAM, recorded, NOW):
            recorded.setdefault(e.idempotency_key, e)
    return {k: e.amount for k, e in recorded.items()}


def test_a_partial_return_reverses_the_returned_share_of_the_rate_lot_only():
    got = run(fact("delivered"), fact("partially_returned", "300"))
    assert got == {"earn:yandex_market:main:A:rate": 50, "earn:yandex_market:main:A:welcome": 30,
                   "reverse:yandex_market:main:A:rate#1": -15}


def test_rounding_never_lets_the_buyer_keep_a_fraction_for_returned_goods():
    # 999 * 0.05 = 49 points; keeping 666/999 of them is 32.67 -> keep 32, take back 17
    got = run(fact("delivered", total="999"), fact("partially_returned", "333", total="999"))
    assert got["reverse:yandex_market:main:A:rate#1"] == -17


def test_growing_returns_take_the_difference_and_a_full_return_the_rest():
    got = run(fact("delivered"), fact("partially_returned", "300"), fact("partially_returned", "300.00"),
              fact("partially_returned", "600"), fact("returned", "1000"))
    reversals = {k: v for k, v in got.items() if k.startswith("reverse:")}
    # One take-back per change seen: 300 (-15), 300.00 is the same, 600 (-15), then the whole order.
    assert reversals == {"reverse:yandex_market:main:A:rate#1": -15,
                         "reverse:yandex_market:main:A:rate#2": -15,
                         "reverse:yandex_market:main:A:rate#3": -20,
                         "reverse:yandex_market:main:A:welcome#1": -30}
    assert sum(got.values()) == 0


def test_first_seen_partly_returned_equals_the_states_in_between():
    direct = run(fact("partially_returned", "600"))
    assert direct == {"earn:yandex_market:main:A:rate": 50, "earn:yandex_market:main:A:welcome": 30,
                      "reverse:yandex_market:main:A:rate#1": -30}


def test_the_tier_window_counts_the_kept_spend():
    tiers = LoyaltySettings.model_validate({
        "enabled": True, "tiers": [{"name": "base", "min_spend": 0, "earn_rate": "0.05"},
                                   {"name": "silver", "min_spend": 1000, "earn_rate": "0.10"}]})
    # A's return is dated T0 + 3 days (its status time); B comes after the midnight that follows, when the
    # held tier (silver while A was whole) has had its daily evaluation (docs/loyalty-rules.md §3).
    later = OrderFact("yandex_market", "main", "B", "b1", T0 + 4 * DAY + timedelta(hours=1), T0 + 5 * DAY,
                      "delivered", Decimal(100), "DBS", "RUB")
    kept_all = {e.idempotency_key: e.amount for e in member_entries([fact("delivered"), later], tiers, {}, NOW)}
    kept_part = {e.idempotency_key: e.amount
                 for e in member_entries([fact("partially_returned", "1"), later], tiers, {}, NOW)}
    assert kept_all["earn:yandex_market:main:B:rate"] == 10  # 1000 spent: silver
    assert kept_part["earn:yandex_market:main:B:rate"] == 5  # 999 kept: still base


def test_through_the_ledger_on_both_backends(store: Store):
    write(store, record("delivered"))
    run_once(store, PROGRAM, NOW)
    write(store, record("partially_returned", "400"))
    run_once(store, PROGRAM, NOW + DAY)
    rows = {r["idempotency_key"]: r for r in entries_of(store)}
    assert rows["reverse:yandex_market:main:A:rate#1"]["amount"] == -20
    assert rows["earn:yandex_market:main:A:rate"]["remaining"] == 30  # its own lot paid it
    b = balances(store, MEMBER, NOW + DAY)
    assert b.lifetime == 60 and b.debt == 0 and b.total == sum(r["amount"] for r in rows.values())
    assert run_once(store, PROGRAM, NOW + 2 * DAY).inserted == 0


def record(status: str, returned: str = "0", total: str = "1000") -> OrderRecord:
    return OrderRecord(marketplace="yandex_market", account="main", order_id="A", created_at=T0,
                       updated_at=T0 + 3 * DAY,
                       status_changed_at=T0 + 3 * DAY, status=OrderStatus(status), platform_status=status.upper(),
                       fulfilment="DBS", currency="RUB", total=Decimal(total), lines=(), buyer_key="b1",
                       returned_total=Decimal(returned))


def write(store: Store, *orders: OrderRecord) -> None:
    store.write_page(KEY, PageWrite(orders=list(orders)), now=NOW)


steps_st = st.lists(st.integers(0, 1000), max_size=5).map(sorted)


@settings(max_examples=examples(80), deadline=None)
@given(total=st.integers(1, 5000), steps=steps_st, full=st.booleans(), spend=st.integers(0, 200))
def test_partial_returns_properties(tmp_path_factory, total, steps, full, spend):
    """Whatever the sequence of growing returns (and a spend in between): the ledger adds up to the
    balances, no key repeats, never more is taken back than was earned, re-running changes nothing,
    and the member's lifetime equals what the final state alone implies."""
    states = [record("delivered", total=str(total))]
    states += [record("partially_returned", str(Decimal(total) * s / 1000), str(total)) for s in steps if s]
    if full:
        states.append(record("returned", str(total), str(total)))
    path = tmp_path_factory.mktemp("partial")
    live, final = _fresh(path / "live.db"), _fresh(path / "final.db")
    for i, state in enumerate(states):
        write(live, state)
        run_once(live, PROGRAM, NOW + i * DAY)
        if i == 0 and spend:
            _spend(live, spend)
    write(final, states[-1])
    run_once(final, PROGRAM, NOW + len(states) * DAY)
    rows = entries_of(live)
    keys = [r["idempotency_key"] for r in rows]
    assert len(keys) == len(set(keys))
    when = NOW + len(states) * DAY
    b = balances(live, MEMBER, when)
    assert b.total == sum(r["amount"] for r in rows)
    earned = sum(r["amount"] for r in rows if r["kind"] == "earn")
    taken = -sum(r["amount"] for r in rows if r["kind"] == "reverse")
    assert 0 <= taken <= earned
    assert b.lifetime == balances(final, MEMBER, when).lifetime
    assert run_once(live, PROGRAM, when).inserted == 0
    live.engine.dispose()
    final.engine.dispose()


def _fresh(path) -> Store:
    engine = connect(f"sqlite:///{path}")
    migrate(engine)
    return Store(engine)


def _spend(store: Store, amount: int) -> None:
    from loyalty.engine import Entry
    from loyalty.ledger import apply

    apply(store, [Entry("spend", Decimal(-amount), "spend:test", None, None, NOW, marketplace="yandex_market",
                        account="main", buyer_key="b1")])
