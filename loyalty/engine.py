"""Pure ledger rules: the entries a member's orders imply. No I/O, no clock (`now` is an argument).

See docs/loyalty-engine.md. Decisions this module makes (and the spec leaves open):

- Points are `total x rate` rounded DOWN to whole points; an order worth 0 points makes no lot.
- Rate: the tier's `earn_rate` when tiers are configured and one is reached; otherwise the
  marketplace's `earn_rate` override, else the program's. Tiers are recomputed on a rolling
  `tier_policy.window` of settled orders created before this one (neither cancelled nor returned).
- An order first seen cancelled earns nothing. A returned order earns and is reversed (its real
  history: delivered, then returned). Welcome and every-Nth lots belong to the order that earned
  them and are reversed with it. A full return only: order lines carry no returned quantities yet.
- `available_from = updated_at + return_window_for(mp)` when delivered; expiry from that:
  `after_days` → available_from + days; `end_of_month` → the first instant (UTC) of the month after
  available_from + days; `never` → None.
- Every-Nth periods start at the member's first counted order and run `period` long; the next
  period starts at the first order after it. Counted: settled orders not cancelled.
- Amounts already recorded win: the ledger never recomputes them (reversals use the recorded lot).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from loyalty.rules import LoyaltySettings

__all__ = [
    "EARN",
    "REVERSE",
    "RULE_NTH",
    "RULE_RATE",
    "RULE_WELCOME",
    "SETTLE_DELAY",
    "Entry",
    "Member",
    "OrderFact",
    "available_from",
    "earn_rate",
    "expires_at",
    "is_settled",
    "member_entries",
    "points",
]

# Longer than any platform's late-delivery lookback: by then every earlier order is in the store.
SETTLE_DELAY = timedelta(days=2)
EARN, REVERSE = "earn", "reverse"
RULE_RATE, RULE_WELCOME, RULE_NTH = "rate", "welcome", "every_nth"
CANCELLED, RETURNED, DELIVERED = "cancelled", "returned", "delivered"
_VOID = (CANCELLED, RETURNED)
_WHOLE = Decimal(1)

Member = tuple[str, str, str]  # (marketplace, account, buyer_key)


@dataclass(frozen=True, slots=True)
class OrderFact:
    """The facts of one order the engine may look at (never a review)."""

    marketplace: str
    account: str
    order_id: str
    buyer_key: str
    created_at: datetime
    updated_at: datetime
    status: str
    total: Decimal

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OrderFact:
        """From a `Store.iter_orders()` row (or any mapping with the same keys)."""
        return cls(row["marketplace"], row["account"], row["order_id"], row["buyer_key"],
                   row["created_at"], row["updated_at"], str(row["status"]), Decimal(row["total"]))


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger entry as the engine wants it to exist (member fields for the ledger's row)."""

    kind: str
    amount: Decimal
    idempotency_key: str
    order_id: str | None
    rule: str | None
    effective_at: datetime
    available_from: datetime | None = None
    expires_at: datetime | None = None
    marketplace: str = ""
    account: str = ""
    buyer_key: str = ""


def is_settled(order: OrderFact, now: datetime, settle_delay: timedelta = SETTLE_DELAY) -> bool:
    """Created more than `settle_delay` before `now`."""
    return order.created_at < now - settle_delay


def points(total: Decimal, rate: Decimal) -> Decimal:
    """Whole points for `total` at `rate`, rounded down (never give away a fraction)."""
    return (total * rate).quantize(_WHOLE, rounding=ROUND_DOWN)


def earn_rate(settings: LoyaltySettings, marketplace: str, basis: Decimal) -> Decimal:
    """The rate for an order whose member has `basis` (spend or order count) in the tier window."""
    rate = settings.earn_rate
    over = settings.marketplaces.get(marketplace)
    if over is not None and over.earn_rate is not None:
        rate = over.earn_rate
    for tier in settings.tiers:  # ascending thresholds: the last one reached wins
        threshold = tier.min_spend if tier.min_spend is not None else Decimal(tier.min_orders or 0)
        if basis >= threshold:
            rate = tier.earn_rate
    return rate


def available_from(settings: LoyaltySettings, order: OrderFact) -> datetime | None:
    """When the order's points stop being pending: delivered + return window, else unknown."""
    if order.status != DELIVERED:
        return None
    return order.updated_at + settings.return_window_for(order.marketplace)


def expires_at(settings: LoyaltySettings, available: datetime | None) -> datetime | None:
    """When a lot available from `available` expires (None: never, or not known yet)."""
    policy = settings.expiry
    if available is None or policy.policy == "never":
        return None
    end = available + timedelta(days=policy.days)
    if policy.policy == "after_days":
        return end
    end = end.astimezone(UTC)
    year, month = (end.year + 1, 1) if end.month == 12 else (end.year, end.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def member_entries(orders: Iterable[OrderFact], settings: LoyaltySettings,
                   recorded: Mapping[str, Entry], now: datetime, *,
                   settle_delay: timedelta = SETTLE_DELAY) -> list[Entry]:
    """Every entry one member's orders imply at `now`, given the member's `recorded` entries by key.

    Entries already recorded are returned again with what is now known (`available_from`,
    `expires_at`); the ledger ignores the rest of them. Order: per order, lots before reversals.
    """
    settled = sorted((o for o in orders if is_settled(o, now, settle_delay)),
                     key=lambda o: (o.created_at, o.order_id))
    if not settled:
        return []
    first = settled[0]
    mp, acct, buyer = first.marketplace, first.account, first.buyer_key
    lots_of: dict[str, list[Entry]] = {}
    reversed_: set[tuple[str | None, str | None]] = set()
    for e in recorded.values():
        if e.kind == EARN and e.order_id is not None:
            lots_of.setdefault(e.order_id, []).append(e)
        elif e.kind == REVERSE:
            reversed_.add((e.order_id, e.rule))
    welcome_key = f"welcome:{mp}:{acct}:{buyer}"
    welcomed = welcome_key in recorded
    basis_orders: list[OrderFact] = []  # earlier settled orders that count toward tiers
    # The tier window slides forward (orders come oldest first): basis_orders[lo:] is the window,
    # window_spend its spend, kept as orders enter and leave instead of re-summed per order.
    lo = 0
    window_spend = Decimal(0)
    window_len = settings.tier_policy.window
    by_orders = settings.tier_policy.basis == "orders"
    period_start: datetime | None = None
    counted = 0
    out: list[Entry] = []

    def entry(kind: str, amount: Decimal, key: str, o: OrderFact, rule: str, at: datetime) -> Entry:
        return Entry(kind, amount, key, o.order_id, rule, at, marketplace=mp, account=acct, buyer_key=buyer)

    for o in settled:
        avail = available_from(settings, o)
        expiry = expires_at(settings, avail)
        new: list[Entry] = []
        if o.status != CANCELLED:
            since = o.created_at - window_len
            while lo < len(basis_orders) and basis_orders[lo].created_at < since:
                window_spend -= basis_orders[lo].total
                lo += 1
            basis = Decimal(len(basis_orders) - lo) if by_orders else window_spend
            amount = points(o.total, earn_rate(settings, o.marketplace, basis))
            if amount > 0:
                new.append(entry(EARN, amount, f"earn:{mp}:{acct}:{o.order_id}:{RULE_RATE}", o,
                                 RULE_RATE, o.created_at))
            if settings.welcome is not None and not welcomed:
                welcomed = True
                new.append(entry(EARN, settings.welcome.points, welcome_key, o, RULE_WELCOME, o.created_at))
            nth = settings.every_nth
            if nth is not None:
                if period_start is None or o.created_at >= period_start + nth.period:
                    period_start, counted = o.created_at, 0
                counted += 1
                if counted % nth.n == 0:
                    key = f"nth:{mp}:{acct}:{buyer}:{period_start.isoformat()}:{counted // nth.n}"
                    new.append(entry(EARN, nth.points, key, o, RULE_NTH, o.created_at))
            if o.status != RETURNED:
                basis_orders.append(o)
                window_spend += o.total
        # What is recorded wins over what today's rules would compute.
        lots = {e.idempotency_key: e for e in new if e.idempotency_key not in recorded}
        lots.update({e.idempotency_key: e for e in lots_of.get(o.order_id, ())})
        for lot in lots.values():
            known = lot.available_from is not None
            out.append(lot if known else Entry(lot.kind, lot.amount, lot.idempotency_key, lot.order_id,
                                               lot.rule, lot.effective_at, avail, expiry,
                                               lot.marketplace, lot.account, lot.buyer_key))
        if o.status in _VOID:
            for lot in lots.values():
                if (o.order_id, lot.rule) in reversed_:
                    continue
                key = f"reverse:{mp}:{acct}:{o.order_id}:{lot.rule}:{o.status}"
                out.append(entry(REVERSE, -lot.amount, key, o, lot.rule or "", o.updated_at))
    return out
