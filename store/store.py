"""The store's one object: page writes with their cursor in one transaction, cursor reads, run results."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Table, func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from connectors.records import OrderRecord, ReviewRecord
from store import identity, products, upsert
from store.tables import (
    AccountRow,
    OrderLineRow,
    OrderRow,
    QuarantineRow,
    ReviewRow,
    StreamCursorRow,
)
from store.types import Binders, binders
from store.upsert import DELIVERED_STATUSES, VOID_STATUSES

__all__ = ["CursorState", "PageWrite", "Quarantined", "Store", "StreamKey"]

# PostgreSQL's "deadlock detected" and "could not serialize": the transaction was rolled back.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})
CONFLICT_ATTEMPTS = 3
CURSORS: Table = StreamCursorRow.__table__  # type: ignore[assignment]
ACCOUNTS: Table = AccountRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class StreamKey:
    """Identifies one (marketplace, account, stream)."""

    marketplace: str
    account: str
    stream: str

    def __str__(self) -> str:
        return f"{self.marketplace}/{self.account}/{self.stream}"


@dataclass(slots=True)
class CursorState:
    """A stream's saved position and last outcome."""

    cursor_at: datetime | None = None
    last_rescan_at: datetime | None = None
    state: str = "new"
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    records_synced: int = 0


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A raw record the mapping refused, with the reason; `payload` has personal data stripped."""

    record_key: str | None
    reason: str
    payload: Any


@dataclass(slots=True)
class PageWrite:
    """Everything one page produced, written in one transaction with the optional cursor move."""

    orders: Sequence[OrderRecord] = ()
    reviews: Sequence[ReviewRecord] = ()
    quarantined: Sequence[Quarantined] = ()
    cursor_at: datetime | None = None
    rescan_at: datetime | None = None

    @property
    def record_count(self) -> int:
        return len(self.orders) + len(self.reviews)


class Store:
    """Reads and writes the local store; one per process, shared by every job."""

    def __init__(self, engine: Engine, *, salt: bytes | None = None):
        """`salt` overrides the installation's buyer-key salt (tests that compare two stores)."""
        self.engine = engine
        self._salt = salt

    def buyer_key_hasher(self, marketplace: str) -> Callable[[str], str]:
        """Raw buyer id -> salted buyer key for `marketplace` (see `store.identity`)."""
        if self._salt is None:
            self._salt = identity.installation_salt(self.engine)
        return identity.buyer_key_hasher(self._salt, marketplace)

    # -- accounts and cursors -------------------------------------------------------------------

    def ensure_account(self, marketplace: str, account: str, display_name: str | None = None) -> None:
        """Record an account from the config (idempotent)."""
        with self.engine.begin() as conn:
            stmt = upsert.dialect_insert(conn, ACCOUNTS).on_conflict_do_nothing()
            conn.execute(stmt, [{"marketplace": marketplace, "account": account,
                                 "display_name": display_name}])

    def get_cursor(self, key: StreamKey) -> CursorState:
        """The saved state of `key`, or a fresh one."""
        with self.engine.connect() as conn:
            row = conn.execute(select(CURSORS).where(*_match(key))).mappings().first()
        if row is None:
            return CursorState()
        return CursorState(**{f: row[f] for f in CursorState.__slots__})

    def write_page(self, key: StreamKey, page: PageWrite, *, now: datetime,
                   fence: Callable[[Connection], None] | None = None) -> None:
        """Upsert a page's records, quarantine its bad ones and move the cursor: all or nothing."""
        self.write_pages(key, (page,), now=now, fence=fence)

    def write_pages(self, key: StreamKey, pages: Sequence[PageWrite], *, now: datetime,
                    fence: Callable[[Connection], None] | None = None) -> None:
        """Write consecutive pages of one stream in one transaction, as if one by one, in order.

        One commit for several pages is what makes a backfill fast: a commit costs about as much
        as the rows it carries (on SQLite it rewrites every index page the rows touched, and
        random order ids touch most of them). The stored result equals writing the pages one
        after another: a record met again in a later page is upserted after its earlier version.
        The cursor takes the last move any page made. `fence` runs first in the transaction and
        raises to refuse the write (`sync.leases`). `now` (the runner's clock) is when a status
        without a platform time was first seen (`OrderRow.status_changed_at`). The product names
        the pages carry go to the name cache in the same transaction (`store.products`).
        """
        bind = binders(self.engine.dialect)
        seen_at = bind.utc(now)  # a status without a platform time was first seen by this write
        wall = bind.utc(datetime.now(UTC))  # when loyalty-relevant changes were written (changed_at)
        order_rows: list[tuple] = []
        line_rows: list[tuple] = []
        review_rows: list[tuple] = []
        quarantine_rows: list[dict[str, Any]] = []
        values: dict[str, Any] = {"records_synced": 0}
        name_rows = products.product_rows((o for p in pages for o in p.orders),
                                          (r for p in pages for r in p.reviews), bind)
        for page in pages:
            orders, lines = _order_rows(page.orders, bind, seen_at, wall)
            order_rows += orders
            line_rows += lines
            review_rows += _review_rows(page.reviews, bind)
            quarantine_rows += [_quarantine_row(key, q, now) for q in page.quarantined]
            values["records_synced"] += page.record_count
            if page.cursor_at is not None:
                values["cursor_at"] = page.cursor_at
            if page.rescan_at is not None:
                values["last_rescan_at"] = page.rescan_at
        # Rows in key order: two streams of one account upserting the same orders at once (WB's
        # orders and statistics) then lock them in the same order, so PostgreSQL never deadlocks.
        # The sort is stable and each row is its own upsert, so a key met again still lands last.
        order_rows.sort(key=itemgetter(2))
        line_rows.sort(key=itemgetter(2, 3))
        review_rows.sort(key=itemgetter(2))
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    if fence is not None:
                        fence(conn)
                    upsert.upsert_orders(conn, order_rows, seen_at, wall)
                    upsert.upsert_order_lines(conn, line_rows)
                    upsert.upsert_reviews(conn, review_rows)
                    upsert.upsert_products(conn, name_rows)
                    upsert.insert_quarantine(conn, quarantine_rows)
                    _save_cursor(conn, key, values, increment=("records_synced",))
                return
            except DBAPIError as exc:
                # Rolled back whole, so trying again is safe; anything else is not ours to retry.
                if attempt == CONFLICT_ATTEMPTS or getattr(exc.orig, "sqlstate", None) not in RETRY_SQLSTATES:
                    raise

    def record_run(self, key: StreamKey, *, state: str, at: datetime, error: str | None = None,
                   fence: Callable[[Connection], None] | None = None) -> None:
        """Store how a run of `key` ended (ok, deferred, error, unavailable)."""
        values: dict[str, Any] = {"state": state, "last_run_at": at}
        if state == "ok":
            values.update(last_success_at=at, last_error=None, last_error_at=None)
        elif error is not None:
            values.update(last_error=error[:2000], last_error_at=at)
        with self.engine.begin() as conn:
            if fence is not None:
                fence(conn)
            _save_cursor(conn, key, values)

    def cursors(self) -> list[dict[str, Any]]:
        """Every stream's saved state, for `status`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(CURSORS).order_by(CURSORS.c.marketplace, CURSORS.c.account, CURSORS.c.stream)
            ).mappings().all()
        return [dict(r) for r in rows]

    # -- reads ----------------------------------------------------------------------------------

    def count(self, table: type, **filters: str) -> int:
        """Rows of `table` (a row model) matching equality filters."""
        t: Table = table.__table__  # type: ignore[attr-defined]
        stmt = select(func.count()).select_from(t)
        for name, value in filters.items():
            stmt = stmt.where(t.c[name] == value)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def buyer_key_coverage(self, marketplace: str, account: str) -> tuple[int, int]:
        """(orders, orders with a buyer key) of one account."""
        orders: Table = OrderRow.__table__  # type: ignore[assignment]
        stmt = select(func.count(), func.count(orders.c.buyer_key)).where(
            orders.c.marketplace == marketplace, orders.c.account == account)
        with self.engine.connect() as conn:
            total, keyed = conn.execute(stmt).one()
        return int(total), int(keyed)

    def iter_orders(self, batch: int = 2000) -> Iterator[dict[str, Any]]:
        """Orders with their lines, in natural-key order, streamed in batches."""
        orders: Table = OrderRow.__table__  # type: ignore[assignment]
        lines: Table = OrderLineRow.__table__  # type: ignore[assignment]
        key = (orders.c.marketplace, orders.c.account, orders.c.order_id)
        with self.engine.connect() as conn:
            last: tuple | None = None
            while True:
                stmt = select(orders).order_by(*key).limit(batch)
                if last is not None:
                    stmt = stmt.where(_after(key, last))
                chunk = conn.execute(stmt).mappings().all()
                if not chunk:
                    return
                ids = [r["order_id"] for r in chunk]
                by_order: dict[tuple, list[dict]] = {}
                line_stmt = (
                    select(lines)
                    .where(lines.c.order_id.in_(ids))
                    .order_by(lines.c.marketplace, lines.c.account, lines.c.order_id, lines.c.line_no)
                )
                for ln in conn.execute(line_stmt).mappings():
                    by_order.setdefault((ln["marketplace"], ln["account"], ln["order_id"]), []).append(dict(ln))
                for r in chunk:
                    row = dict(r)
                    row["lines"] = by_order.get((r["marketplace"], r["account"], r["order_id"]), [])
                    yield row
                last = tuple(chunk[-1][c.name] for c in key)

    def iter_reviews(self, batch: int = 2000) -> Iterator[dict[str, Any]]:
        """Reviews in natural-key order, streamed in batches."""
        reviews: Table = ReviewRow.__table__  # type: ignore[assignment]
        key = (reviews.c.marketplace, reviews.c.account, reviews.c.review_id)
        with self.engine.connect() as conn:
            last: tuple | None = None
            while True:
                stmt = select(reviews).order_by(*key).limit(batch)
                if last is not None:
                    stmt = stmt.where(_after(key, last))
                chunk = conn.execute(stmt).mappings().all()
                if not chunk:
                    return
                yield from (dict(r) for r in chunk)
                last = tuple(chunk[-1][c.name] for c in key)

    def quarantine(self, key: StreamKey | None = None) -> list[dict[str, Any]]:
        """Quarantined records, newest first."""
        q: Table = QuarantineRow.__table__  # type: ignore[assignment]
        stmt = select(q).order_by(q.c.id.desc())
        if key is not None:
            stmt = stmt.where(q.c.marketplace == key.marketplace, q.c.account == key.account,
                              q.c.stream == key.stream)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]


def _match(key: StreamKey) -> tuple:
    return (CURSORS.c.marketplace == key.marketplace, CURSORS.c.account == key.account,
            CURSORS.c.stream == key.stream)


def _after(cols: tuple, values: tuple):
    from sqlalchemy import tuple_

    return tuple_(*cols) > tuple_(*values)


def _save_cursor(conn, key: StreamKey, values: dict[str, Any], increment: tuple[str, ...] = ()) -> None:
    stmt = update(CURSORS).where(*_match(key)).values(
        **{k: (CURSORS.c[k] + v if k in increment else v) for k, v in values.items()}
    )
    if conn.execute(stmt).rowcount == 0:
        conn.execute(upsert.dialect_insert(conn, CURSORS).values(
            marketplace=key.marketplace, account=key.account, stream=key.stream, **values))


# The tuples below list the columns in the order of `upsert.*_COLUMNS`; this keeps them in step.
_ROW_LAYOUT = {
    "orders": ("marketplace", "account", "order_id", "created_at", "updated_at", "status",
               "platform_status", "fulfilment", "buyer_key", "currency", "total", "source",
               "source_rank", "returned_total", "status_changed_at", "delivered_at", "changed_at"),
    "order_lines": ("marketplace", "account", "order_id", "line_no", "sku", "offer_id", "name",
                    "quantity", "price", "source_rank"),
    "reviews": ("marketplace", "account", "review_id", "sku", "rating", "text", "pros", "cons",
                "created_at", "answered", "answer_text", "order_id", "buyer_key", "product_name",
                "brand"),
}
if tuple(_ROW_LAYOUT.values()) != (upsert.ORDER_COLUMNS, upsert.LINE_COLUMNS, upsert.REVIEW_COLUMNS):
    raise ImportError("store.store builds rows for a different column layout than the tables'")


def _order_rows(orders: Sequence[OrderRecord], bind: Binders, seen_at: Any,
                wall: Any = None) -> tuple[list[tuple], list[tuple]]:
    """Order rows and line rows of a page, as the driver receives them.

    `seen_at` (the write's `now`, driver-ready) stands in for a status time the record lacks;
    `wall` (driver-ready) is the new rows' `changed_at`.
    """
    utc, money = bind.utc, bind.money
    order_rows: list[tuple] = []
    line_rows: list[tuple] = []
    add_order, add_line = order_rows.append, line_rows.append
    for o in orders:
        mp, acc, oid, rank = o.marketplace, o.account, o.order_id, o.source_rank
        created = utc(o.created_at)
        # Most sources stamp no separate change time: convert the shared datetime once.
        updated = created if o.updated_at is o.created_at else utc(o.updated_at)
        # A platform's status time is often its change time itself (Yandex Market's updateDate).
        changed = o.status_changed_at
        if changed is None:
            changed = seen_at
        elif changed is o.updated_at:
            changed = updated
        else:
            changed = utc(changed)
        # Only a new row takes this value (the merge keeps or derives a stored row's). First seen
        # already delivered with no platform time, as in a first sync's backfill, the delivery
        # happened by the platform's last change: a first-seen time would hold months-old
        # deliveries' points back for a whole return window after the first sync.
        delivered = None
        if o.status.value in DELIVERED_STATUSES:
            delivered = updated if o.status_changed_at is None else changed
        # A void status without a platform time is dated by the platform's last change if this row
        # is new (a backfill), and when first seen if it moves a stored order: `changed_at` NULL
        # tells the merge which (store.upsert, "undated void").
        stamp = wall if wall is not None else seen_at
        if o.status_changed_at is None and o.status.value in VOID_STATUSES:
            changed, stamp = updated, None
        add_order((mp, acc, oid, created, updated, o.status.value, o.platform_status, o.fulfilment,
                   o.buyer_key, o.currency, money(o.total), o.source, rank, money(o.returned_total), changed,
                   delivered, stamp))
        for i, line in enumerate(o.lines):
            add_line((mp, acc, oid, i, line.sku, line.offer_id, line.name, line.quantity,
                      money(line.price), rank))
    return order_rows, line_rows


def _review_rows(reviews: Sequence[ReviewRecord], bind: Binders) -> list[tuple]:
    utc, boolean = bind.utc, bind.boolean
    return [
        (r.marketplace, r.account, r.review_id, r.sku, r.rating, r.text, r.pros, r.cons,
         utc(r.created_at), boolean(r.answered), r.answer_text, r.order_id, r.buyer_key,
         r.product_name, r.brand)
        for r in reviews
    ]


def _quarantine_row(key: StreamKey, q: Quarantined, now: datetime) -> dict[str, Any]:
    payload = orjson.dumps(q.payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                           default=str).decode()
    return {
        "marketplace": key.marketplace, "account": key.account, "stream": key.stream,
        "record_key": q.record_key, "reason": q.reason[:1000], "payload": payload,
        "payload_hash": hashlib.sha256(payload.encode()).hexdigest(), "seen_at": now,
    }
