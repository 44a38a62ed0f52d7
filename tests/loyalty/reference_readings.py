"""Where docs/loyalty-rules.md is ambiguous or contradicts itself: the reading the reference model takes.

Every choice the page leaves open is here, once, named Qn as in the report to the lead (Q10, Q12, Q15,
Q18 and Q20 are choices of order or scope kept where they act; the list below points at them). To
follow a different reading, change it here.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from tests.loyalty.reference_types import RefCondition, RefOffer, RefOrder, is_void

NEVER = datetime.max.replace(tzinfo=UTC)

# Q1 (§4 first line vs §7, its worked example, and §9 "budgets"). §4 says "every settled order that is
# not void earns a rate lot", but §7 takes back a void order's lot at its status time, and its worked
# example forgives the lot of a RETURNED order, which must therefore have been granted. Reading: every
# settled order earns its lots at created_at, void or not; a void order's D is 0, so its lots are taken
# back at voided_at. They are granted, so they use budget (§8 "taking back gives no budget back"). This
# contradicts §9's "a rebuild over the final orders never grants it". The same holds for rewards (Q4).
GRANT_LOTS_OF_VOID_ORDERS = True

# Q14: a lot whose amount is 0 (rounded down to nothing, or cut to nothing by a budget) is no lot at all.
SKIP_ZERO_LOTS = True

# Q21 (§2 "counts"): an order void before it settled (its void status time earlier than created_at + the
# settle delay, 2 days) never counts: no lot, no reward, no place in a sequence, the tier basis or a
# segment. Live runs never see such an order settled and not void, so nothing was ever granted for it.
SETTLE_DELAY = timedelta(days=2)


def counts(order: RefOrder) -> bool:
    return not is_void(order) or status_time(order) >= order.created_at + SETTLE_DELAY


# Q9: "replaying, in time order, these events up to now": an event AT now is included.
EVENTS_AT_NOW_INCLUDED = True

# Readings that are plain choices of order or scope, kept where they act (listed here so all are in one list):
# Q10 (§7 "Ties" orders kinds, not lots): within one kind at one instant, lots go in lot order (§8's
#     key) and spends by their key: reference_fold._events.
# Q12 (`[loyalty.marketplaces] enabled` is not on the page): ignored, every marketplace is in:
#     reference_adapter.
# Q15 (§8, both caps set): one pass in the global lot order, each lot cut to min(member left, program
#     left); the per-member cap counts what the program cap let through: reference_model._apply_budgets.
# Q18 (§2 "status_changed_at: when the order reached its current status"): a partial return that grows
#     keeps its first time, so the whole partial take-back is dated then: history_strategies.state_at.
# Q20 (§7 "Lot granted at its order's created_at"): the fold has each lot from its order's creation,
#     although live runs can grant it only once it settles (2 days on); a take-back in between may
#     draw on it ("owed ... then pending ones"): reference_model._member_result.


def status_time(order: RefOrder) -> datetime:
    """Q17: `status_changed_at`; an order without one has had its status since creation."""
    return order.status_changed_at if order.status_changed_at is not None else order.created_at


def voided_at(order: RefOrder) -> datetime:
    """§2: a void order's status time; ∞ otherwise."""
    return status_time(order) if is_void(order) else NEVER


def availability_start(order: RefOrder) -> datetime | None:
    """Q2 (§6 vs §7's worked example): when the availability clock starts, None while not delivered.

    §6: "A lot's order is delivered or partially_returned at status_changed_at. From then …". Read on
    the final order set, a RETURNED order's lot would never become available nor expire; yet §7's
    worked example has the lot of an order returned on 1 April available since 1 March and expired on
    31 March. The final order set cannot say when a returned order was delivered. Reading: the clock
    starts when the order was delivered, `delivered_at`, where the history knows it; otherwise
    `status_changed_at` if the order is delivered or partially_returned now (for a partial return that
    is the return's time: the store keeps no earlier one); otherwise never.
    """
    if order.delivered_at is not None:
        return order.delivered_at
    if order.status in ("delivered", "partially_returned"):
        return status_time(order)
    return None


def rate_lot_kept(granted: Decimal, order: RefOrder) -> Decimal:
    """§4 D of a partially returned order's rate lot: floor(A × kept / total); Q19: kept never below 0."""
    if order.total <= 0:
        return granted
    kept = max(Decimal(0), order.total - order.returned_total)
    exact = Fraction(granted) * Fraction(kept) / Fraction(order.total)
    return Decimal(exact.numerator // exact.denominator)


def reward_holders(holders_of: Callable[[Sequence[RefOrder]], list[RefOrder]],
                   settled: Sequence[RefOrder], counted: Sequence[RefOrder]) -> list[RefOrder]:
    """Q4 (§5, §7): the orders whose welcome or every-Nth reward is granted.

    Only voids move rewards, so on a final order set a reward was granted to the holders with every
    void order counted again (they held it before the voids), to the holders just after each void
    (B in §5's welcome example held it from A's void to its own, and live runs granted it whenever
    they ran) and to the holders now.
    """
    now = list(holders_of(counted))
    if not GRANT_LOTS_OF_VOID_ORDERS:
        return now
    out: list[RefOrder] = []
    seen: set[str] = set()
    void_times = sorted({voided_at(o) for o in settled if is_void(o)})
    # The sequence before any void, after each void (the last one leaves `counted`), then now.
    states = [list(settled)]
    for t in void_times:
        states.append([o for o in settled if not (is_void(o) and voided_at(o) <= t)])
    for sequence in [*states, list(counted)]:
        for o in holders_of(sequence):
            if o.order_id not in seen:
                seen.add(o.order_id)
                out.append(o)
    return out


def reward_taken_back_at(holder: RefOrder, holders_of: Callable[[Sequence[RefOrder]], list[RefOrder]],
                         settled: Sequence[RefOrder]) -> datetime:
    """Q3 (§5, §7): when a reward its holder no longer holds is taken back.

    Walk the voids in time order from the sequence with every void order counted again: the reward
    is taken back at the void after which the order stopped holding it for the last time (its own
    void if it held until then), never before the order's creation (a reward moved away before its
    order existed was never held: granted and taken back at one instant, it changes nothing).
    Only a void of an order before the holder, or its own, can change whether it holds.
    """
    void_times = sorted({voided_at(o) for o in settled if is_void(o)})
    states = [list(settled)] + [[o for o in settled if not (is_void(o) and voided_at(o) <= t)] for t in void_times]
    held = [holder.order_id in {o.order_id for o in holders_of(s)} for s in states]
    for i in reversed(range(len(void_times))):
        if held[i] and not held[i + 1]:
            return max(void_times[i], holder.created_at)
    raise AssertionError(f"{holder.order_id} lost a reward with no void that moved it: only voids move rewards")


def offer_active(offer: RefOffer, t: datetime) -> bool:
    """Q5: an offer is active from `starts` (included) to `ends` (excluded)."""
    return offer.starts <= t < offer.ends


def condition_holds(condition: RefCondition, order: RefOrder) -> bool:
    """Q6: a condition on an order's facts. An order has many skus and offer ids: eq, in, gt, ge, lt and
    le hold when ANY of them does; ne holds when NONE equals the value (so an order without skus is
    `ne` anything and `eq` nothing). `total` is compared as a number, the rest as strings."""
    facts = {
        "marketplace": [order.marketplace], "account": [order.account], "fulfilment": [order.fulfilment],
        "currency": [order.currency], "total": [order.total], "sku": list(order.skus),
        "offer_id": list(order.offer_ids),
    }[condition.field]
    facts = [f for f in facts if f is not None]
    number = condition.field == "total"

    def norm(v):
        return Decimal(str(v)) if number else str(v)

    values = [norm(v) for v in facts]
    if condition.op == "in":
        wanted = {norm(v) for v in condition.value}
        return any(v in wanted for v in values)
    target = norm(condition.value)
    compare = {
        "eq": lambda v: v == target, "gt": lambda v: v > target, "ge": lambda v: v >= target,
        "lt": lambda v: v < target, "le": lambda v: v <= target,
    }
    if condition.op == "ne":
        return all(v != target for v in values)
    return any(compare[condition.op](v) for v in values)


# Q7: segments.py's docstring says orders "less than SAME_VISIT apart are one visit" without its value;
# loyalty.segments.SAME_VISIT is one hour today. Visits chain (each order less than an hour after the
# previous one joins its visit); a visit's time is its first order's; "median" is the usual median.
SAME_VISIT = timedelta(hours=1)


def at_risk_by_gap(live: Sequence[RefOrder], t: datetime, factor: float) -> bool:
    """The time since the last order exceeds factor × the median interval between visits (2+ visits)."""
    visit_starts: list[datetime] = []
    previous: datetime | None = None
    for order in live:  # sorted by created_at
        if previous is None or order.created_at - previous >= SAME_VISIT:
            visit_starts.append(order.created_at)
        previous = order.created_at
    if len(visit_starts) < 2:
        return False
    intervals = [(b - a).total_seconds() for a, b in zip(visit_starts, visit_starts[1:], strict=False)]
    gap = (t - live[-1].created_at).total_seconds()
    return gap > factor * statistics.median(intervals)


def creation_moves_tier(order: RefOrder) -> bool:
    """Q8 (§2 vs §3): every creation of the member's orders is an upgrade moment for the held tier,
    settled or not, void now or not ("at each of the member's order creations"); §2's "an order not
    yet settled is ignored everywhere below, except in the tier basis" is read as not excluding it.
    q(t) at a creation counts only orders created strictly before it (§2 "live at t": created_at < t)."""
    return True


def first_instant_of_next_month(t: datetime) -> datetime:
    """Q11 (§6 end_of_month): the first instant of the month after the one `t` falls in, so an instant
    that is itself a month's first goes to the next month's first."""
    t = t.astimezone(UTC)
    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)
