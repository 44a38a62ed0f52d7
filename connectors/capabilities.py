"""What a platform lets a seller do, as data. The policy gate reads this; no code branches on a
platform's name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum

__all__ = [
    "ActionKind",
    "ActionRule",
    "BuyerIdentity",
    "Capabilities",
    "Channel",
    "ChatRules",
    "LoyaltyDiscountProgram",
    "ReturnDuty",
    "ReviewProgram",
    "SellerBonusProgram",
    "TextLimits",
]


class ActionKind(StrEnum):
    """Things loyalsync may want done on a platform: the one vocabulary of the capabilities, of the
    writes a connector carries out (`WriteRequest.kind`) and of the actions outbox (`loyalty.actions`)."""

    REPLY_TO_REVIEW = "reply_to_review"
    EDIT_REVIEW_REPLY = "edit_review_reply"
    SEND_CHAT_MESSAGE = "send_chat_message"
    START_CHAT = "start_chat"
    CREATE_PROMO_CODE = "create_promo_code"
    REVIEW_POINTS_PROGRAM = "review_points_program"
    LOYALTY_DISCOUNT = "loyalty_discount"
    CLUB_DISCOUNT = "club_discount"
    SELLER_CASHBACK = "seller_cashback"
    # Not a platform instrument: a task for a person (a cabinet-only program, a manual step). The
    # outbox keeps them beside the writes; no connector carries one out.
    OPS_TASK = "ops_task"


class Channel(StrEnum):
    """How an action can be carried out."""

    API = "api"
    CABINET = "cabinet"  # only by a person in the seller cabinet: becomes an ops task
    NONE = "none"  # not offered by the platform at all


class BuyerIdentity(StrEnum):
    """Whether orders carry a stable buyer id a per-buyer ledger can hang on."""

    NONE = "none"
    PARTIAL = "partial"  # only some fulfilment schemes or only while an order is active
    FULL = "full"


@dataclass(frozen=True, slots=True)
class TextLimits:
    """Content rules for text the seller publishes (review replies, chat messages)."""

    min_chars: int
    max_chars: int
    links_allowed: bool = False
    contacts_allowed: bool = False
    promo_codes_allowed: bool = False  # off until a platform's rule is confirmed


@dataclass(frozen=True, slots=True)
class ActionRule:
    """How one action may be carried out on a platform, with its limits and a human note."""

    channel: Channel
    text: TextLimits | None = None
    edits_allowed: int | None = None  # e.g. WB: one edit of a review reply
    edit_window: timedelta | None = None
    # How long after the review a reply still reaches it (WB archives an unanswered review after 30
    # days): the console shows a review's age against it. None: the platform sets no such limit.
    answer_within: timedelta | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ChatRules:
    """Who may write to a buyer, and when."""

    seller_may_start: bool
    start_window: timedelta | None = None  # after payment/delivery, where starting is allowed
    reply_window: timedelta | None = None  # after the buyer's last message
    marketing_needs_consent: bool = True


@dataclass(frozen=True, slots=True)
class ReviewProgram:
    """A platform's own review-points program, as a person in the seller cabinet runs it.

    `steps` and `rules` are format strings; they may use {sku}, {product} (" («name»)" or ""),
    {reviews}, {points}, {points_total}, {cost} and {fee}. `rules` are the platform's own; the
    planner adds the rules every program shares.
    """

    name: str
    steps: tuple[str, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoyaltyDiscountProgram:
    """A platform's storewide loyal-buyer discount, set by a person in the cabinet."""

    label: str  # short platform name for titles
    name: str
    percent: tuple[int, int]  # allowed range, inclusive
    min_total: tuple[Decimal, Decimal]  # bought-out threshold range (roubles, 365 days), inclusive
    steps: tuple[str, ...]  # format strings: {percent}, {min_total}
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SellerBonusProgram:
    """A platform's storewide bonus the seller funds and sets in its cabinet (Kaspi «Бонус от
    продавца»): where a platform has no per-buyer reward instrument, the program's points are given
    back to buyers through it. `steps` and `rules` are format strings: {percent}, {members}, {points}."""

    label: str  # short platform name for titles
    name: str
    steps: tuple[str, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReturnDuty:
    """A platform's rule that the seller reports each buyer return it receives, by a deadline
    (Megamarket: `order/return` "by the end of the next day after receipt", megamarket.md §2.5).

    The deadline is the end of the day `days` calendar days after the return was seen, in `zone`
    (the platform's calendar). `steps` and `rules` are format strings: {order}, {returned},
    {deadline}, {seen}."""

    label: str  # short platform name for titles
    days: int
    zone: tzinfo
    steps: tuple[str, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Everything the policy gate needs to know about one platform."""

    marketplace: str
    buyer_identity: BuyerIdentity
    actions: Mapping[ActionKind, ActionRule] = field(default_factory=dict)
    chat: ChatRules = ChatRules(seller_may_start=False)
    notes: tuple[str, ...] = ()
    # The API writes loyalsync's connector for this platform really carries out (`Connector.perform`).
    # An action the platform offers through its API but the connector does not implement is refused
    # by the gate (`not_supported`), never approved and then failed by the executor.
    writes: frozenset[ActionKind] = frozenset()
    # How a person runs the platform's cabinet-only programs (REVIEW_POINTS_PROGRAM, LOYALTY_DISCOUNT):
    # the ops tasks the loyalty planners write carry these steps. None: not described (yet).
    review_program: ReviewProgram | None = None
    loyalty_discount: LoyaltyDiscountProgram | None = None
    seller_bonus: SellerBonusProgram | None = None
    # A duty to report buyer returns by a deadline: the planner turns each return the store sees
    # into an ops task with the deadline (`loyalty.return_reports`). None: no such duty.
    return_duty: ReturnDuty | None = None

    def rule(self, kind: ActionKind) -> ActionRule:
        """The rule for `kind`; an action the platform never mentions is not offered."""
        return self.actions.get(kind, ActionRule(channel=Channel.NONE))

    def implements(self, kind: ActionKind) -> bool:
        """Whether loyalsync's connector carries out `kind` through the platform's API."""
        return kind in self.writes
