"""Bulk upserts on natural keys with the dialect's ON CONFLICT, one statement per table per page.

When two APIs describe the same order (WB's Marketplace and Statistics APIs), the row keeps the
fields of the more trusted source (`source_rank`), fills gaps from the other, and accepts a
cancellation from either while the order is still open.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, and_, case, func, literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from sync.store.tables import OrderLineRow, OrderRow, QuarantineRow, ReviewRow

__all__ = ["insert_quarantine", "upsert_order_lines", "upsert_orders", "upsert_reviews"]

ORDERS: Table = OrderRow.__table__  # type: ignore[assignment]
LINES: Table = OrderLineRow.__table__  # type: ignore[assignment]
REVIEWS: Table = ReviewRow.__table__  # type: ignore[assignment]
QUARANTINE: Table = QuarantineRow.__table__  # type: ignore[assignment]

OPEN_STATUSES = ("created", "in_delivery")


def _insert(conn: Connection, table: Table):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _key_columns(table: Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def upsert_orders(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or merge order rows (see module docstring for the merge rule)."""
    if not rows:
        return
    stmt = _insert(conn, ORDERS)
    new, old = stmt.excluded, ORDERS.c
    trusted = new.source_rank >= old.source_rank
    # Literal SQL, not bound parameters: executemany cannot expand an IN list per row.
    open_statuses = [literal_column(f"'{s}'") for s in OPEN_STATUSES]
    takes_status = trusted | and_(new.status == literal_column("'cancelled'"),
                                  old.status.in_(open_statuses))
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
        elif name == "source_rank":
            merged[name] = case((trusted, new.source_rank), else_=old.source_rank)
        else:
            merged[name] = case((trusted, new[name]), else_=func.coalesce(old[name], new[name]))
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=merged), rows)


def upsert_order_lines(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace order lines, unless a more trusted source already wrote them."""
    if not rows:
        return
    stmt = _insert(conn, LINES)
    new, old = stmt.excluded, LINES.c
    keys = _key_columns(LINES)
    trusted = new.source_rank >= old.source_rank
    merged = {
        c.name: case((trusted, new[c.name]), else_=old[c.name])
        for c in LINES.columns
        if c.name not in keys
    }
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=merged), rows)


def upsert_reviews(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or overwrite reviews: the platform's latest view (e.g. now answered) wins."""
    if not rows:
        return
    stmt = _insert(conn, REVIEWS)
    keys = _key_columns(REVIEWS)
    merged = {c.name: stmt.excluded[c.name] for c in REVIEWS.columns if c.name not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=merged), rows)


def insert_quarantine(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Keep each distinct malformed record once, however often it is re-read."""
    if not rows:
        return
    stmt = _insert(conn, QUARANTINE).on_conflict_do_nothing(
        index_elements=["marketplace", "account", "stream", "payload_hash"]
    )
    conn.execute(stmt, rows)


