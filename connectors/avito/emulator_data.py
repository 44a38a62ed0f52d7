"""The Avito emulator's data: seeded orders, chats and reviews with their whole lifecycle, and their JSON.

Every rule is read from shared/marketplaces/avito.md (cited as §n) and its example payloads
(payloads/avito/, the official spec's examples). An order carries all its stages up front (some lie
past `generated_at`), so what the platform shows depends only on the moment it is asked (`Order.at`);
an answer to a review carries the verdict its moderation will reach (`Answer.settle`).

Money is exact `Decimal` roubles on the records and plain JSON numbers on the wire (§7): whole
roubles as integers (the spec examples: 500, 960), kopecks as decimals (349.9).
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from random import Random
from typing import Any, NamedTuple

from connectors.emulation import LATE_CHANGE_DELAY, Fault

__all__ = ["DELIVERY_DATE_MAX", "REJECT_CONTACTS", "REJECT_LINK", "SERVICE_TYPES", "STATUSES", "TRANSITIONS",
           "Answer", "Buyer", "Chat", "Dataset", "Item", "Listing", "Order", "RejectReason", "Review", "Seller",
           "Stage", "account_json", "answer_json", "chat_json", "generate", "iso", "moderate", "money", "order_json",
           "ratings_info_json", "review_json", "unix"]

#: §3: the eight statuses `statuses` accepts and orders carry.
STATUSES = ("on_confirmation", "ready_to_ship", "in_transit", "canceled", "delivered", "on_return", "in_dispute",
            "closed")
#: §3: `delivery.serviceType`.
SERVICE_TYPES = ("pvz", "dbs", "rdbs")
#: §3: "schedules{..., deliveryDateMaх} (sic: Cyrillic "х")": the key's last letter is U+0445.
DELIVERY_DATE_MAX = "deliveryDateMa\u0445"
#: The lifecycle as this emulator reads §3's statuses: a delivery order is confirmed, shipped,
#: delivered and closed; it may be canceled before delivery; after delivery the buyer may return it
#: or open a dispute, which ends closed or in a return.
TRANSITIONS: dict[str, frozenset[str]] = {
    "on_confirmation": frozenset({"ready_to_ship", "canceled"}),
    "ready_to_ship": frozenset({"in_transit", "canceled"}),
    "in_transit": frozenset({"delivered", "canceled"}),
    "delivered": frozenset({"closed", "on_return", "in_dispute"}),
    "in_dispute": frozenset({"closed", "on_return"}),
    "on_return": frozenset({"closed"}),
    "canceled": frozenset(),
    "closed": frozenset(),
}
#: How orders end, with rough weights: "late_return" comes back 20-28 days after creation (§3: no
#: updatedAt filter, so only a re-poll finds it); "slow" stays in transit two weeks or more.
OUTCOMES = {"closed": 60, "canceled": 13, "returned": 7, "late_return": 5, "dispute": 8, "slow": 7}
FRESH_SHARE = 0.08  # created in the last 36 h, so on_confirmation and ready_to_ship show at generated_at
KOPECK = Decimal("0.01")
COMMISSION_RATE = Decimal("0.08")
M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


# -- catalogue, people -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Listing:
    """A seller's listing: Avito's id (`avitoId`, review `item.id`) and the seller's own SKU (`id`)."""

    avito_id: str
    sku: str
    title: str
    price: Decimal  # per unit
    location: str
    marked: bool = False  # goods under «Честный знак»: the order offers `setMarkings`


#: Prices carry kopecks on purpose (899.9, 349.5, 2499.99); the first listing is the spec example's.
CATALOG = (
    Listing("2799377316", "132768483", "Кеды Venice", Decimal("500"), "Новосибирск", marked=True),
    Listing("2799377402", "132768511", "Кроссовки беговые", Decimal("4999"), "Москва", marked=True),
    Listing("3104455871", "TM-450", "Термокружка 450 мл", Decimal("899.90"), "Москва"),
    Listing("3104455990", "BP-URB-2", "Рюкзак городской", Decimal("3490"), "Санкт-Петербург"),
    Listing("3251120043", "HP-BT5", "Наушники беспроводные", Decimal("2499.99"), "Москва"),
    Listing("3251120107", "CS-14", "Чехол для смартфона", Decimal("349.50"), "Казань"),
    Listing("3377810025", "PL-150", "Плед флисовый 150×200", Decimal("1290"), "Новосибирск"),
    Listing("3377810311", "LMP-7", "Лампа настольная", Decimal("1799"), "Екатеринбург"),
    Listing("3402218876", "SD-24", "Набор отвёрток 24 в 1", Decimal("649.90"), "Москва"),
    Listing("3402219004", "UMB-3", "Зонт складной", Decimal("1150.75"), "Санкт-Петербург"),
)
FIRST_NAMES = ("Владимир", "Анна", "Сергей", "Мария", "Дмитрий", "Елена", "Игорь", "Ольга", "Павел", "Наталья")
LAST_NAMES = ("Пушкин", "Смирнова", "Иванов", "Кузнецова", "Попов", "Соколова", "Лебедев", "Козлова")
PATRONYMICS = ("Александрович", "Сергеевна", "Игоревич", "Павловна", "Дмитриевич", "Олеговна")
SERVICES = {"pvz": ("Boxberry", "СДЭК", "Почта России", "5Post"), "dbs": ("СДЭК", "DPD"), "rdbs": ("Курьер продавца",)}
TERMINALS = (("Москва, Настасьинский 8 стр2 6", "MSK14"), ("Новосибирск, Красный проспект 25", "NSK03"),
             ("Санкт-Петербург, Невский проспект 88", "SPB21"), ("Казань, ул. Баумана 44", "KZN07"))
ADDRESSES = (("Москва, ул. Каретный ряд, 16, ст. 1, к. 2", "Подъезд во дворе дома"),
             ("Москва, Ленинский проспект, 30, кв. 12", None), ("Химки, ул. Молодёжная, 4", "Позвонить за час"))
PROMOS = ("myfriendpromo", "SPRING10", "WELCOME100")


@dataclass(frozen=True)
class Buyer:
    label: str  # "buyer-17": for tests only, never served
    user_id: int  # Messenger `users[].id`: hashed, stable per buyer (§3)
    name: str  # the Messenger and review display name
    full_name: str  # `buyerInfo.fullName` (DBS/RDBS after payment, §3)
    phone: str  # `buyerInfo.phoneNumber`, digits as the spec example: "79876543210"


@dataclass(frozen=True)
class Seller:
    """The account `/core/v1/accounts/self` describes (§2); fake personal data."""

    user_id: int
    name: str
    email: str
    phone: str
    profile_url: str


@dataclass(frozen=True)
class Chat:
    """A `u2i` chat (buyer about a listing, §3 `chatId`): one per buyer and listing, opened by the first order."""

    id: str
    buyer: Buyer
    listing: Listing
    created_at: datetime


# -- orders -----------------------------------------------------------------------------------------

class Stage(NamedTuple):
    status: str
    since: datetime


@dataclass
class Item:
    """One order line (§3 `items[]`); money exact in roubles."""

    avito_id: str
    sku: str  # the seller's `id`
    chat_id: str
    title: str
    location: str
    count: int
    price: Decimal  # per unit (§3: "item prices.price is per unit")
    discount_sum: Decimal  # the line's promo-code discounts (the example: 10 per unit × 2 = 20)
    commission: Decimal  # per unit, as the example (item 10, order 20 for two units)
    promo: str | None = None
    marked: bool = False

    @property
    def discount_value(self) -> Decimal:
        return self.discount_sum / self.count

    @property
    def line_total(self) -> Decimal:
        """`prices.total`, "the price less discounts" (spec): the line's goods after promo codes."""
        return self.price * self.count - self.discount_sum


@dataclass
class Order:
    id: str  # numeric string (§3 example "50000000000000000")
    marketplace_id: str
    created_at: datetime  # aware UTC, whole seconds
    stages: list[Stage]  # time order; the first is on_confirmation at created_at
    items: list[Item]
    service_type: str  # pvz | dbs | rdbs
    service_name: str
    buyer: str  # the buyer's label
    buyer_user_id: int
    buyer_name: str  # buyerInfo.fullName
    buyer_phone: str
    paid_at: datetime | None  # None: never paid (canceled before payment): no buyerInfo ever
    delivery_fee: Decimal  # `prices.delivery`: DBS and RDBS only (spec)
    dispatch_number: str
    tracking_number: str
    return_tracking: str
    terminal: tuple[str, str] | None  # (address, code) of the pickup point: pvz and dbs
    courier: tuple[str, str | None] | None  # (address, comment): rdbs

    def at(self, moment: datetime) -> Stage:
        """The stage shown at `moment`; the first applies from `created_at` (and before it)."""
        shown = self.stages[0]
        for stage in self.stages:
            if stage.since <= moment:
                shown = stage
        return shown

    def since(self, status: str) -> datetime | None:
        return next((s.since for s in self.stages if s.status == status), None)

    @property
    def price(self) -> Decimal:
        return sum((i.price * i.count for i in self.items), Decimal(0))

    @property
    def discount(self) -> Decimal:
        return sum((i.discount_sum for i in self.items), Decimal(0))

    @property
    def commission(self) -> Decimal:
        return sum((i.commission * i.count for i in self.items), Decimal(0))

    @property
    def goods_total(self) -> Decimal:
        """What the buyer paid for the goods: Σ price×count − Σ discountSum (§3; delivery and commission excluded)."""
        return self.price - self.discount

    @property
    def payout(self) -> Decimal:
        """`prices.total`: "the seller's payout (after commission)" (§3), not what the buyer paid."""
        return self.price - self.discount - self.commission


# -- reviews ----------------------------------------------------------------------------------------

class RejectReason(NamedTuple):
    id: int
    title: str


#: Moderation rules for answers: no links, no contacts (platform_rules.md §0 and §5 Avito: "passing
#: contacts or links" is forbidden; §4 of avito.md: "Answers are moderated (status + reject reasons)").
REJECT_LINK = RejectReason(101, "Ссылки на сторонние ресурсы")
REJECT_CONTACTS = RejectReason(102, "Контактные данные")
_LINK = re.compile(r"https?://|www\.|\b[\w-]+\.(?:ru|com|net|org|su|рф)\b", re.IGNORECASE)
_PHONE = re.compile(r"(?:\+?\d[\s()-]*){10,}")  # ten digits or more, however spaced
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.\w+")


def moderate(text: str) -> list[RejectReason]:
    """The reasons moderation rejects `text` for; none: it is published."""
    reasons = []
    if _LINK.search(text):
        reasons.append(REJECT_LINK)
    if _PHONE.search(text) or _EMAIL.search(text):
        reasons.append(REJECT_CONTACTS)
    return reasons


@dataclass
class Answer:
    """A seller's answer (§4): `moderation` until `decided_at`, then `published` or `rejected`."""

    id: int
    text: str
    status: str  # as the platform shows it now (see `settle`)
    created_at: datetime
    reject_reasons: list[RejectReason]
    decided_at: datetime
    verdict: list[RejectReason] = field(default_factory=list)  # moderation's reasons; none: published

    def settle(self, moment: datetime) -> None:
        """Moderation ends at `decided_at` on the serving clock."""
        if self.status == "moderation" and moment >= self.decided_at:
            self.status = "rejected" if self.verdict else "published"
            self.reject_reasons = list(self.verdict)


@dataclass
class Review:
    """A review of the seller (§4): tied to a listing at most, never to an order or a buyer id."""

    id: int
    score: int
    stage: str  # done | fell_through | not_agree | not_communicate
    text: str
    created_at: datetime  # aware UTC, whole seconds
    item_id: int | None
    item_title: str | None
    sender: str
    can_answer: bool
    used_in_score: bool
    active: bool = True  # §4: "Only active reviews are listed"
    images: int = 0
    answer: Answer | None = None


@dataclass
class Dataset:
    seller: Seller
    buyers: list[Buyer]
    orders: dict[str, Order]
    reviews: dict[int, Review]
    chats: dict[str, Chat]
    late_changes: dict[str, tuple[str, str]]


# -- generation -------------------------------------------------------------------------------------

def whole(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _after(rng: Random, start: datetime, low: timedelta, high: timedelta) -> datetime:
    return whole(start + timedelta(seconds=rng.uniform(low.total_seconds(), high.total_seconds())))


def _digits(rng: Random, n: int) -> str:
    return f"{rng.randrange(10**n):0{n}d}"


def _profile(seed: str) -> str:
    return f"https://avito.ru/user/{hashlib.md5(seed.encode()).hexdigest()}/profile"


def make_seller(rng: Random) -> Seller:
    user_id = rng.randrange(100_000_000, 400_000_000)  # int32, as the spec's `id` (format int32)
    return Seller(user_id, "Уютный дом", f"shop{user_id}@example.com", "7999" + _digits(rng, 7),
                  _profile(f"seller:{user_id}"))


def make_buyers(rng: Random, count: int, seller: Seller) -> list[Buyer]:
    ids: set[int] = set()
    while len(ids) < count:  # "unique user ID — note the hashing" (§3): opaque, stable, never the seller's
        candidate = rng.randrange(10_000_000, 2**31 - 1)
        if candidate != seller.user_id:
            ids.add(candidate)
    shuffled = sorted(ids)
    rng.shuffle(shuffled)
    buyers = []
    for k, user_id in enumerate(shuffled):
        first = rng.choice(FIRST_NAMES)
        full = f"{rng.choice(LAST_NAMES)} {first} {rng.choice(PATRONYMICS)}"
        buyers.append(Buyer(f"buyer-{k}", user_id, first, full, "79" + _digits(rng, 9)))
    return buyers


class ChatBook:
    """One `u2i` chat id per (buyer, listing), created with the first order that needs it."""

    def __init__(self, rng: Random):
        self.rng = rng
        self.chats: dict[tuple[str, str], Chat] = {}

    def chat(self, buyer: Buyer, listing: Listing, created: datetime) -> Chat:
        key = (buyer.label, listing.avito_id)
        found = self.chats.get(key)
        if found is None or created < found.created_at:
            chat_id = found.id if found else "u2i-" + "".join(self.rng.choices(string.ascii_letters + string.digits,
                                                                                  k=21))
            found = self.chats[key] = Chat(chat_id, buyer, listing, created)
        return found

    def by_id(self) -> dict[str, Chat]:
        return {c.id: c for c in self.chats.values()}


def lifecycle(rng: Random, created: datetime, outcome: str) -> list[Stage]:
    """The stages of one order (see TRANSITIONS) for its `outcome` (OUTCOMES)."""
    stages = [Stage("on_confirmation", created)]
    if outcome == "canceled":
        return _canceled(rng, stages, created)
    confirmed = _after(rng, created, 5 * M, 20 * H)
    shipped = _after(rng, confirmed, 3 * H, 2 * D)
    delivered = _after(rng, created, 15 * D, 25 * D) if outcome == "slow" else _after(rng, shipped, 1 * D, 5 * D)
    stages += [Stage("ready_to_ship", confirmed), Stage("in_transit", shipped), Stage("delivered", delivered)]
    if outcome == "late_return":  # back 20+ days after creation: out of reach of a short dateFrom window
        stages.append(Stage("on_return", max(_after(rng, created, 20 * D, 28 * D), delivered + D)))
    elif outcome == "returned":
        back = _after(rng, delivered, 1 * D, 5 * D)
        stages += [Stage("on_return", back), Stage("closed", _after(rng, back, 5 * D, 14 * D))]
    elif outcome == "dispute":
        opened = _after(rng, delivered, 1 * D, 4 * D)
        stages.append(Stage("in_dispute", opened))
        if rng.random() < 0.3:  # the dispute ends in a return
            back = _after(rng, opened, 2 * D, 7 * D)
            stages += [Stage("on_return", back), Stage("closed", _after(rng, back, 5 * D, 14 * D))]
        else:
            stages.append(Stage("closed", _after(rng, opened, 7 * D, 20 * D)))
    else:
        stages.append(Stage("closed", _after(rng, delivered, 3 * D, 10 * D)))
    return stages


def _canceled(rng: Random, stages: list[Stage], created: datetime) -> list[Stage]:
    """Canceled from one of the first three statuses (before delivery)."""
    where = rng.choices(("on_confirmation", "ready_to_ship", "in_transit"), weights=(50, 30, 20))[0]
    if where == "on_confirmation":
        return [*stages, Stage("canceled", _after(rng, created, 30 * M, 20 * H))]
    confirmed = _after(rng, created, 5 * M, 20 * H)
    stages.append(Stage("ready_to_ship", confirmed))
    if where == "ready_to_ship":
        return [*stages, Stage("canceled", _after(rng, confirmed, 2 * H, 2 * D))]
    shipped = _after(rng, confirmed, 3 * H, 2 * D)
    return [*stages, Stage("in_transit", shipped), Stage("canceled", _after(rng, shipped, 1 * D, 7 * D))]


def pick_created(rng: Random, generated_at: datetime, history_days: int) -> datetime:
    latest = 36 * H if rng.random() < FRESH_SHARE else max(D * history_days, 2 * M)
    return whole(generated_at - timedelta(seconds=rng.uniform(60, latest.total_seconds())))


def make_item(rng: Random, listing: Listing, chat: Chat) -> Item:
    count = rng.choices((1, 2, 3), weights=(75, 18, 7))[0]
    promo, value = None, Decimal(0)
    if rng.random() < 0.25:  # a promo code (§6: `discounts[]{id, type: promocode, value}`), per unit
        promo = rng.choice(PROMOS)
        value = min(rng.choice((Decimal(50), Decimal(100), (listing.price * Decimal("0.05")).quantize(KOPECK))),
                    listing.price / 2).quantize(KOPECK)
    commission = (listing.price * COMMISSION_RATE).quantize(KOPECK, ROUND_HALF_UP)
    return Item(listing.avito_id, listing.sku, chat.id, listing.title, listing.location, count, listing.price,
                value * count, commission, promo, listing.marked)


def build_order(rng: Random, number: int, created: datetime, stages: list[Stage], buyer: Buyer, chats: ChatBook,
                paid: bool = True, service_type: str | None = None) -> Order:
    service_type = service_type or rng.choices(SERVICE_TYPES, weights=(60, 20, 20))[0]
    listings = rng.sample(CATALOG, k=rng.choices((1, 2, 3), weights=(70, 22, 8))[0])
    items = [make_item(rng, listing, chats.chat(buyer, listing, created)) for listing in listings]
    return Order(
        id=str(number), marketplace_id=str(number + 20_000_000_000_000_000), created_at=created, stages=stages,
        items=items, service_type=service_type, service_name=rng.choice(SERVICES[service_type]), buyer=buyer.label,
        buyer_user_id=buyer.user_id, buyer_name=buyer.full_name, buyer_phone=buyer.phone,
        paid_at=_after(rng, created, 1 * M, 20 * M) if paid else None,
        delivery_fee=Decimal(0) if service_type == "pvz" else rng.choice((Decimal(0), Decimal(299),
                                                                          Decimal("349.90"))),
        dispatch_number=_digits(rng, 13), tracking_number=_digits(rng, 13), return_tracking=_digits(rng, 13),
        terminal=rng.choice(TERMINALS) if service_type != "rdbs" else None,
        courier=rng.choice(ADDRESSES) if service_type == "rdbs" else None)


def make_orders(rng: Random, count: int, history_days: int, generated_at: datetime, buyers: list[Buyer],
                chats: ChatBook) -> dict[str, Order]:
    outcomes = rng.choices(list(OUTCOMES), weights=list(OUTCOMES.values()), k=count)
    drafts = sorted((pick_created(rng, generated_at, history_days), outcome) for outcome in outcomes)
    orders: dict[str, Order] = {}
    number = 50_000_000_000_000_000
    for created, outcome in drafts:
        number += rng.randrange(1, 50_000)  # ids grow with time, with gaps (other sellers' orders)
        stages = lifecycle(rng, created, outcome)
        # Half the orders canceled while awaiting confirmation were never paid: no buyerInfo (§3).
        unpaid = stages[-1].status == "canceled" and len(stages) == 2 and rng.random() < 0.5
        order = build_order(rng, number, created, stages, rng.choice(buyers), chats, paid=not unpaid)
        orders[order.id] = order
    return orders


def stage_late_changes(orders: dict[str, Order], faults: list[Fault], generated_at: datetime, rng: Random,
                       buyers: list[Buyer], chats: ChatBook) -> dict[str, tuple[str, str]]:
    """`late_change`: `times` pickup-point orders created `age` before the change, delivered long ago,
    returned `delay` after `generated_at` (delivered -> on_return, §3's words)."""
    changes: dict[str, tuple[str, str]] = {}
    for fault in faults:
        when = whole(generated_at + timedelta(seconds=fault.delay or LATE_CHANGE_DELAY))
        age = timedelta(seconds=fault.age)
        for k in range(fault.times or 1):
            created = whole(when - age - 7 * k * M)
            stages = [Stage("on_confirmation", created), Stage("ready_to_ship", whole(created + min(2 * H, age / 8))),
                      Stage("in_transit", whole(created + min(D, age / 4))),
                      Stage("delivered", whole(created + min(3 * D, age / 2))), Stage("on_return", when)]
            order = build_order(rng, 59_000_000_000_000_000 + len(changes), created, stages, rng.choice(buyers),
                                chats, service_type="pvz")
            orders[order.id] = order
            changes[order.id] = ("delivered", "on_return")
    return changes


REVIEW_TEXTS = {
    5: ("Отличный продавец! Рекомендую :)", "Всё пришло быстро, товар как на фото.", "Спасибо, всё супер!"),
    4: ("Хороший товар, доставка чуть задержалась.", "Всё хорошо, но упаковка могла быть лучше."),
    3: ("Нормально, но коробка помята.",),
    2: ("Товар не соответствует описанию.",),
    1: ("Продавец не отвечал, заказ так и не пришёл.",),
}
STAGES = {"done": 80, "fell_through": 8, "not_agree": 7, "not_communicate": 5}
#: Seeded answers: mostly polite; a few break the rules and are rejected by the same `moderate`.
SEED_ANSWERS = ("Спасибо за отзыв!", "Благодарим за покупку, будем рады видеть вас снова.",
                "Спасибо! Напишите нам: +7 999 123-45-67", "Подробности на www.uyutny-dom.ru")


def make_reviews(rng: Random, count: int, history_days: int, generated_at: datetime,
                 moderation: timedelta) -> dict[int, Review]:
    created = sorted(whole(generated_at - timedelta(seconds=rng.uniform(3600, max(history_days, 1) * 86400.0)))
                     for _ in range(count))
    reviews: dict[int, Review] = {}
    number, answer_id = 92_300_000, 1_234_000
    for moment in created:
        number += rng.randrange(1, 5000)
        score = rng.choices((1, 2, 3, 4, 5), weights=(6, 4, 8, 22, 60))[0]
        stage = rng.choices(list(STAGES), weights=list(STAGES.values()))[0]
        listing = rng.choice(CATALOG) if rng.random() < 0.85 else None  # "optionally tied to a listing" (§4)
        review = Review(number, score, stage, rng.choice(REVIEW_TEXTS[score]), moment,
                        int(listing.avito_id) if listing else None, listing.title if listing else None,
                        rng.choice(FIRST_NAMES), can_answer=rng.random() < 0.9,
                        used_in_score=stage == "done" or rng.random() < 0.5, active=rng.random() < 0.95,
                        images=rng.choice((0, 0, 0, 0, 0, 1, 2)))
        if review.can_answer and rng.random() < 0.35:
            answer_id += rng.randrange(1, 900)
            text = rng.choices(SEED_ANSWERS, weights=(45, 40, 8, 7))[0]
            at = min(_after(rng, moment, 30 * M, 2 * D), whole(generated_at - M))
            review.answer = Answer(answer_id, text, "moderation", at, [], at + moderation, moderate(text))
            review.answer.settle(generated_at)
        reviews[review.id] = review
    return reviews


def generate(seed: int, orders: int, reviews: int, history_days: int, generated_at: datetime, late: list[Fault],
             moderation_seconds: float) -> Dataset:
    """The whole data set: `orders` orders and `reviews` reviews within `history_days` before
    `generated_at`, plus the late changes the fault plan asks for."""
    rng = Random(seed)
    seller = make_seller(rng)
    buyers = make_buyers(rng, max(1, orders // 3), seller)  # repeat buyers: about three orders each
    chats = ChatBook(rng)
    order_set = make_orders(rng, orders, history_days, generated_at, buyers, chats)
    late_changes = stage_late_changes(order_set, late, generated_at, rng, buyers, chats)
    review_set = make_reviews(rng, reviews, history_days, generated_at, timedelta(seconds=moderation_seconds))
    return Dataset(seller, buyers, order_set, review_set, chats.by_id(), late_changes)


# -- JSON (shapes of payloads/avito/) ---------------------------------------------------------------

def iso(moment: datetime) -> str:
    """§7: orders' times are ISO 8601 UTC with `Z`, whole seconds (`2016-11-01T20:44:39Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(moment: datetime) -> int:
    """§7: reviews, answers and chats: unix seconds."""
    return int(moment.timestamp())


def money(value: Decimal) -> int | float:
    """§7: plain numbers; whole roubles as integers, kopecks as decimals (the float of a 2-place
    Decimal prints back exactly)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _midnight(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def order_json(order: Order, moment: datetime) -> dict[str, Any]:
    """An order as `GET /order-management/1/orders` shows it at `moment` (orders.response.json)."""
    stage = order.at(moment)
    return {
        "id": order.id, "marketplaceId": order.marketplace_id, "status": stage.status,
        "createdAt": iso(order.created_at), "updatedAt": iso(stage.since),
        "availableActions": [{"name": n, "required": r} for n, r in _actions(order, stage.status)],
        "items": [_item_json(i) for i in order.items],
        "prices": {"price": money(order.price), "total": money(order.payout), "discount": money(order.discount),
                   "commission": money(order.commission), "delivery": money(order.delivery_fee)},
        "delivery": _delivery_json(order, moment),
        "schedules": _schedules_json(order),
        "returnPolicy": _return_json(order, moment),
    }


def _item_json(item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {
        "avitoId": item.avito_id, "id": item.sku, "chatId": item.chat_id, "title": item.title,
        "location": item.location, "count": item.count,
        "prices": {"price": money(item.price), "total": money(item.line_total), "discountSum": money(item.discount_sum),
                   "commission": money(item.commission)},
        "discounts": [],
    }
    if item.promo is not None:
        out["discounts"] = [{"id": item.promo, "type": "promocode", "value": money(item.discount_value)}]
    return out


def _actions(order: Order, status: str) -> list[tuple[str, bool]]:
    """`availableActions` (spec enum): what the seller must or may do in this status; empty when nothing."""
    actions: list[tuple[str, bool]] = []
    if status == "on_confirmation":
        actions = [("confirm", True), ("reject", False)]
    elif status == "ready_to_ship":
        actions = {"pvz": [], "dbs": [("setTrackNumber", True)], "rdbs": [("perform", True)]}[order.service_type]
    elif status == "in_transit" and order.service_type == "rdbs":
        actions = [("receive", True)]
    if status in ("on_confirmation", "ready_to_ship") and any(i.marked for i in order.items):
        actions.append(("setMarkings", False))
    return actions


def _delivery_json(order: Order, moment: datetime) -> dict[str, Any]:
    delivery: dict[str, Any] = {"serviceName": order.service_name, "serviceType": order.service_type}
    shipped = any(s.status == "in_transit" and s.since <= moment for s in order.stages)
    if order.service_type != "rdbs":  # spec: dispatch and tracking numbers are "absent for RDBS"
        delivery["dispatchNumber"] = order.dispatch_number
        if order.service_type == "pvz" or shipped:  # DBS: the seller sets it when shipping (setTrackNumber)
            delivery["trackingNumber"] = order.tracking_number
    if order.terminal is not None:
        delivery["terminalInfo"] = {"address": order.terminal[0], "code": order.terminal[1]}
    if order.courier is not None:
        delivery["courierInfo"] = {"address": order.courier[0], "comment": order.courier[1]}
    # §3: buyerInfo is "available only for DBS and RDBS after payment": personal data the daemon must treat as such.
    if order.service_type != "pvz" and order.paid_at is not None and order.paid_at <= moment:
        delivery["buyerInfo"] = {"fullName": order.buyer_name, "phoneNumber": order.buyer_phone}
    return delivery


def _schedules_json(order: Order) -> dict[str, Any]:
    created = order.created_at
    schedules: dict[str, Any] = {"confirmTill": iso(created + D), "shipTill": iso(created + 2 * D)}
    if order.service_type == "dbs":
        schedules["setTrackingNumberTill"] = iso(created + 2 * D)
    if order.service_type == "rdbs":
        schedules["deliveryDate"] = iso(_midnight(created + 4 * D))
    schedules["deliveryDateMin"] = iso(_midnight(created + 3 * D))
    schedules[DELIVERY_DATE_MAX] = iso(_midnight(created + 5 * D))
    return schedules


def _return_json(order: Order, moment: datetime) -> dict[str, Any] | None:
    """`returnPolicy` once the order is on its way back (spec enum: self_return "only for DBS")."""
    back = order.since("on_return")
    if back is None or back > moment:
        return None
    if order.service_type == "dbs":
        return {"returnStatus": "self_return"}
    status = "ready_to_pickup" if moment >= back + 3 * D else "in_transit"
    return {"returnStatus": status, "trackingNumber": order.return_tracking}


def answer_json(answer: Answer) -> dict[str, Any]:
    out: dict[str, Any] = {"id": answer.id, "text": answer.text, "status": answer.status,
                           "createdAt": unix(answer.created_at)}
    if answer.reject_reasons:
        out["reject_reasons"] = [{"id": r.id, "title": r.title} for r in answer.reject_reasons]
    return out


def review_json(review: Review) -> dict[str, Any]:
    """A review (reviews.response.json): sender's name only, no order, no buyer id (§4)."""
    item = {"id": review.item_id, "title": review.item_title} if review.item_id is not None else None
    images = [{"number": n, "sizes": [{"size": size, "url": f"https://img.avito.st/review/{review.id}/{n}/{size}.jpg"}
                                      for size in ("100x100", "640x480")]} for n in range(1, review.images + 1)]
    return {"id": review.id, "score": review.score, "stage": review.stage, "text": review.text,
            "usedInScore": review.used_in_score, "canAnswer": review.can_answer, "createdAt": unix(review.created_at),
            "item": item, "sender": {"name": review.sender}, "images": images,
            "answer": answer_json(review.answer) if review.answer is not None else None}


def ratings_info_json(reviews: list[Review]) -> dict[str, Any]:
    """`GET /ratings/v1/info` (§4) over the active reviews; `rating` is null while there are none."""
    scored = [r.score for r in reviews if r.used_in_score]
    rating = {"score": round(sum(scored) / len(scored), 1) if scored else 0.0, "reviewsCount": len(reviews),
              "reviewsWithScoreCount": len(scored)}
    return {"isEnabled": True, "rating": rating if reviews else None}


def account_json(seller: Seller) -> dict[str, Any]:
    """`GET /core/v1/accounts/self` (§2: `{id, name, email, phone, phones, profile_url}`)."""
    return {"id": seller.user_id, "name": seller.name, "email": seller.email, "phone": seller.phone,
            "phones": [seller.phone], "profile_url": seller.profile_url}


def chat_json(chat: Chat, seller: Seller) -> dict[str, Any]:
    """`GET /messenger/v2/accounts/{user_id}/chats/{chat_id}` (§3): the seller and the buyer in `users[]`."""
    listing, buyer = chat.listing, chat.buyer
    created = unix(chat.created_at)

    def user(user_id: int, name: str) -> dict[str, Any]:
        return {"id": user_id, "name": name,
                "public_user_profile": {"user_id": user_id, "item_id": int(listing.avito_id),
                                        "url": _profile(f"user:{user_id}"),
                                        "avatar": {"default": "https://www.avito.st/stub_avatars/_/14_256x256.png"}}}

    return {
        "id": chat.id, "created": created, "updated": created,
        "context": {"type": "item", "value": {
            "id": int(listing.avito_id), "title": listing.title, "user_id": seller.user_id, "status_id": 10,
            "price_string": f"{money(listing.price)} ₽".replace(".", ","),
            "url": f"https://avito.ru/items/{listing.avito_id}"}},
        "users": [user(seller.user_id, seller.name), user(buyer.user_id, buyer.name)],
        "last_message": {"id": hashlib.md5(chat.id.encode()).hexdigest(), "author_id": buyer.user_id,
                         "content": {"text": "Здравствуйте! Заказ оформил, жду отправку."}, "created": created,
                         "direction": "in", "type": "text"},
    }
