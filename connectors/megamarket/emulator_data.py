"""The Megamarket emulator's data: seeded shipments with their whole lifecycle, and their order/get JSON.

Every rule is read from shared/marketplaces/megamarket.md (cited as §n) and its example payloads
(payloads/megamarket/, constructed from client field names). A shipment carries every unit's
status changes up front, some of them past `generated_at`, so what the platform shows depends only
on the moment it is asked (`Shipment.status_at`, `Shipment.payload`).

Where the document is silent the strict reading is chosen and said so (UNCONFIRMED):
- events: one per unit status change after NEW (the examples show fewer: the FBS one only its
  DELIVERED event, the DBS CONFIRMED one none; a client must not expect every change there);
- returns (§2.5 names `order/return` only as the seller's duty; how a return shows in order/get is not
  documented): days after delivery a unit's status becomes CUSTOMER_CANCELED, its DELIVERED event
  stays and a CUSTOMER_CANCELED event follows;
- the shipment's status is the furthest status its goods units reached, cancelled only when every
  goods unit is; the delivery pseudo-line follows the shipment and never decides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from random import Random
from typing import Any, NamedTuple

from connectors.emulation import LATE_CHANGE_DELAY, Fault

__all__ = ["CANCELLED", "CATALOG", "CLIENT_STATUSES", "DBS", "DOC_STATUSES", "FBS", "KNOWN_STATUSES", "MSK",
           "UNKNOWN_STATUSES", "Buyer", "Dataset", "Discount", "Product", "Shipment", "Stage", "Unit", "ensure_utc",
           "generate", "iso", "phone_forms"]

#: Moscow time, UTC+3 all year: response dates carry this offset (§6).
MSK = timezone(timedelta(hours=3))
#: §2.2: the shipment statuses the document names.
DOC_STATUSES = ("NEW", "CONFIRMED", "PACKED", "PACKING_EXPIRED", "SHIPPED", "DELIVERED", "MERCHANT_CANCELED",
                "CUSTOMER_CANCELED")
#: Client evidence only: the status union of a public TypeScript client (not in the document).
CLIENT_STATUSES = ("PENDING", "PENDING_CONFIRMATION", "PENDING_PACKING", "PENDING_SHIPPING", "SHIPPING_EXPIRED")
KNOWN_STATUSES = DOC_STATUSES + CLIENT_STATUSES
#: `EmulatorConfig.unknown_statuses`: words no document names (§2.2 "accept unknown values").
UNKNOWN_STATUSES = ("AWAITING_FRAUD_CHECK", "ON_HOLD_BY_OPERATOR", "REROUTED_TO_PVZ")
CANCELLED = ("MERCHANT_CANCELED", "CUSTOMER_CANCELED")
#: How far along the lifecycle a status is: the shipment shows its goods units' furthest (module doc).
RANK = {"NEW": 0, "PENDING_CONFIRMATION": 1, "CONFIRMED": 2, "PACKING_EXPIRED": 3, "PACKED": 4,
        "SHIPPING_EXPIRED": 5, "SHIPPED": 6, "DELIVERED": 7}
DBS = "DELIVERY_BY_MERCHANT"  # §2.2
FBS = "FBS"  # §2.2: the FBS value is UNCONFIRMED; the FBS example uses "FBS"
DELIVERY_OFFER = "delivery"  # §2.3: the delivery pseudo-line
DELIVERY_GOODS_ID = "100029000000"  # as in order_get_dbs.response.json

#: How shipments end, with rough weights; `unknown` shipments are picked on top of these.
OUTCOMES = {"delivered": 72, "partial_cancel": 6, "return_partial": 2, "return_full": 2, "merchant_cancel": 4,
            "customer_cancel": 4, "packing_expired": 1.5, "packing_expired_cancel": 1.5, "shipping_expired": 1,
            "shipping_expired_cancel": 1}
NEEDS_TWO_UNITS = ("partial_cancel", "return_partial")
PENDING_SHARE = 0.3  # some shipments pass PENDING_CONFIRMATION (client word) before CONFIRMED
OTHER_PHONE_FORM_SHARE = 0.15  # §2.6: mostly 7XXXXXXXXXX; the same buyer sometimes in another form
PAY_ON_DELIVERY_SHARE = 0.2  # §2.2: depositedAmount 0 on DBS = pay on delivery
FREE_DELIVERY_SHARE = 0.15  # a free delivery is still a line, price 0 (§2.3)
EMPTY_FBS_CUSTOMER_SHARE = 0.1  # §2.6: FBS `customer` is null "or mostly empty"
DISCOUNT_SHARE = 0.35
H, D = timedelta(hours=1), timedelta(days=1)


def iso(moment: datetime) -> str:
    """ISO 8601 with the Moscow offset, to the second (§6: `2024-05-10T12:00:00+03:00`)."""
    return moment.astimezone(MSK).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Product:
    offer_id: str  # the seller's SKU
    goods_id: str  # Megamarket's card id
    name: str
    category: str
    price: int  # integer roubles (§6)


CATALOG = (
    Product("KETTLE-17-STEEL", "100030000001", "Чайник электрический 1,7 л, сталь", "Электрочайники", 2490),
    Product("SKU-427086", "100028184590", "Лампа настольная", "Светильники", 3290),
    Product("MUG-CER-350", "100030000117", "Кружка керамическая 350 мл", "Кружки", 590),
    Product("PLAID-FLEECE-150", "100030000245", "Плед флисовый 150×200", "Пледы", 1890),
    Product("TOWEL-SET-3", "100030000309", "Набор полотенец, 3 шт.", "Полотенца", 2150),
    Product("HEADPH-BT-5", "100030000412", "Наушники беспроводные", "Наушники", 4990),
    Product("CASE-PHONE-12", "100030000588", "Чехол для телефона", "Чехлы", 790),
    Product("THERMOS-1L", "100030000671", "Термос 1 л", "Термосы", 1590),
    Product("PILLOW-DECO-40", "100030000733", "Подушка декоративная 40×40", "Подушки", 990),
    Product("ORG-KITCHEN-2", "100030000856", "Органайзер для кухни", "Хранение", 1290),
)
FIRST_NAMES = ("Анна", "Ольга", "Мария", "Елена", "Иван", "Сергей", "Дмитрий", "Алексей", "Наталья", "Павел")
LAST_NAMES = ("Иванова", "Смирнова", "Кузнецова", "Попова", "Соколов", "Лебедев", "Козлов", "Новиков")
STREETS = ("Профсоюзная улица", "улица Тестовая", "Ленинский проспект", "улица Примерная", "Садовая улица")
COMMENTS = ("", "", "Позвоните за час до доставки", "Домофон не работает", "Оставить у двери")
#: (discountType, discountDescription): PROMO as in order_get.response.json; LOYALTY a plausible word.
DISCOUNT_KINDS = (("PROMO", "Скидка продавца"), ("LOYALTY", "Бонусная программа"))


@dataclass(frozen=True)
class Discount:
    kind: str
    description: str
    amount: int  # integer roubles


class Stage(NamedTuple):
    """A unit's status and the instant it began."""

    status: str
    since: datetime


@dataclass
class Unit:
    """One per-unit line (§2.3): quantity 1; a product bought ×3 is three units."""

    item_index: str  # "1".."n" as strings, per shipment, delivery line last
    offer_id: str  # the seller SKU; "delivery" for the pseudo-line
    goods_id: str
    name: str
    price: int  # integer roubles (§6)
    final_price: int  # price minus its discounts
    category: str = ""
    discounts: list[Discount] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)  # in time order; the first is NEW at creation

    @property
    def is_delivery(self) -> bool:
        return self.offer_id == DELIVERY_OFFER

    def stage_at(self, now: datetime) -> Stage:
        """The stage shown at `now`; the first applies from creation (and before it)."""
        shown = self.stages[0]
        for stage in self.stages:
            if stage.since <= now:
                shown = stage
        return shown


@dataclass(frozen=True)
class Buyer:
    label: str  # "buyer-17": for tests only, never served
    phone: str  # the canonical form §2.6 shows: 11 digits, 7XXXXXXXXXX
    full_name: str
    email: str

    @property
    def e164(self) -> str:
        return "+" + self.phone


@dataclass
class Shipment:
    shipment_id: str
    created_at: datetime  # aware, whole seconds; rendered with the +03:00 offset (§6)
    scheme: str  # DBS ("DELIVERY_BY_MERCHANT") or "FBS"
    phone: str | None  # the buyer's phone as the payload carries it (DBS; None on FBS)
    buyer: str | None  # a stable buyer label (same person = same label); None on FBS
    units: list[Unit]  # goods units, then (DBS) the delivery unit
    order_code: str = ""
    phone_e164: str | None = None  # the same phone, normalised: for tests
    customer_full_name: str = ""
    customer_address: str = ""
    email: str = ""
    comment: str = ""
    empty_customer: bool = False  # FBS: `customer` {"phone": "", ...} instead of null
    deposited: int = 0
    delivery_id: str = ""
    shipping_point: str = ""
    outcome: str = ""  # how its lifecycle was drawn: for tests

    @property
    def goods(self) -> list[Unit]:
        return [u for u in self.units if not u.is_delivery]

    def status_at(self, now: datetime) -> str:
        """The shipment's Megamarket status at `now`: its goods units' furthest status, a cancel word
        only when every goods unit is cancelled (the last cancellation's), an unknown word as is."""
        stages = [u.stage_at(now) for u in self.goods]
        kept = [s.status for s in stages if s.status not in CANCELLED]
        if not kept:
            return max(stages, key=lambda s: s.since).status
        unknown = [s for s in kept if s not in RANK]
        return unknown[0] if unknown else max(kept, key=RANK.__getitem__)

    def unit_status_at(self, unit: Unit, now: datetime) -> str:
        return unit.stage_at(now).status

    def delivered_at(self, unit: Unit, now: datetime) -> datetime | None:
        """When `unit` was DELIVERED, if it was by `now` (a return later keeps that instant)."""
        return next((s.since for s in unit.stages if s.status == "DELIVERED" and s.since <= now), None)

    def changed_at(self, status: str) -> datetime | None:
        """When the goods units first reached `status` (any of them), for lifecycle-aware fields."""
        times = [s.since for u in self.goods for s in u.stages if s.status == status]
        return min(times) if times else None

    def payload(self, now: datetime) -> dict[str, Any]:
        """The order/get JSON of this shipment as seen at `now` (§2.2, order_get*.response.json)."""
        return shipment_json(self, now)


@dataclass
class Dataset:
    shipments: dict[str, Shipment]
    late_changes: dict[str, tuple[str, str]]  # shipmentId -> (status before, after)
    customer_forms: dict[str, set[str]]  # buyer label -> the phone strings its shipments carry
    busy_day: date | None  # the Moscow day of the `busy_day` shipments
    busy: set[str] = field(default_factory=set)  # their ids
    generated_at: datetime | None = None


# -- lifecycle -----------------------------------------------------------------------------------------

def _after(rng: Random, start: datetime, low: timedelta, high: timedelta) -> datetime:
    """A whole-second instant between `low` and `high` after `start`."""
    return (start + timedelta(seconds=rng.uniform(low.total_seconds(), high.total_seconds()))).replace(microsecond=0)


def normal_path(rng: Random, created: datetime) -> list[Stage]:
    """NEW → (PENDING_CONFIRMATION, some) → CONFIRMED → PACKED → SHIPPED → DELIVERED, over hours to days,
    each within the time limits `shipment_json` shows (confirm 6 h, pack 1 day, ship 2 days)."""
    path, t = [Stage("NEW", created)], created
    if rng.random() < PENDING_SHARE:
        t = _after(rng, t, timedelta(minutes=2), timedelta(minutes=30))
        path.append(Stage("PENDING_CONFIRMATION", t))
    for status, low, high in (("CONFIRMED", timedelta(minutes=10), 5 * H), ("PACKED", 2 * H, 18 * H),
                              ("SHIPPED", 4 * H, 24 * H), ("DELIVERED", 1 * D, 5 * D)):
        t = _after(rng, t, low, high)
        path.append(Stage(status, t))
    return path


def _upto(path: list[Stage], status: str) -> list[Stage]:
    """The path up to and including `status`."""
    return path[: 1 + next(k for k, s in enumerate(path) if s.status == status)]


def _since(path: list[Stage], status: str) -> datetime:
    return next(s.since for s in path if s.status == status)


def shipment_path(rng: Random, created: datetime, outcome: str) -> list[Stage]:
    """The stages every unit of the shipment shares (per-unit deviations: `unit_paths`)."""
    path = normal_path(rng, created)
    if outcome in ("merchant_cancel", "customer_cancel"):  # §2.2: cancelled before delivery, all units
        kept = path[: rng.randrange(1, len(path))]  # after NEW .. after SHIPPED
        word = "MERCHANT_CANCELED" if outcome == "merchant_cancel" else "CUSTOMER_CANCELED"
        return [*kept, Stage(word, _after(rng, kept[-1].since, 0.5 * H, 1 * D))]
    if outcome.startswith("packing_expired"):  # not packed by packingTimeLimit
        return _expired(rng, _upto(path, "CONFIRMED"), "PACKING_EXPIRED", created + D, outcome.endswith("cancel"))
    if outcome.startswith("shipping_expired"):  # packed, not shipped by shippingTimeLimit
        return _expired(rng, _upto(path, "PACKED"), "SHIPPING_EXPIRED", created + 2 * D, outcome.endswith("cancel"))
    if outcome == "unknown":  # a word no document names, shown from a few hours after confirmation
        kept = _upto(path, "CONFIRMED")
        return [*kept, Stage(rng.choice(UNKNOWN_STATUSES), _after(rng, kept[-1].since, 1 * H, 12 * H))]
    return path


def _expired(rng: Random, kept: list[Stage], word: str, limit: datetime, cancel: bool) -> list[Stage]:
    stages = [*kept, Stage(word, limit)]
    if cancel:  # some expired shipments are then cancelled by the merchant; the others stay expired
        stages.append(Stage("MERCHANT_CANCELED", _after(rng, limit, 1 * H, 2 * D)))
    return stages


def unit_paths(rng: Random, path: list[Stage], goods: int, outcome: str) -> list[list[Stage]]:
    """Each goods unit's stages: the shipment's path, except the units a partial cancellation or a
    return takes out (§2.3: "returns and cancellations are per lot/unit")."""
    paths = [list(path) for _ in range(goods)]
    if outcome == "partial_cancel":  # one unit cancelled by the merchant between CONFIRMED and PACKED
        confirmed, packed = _since(path, "CONFIRMED"), _since(path, "PACKED")
        at = (confirmed + (packed - confirmed) * rng.uniform(0.2, 0.8)).replace(microsecond=0)
        paths[rng.randrange(goods)] = [*_upto(path, "CONFIRMED"), Stage("MERCHANT_CANCELED", at)]
    elif outcome in ("return_partial", "return_full"):  # CUSTOMER_CANCELED days after DELIVERED
        back = rng.sample(range(goods), rng.randrange(1, goods) if outcome == "return_partial" else goods)
        at = _after(rng, _since(path, "DELIVERED"), 2 * D, 14 * D)
        for k in back:
            paths[k] = [*path, Stage("CUSTOMER_CANCELED", at)]
    return paths


def late_path(created: datetime, when: datetime) -> list[Stage]:
    """`late_change`: delivered long ago, returned in full at `when` (§2.2 words)."""
    age = when - created
    steps = (("CONFIRMED", min(H, age * 0.05)), ("PACKED", min(10 * H, age * 0.1)),
             ("SHIPPED", min(D, age * 0.2)), ("DELIVERED", min(4 * D, age * 0.4)))
    return [Stage("NEW", created), *(Stage(s, (created + d).replace(microsecond=0)) for s, d in steps)]


# -- building one shipment -----------------------------------------------------------------------------

def make_buyers(rng: Random, count: int) -> list[Buyer]:
    """Obviously fake phones only: 7999 and seven digits (§2.6: 11 digits starting with 7, no +)."""
    phones: set[str] = set()
    while len(phones) < count:
        phones.add(f"7999{rng.randrange(10**7):07d}")
    return [Buyer(f"buyer-{k}", phone, f"{rng.choice(LAST_NAMES)} {rng.choice(FIRST_NAMES)}",
                  "" if rng.random() < 0.4 else f"buyer{k}@example.org")
            for k, phone in enumerate(sorted(phones))]


def phone_forms(phone: str) -> tuple[str, ...]:
    """The other forms one 7XXXXXXXXXX number takes (§2.6 normalises to E.164 before hashing)."""
    a, b, c, d = phone[1:4], phone[4:7], phone[7:9], phone[9:11]
    return (f"+7 ({a}) {b}-{c}-{d}", f"8 {a} {b} {c} {d}", f"+{phone}")


def _units(rng: Random, scheme: str, outcome: str) -> list[Unit]:
    """Goods units, one per unit bought (1–3 products, 1–4 units each), then (DBS) the delivery line."""
    products = rng.sample(CATALOG, rng.choices((1, 2, 3), weights=(60, 30, 10))[0])
    counts = [rng.choices((1, 2, 3, 4), weights=(55, 25, 12, 8))[0] for _ in products]
    if outcome in NEEDS_TWO_UNITS and sum(counts) < 2:
        counts[0] = 2
    units: list[Unit] = []
    for product, count in zip(products, counts, strict=True):
        discounts = _discounts(rng, product.price) if rng.random() < DISCOUNT_SHARE else []
        final = product.price - sum(d.amount for d in discounts)
        units += [Unit(str(len(units) + k + 1), product.offer_id, product.goods_id, product.name, product.price,
                       final, product.category, discounts) for k in range(count)]
    if scheme == DBS:  # §2.3: the delivery pseudo-line, last; a free delivery is still a line
        price = 0 if rng.random() < FREE_DELIVERY_SHARE else rng.randrange(300, 801, 10)
        units.append(Unit(str(len(units) + 1), DELIVERY_OFFER, DELIVERY_GOODS_ID, "Доставка", price, price))
    return units


def _discounts(rng: Random, price: int) -> list[Discount]:
    """One or two discounts whose amounts sum to price − finalPrice (§5: `items[].discounts[]`)."""
    total = max(10, round(price * rng.uniform(0.05, 0.25) / 10) * 10)
    if total < 20 or rng.random() < 0.6:
        return [Discount(*rng.choice(DISCOUNT_KINDS), total)]
    first = rng.randrange(10, total, 10)
    return [Discount(*DISCOUNT_KINDS[0], first), Discount(*DISCOUNT_KINDS[1], total - first)]


def build_shipment(rng: Random, shipment_id: str, created: datetime, scheme: str, buyer: Buyer, outcome: str,
                   path: list[Stage] | None = None, late_at: datetime | None = None) -> Shipment:
    """One shipment with its units and their whole lifecycle; `late_at`: a full return at that instant."""
    units = _units(rng, scheme, outcome)
    goods = [u for u in units if not u.is_delivery]
    path = path or shipment_path(rng, created, outcome)
    for unit, stages in zip(goods, unit_paths(rng, path, len(goods), outcome), strict=True):
        unit.stages = stages + ([Stage("CUSTOMER_CANCELED", late_at)] if late_at is not None else [])
    for unit in units[len(goods):]:
        unit.stages = list(path)  # the delivery line follows the shipment
    total = sum(u.final_price for u in units)
    shipment = Shipment(shipment_id, created, scheme, None, None, units, order_code=f"A-{shipment_id[-6:]}",
                        customer_full_name=buyer.full_name,
                        customer_address=f"г. Москва, {rng.choice(STREETS)}, д. {rng.randrange(1, 90)}, "
                                         f"кв. {rng.randrange(1, 200)}",
                        deposited=total, delivery_id=str(rng.randrange(10**12, 10**13)), outcome=outcome)
    if scheme == DBS:  # §2.6: the buyer's phone, email and comment; §2.2: 0 = pay on delivery
        shipment.buyer, shipment.phone_e164, shipment.email = buyer.label, buyer.e164, buyer.email
        shipment.phone = rng.choice(phone_forms(buyer.phone)) if rng.random() < OTHER_PHONE_FORM_SHARE \
            else buyer.phone
        shipment.comment = rng.choice(COMMENTS)
        shipment.deposited = 0 if rng.random() < PAY_ON_DELIVERY_SHARE else total
    else:  # §2.6: FBS has no buyer identity; the name and address still come (never stored)
        shipment.customer_full_name = f"{rng.choice(LAST_NAMES)} {rng.choice(FIRST_NAMES)}"
        shipment.empty_customer = rng.random() < EMPTY_FBS_CUSTOMER_SHARE
        shipment.shipping_point = str(rng.randrange(10000, 99999))
    return shipment


# -- the data set --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Draft:
    created: datetime
    outcome: str
    late_at: datetime | None = None  # late_change: the full return's instant
    busy: bool = False  # one of the `busy_day` shipments


def _created(rng: Random, generated_at: datetime, history_days: int, outcome: str) -> datetime:
    """A whole-second creation instant within the history; an unknown status shows at `generated_at`."""
    earliest = 2 * D if outcome == "unknown" else timedelta(minutes=1)
    latest = max(timedelta(days=history_days), earliest + H)
    return _after(rng, generated_at - latest, timedelta(0), latest - earliest)


def _drafts(rng: Random, count: int, history_days: int, unknown: int, busy: int, generated_at: datetime,
            late: list[Fault]) -> tuple[list[Draft], date | None]:
    outcomes = rng.choices(list(OUTCOMES), weights=list(OUTCOMES.values()), k=count)
    for k in rng.sample(range(count), min(unknown, count)):
        outcomes[k] = "unknown"
    drafts = [Draft(_created(rng, generated_at, history_days, o), o) for o in outcomes]
    busy_day = (generated_at - 3 * D).astimezone(MSK).date() if busy else None
    if busy_day is not None:  # several times the search cap, all on one Moscow day
        start = datetime(busy_day.year, busy_day.month, busy_day.day, tzinfo=MSK)
        for outcome in rng.choices(list(OUTCOMES), weights=list(OUTCOMES.values()), k=busy):
            drafts.append(Draft(_after(rng, start, timedelta(0), D - timedelta(seconds=1)), outcome, busy=True))
    for fault in late:  # `times` shipments created `age` before their change at generated_at + delay
        when = (generated_at + timedelta(seconds=fault.delay or LATE_CHANGE_DELAY)).replace(microsecond=0)
        for k in range(fault.times or 1):
            drafts.append(Draft((when - timedelta(seconds=fault.age) - timedelta(minutes=7 * k)).replace(
                microsecond=0), "late_return", when))
    return drafts, busy_day


def generate(seed: int, count: int, history_days: int, generated_at: datetime, *, unknown: int = 0, busy: int = 0,
             dbs_share: float = 0.5, late: list[Fault] | None = None) -> Dataset:
    """`count` shipments (plus `busy` on one day and the late changes) created before `generated_at`."""
    rng = Random(seed)
    drafts, busy_day = _drafts(rng, count, history_days, unknown, busy, generated_at, late or [])
    drafts.sort(key=lambda d: d.created)
    schemes = [DBS if rng.random() < dbs_share else FBS for _ in drafts]
    buyers = make_buyers(rng, max(1, schemes.count(DBS) // 3))  # repeat buyers: about three shipments each
    shipments: dict[str, Shipment] = {}
    late_changes: dict[str, tuple[str, str]] = {}
    busy_ids: set[str] = set()
    number = 955_000_000
    for draft, scheme in zip(drafts, schemes, strict=True):
        number += rng.randrange(1, 60)  # ids grow with time, with gaps (other sellers' shipments)
        path = late_path(draft.created, draft.late_at) if draft.late_at is not None else None
        shipment = build_shipment(rng, str(number), draft.created, scheme, rng.choice(buyers), draft.outcome,
                                  path, draft.late_at)
        shipments[shipment.shipment_id] = shipment
        if draft.late_at is not None:
            late_changes[shipment.shipment_id] = (shipment.status_at(generated_at), shipment.status_at(draft.late_at))
        if draft.busy:
            busy_ids.add(shipment.shipment_id)
    _several_phone_forms(list(shipments.values()))
    forms: dict[str, set[str]] = {}
    for shipment in shipments.values():
        if shipment.buyer is not None and shipment.phone is not None:
            forms.setdefault(shipment.buyer, set()).add(shipment.phone)
    return Dataset(shipments, late_changes, forms, busy_day, busy_ids, generated_at)


def _several_phone_forms(shipments: list[Shipment]) -> None:
    """Make sure one repeat buyer shows its phone in several forms, however small the data set."""
    by_buyer: dict[str, list[Shipment]] = {}
    for shipment in shipments:
        if shipment.buyer is not None:
            by_buyer.setdefault(shipment.buyer, []).append(shipment)
    repeat = [group for group in by_buyer.values() if len(group) > 1]
    if repeat and not any(len({s.phone for s in group}) > 1 for group in repeat):
        first, second = repeat[0][:2]
        assert first.phone_e164 is not None
        first.phone, second.phone = first.phone_e164[1:], phone_forms(first.phone_e164[1:])[0]


# -- order/get JSON (§2.2, order_get.response.json and order_get_dbs.response.json) ---------------------

def shipment_json(shipment: Shipment, now: datetime) -> dict[str, Any]:
    """Every field §2.2 lists, in the examples' order, as the shipment stands at `now`."""
    created, dbs = shipment.created_at, shipment.scheme == DBS
    packed = shipment.changed_at("PACKED")
    delivery_from = (created + 3 * D).astimezone(MSK).replace(hour=10, minute=0, second=0)
    return {
        "shipmentId": shipment.shipment_id,
        "orderCode": shipment.order_code,
        "status": shipment.status_at(now),
        "confirmedTimeLimit": iso(created + 6 * H),
        "packingTimeLimit": iso(created + D),
        "shippingTimeLimit": iso(created + 2 * D),
        "shipmentDateFrom": iso(created + D),
        "shipmentDateTo": iso(created + 2 * D),
        # the packing time once packed (FBS example), the planned one before (DBS example)
        "packingDate": iso(packed if packed is not None and packed <= now else created + D),
        "reserveExpirationDate": iso(created + 20 * D) if dbs else None,  # null in the FBS example
        "deliveryId": shipment.delivery_id,
        "shipmentDateShift": False,
        "shipmentIsChangeable": False,
        "customerFullName": shipment.customer_full_name,  # §2.3: on DBS and FBS alike
        "customerAddress": shipment.customer_address,
        "shippingPoint": shipment.shipping_point,
        "creationDate": iso(created),
        "deliveryDate": iso(delivery_from + 2 * D),
        "deliveryDateFrom": iso(delivery_from),
        "deliveryDateTo": iso(delivery_from + 2 * D + 10 * H),
        "deliveryMethodId": "COURIER",
        "serviceScheme": shipment.scheme,
        "depositedAmount": shipment.deposited,
        "customer": _customer(shipment),
        "items": [item_json(unit, dbs, now) for unit in shipment.units],
    }


def _customer(shipment: Shipment) -> dict[str, str] | None:
    if shipment.scheme == DBS:
        return {"phone": shipment.phone or "", "email": shipment.email, "comment": shipment.comment}
    return {"phone": "", "email": "", "comment": ""} if shipment.empty_customer else None


def item_json(unit: Unit, dbs: bool, now: datetime) -> dict[str, Any]:
    """One per-unit line (§2.2 item fields); goodsData.isDelivery/isDigitalMarkRequired only on DBS, as
    the examples show them (absent in the FBS one)."""
    goods: dict[str, Any] = {"name": unit.name, "categoryName": unit.category}
    if dbs:
        goods.update(isDelivery=unit.is_delivery, isDigitalMarkRequired=False)
    return {
        "itemIndex": unit.item_index,
        "status": unit.stage_at(now).status,
        "subStatus": None,
        "price": unit.price,
        "finalPrice": unit.final_price,
        "discounts": [{"discountType": d.kind, "discountDescription": d.description, "discountAmount": d.amount}
                      for d in unit.discounts],
        "quantity": 1,
        "offerId": unit.offer_id,
        "goodsId": unit.goods_id,
        "goodsData": goods,
        "boxIndex": None,
        # one event per status change after NEW, up to `now` (module doc: UNCONFIRMED)
        "events": [{"eventDate": iso(s.since), "eventName": s.status, "eventValue": ""}
                   for s in unit.stages[1:] if s.since <= now],
    }


def ensure_utc(moment: datetime) -> datetime:
    """An aware instant (naive values are taken as UTC) in UTC."""
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC)
