"""Stored orders and reviews as their export records (DESIGN's export schema): money as decimal
strings with two places, times ISO 8601 with their offset. `loyalsync export` writes them; the
conformance kit and the harnesses compare stores by them ("identical" means what users see)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = ["ORDER_FIELDS", "REVIEW_FIELDS", "money_text", "order_export", "review_export", "time_text"]

# Not `status_changed_at`: where a platform gives no status time it is when a sync first saw the
# status, which differs between two runs of the same data (a daily and a weekly run, a replay);
# exports of one data set must be equal whatever the runs (the crash harness compares them).
ORDER_FIELDS = ("marketplace", "account", "order_id", "created_at", "updated_at", "status",
                "platform_status", "fulfilment", "buyer_key", "currency", "total", "returned_total", "lines")
LINE_FIELDS = ("sku", "offer_id", "name", "quantity", "price")
REVIEW_FIELDS = ("marketplace", "account", "review_id", "sku", "rating", "text", "pros", "cons",
                 "created_at", "answered", "answer_text", "order_id", "buyer_key")
CENT = Decimal("0.01")


def money_text(value: Decimal) -> str:
    return str(value.quantize(CENT))


def time_text(value: datetime) -> str:
    return value.isoformat()


def order_export(row: dict[str, Any]) -> dict[str, Any]:
    """A stored order as its export record."""
    out = {f: row[f] for f in ORDER_FIELDS if f != "lines"}
    out["created_at"], out["updated_at"] = time_text(row["created_at"]), time_text(row["updated_at"])
    out["total"] = money_text(row["total"])
    out["returned_total"] = money_text(row["returned_total"])
    out["lines"] = [
        {"sku": ln["sku"], "offer_id": ln["offer_id"], "name": ln["name"],
         "quantity": ln["quantity"], "price": money_text(ln["price"])}
        for ln in row["lines"]
    ]
    return out


def review_export(row: dict[str, Any]) -> dict[str, Any]:
    """A stored review as its export record."""
    out = {f: row[f] for f in REVIEW_FIELDS}
    out["created_at"] = time_text(row["created_at"])
    out["answered"] = bool(row["answered"])
    return out
