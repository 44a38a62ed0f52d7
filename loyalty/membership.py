"""The members projection `loyalty_members`: each member's order figures, held tier and segment.

`refresh_members(store, settings, now)` recomputes every member from the orders table (orders with
a buyer key on an enabled marketplace, as `loyalty.members.member_orders` chooses them) and upserts
the rows in batches. Every figure is `loyalty.members.standing` at `now`, a function of the orders
and `now` alone (docs/loyalty-rules.md §3): running it daily, hourly, twice or late gives the same
rows. The table is a cache for lists and filters, never an input to the ledger.

- `prior_tier`/`prior_tier_since` are what the member held before `tier` and since when.
- `service_recovery` reads only reviews the platform links to a buyer key (`reviews.buyer_key`);
  reviews are never matched to orders by any heuristic. It never feeds the segment.
- A row evaluated after `now` is never overwritten by an older evaluation (also in the upsert, for
  concurrent runs). Rows of members with no order any more (e.g. a marketplace turned off) stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select

from loyalty.engine import Member, OrderFact
from loyalty.members import member_orders, standing
from loyalty.rules import LoyaltySettings
from loyalty.segments import service_recovery
from store import Store
from store.loyalty_tables import MemberProjectionRow
from store.tables import ReviewRow
from store.upsert import dialect_insert

__all__ = ["MEMBERS", "BATCH", "RefreshResult", "member_projection", "refresh_members", "stored_members"]

MEMBERS: Table = MemberProjectionRow.__table__  # type: ignore[assignment]
REVIEWS: Table = ReviewRow.__table__  # type: ignore[assignment]
BATCH = 500
_KEY = ("marketplace", "account", "buyer_key")
_VOID = ("cancelled", "returned")
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What one `refresh_members` did."""

    members: int  # members with an order at `now`
    written: int  # rows inserted or changed
    skipped_newer: int  # rows already evaluated after `now`, left alone


def stored_members(store: Store) -> dict[Member, dict[str, Any]]:
    """Every projection row by member."""
    with store.engine.connect() as conn:
        return {tuple(r[k] for k in _KEY): dict(r)  # type: ignore[misc]
                for r in conn.execute(select(MEMBERS)).mappings()}


def _linked_reviews(store: Store) -> dict[Member, list[tuple[int, datetime]]]:
    """Ratings and dates of reviews the platform links to a buyer key (none do today)."""
    cols = REVIEWS.c
    stmt = (select(cols.marketplace, cols.account, cols.buyer_key, cols.rating, cols.created_at)
            .where(cols.buyer_key.is_not(None)))
    out: dict[Member, list[tuple[int, datetime]]] = {}
    with store.engine.connect() as conn:
        for mp, acct, buyer, rating, at in conn.execute(stmt):
            out.setdefault((mp, acct, buyer), []).append((rating, at))
    return out


def member_projection(member: Member, orders: Iterable[OrderFact], settings: LoyaltySettings, now: datetime,
                      stored: Mapping[str, Any] | None = None,
                      reviews: Iterable[tuple[int, datetime]] = ()) -> dict[str, Any] | None:
    """The member's projection row at `now` (None: no order yet at `now`). `stored` is not read:
    the row is a function of the orders and `now`."""
    st = standing(orders, settings, now)
    if st.orders == 0:
        return None
    held_since = st.tier_since if st.tier is not None else None
    return {
        "marketplace": member[0], "account": member[1], "buyer_key": member[2],
        "orders": st.orders, "spend": st.spend,
        "first_order_at": st.first_order_at, "last_order_at": st.last_order_at,
        "tier": st.tier, "tier_since": held_since,
        "prior_tier": st.previous_tier if held_since is not None else None,
        "prior_tier_since": None,
        "segment": st.segment,
        "service_recovery": service_recovery(reviews, now),
        "evaluated_at": now,
    }


def _same(row: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    return all(stored.get(k) == v for k, v in row.items())


def _chunks(items: list[Member], size: int) -> Iterator[list[Member]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _upsert(conn: Any, rows: list[dict[str, Any]]) -> None:
    stmt = dialect_insert(conn, MEMBERS)
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={c.name: new[c.name] for c in MEMBERS.columns if c.name not in _KEY},
        # An older evaluation (a concurrent run with an earlier `now`) never overwrites a newer one.
        where=MEMBERS.c.evaluated_at <= new.evaluated_at,
    )
    conn.execute(stmt, rows)


def refresh_members(store: Store, settings: LoyaltySettings, now: datetime, *,
                    batch: int = BATCH) -> RefreshResult:
    """Recompute every member at `now` from the orders table; idempotent, safe to run twice."""
    by_member, _ = member_orders(store.iter_orders(), settings)
    reviews = _linked_reviews(store)
    members = sorted(by_member)
    seen = written = newer = 0
    for chunk in _chunks(members, batch):
        stored = stored_for(store, chunk)
        rows = []
        for member in chunk:
            old = stored.get(member)
            if old is not None and old["evaluated_at"] > now:
                newer += 1
                seen += 1
                continue
            row = member_projection(member, by_member[member], settings, now, old, reviews.get(member, ()))
            if row is None:
                continue
            seen += 1
            if old is None or not _same(row, old):
                rows.append(row)
        if rows:
            with store.engine.begin() as conn:
                _upsert(conn, rows)
            written += len(rows)
    return RefreshResult(members=seen, written=written, skipped_newer=newer)


def stored_for(store: Store, members: list[Member]) -> dict[Member, dict[str, Any]]:
    """The stored rows of `members` (one chunk)."""
    wanted = set(members)
    stmt = select(MEMBERS).where(MEMBERS.c.buyer_key.in_(sorted({m[2] for m in members})))
    with store.engine.connect() as conn:
        rows = (dict(r) for r in conn.execute(stmt).mappings())
        return {m: r for r in rows if (m := (r["marketplace"], r["account"], r["buyer_key"])) in wanted}
