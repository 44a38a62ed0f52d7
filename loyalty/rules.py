"""The loyalty program's rules as ops write them under `[loyalty]` in `config/loyalsync.toml`.

Validated when the config loads, like everything else: a bad rule is a `file: key: problem` line
and nothing runs. Two rules are enforced here rather than trusted to the engine:

- DESIGN invariant 4: no reward may depend on a review's rating or text. An offer condition that
  names a review field is refused at load, whatever it would have done.
- Thresholds must make sense together: tiers ascend, offers end after they start.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ORDER_CONDITION_FIELDS",
    "Budget",
    "Condition",
    "EveryNthReward",
    "ExpiryPolicy",
    "LoyaltySettings",
    "MarketplaceLoyalty",
    "Offer",
    "SegmentThresholds",
    "Tier",
    "TierPolicy",
    "WelcomeReward",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
DAY = timedelta(days=1)

# What an offer may look at: facts of the order, never of a review.
ORDER_CONDITION_FIELDS = ("marketplace", "account", "fulfilment", "total", "currency", "sku", "offer_id")
# Anything naming these is a review signal. Rating may shape a reply, never a benefit.
_REVIEW_WORDS = ("review", "rating", "stars", "valuation", "feedback", "text", "pros", "cons", "sentiment")

Segment = Literal["new", "active", "at_risk", "sleeping", "lost"]


class Tier(BaseModel):
    """A tier: reached at `min_spend` (or `min_orders`) within the tier window; earns `earn_rate`."""

    model_config = _FROZEN

    name: str = Field(min_length=1, max_length=32)
    min_spend: Decimal | None = Field(default=None, ge=0)
    min_orders: int | None = Field(default=None, ge=0)
    earn_rate: Decimal = Field(ge=0, le=1, description="points per unit of order total, e.g. 0.05")

    @model_validator(mode="after")
    def _one_threshold(self) -> Tier:
        if (self.min_spend is None) == (self.min_orders is None):
            raise ValueError("give exactly one of min_spend or min_orders")
        return self


class TierPolicy(BaseModel):
    """How tiers are evaluated: on spend or order count over a rolling window."""

    model_config = _FROZEN

    basis: Literal["spend", "orders"] = "spend"
    window: timedelta = 365 * DAY
    downgrade: Literal["never", "one_down", "recompute"] = "one_down"


class ExpiryPolicy(BaseModel):
    """When earned points expire once available."""

    model_config = _FROZEN

    policy: Literal["never", "after_days", "end_of_month"] = "after_days"
    days: int = Field(default=365, gt=0)


class WelcomeReward(BaseModel):
    """Points for a member's first order."""

    model_config = _FROZEN

    points: Decimal = Field(gt=0)


class EveryNthReward(BaseModel):
    """Points for every `n`-th order a member places within `period`."""

    model_config = _FROZEN

    n: int = Field(ge=2)
    points: Decimal = Field(gt=0)
    period: timedelta = 365 * DAY


class Condition(BaseModel):
    """One test on an order, e.g. `{field = "total", op = "ge", value = 3000}`."""

    model_config = _FROZEN

    field: str
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "in"]
    value: str | int | float | list[str | int | float]

    @field_validator("field")
    @classmethod
    def _order_facts_only(cls, name: str) -> str:
        lowered = name.lower()
        if any(word in lowered for word in _REVIEW_WORDS):
            raise ValueError(
                f"{name!r} is a review field: a reward may not depend on a review's rating or text "
                "(platform rules; DESIGN invariant 4). Use the rating to shape a reply, not a benefit")
        if name not in ORDER_CONDITION_FIELDS:
            raise ValueError(f"unknown order field {name!r}; use one of {', '.join(ORDER_CONDITION_FIELDS)}")
        return name


class Offer(BaseModel):
    """A time-limited offer: extra points on matching orders, optionally for some segments only."""

    model_config = _FROZEN

    name: str = Field(min_length=1, max_length=64)
    starts: datetime
    ends: datetime
    multiplier: Decimal = Field(default=Decimal(1), ge=1, description="applied to the tier's earn rate")
    bonus_points: Decimal = Field(default=Decimal(0), ge=0)
    segments: tuple[Segment, ...] = ()  # empty: everyone; otherwise a closed, segment-only offer
    conditions: tuple[Condition, ...] = ()

    @model_validator(mode="after")
    def _a_real_window(self) -> Offer:
        if self.starts.tzinfo is None or self.ends.tzinfo is None:
            raise ValueError("starts and ends need a time zone, e.g. 2026-11-27T00:00:00+03:00")
        if self.ends <= self.starts:
            raise ValueError("ends must be after starts")
        if self.multiplier == 1 and self.bonus_points == 0:
            raise ValueError("an offer needs a multiplier above 1 or some bonus_points")
        return self


class Budget(BaseModel):
    """Caps on what the program gives away; rewards past a cap are not granted."""

    model_config = _FROZEN

    total_points: Decimal | None = Field(default=None, gt=0)
    per_member_points: Decimal | None = Field(default=None, gt=0)


class SegmentThresholds(BaseModel):
    """Where the member segments begin.

    `at_risk` for rewards is defined without review signals (a gap past the member's usual
    interval, or falling order value); a recent negative review marks a member for service
    recovery only, so a segment-only offer can never reward or follow a rating.
    """

    model_config = _FROZEN

    new_within: timedelta = 30 * DAY
    at_risk_gap_factor: float = Field(default=2.0, gt=1)
    sleeping_after: timedelta = 90 * DAY
    lost_after: timedelta = 365 * DAY

    @model_validator(mode="after")
    def _ordered(self) -> SegmentThresholds:
        if self.lost_after <= self.sleeping_after:
            raise ValueError("lost_after must be longer than sleeping_after")
        return self


class MarketplaceLoyalty(BaseModel):
    """Per-marketplace overrides of the program."""

    model_config = _FROZEN

    enabled: bool = True
    return_window: timedelta | None = None
    earn_rate: Decimal | None = Field(default=None, ge=0, le=1)


class LoyaltySettings(BaseModel):
    """The whole program. Off until `enabled = true`; then only on marketplaces with buyer ids."""

    model_config = _FROZEN

    enabled: bool = False
    earn_rate: Decimal = Field(default=Decimal("0.05"), ge=0, le=1, description="points per unit spent")
    tiers: tuple[Tier, ...] = ()
    tier_policy: TierPolicy = Field(default_factory=TierPolicy)
    # Points stay pending until the order is delivered and this long has passed (returns).
    return_window: timedelta = 14 * DAY
    expiry: ExpiryPolicy = Field(default_factory=ExpiryPolicy)
    welcome: WelcomeReward | None = None
    every_nth: EveryNthReward | None = None
    offers: tuple[Offer, ...] = ()
    budget: Budget = Field(default_factory=Budget)
    segments: SegmentThresholds = Field(default_factory=SegmentThresholds)
    marketplaces: dict[str, MarketplaceLoyalty] = Field(default_factory=dict)

    @field_validator("tiers")
    @classmethod
    def _ascending(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        names = [t.name for t in tiers]
        if len(set(names)) != len(names):
            raise ValueError("tier names must be unique")
        bases = {t.min_spend is None for t in tiers}
        if len(bases) > 1:
            raise ValueError("all tiers use min_spend, or all use min_orders")
        keys = [t.min_spend if t.min_spend is not None else t.min_orders for t in tiers]
        if keys != sorted(keys) or len(set(keys)) != len(keys):
            raise ValueError("tiers must be listed from the lowest threshold up, each higher than the last")
        return tiers

    @model_validator(mode="after")
    def _basis_matches_tiers(self) -> LoyaltySettings:
        if self.tiers:
            by_spend = self.tiers[0].min_spend is not None
            if by_spend != (self.tier_policy.basis == "spend"):
                raise ValueError(f"tier_policy.basis is {self.tier_policy.basis!r} but the tiers use "
                                 f"{'min_spend' if by_spend else 'min_orders'}")
        names = {o.name for o in self.offers}
        if len(names) != len(self.offers):
            raise ValueError("offer names must be unique")
        return self

    def return_window_for(self, marketplace: str) -> timedelta:
        """The pending period on `marketplace`."""
        over = self.marketplaces.get(marketplace)
        return over.return_window if over and over.return_window is not None else self.return_window
