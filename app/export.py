"""`loyalsync export`: stored records in the DESIGN export schema, as JSON lines or CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import orjson

from store import Store
from store.export import ORDER_FIELDS, REVIEW_FIELDS, money_text, order_export, review_export, time_text

__all__ = ["ACTION_FIELDS", "LEDGER_FIELDS", "ORDER_FIELDS", "REVIEW_FIELDS", "action_export", "export_rows",
           "ledger_export", "order_export", "review_export", "write"]

LEDGER_FIELDS = ("id", "marketplace", "account", "buyer_key", "kind", "amount", "idempotency_key", "order_id",
                 "rule", "effective_at", "available_from", "expires_at", "remaining")
ACTION_FIELDS = ("id", "key", "kind", "marketplace", "account", "target", "title", "text", "public", "purpose",
                 "grounds", "cost", "params", "approval", "status", "reason", "detail", "platform_ref", "attempts",
                 "created_at", "updated_at", "sent_at")
def ledger_export(row: dict[str, Any]) -> dict[str, Any]:
    """A loyalty ledger entry as its export record: amounts as decimal strings, times ISO with offset."""
    out = {f: row[f] for f in LEDGER_FIELDS}
    out["amount"] = money_text(row["amount"])
    out["remaining"] = money_text(row["remaining"]) if row["remaining"] is not None else None
    for f in ("effective_at", "available_from", "expires_at"):
        out[f] = time_text(row[f]) if row[f] is not None else None
    return out


def _ledger_rows(store: Store) -> Iterator[dict[str, Any]]:
    from loyalty.ledger import entries_of

    return (ledger_export(r) for r in entries_of(store))


def action_export(row: dict[str, Any]) -> dict[str, Any]:
    """An outbox action as its export record: cost as a decimal string, params as JSON, times ISO."""
    out = {f: row[f] for f in ACTION_FIELDS}
    out["cost"] = money_text(row["cost"])
    out["params"] = orjson.loads(row["params"] or "{}")
    for f in ("created_at", "updated_at", "sent_at"):
        out[f] = time_text(row[f]) if row[f] is not None else None
    return out


def _action_rows(store: Store) -> Iterator[dict[str, Any]]:
    from loyalty.outbox import action_rows

    return (action_export(r) for r in action_rows(store))


def export_rows(store: Store, kind: str) -> Iterator[dict[str, Any]]:
    """Export records of `kind` (orders, reviews, ledger or actions), streamed (ledger, actions in id order)."""
    if kind == "orders":
        return (order_export(r) for r in store.iter_orders())
    if kind == "reviews":
        return (review_export(r) for r in store.iter_reviews())
    if kind == "ledger":
        return _ledger_rows(store)
    if kind == "actions":
        return _action_rows(store)
    raise ValueError(f"unknown export kind {kind!r}; choose orders, reviews, ledger or actions")


def write(rows: Iterable[dict[str, Any]], kind: str, fmt: str, out: TextIO) -> int:
    """Write rows as `jsonl` or `csv`; returns how many were written."""
    n = 0
    if fmt == "jsonl":
        for row in rows:
            out.write(orjson.dumps(row).decode())
            out.write("\n")
            n += 1
        return n
    if fmt != "csv":
        raise ValueError(f"unknown format {fmt!r}; choose jsonl or csv")
    fields = {"orders": ORDER_FIELDS, "reviews": REVIEW_FIELDS, "ledger": LEDGER_FIELDS, "actions": ACTION_FIELDS}[kind]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        for nested in ("lines", "params"):
            if nested in row:
                # CSV has no nesting: lines and params stay one JSON cell so a spreadsheet still shows them.
                row = {**row, nested: orjson.dumps(row[nested]).decode()}
        writer.writerow(row)
        n += 1
    return n
