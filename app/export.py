"""`loyalsync export`: stored records in the DESIGN export schema, as JSON lines or CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

import orjson

from store import Store

__all__ = ["ACTION_FIELDS", "LEDGER_FIELDS", "ORDER_FIELDS", "REVIEW_FIELDS", "action_export", "export_rows",
           "ledger_export", "order_export", "review_export", "write"]

# Not `status_changed_at`: where a platform gives no status time it is when a sync first saw the
# status, which differs between two runs of the same data (a daily and a weekly run, a replay);
# exports of one data set must be equal whatever the runs (the crash harness compares them).
ORDER_FIELDS = ("marketplace", "account", "order_id", "created_at", "updated_at", "status",
                "platform_status", "fulfilment", "buyer_key", "currency", "total", "returned_total", "lines")
LINE_FIELDS = ("sku", "offer_id", "name", "quantity", "price")
REVIEW_FIELDS = ("marketplace", "account", "review_id", "sku", "rating", "text", "pros", "cons",
                 "created_at", "answered", "answer_text", "order_id", "buyer_key")
LEDGER_FIELDS = ("id", "marketplace", "account", "buyer_key", "kind", "amount", "idempotency_key", "order_id",
                 "rule", "effective_at", "available_from", "expires_at", "remaining")
ACTION_FIELDS = ("id", "key", "kind", "marketplace", "account", "target", "title", "text", "public", "purpose",
                 "grounds", "cost", "params", "approval", "status", "reason", "detail", "platform_ref", "attempts",
                 "created_at", "updated_at", "sent_at")
CENT = Decimal("0.01")


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _time(value: datetime) -> str:
    return value.isoformat()


def order_export(row: dict[str, Any]) -> dict[str, Any]:
    """A stored order as its export record."""
    out = {f: row[f] for f in ORDER_FIELDS if f != "lines"}
    out["created_at"], out["updated_at"] = _time(row["created_at"]), _time(row["updated_at"])
    out["total"] = _money(row["total"])
    out["returned_total"] = _money(row["returned_total"])
    out["lines"] = [
        {"sku": ln["sku"], "offer_id": ln["offer_id"], "name": ln["name"],
         "quantity": ln["quantity"], "price": _money(ln["price"])}
        for ln in row["lines"]
    ]
    return out


def review_export(row: dict[str, Any]) -> dict[str, Any]:
    """A stored review as its export record."""
    out = {f: row[f] for f in REVIEW_FIELDS}
    out["created_at"] = _time(row["created_at"])
    out["answered"] = bool(row["answered"])
    return out


def ledger_export(row: dict[str, Any]) -> dict[str, Any]:
    """A loyalty ledger entry as its export record: amounts as decimal strings, times ISO with offset."""
    out = {f: row[f] for f in LEDGER_FIELDS}
    out["amount"] = _money(row["amount"])
    out["remaining"] = _money(row["remaining"]) if row["remaining"] is not None else None
    for f in ("effective_at", "available_from", "expires_at"):
        out[f] = _time(row[f]) if row[f] is not None else None
    return out


def _ledger_rows(store: Store) -> Iterator[dict[str, Any]]:
    from loyalty.ledger import entries_of

    return (ledger_export(r) for r in entries_of(store))


def action_export(row: dict[str, Any]) -> dict[str, Any]:
    """An outbox action as its export record: cost as a decimal string, params as JSON, times ISO."""
    out = {f: row[f] for f in ACTION_FIELDS}
    out["cost"] = _money(row["cost"])
    out["params"] = orjson.loads(row["params"] or "{}")
    for f in ("created_at", "updated_at", "sent_at"):
        out[f] = _time(row[f]) if row[f] is not None else None
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
