"""Yandex Market payloads -> normalised records. Pure functions; each raises MalformedRecord.

Units (yandex_market.md §3, §8): times are ISO 8601 with an offset (Market writes +03:00); money
is a decimal `number` in major units of the shop currency, each amount a `CurrencyValueDTO
{value, currencyId}` whose currency enum says `RUR` for the rouble. An item's `prices` are for
the whole line (all `count` units); what the buyer paid for goods is `payment + cashback`
(cashback = the part paid with Plus points); `subsidy` is Market's money to the seller, and
delivery is priced apart, so neither is in the total.

Returns: a `PARTIALLY_RETURNED` order's items say which units came back in `itemStatuses`
(`OrderItemUnitStatusDTO {count, status}`); units `RETURNED` or `REJECTED` count, at the line's unit
price, towards `returned_total`. A `RETURNED` order returned everything (`returned_total = total`);
any other status carries no return (REJECTED before delivery belongs to the cancellation flow).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connectors.base import MappingContext
from connectors.convert import number_to_decimal, parse_aware
from connectors.errors import MalformedRecord
from connectors.records import OrderLine, OrderRecord, OrderStatus, ReviewRecord

__all__ = ["PROGRAM_FULFILMENT", "STATUS_MAP", "map_feedback", "map_order", "order_status"]

_S = OrderStatus
# `substatus` is required on every BusinessOrderDTO; the spec names values for PROCESSING and
# CANCELLED only, and UNKNOWN ("other values ... need no processing") adds nothing to the status.
# OrderStatusType (yandex_market.md §3). UNKNOWN and values not listed here are quarantined:
# the spec says "other values may be returned, don't process them".
STATUS_MAP = {
    "PLACING": _S.CREATED, "RESERVED": _S.CREATED, "UNPAID": _S.CREATED, "PENDING": _S.CREATED,
    "PROCESSING": _S.CREATED,
    "DELIVERY": _S.IN_DELIVERY, "PICKUP": _S.IN_DELIVERY,
    "DELIVERED": _S.DELIVERED,
    "CANCELLED": _S.CANCELLED,
    "PARTIALLY_RETURNED": _S.PARTIALLY_RETURNED, "RETURNED": _S.RETURNED,
}
PROGRAM_FULFILMENT = {"FBS": "fbs", "FBY": "fby", "DBS": "dbs", "EXPRESS": "express", "LAAS": "laas"}
# ISO 4217 for Market's currency enum; only the rouble differs (RUR is the pre-1998 code).
_CURRENCY = {"RUR": "RUB"}
# Comment statuses a buyer can see (or will, once moderated); BANNED and DELETED are not answers.
_VISIBLE_COMMENT = frozenset({"PUBLISHED", "UNMODERATED"})
_CENT = Decimal("0.01")
# OrderItemUnitStatusType values whose units are back with the seller; other values are ignored.
_RETURNED_ITEM = frozenset({"RETURNED", "REJECTED"})


def order_status(status: object) -> OrderStatus:
    """Market's order status -> the normalised lifecycle (substatuses only refine it)."""
    if not isinstance(status, str) or status not in STATUS_MAP:
        raise MalformedRecord(f"status: unknown order status {status!r}")
    return STATUS_MAP[status]


def map_order(raw: dict[str, Any], ctx: MappingContext) -> OrderRecord:
    """A `BusinessOrderDTO` of POST /v1/businesses/{businessId}/orders.

    `_buyer` (attached by the client for DBS orders still active) holds the buyer id; it becomes
    a salted key and is the only buyer data a record gets.
    """
    order_id = _id(raw.get("orderId"), "orderId")
    try:
        return _order(raw, order_id, ctx)
    except MalformedRecord as exc:
        raise MalformedRecord(exc.reason, record_key=order_id) from None


def _order(raw: dict[str, Any], order_id: str, ctx: MappingContext) -> OrderRecord:
    status, substatus = raw.get("status"), raw.get("substatus")
    normalised = order_status(status)
    if substatus is not None and not isinstance(substatus, str):
        raise MalformedRecord(f"substatus: expected a name, got {substatus!r}")
    created = parse_aware(raw.get("creationDate"), "creationDate")
    updated = raw.get("updateDate")
    updated_at = max(parse_aware(updated, "updateDate"), created) if updated is not None else created
    program = raw.get("programType")
    if program is not None and not isinstance(program, str):
        raise MalformedRecord(f"programType: expected a name, got {program!r}")
    prices = _dict(raw.get("prices"), "prices")
    payment, currency = _money(prices.get("payment"), "prices.payment")
    total = payment
    if prices.get("cashback") is not None:
        cashback, cb_currency = _money(prices.get("cashback"), "prices.cashback")
        _same_currency(currency, cb_currency, "prices.cashback")
        total += cashback
    items = raw.get("items")
    if not isinstance(items, list) or not items:
        raise MalformedRecord("items: expected a non-empty list")
    lines = tuple(_line(item, k, currency) for k, item in enumerate(items))
    if normalised is _S.RETURNED:
        returned_total = total
    elif normalised is _S.PARTIALLY_RETURNED:
        returned_total = sum((_returned_units(item, k, line.quantity) * line.price
                              for k, (item, line) in enumerate(zip(items, lines, strict=True))), Decimal(0))
    else:
        returned_total = Decimal(0)
    return OrderRecord(
        marketplace=ctx.marketplace, account=ctx.account, order_id=order_id,
        created_at=created, updated_at=updated_at,
        status=normalised,
        platform_status=f"{status}/{substatus}" if substatus and substatus != "UNKNOWN" else str(status),
        fulfilment=PROGRAM_FULFILMENT.get(program, program.lower()) if program else None,
        currency=currency, total=total, lines=lines,
        buyer_key=_buyer_key(raw, program, ctx),
        source="orders", source_rank=1, returned_total=returned_total,
        # Market's only order time after creation: `BusinessOrderDTO.updateDate`, the order's last
        # update (ISO 8601 with offset, yandex_market.md §3); there is no per-status time
        # (`delivery.dates.realDeliveryDate` is a day without a time: its midnight would be hours
        # before the delivery). A status change is an update, so `updateDate` is never before the
        # current status began and never after this read: later than the true moment when the order
        # changed again in between (the official example: `realDeliveryDate` 2026-07-15, `updateDate`
        # 2026-07-17T11:02:41+03:00), which makes a return window end later, never earlier. The store
        # keeps the earliest such stamp per status, so the first read after the change decides.
        status_changed_at=updated_at if updated is not None else None,
    )


def _line(item: object, k: int, currency: str) -> OrderLine:
    where = f"items[{k}]"
    item = _dict(item, where)
    offer = item.get("offerId")
    if not isinstance(offer, str) or not offer.strip():
        raise MalformedRecord(f"{where}.offerId: expected the seller's SKU, got {offer!r}")
    count = item.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise MalformedRecord(f"{where}.count: expected a positive integer, got {count!r}")
    prices = _dict(item.get("prices"), f"{where}.prices")
    paid, paid_currency = _money(prices.get("payment"), f"{where}.prices.payment")
    _same_currency(currency, paid_currency, f"{where}.prices.payment")
    if prices.get("cashback") is not None:
        cashback, cb_currency = _money(prices.get("cashback"), f"{where}.prices.cashback")
        _same_currency(currency, cb_currency, f"{where}.prices.cashback")
        paid += cashback
    name = item.get("offerName")
    return OrderLine(sku=offer, offer_id=offer, name=name if isinstance(name, str) and name else None,
                     quantity=count, price=(paid / count).quantize(_CENT, ROUND_HALF_UP))


def _returned_units(item: dict[str, Any], k: int, count: int) -> int:
    """Units of one item back with the seller, from its `itemStatuses` (absent: none)."""
    where = f"items[{k}].itemStatuses"
    statuses = item.get("itemStatuses")
    if statuses is None:
        return 0
    if not isinstance(statuses, list):
        raise MalformedRecord(f"{where}: expected a list, got {statuses!r}")
    units = 0
    for j, entry in enumerate(statuses):
        entry = _dict(entry, f"{where}[{j}]")
        if entry.get("status") not in _RETURNED_ITEM:
            continue
        n = entry.get("count")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise MalformedRecord(f"{where}[{j}].count: expected a non-negative integer, got {n!r}")
        if n > count:
            raise MalformedRecord(f"{where}[{j}].count: {n} units of an item of {count}")
        units += n
    if units > count:
        raise MalformedRecord(f"{where}: {units} units returned of an item of {count}")
    return units


def _buyer_key(raw: dict[str, Any], program: str | None, ctx: MappingContext) -> str | None:
    """The salted key of a DBS buyer; no other scheme exposes a buyer (yandex_market.md §3)."""
    buyer = raw.get("_buyer")
    if program != "DBS" or buyer is None:
        return None
    raw_id = buyer.get("id") if isinstance(buyer, dict) else None
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise MalformedRecord("_buyer.id: expected the buyer id from getOrderBuyerInfo")
    return ctx.buyer_key(raw_id)


def map_feedback(raw: dict[str, Any], ctx: MappingContext) -> ReviewRecord:
    """A `GoodsFeedbackDTO` of POST /v2/businesses/{businessId}/goods-feedback.

    Market links a review to its order (`identifiers.orderId`) but to no buyer: `buyer_key`
    stays None (the order's key, where there is one, is a join away). `_comments` (attached by
    the client) holds the shop's own comments; the latest visible top-level one is the answer.
    """
    review_id = _id(raw.get("feedbackId"), "feedbackId")
    try:
        return _feedback(raw, review_id, ctx)
    except MalformedRecord as exc:
        raise MalformedRecord(exc.reason, record_key=review_id) from None


def _feedback(raw: dict[str, Any], review_id: str, ctx: MappingContext) -> ReviewRecord:
    ids = _dict(raw.get("identifiers"), "identifiers")
    offer = ids.get("offerId")
    if not isinstance(offer, str) or not offer.strip():
        raise MalformedRecord(f"identifiers.offerId: expected the seller's SKU, got {offer!r}")
    order = ids.get("orderId")
    stats = _dict(raw.get("statistics"), "statistics")
    rating = stats.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise MalformedRecord(f"statistics.rating: expected 1..5, got {rating!r}")
    description = raw.get("description")
    if description is not None and not isinstance(description, dict):
        raise MalformedRecord(f"description: expected an object, got {description!r}")
    description = description or {}
    answer = _answer(raw.get("_comments"))
    return ReviewRecord(
        marketplace=ctx.marketplace, account=ctx.account, review_id=review_id,
        sku=offer, rating=rating,
        text=_text(description.get("comment")), pros=_text(description.get("advantages")),
        cons=_text(description.get("disadvantages")),
        created_at=parse_aware(raw.get("createdAt"), "createdAt"),
        answered=answer is not None, answer_text=answer,
        order_id=_id(order, "identifiers.orderId") if order is not None else None,
    )


def _answer(comments: object) -> str | None:
    if comments is None:
        return None
    if not isinstance(comments, list):
        raise MalformedRecord(f"_comments: expected a list, got {type(comments).__name__}")
    visible = [c for c in comments if isinstance(c, dict) and c.get("status") in _VISIBLE_COMMENT
               and isinstance(c.get("text"), str) and c["text"].strip()]
    top = [c for c in visible if c.get("parentId") is None] or visible
    return top[-1]["text"] if top else None  # comments come in publication order


def _id(value: object, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or value in ("", 0):
        raise MalformedRecord(f"{field}: expected an id, got {value!r}")
    if isinstance(value, int) and value < 0:
        raise MalformedRecord(f"{field}: expected an id, got {value!r}")
    return str(value)


def _dict(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedRecord(f"{field}: expected an object, got {value!r}")
    return value


def _money(value: object, field: str) -> tuple[Decimal, str]:
    """A `CurrencyValueDTO` -> (amount in major units, ISO 4217 code)."""
    dto = _dict(value, field)
    amount = number_to_decimal(dto.get("value"), f"{field}.value")
    code = dto.get("currencyId")
    if not isinstance(code, str) or len(code) != 3 or not code.isalpha() or not code.isupper():
        raise MalformedRecord(f"{field}.currencyId: expected a currency code, got {code!r}")
    return amount, _CURRENCY.get(code, code)


def _same_currency(expected: str, got: str, field: str) -> None:
    if got != expected:
        raise MalformedRecord(f"{field}.currencyId: {got} differs from the order's {expected}")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
