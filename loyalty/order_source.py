"""Where the loyalty engine reads orders: each member's orders, streamed from the store in pages.

Members are orders with a buyer key on a marketplace the program does not switch off; the others
count as "no buyer identity" per marketplace. Only the columns the engine reads are fetched, and a
page never splits one member's orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, or_, select
from sqlalchemy.engine import Connection, Engine

from loyalty.engine import Member, OrderFact
from loyalty.rules import LoyaltySettings
from store.store import Store
from store.tables import OrderLineRow, OrderRow
from store.types import Readers, raw, readers

__all__ = ["MEMBER_BATCH", "batches", "group_by_member", "members_of", "orders_of", "orders_of_buyers"]

MEMBER_BATCH = 500
ORDERS: Table = OrderRow.__table__  # type: ignore[assignment]

_ORDER_FIELDS = ("marketplace", "account", "order_id", "buyer_key", "created_at", "updated_at",
                 "status", "total", "fulfilment", "currency", "returned_total", "status_changed_at", "delivered_at")
_CONVERTED = frozenset({"created_at", "updated_at", "total", "returned_total", "status_changed_at", "delivered_at"})
_ZERO = Decimal(0)


def _needs_lines(settings: LoyaltySettings) -> bool:
    """Whether some offer tests an order's lines (read them only then)."""
    return any(c.field in ("sku", "offer_id") for f in settings.offers for c in f.conditions)


def _lines_of(conn: Connection, rows: Sequence[Sequence[Any]]) -> dict[tuple[str, str, str], list[tuple]]:
    """(sku, offer_id) of the lines of the orders in `rows`, by order."""
    lines: Table = OrderLineRow.__table__  # type: ignore[assignment]
    c = lines.c
    by_account: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        by_account.setdefault((r[0], r[1]), []).append(r[2])
    out: dict[tuple[str, str, str], list[tuple]] = {}
    for (mp, acct), ids in by_account.items():
        for start in range(0, len(ids), 500):
            stmt = (select(c.order_id, c.sku, c.offer_id)
                    .where(c.marketplace == mp, c.account == acct, c.order_id.in_(ids[start:start + 500]))
                    .order_by(c.order_id, c.line_no))
            for oid, sku, offer_id in conn.execute(stmt):
                out.setdefault((mp, acct, oid), []).append((sku, offer_id))
    return out


_PAGE_ORDERS = 20_000


def _iter_members(engine: Engine, settings: LoyaltySettings,
                  no_identity: dict[str, int]) -> Iterator[tuple[Member, list[OrderFact]]]:
    """Each member's orders, member by member, read in short pages (never the whole order table).

    Keyset pages on the indexed `buyer_key`, each holding only whole buyer keys, and only the columns
    the engine reads; orders without a buyer key are counted per marketplace instead. Marketplaces
    switched off in the settings are skipped.
    """
    c = ORDERS.c
    off = [mp for mp, over in settings.marketplaces.items() if not over.enabled]
    skip = (c.marketplace.not_in(off),) if off else ()
    anonymous = (select(c.marketplace, func.count()).where(or_(c.buyer_key.is_(None), c.buyer_key == ""), *skip)
                 .group_by(c.marketplace))
    columns = _columns()
    with_lines = _needs_lines(settings)
    last: str | None = None
    with engine.connect() as conn:
        for mp, n in conn.execute(anonymous):
            no_identity[mp] = int(n)
    while True:
        after = c.buyer_key > last if last is not None else c.buyer_key.is_not(None)
        stmt = (select(*columns).where(after, c.buyer_key != "", *skip)
                .order_by(c.buyer_key).limit(_PAGE_ORDERS))
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
            if not rows:
                return
            end = rows[-1][3]
            if len(rows) == _PAGE_ORDERS:
                whole = [r for r in rows if r[3] != end]
                if whole:  # the last buyer may continue on the next page: read it then
                    rows, end = whole, whole[-1][3]
                else:  # one buyer fills the page: read all of that buyer's orders
                    rows = conn.execute(select(*columns).where(c.buyer_key == end, *skip)).all()
            lines = _lines_of(conn, rows) if with_lines else None
        yield from _by_member(rows, lines, readers(engine.dialect)).items()
        last = end


def _columns() -> list[Any]:
    """The `_ORDER_FIELDS` columns, dates and money raw (converted in `_by_member`, see `readers`)."""
    c = ORDERS.c
    return [raw(c[f]) if f in _CONVERTED else c[f] for f in _ORDER_FIELDS]


def _by_member(rows: Sequence[Sequence[Any]], lines: dict | None, read: Readers) -> dict[Member, list[OrderFact]]:
    """Rows of `_columns()` (and their lines, when read) as each member's order facts."""
    by_member: dict[Member, list[OrderFact]] = {}
    utc, money = read.utc, read.money
    for row in rows:
        (mp, acct, oid, buyer, created, updated, status, total, fulfilment, currency, returned, changed,
         delivered) = row
        skus = offer_ids = None
        if lines is not None:
            mine = lines.get((mp, acct, oid), ())
            skus = tuple(str(sku) for sku, _ in mine)
            offer_ids = tuple(str(o) for _, o in mine if o is not None)
        by_member.setdefault((mp, acct, buyer), []).append(
            OrderFact(mp, acct, oid, buyer, utc(created), utc(updated), str(status), money(total),
                      fulfilment, currency, skus, offer_ids, money(returned) or _ZERO, utc(changed), utc(delivered)))
    return by_member


def orders_of(store: Store, settings: LoyaltySettings, members: Iterable[Member]) -> dict[Member, list[OrderFact]]:
    """The orders of `members` only (an incremental run), read by buyer key."""
    wanted = set(members)
    if getattr(type(store), "iter_orders", None) is not Store.iter_orders:
        return dict(group_by_member(store.iter_orders(), settings, {}, wanted))
    return _orders_by_key(store.engine, settings, sorted({buyer for _, _, buyer in wanted}), wanted)


def orders_of_buyers(store: Store, settings: LoyaltySettings, buyers: Sequence[str]) -> dict[Member, list[OrderFact]]:
    """The orders of every member with one of these buyer keys (any marketplace and account the
    program does not switch off), from the store's own tables."""
    return _orders_by_key(store.engine, settings, sorted(set(buyers)), None)


def _orders_by_key(engine: Engine, settings: LoyaltySettings, keys: Sequence[str],
                   wanted: set[Member] | None) -> dict[Member, list[OrderFact]]:
    c = ORDERS.c
    off = [mp for mp, over in settings.marketplaces.items() if not over.enabled]
    skip = (c.marketplace.not_in(off),) if off else ()
    columns = _columns()
    out: dict[Member, list[OrderFact]] = {}
    with engine.connect() as conn:
        for start in range(0, len(keys), 500):
            rows = conn.execute(select(*columns).where(c.buyer_key.in_(keys[start:start + 500]), *skip)).all()
            if wanted is not None:
                rows = [r for r in rows if (r[0], r[1], r[3]) in wanted]
            lines = _lines_of(conn, rows) if _needs_lines(settings) else None
            for member, facts in _by_member(rows, lines, readers(conn.dialect)).items():
                out.setdefault(member, []).extend(facts)
    return out


def group_by_member(rows: Iterable[Mapping[str, Any]], settings: LoyaltySettings, no_identity: dict[str, int],
                     buyers: set[Member] | None = None) -> Iterator[tuple[Member, list[OrderFact]]]:
    """Order rows grouped by member, in first-seen order, for a source without keyset pages (an
    object's own `iter_orders()`, e.g. simulate's filtered view); keyless orders are counted per
    marketplace in `no_identity`."""
    by_member: dict[Member, list[OrderFact]] = {}
    for row in rows:
        mp = row["marketplace"]
        over = settings.marketplaces.get(mp)
        if over is not None and not over.enabled:
            continue
        if not row["buyer_key"]:
            no_identity[mp] = no_identity.get(mp, 0) + 1
            continue
        fact = OrderFact.from_row(row)
        if buyers is not None and (fact.marketplace, fact.account, fact.buyer_key) not in buyers:
            continue
        by_member.setdefault((fact.marketplace, fact.account, fact.buyer_key), []).append(fact)
    yield from by_member.items()


def members_of(store: Store, settings: LoyaltySettings,
               no_identity: dict[str, int] | None = None) -> Iterator[tuple[Member, list[OrderFact]]]:
    """Every member's orders; counts the orders without a buyer into `no_identity`."""
    counts = no_identity if no_identity is not None else {}
    if getattr(type(store), "iter_orders", None) is Store.iter_orders:
        return _iter_members(store.engine, settings, counts)  # orders in the ledger's database
    return group_by_member(store.iter_orders(), settings, counts)  # any other order source


def batches(source: Iterable[tuple[Member, list[OrderFact]]],
            size: int | None = None) -> Iterator[list[tuple[Member, list[OrderFact]]]]:
    """`source` in lists of `size` members (default MEMBER_BATCH)."""
    size = size or MEMBER_BATCH
    batch: list[tuple[Member, list[OrderFact]]] = []
    for item in source:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
