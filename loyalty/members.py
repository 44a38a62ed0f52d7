"""Read-side views of the program: members with their balances and tiers, and the program's figures.

Everything here reads; nothing writes. `summarize` is the one place the program's figures are
computed, for `simulate` (on an in-memory ledger) and for a real ledger alike, so the two print the
same numbers for the same orders, settings and `now`.

- Members are chosen exactly as `loyalty.ledger.run_once` chooses them: orders with a buyer key on a
  marketplace not disabled under `[loyalty.marketplaces]`; the rest count as "no buyer identity".
- A member's figures at `now` (`standing`) are a point-in-time view: the orders created by then,
  each as it stood then (a return dated later has not happened yet). The tier shown is the tier the
  member holds (docs/loyalty-rules.md §3), the one the engine earns at; spend and segment use what
  the buyer kept (partial returns count).
- Balances come from replaying the ledger to `now` (`loyalty.ledger.balances_of_rows`): exact for a
  past `now` too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from loyalty.engine import CANCELLED, EARN, REVERSE, Member, OrderFact
from loyalty.held_tier import HeldTiers, counts, kept_at, voided_at
from loyalty.ledger import Balances, balances_of_rows, entries_of, rows_by_member
from loyalty.order_source import group_by_member
from loyalty.rules import LoyaltySettings
from loyalty.segments import segment as segment_of
from store import Store

__all__ = [
    "MarketplaceFigures",
    "MemberRow",
    "Standing",
    "Summary",
    "balances_by_member",
    "find_members",
    "member_orders",
    "member_rows",
    "standing",
    "summarize",
    "tier_of",
]

_ZERO = Decimal(0)
_VOID = ("cancelled", "returned")


def member_orders(rows: Iterable[Mapping[str, Any]], settings: LoyaltySettings
                  ) -> tuple[dict[Member, list[OrderFact]], dict[str, int]]:
    """Orders by member, and orders without a buyer key per marketplace (as `run_once` splits them)."""
    no_identity: dict[str, int] = {}
    return dict(group_by_member(rows, settings, no_identity)), no_identity


def balances_by_member(rows: Iterable[Mapping[str, Any]], now: datetime) -> dict[Member, Balances]:
    """Every member's balances from ledger rows, by the rules of `loyalty.ledger.balances`."""
    return {m: balances_of_rows(mine, now) for m, mine in rows_by_member(rows).items()}


@dataclass(frozen=True, slots=True)
class Standing:
    """A member at one moment (see the module docstring)."""

    orders: int  # orders created by then, cancelled ones too
    spend: Decimal  # what the buyer kept of the orders not void by then
    tier: str | None
    tier_since: datetime | None
    previous_tier: str | None
    segment: str
    first_order_at: datetime | None
    last_order_at: datetime | None


def _status_then(o: OrderFact, now: datetime) -> str:
    """The order's status as `segment()` needs it at `now`: cancelled only once it was."""
    void = voided_at(o)
    return CANCELLED if o.status == CANCELLED and void is not None and void <= now else "delivered"


def standing(orders: Iterable[OrderFact], settings: LoyaltySettings, now: datetime) -> Standing:
    """The member's orders, spend, held tier and segment at `now`."""
    seen = sorted((o for o in orders if o.created_at <= now), key=lambda o: (o.created_at, o.order_id))
    live = [o for o in seen if counts(o) and ((v := voided_at(o)) is None or v > now)]
    counted = [o for o in seen if _status_then(o, now) != CANCELLED]
    tier = since = previous = None
    if settings.tiers:
        walk = HeldTiers(seen, settings)
        tier = walk.name(walk.at(now))
        since, previous = walk.since, walk.name(walk.previous)
    return Standing(
        orders=len(seen), spend=sum((kept_at(o, now) for o in live), _ZERO), tier=tier, tier_since=since,
        previous_tier=previous,
        segment=segment_of([(o.created_at, kept_at(o, now), _status_then(o, now)) for o in seen], now,
                           settings.segments),
        first_order_at=counted[0].created_at if counted else None,
        last_order_at=counted[-1].created_at if counted else None)


def tier_of(settings: LoyaltySettings, orders: Iterable[OrderFact], now: datetime) -> str | None:
    """The tier the member holds at `now` (None when the program has no tiers)."""
    return standing(orders, settings, now).tier


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One member as `loyalsync members` shows it."""

    marketplace: str
    account: str
    buyer_key: str
    orders: int
    spend: Decimal  # what the buyer kept of the orders not void at `now`
    balances: Balances
    tier: str | None
    segment: str | None = None


def member_rows(store: Store, settings: LoyaltySettings, now: datetime, *,
                marketplace: str | None = None, tier: str | None = None,
                segment: str | None = None) -> list[MemberRow]:
    """Members with their figures at `now` (a point-in-time view), sorted by marketplace, account, buyer."""
    by_member, _ = member_orders(store.iter_orders(), settings)
    bals = balances_by_member(entries_of(store), now)
    empty = Balances(_ZERO, _ZERO, _ZERO, _ZERO)
    out = []
    for member in sorted(by_member):
        if marketplace is not None and member[0] != marketplace:
            continue
        st = standing(by_member[member], settings, now)
        if st.orders == 0:
            continue  # every order of the member was created after `now`
        if tier is not None and st.tier != tier:
            continue
        if segment is not None and st.segment != segment:
            continue
        out.append(MemberRow(*member, orders=st.orders, spend=st.spend, balances=bals.get(member, empty),
                             tier=st.tier, segment=st.segment))
    return out


def find_members(store: Store, prefix: str) -> list[Member]:
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
