"""The loyalty rules on paper (docs/loyalty-rules.md), computed again the slow, literal way.

This is the tests' second opinion on the engine. It reads the order history, the spends, the rules
and `now`, and says what every member should have: the tier held at `now`, each lot's granted
amount `A` with what was taken back (owed, forgiven), and the balances. It shares no code and no
understanding with `loyalty/`: it imports only the standard library and was written from the page
alone. Where the page is ambiguous or contradicts itself, the reading taken is in `reference_readings`
(one named place, Q1, Q2, ... as in the report to the lead), never buried in the code here.

It is deliberately slow and obvious:
- the held tier is found by walking EVERY midnight from the member's first order to the moment asked,
  and it is walked again from the start for each order that needs it;
- the welcome and every-Nth holders are recomputed from the whole sequence, once with every void
  order counted again and once without;
- the balances come from building the full list of events (§7) and replaying it in time order.

Money is `Decimal`; exact fractions (`Fraction`) where the page says "rounded down".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from tests.loyalty import reference_readings as readings
from tests.loyalty.reference_fold import FoldLot, RefBalances, fold
from tests.loyalty.reference_readings import voided_at
from tests.loyalty.reference_types import RefOrder, RefRules, RefSpend, is_void, member_of, points

__all__ = ["RefLot", "RefMemberResult", "RefResult", "compute", "held_tier", "segment_at"]

SETTLE_DELAY = timedelta(days=2)  # §2 "settled: created_at < now − 2 days"
DAY = timedelta(days=1)
RULE_RANK = {"rate": 0, "welcome": 1, "every_nth": 2}  # §8: rate, welcome, every-Nth, then bonuses by offer name


@dataclass(frozen=True)
class RefLot:
    """One lot as the paper rules see it at `now`: what was granted and what was taken back."""

    order_id: str
    rule: str  # "rate", "welcome", "every_nth", "offer:<name>"
    granted: Decimal  # A, after the budgets
    owed: Decimal  # what was taken back and is owed (the reverse entry is −owed)
    forgiven: Decimal  # what was taken back but had expired unused
    kept: Decimal  # D
    available_from: datetime | None
    expires_at: datetime | None


@dataclass
class RefMemberResult:
    member: tuple[str, str, str]
    tier: str | None  # h(now)
    lots: dict[tuple[str, str], RefLot] = field(default_factory=dict)  # (order_id, rule) -> lot
    balances: RefBalances = field(default_factory=RefBalances)


@dataclass
class RefResult:
    members: dict[tuple[str, str, str], RefMemberResult]
    total_granted: Decimal


# -- §2 words ------------------------------------------------------------------------------------------

def is_settled(order: RefOrder, now: datetime) -> bool:
    return order.created_at < now - SETTLE_DELAY


def live_at(order: RefOrder, t: datetime) -> bool:
    """§2: created before t and not void at t."""
    return order.created_at < t and voided_at(order) > t


def kept_at(order: RefOrder, t: datetime) -> Decimal:
    """§2: total − returned_total (never below 0) once partially returned, otherwise total."""
    if order.status == "partially_returned" and readings.status_time(order) <= t:
        return max(Decimal(0), order.total - order.returned_total)
    return order.total


def sequence_key(order: RefOrder) -> tuple:
    return (order.created_at, order.order_id)


# -- §3 tiers ------------------------------------------------------------------------------------------

NO_TIER = -1  # "none", below every tier


def qualifying_tier(orders: Sequence[RefOrder], rules: RefRules, t: datetime) -> int:
    """q(t): index of the highest tier whose threshold the basis at t reaches, or NO_TIER."""
    window = rules.tier_policy.window
    basis_orders = [o for o in orders if live_at(o, t) and t - window <= o.created_at < t]
    if rules.tier_policy.basis == "spend":
        basis: Decimal | int = sum((kept_at(o, t) for o in basis_orders), Decimal(0))
    else:
        basis = len(basis_orders)
    best = NO_TIER
    for index, tier in enumerate(rules.tiers):
        threshold = tier.min_spend if rules.tier_policy.basis == "spend" else tier.min_orders
        if threshold is not None and basis >= threshold:
            best = index
    return best


def after_midnight(held: int, qualifying: int, policy: str) -> int:
    """§3: the downgrade policy, applied once at a midnight."""
    if policy == "recompute":
        return qualifying
    if policy == "never":
        return max(held, qualifying)
    if policy == "one_down":
        return qualifying if qualifying >= held else held - 1
    raise ValueError(f"unknown downgrade policy {policy!r}")


def held_tier_index(orders: Sequence[RefOrder], rules: RefRules, t: datetime) -> int:
    """h(t): walk every moment from the member's first order to t, midnights before creations."""
    creations = sorted(o.created_at for o in orders if readings.creation_moves_tier(o) and o.created_at <= t)
    if not creations:
        return NO_TIER
    first = creations[0]
    midnight = first.replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight < first:
        midnight += DAY
    moments: list[tuple[datetime, int]] = []  # (when, 0 midnight / 1 creation): a midnight goes first
    while midnight <= t:
        moments.append((midnight, 0))
        midnight += DAY
    moments.extend((c, 1) for c in creations)
    held = NO_TIER
    for when, kind in sorted(moments):
        q = qualifying_tier(orders, rules, when)
        held = after_midnight(held, q, rules.tier_policy.downgrade) if kind == 0 else max(held, q)
    return held


def held_tier(orders: Sequence[RefOrder], rules: RefRules, t: datetime) -> str | None:
    index = held_tier_index(orders, rules, t)
    return None if index == NO_TIER else rules.tiers[index].name


# -- §4 segments (the definitions of loyalty/segments.py's docstring, reimplemented) --------------------

def segment_at(orders: Sequence[RefOrder], rules: RefRules, t: datetime) -> str:
    """The member's segment at t (§4): from the orders created before t, each with its status as of t;
    segments.py's docstring: "Cancelled orders don't count; returned ones do (the buyer did buy)".
    A member without such an order is `new`."""
    live = sorted((o for o in orders if o.created_at < t and not _cancelled_by(o, t)), key=sequence_key)
    if not live:
        return "new"
    th = rules.segments
    first, last = live[0].created_at, live[-1].created_at
    if t - first <= th.new_within:
        return "new"
    if t - last >= th.lost_after:
        return "lost"
    if t - last >= th.sleeping_after:
        return "sleeping"
    if readings.at_risk_by_gap(live, t, th.at_risk_gap_factor) or _at_risk_by_value(live, t):
        return "at_risk"
    return "active"


def _cancelled_by(order: RefOrder, t: datetime) -> bool:
    return order.status == "cancelled" and voided_at(order) <= t


def _at_risk_by_value(live: Sequence[RefOrder], t: datetime) -> bool:
    """The mean of the last 3 orders' kept-at-t totals is below half the mean of the orders before
    them (4+ orders; §4 "each with its status as of then")."""
    if len(live) < 4:
        return False
    last3, before = live[-3:], live[:-3]
    mean_last = sum((kept_at(o, t) for o in last3), Decimal(0)) / 3
    mean_before = sum((kept_at(o, t) for o in before), Decimal(0)) / len(before)
    return mean_last < mean_before / 2


# -- §4 offers -----------------------------------------------------------------------------------------

def offers_applying(order: RefOrder, mine: Sequence[RefOrder], rules: RefRules) -> list:
    out = []
    for offer in rules.offers:
        if not readings.offer_active(offer, order.created_at):
            continue
        if not all(readings.condition_holds(c, order) for c in offer.conditions):
            continue
        if offer.segments and segment_at(mine, rules, order.created_at) not in offer.segments:
            continue
        out.append(offer)
    return out


def rate_of(order: RefOrder, mine: Sequence[RefOrder], rules: RefRules) -> Decimal:
    """§4: the held tier's rate at creation, else the marketplace's override, else the program's."""
    tier = held_tier_index(mine, rules, order.created_at)
    if tier != NO_TIER:
        rate = rules.tiers[tier].earn_rate
    else:
        override = rules.marketplaces.get(order.marketplace)
        rate = override.earn_rate if override and override.earn_rate is not None else rules.earn_rate
    for offer in offers_applying(order, mine, rules):
        rate *= offer.multiplier
    return rate


# -- §5 welcome and every-Nth holders --------------------------------------------------------------------

def every_nth_holders(sequence: Sequence[RefOrder], n: int, period: timedelta) -> list[RefOrder]:
    """Positions n, 2n, … within each period; a period starts at the first order at or after the last end."""
    holders: list[RefOrder] = []
    i = 0
    while i < len(sequence):
        end = sequence[i].created_at + period
        position = 0
        while i < len(sequence) and sequence[i].created_at < end:
            position += 1
            if position % n == 0:
                holders.append(sequence[i])
            i += 1
    return holders


def welcome_holders(sequence: Sequence[RefOrder]) -> list[RefOrder]:
    return list(sequence[:1])


# -- the lots before budgets -----------------------------------------------------------------------------

@dataclass
class _Wanted:
    """A lot the rules give before the budgets cut it, with when its D fell (if it did)."""

    member: tuple[str, str, str]
    order: RefOrder
    rule: str
    rank: tuple
    amount: Decimal
    granted: Decimal = Decimal(0)

    def global_key(self) -> tuple:  # §8 "(created_at, marketplace, account, order_id, rule rank)"
        o = self.order
        return (o.created_at, o.marketplace, o.account, o.order_id, self.rank)


def _wanted_lots(member, mine: list[RefOrder], rules: RefRules, now: datetime) -> list[_Wanted]:
    settled = sorted((o for o in mine if is_settled(o, now)), key=sequence_key)
    counted = [o for o in settled if not is_void(o)]
    earning = settled if readings.GRANT_LOTS_OF_VOID_ORDERS else counted
    wanted: list[_Wanted] = []
    for order in earning:
        amount = points(order.total, rate_of(order, mine, rules))
        wanted.append(_Wanted(member, order, "rate", (RULE_RANK["rate"], ""), amount))
        for offer in offers_applying(order, mine, rules):
            if offer.bonus_points > 0:
                wanted.append(_Wanted(member, order, f"offer:{offer.name}", (3, offer.name), offer.bonus_points))
    rewards = []
    if rules.welcome_points:
        rewards.append(("welcome", rules.welcome_points, welcome_holders))
    if rules.every_nth is not None:
        nth = rules.every_nth
        rewards.append(("every_nth", nth.points, lambda seq: every_nth_holders(seq, nth.n, nth.period)))
    for rule, reward_points, holders_of in rewards:
        for order in readings.reward_holders(holders_of, settled, counted):
            wanted.append(_Wanted(member, order, rule, (RULE_RANK[rule], ""), reward_points))
    return wanted


def _apply_budgets(wanted: list[_Wanted], rules: RefRules) -> None:
    """§8: both caps, in the global lot order; a lot is cut to what fits; taking back gives nothing back."""
    total_left = rules.budget.total_points
    member_left: dict = defaultdict(lambda: rules.budget.per_member_points)
    for lot in sorted(wanted, key=_Wanted.global_key):
        amount = lot.amount
        if total_left is not None:
            amount = min(amount, total_left)
        if member_left[lot.member] is not None:
            amount = min(amount, member_left[lot.member])
        amount = max(amount, Decimal(0))
        lot.granted = amount
        if total_left is not None:
            total_left -= amount
        if member_left[lot.member] is not None:
            member_left[lot.member] -= amount


# -- §4/§5/§6: D, take-back times and availability of each granted lot ------------------------------------

def _kept_and_taken_back(lot: _Wanted, settled: list[RefOrder], counted: list[RefOrder], rules: RefRules):
    """(D, when D fell below A or None)."""
    order, a = lot.order, lot.granted
    if lot.rule in ("welcome", "every_nth"):
        holders_now = {o.order_id for o in _holders_for(lot.rule, counted, rules)}
        if order.order_id in holders_now:
            return a, None
        return Decimal(0), readings.reward_taken_back_at(
            order, lambda sequence: _holders_for(lot.rule, list(sequence), rules), settled)
    if is_void(order):
        return Decimal(0), voided_at(order)
    if lot.rule == "rate" and order.status == "partially_returned":
        kept = readings.rate_lot_kept(a, order)
        return kept, (readings.status_time(order) if kept < a else None)
    return a, None


def _holders_for(rule: str, sequence: list[RefOrder], rules: RefRules) -> list[RefOrder]:
    if rule == "welcome":
        return welcome_holders(sequence)
    nth = rules.every_nth
    return every_nth_holders(sequence, nth.n, nth.period)


def availability(order: RefOrder, rules: RefRules) -> tuple[datetime | None, datetime | None]:
    """§6: (available_from, expires_at) of the order's lots; (None, None) while not delivered."""
    start = readings.availability_start(order)
    if start is None:
        return None, None
    override = rules.marketplaces.get(order.marketplace)
    window = override.return_window if override and override.return_window is not None else rules.return_window
    available_from = start + window
    if rules.expiry.policy == "never":
        return available_from, None
    if rules.expiry.policy == "after_days":
        return available_from, available_from + timedelta(days=rules.expiry.days)
    if rules.expiry.policy == "end_of_month":
        return available_from, readings.first_instant_of_next_month(available_from + timedelta(days=rules.expiry.days))
    raise ValueError(f"unknown expiry policy {rules.expiry.policy!r}")


# -- the whole computation ------------------------------------------------------------------------------

def compute(orders: Iterable[RefOrder], spends: Iterable[RefSpend], rules: RefRules, now: datetime) -> RefResult:
    """Every member's tier, lots and balances at `now` under the paper rules."""
    by_member: dict[tuple[str, str, str], list[RefOrder]] = defaultdict(list)
    for order in orders:
        if order.buyer_key is not None and readings.counts(order):
            by_member[member_of(order)].append(order)
    spends_by_member: dict[tuple[str, str, str], list[RefSpend]] = defaultdict(list)
    for spend in spends:
        spends_by_member[spend.member].append(spend)

    wanted = [lot for member, mine in by_member.items() for lot in _wanted_lots(member, mine, rules, now)]
    _apply_budgets(wanted, rules)

    results: dict[tuple[str, str, str], RefMemberResult] = {}
    for member in sorted(set(by_member) | set(spends_by_member)):
        mine = by_member.get(member, [])
        results[member] = _member_result(member, mine, [w for w in wanted if w.member == member],
                                         spends_by_member.get(member, []), rules, now)
    total = sum((w.granted for w in wanted), Decimal(0))
    return RefResult(results, total)


def _member_result(member, mine, wanted, spends, rules, now) -> RefMemberResult:
    settled = sorted((o for o in mine if is_settled(o, now)), key=sequence_key)
    counted = [o for o in settled if not is_void(o)]
    fold_lots: list[FoldLot] = []
    for lot in sorted(wanted, key=_Wanted.global_key):
        if lot.granted <= 0 and readings.SKIP_ZERO_LOTS:
            continue
        kept, fell_at = _kept_and_taken_back(lot, settled, counted, rules)
        available_from, expires_at = availability(lot.order, rules)
        fold_lots.append(FoldLot(
            order_id=lot.order.order_id, rule=lot.rule, order_key=lot.global_key(), amount=lot.granted,
            granted_at=lot.order.created_at, available_from=available_from, expires_at=expires_at,
            take_back=lot.granted - kept, take_back_at=fell_at, kept=kept))
    balances = fold(fold_lots, [(s.at, s.key, s.amount) for s in spends], now)
    lots = {(f.order_id, f.rule): RefLot(f.order_id, f.rule, f.amount, f.owed, f.forgiven, f.kept,
                                          f.available_from, f.expires_at) for f in fold_lots}
    return RefMemberResult(member, held_tier(mine, rules, now), lots, balances)
