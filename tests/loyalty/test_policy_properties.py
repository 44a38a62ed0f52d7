"""The gate against an oracle: random actions whose texts are built from labelled fragments.

Each text is assembled from clean sentences and fragments known to carry a link, a phone, an e-mail,
personal data or a promo code, then maybe padded past a length limit or replaced by a too-short text.
The oracle computes, from how the action was built and from hand-written tables of the platforms'
rules (not from `Capabilities`), every rule the action breaks. The gate must refuse exactly when that
set is non-empty, with a reason from it, and never echo a phone, e-mail or card number in full.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.ozon.capabilities import OZON_CAPABILITIES
from connectors.wildberries.capabilities import WILDBERRIES_CAPABILITIES
from connectors.yandex_market.capabilities import YANDEX_MARKET_CAPABILITIES
from loyalty.action_settings import ActionSettings
from loyalty.actions import OUTBOX_KINDS, Action, ChatContext, Kind, Purpose, Refusal
from loyalty.policy import gate
from tests.scale import examples

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
CAPS = {"wildberries": WILDBERRIES_CAPABILITIES, "ozon": OZON_CAPABILITIES,
        "yandex_market": YANDEX_MARKET_CAPABILITIES}
BUYER_NAME = "Анна"

CLEAN = [
    "Спасибо за отзыв! Рады, что покупка понравилась",
    "Цена 1 500 ₽ за комплект",
    "Доставка 12.03.2026 с 10:00 до 18:00",
    "Заказ № 123456789012 уже в пути",
    "Размер XL-200 в наличии, артикул 87654321",
    "Бренд NIKE, хит продаж",
    "Т.е. товар можно вернуть в течение 7 дней",
    "Нам жаль, что товар вас огорчил: напишите в чат заказа на площадке",
    "Отправление 12345678-0001-1 в пункте выдачи",
]
# label -> fragments carrying it; (label, raw value that must never appear in a detail)
FRAGMENTS = {
    "link": ["Подробнее на uyut-shop.ru", "Каталог тут https://example.com/new", "Канал t.me/uyut_shop",
             "Сайт магазин-уют.рф", "Каталог www.uyut.ru/new"],
    "phone": ["Звоните +7 (912) 345-67-67", "тел. 8 912 345 67 89", "8 9 1 2 3 4 5 6 7 8 9",
              "Лондон +44 20 7946 0958"],
    "email": ["Пишите на help@uyut.ru", "почта ivan at mail dot ru", "shop собака yandex точка ru"],
    "personal": ["карта 4111 1111 1111 1111", "паспорт 45 06 123456", "пишите @uyut_support",
                 "напишите в телеграм", f"{BUYER_NAME}, спасибо"],
    "promo": ["Дарим промокод SALE2026", "ваш купон ЛЕТО", "код ВЕСНА25 на всё"],
    # Benefits without a code (issue 17): a reward when it answers a review, marketing in a chat.
    "benefit": ["Дарим вам 200 бонусных баллов", "скидка 15 % на следующую покупку", "доставим бесплатно",
                "вернём 10 % кешбэком", "в подарок чехол"],
}
RAW_VALUES = ["345-67-67", "912 345 67 89", "3 4 5 6 7", "7946", "help@", "ivan at", "shop собака",
              "4111 1111 1111 1111", "123456", BUYER_NAME]
LABEL_REASON = {"link": Refusal.CONTAINS_LINK, "phone": Refusal.CONTAINS_PHONE, "email": Refusal.CONTAINS_EMAIL,
                "personal": Refusal.CONTAINS_PERSONAL_DATA}

# (platform, kind) -> (min, max) characters, from platform_rules.md; None: no text limits.
LIMITS = {
    ("wildberries", Kind.REPLY_TO_REVIEW): (2, 5000), ("ozon", Kind.REPLY_TO_REVIEW): (1, 3000),
    ("yandex_market", Kind.REPLY_TO_REVIEW): (1, 4096),
    ("wildberries", Kind.SEND_CHAT_MESSAGE): (1, 1000), ("ozon", Kind.SEND_CHAT_MESSAGE): (1, 1000),
    ("yandex_market", Kind.SEND_CHAT_MESSAGE): (1, 4096),
}
PROMO_CHANNEL = {"wildberries": Refusal.CABINET_ONLY, "ozon": None, "yandex_market": Refusal.CABINET_ONLY}
# What each connector's `perform` carries out, read off the connectors (not off `Capabilities.writes`):
# WB's API has buyer chats, its connector answers reviews only.
NOT_IMPLEMENTED = {("wildberries", Kind.SEND_CHAT_MESSAGE)}


@dataclass(frozen=True)
class Scenario:
    chat: ChatContext | None
    refusal: dict[str, Refusal | None]  # what each platform's chat rules say (start + windows)


def _chat(exists: bool, fulfilment: str, *, paid: float | None = None, delivered: float | None = None,
          buyer: float | None = None) -> ChatContext:
    ago = {k: (NOW - v * H if v is not None else None) for k, v in
           {"paid": paid, "delivered": delivered, "buyer": buyer}.items()}
    return ChatContext(chat_exists=exists, buyer_opened=exists and buyer is not None, fulfilment=fulfilment,
                       paid_at=ago["paid"], delivered_at=ago["delivered"], last_buyer_message_at=ago["buyer"])


NOT_START, OUTSIDE = Refusal.CHAT_START_NOT_ALLOWED, Refusal.CHAT_OUTSIDE_WINDOW
SCENARIOS = [
    Scenario(_chat(True, "fbs", paid=30, buyer=1), {}),
    Scenario(_chat(True, "fbo", paid=60, buyer=49), {"ozon": OUTSIDE}),
    Scenario(_chat(True, "fbo", paid=60, buyer=47), {}),
    Scenario(_chat(True, "fbs", paid=144), {}),
    Scenario(_chat(True, "rfbs", paid=240, delivered=73, buyer=49), {"ozon": OUTSIDE}),
    Scenario(_chat(True, "rfbs", paid=240, delivered=71), {}),
    Scenario(_chat(False, "fbs", paid=10), {"wildberries": NOT_START}),
    Scenario(_chat(False, "fbs", paid=120), {"wildberries": NOT_START, "ozon": OUTSIDE}),
    Scenario(_chat(False, "rfbs", paid=240, delivered=70), {"wildberries": NOT_START}),
    Scenario(_chat(False, "fbo", paid=1), {"wildberries": NOT_START, "ozon": NOT_START}),
    Scenario(None, {"wildberries": NOT_START, "ozon": OUTSIDE}),
]


@st.composite
def texts(draw) -> tuple[str | None, frozenset[str], list[str]]:
    """A text, the labels of the fragments in it, and the fragments."""
    shape = draw(st.sampled_from(["none", "empty", "blank", "one_char"] + ["built"] * 12))
    if shape != "built":
        return {"none": None, "empty": "", "blank": "   ", "one_char": "Я"}[shape], frozenset(), []
    rating = draw(st.integers(1, 5))
    parts = [f"Спасибо за {rating} звёзд"] if draw(st.booleans()) else []
    parts += draw(st.lists(st.sampled_from(CLEAN), max_size=3))
    dirty = draw(st.booleans())  # half the texts are clean, so rules later in the order get reached
    chosen = draw(st.lists(st.sampled_from(sorted(FRAGMENTS)), min_size=1, max_size=3, unique=True)) if dirty else []
    frags = [draw(st.sampled_from(FRAGMENTS[label])) for label in chosen]
    parts = draw(st.permutations(parts + frags)) or ["Спасибо"]
    text = ". ".join(parts) + "."
    pad_to = draw(st.sampled_from([1200, 3500, 4500, 6000] if draw(st.integers(0, 3)) == 0 else [0]))
    if pad_to > len(text):
        text = text + " " + ("Спасибо за покупку! " * (pad_to // 20 + 1))[:pad_to - len(text)]
    return text, frozenset(chosen), frags


def oracle(platform: str, action: Action, labels: frozenset[str], scenario: Scenario, cfg: ActionSettings,
           spent: Decimal) -> set[Refusal]:
    """Every rule the action breaks, from how it was built."""
    if action.kind is Kind.OPS_TASK:
        return set()
    broken: set[Refusal] = set()
    review_grounds = bool(action.grounds & {"review.rating", "review.text", "rating"})
    offered = bool(labels & {"promo", "benefit"})
    benefit = (action.kind is Kind.CREATE_PROMO_CODE or action.purpose is Purpose.REWARD or action.cost > 0
               or offered)
    if review_grounds and benefit:
        broken.add(Refusal.REWARD_CONDITIONED_ON_RATING)
    if offered and (action.kind is Kind.REPLY_TO_REVIEW or action.public):  # any benefit answering a review
        broken.add(Refusal.REWARD_FOR_REVIEW)
    if action.kind is Kind.CREATE_PROMO_CODE and PROMO_CHANNEL[platform]:
        broken.add(PROMO_CHANNEL[platform])
    if (platform, action.kind) in NOT_IMPLEMENTED:
        broken.add(Refusal.NOT_SUPPORTED)
    limits = LIMITS.get((platform, action.kind))
    n = len((action.text or "").strip())
    if limits and n < limits[0]:
        broken.add(Refusal.TEXT_TOO_SHORT)
    if limits and n > limits[1]:
        broken.add(Refusal.TEXT_TOO_LONG)
    broken |= {LABEL_REASON[label] for label in labels if label in LABEL_REASON}
    if "promo" in labels and action.public:  # no platform has confirmed promo codes in replies
        broken.add(Refusal.PROMO_CODE_IN_PUBLIC_REPLY)
    if action.kind is Kind.SEND_CHAT_MESSAGE:
        if scenario.refusal.get(platform):
            broken.add(scenario.refusal[platform])
        consented = scenario.chat is not None and scenario.chat.buyer_consented_to_marketing
        if (action.purpose is Purpose.MARKETING or offered) and not (cfg.marketing_consent and consented):
            broken.add(Refusal.MARKETING_WITHOUT_CONSENT)
    if cfg.monthly_budget is not None and action.cost > 0 and spent + action.cost > cfg.monthly_budget:
        broken.add(Refusal.OVER_BUDGET)
    return broken


@st.composite
def cases(draw):
    platform = draw(st.sampled_from(sorted(CAPS)))
    kind = draw(st.sampled_from(OUTBOX_KINDS))  # Kind is the connectors' ActionKind; the outbox holds these
    text, labels, frags = draw(texts())
    scenario = draw(st.sampled_from(SCENARIOS))
    chat = scenario.chat
    if chat is not None and draw(st.booleans()):
        chat = replace(chat, buyer_consented_to_marketing=True)
        scenario = Scenario(chat, scenario.refusal)
    grounds = draw(st.sets(st.sampled_from(["order.total", "member.segment", "review.rating", "review.text",
                                            "rating"]), max_size=2))
    action = Action(kind=kind, marketplace=platform, account="main", key="k", target="t", created_at=NOW - H,
                    text=text, public=draw(st.booleans()), purpose=draw(st.sampled_from(list(Purpose))),
                    grounds=frozenset(grounds), cost=draw(st.sampled_from([Decimal(0), Decimal(1), Decimal(300),
                                                                          Decimal(600)])),
                    chat=chat if kind is Kind.SEND_CHAT_MESSAGE else None)
    cfg = ActionSettings(marketing_consent=draw(st.booleans()), promo_codes_in_replies=draw(st.booleans()),
                         monthly_budget=draw(st.sampled_from([None, Decimal(1000)])))
    spent = draw(st.sampled_from([Decimal(0), Decimal(500), Decimal(999)]))
    return platform, action, labels, frags, scenario, cfg, spent


@settings(max_examples=examples(1000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_the_gate_refuses_exactly_what_the_oracle_expects(case):
    platform, action, labels, frags, scenario, cfg, spent = case
    decision = gate(action, CAPS[platform], cfg, now=NOW, spent_this_month=spent, forbidden_words=[BUYER_NAME])
    expected = oracle(platform, action, labels, scenario, cfg, spent)
    assert decision.approved is (not expected), (decision, expected, action.text and action.text[:300])
    if expected:
        assert decision.reason in expected, (decision, expected)
        assert decision.detail
    for raw in RAW_VALUES:
        assert raw not in decision.detail, (raw, decision.detail)


@settings(max_examples=200, deadline=None)
@given(cases(), st.sampled_from(["review.rating", "review.text", "rating"]))
def test_a_benefit_is_never_approved_on_review_grounds(case, ground):
    platform, action, _, _, _, cfg, spent = case
    if action.kind is Kind.OPS_TASK:
        return
    benefit = replace(action, grounds=action.grounds | {ground}, purpose=Purpose.REWARD)
    decision = gate(benefit, CAPS[platform], cfg, now=NOW, spent_this_month=spent)
    assert not decision.approved
    assert decision.reason is Refusal.REWARD_CONDITIONED_ON_RATING
