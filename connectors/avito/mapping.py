"""Pure functions from Avito's orders and reviews to normalised records (avito.md §3, §4, §7).

A record that does not fit raises `MalformedRecord`: it is quarantined with the reason, and the rest
of the page is stored. The client drops the buyer's name, phone and address as they arrive, and
attaches the buyer's hashed Messenger user id as `_buyer_user_id` where the tariff allows it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connectors.base import MappingContext
from connectors.convert import number_to_decimal
from connectors.errors import MalformedRecord
from connectors.records import OrderLine, OrderRecord, OrderStatus, ReviewRecord

__all__ = ["CURRENCY", "STATUSES", "map_order", "map_review"]

CURRENCY = "RUB"  # "currency not stated (RUB assumed — UNCONFIRMED)" (avito.md §7)
_S = OrderStatus
# avito.md §3: statuses ∈ on_confirmation, ready_to_ship, in_transit, canceled, delivered, on_return,
# in_dispute, closed.
STATUSES: dict[str, OrderStatus] = {
    "on_confirmation": _S.CREATED,
    "ready_to_ship": _S.CREATED,
    "in_transit": _S.IN_DELIVERY,
    "delivered": _S.DELIVERED,
    "closed": _S.DELIVERED,  # the deal is over: delivered and kept
    "canceled": _S.CANCELLED,
    # The goods are on their way back, or the buyer disputes the deal: no points are available while
    # either lasts; a dispute the seller wins ends `closed`, and the next read moves the order on.
    "on_return": _S.RETURNED,
    "in_dispute": _S.RETURNED,
}
# delivery.serviceType (§3): pvz = Avito Доставка through a pickup point; dbs/rdbs = the seller ships.
FULFILMENT = {"pvz": "marketplace", "dbs": "seller", "rdbs": "seller"}


def map_order(raw: dict[str, Any], ctx: MappingContext) -> OrderRecord:
    key = _text(raw, "id")
    word = _text(raw, "status", key)
    status = STATUSES.get(word)
    if status is None:
        raise MalformedRecord(f"unknown Avito status {word!r}", record_key=key)
    items = raw.get("items")
    if not isinstance(items, list) or not items:
        raise MalformedRecord("the order has no items", record_key=key)
    lines = tuple(_line(item, key) for item in items)
    delivery = raw.get("delivery") if isinstance(raw.get("delivery"), dict) else {}
    buyer = raw.get("_buyer_user_id")
    return OrderRecord(
        marketplace=ctx.marketplace, account=ctx.account, order_id=key,
        created_at=_iso(raw, "createdAt", key), updated_at=_iso(raw, "updatedAt", key),
        status=status, platform_status=word, fulfilment=FULFILMENT.get(delivery.get("serviceType")),
        currency=CURRENCY,
        # "the normalised total is the goods after discounts (item price × count − discounts),
        # delivery and commission excluded" (§3): `prices.total` is the seller's payout.
        total=sum((ln.price * ln.quantity for ln in lines), Decimal(0))
        - sum((_money(i.get("prices") or {}, "discountSum", key, default=Decimal(0)) for i in items), Decimal(0)),
        lines=lines,
        buyer_key=ctx.buyer_key(f"user:{buyer}") if isinstance(buyer, int | str) and buyer != "" else None,
        source="orders",
        # `updatedAt` moves with any change of the order, not only its status: each status is dated
        # when a poll first sees it.
        status_changed_at=None,
    )


def map_review(raw: dict[str, Any], ctx: MappingContext) -> ReviewRecord:
    """A review of the seller account (optionally tied to a listing): no order, no buyer (§4)."""
    review_id = raw.get("id")
    if not isinstance(review_id, int) or isinstance(review_id, bool):
        raise MalformedRecord(f"review id {review_id!r} is not an integer", record_key=str(review_id))
    key = str(review_id)
    score = raw.get("score")
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise MalformedRecord(f"score {score!r} is not 1..5", record_key=key)
    created = raw.get("createdAt")
    if not isinstance(created, int) or isinstance(created, bool) or created <= 0:
        raise MalformedRecord(f"createdAt {created!r} is not unix seconds", record_key=key)
    item = raw.get("item") if isinstance(raw.get("item"), dict) else {}
    answer = raw.get("answer") if isinstance(raw.get("answer"), dict) else None
    # A rejected answer is no answer: the review still waits for one (§4: moderation|published|rejected).
    live = answer if answer is not None and answer.get("status") != "rejected" else None
    text = raw.get("text")
    return ReviewRecord(
        marketplace=ctx.marketplace, account=ctx.account, review_id=key,
        sku=str(item["id"]) if item.get("id") not in (None, "") else "", rating=score,
        text=text if isinstance(text, str) else "", pros="", cons="",
        created_at=datetime.fromtimestamp(created, UTC), answered=live is not None,
        answer_text=live.get("text") if live is not None and isinstance(live.get("text"), str) else None,
        product_name=item.get("title") if isinstance(item.get("title"), str) and item.get("title") else None,
    )


def _line(item: Any, key: str) -> OrderLine:
    if not isinstance(item, dict):
        raise MalformedRecord("an order item is not an object", record_key=key)
    count = item.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise MalformedRecord(f"item count {count!r} is not a positive integer", record_key=key)
    sku = item.get("id") or item.get("avitoId")  # the seller's SKU, else Avito's listing id
    if not isinstance(sku, str | int) or isinstance(sku, bool) or sku == "":
        raise MalformedRecord("an item has no id", record_key=key)
    title = item.get("title")
    prices = item.get("prices")
    if not isinstance(prices, dict):
        raise MalformedRecord("an item has no prices", record_key=key)
    return OrderLine(sku=str(sku), offer_id=str(item["avitoId"]) if item.get("avitoId") else None,
                     name=title if isinstance(title, str) and title else None, quantity=count,
                     price=_money(prices, "price", key))


def _text(raw: dict[str, Any], field: str, key: str | None = None) -> str:
    value = raw.get(field)
    if not isinstance(value, str) or not value:
        raise MalformedRecord(f"{field} is missing or not a string", record_key=key)
    return value


def _money(raw: dict[str, Any], field: str, key: str, *, default: Decimal | None = None) -> Decimal:
    """Money is a plain JSON number (§7), exact to the kopeck; a string is not Avito's shape."""
    value = raw.get(field)
    if value is None and default is not None:
        return default
    if isinstance(value, str):
        raise MalformedRecord(f"{field} {value!r} is not an amount", record_key=key)
    try:
        return number_to_decimal(value, field)
    except MalformedRecord as exc:
        raise MalformedRecord(str(exc), record_key=key) from None


def _iso(raw: dict[str, Any], field: str, key: str) -> datetime:
    """"ISO 8601 UTC strings" (§7), e.g. 2016-11-01T20:44:39Z."""
    value = raw.get(field)
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise MalformedRecord(f"{field} {value!r} is not an ISO time with its zone", record_key=key)
    return parsed.astimezone(UTC)
