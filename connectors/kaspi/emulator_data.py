"""The Kaspi emulator's data: seeded orders with their whole lifecycle, and their JSON:API resources.

Every rule is read from shared/marketplaces/kaspi.md (cited as §n) and its example payloads
(payloads/kaspi/, official doc examples). An order carries all its stages up front (some lie past
`generated_at`), so the platform's answer depends only on the moment it is asked (`Order.at`).

Instants are true epoch milliseconds: "all dates in the Almaty timezone" (§7) is read as the
display zone, since an epoch count has no zone (§9 lists the exact semantics as a gap). The trap
is kept anyway: a share of orders is created minutes either side of Almaty midnight (19:00 UTC),
so a client that shifts its windows by the zone loses them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from random import Random
from typing import Any, NamedTuple

from connectors.emulation import LATE_CHANGE_DELAY, Fault

__all__ = ["ALMATY", "BASE", "CLIENT_STATUSES", "DOC_STATUSES", "STATES", "UNKNOWN_STATUSES", "Buyer", "Dataset",
           "Entry", "Order", "Product", "Stage", "b64", "entry_resource", "generate", "ms", "order_resource",
           "product_resource"]

#: Kazakhstan has one zone, UTC+5, since 2024-03-01: Almaty midnight is 19:00 UTC.
ALMATY = timezone(timedelta(hours=5))
BASE = "https://kaspi.kz/shop/api/v2"
#: §3: the states `filter[orders][state]` accepts, the doc's 6 statuses and the 2 only clients know.
STATES = ("NEW", "SIGN_REQUIRED", "PICKUP", "DELIVERY", "KASPI_DELIVERY", "ARCHIVE")
DOC_STATUSES = ("APPROVED_BY_BANK", "ACCEPTED_BY_MERCHANT", "COMPLETED", "CANCELLED", "CANCELLING", "RETURNED")
CLIENT_STATUSES = ("KASPI_DELIVERY_RETURN_REQUESTED", "RETURN_ACCEPTED_BY_MERCHANT")
#: Statuses no document names (`EmulatorConfig.unknown_statuses`): §3 "accept unknown values".
UNKNOWN_STATUSES = ("PARTNER_REVIEW_PENDING", "AWAITING_SELLER_DOCUMENTS", "DELIVERY_POSTPONED")
#: Only TIMEOUT_BUYER_PICKUP is in a doc example (order_by_code_kaspi_delivery); the others are plausible words.
CANCEL_REASONS = ("TIMEOUT_BUYER_PICKUP", "BUYER_CANCELLATION_BY_MERCHANT", "BUYER_NOT_REACHABLE",
                  "MERCHANT_OUT_OF_STOCK")
#: How orders end, with rough weights (unknown-status orders are picked on top of these).
OUTCOMES = {"completed": 68, "cancelled": 10, "returned": 5, "late_return": 5, "stale": 7, "stale_cancel": 5}
ALMATY_MIDNIGHT_SHARE = 0.1
ELEVEN_DIGIT_SHARE = 0.4  # §3: `cellPhone` is 10 digits in the doc, 11 (`77…`) as a client saw it
MERCHANT = "Merchant"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def b64(text: str) -> str:
    """Base64 without padding, as the doc's ids look (`NzA3NjgyODAwNg` = the phone 7076828006)."""
    return base64.b64encode(text.encode()).decode().rstrip("=")


def ms(moment: datetime) -> int:
    """Epoch milliseconds (§3, §7), exact (no float on the way)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def to_ms_precision(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def money(value: Decimal) -> float:
    """Tenge as a JSON float (§7: `2000.0`); the exact value stays a Decimal on the order."""
    return float(value)


@dataclass(frozen=True)
class Product:
    offer_code: str  # the merchant's SKU: `offer.code` of an entry
    name: str
    master_code: str  # the Kaspi catalogue card: `masterproducts` code
    category_code: str
    category_title: str
    price: Decimal
    unit_type: str = "PIECES"
    weight: float = 0.5


#: Prices carry tiyn on purpose: 1999.9, 12345.67 and sums whose float is not exact in binary.
CATALOG = (
    Product("259204", "Линейка", "109349026", "Master - Rulers", "Линейки", Decimal("1999.90"), weight=0.0),
    Product("318800", "Фруктовик яблоко черный принц Польша 1 кг", "103403297", "Master - Fruits", "Фрукты",
            Decimal("1290.50"), "MEASURABLE", 1.0),
    Product("402117", "Термос 1 л", "112093455", "Master - Thermoses", "Термосы", Decimal("12345.67"), weight=0.8),
    Product("402118", "Кружка керамическая", "112093460", "Master - Mugs", "Кружки", Decimal("2000.00")),
    Product("515001", "Наушники беспроводные", "120554018", "Master - Headphones", "Наушники", Decimal("24990.00"),
            weight=0.3),
    Product("515002", "Чехол для телефона", "120554031", "Master - Phone cases", "Чехлы", Decimal("3499.99"),
            weight=0.1),
    Product("600310", "Набор полотенец", "130100772", "Master - Towels", "Полотенца", Decimal("8990.10"), weight=1.2),
    Product("600311", "Плед флисовый", "130100790", "Master - Blankets", "Пледы", Decimal("5790.30"), weight=1.5),
)
FIRST_NAMES = ("Айгерим", "Данияр", "Асель", "Ерлан", "Мадина", "Нурлан", "Жанна", "Арман", "Сауле", "Тимур")
LAST_NAMES = ("Ахметова", "Сериков", "Жумабаева", "Касымов", "Оспанова", "Бекенов", "Нурланова", "Иванов")


class Stage(NamedTuple):
    """A state+status pair (§3: the state is part of the status) and the instant it began."""

    state: str
    status: str
    since: datetime


@dataclass
class Entry:
    """One order entry (§3 `orderentries`); money as exact Decimal tenge."""

    id: str
    entry_number: int
    offer_code: str
    offer_name: str
    quantity: int
    base_price: Decimal
    total_price: Decimal
    product: Product

    @property
    def product_id(self) -> str:
        return b64(self.product.master_code)


@dataclass(frozen=True)
class Buyer:
    label: str  # "buyer-17": for tests only, never served
    phone10: str  # the doc's 10-digit form, e.g. 7071234567
    first_name: str
    last_name: str

    @property
    def customer_id(self) -> str:
        return b64(self.phone10)  # as in the doc examples: the phone in base64

    @property
    def e164(self) -> str:
        return "+7" + self.phone10


@dataclass
class Order:
    id: str  # JSON:API id
    code: str  # the human order number
    created_at: datetime  # aware UTC, millisecond precision
    stages: list[Stage]
    buyer: str
    phone_e164: str
    customer_id: str
    cell_phone: str  # the form this order serves: 10 or 11 digits (§3)
    customer_name: str | None
    first_name: str
    last_name: str
    entries: list[Entry]
    total: Decimal  # what `totalPrice` says, exact to the tiyn
    kind: str  # "pickup", "delivery" (the merchant's) or "kaspi" (Kaspi Delivery)
    delivery_mode: str
    payment_mode: str
    credit_term: int | None
    signature_required: bool
    pre_order: bool
    pickup_point: str
    delivery_cost_for_seller: Decimal
    cancellation_reason: str | None
    approved_at: datetime
    planned_delivery: datetime | None = None
    reservation: datetime | None = None
    express: bool = False

    def at(self, moment: datetime) -> Stage:
        """The stage shown at `moment`; the first applies from `created_at` (and before it)."""
        shown = self.stages[0]
        for stage in self.stages:
            if stage.since <= moment:
                shown = stage
        return shown

    @property
    def accepted_at(self) -> datetime | None:
        return next((s.since for s in self.stages if s.status == "ACCEPTED_BY_MERCHANT"), None)


@dataclass
class Dataset:
    orders: dict[str, Order]
    late_changes: dict[str, tuple[str, str]]
    customer_forms: dict[str, set[str]]
    entries: dict[str, tuple[Order, Entry]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.entries = {e.id: (o, e) for o in self.orders.values() for e in o.entries}


# -- lifecycle (§3) ---------------------------------------------------------------------------------

def _after(rng: Random, start: datetime, low: timedelta, high: timedelta) -> datetime:
    return to_ms_precision(start + timedelta(seconds=rng.uniform(low.total_seconds(), high.total_seconds())))


H, D = timedelta(hours=1), timedelta(days=1)


def lifecycle(rng: Random, created: datetime, home: str, outcome: str, sign: bool) -> tuple[list[Stage], str | None]:
    """The stages of one order and its cancellation reason.

    NEW/APPROVED_BY_BANK (credit orders may start in SIGN_REQUIRED) -> `home`/ACCEPTED_BY_MERCHANT
    -> ARCHIVE/COMPLETED; cancellations pass CANCELLING in the state they are in; returns follow
    COMPLETED. "stale" orders stay active 15-30 days: they change state after the 14-day window.
    """
    stages, t = [], created
    if sign:
        stages.append(Stage("SIGN_REQUIRED", "APPROVED_BY_BANK", t))
        t = _after(rng, t, 0.2 * H, 6 * H)
    stages.append(Stage("NEW", "APPROVED_BY_BANK", t))
    if outcome == "cancelled" and rng.random() < 0.3:  # refused before the merchant accepted it
        return _cancel(rng, stages, "NEW", _after(rng, t, 0.5 * H, 1 * D), rng.choice(CANCEL_REASONS[1:]))
    t = _after(rng, t, timedelta(minutes=5), 1 * D)
    stages.append(Stage(home, "ACCEPTED_BY_MERCHANT", t))
    if outcome == "unknown":
        stages.append(Stage(home, rng.choice(UNKNOWN_STATUSES), _after(rng, t, 1 * H, 3 * H)))
        return stages, None
    if outcome == "cancelled":
        return _cancel(rng, stages, home, _after(rng, t, 1 * H, 2 * D), rng.choice(CANCEL_REASONS))
    if outcome == "stale_cancel":  # the buyer never came: cancelled 15-30 days after creation
        return _cancel(rng, stages, home, _after(rng, created, 15 * D, 29 * D), "TIMEOUT_BUYER_PICKUP")
    done = _after(rng, created, 15 * D, 30 * D) if outcome == "stale" else _after(rng, t, 1 * D, 6 * D)
    stages.append(Stage("ARCHIVE", "COMPLETED", done))
    if outcome == "returned":
        _return(rng, stages, _after(rng, done, 2 * D, 10 * D), home == "KASPI_DELIVERY")
    elif outcome == "late_return":  # returned 20+ days after creation: out of every 14-day window
        start = max(_after(rng, created, 20 * D, 28 * D), done + D)
        _return(rng, stages, start, home == "KASPI_DELIVERY")
    return stages, None


def _cancel(rng: Random, stages: list[Stage], state: str, at: datetime, reason: str) -> tuple[list[Stage], str]:
    stages.append(Stage(state, "CANCELLING", at))
    stages.append(Stage("ARCHIVE", "CANCELLED", _after(rng, at, 1 * H, 1 * D)))
    return stages, reason


def _return(rng: Random, stages: list[Stage], start: datetime, kaspi: bool) -> None:
    """ARCHIVE/RETURNED; a Kaspi Delivery return may first pass the two statuses only clients name
    (§3). Their state is not documented: they stay in ARCHIVE, where the completed order already is."""
    if kaspi and rng.random() < 0.6:
        stages.append(Stage("ARCHIVE", "KASPI_DELIVERY_RETURN_REQUESTED", start))
        start = _after(rng, start, 6 * H, 2 * D)
        stages.append(Stage("ARCHIVE", "RETURN_ACCEPTED_BY_MERCHANT", start))
        start = _after(rng, start, 6 * H, 2 * D)
    stages.append(Stage("ARCHIVE", "RETURNED", start))


# -- the data set -----------------------------------------------------------------------------------

def make_buyers(rng: Random, count: int) -> list[Buyer]:
    phones: set[str] = set()
    while len(phones) < count:  # Kazakh mobile numbers: 70x, 747, 771, 775..778
        phones.add("7" + rng.choice(("00", "01", "02", "05", "07", "08", "47", "71", "75", "76", "77", "78"))
                   + f"{rng.randrange(10**7):07d}")
    return [Buyer(f"buyer-{k}", phone, rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
            for k, phone in enumerate(sorted(phones))]


def pick_created(rng: Random, generated_at: datetime, history_days: int, outcome: str) -> datetime:
    """A creation instant in the history; some minutes either side of Almaty midnight (§7)."""
    if outcome != "unknown" and history_days >= 2 and rng.random() < ALMATY_MIDNIGHT_SHARE:
        day = generated_at.astimezone(ALMATY).date() - timedelta(days=rng.randrange(1, history_days))
        midnight = datetime(day.year, day.month, day.day, tzinfo=ALMATY).astimezone(UTC)
        return to_ms_precision(midnight + timedelta(seconds=rng.uniform(-300, 300)))
    # An unknown status must already show at `generated_at`: its stage comes at most ~31 h in.
    earliest = timedelta(days=2) if outcome == "unknown" else timedelta(minutes=1)
    latest = max(timedelta(days=history_days), earliest + H)
    return to_ms_precision(generated_at - timedelta(seconds=rng.uniform(earliest.total_seconds(),
                                                                      latest.total_seconds())))


def build_order(rng: Random, code: str, created: datetime, buyer: Buyer, outcome: str,
                kind: str | None = None, stages: list[Stage] | None = None) -> Order:
    """One order with its entries, money and delivery; `stages` given: a fixed lifecycle."""
    kind = kind or rng.choices(("pickup", "delivery", "kaspi"), weights=(35, 20, 45))[0]
    home = {"pickup": "PICKUP", "delivery": "DELIVERY", "kaspi": "KASPI_DELIVERY"}[kind]
    credit = stages is None and rng.random() < 0.3
    sign = credit and rng.random() < 0.35
    reason = None
    if stages is None:
        stages, reason = lifecycle(rng, created, home, outcome, sign)
    entries = [_entry(rng, code, k) for k in range(rng.choices((1, 2, 3), weights=(60, 30, 10))[0])]
    mode = {"pickup": "DELIVERY_PICKUP", "delivery": "DELIVERY_LOCAL",
            "kaspi": rng.choice(("DELIVERY_PICKUP", "DELIVERY_REGIONAL_TODOOR", "DELIVERY_REGIONAL_PICKUP",
                                 "DELIVERY_LOCAL"))}[kind]
    order = Order(
        id=b64(f"{code[:5]}:{code[5:]}"), code=code, created_at=created, stages=stages, buyer=buyer.label,
        phone_e164=buyer.e164, customer_id=buyer.customer_id,
        cell_phone=("7" + buyer.phone10) if rng.random() < ELEVEN_DIGIT_SHARE else buyer.phone10,
        customer_name=None if rng.random() < 0.3 else buyer.first_name,
        first_name=buyer.first_name, last_name=buyer.last_name, entries=entries,
        total=sum((e.total_price for e in entries), Decimal("0")), kind=kind, delivery_mode=mode,
        payment_mode="PAY_WITH_CREDIT" if credit else "PREPAID",
        credit_term=rng.choice((3, 6, 12, 24)) if credit else None, signature_required=sign,
        pre_order=outcome == "stale" and rng.random() < 0.5,
        pickup_point=f"{MERCHANT}_PP{rng.randrange(1, 4)}",
        delivery_cost_for_seller=rng.choice((Decimal("0"), Decimal("895"), Decimal("1499.50"))) if kind == "kaspi"
        else Decimal("0"),
        cancellation_reason=reason, approved_at=to_ms_precision(created + timedelta(seconds=rng.uniform(0.5, 9))),
        express=kind == "kaspi" and rng.random() < 0.2)
    if kind == "pickup":
        order.reservation = to_ms_precision(created + timedelta(days=5, hours=rng.uniform(0, 6)))
    else:
        order.planned_delivery = to_ms_precision(created + timedelta(days=rng.uniform(1, 5)))
    return order


def _entry(rng: Random, code: str, number: int) -> Entry:
    product = rng.choice(CATALOG)
    quantity = rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
    return Entry(b64(f"{code}##{number}"), number, product.offer_code, product.name, quantity, product.price,
                 product.price * quantity, product)


def generate(seed: int, count: int, history_days: int, unknown: int, generated_at: datetime,
             late: list[Fault]) -> Dataset:
    """`count` orders created within `history_days` before `generated_at`, plus the late changes."""
    rng = Random(seed)
    buyers = make_buyers(rng, max(1, count // 3))  # repeat buyers: about three orders each
    outcomes = rng.choices(list(OUTCOMES), weights=list(OUTCOMES.values()), k=count)
    for k in rng.sample(range(count), min(unknown, count)):
        outcomes[k] = "unknown"
    drafts = sorted((pick_created(rng, generated_at, history_days, o), o) for o in outcomes)
    orders: dict[str, Order] = {}
    code = 500_000_000
    for created, outcome in drafts:
        code += rng.randrange(1, 5000)  # codes grow with time, with gaps (other shops' orders)
        order = build_order(rng, str(code), created, rng.choice(buyers), outcome)
        orders[order.id] = order
    late_changes = stage_late_changes(orders, late, generated_at, rng, buyers)
    _both_phone_forms(orders.values())
    forms: dict[str, set[str]] = {}
    for order in orders.values():
        forms.setdefault(order.buyer, set()).add(order.cell_phone)
    return Dataset(orders, late_changes, forms)


def _both_phone_forms(orders: Any) -> None:
    """Make sure one repeat buyer shows both phone forms, however small the data set."""
    by_buyer: dict[str, list[Order]] = {}
    for order in orders:
        by_buyer.setdefault(order.buyer, []).append(order)
    repeat = [group for group in by_buyer.values() if len(group) > 1]
    if repeat and not any(len({o.cell_phone for o in group}) > 1 for group in repeat):
        first, second = repeat[0][:2]
        phone10 = first.phone_e164[2:]
        first.cell_phone, second.cell_phone = phone10, "7" + phone10


def stage_late_changes(orders: dict[str, Order], faults: list[Fault], generated_at: datetime, rng: Random,
                       buyers: list[Buyer]) -> dict[str, tuple[str, str]]:
    """`late_change`: `times` pickup orders created `age` before the change, completed long ago,
    returned `delay` after `generated_at` (COMPLETED -> RETURNED, Kaspi's words)."""
    changes: dict[str, tuple[str, str]] = {}
    for fault in faults:
        when = to_ms_precision(generated_at + timedelta(seconds=fault.delay or LATE_CHANGE_DELAY))
        age = timedelta(seconds=fault.age)
        for k in range(fault.times or 1):
            created = to_ms_precision(when - age - timedelta(minutes=7 * k))
            stages = [Stage("NEW", "APPROVED_BY_BANK", created),
                      Stage("PICKUP", "ACCEPTED_BY_MERCHANT", to_ms_precision(created + min(2 * H, age / 4))),
                      Stage("ARCHIVE", "COMPLETED", to_ms_precision(created + min(2 * D, age / 2))),
                      Stage("ARCHIVE", "RETURNED", when)]
            order = build_order(rng, str(690_000_000 + len(changes)), created, rng.choice(buyers), "late_return",
                                kind="pickup", stages=stages)
            orders[order.id] = order
            changes[order.id] = ("COMPLETED", "RETURNED")
    return changes


# -- JSON:API resources (shapes of the doc examples, payloads/kaspi/) -------------------------------

def _links(kind: str, rid: str, name: str) -> dict[str, str]:
    return {"self": f"{BASE}/{kind}/{rid}/relationships/{name}", "related": f"{BASE}/{kind}/{rid}/{name}"}


def order_resource(order: Order, moment: datetime, with_entries: bool) -> dict[str, Any]:
    """An `orders` resource as shown at `moment`; entries linkage only with `include[orders]=entries`."""
    stage = order.at(moment)
    entries: dict[str, Any] = {"links": _links("orders", order.id, "entries")}
    if with_entries:
        entries["data"] = [{"type": "orderentries", "id": e.id} for e in order.entries]
    return {
        "type": "orders", "id": order.id, "attributes": _attributes(order, stage, moment),
        "relationships": {"entries": entries, "user": {"links": _links("orders", order.id, "user"),
                                                       "data": {"type": "customers", "id": order.customer_id}}},
        "links": {"self": f"{BASE}/orders/{order.id}"},
    }


def _attributes(order: Order, stage: Stage, moment: datetime) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "code": order.code, "totalPrice": money(order.total), "paymentMode": order.payment_mode,
        "creationDate": ms(order.created_at), "deliveryCostForSeller": money(order.delivery_cost_for_seller),
        "isKaspiDelivery": order.kind == "kaspi", "deliveryMode": order.delivery_mode,
        "signatureRequired": order.signature_required, "preOrder": order.pre_order,
        "pickupPointId": order.pickup_point, "state": stage.state, "approvedByBankDate": ms(order.approved_at),
        "status": stage.status,
        "customer": {"id": order.customer_id, "name": order.customer_name, "cellPhone": order.cell_phone,
                     "firstName": order.first_name, "lastName": order.last_name},
        "deliveryCost": 0.0,
    }
    if order.credit_term is not None:  # only credit orders carry it (PREPAID example has none)
        attrs["creditTerm"] = order.credit_term
    if order.reservation is not None:
        attrs["reservationDate"] = ms(order.reservation)
    if order.planned_delivery is not None:
        attrs["plannedDeliveryDate"] = ms(order.planned_delivery)
    if stage.status in ("CANCELLING", "CANCELLED"):
        attrs["cancellationReason"] = order.cancellation_reason
    if order.kind == "kaspi":
        attrs.update(_kaspi_delivery(order, stage, moment))
    elif order.delivery_mode != "DELIVERY_PICKUP":
        attrs["deliveryAddress"] = _address(order.code, "Алматы")
    return attrs


def _kaspi_delivery(order: Order, stage: Stage, moment: datetime) -> dict[str, Any]:
    """The Kaspi Delivery blocks of order_by_code_kaspi_delivery.response.json."""
    accepted = order.accepted_at
    planned = to_ms_precision(accepted + timedelta(hours=20)) if accepted is not None else None
    blocks: dict[str, Any] = {
        "originAddress": {"id": b64(f"{MERCHANT}_7296"), "displayName": "7296",
                          "address": _address("7296", "Талдыкорган"),
                          "city": {"id": b64("191010000"), "code": "191010000", "name": "Талдыкорган", "active": True}},
        "kaspiDelivery": {
            "waybill": f"https://kaspi.kz/shop/api/waybill/{order.code}" if accepted is not None else None,
            "courierTransmissionDate": ms(planned) if planned is not None and planned <= moment else None,
            "courierTransmissionPlanningDate": ms(planned) if planned is not None else None,
            "waybillNumber": f"1{order.code[1:]}" if accepted is not None else None, "express": order.express,
            "returnedToWarehouse": stage.status == "RETURNED", "firstMileCourier": None},
        "assembled": accepted is not None and accepted <= moment,
    }
    if order.delivery_mode != "DELIVERY_PICKUP":
        blocks["deliveryAddress"] = _address(order.code, "Астана")
    return blocks


def _address(seed: str, town: str) -> dict[str, Any]:
    number = str(int(seed[-3:]) % 90 + 1)
    return {"streetName": "улица Кунаева", "streetNumber": number, "town": f"г. {town}", "district": None,
            "building": None, "apartment": None, "formattedAddress": f"г. {town}, улица Кунаева, {number}",
            "latitude": 43.238949, "longitude": 76.889709}


def entry_resource(order: Order, entry: Entry) -> dict[str, Any]:
    """An `orderentries` resource (orders_list.response.json `included[]`)."""
    eid = entry.id
    return {
        "type": "orderentries", "id": eid,
        "attributes": {
            "unitType": entry.product.unit_type, "offer": {"code": entry.offer_code, "name": entry.offer_name},
            "quantity": entry.quantity, "totalPrice": money(entry.total_price), "weight": entry.product.weight,
            "entryNumber": entry.entry_number,
            "category": {"code": entry.product.category_code, "title": entry.product.category_title},
            "deliveryCost": 0.0, "basePrice": money(entry.base_price), "isImeiRequired": False},
        "relationships": {
            "product": {"links": _links("orderentries", eid, "product"),
                        "data": {"type": "masterproducts", "id": entry.product_id}},
            "deliveryPointOfService": {"links": _links("orderentries", eid, "deliveryPointOfService"),
                                       "data": {"type": "pointofservices", "id": b64(order.pickup_point)}}},
        "links": {"self": f"{BASE}/orderentries/{eid}"},
    }


def product_resource(entry: Entry) -> dict[str, Any]:
    """A `masterproducts` resource (orderentry_product.response.json)."""
    pid, product = entry.product_id, entry.product
    return {
        "type": "masterproducts", "id": pid,
        "attributes": {"code": product.master_code, "name": product.name, "category": product.category_title},
        "relationships": {"merchantProduct": {"links": _links("masterproducts", pid, "merchantProduct"),
                                              "data": None}},
        "links": {"self": f"{BASE}/masterproducts/{pid}"},
    }
