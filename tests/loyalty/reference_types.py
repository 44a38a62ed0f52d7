"""The reference model's own inputs: orders, spends and rules as plain values (standard library only).

Nothing here comes from `loyalty/`: `tests/loyalty/reference_adapter.py` copies a `LoyaltySettings`'s
fields into a `RefRules`, and the tests build `RefOrder`s themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

__all__ = [
    "RefBudget", "RefCondition", "RefEveryNth", "RefExpiry", "RefMarketplace", "RefOffer", "RefOrder",
    "RefRules", "RefSegmentThresholds", "RefSpend", "RefTier", "RefTierPolicy", "is_void", "member_of", "points",
]

Member = tuple[str, str, str]  # (marketplace, account, buyer_key)
VOID_STATUSES = ("cancelled", "returned")


@dataclass(frozen=True)
class RefOrder:
    """One order in its final state (§1).

    `delivered_at` is not in the store today: when the order reached `delivered`, for an order that
    has since moved on to `partially_returned` or `returned`. None when unknown; see Q2 in
    `reference_readings.availability_start`.
    """

    marketplace: str
    account: str
    order_id: str
    buyer_key: str | None
    created_at: datetime
    status: str  # created, in_delivery, delivered, partially_returned, cancelled, returned
    status_changed_at: datetime | None
    total: Decimal
    returned_total: Decimal = Decimal(0)
    fulfilment: str | None = None
    currency: str = "RUB"
    skus: tuple[str, ...] = ()
    offer_ids: tuple[str, ...] = ()
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class RefSpend:
    """A promo code sent to `member` for `amount` points at `at`."""

    member: Member
    amount: Decimal
    at: datetime
    key: str


@dataclass(frozen=True)
class RefTier:
    name: str
    earn_rate: Decimal
    min_spend: Decimal | None = None
    min_orders: int | None = None


@dataclass(frozen=True)
class RefTierPolicy:
    basis: str = "spend"  # "spend" or "orders"
    window: timedelta = timedelta(days=365)
    downgrade: str = "one_down"  # "never", "one_down", "recompute"


@dataclass(frozen=True)
class RefExpiry:
    policy: str = "after_days"  # "never", "after_days", "end_of_month"
    days: int = 365


@dataclass(frozen=True)
class RefEveryNth:
    n: int
    points: Decimal
    period: timedelta = timedelta(days=365)


@dataclass(frozen=True)
class RefCondition:
    field: str  # marketplace, account, fulfilment, total, currency, sku, offer_id
    op: str  # eq, ne, gt, ge, lt, le, in
    value: object


@dataclass(frozen=True)
class RefOffer:
    name: str
    starts: datetime
    ends: datetime
    multiplier: Decimal = Decimal(1)
    bonus_points: Decimal = Decimal(0)
    segments: tuple[str, ...] = ()  # empty: everyone
    conditions: tuple[RefCondition, ...] = ()


@dataclass(frozen=True)
class RefBudget:
    total_points: Decimal | None = None
    per_member_points: Decimal | None = None


@dataclass(frozen=True)
class RefSegmentThresholds:
    new_within: timedelta = timedelta(days=30)
    at_risk_gap_factor: float = 2.0
    sleeping_after: timedelta = timedelta(days=90)
    lost_after: timedelta = timedelta(days=365)


@dataclass(frozen=True)
class RefMarketplace:
    earn_rate: Decimal | None = None
    return_window: timedelta | None = None


@dataclass(frozen=True)
class RefRules:
    earn_rate: Decimal = Decimal("0.05")
    tiers: tuple[RefTier, ...] = ()  # lowest threshold first
    tier_policy: RefTierPolicy = field(default_factory=RefTierPolicy)
    return_window: timedelta = timedelta(days=14)
    expiry: RefExpiry = field(default_factory=RefExpiry)
    welcome_points: Decimal | None = None
    every_nth: RefEveryNth | None = None
    offers: tuple[RefOffer, ...] = ()
    budget: RefBudget = field(default_factory=RefBudget)
    segments: RefSegmentThresholds = field(default_factory=RefSegmentThresholds)
    marketplaces: dict[str, RefMarketplace] = field(default_factory=dict)


def member_of(order: RefOrder) -> Member:
    return (order.marketplace, order.account, order.buyer_key or "")


def is_void(order: RefOrder) -> bool:
    """§2: the status is cancelled or returned (now)."""
    return order.status in VOID_STATUSES


def points(amount: Decimal, rate: Decimal) -> Decimal:
    """§2 points(x, rate): x × rate, rounded down to a whole point."""
    return (amount * rate).to_integral_value(rounding=ROUND_FLOOR)
