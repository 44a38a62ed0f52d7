"""`[actions]` in `config/loyalsync.toml`: approvals, reply templates, chat notices, promo codes, review incentives.

Whether anything is sent at all is `[daemon].mode` ("dry-run" by default). Validated at load like the
rest of the config: a template naming a variable other than {product}, {brand}, {store} (e.g. the
buyer's name) is refused, because replies must never carry a buyer's personal data.
"""

from __future__ import annotations

import hashlib
import string
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from connectors.capabilities import ActionKind
from loyalty.actions import OUTBOX_KINDS
from loyalty.text_checks import find_benefit

__all__ = [
    "PLACEHOLDER_STORE_NAME",
    "TEMPLATE_VARIABLES",
    "ActionSettings",
    "Approval",
    "ChatSettings",
    "PromoSettings",
    "ReplySettings",
    "ReplyTemplate",
    "ReviewIncentiveSettings",
    "SellerBonusSettings",
    "template_digest",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
DAY = timedelta(days=1)
TEMPLATE_VARIABLES = ("product", "brand", "store")
CHAT_VARIABLES = ("order", "points", "balance", "store")
Approval = Literal["auto", "manual"]


def _template(text: str, allowed: tuple[str, ...], what: str) -> str:
    """`text` if it names only `allowed` {variables}; the ValueError says which one is not."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        raise ValueError(f"template is not valid: {exc} (write a literal brace as {{{{ or }}}})") from None
    unknown = sorted({n for n in names if n not in allowed})
    if unknown:
        raise ValueError(f"unknown variable {{{unknown[0]}}}: {what} may use only "
                         f"{', '.join('{' + v + '}' for v in allowed)} "
                         "(never the buyer's name or other personal data)")
    return text


PLACEHOLDER_STORE_NAME = "магазин"


def template_digest(text: str, store_name: str) -> str:
    """What identifies one template text as signed by one store: a reply made from it is sent only
    while the configuration still holds it (`loyalty.policy`, checked again at send time)."""
    return hashlib.sha256(f"{store_name}\x00{text}".encode()).hexdigest()[:16]


class ReplyTemplate(BaseModel):
    """Replies for reviews with one of `ratings`, on `marketplaces` (empty: all).

    `texts` are interchangeable wordings (`text = "..."` is one); the planner rotates them so that
    replies on one account do not repeat (`ReplySettings.repeat_span`). The rating may choose the
    tone (thanks, or service recovery); it never chooses a benefit, and no text may promise one.
    """

    # Editors see the either/or too (config/schema): one of `text` or `texts`.
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={
        "oneOf": [{"required": ["text"]}, {"required": ["texts"]}]})

    ratings: tuple[int, ...] = Field(min_length=1)
    text: str | None = None  # one wording ...
    texts: tuple[str, ...] = ()  # ... or several
    marketplaces: tuple[str, ...] = ()
    approval: Approval | None = None  # None: the kind's approval (`[actions.approval]`)

    @field_validator("ratings")
    @classmethod
    def _stars(cls, ratings: tuple[int, ...]) -> tuple[int, ...]:
        bad = [r for r in ratings if not 1 <= r <= 5]
        if bad:
            raise ValueError(f"ratings are 1 to 5 stars, got {bad}")
        return ratings

    @field_validator("text")
    @classmethod
    def _checked_text(cls, text: str | None) -> str | None:
        return None if text is None else _reply_wording(text)

    @field_validator("texts")
    @classmethod
    def _checked_texts(cls, texts: tuple[str, ...]) -> tuple[str, ...]:
        for text in texts:
            _reply_wording(text)
        if len(set(texts)) < len(texts):
            raise ValueError("the same text is listed twice")
        return texts

    @model_validator(mode="after")
    def _one_way(self) -> ReplyTemplate:
        if (self.text is None) == (not self.texts):
            raise ValueError("give the reply as text = \"...\" or as texts = [\"...\", ...], one of the two")
        return self

    @property
    def wordings(self) -> tuple[str, ...]:
        """The interchangeable texts of this template."""
        return (self.text,) if self.text is not None else self.texts


def _reply_wording(text: str) -> str:
    """`text` if it is a valid reply template: known variables only, and no benefit promised."""
    if not text.strip():
        raise ValueError("a reply text is empty")
    _template(text, TEMPLATE_VARIABLES, "a reply")
    if (found := find_benefit(text)) is not None:
        raise ValueError(
            f"a reply to a review must not promise a benefit (found «{found.fragment}», "
            f"{found.kind.replace('_', ' ')}): on every marketplace loyalsync connects to, a reward for a review "
            "outside the platform's own program is forbidden, and one that follows the rating is what "
            "sellers are fined for")
    return text


_SIGN_OFFS = ("Команда «{store}»", "Ваш «{store}»", "С теплом, «{store}»", "Ждём вас снова! «{store}»")


def _wordings(openings: tuple[str, ...], middles: tuple[str, ...]) -> tuple[str, ...]:
    """Every opening + middle + sign-off: dozens of natural wordings from a few sentences, so replies
    on a busy account with a small catalogue still differ (`ReplySettings.max_repeats`)."""
    return tuple(f"{o} {m} {c}" for o in openings for m in middles for c in _SIGN_OFFS)


_DEFAULT_TEMPLATES = (
    ReplyTemplate(ratings=(5, 4), texts=_wordings(
        ("Спасибо за отзыв о «{product}»!", "Спасибо, что нашли время рассказать о «{product}».",
         "Благодарим за высокую оценку «{product}»!", "Спасибо за тёплые слова о «{product}»!",
         "Спасибо, что выбрали «{product}» и поделились впечатлениями!",
         "Огромное спасибо за отзыв о «{product}»!"),
        ("Рады, что покупка понравилась.", "Нам очень приятно!", "Такие отзывы очень нас радуют.",
         "Такой отзыв помогает другим с выбором."))),
    ReplyTemplate(ratings=(3,), texts=_wordings(
        ("Спасибо за честный отзыв о «{product}».", "Спасибо, что рассказали о «{product}» как есть.",
         "Благодарим за отзыв о «{product}»."),
        ("Учтём замечания, чтобы следующая покупка порадовала больше.",
         "Передадим замечания тем, кто отвечает за качество.",
         "Если остались вопросы, напишите нам в чат заказа на площадке, поможем."))),
    ReplyTemplate(ratings=(2, 1), approval="manual", texts=_wordings(
        ("Нам очень жаль, что с «{product}» вышла неприятность.", "Простите, что так вышло с «{product}».",
         "Спасибо, что сообщили о проблеме с «{product}»."),
        ("Напишите, пожалуйста, в чат заказа на площадке: разберёмся и поможем с обменом или возвратом.",
         "Хотим это исправить: напишите нам в чат заказа на площадке, и мы предложим обмен или возврат.",
         "Обязательно разберёмся: напишите в чат заказа на площадке, поможем с заменой или возвратом."))),
)


class ReplySettings(BaseModel):
    """Answers to reviews: every review answered within `within`, from `templates`.

    No two replies on one account within `repeat_span` are the same text while the templates offer
    another wording; the gate refuses a reply whose exact text was already used `max_repeats` times
    on the account within that span (Ozon warns that it may restrict sellers who post repetitive
    replies)."""

    model_config = _FROZEN

    enabled: bool = True
    within: timedelta = 2 * DAY
    store_name: str = Field(default=PLACEHOLDER_STORE_NAME, min_length=1, max_length=100)
    templates: tuple[ReplyTemplate, ...] = _DEFAULT_TEMPLATES
    repeat_span: timedelta = 7 * DAY
    max_repeats: int = Field(default=3, ge=0)

    def template_for(self, marketplace: str, rating: int) -> ReplyTemplate | None:
        """The first template for this marketplace (or all) and rating."""
        for t in self.templates:
            if rating in t.ratings and (not t.marketplaces or marketplace in t.marketplaces):
                return t
        return None

    def digests_for(self, marketplace: str, rating: int) -> frozenset[str]:
        """The digests of the texts a reply to such a review may be made from now (none: replies off)."""
        template = self.template_for(marketplace, rating) if self.enabled else None
        if template is None:
            return frozenset()
        return frozenset(template_digest(t, self.store_name) for t in template.wordings)


class PromoSettings(BaseModel):
    """Redeeming points as a single-buyer promo code where the platform has one in its API."""

    model_config = _FROZEN

    enabled: bool = False
    redeem_at: Decimal = Field(default=Decimal(500), gt=0, description="available points that trigger a code")
    point_value: Decimal = Field(default=Decimal(1), gt=0, description="roubles of discount per point")
    valid_for: timedelta = 30 * DAY
    # Points expiring sooner than this after planning do not count towards a code: the code is sent
    # later (after approval), and its spend must find those points still there.
    lasting: timedelta = Field(default=DAY, description="counted points must stay available this long")


class ReviewIncentiveSettings(BaseModel):
    """Which SKUs to propose for the platforms' own review-points programs (never per buyer)."""

    model_config = _FROZEN

    enabled: bool = True
    window: timedelta = 30 * DAY  # sales counted over this window
    min_orders: int = Field(default=20, ge=1)  # a SKU selling at least this much...
    max_reviews: int = Field(default=5, ge=0)  # ...with at most this many reviews
    reviews_per_sku: int = Field(default=10, ge=1)
    points_per_review: Decimal = Field(default=Decimal(150), gt=0)
    # The platform's fee on top of the points (Ozon: 20 % + VAT in secondary sources = 0.44 incl. VAT).
    fee_rate: Decimal = Field(default=Decimal("0.44"), ge=0)
    budget: Decimal = Field(default=Decimal(10000), gt=0, description="roubles per window, all SKUs")


class SellerBonusSettings(BaseModel):
    """A storewide seller bonus where a platform has no per-buyer reward instrument (Kaspi «Бонус от
    продавца»): one ops task per account with members, to set it to `percent` in the cabinet."""

    model_config = _FROZEN

    enabled: bool = True
    percent: int = Field(default=5, ge=1, le=100, description="the bonus to set, in percent of the price")


class ChatSettings(BaseModel):
    """Service messages in an order's chat on the platform, where the seller may write (the gate decides).

    `points_notice`: once an order's points are credited (the loyalty job, after the settle delay),
    tell the buyer in that order's chat. Only orders created within `within` are told, so the first
    run after a year of history does not write to every past buyer; the default is Ozon's 72 h window
    for the seller to open a chat after payment.
    """

    model_config = _FROZEN

    points_notice: bool = True
    within: timedelta = 3 * DAY
    points_text: str = Field(
        default="Спасибо за заказ {order}! За него начислено {points} баллов программы лояльности "
                "магазина «{store}»; всего на вашем счёте {balance}.", min_length=1)

    @field_validator("points_text")
    @classmethod
    def _known_variables(cls, text: str) -> str:
        return _template(text, CHAT_VARIABLES, "a chat message")


def _outbox_kind(value: object) -> object:
    if value not in OUTBOX_KINDS:
        allowed = ", ".join(repr(k.value) for k in OUTBOX_KINDS[:-1])
        raise ValueError(f"must be {allowed} or {OUTBOX_KINDS[-1].value!r} (got {value!r})")
    return value


# An action kind the outbox holds (`loyalty.actions.OUTBOX_KINDS`), as a config key.
OutboxKind = Annotated[ActionKind, BeforeValidator(_outbox_kind),
                       WithJsonSchema({"enum": [k.value for k in OUTBOX_KINDS], "type": "string"})]


class ActionSettings(BaseModel):
    """Everything about actions except whether they are sent (`[daemon].mode`)."""

    model_config = _FROZEN

    approval: dict[OutboxKind, Approval] = Field(default_factory=lambda: {
        ActionKind.REPLY_TO_REVIEW: "auto", ActionKind.CREATE_PROMO_CODE: "manual",
        ActionKind.SEND_CHAT_MESSAGE: "manual"})
    # The seller has recorded buyers' consent to marketing messages (38-FZ): off unless they say so.
    marketing_consent: bool = False
    # Promo codes in public review replies: off until each platform's rule is confirmed (platform_rules §7).
    promo_codes_in_replies: bool = False
    # Roubles all actions together may give away per calendar month (None: no cap beyond the loyalty budget).
    monthly_budget: Decimal | None = Field(default=None, gt=0)
    replies: ReplySettings = Field(default_factory=ReplySettings)
    promo: PromoSettings = Field(default_factory=PromoSettings)
    review_incentives: ReviewIncentiveSettings = Field(default_factory=ReviewIncentiveSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    seller_bonus: SellerBonusSettings = Field(default_factory=SellerBonusSettings)

    @model_validator(mode="after")
    def _ops_tasks_need_no_approval(self) -> ActionSettings:
        if ActionKind.OPS_TASK in self.approval:
            raise ValueError("approval.ops_task: ops tasks are always for a person; remove this key")
        return self

    def approval_for(self, kind: ActionKind) -> Approval:
        return self.approval.get(kind, "manual")
