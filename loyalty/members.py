"""Read-side views of the program: members with their balances and tiers, and the program's figures.

Everything here reads; nothing writes. `summarize` is the one place the program's figures are
computed, for `simulate` (on an in-memory ledger) and for a real ledger alike, so the two print the
same numbers for the same orders, settings and `now`.

- Members are chosen exactly as `loyalty.ledger.run_once` chooses them: orders with a buyer key on a
  marketplace not disabled under `[loyalty.marketplaces]`; the rest count as "no buyer identity".
- A member's tier is the highest tier whose threshold the member's basis reaches at `now`: spend
  (or order count) of settled orders, neither cancelled nor returned, created within
  `tier_policy.window` before `now` (the rule the engine applies to each new order).
- Balances use the same rules as `loyalty.ledger.balances`, computed from one read of the ledger.
- `member_rows` shows the tier and segment stored by `loyalty.membership.refresh_members` (the held
  tier, after the downgrade policy) for members in that projection; for the others it computes them
  at `now` (`tier_of`, `loyalty.segments.segment`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from loyalty.engine import EARN, REVERSE, SETTLE_DELAY, Member, OrderFact, is_settled
from loyalty.ledger import Balances, balances_of_rows, entries_of
from loyalty.rules import LoyaltySettings

__all__ = [
    "MarketplaceFigures",
    "MemberRow",
    "Summary",
    "balances_by_member",
    "find_members",
    "member_orders",
    "member_rows",
    "summarize",
    "tier_of",
]

_ZERO = Decimal(0)
_VOID = ("cancelled", "returned")


def member_orders(rows: Iterable[Mapping[str, Any]], settings: LoyaltySettings
                  ) -> tuple[dict[Member, list[OrderFact]], dict[str, int]]:
    """Orders by member, and orders without a buyer key per marketplace (as `run_once` splits them)."""
    by_member: dict[Member, list[OrderFact]] = {}
    no_identity: dict[str, int] = {}
    for row in rows:
        mp = row["marketplace"]
        over = settings.marketplaces.get(mp)
        if over is not None and not over.enabled:
            continue
        if not row["buyer_key"]:
            no_identity[mp] = no_identity.get(mp, 0) + 1
            continue
        fact = OrderFact.from_row(row)
        by_member.setdefault((fact.marketplace, fact.account, fact.buyer_key), []).append(fact)
    return by_member, no_identity


def balances_by_member(rows: Iterable[Mapping[str, Any]], now: datetime) -> dict[Member, Balances]:
    """Every member's balances from ledger rows, by the rules of `loyalty.ledger.balances`."""
    by_member: dict[Member, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_member.setdefault((r["marketplace"], r["account"], r["buyer_key"]), []).append(r)
    return {m: balances_of_rows(mine, now) for m, mine in by_member.items()}


def tier_of(settings: LoyaltySettings, orders: Iterable[OrderFact], now: datetime) -> str | None:
    """The tier a member has reached at `now` (None when the program has no tiers)."""
    if not settings.tiers:
        return None
    since = now - settings.tier_policy.window
    window = [o for o in orders if is_settled(o, now, SETTLE_DELAY) and o.status not in _VOID
              and o.created_at >= since]
    basis = (Decimal(len(window)) if settings.tier_policy.basis == "orders"
             else sum((o.total for o in window), _ZERO))
    reached = None
    for tier in settings.tiers:  # ascending thresholds: the last one reached wins
        threshold = tier.min_spend if tier.min_spend is not None else Decimal(tier.min_orders or 0)
        if basis >= threshold:
            reached = tier.name
    return reached


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One member as `loyalsync members` shows it."""

    marketplace: str
    account: str
    buyer_key: str
    orders: int
    spend: Decimal  # totals of orders neither cancelled nor returned
    balances: Balances
    tier: str | None
    segment: str | None = None
    stored: bool = False  # tier and segment come from the members projection


def member_rows(store: Any, settings: LoyaltySettings, now: datetime, *,
                marketplace: str | None = None, tier: str | None = None,
                segment: str | None = None) -> list[MemberRow]:
    """Members with their figures at `now`, sorted by marketplace, account, buyer key."""
    from loyalty.membership import stored_members
    from loyalty.segments import segment as segment_of

    by_member, _ = member_orders(store.iter_orders(), settings)
    bals = balances_by_member(entries_of(store), now)
    projection = stored_members(store)
    empty = Balances(_ZERO, _ZERO, _ZERO, _ZERO)
    out = []
    for member in sorted(by_member):
        if marketplace is not None and member[0] != marketplace:
            continue
        orders = by_member[member]
        stored = projection.get(member)
        if stored is not None:
            reached, seg = stored["tier"], stored["segment"]
        else:
            reached = tier_of(settings, orders, now)
            seg = segment_of([(o.created_at, o.total, o.status) for o in orders], now, settings.segments)
        if tier is not None and reached != tier:
            continue
        if segment is not None and seg != segment:
            continue
        spend = sum((o.total for o in orders if o.status not in _VOID), _ZERO)
        out.append(MemberRow(*member, orders=len(orders), spend=spend, balances=bals.get(member, empty),
                             tier=reached, segment=seg, stored=stored is not None))
    return out


def find_members(store: Any, prefix: str) -> list[Member]:
    """Members whose buyer key starts with `prefix` (from stored orders and the ledger)."""
    found: set[Member] = set()
    for row in store.iter_orders():
        if row["buyer_key"] and row["buyer_key"].startswith(prefix):
            found.add((row["marketplace"], row["account"], row["buyer_key"]))
    for row in entries_of(store):
        if row["buyer_key"].startswith(prefix):
            found.add((row["marketplace"], row["account"], row["buyer_key"]))
    return sorted(found)


@dataclass(slots=True)
class MarketplaceFigures:
    """The program's figures on one marketplace."""

    members: int = 0  # buyers with at least one order
    members_with_points: int = 0  # members with at least one ledger entry
    orders: int = 0  # orders with a buyer key
    no_identity: int = 0  # orders without one
    earned: Decimal = _ZERO  # Σ earn entries
    reversed: Decimal = _ZERO  # Σ reverse entries (negative)
    pending: Decimal = _ZERO
    available: Decimal = _ZERO
    expired: Decimal = _ZERO  # waiting for the expire job
    debt: Decimal = _ZERO
    entries: int = 0
    tiers: dict[str, int] = field(default_factory=dict)  # members per tier reached


@dataclass(slots=True)
class Summary:
    """The program's figures at `now`, per marketplace (sorted by name)."""

    now: datetime
    marketplaces: dict[str, MarketplaceFigures] = field(default_factory=dict)

    def total(self) -> MarketplaceFigures:
        """All marketplaces added up."""
        out = MarketplaceFigures()
        for f in self.marketplaces.values():
            for name in ("members", "members_with_points", "orders", "no_identity", "earned", "reversed",
                         "pending", "available", "expired", "debt", "entries"):
                setattr(out, name, getattr(out, name) + getattr(f, name))
            for tier, n in f.tiers.items():
                out.tiers[tier] = out.tiers.get(tier, 0) + n
        return out


def summarize(orders: Iterable[Mapping[str, Any]], ledger_rows: Iterable[Mapping[str, Any]],
              settings: LoyaltySettings, now: datetime) -> Summary:
    """The figures of a ledger built from `orders` with `settings`, as of `now`."""
    by_member, no_identity = member_orders(orders, settings)
    rows = list(ledger_rows)
    figures: dict[str, MarketplaceFigures] = {}

    def of(mp: str) -> MarketplaceFigures:
        return figures.setdefault(mp, MarketplaceFigures())

    for mp, n in no_identity.items():
        of(mp).no_identity = n
    for (mp, _acct, _buyer), facts in by_member.items():
        f = of(mp)
        f.members += 1
        f.orders += len(facts)
        reached = tier_of(settings, facts, now)
        if reached is not None:
            f.tiers[reached] = f.tiers.get(reached, 0) + 1
    for r in rows:
        f = of(r["marketplace"])
        f.entries += 1
        if r["kind"] == EARN:
            f.earned += r["amount"]
        elif r["kind"] == REVERSE:
            f.reversed += r["amount"]
    for (mp, _acct, _buyer), b in balances_by_member(rows, now).items():
        f = of(mp)
        f.members_with_points += 1
        f.pending += b.pending
        f.available += b.available
        f.expired += b.expired
        f.debt += b.debt
    return Summary(now=now, marketplaces=dict(sorted(figures.items())))
