"""Member segments from order facts only, and the separate service-recovery flag. Pure: no I/O, no clock.

See docs/loyalty-engine.md (Segments; invariant 4). A segment can feed segment-only offers, so it
is computed from ORDER dates and values alone; a recent negative review only sets
`service_recovery`, which drives replies and ops tasks and never reaches `segment()`.

Decisions this module makes (and the spec leaves open):

- An order is `(created_at, total)` or `(created_at, total, status)`. Cancelled orders don't count;
  returned ones do (the buyer did buy). Orders created after `now` are ignored, so a segment
  evaluated "as of" a time never sees the future.
- Checked in this order, the first that holds wins: new (first counted order at most `new_within`
  before `now`), lost (last order at least `lost_after` before `now`), sleeping (at least
  `sleeping_after`), at_risk, active. A member with no counted order at all is `lost` ("no order for
  `lost_after`" holds vacuously).
- at_risk, gap: the time since the last order exceeds `at_risk_gap_factor` x the median interval
  between the member's orders. Orders less than `SAME_VISIT` apart are one visit (Ozon splits a
  checkout into several postings created at the same moment), so intervals are between visits and
  the rule needs at least two visits.
- at_risk, value: the mean total of the last 3 orders is below half the mean of the orders before
  them (needs at least 4 orders).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import median
from typing import Any

from loyalty.rules import Segment, SegmentThresholds

__all__ = ["RECOVERY_MAX_RATING", "RECOVERY_WITHIN", "SAME_VISIT", "segment", "service_recovery"]

SAME_VISIT = timedelta(hours=1)
RECENT_ORDERS = 3
RECOVERY_MAX_RATING = 2
RECOVERY_WITHIN = timedelta(days=30)
CANCELLED = "cancelled"


def _counted(orders: Iterable[Sequence[Any]], now: datetime) -> list[tuple[datetime, Decimal]]:
    out = []
    for order in orders:
        created, total = order[0], order[1]
        status = str(order[2]) if len(order) > 2 else None
        if status == CANCELLED or created > now:
            continue
        out.append((created, Decimal(total)))
    out.sort(key=lambda o: o[0])
    return out


def _gap_at_risk(dates: list[datetime], now: datetime, factor: float) -> bool:
    visits = [dates[0]]
    for d in dates[1:]:
        if d - visits[-1] >= SAME_VISIT:
            visits.append(d)
    if len(visits) < 2:
        return False
    usual = median([(b - a).total_seconds() for a, b in zip(visits, visits[1:], strict=False)])
    return (now - dates[-1]).total_seconds() > factor * usual


def _value_at_risk(totals: list[Decimal]) -> bool:
    if len(totals) <= RECENT_ORDERS:
        return False
    recent, earlier = totals[-RECENT_ORDERS:], totals[:-RECENT_ORDERS]
    recent_mean = sum(recent, Decimal(0)) / len(recent)
    earlier_mean = sum(earlier, Decimal(0)) / len(earlier)
    return recent_mean < earlier_mean / 2


def segment(order_dates_and_totals: Iterable[Sequence[Any]], now: datetime,
            thresholds: SegmentThresholds) -> Segment:
    """The member's segment at `now` from `(created_at, total[, status])` of its orders only."""
    orders = _counted(order_dates_and_totals, now)
    if not orders:
        return "lost"
    first, last = orders[0][0], orders[-1][0]
    if now - first <= thresholds.new_within:
        return "new"
    since_last = now - last
    if since_last >= thresholds.lost_after:
        return "lost"
    if since_last >= thresholds.sleeping_after:
        return "sleeping"
    if _gap_at_risk([d for d, _ in orders], now, thresholds.at_risk_gap_factor):
        return "at_risk"
    if _value_at_risk([t for _, t in orders]):
        return "at_risk"
    return "active"


def service_recovery(review_ratings_with_dates: Iterable[tuple[int, datetime]], now: datetime) -> bool:
    """A review of at most 2 stars within the 30 days up to `now`. Never an input to `segment()`."""
    since = now - RECOVERY_WITHIN
    return any(rating <= RECOVERY_MAX_RATING and since <= at <= now
               for rating, at in review_ratings_with_dates)
