"""The review-incentive planner: which SKUs to propose for each platform's own review-points program.

It picks SKUs that sell well and have few reviews (`loyalty.sku_stats`), within a budget, and turns
each into an ops task a person carries out in the seller cabinet: no platform has an API for these
programs (shared/marketplaces/platform_rules.md §0, "What this means for the daemon" 1).

What it never does (DESIGN invariant 4 and the platforms' rules):
- look at a review's rating, text or author: its inputs are per-SKU counts only, and every task
  declares `grounds = {"sku.orders", "sku.reviews"}`;
- target a buyer: a task is about a SKU, and the platform decides who is invited;
- reward anything itself: the platform pays the points, for any review that passes its moderation.

Rule, in order:
1. candidates: `orders >= min_orders` and `reviews <= max_reviews`, on platforms whose
   `ActionKind.REVIEW_POINTS_PROGRAM` channel is not `Channel.NONE` (a platform missing from the
   capabilities is treated as not offering it);
2. ranked by (reviews ascending, orders descending, sku, marketplace, account): deterministic;
3. cost per SKU = reviews_per_sku × points_per_review × (1 + fee_rate), rounded half-up to whole
   roubles; SKUs are taken in rank order while the running total fits `budget`; one that does not
   fit is skipped and the next ones are still tried. With one `ReviewIncentiveSettings` every SKU
   costs the same, so in practice the list is cut at the first SKU that does not fit.

Windows and keys: sales are counted over the last complete window on a fixed grid (`review_window`),
so every plan made during the next `window` sees the same window and gives its tasks the same keys
(marketplace, account, sku, window start date): re-planning proposes nothing new to the outbox. The
budget is per window: tasks of this window already in the outbox (open or done; a rejected one frees
its share, and its SKU is not proposed again) count against it, so when the counts change inside a
window (a review arrives, a late order is synced) a re-plan may add another SKU only with what the
budget has left.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.capabilities import ActionKind, Capabilities, Channel
from connectors.registry import available_capabilities
from loyalty.action_settings import ReviewIncentiveSettings
from loyalty.actions import Action, ActionStatus, Purpose
from loyalty.outbox import ACTIONS
from loyalty.sku_stats import SkuStats, sku_stats

__all__ = [
    "GROUNDS",
    "loyalty_discount_task",
    "plan_review_incentives",
    "propose_review_incentives",
    "review_cost",
    "review_window",
]

# What a review-incentive task is decided on: counts per SKU, never a field of a review.
GROUNDS = frozenset({"sku.orders", "sku.reviews"})

# Windows start on this grid (a Monday, so weekly windows start on Mondays).
_GRID = datetime(2000, 1, 3, tzinfo=UTC)
_ROUBLE = Decimal(1)

# Every program's rules end with these (after the platform's own, `Capabilities.review_program.rules`).
_COMMON_RULES = (
    "Never ask for, hint at or reward a particular rating: the points are for any published review.",
    "Never pick or contact buyers about it: the platform decides whom it invites.",
)

_GENERIC_STEPS = (
    "In the {marketplace} seller cabinet open the platform's review-points program «{program}».",
    "Enrol the product with SKU {sku}{product}.",
    "Set {points} points per review and a target of {reviews} reviews (about {cost} ₽ with the "
    "platform's fee), then start it and mark this task done.",
)
_GENERIC_RULES = ("No rewards for reviews outside the platform's program.", *_COMMON_RULES)


def review_window(now: datetime, window: timedelta) -> tuple[datetime, datetime]:
    """The last complete sales window before `now` on a fixed grid: [since, until), aware UTC.

    Every `now` in [until, until + window) gives the same window, hence the same task keys.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime (UTC)")
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window}")
    until = _GRID + ((now.astimezone(UTC) - _GRID) // window) * window
    return until - window, until


def review_cost(settings: ReviewIncentiveSettings) -> Decimal:
    """Roubles one SKU costs: reviews × points × (1 + fee), rounded half-up to whole roubles."""
    raw = settings.reviews_per_sku * settings.points_per_review * (1 + settings.fee_rate)
    return raw.quantize(_ROUBLE, ROUND_HALF_UP)


def plan_review_incentives(stats: Sequence[SkuStats], capabilities_by_marketplace: Mapping[str, Capabilities],
                           settings: ReviewIncentiveSettings, now: datetime,
                           committed: Mapping[str, Decimal] | None = None) -> list[Action]:
    """Ops tasks enrolling the best candidate SKUs in their platform's review-points program.

    Pure: reads only its arguments. `stats` should cover `review_window(now, settings.window)`
    (`propose_review_incentives` does that). `committed` is this window's tasks already in the
    outbox, key -> cost (0 for a rejected one): they use up budget and are not planned again. Tasks
    come in rank order;
    see the module docstring.
    """
    committed = committed or {}
    if not settings.enabled:
        return []
    since, _ = review_window(now, settings.window)
    cost = review_cost(settings)
    offered = []
    for s in stats:
        caps = capabilities_by_marketplace.get(s.marketplace)
        if caps is None or caps.rule(ActionKind.REVIEW_POINTS_PROGRAM).channel == Channel.NONE:
            continue
        if s.orders >= settings.min_orders and s.reviews <= settings.max_reviews:
            offered.append(s)
    offered.sort(key=lambda s: (s.reviews, -s.orders, s.sku, s.marketplace, s.account))
    actions: list[Action] = []
    spent = sum(committed.values(), Decimal(0))
    for s in offered:
        task = _enrol_task(s, capabilities_by_marketplace[s.marketplace], settings, cost, since, now)
        if task.key in committed:
            continue  # already proposed in this window: its cost is in `spent`
        if spent + cost > settings.budget:
            continue  # same cost for every SKU today, but a cheaper one would still be tried
        spent += cost
        actions.append(task)
    return actions


def propose_review_incentives(engine: Engine, capabilities_by_marketplace: Mapping[str, Capabilities],
                              settings: ReviewIncentiveSettings, now: datetime) -> list[Action]:
    """Read the counts for the current window from the store and plan."""
    if not settings.enabled:
        return []
    since, until = review_window(now, settings.window)
    return plan_review_incentives(sku_stats(engine, since, until), capabilities_by_marketplace, settings, now,
                                  committed=_committed(engine, since))


def _committed(engine: Engine, since: datetime) -> dict[str, Decimal]:
    """This window's review-points tasks in the outbox, key -> cost; a rejected one costs nothing
    (a person said no: its share of the budget is free, and its SKU is not proposed again)."""
    c = ACTIONS.c
    stmt = select(c.key, c.cost, c.status).where(c.kind == ActionKind.OPS_TASK.value, c.key.like("review-points:%"))
    suffix = f":{since.date().isoformat()}"
    with engine.connect() as conn:
        return {key: Decimal(0) if status == ActionStatus.REJECTED.value else Decimal(cost)
                for key, cost, status in conn.execute(stmt) if key.endswith(suffix)}


def _enrol_task(s: SkuStats, caps: Capabilities, settings: ReviewIncentiveSettings, cost: Decimal,
                since: datetime, now: datetime) -> Action:
    rule = caps.rule(ActionKind.REVIEW_POINTS_PROGRAM)
    program = caps.review_program
    name = program.name if program else _name_from_note(rule.note)
    steps = program.steps if program else _GENERIC_STEPS
    rules = (*program.rules, *_COMMON_RULES) if program else _GENERIC_RULES
    points = _number(settings.points_per_review)
    values = {
        "sku": s.sku, "product": f" («{s.product_name}»)" if s.product_name else "",
        "reviews": settings.reviews_per_sku, "points": points,
        "points_total": _number(settings.reviews_per_sku * settings.points_per_review),
        "cost": _number(cost), "fee": str(settings.fee_rate), "marketplace": s.marketplace, "program": name,
    }
    window_start = since.date().isoformat()
    return Action(
        kind=ActionKind.OPS_TASK,
        marketplace=s.marketplace,
        account=s.account,
        key=f"review-points:{s.marketplace}:{s.account}:{s.sku}:{window_start}",
        target=s.sku,
        created_at=now,
        purpose=Purpose.MARKETING,
        grounds=GROUNDS,
        cost=cost,
        title=f"enrol SKU {s.sku} in «{name}», {settings.reviews_per_sku} reviews x {points} points, "
              f"about {_number(cost)} ₽",
        params={
            "program": name,
            "channel": rule.channel.value,  # cabinet today; no platform has an API for it
            "sku": s.sku,
            "product_name": s.product_name,
            "reviews": settings.reviews_per_sku,
            "points_per_review": str(settings.points_per_review),
            "fee_rate": str(settings.fee_rate),
            "estimated_cost_rub": str(cost),
            "window": {"since": since.isoformat(), "until": (since + settings.window).isoformat()},
            "why": {"orders": s.orders, "units": s.units, "reviews": s.reviews,
                    "min_orders": settings.min_orders, "max_reviews": settings.max_reviews},
            "steps": [step.format(**values) for step in steps],
            "rules": [r.format(**values) for r in rules],
            "platform_note": rule.note,
        },
    )


def _name_from_note(note: str) -> str:
    found = re.search(r"«([^»]+)»", note)
    return found.group(1) if found else "review-points program"


def _number(value: Decimal | int) -> str:
    """1,500 for whole numbers; decimals as written (12.5)."""
    d = Decimal(value)
    if d == d.to_integral_value():
        return f"{int(d):,}"
    return str(d.normalize())


# -- a platform's loyalty discount (WB «Скидка лояльности») --------------------------------------


def loyalty_discount_task(marketplace: str, account: str, percent: int, min_order_total: Decimal | int,
                          now: datetime, *, capabilities_by_marketplace: Mapping[str, Capabilities] | None = None,
                          ) -> Action:
    """An ops task: set the platform's loyalty discount to `percent` from `min_order_total` roubles.

    The program is the one the platform's `Capabilities.loyalty_discount` describes (by default the
    installed connectors'); a marketplace that describes none raises ValueError, as do a percent or
    threshold outside the platform's range. The key names the settings, so proposing the same
    discount again adds nothing; `cost` is 0 (what it gives away depends on future orders).
    """
    if capabilities_by_marketplace is None:
        capabilities_by_marketplace = available_capabilities()
    caps = capabilities_by_marketplace.get(marketplace)
    program = caps.loyalty_discount if caps is not None else None
    if program is None:
        raise ValueError(f"no loyalty-discount program described for {marketplace!r}")
    low, high = program.percent
    if isinstance(percent, bool) or not isinstance(percent, int) or not low <= percent <= high:
        raise ValueError(f"{program.name}: percent must be a whole number from {low} to {high}, got {percent!r}")
    total = Decimal(min_order_total)
    lo_total, hi_total = program.min_total
    if total != total.to_integral_value() or not lo_total <= total <= hi_total:
        raise ValueError(f"{program.name}: the threshold must be whole roubles from {_number(lo_total)} to "
                         f"{_number(hi_total)}, got {min_order_total}")
    values = {"percent": percent, "min_total": _number(total)}
    return Action(
        kind=ActionKind.OPS_TASK,
        marketplace=marketplace,
        account=account,
        key=f"loyalty-discount:{marketplace}:{account}:{percent}:{int(total)}",
        target=program.name,
        created_at=now,
        purpose=Purpose.MARKETING,
        title=f"set {program.label} {program.name} {percent}% from {_number(total)} ₽",
        params={
            "program": program.name,
            "channel": "cabinet",
            "percent": percent,
            "min_order_total_rub": str(int(total)),
            "steps": [step.format(**values) for step in program.steps],
            "rules": list(program.rules),
        },
    )
