"""What the daemon proposes to do on a platform: actions, their decisions, and their statuses.

An `Action` is built by a proposer (review replies, promo codes for redemptions, the review-incentive
planner), checked by the policy gate (`loyalty.policy.gate`), stored in the outbox with a unique
`key`, and executed through the connector only when approved and `daemon.mode = "live"`.

`grounds` is what the proposer looked at to decide the action, by field name (`order.total`,
`member.segment`, `review.rating`, ...). The gate refuses a benefit whose grounds name any review
field (DESIGN invariant 4): the proposer cannot hide a rating-based reward, it has to declare it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from connectors.capabilities import ActionKind

__all__ = [
    "BENEFIT_KINDS",
    "Action",
    "ActionStatus",
    "ChatContext",
    "Decision",
    "OUTBOX_KINDS",
    "Kind",
    "Purpose",
    "Refusal",
]


# The outbox speaks the connectors' vocabulary (`connectors.capabilities.ActionKind`): the writes a
# connector carries out, and OPS_TASK for a person. `Kind` is the name loyalty has long used for it.
Kind = ActionKind
#: The kinds the outbox holds (the first three go through a connector; ops tasks go to a person).
OUTBOX_KINDS = (ActionKind.REPLY_TO_REVIEW, ActionKind.CREATE_PROMO_CODE, ActionKind.SEND_CHAT_MESSAGE,
                ActionKind.OPS_TASK)


# Actions that give the buyer something: never allowed to follow a review's rating or text.
BENEFIT_KINDS = frozenset({ActionKind.CREATE_PROMO_CODE})


class Purpose(StrEnum):
    """Why a message is sent: marketing content needs the buyer's recorded consent."""

    SERVICE = "service"  # answers, order and delivery matters, service recovery
    MARKETING = "marketing"  # offers, promo codes, "come back" messages
    REWARD = "reward"  # the fulfilment of points the buyer earned or redeemed


class Refusal(StrEnum):
    """Why the gate refused an action (machine-readable; `loyalsync actions` groups by it)."""

    NOT_OFFERED = "not_offered"  # the platform has no such instrument
    NOT_SUPPORTED = "not_supported"  # the platform's API has it, loyalsync's connector does not implement it
    CABINET_ONLY = "cabinet_only"  # only a person in the seller cabinet can do it: an ops task instead
    TEXT_TOO_LONG = "text_too_long"
    TEXT_TOO_SHORT = "text_too_short"
    CONTAINS_LINK = "contains_link"
    CONTAINS_PHONE = "contains_phone"
    CONTAINS_EMAIL = "contains_email"
    CONTAINS_PERSONAL_DATA = "contains_personal_data"
    PROMO_CODE_IN_PUBLIC_REPLY = "promo_code_in_public_reply"
    CHAT_OUTSIDE_WINDOW = "chat_outside_window"
    CHAT_START_NOT_ALLOWED = "chat_start_not_allowed"
    MARKETING_WITHOUT_CONSENT = "marketing_without_consent"
    REWARD_CONDITIONED_ON_RATING = "reward_conditioned_on_rating"
    REWARD_FOR_REVIEW = "reward_for_review"  # a reply to a review promises a benefit
    REPEATED_TEXT = "repeated_text"  # the same text posted on the account too often lately
    TEMPLATE_WITHDRAWN = "template_withdrawn"  # the reply's template is no longer in the configuration
    OVER_BUDGET = "over_budget"


class ActionStatus(StrEnum):
    """Where an action stands in the outbox."""

    PENDING = "pending"  # approved by the gate, waiting for a person (approval = "manual")
    APPROVED = "approved"  # waiting for the executor (live mode)
    DRY_RUN = "dry_run"  # approved, and would be sent in live mode
    SENT = "sent"  # done on the platform (or found already done there)
    REFUSED = "refused"  # the gate said no; `reason` says why
    REJECTED = "rejected"  # a person said no
    FAILED = "failed"  # the platform refused it, or retries ran out; `detail` says why
    OPEN = "open"  # an ops task waiting for a person
    DONE = "done"  # an ops task a person marked done


@dataclass(frozen=True, slots=True)
class ChatContext:
    """What the chat rules need: who opened the chat and the order's and buyer's times (UTC)."""

    chat_exists: bool = False  # False: sending would start a new chat
    buyer_opened: bool = False
    fulfilment: str | None = None
    paid_at: datetime | None = None
    delivered_at: datetime | None = None
    last_buyer_message_at: datetime | None = None
    buyer_consented_to_marketing: bool = False


@dataclass(frozen=True, slots=True)
class Action:
    """One thing to do on a platform (or for a person, `ActionKind.OPS_TASK`), identified by `key`.

    `target` is the platform object it is about: a review id (replies), an order or posting number
    (chat), a member's buyer key (promo codes), a SKU or a program (ops tasks). `text` is what the
    buyer would read; `public` says whether everyone can read it (a review reply) or only the buyer.
    `cost` is what it gives away in points or money (budgets); `params` carries platform fields
    (e.g. a voucher's discount and validity) the connector needs.
    """

    kind: ActionKind
    marketplace: str
    account: str
    key: str
    target: str
    created_at: datetime
    text: str | None = None
    public: bool = False
    purpose: Purpose = Purpose.SERVICE
    grounds: frozenset[str] = frozenset()
    cost: Decimal = Decimal(0)
    chat: ChatContext | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    title: str = ""  # one line a person reads in `loyalsync actions` / `tasks`
    # What produced it, for the gate's check at send time: a reply's template (`template`: its digest,
    # `rating`: the review's stars). Never sent to the platform.
    origin: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in OUTBOX_KINDS:  # e.g. CLUB_DISCOUNT: a platform instrument, proposed as an ops task
            raise ValueError(f"the outbox holds no {self.kind!r} actions; kinds: {', '.join(OUTBOX_KINDS)}")


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's answer: approved, or refused with a `reason` and a human `detail`."""

    approved: bool
    reason: Refusal | None = None
    detail: str = ""

    @classmethod
    def ok(cls) -> Decision:
        return cls(True)

    @classmethod
    def refuse(cls, reason: Refusal, detail: str) -> Decision:
        return cls(False, reason, detail)
