"""The reference model against the paper: docs/loyalty-rules.md's worked examples and hand-worked cases.

Every expected number was computed on paper from the page; the arithmetic is in the comment beside
it. These test the MODEL (tests/loyalty/reference_model.py), which the property tests then compare
with the engine. Readings of ambiguous passages are named Qn (tests/loyalty/reference_readings.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.loyalty.reference_model import RefResult, compute, held_tier
from tests.loyalty.reference_types import (
    RefBudget,
    RefCondition,
    RefEveryNth,
    RefExpiry,
    RefMarketplace,
    RefOffer,
    RefOrder,
    RefRules,
    RefSegmentThresholds,
    RefSpend,
    RefTier,
    RefTierPolicy,
)

D = Decimal
DAY = timedelta(days=1)
B1 = ("ozon", "main", "b1")
NEVER_EXPIRE = RefExpiry("never")


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def order(oid: str, created: datetime, *, status: str = "delivered", changed: datetime | None = None,
          total: str = "1000", returned: str = "0", buyer: str = "b1", mp: str = "ozon",
          fulfilment: str = "fbs", skus: tuple[str, ...] = (), delivered: datetime | None = None) -> RefOrder:
    """An order; a delivered one is delivered a day after creation unless `changed` says otherwise."""
    if changed is None:
        changed = created + DAY if status != "created" else created
    return RefOrder(mp, "main", oid, buyer, created, status, changed, D(total), D(returned), fulfilment,
                    "RUB", skus, (), delivered)


def lot(result: RefResult, oid: str, rule: str, member=B1):
    return result.members[member].lots[(oid, rule)]


def figures(result: RefResult, member=B1) -> tuple:
    b = result.members[member].balances
    return (b.pending, b.available, b.expired, b.debt, b.lifetime)


# -- §5 worked example: welcome -------------------------------------------------------------------------

WELCOME = RefRules(earn_rate=D(0), welcome_points=D(100), expiry=NEVER_EXPIRE)


def test_section5_welcome_moves_to_the_next_counted_order_once():
    a = order("A", at(3, 1, 10), status="cancelled", changed=at(3, 20))
    b, c = order("B", at(3, 5, 10)), order("C", at(3, 9, 10))
    result = compute([a, b, c], [], WELCOME, at(3, 25))
    # A held it (first counted order with every void counted again), taken back 20 March: owed 100.
    assert (lot(result, "A", "welcome").granted, lot(result, "A", "welcome").owed) == (100, 100)
    # B now holds it: 100 kept. C holds nothing.
    assert lot(result, "B", "welcome").kept == 100
    assert ("C", "welcome") not in result.members[B1].lots
    # "The member has 100 of welcome in all": lifetime = 100 + 100 − 100 = 100.
    # B delivered 6 March + 14 days = 20 March available; at 25 March: available 100.
    assert figures(result) == (0, 100, 0, 0, 100)


def test_section5_welcome_then_b_returned_goes_to_c():
    a = order("A", at(3, 1, 10), status="cancelled", changed=at(3, 20))
    b = order("B", at(3, 5, 10), status="returned", changed=at(4, 2), delivered=at(3, 6, 10))
    c = order("C", at(3, 9, 10))
    result = compute([a, b, c], [], WELCOME, at(4, 10))
    lots = result.members[B1].lots
    assert (lots[("A", "welcome")].granted, lots[("A", "welcome")].owed) == (100, 100)
    # Q4: B held it between the two voids (20 March to 2 April): granted 100, available 20 March
    # (delivered 6 March + 14 days), taken back whole on 2 April from its own remaining.
    assert (lots[("B", "welcome")].granted, lots[("B", "welcome")].owed, lots[("B", "welcome")].kept) == (100, 100, 0)
    assert (lots[("C", "welcome")].granted, lots[("C", "welcome")].kept) == (100, 100)
    # C delivered 10 March + 14 = 24 March available. lifetime 100 + 100 + 100 − 100 − 100 = 100.
    assert figures(result) == (0, 100, 0, 0, 100)


# -- §5 worked example: every 3rd order ------------------------------------------------------------------

EVERY_3RD = RefRules(earn_rate=D(0), every_nth=RefEveryNth(3, D(50), 365 * DAY), expiry=NEVER_EXPIRE)


def seven_orders(first_cancelled: bool) -> list[RefOrder]:
    orders = [order(str(i), at(5, i, 10)) for i in range(1, 8)]
    if first_cancelled:
        orders[0] = order("1", at(5, 1, 10), status="cancelled", changed=at(6, 1))
    return orders


def test_section5_every_third_before_the_cancellation():
    result = compute(seven_orders(False), [], EVERY_3RD, at(5, 31))
    lots = result.members[B1].lots
    # Sequence 1..7 in one 365-day period: positions 3 and 6 hold.
    assert sorted(oid for oid, rule in lots if rule == "every_nth") == ["3", "6"]
    assert figures(result)[4] == 100  # 2 × 50


def test_section5_every_third_after_order_1_is_cancelled():
    result = compute(seven_orders(True), [], EVERY_3RD, at(6, 10))
    lots = result.members[B1].lots
    # Sequence 2..7: positions 3 and 6 are orders 4 and 7. Orders 3 and 6 are taken back on 1 June
    # (the void after which they stopped holding: order 1's, 1 June), from their own remaining: owed 50.
    for oid in ("3", "6"):
        assert (lots[(oid, "every_nth")].granted, lots[(oid, "every_nth")].owed) == (50, 50)
    for oid in ("4", "7"):
        assert (lots[(oid, "every_nth")].granted, lots[(oid, "every_nth")].kept) == (50, 50)
    assert sum(x.kept for x in lots.values()) == 100  # two rewards in all, before and after
    # Orders 2..7 delivered 3..8 May + 14 days: all available by 22 May. lifetime 200 − 100 = 100.
    assert figures(result) == (0, 100, 0, 0, 100)


# -- §7 worked example: expiry, spend, return --------------------------------------------------------------

EXPIRY_30 = RefRules(earn_rate=D("0.1"), return_window=14 * DAY, expiry=RefExpiry("after_days", 30))
SPEND_100 = RefSpend(B1, D(100), at(3, 31, 13), "code-1")


def test_section7_expired_points_are_not_spent():
    # O1 total 1000 × 0.1 = A 100; delivered 15 Feb 12:00 + 14 days = available 1 March 12:00;
    # + 30 days = expires 31 March 12:00.
    o1 = order("O1", at(2, 10, 12), changed=at(2, 15, 12))
    result = compute([o1], [SPEND_100], EXPIRY_30, at(3, 31, 14))
    assert (lot(result, "O1", "rate").available_from, lot(result, "O1", "rate").expires_at) == (
        at(3, 1, 12), at(3, 31, 12))
    # The spend at 13:00 finds L1 expired an hour before: debt 100. expired 100, lifetime 100.
    assert figures(result) == (0, 0, 100, 100, 100)


def test_section7_a_return_after_expiry_is_forgiven():
    # Q2: the final order set says "returned on 1 April"; when it was delivered (15 Feb) comes from
    # the history (delivered_at), as §7's example needs.
    o1 = order("O1", at(2, 10, 12), status="returned", changed=at(4, 1), delivered=at(2, 15, 12))
    result = compute([o1], [SPEND_100], EXPIRY_30, at(4, 2))
    l1 = lot(result, "O1", "rate")
    # Taking back 100: nothing remaining, 100 expired unused -> forgiven 100, owed 0 (no reverse entry).
    assert (l1.granted, l1.owed, l1.forgiven, l1.kept) == (100, 0, 100, 0)
    # expired 100 lost − 100 forgiven = 0 (taken back, not expired), debt 100 (the spend),
    # lifetime 100 − 100 taken back = 0.
    # Invariant: Σ ledger = 100 − 100 (expire) − 100 (spend) − 100 (reverse) + 100 (forgiven) = −100.
    assert figures(result) == (0, 0, 0, 100, 0)


def test_section7_without_the_delivery_time_a_returned_lot_never_expired():
    # Q2, the other side: from the order's final state alone (returned, 1 April) the lot was never
    # delivered, so never available and never expired: the take-back finds all 100 and it is owed.
    o1 = order("O1", at(2, 10, 12), status="returned", changed=at(4, 1))
    result = compute([o1], [SPEND_100], EXPIRY_30, at(4, 2))
    assert (lot(result, "O1", "rate").owed, lot(result, "O1", "rate").forgiven) == (100, 0)
    assert figures(result) == (0, 0, 0, 100, 0)


# -- §3 tiers across midnights ----------------------------------------------------------------------------

def one_tier(downgrade: str, window_days: int = 30) -> RefRules:
    return RefRules(earn_rate=D("0.05"), expiry=NEVER_EXPIRE,
                    tiers=(RefTier("silver", D("0.10"), min_spend=D(1000)),),
                    tier_policy=RefTierPolicy("spend", window_days * DAY, downgrade))


TIER_ORDERS = [order("o1", at(1, 1, 10), total="1000"), order("o2", at(1, 5, 10), total="100"),
               order("o3", at(2, 1, 12), total="1000")]


def test_tier_recompute_drops_at_the_midnight_the_window_leaves():
    rules = one_tier("recompute")
    result = compute(TIER_ORDERS, [], rules, at(2, 10))
    # o1: no tier at its own creation (the basis excludes it) -> 1000 × 0.05 = 50.
    assert lot(result, "o1", "rate").granted == 50
    # o2: 2 Jan 00:00 basis 1000 -> silver -> 100 × 0.10 = 10.
    assert lot(result, "o2", "rate").granted == 10
    # 31 Jan 00:00: window from 1 Jan 00:00 still holds o1 (1100) -> silver;
    # 1 Feb 00:00: window from 2 Jan 00:00: only o2 (100) -> none.
    assert held_tier(TIER_ORDERS, rules, at(1, 31, 12)) == "silver"
    assert held_tier(TIER_ORDERS, rules, at(2, 1, 6)) is None
    # o3 at 1 Feb 12:00: none -> 1000 × 0.05 = 50.
    assert lot(result, "o3", "rate").granted == 50
    # 2 Feb 00:00: o2 100 + o3 1000 = 1100 -> silver, and at 10 Feb o3 alone is 1000 -> silver.
    assert result.members[B1].tier == "silver"


def test_tier_never_keeps_it():
    result = compute(TIER_ORDERS, [], one_tier("never"), at(2, 10))
    # Silver from 2 Jan is never lowered: o3 earns 1000 × 0.10 = 100.
    assert lot(result, "o3", "rate").granted == 100
    assert held_tier(TIER_ORDERS, one_tier("never"), at(2, 1, 6)) == "silver"


THREE_TIERS = RefRules(earn_rate=D("0.05"), expiry=NEVER_EXPIRE,
                       tier_policy=RefTierPolicy("spend", 30 * DAY, "one_down"),
                       tiers=(RefTier("bronze", D("0.06"), min_spend=D(500)),
                              RefTier("silver", D("0.08"), min_spend=D(1000)),
                              RefTier("gold", D("0.10"), min_spend=D(2000))))


def test_tier_one_down_steps_once_per_midnight_and_orders_come_after_their_midnight():
    orders = [order("o1", at(1, 1, 10), total="2000"), order("o2", at(2, 2), total="100"),
              order("o3", at(2, 3, 12), total="100")]
    result = compute(orders, [], THREE_TIERS, at(2, 6, 12))
    # o1: none at creation -> 2000 × 0.05 = 100. Gold from 2 Jan 00:00 to 31 Jan (window from 1 Jan 00:00).
    assert lot(result, "o1", "rate").granted == 100
    assert held_tier(orders, THREE_TIERS, at(1, 31, 23)) == "gold"
    # 1 Feb 00:00: q none, gold -> silver. 2 Feb 00:00: silver -> bronze, THEN o2 (created at that
    # midnight) is evaluated: q(2 Feb) none, held bronze -> 100 × 0.06 = 6 (before the midnight: 8).
    assert held_tier(orders, THREE_TIERS, at(2, 1, 12)) == "silver"
    assert lot(result, "o2", "rate").granted == 6
    # 3 Feb 00:00: basis o2 100 -> none; bronze -> none. o3: 100 × 0.05 = 5.
    assert lot(result, "o3", "rate").granted == 5
    assert result.members[B1].tier is None  # 4 to 6 Feb: basis 200, none


def test_tier_basis_counts_kept_spend_and_a_later_return_still_counts_before_it():
    rules = one_tier("recompute", window_days=60)
    orders = [
        order("o1", at(1, 1, 10), status="partially_returned", changed=at(1, 20), total="1200", returned="400",
              delivered=at(1, 2, 10)),
        order("o2", at(1, 10, 10), total="100"),
        order("o3", at(1, 25, 10), total="100", status="returned", changed=at(3, 1), delivered=at(1, 27)),
        order("o4", at(1, 27, 10), total="100"),
    ]
    result = compute(orders, [], rules, at(3, 10))
    # o2: 2 Jan basis 1200 -> silver -> 100 × 0.10 = 10.
    assert lot(result, "o2", "rate").granted == 10
    # o3: 21 Jan 00:00 basis o1 kept 800 + o2 100 = 900 -> none -> 100 × 0.05 = 5.
    assert lot(result, "o3", "rate").granted == 5
    # o4: 26 Jan 00:00 basis 800 + 100 + o3 100 (returned only on 1 March) = 1000 -> silver -> 10.
    assert lot(result, "o4", "rate").granted == 10
    # o1: A = 1200 × 0.05 = 60; D = floor(60 × 800 / 1200) = 40; owed 20.
    assert (lot(result, "o1", "rate").kept, lot(result, "o1", "rate").owed) == (40, 20)
    # now 10 March, window from 9 Jan: o2 100 + o4 100 (o3 void since 1 March) = 200 -> none.
    assert result.members[B1].tier is None


def test_tier_by_order_count():
    rules = RefRules(earn_rate=D("0.05"), expiry=NEVER_EXPIRE, tier_policy=RefTierPolicy("orders", 30 * DAY, "never"),
                     tiers=(RefTier("regular", D("0.08"), min_orders=2),))
    orders = [order("o1", at(1, 1, 10)), order("o2", at(1, 1, 20)), order("o3", at(1, 2, 10)),
              order("o4", at(1, 2, 11))]
    result = compute(orders, [], rules, at(1, 10))
    # o2 at 1 Jan 20:00: q counts o1 only (1 order) -> none -> 50. o3: 2 Jan 00:00 counts 2 -> regular -> 80.
    assert [lot(result, o, "rate").granted for o in ("o1", "o2", "o3", "o4")] == [50, 50, 80, 80]


def test_an_unsettled_order_moves_the_held_tier_but_earns_nothing():
    rules = one_tier("recompute")
    o1 = order("o1", at(1, 1, 10), total="1500", status="in_delivery")
    result = compute([o1], [], rules, at(1, 2, 22))
    # Created 36 h before now (< 2 days): no lot. 2 Jan 00:00: basis 1500 -> silver.
    assert result.members[B1].lots == {}
    assert result.members[B1].tier == "silver"


# -- §4 partial returns, offers, segments ---------------------------------------------------------------

def test_partial_return_keeps_only_whole_points_of_the_kept_goods():
    rules = RefRules(earn_rate=D("0.05"), welcome_points=D(100), expiry=NEVER_EXPIRE)
    o1 = order("o1", at(1, 1, 10), status="partially_returned", total="999", returned="333",
               changed=at(1, 20), delivered=at(1, 2))
    o2 = order("o2", at(1, 3, 10), status="partially_returned", total="100", returned="150",
               changed=at(1, 20), delivered=at(1, 4))
    result = compute([o1, o2], [], rules, at(2, 1))
    # o1: A = floor(999 × 0.05 = 49.95) = 49; D = floor(49 × 666 / 999 = 32.67) = 32; owed 17.
    assert (lot(result, "o1", "rate").granted, lot(result, "o1", "rate").kept, lot(result, "o1", "rate").owed) == (
        49, 32, 17)
    # The welcome stays whole on a partial return.
    assert lot(result, "o1", "welcome").kept == 100
    # o2: A = 5; returned more than the total -> kept 0 (Q19) -> D 0, owed 5.
    assert (lot(result, "o2", "rate").kept, lot(result, "o2", "rate").owed) == (0, 5)
    # lifetime 49 + 100 + 5 − 17 − 5 = 132.
    assert figures(result)[4] == 132


def test_offers_multiply_the_rate_and_give_bonus_lots():
    rules = RefRules(earn_rate=D("0.05"), expiry=NEVER_EXPIRE, offers=(
        RefOffer("x2", at(1, 1), at(2, 1), multiplier=D(2),
                 conditions=(RefCondition("fulfilment", "eq", "fbs"),)),
        RefOffer("x1.5", at(1, 1), at(2, 1), multiplier=D("1.5"), bonus_points=D(30),
                 conditions=(RefCondition("total", "ge", 1000),)),
        RefOffer("ended", at(12, 1, year=2025), at(1, 5, 10), multiplier=D(3)),
        RefOffer("fbo", at(1, 1), at(2, 1), bonus_points=D(20), conditions=(RefCondition("fulfilment", "eq", "fbo"),)),
        RefOffer("sku", at(1, 1), at(2, 1), bonus_points=D(10), conditions=(RefCondition("sku", "in", ["A1"]),)),
    ))
    o1 = order("o1", at(1, 5, 10), total="1001", skus=("A1", "B2"))
    o2 = order("o2", at(1, 6, 10), total="999", skus=("C3",))
    result = compute([o1, o2], [], rules, at(1, 20))
    # o1: x2 and x1.5 apply ("ended" ends at its creation instant, Q5): 0.05 × 2 × 1.5 = 0.15;
    # 1001 × 0.15 = 150.15 -> 150. Bonuses: x1.5 30, sku 10 (A1 among its skus, Q6); not fbo.
    lots = result.members[B1].lots
    assert lots[("o1", "rate")].granted == 150
    assert {k: v.granted for k, v in lots.items() if k[0] == "o1" and k[1] != "rate"} == {
        ("o1", "offer:x1.5"): 30, ("o1", "offer:sku"): 10}
    # o2: only x2 (999 < 1000): 999 × 0.10 = 99.9 -> 99; no bonus.
    assert lots[("o2", "rate")].granted == 99
    assert [k for k in lots if k[0] == "o2"] == [("o2", "rate")]


def test_segment_only_offers_look_at_the_segment_at_creation():
    rules = RefRules(earn_rate=D(0), expiry=NEVER_EXPIRE, offers=(
        RefOffer("winback", at(1, 1), at(12, 31), bonus_points=D(40), segments=("sleeping", "at_risk")),
        RefOffer("first", at(1, 1), at(12, 31), bonus_points=D(15), segments=("new",)),
    ))
    orders = [order("o1", at(1, 1, 10)), order("o2", at(1, 10, 10)), order("o3", at(5, 1, 10)),
              order("o4", at(5, 2, 10))]
    result = compute(orders, [], rules, at(6, 1))
    bonuses = sorted(k for k in result.members[B1].lots)
    # o1: no live order before -> new -> "first" 15. o2: first order 9 days back (<= 30) -> new -> 15.
    # o3: last order 10 Jan, 111 days (>= 90 sleeping_after) -> sleeping -> winback 40.
    # o4: last order 1 day back; first 121 days back; visits 1 Jan, 10 Jan, 1 May: intervals 9 d and
    # 111 d, median 60 d, gap 1 d -> not at risk; 3 orders, no value rule -> active: nothing.
    assert bonuses == [("o1", "offer:first"), ("o2", "offer:first"), ("o3", "offer:winback")]


def test_a_first_order_after_a_cancelled_one_is_new_and_a_returned_order_stays_in_the_segment():
    """§4: "cancelled orders do not count, returned ones do" (loyalty/segments.py's docstring)."""
    rules = RefRules(earn_rate=D(0), expiry=NEVER_EXPIRE, offers=(
        RefOffer("first", at(1, 1), at(12, 31), bonus_points=D(15), segments=("new",)),))
    orders = [order("o1", at(1, 1, 10), status="cancelled", changed=at(1, 1, 12)),
              order("o2", at(3, 1, 10), status="returned", changed=at(3, 20), delivered=at(3, 2)),
              order("o3", at(4, 1, 10))]
    result = compute(orders, [], rules, at(5, 1))
    # o2: o1 was cancelled before it -> no order counts -> new -> 15 (taken back with o2's return).
    # o3: o2, returned on 20 March, still counts: first order 31 days before 1 April -> not new.
    lots = result.members[B1].lots
    assert lots[("o2", "offer:first")].owed == 15
    assert ("o3", "offer:first") not in lots


# -- §8 budgets -----------------------------------------------------------------------------------------

def test_per_member_budget_cuts_in_lot_order():
    rules = RefRules(earn_rate=D("0.05"), welcome_points=D(100), expiry=NEVER_EXPIRE,
                     budget=RefBudget(per_member_points=D(120)))
    result = compute([order("o1", at(1, 1, 10)), order("o2", at(1, 2, 10))], [], rules, at(1, 20))
    lots = result.members[B1].lots
    # Lot order: o1 rate 50 (70 left), o1 welcome 100 -> cut to 70 (0 left), o2 rate 50 -> not granted.
    assert (lots[("o1", "rate")].granted, lots[("o1", "welcome")].granted) == (50, 70)
    assert ("o2", "rate") not in lots


def test_total_budget_in_the_global_lot_order_and_taking_back_gives_nothing_back():
    rules = RefRules(earn_rate=D("0.05"), expiry=NEVER_EXPIRE, budget=RefBudget(total_points=D(100)))
    b2 = ("ozon", "main", "b2")
    orders = [order("A", at(1, 1, 10), status="cancelled", changed=at(1, 5)),
              order("B", at(1, 1, 10), total="1600", buyer="b2"),
              order("C", at(1, 2, 10), total="1000")]
    result = compute(orders, [], rules, at(1, 20))
    # Same instant: A before B (order_id). A 50 (50 left, kept although A is cancelled later: Q1),
    # B 1600 × 0.05 = 80 -> cut to 50, C -> nothing left.
    assert lot(result, "A", "rate").granted == 50 and lot(result, "A", "rate").owed == 50
    assert lot(result, "B", "rate", member=b2).granted == 50
    assert ("C", "rate") not in result.members[B1].lots
    assert result.total_granted == 100


# -- §7 spends, debt, forgiveness -----------------------------------------------------------------------

def test_a_spend_past_the_available_points_is_debt_that_the_next_lot_pays():
    rules = RefRules(earn_rate=D("0.05"), return_window=14 * DAY, expiry=NEVER_EXPIRE)
    orders = [order("o1", at(1, 1, 10), changed=at(1, 6)),  # 50, available 20 Jan
              order("o2", at(1, 10, 10), total="800", changed=at(1, 27))]  # 40, available 10 Feb
    spend = RefSpend(B1, D(80), at(1, 25), "code")
    # 25 Jan: 50 from o1, 30 debt. 5 Feb: o2 pending 40. lifetime 90.
    assert figures(compute(orders, [spend], rules, at(2, 5))) == (40, 0, 0, 30, 90)
    # 10 Feb: o2 pays the 30 -> 10 left. Σ ledger 90 − 80 = 10 = 10 − 0.
    assert figures(compute(orders, [spend], rules, at(2, 15))) == (0, 10, 0, 0, 90)


def test_a_return_after_part_of_the_lot_expired_forgives_that_part_and_owes_the_rest():
    rules = RefRules(earn_rate=D("0.05"), return_window=14 * DAY, expiry=RefExpiry("after_days", 10))
    orders = [order("o1", at(1, 1, 10), status="returned", changed=at(2, 1), delivered=at(1, 3)),
              order("o2", at(1, 25, 10), total="600", status="in_delivery", changed=at(1, 26))]
    spend = RefSpend(B1, D(20), at(1, 20), "code")
    result = compute(orders, [spend], rules, at(2, 5))
    # o1 50, available 17 Jan, 20 spent on 20 Jan, 30 expire on 27 Jan. Returned 1 Feb: X = 50,
    # own 0, forgiven min(50, 30) = 30, owed 20: no other lot is available (o2's 600 × 0.05 = 30 is
    # pending), so 20 is debt; o2 pays it when it becomes available (§7 step 4).
    assert (lot(result, "o1", "rate").forgiven, lot(result, "o1", "rate").owed) == (30, 20)
    # pending 30, debt 20, expired 30 lost − 30 forgiven = 0, lifetime 80 − 50 taken back = 30.
    # Σ ledger 80 − 20 (spend) − 30 (expire) − 50 (reverse) + 30 (forgiven) = 10 = 30 − 20.
    assert figures(result) == (30, 0, 0, 20, 30)


def test_a_reward_moved_after_it_expired_is_forgiven():
    rules = RefRules(earn_rate=D(0), every_nth=RefEveryNth(2, D(30), 365 * DAY), return_window=14 * DAY,
                     expiry=RefExpiry("after_days", 10))
    orders = [order("o1", at(1, 1, 10), status="cancelled", changed=at(2, 1)),
              order("o2", at(1, 2, 10), changed=at(1, 3)),  # available 17 Jan, expires 27 Jan
              order("o3", at(2, 3, 10), changed=at(2, 4))]  # available 18 Feb
    result = compute(orders, [], rules, at(2, 10))
    # With o1 counted again o2 holds (position 2); after 1 Feb the sequence is o2, o3: o3 holds.
    # o2's 30 expired unused on 27 Jan; taken back 1 Feb: forgiven 30, owed 0.
    assert (lot(result, "o2", "every_nth").forgiven, lot(result, "o2", "every_nth").owed) == (30, 0)
    # o3 holds 30, pending. expired 30 lost − 30 forgiven = 0, lifetime 30 + 30 − 30 = 30.
    assert figures(result) == (30, 0, 0, 0, 30)


def test_at_one_instant_a_lot_becoming_available_can_be_spent():
    rules = RefRules(earn_rate=D("0.05"), return_window=14 * DAY, expiry=NEVER_EXPIRE)
    o1 = order("o1", at(1, 1, 10), changed=at(1, 6))  # 50, available 20 Jan 00:00
    result = compute([o1], [RefSpend(B1, D(30), at(1, 20), "code")], rules, at(1, 20))
    # Availabilities come before spends at one instant: 30 from o1, no debt; 20 left.
    assert figures(result) == (0, 20, 0, 0, 50)


# -- §6 availability per marketplace, end_of_month ------------------------------------------------------

def test_return_window_and_earn_rate_per_marketplace():
    rules = RefRules(earn_rate=D("0.05"), return_window=14 * DAY, expiry=NEVER_EXPIRE,
                     marketplaces={"ym": RefMarketplace(earn_rate=D("0.02"), return_window=3 * DAY)})
    ym = ("ym", "main", "b1")
    orders = [order("o1", at(1, 1, 10), changed=at(1, 5, 10)), order("o2", at(1, 1, 10), mp="ym", changed=at(1, 5, 10))]
    result = compute(orders, [], rules, at(1, 10))
    # ozon: 1000 × 0.05 = 50, available 5 Jan 10:00 + 14 d = 19 Jan: pending.
    assert figures(result, B1)[:2] == (50, 0)
    # ym: 1000 × 0.02 = 20, available 5 Jan 10:00 + 3 d = 8 Jan 10:00: available at 10 Jan.
    assert figures(result, ym)[:2] == (0, 20)


def test_end_of_month_expiry():
    rules = RefRules(earn_rate=D("0.05"), return_window=14 * DAY, expiry=RefExpiry("end_of_month", 30))
    o1 = order("o1", at(12, 20, 10, year=2025), changed=at(12, 27, 12, year=2025))
    # Available 27 Dec 12:00 + 14 d = 10 Jan 12:00; + 30 d = 9 Feb 12:00 -> expires 1 March 00:00.
    assert lot(compute([o1], [], rules, at(2, 28, 23)), "o1", "rate").expires_at == at(3, 1)
    assert figures(compute([o1], [], rules, at(2, 28, 23))) == (0, 50, 0, 0, 50)
    # At 1 March 00:00 the expiry has happened (events at now included, Q9).
    assert figures(compute([o1], [], rules, at(3, 1))) == (0, 0, 50, 0, 50)
    # Available 30 Jan 00:00 + 30 d = 1 March 00:00 exactly -> the month after March: 1 April (Q11).
    o2 = order("o2", at(1, 10, 10), changed=at(1, 16))
    assert lot(compute([o2], [], rules, at(3, 5)), "o2", "rate").expires_at == at(4, 1)


def test_every_nth_periods_restart_at_the_first_order_after_the_end():
    rules = RefRules(earn_rate=D(0), every_nth=RefEveryNth(2, D(10), 10 * DAY), expiry=NEVER_EXPIRE)
    days = (1, 5, 12, 14, 15)
    orders = [order(f"d{d}", at(1, d, 10)) for d in days]
    result = compute(orders, [], rules, at(2, 1))
    # Period [1 Jan 10:00, 11 Jan 10:00): d1, d5 -> d5 holds. Next starts at d12: [12 Jan, 22 Jan):
    # d12, d14, d15 -> d14 holds.
    assert sorted(oid for oid, rule in result.members[B1].lots) == ["d14", "d5"]


# -- the adapter ----------------------------------------------------------------------------------------

def test_the_adapter_copies_every_field_of_the_settings():
    from loyalty.rules import LoyaltySettings
    from tests.loyalty.reference_adapter import rules_from_settings

    settings = LoyaltySettings.model_validate({
        "enabled": True, "earn_rate": "0.04",
        "tiers": [{"name": "base", "min_orders": 0, "earn_rate": "0.03"}, {"name": "vip", "min_orders": 5,
                                                                           "earn_rate": "0.07"}],
        "tier_policy": {"basis": "orders", "window": timedelta(days=90), "downgrade": "never"},
        "return_window": timedelta(days=10), "expiry": {"policy": "end_of_month", "days": 60},
        "welcome": {"points": 100}, "every_nth": {"n": 4, "points": 70, "period": timedelta(days=120)},
        "offers": [{"name": "bf", "starts": at(11, 27), "ends": at(11, 30), "multiplier": 2, "bonus_points": 5,
                    "segments": ["at_risk"], "conditions": [{"field": "sku", "op": "in", "value": ["S1"]}]}],
        "budget": {"total_points": 9000, "per_member_points": 800},
        "segments": {"new_within": timedelta(days=20), "at_risk_gap_factor": 3.0,
                     "sleeping_after": timedelta(days=60), "lost_after": timedelta(days=200)},
        "marketplaces": {"ym": {"return_window": timedelta(days=3), "earn_rate": "0.02"}},
    })
    assert rules_from_settings(settings) == RefRules(
        earn_rate=D("0.04"),
        tiers=(RefTier("base", D("0.03"), min_orders=0), RefTier("vip", D("0.07"), min_orders=5)),
        tier_policy=RefTierPolicy("orders", 90 * DAY, "never"), return_window=10 * DAY,
        expiry=RefExpiry("end_of_month", 60), welcome_points=D(100), every_nth=RefEveryNth(4, D(70), 120 * DAY),
        offers=(RefOffer("bf", at(11, 27), at(11, 30), D(2), D(5), ("at_risk",),
                         (RefCondition("sku", "in", ["S1"]),)),),
        budget=RefBudget(D(9000), D(800)),
        segments=RefSegmentThresholds(20 * DAY, 3.0, 60 * DAY, 200 * DAY),
        marketplaces={"ym": RefMarketplace(D("0.02"), 3 * DAY)},
    )
