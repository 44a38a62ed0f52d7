"""Pure functions from Kaspi.kz's JSON:API orders to normalised records (kaspi.md §3, §7).

A record that does not fit raises `MalformedRecord`: it is quarantined with the reason, and the rest
of the page is stored. The client attaches each order's entries from `included` as `_entries`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.base import MappingContext
from connectors.convert import number_to_decimal, plus7_phone
from connectors.errors import MalformedRecord
from connectors.records import OrderLine, OrderRecord, OrderStatus

from .client import from_epoch_ms

__all__ = ["CURRENCY", "STATUSES", "buyer_phone", "map_order", "order_status"]

CURRENCY = "KZT"  # "Money: tenge" (kaspi.md §7)
_S = OrderStatus
# Kaspi's order statuses (kaspi.md §3): the doc lists six, clients two more. Kaspi has no "shipped"
# status: ACCEPTED_BY_MERCHANT is in delivery while the order sits in state DELIVERY or
# KASPI_DELIVERY, and still being prepared in NEW / SIGN_REQUIRED / PICKUP (see `order_status`).
STATUSES: dict[str, OrderStatus] = {
    "APPROVED_BY_BANK": _S.CREATED,  # paid (or the credit approved); waiting for the seller
    "ACCEPTED_BY_MERCHANT": _S.CREATED,
    "COMPLETED": _S.DELIVERED,
    # A cancellation under way: no loyalty is earned on it, and if Kaspi then completes the order
    # after all, the next poll moves it on.
    "CANCELLING": _S.CANCELLED,
    "CANCELLED": _S.CANCELLED,
    "RETURNED": _S.RETURNED,
    # Client-known (kaspi.md §3): a return asked for, then accepted. Counted as returned at once,
    # so no points of it become available while the goods may still come back.
    "KASPI_DELIVERY_RETURN_REQUESTED": _S.RETURNED,
    "RETURN_ACCEPTED_BY_MERCHANT": _S.RETURNED,
}
IN_DELIVERY_STATES = frozenset({"DELIVERY", "KASPI_DELIVERY"})


def order_status(state: str, status: str) -> OrderStatus | None:
    """The normalised status of Kaspi's (state, status) pair; None for a status no document names."""
    found = STATUSES.get(status)
    if found is _S.CREATED and status == "ACCEPTED_BY_MERCHANT" and state in IN_DELIVERY_STATES:
        return _S.IN_DELIVERY
    return found


def buyer_phone(cell_phone: Any) -> str | None:
    """`cellPhone` in E.164 (+7XXXXXXXXXX), or None when it is no phone number: "10 digits in the doc
    (7066828008), 11 digits 77… seen by a client" (kaspi.md §3) are one buyer (`plus7_phone`)."""
    return plus7_phone(cell_phone)


def map_order(raw: dict[str, Any], ctx: MappingContext) -> OrderRecord:
    attributes = raw.get("attributes")
    raw_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    if not isinstance(attributes, dict):
        raise MalformedRecord("the order has no attributes object", record_key=raw_id)
    # The order number the seller sees in the cabinet keys the order, and a quarantined one too.
    key = attributes.get("code") if isinstance(attributes.get("code"), str) and attributes["code"] else raw_id
    code = _text(attributes, "code", key)
    state, status_word = _text(attributes, "state", key), _text(attributes, "status", key)
    status = order_status(state, status_word)
    if status is None:
        raise MalformedRecord(f"unknown Kaspi status {status_word!r} (state {state}): no document names it; "
                              "the order is kept here until loyalsync maps it", record_key=key)
    created = _instant(attributes, "creationDate", key)
    return OrderRecord(
        marketplace=ctx.marketplace, account=ctx.account, order_id=code,
        created_at=created, updated_at=_last_known_date(attributes, created, key),
        status=status, platform_status=f"{state}/{status_word}",
        fulfilment="marketplace" if attributes.get("isKaspiDelivery") is True else "seller",
        currency=CURRENCY, total=_money(attributes, "totalPrice", key),
        lines=tuple(_line(entry, key) for entry in _entries(raw)),
        buyer_key=_buyer_key(attributes, ctx),
        source="orders",
        # No status has a time of its own ("no completed, cancelled or returned date", kaspi.md
        # §3.2): the store dates each status when a poll first sees it.
        status_changed_at=None,
    )


def _buyer_key(attributes: dict[str, Any], ctx: MappingContext) -> str | None:
    """The salted hash of the buyer's E.164 phone; of `customer.id` where no phone can be read.
    The phone, the id and the names are never stored (the id is the phone in base64, §3)."""
    customer = attributes.get("customer")
    if not isinstance(customer, dict):
        return None
    phone = buyer_phone(customer.get("cellPhone"))
    if phone is not None:
        return ctx.buyer_key(phone)
    customer_id = customer.get("id")
    return ctx.buyer_key(f"id:{customer_id}") if isinstance(customer_id, str) and customer_id else None


def _last_known_date(attributes: dict[str, Any], created: datetime, key: str | None) -> datetime:
    """The latest change Kaspi dates: the bank's approval, else the creation. Planned dates are
    promises, and the courier's hand-over sits in the optional `kaspiDelivery` block."""
    if attributes.get("approvedByBankDate") is None:
        return created
    return max(created, _instant(attributes, "approvedByBankDate", key))


def _entries(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The order's entries the answer holds. The doc's own list example names two entries and
    includes one (payloads/kaspi/orders_list.response.json): the order keeps the lines it has, as
    its total (`totalPrice`) is what loyalty reads; a missing entry never loses the order."""
    entries = raw.get("_entries")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _line(entry: dict[str, Any], key: str | None) -> OrderLine:
    attributes = entry.get("attributes")
    if not isinstance(attributes, dict):
        raise MalformedRecord("an entry has no attributes", record_key=key)
    quantity = attributes.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise MalformedRecord(f"entry quantity {quantity!r} is not a positive integer", record_key=key)
    offer = attributes.get("offer") if isinstance(attributes.get("offer"), dict) else {}
    product = ((entry.get("relationships") or {}).get("product") or {}).get("data") or {}
    sku = offer.get("code") or (product.get("id") if isinstance(product, dict) else None)
    if not isinstance(sku, str) or not sku:
        raise MalformedRecord("an entry names no offer code and no product", record_key=key)
    name = offer.get("name")
    # basePrice is the unit price: 2 × 2000.0 = totalPrice 4000.0 in the doc's entries example.
    return OrderLine(sku=sku, offer_id=None, name=name if isinstance(name, str) and name else None,
                     quantity=quantity, price=_money(attributes, "basePrice", key))


def _text(raw: dict[str, Any], field: str, key: str | None) -> str:
    value = raw.get(field)
    if not isinstance(value, str) or not value:
        raise MalformedRecord(f"{field} is missing or not a string", record_key=key)
    return value


def _money(raw: dict[str, Any], field: str, key: str | None) -> Decimal:
    """Tenge "as JSON floats (2000.0)" (kaspi.md §7), exact to the tiyn (1999.9 stays 1999.90, a
    binary artefact …0000001 goes). A string is not Kaspi's shape: the record is quarantined."""
    value = raw.get(field)
    if isinstance(value, str):
        raise MalformedRecord(f"{field} {value!r} is not an amount", record_key=key)
    try:
        return number_to_decimal(value, field)
    except MalformedRecord as exc:
        raise MalformedRecord(str(exc), record_key=key) from None


def _instant(raw: dict[str, Any], field: str, key: str | None) -> datetime:
    """Epoch milliseconds: an instant, whatever "all dates in the Almaty timezone" (§7) means for
    display, converted to UTC as it is."""
    value = raw.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise MalformedRecord(f"{field} {value!r} is not epoch milliseconds", record_key=key)
    return from_epoch_ms(value)
