"""Wildberries payloads -> normalised records. Pure functions; each raises MalformedRecord.

Units differ by API: the Marketplace API sends kopecks and UTC; the Statistics API sends rubles
and Moscow time without an offset; feedbacks carry their own offset. One order is one item, and
`rid` (Marketplace) == `srid` (Statistics) names the same order in both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.base import MappingContext
from connectors.convert import (
    MOSCOW,
    currency_alpha,
    minor_to_major,
    number_to_decimal,
    parse_aware,
    parse_local,
)
from connectors.errors import MalformedRecord
from connectors.records import OrderLine, OrderRecord, OrderStatus, ReviewRecord

__all__ = [
    "MARKETPLACE_RANK",
    "STATISTICS_RANK",
    "map_feedback",
    "map_marketplace_order",
    "map_statistics_order",
    "marketplace_status",
]

# The Marketplace API knows an FBS order's detailed status; Statistics only knows "cancelled or not".
MARKETPLACE_RANK = 2
STATISTICS_RANK = 1

_CANCELLED_WB = frozenset({"canceled", "canceled_by_client", "declined_by_client",
                           "canceled_by_carrier", "defect"})
_CANCELLED_SUPPLIER = frozenset({"cancel", "cancel_carrier"})
_MOVING_WB = frozenset({"sorted", "ready_for_pickup", "postponed_delivery", "accepted_by_carrier",
                        "sent_to_carrier"})
_WAREHOUSE_FULFILMENT = {"Склад WB": "fbo", "Склад продавца": "fbs"}
# Statistics writes this (Moscow time) for a date it has not set, e.g. `cancelDate` of a live order.
_UNSET_DATE = "0001-01-01"


def marketplace_status(supplier_status: str | None, wb_status: str | None) -> OrderStatus:
    """WB's pair of FBS statuses -> the normalised lifecycle."""
    if wb_status in _CANCELLED_WB or supplier_status in _CANCELLED_SUPPLIER:
        return OrderStatus.CANCELLED
    if wb_status == "sold":
        return OrderStatus.DELIVERED
    if supplier_status == "complete" or wb_status in _MOVING_WB:
        return OrderStatus.IN_DELIVERY
    return OrderStatus.CREATED


def map_marketplace_order(raw: dict[str, Any], ctx: MappingContext) -> OrderRecord:
    """An FBS assembly order from GET /api/v3/orders, joined with its entry from /orders/status.

    The connector puts the status entry under `_status` (absent if WB did not return one).
    Amounts are taken in the seller's currency (`converted*`), as Statistics reports them.
    No status time: an order has only `createdAt`, and `POST /api/v3/orders/status` answers
    `{id, supplierStatus, wbStatus}` without a date (wildberries.md §3), so the store stamps when a
    sync first saw the status.
    """
    rid = _required_str(raw, "rid")
    created = parse_aware(raw.get("createdAt"), "createdAt")
    price = minor_to_major(raw.get("convertedPrice"), "convertedPrice")
    currency = currency_alpha(raw.get("convertedCurrencyCode"), "convertedCurrencyCode")
    status_entry = raw.get("_status") or {}
    supplier, wb = status_entry.get("supplierStatus"), status_entry.get("wbStatus")
    for name, value in (("supplierStatus", supplier), ("wbStatus", wb)):
        if value is not None and not isinstance(value, str):
            raise MalformedRecord(f"{name}: expected a status name, got {value!r}", record_key=rid)
    line = OrderLine(sku=_sku(raw.get("nmId"), "nmId"), offer_id=_opt_str(raw.get("article")),
                     name=None, quantity=1, price=price)
    return OrderRecord(
        marketplace=ctx.marketplace, account=ctx.account, order_id=rid,
        created_at=created, updated_at=created,
        status=marketplace_status(supplier, wb),
        platform_status=f"{supplier or 'unknown'}/{wb or 'unknown'}",
        fulfilment=_opt_str(raw.get("deliveryType")) or "fbs",
        currency=currency, total=price, lines=(line,),
        source="marketplace", source_rank=MARKETPLACE_RANK,
    )


def map_statistics_order(raw: dict[str, Any], ctx: MappingContext) -> OrderRecord:
    """A row of GET /api/v1/supplier/orders: any scheme incl. FBO, rubles, Moscow time."""
    srid = _required_str(raw, "srid")
    created = parse_local(raw.get("date"), "date", MOSCOW)
    changed = parse_local(raw.get("lastChangeDate"), "lastChangeDate", MOSCOW)
    price = number_to_decimal(raw.get("finishedPrice"), "finishedPrice")
    cancelled = raw.get("isCancel")
    if not isinstance(cancelled, bool):
        raise MalformedRecord(f"isCancel: expected true or false, got {cancelled!r}")
    line = OrderLine(sku=_sku(raw.get("nmId"), "nmId"), offer_id=_opt_str(raw.get("supplierArticle")),
                     name=None, quantity=1, price=price)
    return OrderRecord(
        marketplace=ctx.marketplace, account=ctx.account, order_id=srid,
        created_at=created, updated_at=max(changed, created),
        status=OrderStatus.CANCELLED if cancelled else OrderStatus.CREATED,
        platform_status="isCancel" if cancelled else "active",
        fulfilment=_WAREHOUSE_FULFILMENT.get(raw.get("warehouseType")),  # type: ignore[arg-type]
        currency="RUB", total=price, lines=(line,),
        source="statistics", source_rank=STATISTICS_RANK,
        status_changed_at=_cancel_date(raw, created) if cancelled else None,
    )


def _cancel_date(raw: dict[str, Any], created: datetime) -> datetime | None:
    """When a cancelled Statistics row was cancelled: `cancelDate`, or None while WB leaves it unset.

    wildberries.md §3 (Statistics orders): "`cancelDate` | string | `"0001-01-01T00:00:00"` when not
    cancelled, Moscow time" (§6: Statistics dates have no offset and are Moscow time). It is the one
    status time either WB order API carries: Marketplace orders have only `createdAt`, and a
    Statistics row that is not cancelled says nothing about delivery (`lastChangeDate` is the row's
    last change, whatever changed). The official example cancels on "2022-03-09T00:00:00", a
    midnight after the row's `lastChangeDate`: WB may write the day only, so the time is taken as
    WB gives it, except that it is never before the order's `date` (a same-day cancellation dated
    at midnight would otherwise precede the order itself).
    """
    value = raw.get("cancelDate")
    if value is None or value == "" or (isinstance(value, str) and value.startswith(_UNSET_DATE)):
        return None
    return max(parse_local(value, "cancelDate", MOSCOW), created)


def map_feedback(raw: dict[str, Any], ctx: MappingContext) -> ReviewRecord:
    """A feedback from GET /api/v1/feedbacks. WB links no order and no buyer to a review."""
    review_id = _required_str(raw, "id")
    rating = raw.get("productValuation")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise MalformedRecord(f"productValuation: expected 1..5, got {rating!r}", record_key=review_id)
    details = raw.get("productDetails")
    if not isinstance(details, dict):
        raise MalformedRecord("productDetails: missing", record_key=review_id)
    answer = raw.get("answer")
    answer_text = answer.get("text") if isinstance(answer, dict) else None
    return ReviewRecord(
        marketplace=ctx.marketplace, account=ctx.account, review_id=review_id,
        sku=_sku(details.get("nmId"), "productDetails.nmId"),
        rating=rating,
        text=_text(raw.get("text")), pros=_text(raw.get("pros")), cons=_text(raw.get("cons")),
        created_at=parse_aware(raw.get("createdDate"), "createdDate"),
        answered=bool(answer_text),
        answer_text=answer_text or None,
        product_name=_opt_str(details.get("productName")),
        brand=_opt_str(details.get("brandName")),
    )


def _required_str(raw: dict[str, Any], field: str) -> str:
    value = raw.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise MalformedRecord(f"{field}: missing or empty")
    return value


def _sku(value: object, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or value in ("", 0):
        raise MalformedRecord(f"{field}: expected a product id, got {value!r}")
    return str(value)


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


