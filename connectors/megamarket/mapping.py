"""Pure functions from Megamarket shipments (order/get, megamarket.md §2.2) to normalised records.

One shipment is one order (`order_id` = `shipmentId`; the buyer's `orderCode` may span several).
A record that does not fit raises `MalformedRecord`: it is quarantined with the reason and the rest
of the page is stored.

**Lines and the total** (§2.3). Megamarket sends one item per unit (`quantity: 1`, `itemIndex`
"1".."n") and, on DBS, a pseudo-item `offerId: "delivery"` carrying the delivery price. The order:
- leaves the delivery item out of its lines and its total: delivery is not goods, and points are
  earned on goods (DESIGN: the total excludes delivery). `depositedAmount` is not the total either:
  it includes delivery and is 0 when the buyer pays on delivery (§2.2);
- counts a unit cancelled before it was delivered (a lot the seller or buyer dropped, item status
  `*_CANCELED` without a `DELIVERED` event) out of the order: it was never bought. A shipment whose
  every unit was dropped keeps them all, so a cancelled order still shows what was ordered;
- `total` = Σ `finalPrice` (the unit's price after every discount, integer roubles, §6) of the
  units it counts; `lines` = those units grouped by (`offerId`, `finalPrice`): one line per offer
  with `quantity` = its units, split only where units of one offer were sold at different prices,
  so Σ price × quantity = total exactly;
- a unit cancelled AFTER its `DELIVERED` event came back: a return. Some units back is
  `partially_returned` with `returned_total` = their `finalPrice`; all of them is `returned`. How a
  return shows in order/get is not documented (§8): a cancellation after delivery is the one reading
  the fields allow, and an undocumented status is quarantined rather than guessed.

**Buyer** (§2.6): the member key is the salted hash of `customer.phone` in E.164, on DBS and on FBS
where one is present; the name, address, e-mail and phone are never stored.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.base import MappingContext
from connectors.convert import CENT, parse_aware, plus7_phone
from connectors.errors import MalformedRecord
from connectors.records import OrderLine, OrderRecord, OrderStatus

from .client import REFUSED

__all__ = ["CURRENCY", "DELIVERY_OFFER", "FULFILMENT", "STATUSES", "map_shipment"]

CURRENCY = "RUB"  # "money in integer roubles" (§6)
DELIVERY_OFFER = "delivery"  # §2.3: the pseudo-line is matched on offerId, not goodsData.isDelivery
_S = OrderStatus
# Every shipment status a source names: §2.2's eight, and five more a public client's status union
# lists with their cabinet titles (the PENDING_* are Megamarket processing the seller's last step).
STATUSES: dict[str, OrderStatus] = {
    "NEW": _S.CREATED,
    "PENDING": _S.CREATED,  # «Обработка заказа Мегамаркетом»
    "PENDING_CONFIRMATION": _S.CREATED,  # «обработка подтверждения со стороны Мегамаркета»
    "CONFIRMED": _S.CREATED,
    "PENDING_PACKING": _S.CREATED,  # «Обработка сообщения о комплектации»
    "PACKED": _S.CREATED,
    "PACKING_EXPIRED": _S.CREATED,  # «просрочка комплектации»: late, not cancelled (yet)
    "PENDING_SHIPPING": _S.IN_DELIVERY,  # «Обработка сообщения об отгрузке»: handed over
    "SHIPPED": _S.IN_DELIVERY,
    "SHIPPING_EXPIRED": _S.CREATED,  # «просрочка отгрузки»: not handed over in time
    "DELIVERED": _S.DELIVERED,  # «Выдан покупателю»
    "MERCHANT_CANCELED": _S.CANCELLED,
    "CUSTOMER_CANCELED": _S.CANCELLED,
}
CANCELLED = frozenset({"MERCHANT_CANCELED", "CUSTOMER_CANCELED"})
# `serviceScheme` (§2.2): DELIVERY_BY_MERCHANT is DBS; "FBS" is the example's (UNCONFIRMED) value.
FULFILMENT = {"DELIVERY_BY_MERCHANT": "dbs", "FBS": "fbs", "FBO": "fbo"}


def map_shipment(raw: dict[str, Any], ctx: MappingContext) -> OrderRecord:
    key = _shipment_id(raw)
    if REFUSED in raw:
        raise MalformedRecord(f"order/get refused this shipment ({raw[REFUSED]}); it is read again on the next run",
                              record_key=key)
    word = _text(raw, "status", key)
    status = STATUSES.get(word)
    if status is None:
        raise MalformedRecord(f"unknown Megamarket shipment status {word!r}: no document names it; the shipment "
                              "is kept here until loyalsync maps it", record_key=key)
    items = raw.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise MalformedRecord("items is not a list of objects", record_key=key)
    units = [_unit(item, key) for item in items if item.get("offerId") != DELIVERY_OFFER]
    created = _time(raw.get("creationDate"), "creationDate", key)
    returned = [u for u in units if u.returned]
    counted = [u for u in units if not u.dropped] or units
    if returned:
        status = _S.RETURNED if len(returned) == len(counted) else _S.PARTIALLY_RETURNED
    return OrderRecord(
        marketplace=ctx.marketplace, account=ctx.account, order_id=key,
        created_at=created, updated_at=max([created, *(at for u in units for _, at in u.events)]),
        status=status, platform_status=word, fulfilment=_fulfilment(raw.get("serviceScheme")),
        currency=CURRENCY, total=sum((u.price for u in counted), Decimal(0)),
        lines=_lines(counted), buyer_key=_buyer_key(raw.get("customer"), ctx), source="orders",
        returned_total=sum((u.price for u in returned), Decimal(0)),
        status_changed_at=_status_time(status, units, returned),
    )


class _Unit:
    """One goods item of a shipment: its offer, price after discounts, status and dated events."""

    __slots__ = ("events", "goods", "name", "offer", "price", "quantity", "status")

    def __init__(self, offer: str, goods: str, name: str | None, price: Decimal, quantity: int, status: str | None,
                 events: list[tuple[str, datetime]]):
        self.offer, self.goods, self.name, self.price, self.quantity = offer, goods, name, price, quantity
        self.status, self.events = status, events

    @property
    def delivered(self) -> bool:
        return any(name == "DELIVERED" for name, _ in self.events)

    @property
    def dropped(self) -> bool:
        """Cancelled before it reached the buyer: never bought."""
        return self.status in CANCELLED and not self.delivered

    @property
    def returned(self) -> bool:
        """Cancelled after it reached the buyer: it came back."""
        return self.status in CANCELLED and self.delivered


def _unit(item: dict[str, Any], key: str) -> _Unit:
    offer = item.get("offerId")
    if not isinstance(offer, str) or not offer:
        raise MalformedRecord("an item has no offerId", record_key=key)
    quantity = item.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise MalformedRecord(f"item quantity {quantity!r} is not a positive integer", record_key=key)
    status = item.get("status")
    if status is not None and (not isinstance(status, str) or status not in STATUSES):
        raise MalformedRecord(f"unknown Megamarket item status {status!r}", record_key=key)
    data = item.get("goodsData")
    name = data.get("name") if isinstance(data, dict) else None
    goods = item.get("goodsId")
    # finalPrice is per unit: every item is one unit (§2.3); a line of several units counts each.
    price = _roubles(item.get("finalPrice"), "finalPrice", key) * quantity
    return _Unit(offer, str(goods) if isinstance(goods, str | int) and goods else offer,
                 name if isinstance(name, str) and name.strip() else None, price, quantity, status,
                 _events(item.get("events"), key))


def _events(events: Any, key: str) -> list[tuple[str, datetime]]:
    if events is None:
        return []
    if not isinstance(events, list):
        raise MalformedRecord("an item's events is not a list", record_key=key)
    out = []
    for event in events:
        name = event.get("eventName") if isinstance(event, dict) else None
        if isinstance(name, str) and name:
            out.append((name, _time(event.get("eventDate"), "eventDate", key)))
    return out


def _lines(units: list[_Unit]) -> tuple[OrderLine, ...]:
    """Units grouped by (offer, unit price), in the order the shipment lists them. As on Ozon, `sku`
    is the platform's product id (`goodsId`) and `offer_id` the seller's own (`offerId`, §2.2)."""
    quantities: Counter[tuple[str, Decimal]] = Counter()
    first: dict[tuple[str, Decimal], _Unit] = {}
    for u in units:
        group = (u.offer, u.price / u.quantity)
        quantities[group] += u.quantity
        first.setdefault(group, u)
    return tuple(OrderLine(sku=first[g].goods, offer_id=g[0], name=first[g].name, quantity=n, price=g[1])
                 for g, n in quantities.items())


def _status_time(status: OrderStatus, units: list[_Unit], returned: list[_Unit]) -> datetime | None:
    """The current status's own time, where the items date it (their events, §2.2): the latest
    delivery of a delivered order, the latest return of a returned one; else None (the store dates
    the status when a poll first sees it)."""
    if returned:
        wanted, among = CANCELLED, returned
    elif status is _S.DELIVERED:
        wanted, among = frozenset({"DELIVERED"}), units
    elif status is _S.CANCELLED:
        wanted, among = CANCELLED, units
    else:
        return None
    times = [at for u in among for name, at in u.events if name in wanted]
    return max(times) if times else None


def _buyer_key(customer: Any, ctx: MappingContext) -> str | None:
    """The hash of `customer.phone` in E.164 (§2.6); None without a usable phone (FBS: mostly null)."""
    phone = plus7_phone(customer.get("phone")) if isinstance(customer, dict) else None
    return ctx.buyer_key(phone) if phone else None


def _fulfilment(scheme: Any) -> str | None:
    if not isinstance(scheme, str) or not scheme:
        return None
    return FULFILMENT.get(scheme, scheme.lower())


def _shipment_id(raw: dict[str, Any]) -> str:
    value = raw.get("shipmentId")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise MalformedRecord("the shipment has no shipmentId")
    return value


def _text(raw: dict[str, Any], field: str, key: str) -> str:
    value = raw.get(field)
    if not isinstance(value, str) or not value:
        raise MalformedRecord(f"{field} is missing or not a string", record_key=key)
    return value


def _roubles(value: Any, field: str, key: str) -> Decimal:
    """Integer roubles (§6: `price`, `finalPrice` typed int in several clients); a whole number sent as
    2990.0 is the same amount, a fraction or a string is not Megamarket's shape."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedRecord(f"{field} {value!r} is not a whole number of roubles", record_key=key)
    return Decimal(value).quantize(CENT)


def _time(value: Any, field: str, key: str) -> datetime:
    """ISO 8601 with an offset (§6: `2024-05-10T12:00:00+03:00`), to UTC."""
    try:
        return parse_aware(value, field)
    except MalformedRecord as exc:
        raise MalformedRecord(exc.reason, record_key=key) from None
