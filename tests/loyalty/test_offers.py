"""Offers and budgets: window bounds, conditions, multiplier, bonus lots, reversal, per-member caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from connectors.records import OrderLine, OrderRecord, OrderStatus
from loyalty.engine import OrderFact, offer_rule
from loyalty.ledger import balances, entries_of, run_once
from loyalty.plan import member_entries
from loyalty.rules import LoyaltySettings
from store import PageWrite, Store, connect, migrate
from store.store import StreamKey

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)
NOW = T0 + 60 * DAY
KEY = StreamKey("ozon", "main", "orders")
MEMBER = ("ozon", "main", "b1")


def program(*offers: dict, budget: dict | None = None, **more) -> LoyaltySettings:
    return LoyaltySettings.model_validate({"enabled": True, "earn_rate": "0.05", "offers": list(offers),
                                           "budget": budget or {}, **more})


def offer(name: str = "bf", *, starts: datetime = T0 + 10 * DAY, ends: datetime = T0 + 20 * DAY, **more) -> dict:
    return {"name": name, "starts": starts, "ends": ends, **more}


def fact(oid: str, at: datetime, *, total: str = "1000", status: str = "delivered", fulfilment: str = "fbs",
         skus: tuple[str, ...] | None = None, marketplace: str = "ozon") -> OrderFact:
    return OrderFact(marketplace, "main", oid, "b1", at, at + DAY, status, Decimal(total), fulfilment, "RUB",
                     skus, None if skus is None else ())


def earned(settings: LoyaltySettings, *orders: OrderFact, now: datetime = NOW) -> dict[str, Decimal]:
    return {e.idempotency_key: e.amount for e in member_entries(orders, settings, {}, now)}


def test_window_is_starts_inclusive_ends_exclusive():
    s = program(offer(multiplier=2))
    start, end = T0 + 10 * DAY, T0 + 20 * DAY
    got = earned(s, fact("A", start - timedelta(seconds=1)), fact("B", start), fact("C", end - timedelta(seconds=1)),
                 fact("D", end))
    assert got == {"earn:ozon:main:A:rate": 50, "earn:ozon:main:B:rate": 100, "earn:ozon:main:C:rate": 100,
                   "earn:ozon:main:D:rate": 50}


def test_conditions_all_have_to_match():
    s = program(offer(bonus_points=30, conditions=[{"field": "total", "op": "ge", "value": 3000},
                                                   {"field": "fulfilment", "op": "in", "value": ["fbs", "rfbs"]},
                                                   {"field": "currency", "op": "eq", "value": "RUB"}]))
    at = T0 + 12 * DAY
    got = earned(s, fact("A", at, total="3000"), fact("B", at + DAY, total="2999.99"),
                 fact("C", at + 2 * DAY, total="5000", fulfilment="fbo"))
    assert got["earn:ozon:main:A:offer:bf"] == 30
    assert "earn:ozon:main:B:offer:bf" not in got and "earn:ozon:main:C:offer:bf" not in got
    other = program(offer(multiplier=3, conditions=[{"field": "marketplace", "op": "ne", "value": "ozon"}]))
    assert earned(other, fact("A", at)) == {"earn:ozon:main:A:rate": 50}


def test_multipliers_multiply_and_bonuses_are_lots_of_their_own():
    s = program(offer("x2", multiplier=2), offer("x1.5", multiplier="1.5", bonus_points=10),
                offer("late", starts=T0 + 30 * DAY, ends=T0 + 40 * DAY, bonus_points=99))
    got = earned(s, fact("A", T0 + 15 * DAY, total="1001"))
    assert got == {"earn:ozon:main:A:rate": 150, "earn:ozon:main:A:offer:x1.5": 10}  # 1001 * 0.15, rounded down


def test_segment_only_offers_apply_to_the_segment_the_member_was_in_before_the_order():
    wide = {"starts": T0, "ends": T0 + 400 * DAY}
    s = program(offer("winback", bonus_points=70, segments=["at_risk", "sleeping"], **wide),
                offer("hello", bonus_points=10, segments=["new"], **wide))
    # Every 10 days, then a 75-day gap (> 2 x the usual 10 days, < 90: at risk), then 130 days (sleeping).
    days = [0, 10, 20, 95, 100, 230]
    got = earned(s, *(fact(f"A{d}", T0 + d * DAY) for d in days), now=T0 + 300 * DAY)
    bonuses = {k.split(":")[3]: k.rsplit(":", 1)[1] for k in got if ":offer:" in k}
    # A0 is the first order (new); A10, A20 come within 30 days of it (still new); A95 after a gap
    # (at risk); A100 is active again; A230 after 130 days (sleeping).
    assert bonuses == {"A0": "hello", "A10": "hello", "A20": "hello", "A95": "winback", "A230": "winback"}


def test_a_segment_offer_ignores_cancelled_orders_and_never_sees_later_ones():
    wide = {"starts": T0, "ends": T0 + 400 * DAY}
    s = program(offer("winback", bonus_points=70, segments=["sleeping"], **wide))
    cancelled_in_between = fact("C", T0 + 50 * DAY, status="cancelled")
    got = earned(s, fact("A", T0), cancelled_in_between, fact("B", T0 + 100 * DAY), fact("D", T0 + 101 * DAY),
                 now=T0 + 300 * DAY)
    assert [k for k in got if ":offer:" in k] == ["earn:ozon:main:B:offer:winback"]


def test_sku_conditions_need_the_lines():
    s = program(offer(bonus_points=10, conditions=[{"field": "sku", "op": "eq", "value": "S1"}]))
    at = T0 + 15 * DAY
    got = earned(s, fact("A", at), fact("B", at + DAY, skus=("S0", "S1")), fact("C", at + 2 * DAY, skus=("S0",)))
    assert [k for k in got if ":offer:" in k] == ["earn:ozon:main:B:offer:bf"]


def test_long_offer_names_fit_the_rule_column():
    s = program(offer("n" * 64, bonus_points=5))
    [o] = s.offers
    assert len(offer_rule(o)) <= 64 and offer_rule(o).startswith("offer:")
    assert f"earn:ozon:main:A:{offer_rule(o)}" in earned(s, fact("A", T0 + 15 * DAY))


# -- through the ledger -----------------------------------------------------------------------------

def order(oid: str, status: OrderStatus = OrderStatus.DELIVERED, *, day: int = 15, total: str = "1000",
          skus: tuple[str, ...] = (), updated_day: int | None = None, buyer: str = "b1") -> OrderRecord:
    created = T0 + day * DAY
    lines = tuple(OrderLine(sku=sku, offer_id=f"of-{sku}", name=None, quantity=1, price=Decimal(total)) for sku in skus)
    changed = T0 + (updated_day if updated_day is not None else day + 1) * DAY
    return OrderRecord(marketplace="ozon", account="main", order_id=oid, created_at=created,
                       updated_at=changed, status_changed_at=changed, status=status,
                       platform_status=status.value, fulfilment="fbs", currency="RUB", total=Decimal(total),
                       lines=lines, buyer_key=buyer)


def write(store: Store, *orders: OrderRecord) -> None:
    store.write_page(KEY, PageWrite(orders=list(orders)), now=T0)


def test_offer_lots_through_the_ledger_and_their_reversal_on_cancel(store: Store):
    s = program(offer(multiplier=2, bonus_points=25,
                      conditions=[{"field": "offer_id", "op": "in", "value": ["of-S1", "of-S2"]}]))
    write(store, order("A1", OrderStatus.IN_DELIVERY, skus=("S1",)), order("A2", skus=("S9",), day=16))
    run_once(store, s, T0 + 19 * DAY)
    amounts = {r["idempotency_key"]: r["amount"] for r in entries_of(store)}
    assert amounts == {"earn:ozon:main:A1:rate": 100, "earn:ozon:main:A1:offer:bf": 25,
                       "earn:ozon:main:A2:rate": 50}
    write(store, order("A1", OrderStatus.CANCELLED, skus=("S1",), updated_day=19))
    later = s.model_copy(update={"offers": ()})  # the offer is over: recorded amounts still win
    run_once(store, later, T0 + 20 * DAY)
    rows = {r["idempotency_key"]: r for r in entries_of(store)}
    assert rows["reverse:ozon:main:A1:offer:bf#1"]["amount"] == -25
    assert rows["reverse:ozon:main:A1:rate#1"]["amount"] == -100
    assert rows["earn:ozon:main:A1:offer:bf"]["remaining"] == 0
    b = balances(store, MEMBER, NOW)
    assert b.lifetime == 50 and b.debt == 0 and b.total == sum(r["amount"] for r in rows.values())
    assert run_once(store, later, T0 + 21 * DAY).inserted == 0


def test_per_member_budget_cuts_the_last_lot_and_then_grants_nothing(store: Store):
    s = program(offer(bonus_points=40), budget={"per_member_points": 170}, welcome={"points": 30})
    write(store, order("A1", day=15))  # rate 50 + welcome 30 + bonus 40 = 120
    run_once(store, s, T0 + 18 * DAY)
    write(store, order("A2", day=16), order("A3", day=17), order("B1", day=16, buyer="b2"))
    run_once(store, s, T0 + 30 * DAY)  # A2: rate 50 fits (170), its bonus does not; A3: nothing
    mine = {r["idempotency_key"]: r["amount"] for r in entries_of(store) if r["buyer_key"] == "b1"}
    assert mine == {"earn:ozon:main:A1:rate": 50, "earn:ozon:main:A1:welcome": 30, "earn:ozon:main:A1:offer:bf": 40,
                    "earn:ozon:main:A2:rate": 50}
    assert sum(r["amount"] for r in entries_of(store) if r["buyer_key"] == "b2") == 120  # a budget each

    facts = [fact("A1", T0 + 15 * DAY), fact("A2", T0 + 16 * DAY), fact("A3", T0 + 17 * DAY)]
    replay = {e.idempotency_key: e.amount for e in member_entries(facts, s, {}, NOW)}
    assert replay == mine  # incremental equals replay
    tight = program(budget={"per_member_points": 75})
    assert earned(tight, *facts) == {"earn:ozon:main:A1:rate": 50, "earn:ozon:main:A2:rate": 25}


def test_reversals_do_not_give_budget_back():
    s = program(budget={"per_member_points": 60})
    recorded = {e.idempotency_key: e for e in member_entries([fact("A1", T0, status="delivered")], s, {}, NOW)}
    later = member_entries([fact("A1", T0, status="returned"), fact("A2", T0 + DAY)], s, recorded, NOW)
    got = {e.idempotency_key: e.amount for e in later}
    assert got == {"earn:ozon:main:A1:rate": 50, "reverse:ozon:main:A1:rate#1": -50,
                   "earn:ozon:main:A2:rate": 10}
    # A rebuild over the final orders never granted A1, so A2 gets 50 (docs/loyalty-rules.md §9).
    assert earned(s, fact("A1", T0, status="returned"), fact("A2", T0 + DAY)) == {"earn:ozon:main:A2:rate": 50}


def test_total_budget_is_granted_in_order_placed_across_members_and_cut_at_the_edge(store: Store):
    s = program(budget={"total_points": 120})
    write(store, order("A1", day=15), order("B1", day=16, buyer="b2"))
    run_once(store, s, T0 + 18 * DAY + timedelta(hours=12))  # A1 and B1 settled: 50 + 50
    write(store, order("A2", day=17), order("B2", day=17, buyer="b2", total="2000"), order("A3", day=18))
    run_once(store, s, NOW)  # A2 (17th, "A2" < "B2") gets the 20 left; B2 and A3 nothing
    live = {r["idempotency_key"]: r["amount"] for r in entries_of(store)}
    assert live == {"earn:ozon:main:A1:rate": 50, "earn:ozon:main:B1:rate": 50, "earn:ozon:main:A2:rate": 20}
    write(store, order("A4", day=40))
    assert run_once(store, s, NOW + 10 * DAY).inserted == 0  # spent: later orders earn nothing


def test_total_budget_live_runs_equal_one_replay_and_a_rerun_changes_nothing(store: Store, tmp_path):
    s = program(budget={"total_points": 333}, welcome={"points": 30})
    orders = [order(f"{b}{d}", day=d, buyer=b, total=str(500 + 37 * d)) for d in range(15, 30) for b in ("b1", "b2")]
    for d in range(15, 30):  # live: a run every day
        write(store, *(o for o in orders if o.created_at < T0 + (d + 1) * DAY))
        run_once(store, s, T0 + (d + 3) * DAY)
    engine = connect(f"sqlite:///{tmp_path / 'replay.db'}")
    migrate(engine)
    replay = Store(engine)
    write(replay, *orders)
    run_once(replay, s, T0 + 32 * DAY)
    assert sorted(amounts(replay)) == sorted(amounts(store))
    engine.dispose()
    assert sum(amount for _, amount in amounts(store)) == 333
    assert run_once(store, s, NOW).inserted == 0


def amounts(store: Store) -> list[tuple[str, Decimal]]:
    return [(r["idempotency_key"], r["amount"]) for r in entries_of(store)]
