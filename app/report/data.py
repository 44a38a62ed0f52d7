"""The report's figures, read from the store: pure queries returning plain dataclasses.

Nothing here renders and nothing writes. Figures are aggregates only: buyer keys are used to
count buyers and the gaps between their orders, and never leave this module.

What each figure measures (the page states the same in its chart titles):

- Orders per day: orders created on each UTC day of the period, per marketplace (every status).
- Repeat purchases: orders with a buyer key, not cancelled, created in the period. A buyer (per
  marketplace and account) who placed 2+ of them is a repeat buyer; the time between purchases is
  the gap between each buyer's consecutive such orders. Orders without a buyer key are counted
  apart (`keyless_orders`): on a platform with no buyer identity nothing can be measured.
- Reviews: reviews created in the period, by rating. The store keeps whether a review is answered
  but not when, so reply status is: answered; unanswered within the reply target
  (`[actions.replies].within`); unanswered past it (the rule of `loyalty.replies.overdue`). Reply
  times exist only for replies loyalsync sent itself: review `created_at` to the outbox action's
  `sent_at` (`reply_to_review`, status sent).
- Points: outstanding at `now` (available + pending, the liability) per marketplace, in points and
  in roubles at `[actions.promo].point_value`; the tier mix of members (`loyalty.members.member_rows`).
- Actions: outbox actions created in the period by marketplace, kind, status and refusal reason.
- Sync health: every stream cursor, with the quarantine count of that stream.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, and_, func, select

from loyalty.action_settings import ActionSettings
from loyalty.members import member_rows
from loyalty.rules import LoyaltySettings
from store import Store
from store.loyalty_tables import ActionRow
from store.tables import OrderRow, QuarantineRow, ReviewRow

__all__ = [
    "GAP_BUCKETS",
    "NO_TIER",
    "REPLY_BUCKETS",
    "ActionCount",
    "ActionFigures",
    "DailyOrders",
    "LowRatedProduct",
    "Period",
    "PointsFigures",
    "PlatformLook",
    "PointsRow",
    "RepeatFigures",
    "RepeatRow",
    "Report",
    "ReviewFigures",
    "StreamHealth",
    "action_figures",
    "build_report",
    "daily_orders",
    "default_period",
    "no_identity_platforms",
    "platform_looks",
    "points_figures",
    "repeat_figures",
    "review_figures",
    "stream_health",
]

ORDERS: Table = OrderRow.__table__  # type: ignore[assignment]
REVIEWS: Table = ReviewRow.__table__  # type: ignore[assignment]
ACTIONS: Table = ActionRow.__table__  # type: ignore[assignment]
QUARANTINE: Table = QuarantineRow.__table__  # type: ignore[assignment]
DAY = timedelta(days=1)
_ZERO = Decimal(0)
# (label, upper bound in days, exclusive); the last bucket is open-ended.
GAP_BUCKETS: tuple[tuple[str, float], ...] = (
    ("under 7 days", 7), ("7–14 days", 14), ("14–30 days", 30), ("30–60 days", 60), ("60+ days", float("inf")))
REPLY_BUCKETS: tuple[tuple[str, float], ...] = (
    ("under 1 day", 1), ("1–2 days", 2), ("2–7 days", 7), ("7+ days", float("inf")))


@dataclass(frozen=True, slots=True)
class Period:
    """UTC days `start` to `end`, both included."""

    start: date
    end: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.end + DAY, time(), tzinfo=UTC)

    @property
    def days(self) -> list[date]:
        return [self.start + DAY * i for i in range((self.end - self.start).days + 1)]


def default_period(now: datetime, days: int = 90) -> Period:
    """The last `days` UTC days, today included."""
    today = now.astimezone(UTC).date()
    return Period(today - DAY * (days - 1), today)


def no_identity_platforms() -> frozenset[str]:
    """Installed platforms that never say who the buyer is (`BuyerIdentity.NONE`)."""
    from connectors.capabilities import BuyerIdentity
    from connectors.registry import available_connectors

    return frozenset(name for name, cls in available_connectors().items()
                     if cls.capabilities.buyer_identity is BuyerIdentity.NONE)


@dataclass(frozen=True, slots=True)
class PlatformLook:
    """How the page shows a platform: its connector's display name and colour (None: a palette colour)."""

    display_name: str
    colour: str | None = None


def platform_looks() -> dict[str, PlatformLook]:
    """Installed platforms' looks, by name (`Connector.display_name`, `Connector.brand_colour`)."""
    from connectors.registry import available_connectors

    return {name: PlatformLook(cls.display_name, cls.brand_colour) for name, cls in available_connectors().items()}


def _in(col: Any, period: Period) -> Any:
    return and_(col >= period.since, col < period.until)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- orders per day ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DailyOrders:
    """Orders created per UTC day, per marketplace (sorted by name)."""

    days: tuple[date, ...]
    by_marketplace: dict[str, tuple[int, ...]]

    @property
    def total(self) -> int:
        return sum(sum(v) for v in self.by_marketplace.values())


def daily_orders(store: Store, period: Period) -> DailyOrders:
    c = ORDERS.c
    days = period.days
    index = {d: i for i, d in enumerate(days)}
    counts: dict[str, list[int]] = {}
    stmt = select(c.marketplace, c.created_at).where(_in(c.created_at, period))
    with store.engine.connect() as conn:
        for mp, created in conn.execute(stmt):
            i = index.get(_utc(created).astimezone(UTC).date())
            if i is not None:
                counts.setdefault(mp, [0] * len(days))[i] += 1
    return DailyOrders(tuple(days), {mp: tuple(v) for mp, v in sorted(counts.items())})


# -- repeat purchases ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RepeatRow:
    """One marketplace's repeat-purchase figures in the period."""

    marketplace: str
    orders: int  # not cancelled, in the period
    keyed_orders: int  # of those, with a buyer key
    buyers: int
    repeat_buyers: int  # buyers with 2+ keyed orders in the period
    gaps: tuple[int, ...]  # count per GAP_BUCKETS label
    median_gap_days: float | None
    identity: bool  # False: the platform never gives a buyer identity

    @property
    def keyless_orders(self) -> int:
        return self.orders - self.keyed_orders

    @property
    def repeat_rate(self) -> float | None:
        return self.repeat_buyers / self.buyers if self.buyers else None


@dataclass(frozen=True, slots=True)
class RepeatFigures:
    rows: tuple[RepeatRow, ...]
    buckets: tuple[str, ...] = tuple(label for label, _ in GAP_BUCKETS)


def _bucket(days: float, buckets: tuple[tuple[str, float], ...]) -> int:
    return next(i for i, (_, upper) in enumerate(buckets) if days < upper)


def repeat_figures(store: Store, period: Period, no_identity: Iterable[str] = ()) -> RepeatFigures:
    c = ORDERS.c
    blind = set(no_identity)
    orders: Counter[str] = Counter()
    keyed: Counter[str] = Counter()
    times: dict[tuple[str, str, str], list[datetime]] = {}
    stmt = select(c.marketplace, c.account, c.buyer_key, c.created_at).where(
        _in(c.created_at, period), c.status != "cancelled")
    with store.engine.connect() as conn:
        for mp, acct, buyer, created in conn.execute(stmt):
            orders[mp] += 1
            if buyer:
                keyed[mp] += 1
                times.setdefault((mp, acct, buyer), []).append(_utc(created))
    rows = []
    for mp in sorted(orders):
        gaps = [0] * len(GAP_BUCKETS)
        gap_days: list[float] = []
        buyers = repeat = 0
        for (m, _acct, _buyer), when in times.items():
            if m != mp:
                continue
            buyers += 1
            when.sort()
            if len(when) > 1:
                repeat += 1
            for a, b in zip(when, when[1:], strict=False):
                d = (b - a).total_seconds() / 86400
                gap_days.append(d)
                gaps[_bucket(d, GAP_BUCKETS)] += 1
        rows.append(RepeatRow(mp, orders[mp], keyed[mp], buyers, repeat, tuple(gaps),
                              statistics.median(gap_days) if gap_days else None, mp not in blind))
    return RepeatFigures(tuple(rows))


# -- reviews ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LowRatedProduct:
    """A product with 1–2★ reviews in the period (platform text: escape when shown)."""

    marketplace: str
    name: str  # the product name, or "арт. <sku>" when the platform gave none
    low: int  # 1–2★ reviews
    reviews: int  # all reviews of it in the period
    average: float


@dataclass(frozen=True, slots=True)
class ReviewFigures:
    ratings: dict[str, tuple[int, int, int, int, int]]  # marketplace -> reviews with 1..5★
    answered: dict[str, int]
    waiting: dict[str, int]  # unanswered, younger than the reply target
    overdue: dict[str, int]  # unanswered past the reply target
    target: timedelta
    reply_times: dict[str, tuple[int, ...]]  # marketplace -> count per REPLY_BUCKETS (sent by loyalsync)
    low_rated: tuple[LowRatedProduct, ...]
    buckets: tuple[str, ...] = tuple(label for label, _ in REPLY_BUCKETS)

    @property
    def total(self) -> int:
        return sum(sum(v) for v in self.ratings.values())

    @property
    def replies_timed(self) -> int:
        return sum(sum(v) for v in self.reply_times.values())


def review_figures(store: Store, period: Period, now: datetime, target: timedelta, *, top: int = 5) -> ReviewFigures:
    c = REVIEWS.c
    ratings: dict[str, list[int]] = {}
    answered: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    overdue: Counter[str] = Counter()
    products: dict[tuple[str, str], list[int]] = {}
    stmt = select(c.marketplace, c.rating, c.answered, c.created_at, c.sku, c.product_name).where(
        _in(c.created_at, period))
    with store.engine.connect() as conn:
        for mp, rating, is_answered, created, sku, name in conn.execute(stmt):
            row = ratings.setdefault(mp, [0] * 5)
            if 1 <= rating <= 5:
                row[rating - 1] += 1
            if is_answered:
                answered[mp] += 1
            elif _utc(created) < now - target:
                overdue[mp] += 1
            else:
                waiting[mp] += 1
            label = (name or "").strip() or f"арт. {sku}"
            products.setdefault((mp, label), []).append(rating)
        a = ACTIONS.c
        timed = (select(c.marketplace, c.created_at, a.sent_at)
                 .join(ACTIONS, and_(a.marketplace == c.marketplace, a.account == c.account,
                                     a.target == c.review_id))
                 .where(a.kind == "reply_to_review", a.status == "sent", a.sent_at.is_not(None),
                        _in(c.created_at, period)))
        reply_times: dict[str, list[int]] = {}
        for mp, created, sent in conn.execute(timed):
            d = max((_utc(sent) - _utc(created)).total_seconds(), 0) / 86400
            reply_times.setdefault(mp, [0] * len(REPLY_BUCKETS))[_bucket(d, REPLY_BUCKETS)] += 1
    low = [LowRatedProduct(mp, name, sum(1 for r in rs if r <= 2), len(rs), sum(rs) / len(rs))
           for (mp, name), rs in products.items() if any(r <= 2 for r in rs)]
    low.sort(key=lambda p: (-p.low, p.average, p.marketplace, p.name))
    mps = sorted(ratings)
    return ReviewFigures(
        ratings={mp: tuple(ratings[mp]) for mp in mps},  # type: ignore[misc]
        answered={mp: answered[mp] for mp in mps}, waiting={mp: waiting[mp] for mp in mps},
        overdue={mp: overdue[mp] for mp in mps}, target=target,
        reply_times={mp: tuple(v) for mp, v in sorted(reply_times.items())}, low_rated=tuple(low[:top]))


# -- points and tiers -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PointsRow:
    marketplace: str
    members: int
    available: Decimal  # points
    pending: Decimal
    debt: Decimal
    tiers: dict[str, int]  # tier name (or "no tier") -> members

    @property
    def outstanding(self) -> Decimal:
        """The liability in points: what members hold or will hold once pending points settle."""
        return self.available + self.pending


@dataclass(frozen=True, slots=True)
class PointsFigures:
    rows: tuple[PointsRow, ...]
    point_value: Decimal  # roubles per point
    tier_names: tuple[str, ...]  # lowest first, "no tier" last
    enabled: bool  # the loyalty program is on

    @property
    def outstanding(self) -> Decimal:
        return sum((r.outstanding for r in self.rows), _ZERO)

    @property
    def outstanding_roubles(self) -> Decimal:
        return self.outstanding * self.point_value

    @property
    def members(self) -> int:
        return sum(r.members for r in self.rows)


NO_TIER = "no tier"


def points_figures(store: Store, loyalty: LoyaltySettings, point_value: Decimal, now: datetime) -> PointsFigures:
    sums: dict[str, list[Any]] = {}
    for m in member_rows(store, loyalty, now):
        s = sums.setdefault(m.marketplace, [0, _ZERO, _ZERO, _ZERO, Counter()])
        s[0] += 1
        s[1] += m.balances.available
        s[2] += m.balances.pending
        s[3] += m.balances.debt
        s[4][m.tier or NO_TIER] += 1
    names = [t.name for t in loyalty.tiers]
    seen = {t for s in sums.values() for t in s[4]}
    names += sorted(seen - set(names) - {NO_TIER})  # a stored tier no longer configured
    if NO_TIER in seen:
        names.append(NO_TIER)
    rows = tuple(PointsRow(mp, s[0], s[1], s[2], s[3], dict(s[4])) for mp, s in sorted(sums.items()))
    return PointsFigures(rows, point_value, tuple(names), loyalty.enabled)


# -- actions ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ActionCount:
    marketplace: str
    kind: str
    status: str
    reason: str | None
    count: int


@dataclass(frozen=True, slots=True)
class ActionFigures:
    counts: tuple[ActionCount, ...]  # sorted by marketplace, kind, status, reason

    @property
    def total(self) -> int:
        return sum(c.count for c in self.counts)

    def statuses(self) -> list[str]:
        order = ["sent", "approved", "dry_run", "pending", "open", "done", "refused", "rejected", "failed"]
        found = {c.status for c in self.counts}
        return [s for s in order if s in found] + sorted(found - set(order))

    def by_status(self) -> dict[tuple[str, str], Counter[str]]:
        """(marketplace, kind) -> status -> count."""
        out: dict[tuple[str, str], Counter[str]] = {}
        for c in self.counts:
            out.setdefault((c.marketplace, c.kind), Counter())[c.status] += c.count
        return out

    def refusals(self) -> dict[str, Counter[str]]:
        """Refusal reason -> marketplace -> count."""
        out: dict[str, Counter[str]] = {}
        for c in self.counts:
            if c.status == "refused":
                out.setdefault(c.reason or "unknown", Counter())[c.marketplace] += c.count
        return dict(sorted(out.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])))


def action_figures(store: Store, period: Period) -> ActionFigures:
    a = ACTIONS.c
    stmt = (select(a.marketplace, a.kind, a.status, a.reason, func.count())
            .where(_in(a.created_at, period)).group_by(a.marketplace, a.kind, a.status, a.reason))
    with store.engine.connect() as conn:
        rows = [ActionCount(mp, k, s, r, int(n)) for mp, k, s, r, n in conn.execute(stmt)]
    rows.sort(key=lambda c: (c.marketplace, c.kind, c.status, c.reason or ""))
    return ActionFigures(tuple(rows))


# -- sync health -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StreamHealth:
    marketplace: str
    account: str
    stream: str
    state: str
    last_success_at: datetime | None
    last_run_at: datetime | None
    records: int
    quarantined: int
    last_error: str | None  # platform text: escape when shown
    last_error_at: datetime | None


def stream_health(store: Store) -> tuple[StreamHealth, ...]:
    q = QUARANTINE.c
    with store.engine.connect() as conn:
        held = {(mp, acct, stream): int(n) for mp, acct, stream, n in conn.execute(
            select(q.marketplace, q.account, q.stream, func.count()).group_by(q.marketplace, q.account, q.stream))}
    return tuple(
        StreamHealth(r["marketplace"], r["account"], r["stream"], r["state"], r["last_success_at"], r["last_run_at"],
                     int(r["records_synced"] or 0), held.get((r["marketplace"], r["account"], r["stream"]), 0),
                     r["last_error"], r["last_error_at"])
        for r in store.cursors())


# -- the whole report ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Report:
    generated_at: datetime
    period: Period
    orders: DailyOrders
    repeat: RepeatFigures
    reviews: ReviewFigures
    points: PointsFigures
    actions: ActionFigures
    streams: tuple[StreamHealth, ...]
    no_identity: frozenset[str] = field(default_factory=frozenset)
    platforms: Mapping[str, PlatformLook] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing synced and nothing in the outbox: a fresh store."""
        return not (self.streams or self.orders.total or self.reviews.total or self.points.rows
                    or self.actions.total)


def build_report(store: Store, *, loyalty: LoyaltySettings, actions: ActionSettings, period: Period,
                 now: datetime, no_identity: Iterable[str] = (),
                 platforms: Mapping[str, PlatformLook] | None = None) -> Report:
    """Every figure of the report; `no_identity` names platforms without buyer identity, `platforms`
    how to show each (default: the installed connectors')."""
    blind = frozenset(no_identity)
    return Report(
        generated_at=now, period=period, orders=daily_orders(store, period),
        repeat=repeat_figures(store, period, blind),
        reviews=review_figures(store, period, now, actions.replies.within),
        points=points_figures(store, loyalty, actions.promo.point_value, now),
        actions=action_figures(store, period), streams=stream_health(store), no_identity=blind,
        platforms=platform_looks() if platforms is None else platforms)
