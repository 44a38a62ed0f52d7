"""Bulk upserts on natural keys with the dialect's ON CONFLICT, one statement per table per page.

When two APIs describe the same order (WB's Marketplace and Statistics APIs), the row keeps the
fields of the more trusted source (`source_rank`), fills gaps from the other, and accepts a
cancellation from either while the order is still open (`OPEN_STATUSES`: a delivered, partially
returned or returned order is closed). A buyer key, once seen, is kept. `returned_total` only
grows: the row keeps the larger of the stored and the incoming value, whichever source sent it
(a later read, or a source that does not see returns, must not make returned goods "unreturned").

`status_changed_at` says when the order reached its current status. A row carries the record's
platform time, else the write's `now` (the runner's clock: when a sync first saw the status), and
the merge compares the RESULTING status (after the rules above) with the stored one:
- it differs: the incoming row's time (the change happened now, as this record tells it);
- it is the same and so is the incoming status: the stored time, unless the incoming one is a
  platform time EARLIER than it. A platform stamp is the true moment, and a first-seen time is
  never before it; so the earliest platform stamp for the status wins whichever source and run
  sent it (WB: Marketplace sees a cancellation first with no time, Statistics dates it later),
  while a first-seen time never replaces anything, not even a later stamp (a run's `now` is its
  start, which can precede a change it then reads);
- anything else (a less trusted source's other status, not taken): the stored time.
A row's time is a platform time when it is not the write's `now` (a statement parameter; a stamp
equal to `now` to the microsecond would count as first-seen).

An undated void (`cancelled` or `returned` without a platform time) comes in with its
`updated_at` as its status time and `changed_at` NULL, which the merge reads as the mark: a NEW
row keeps `updated_at` (the platform's last change; the creation on Ozon and WB Marketplace),
because an order first seen already void, as in a first sync's backfill, was never seen alive and
no run granted anything for it; dated when the sync saw it, it would count as void after it
settled, earn, use budget and hold a reward position until then, differently on every run. A
STORED order it moves is dated when first seen, as above (live runs did see it alive). The
mark is never a stamp for the same-status rules, and a new row's NULL `changed_at` is set to the
write's wall time at the end of the statement.

`delivered_at` is when the order first reached `delivered` or `partially_returned`, kept once
known (a later return does not erase it): the loyalty engine's return window counts from it. A
status move to it takes the new status time (platform or first seen); an order first seen already
delivered without a platform time (a first sync's backfill) takes the record's `updated_at`, the
platform's last change, not the sync's clock.
`changed_at` is the wall time (`wall`, the statement's second parameter) of the last write that
changed what loyalty reads: the status or its time, a growing return, the total from a trusted
source, a first buyer key. The incremental loyalty run reads members from it.

Speed (bench/ingest.py): each statement is built and compiled once per dialect (`_prepared`), and
rows arrive as tuples already converted to what the driver receives (`store.types.Binders`),
so SQLAlchemy's per-row parameter processing (more CPU than SQLite's own insert) is skipped.
SQLite takes the rows through `executemany`, one upsert each. PostgreSQL takes them as one binary
array per column in a single `INSERT … SELECT FROM unnest(…) ON CONFLICT …`: one statement for
thousands of rows. Measured against psycopg's pipelined `executemany` (bench/ingest.py, WB):
about 55 µs of CPU per order between client and server instead of 95, which is what replicas
sharing a machine's cores scale on; text arrays would spend a third of the client's share on
psycopg escaping each element. One statement may not touch a row twice there, so a key met again
(a re-read page in the same batch) goes into a following statement. The merge expressions are
the same on both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Numeric, Table, and_, bindparam, case, cast, func, literal_column, or_, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from store.tables import OrderLineRow, OrderRow, ProductRow, QuarantineRow, ReviewRow
from store.types import UTCDateTime

__all__ = [
    "dialect_insert",
    "LINE_COLUMNS",
    "ORDER_COLUMNS",
    "PRODUCT_COLUMNS",
    "REVIEW_COLUMNS",
    "insert_quarantine",
    "upsert_order_lines",
    "upsert_orders",
    "upsert_products",
    "upsert_reviews",
]

ORDERS: Table = OrderRow.__table__  # type: ignore[assignment]
LINES: Table = OrderLineRow.__table__  # type: ignore[assignment]
REVIEWS: Table = ReviewRow.__table__  # type: ignore[assignment]
QUARANTINE: Table = QuarantineRow.__table__  # type: ignore[assignment]
PRODUCTS: Table = ProductRow.__table__  # type: ignore[assignment]

# The order of the values in a row tuple given to the upserts below: the tables' column order.
ORDER_COLUMNS: tuple[str, ...] = tuple(c.name for c in ORDERS.columns)
LINE_COLUMNS: tuple[str, ...] = tuple(c.name for c in LINES.columns)
REVIEW_COLUMNS: tuple[str, ...] = tuple(c.name for c in REVIEWS.columns)
PRODUCT_COLUMNS: tuple[str, ...] = tuple(c.name for c in PRODUCTS.columns)

OPEN_STATUSES = ("created", "in_delivery")
DELIVERED_STATUSES = ("delivered", "partially_returned")
VOID_STATUSES = ("cancelled", "returned")


def dialect_insert(conn: Connection, table: Table):
    """An INSERT that knows the connection's ON CONFLICT dialect (SQLite or PostgreSQL)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _key_columns(table: Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A statement compiled for one dialect, and how to hand it rows of `columns` order.

    `params` are the statement's own parameters, one value per execution (the write's `now`),
    bound after the rows' values: on SQLite appended to each row, on PostgreSQL after the arrays.
    """

    sql: str
    columns: tuple[str, ...]
    arrays: bool  # PostgreSQL: one array per column, `key` positions unique per statement
    key: tuple[int, ...] = ()
    params: tuple[str, ...] = ()

    def execute(self, conn: Connection, rows: Sequence[tuple], params: tuple = ()) -> None:
        if len(params) != len(self.params):
            raise TypeError(f"expected values for {self.params}, got {len(params)}")
        if not self.arrays:  # SQLite's qmark: the tuples go to executemany as they are
            if params:
                rows = [row + params for row in rows]
            conn.exec_driver_sql(self.sql, rows if isinstance(rows, list) else list(rows))
            return
        for batch in _in_rounds(rows, self.key):
            conn.exec_driver_sql(self.sql, tuple(list(values) for values in zip(*batch, strict=True)) + params)


def _in_rounds(rows: Sequence[tuple], key: tuple[int, ...]) -> list[Sequence[tuple]]:
    """`rows` split so that no part holds a key twice, each key's rows in order across the parts."""
    pick = itemgetter(*key)
    seen: dict[Any, int] = {}
    rounds: list[list[tuple]] = []
    for row in rows:
        k = pick(row)
        n = seen.get(k, 0)
        seen[k] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(row)
    return rounds


_PREPARED: dict[tuple, _Prepared] = {}


def _prepared(conn: Connection, name: str, table: Table, columns: tuple[str, ...],
              build: Callable[[Connection], Any], params: tuple[str, ...] = ()) -> _Prepared:
    """`build(conn)`'s statement compiled once per dialect (and server version).

    `params` name the statement's own parameters, each used once, in the ON CONFLICT clause.
    """
    dialect = conn.dialect
    key = (name, dialect.name, dialect.driver, dialect.paramstyle, dialect.server_version_info)
    prepared = _PREPARED.get(key)
    if prepared is None:
        compiled = build(conn).compile(dialect=dialect, column_keys=list(columns))
        # Every bind must be one column's value (positional ones in table order) or one of `params`
        # (after them, in that order): else a bug.
        binds = compiled.positiontup if dialect.positional else sorted(set(compiled.bind_names.values()))
        expected = [*columns, *params] if dialect.positional else sorted([*columns, *params])
        if list(binds or ()) != expected:
            raise RuntimeError(f"unexpected parameters for {name}: {binds}")
        if dialect.name == "postgresql":
            prepared = _array_upsert(compiled.string, table, columns, dialect, params)
        elif dialect.positional:
            prepared = _Prepared(compiled.string, columns, arrays=False, params=params)
        else:
            raise RuntimeError(f"no bulk upsert for the {dialect.name} driver {dialect.driver}")
        _PREPARED[key] = prepared
    return prepared


def _array_upsert(sql: str, table: Table, columns: tuple[str, ...], dialect,
                  params: tuple[str, ...] = ()) -> _Prepared:
    """`INSERT … VALUES (…) ON CONFLICT …` as `INSERT … SELECT * FROM unnest(arrays) ON CONFLICT …`.

    The arrays are cast to the columns' types without length or scale: an explicit cast to
    VARCHAR(n) would cut a long value silently, where the insert itself refuses it. The
    statement's own `params` become positional too, after the arrays.
    """
    head, conflict = sql.split(" VALUES ", 1)
    conflict = conflict[conflict.index(" ON CONFLICT "):]
    at = [conflict.find(f"%({p})s") for p in params]
    if any(i < 0 for i in at) or at != sorted(at) or any(conflict.count(f"%({p})s") != 1 for p in params):
        raise RuntimeError(f"statement parameters {params} must each appear once, in order: {conflict}")
    for p in params:
        conflict = conflict.replace(f"%({p})s", "%b")
    casts = ", ".join(
        f"%b::{table.c[c].type.compile(dialect=dialect).split('(')[0]}[]" for c in columns)
    key = tuple(columns.index(c.name) for c in table.primary_key.columns)
    return _Prepared(f"{head} SELECT * FROM unnest({casts}){conflict}", columns, arrays=True, key=key,
                     params=params)


def _orders_statement(conn: Connection):
    stmt = dialect_insert(conn, ORDERS)
    new, old = stmt.excluded, ORDERS.c
    trusted = new.source_rank >= old.source_rank
    # Literal SQL, not bound parameters: executemany cannot expand an IN list per row.
    open_statuses = [literal_column(f"'{s}'") for s in OPEN_STATUSES]
    takes_status = trusted | and_(new.status == literal_column("'cancelled'"),
                                  old.status.in_(open_statuses))
    # See the module docstring. `now` is the write's clock: a row's time equal to it was first seen.
    # The cheap comparison first: a re-read of an unchanged status stops there.
    status_moves = and_(new.status != old.status, takes_status)
    undated_void = new.changed_at.is_(None)  # its status time is `updated_at`, no platform stamp
    earlier_stamp = and_(new.status == old.status, new.status_changed_at < old.status_changed_at,
                         new.status_changed_at != bindparam("now", type_=UTCDateTime), ~undated_void)
    delivered = [literal_column(f"'{s}'") for s in DELIVERED_STATUSES]
    grows = cast(new.returned_total, Numeric(20, 4)) > cast(old.returned_total, Numeric(20, 4))
    # What the loyalty engine reads changed: it is then picked up by the next incremental run. (An
    # earlier time for the same status, first-seen or not: the statement's `now` may appear once.)
    same_status_earlier = and_(new.status == old.status, new.status_changed_at < old.status_changed_at,
                               ~undated_void)
    loyalty_moves = or_(status_moves, same_status_earlier, grows,
                        and_(trusted, cast(new.total, Numeric(20, 4)) != cast(old.total, Numeric(20, 4))),
                        and_(old.buyer_key.is_(None), new.buyer_key.is_not(None)))
    keys = set(_key_columns(ORDERS))
    merged: dict[str, Any] = {}
    for col in ORDERS.columns:
        name = col.name
        if name in keys:
            continue
        if name in ("status", "platform_status"):
            merged[name] = case((takes_status, new[name]), else_=old[name])
        elif name == "updated_at":
            merged[name] = case((new.updated_at > old.updated_at, new.updated_at), else_=old.updated_at)
        elif name == "status_changed_at":
            # `seen`: the write's `now` again (a prepared statement takes each parameter once).
            merged[name] = case((and_(status_moves, undated_void), bindparam("seen", type_=UTCDateTime)),
                                (or_(status_moves, earlier_stamp), new.status_changed_at),
                                else_=old.status_changed_at)
        elif name == "delivered_at":
            # The first delivery: kept once known, whatever comes after (a return).
            merged[name] = case(
                (old.delivered_at.is_not(None), old.delivered_at),
                (and_(status_moves, new.status.in_(delivered)), new.status_changed_at),
                (old.status.in_(delivered), old.status_changed_at),
                else_=None)
        elif name == "changed_at":
            merged[name] = case((loyalty_moves, bindparam("wall", type_=UTCDateTime)), else_=old.changed_at)
        elif name == "source_rank":
            merged[name] = case((trusted, new.source_rank), else_=old.source_rank)
        elif name == "returned_total":
            # max(stored, incoming). Money is text on SQLite, so compare as numbers, not strings:
            # the CAST is a no-op on PostgreSQL and gives SQLite's REAL/INTEGER (exact enough to
            # order amounts of NUMERIC(20, 4) below 10^11); the stored value itself is never cast.
            merged[name] = case((grows, new.returned_total), else_=old.returned_total)
        elif name == "buyer_key":
            # Platforms show the buyer only while an order is active (Yandex Market DBS): a later
            # read without one must not erase the key loyalty needs when the order is delivered.
            merged[name] = func.coalesce(new.buyer_key, old.buyer_key)
        else:
            merged[name] = case((trusted, new[name]), else_=func.coalesce(old[name], new[name]))
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=merged)


def _lines_statement(conn: Connection):
    stmt = dialect_insert(conn, LINES)
    new, old = stmt.excluded, LINES.c
    keys = _key_columns(LINES)
    trusted = new.source_rank >= old.source_rank
    merged = {
        c.name: case((trusted, new[c.name]), else_=old[c.name])
        for c in LINES.columns
        if c.name not in keys
    }
    return stmt.on_conflict_do_update(index_elements=keys, set_=merged)


def _reviews_statement(conn: Connection):
    stmt = dialect_insert(conn, REVIEWS)
    keys = _key_columns(REVIEWS)
    merged = {c.name: stmt.excluded[c.name] for c in REVIEWS.columns if c.name not in keys}
    return stmt.on_conflict_do_update(index_elements=keys, set_=merged)


def _products_statement(conn: Connection):
    stmt = dialect_insert(conn, PRODUCTS)
    new, old = stmt.excluded, PRODUCTS.c
    # The platform's later view of a name wins (store.products); a source without a brand keeps one.
    return stmt.on_conflict_do_update(
        index_elements=_key_columns(PRODUCTS),
        set_={"name": new.name, "brand": func.coalesce(new.brand, old.brand), "source": new.source,
              "updated_at": new.updated_at},
        where=new.updated_at > old.updated_at,
    )


def upsert_orders(conn: Connection, rows: Sequence[tuple], now: Any, wall: Any = None) -> None:
    """Insert or merge order rows (see module docstring for the merge rule).

    Each row is a tuple of driver-ready values in `ORDER_COLUMNS` order; `now` is the write's
    clock as the driver receives it (`Binders.utc`), the `status_changed_at` of every row that
    has no platform time; `wall` (default `now`) the wall time a change is stamped with (`changed_at`).
    """
    if rows:
        wall = now if wall is None else wall
        _prepared(conn, "orders", ORDERS, ORDER_COLUMNS, _orders_statement, ("seen", "now", "wall")).execute(
            conn, rows, (now, now, wall))
        if any(row[-1] is None for row in rows):
            # Undated voids inserted by this write: stamp them as changed now (text: `wall` is
            # already what the driver receives).
            conn.execute(_STAMP_NEW_UNDATED_VOIDS, {"wall": wall})


_STAMP_NEW_UNDATED_VOIDS = text("UPDATE orders SET changed_at = :wall WHERE changed_at IS NULL")


def upsert_order_lines(conn: Connection, rows: Sequence[tuple]) -> None:
    """Insert or replace order lines, unless a more trusted source already wrote them.

    Each row is a tuple of driver-ready values in `LINE_COLUMNS` order.
    """
    if rows:
        _prepared(conn, "order_lines", LINES, LINE_COLUMNS, _lines_statement).execute(conn, rows)


def upsert_reviews(conn: Connection, rows: Sequence[tuple]) -> None:
    """Insert or overwrite reviews: the platform's latest view (e.g. now answered) wins.

    Each row is a tuple of driver-ready values in `REVIEW_COLUMNS` order.
    """
    if rows:
        _prepared(conn, "reviews", REVIEWS, REVIEW_COLUMNS, _reviews_statement).execute(conn, rows)


def upsert_products(conn: Connection, rows: Sequence[tuple]) -> None:
    """Insert cached product names, or replace a stored one with a name the platform showed later.

    Each row is a tuple of driver-ready values in `PRODUCT_COLUMNS` order, one per key.
    """
    if rows:
        _prepared(conn, "products", PRODUCTS, PRODUCT_COLUMNS, _products_statement).execute(conn, rows)


def insert_quarantine(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Keep each distinct malformed record once, however often it is re-read."""
    if not rows:
        return
    stmt = dialect_insert(conn, QUARANTINE).on_conflict_do_nothing(
        index_elements=["marketplace", "account", "stream", "payload_hash"]
    )
    conn.execute(stmt, rows)
