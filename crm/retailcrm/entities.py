"""What loyalsync's records become in RetailCRM: pure functions, no I/O.

- A member is a customer whose `externalId` is `ls:{marketplace}:{account}:{buyer_key}`: the
  store's keyed hash of the buyer, never a name, phone or e-mail (the platforms do not let us keep
  those). Its `firstName` is a placeholder a manager can read ("Kaspi buyer 3f2a9c01").
- An order is `{marketplace}:{account}:{order_id}`, with its customer, status code (mapped by
  `[crm.retailcrm.statuses]`), `orderMethod` if configured, and lines; `number` is the platform's
  own order number. No custom fields: they must be created in the CRM first, and an unknown one
  would make the CRM refuse the order.
- An earn lot is a bonus credit: its amount, and its `available_from`/`expires_at` rounded inward
  to whole days on the account's calendar (crm.retailcrm.dates). A lot that spans no whole day
  there cannot be credited without giving points earlier or keeping them longer: not sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from .client import CREDIT, Operation
from .dates import activation_day, crm_time, expiry_day

__all__ = ["credit_operation", "customer_entity", "customer_id", "order_entity", "order_id"]


def customer_id(marketplace: str, account: str, buyer_key: str) -> str:
    return f"ls:{marketplace}:{account}:{buyer_key}"


def order_id(marketplace: str, account: str, platform_order_id: str) -> str:
    return f"{marketplace}:{account}:{platform_order_id}"


def customer_entity(marketplace: str, account: str, buyer_key: str) -> dict[str, Any]:
    return {"externalId": customer_id(marketplace, account, buyer_key),
            "firstName": f"{marketplace.capitalize()} buyer {buyer_key[:8]}"}


def order_entity(order: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], zone: tzinfo,
                 statuses: Mapping[str, str], order_method: str | None) -> dict[str, Any]:
    """The RetailCRM order for an `orders` row and its `order_lines` rows (current state)."""
    entity: dict[str, Any] = {
        "externalId": order_id(order["marketplace"], order["account"], order["order_id"]),
        "number": str(order["order_id"]),
        "createdAt": crm_time(order["created_at"], zone),
        "status": statuses[order["status"]],
        "customer": {"externalId": customer_id(order["marketplace"], order["account"], order["buyer_key"])},
        "items": [{"productName": line["name"] or line["offer_id"] or line["sku"], "quantity": line["quantity"],
                   "initialPrice": float(line["price"])} for line in lines],
    }
    if not lines:  # a platform that lists no lines: the order's value as one line, so the total is right
        entity["items"] = [{"productName": f"{order['marketplace']} order {order['order_id']}", "quantity": 1,
                            "initialPrice": float(order["total"])}]
    if order_method:
        entity["orderMethod"] = order_method
    return entity


def credit_operation(amount: Decimal, available_from: datetime, expires_at: datetime | None,
                     zone: tzinfo) -> Operation | None:
    """The credit a lot becomes on the account's calendar, or None when it spans no whole day."""
    activation: date = activation_day(available_from, zone)
    expire = expiry_day(expires_at, zone) if expires_at is not None else None
    if expire is not None and expire < activation:
        return None
    return Operation(CREDIT, amount, activation, expire)
