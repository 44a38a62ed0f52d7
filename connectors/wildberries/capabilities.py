"""What Wildberries lets a seller do (see shared/marketplaces/platform_rules.md §1)."""

from __future__ import annotations

from datetime import timedelta

from connectors.capabilities import (
    ActionKind,
    ActionRule,
    BuyerIdentity,
    Capabilities,
    Channel,
    ChatRules,
    TextLimits,
)
from connectors.wildberries import programs

__all__ = ["WILDBERRIES_CAPABILITIES"]

_REPLY_TEXT = TextLimits(min_chars=2, max_chars=5000)

WILDBERRIES_CAPABILITIES = Capabilities(
    marketplace="wildberries",
    # No stable buyer id anywhere: chat clientID was removed on 2026-02-02, reviews carry a first
    # name only, orderUid/gNumber identify a cart. Loyalty here works through WB's own instruments.
    buyer_identity=BuyerIdentity.NONE,
    actions={
        ActionKind.REPLY_TO_REVIEW: ActionRule(
            channel=Channel.API, text=_REPLY_TEXT,
            # wildberries.md, feedbacks: "a feedback is archived if it has a reply, or got no reply
            # within 30 days" [spec-2025-12, spec-2026-08].
            answer_within=timedelta(days=30),
            note="POST /api/v1/feedbacks/answer; 2..5000 characters; no links or contacts",
        ),
        ActionKind.EDIT_REVIEW_REPLY: ActionRule(
            channel=Channel.API, text=_REPLY_TEXT, edits_allowed=1, edit_window=timedelta(days=60),
            note="PATCH /api/v1/feedbacks/answer, once within 60 days",
        ),
        ActionKind.SEND_CHAT_MESSAGE: ActionRule(
            channel=Channel.API, text=TextLimits(min_chars=1, max_chars=1000),
            note="reply only, in a chat the buyer opened (replySign)",
        ),
        ActionKind.START_CHAT: ActionRule(
            channel=Channel.NONE, note="the buyer always starts the chat",
        ),
        ActionKind.REVIEW_POINTS_PROGRAM: ActionRule(
            channel=Channel.CABINET,
            note="«Баллы за отзывы»: per nmId in the cabinet, about 1.44 ₽ per point "
                 "(points + 20% WB fee + VAT); never conditioned on the rating",
        ),
        ActionKind.LOYALTY_DISCOUNT: ActionRule(
            channel=Channel.CABINET,
            note="«Скидка лояльности» 3–50% for buyers with 1,000–100,000 ₽ bought out in 365 days",
        ),
        ActionKind.CLUB_DISCOUNT: ActionRule(
            channel=Channel.API, note="POST /api/v2/upload/task/club-discount, per nmID",
        ),
        ActionKind.SELLER_CASHBACK: ActionRule(
            channel=Channel.CABINET, note="«Ягодки» 1–25% cashback in points plus a 10% WB fee",
        ),
        ActionKind.CREATE_PROMO_CODE: ActionRule(
            channel=Channel.CABINET, note="seller promo codes are shared, unlimited-use, cabinet only",
        ),
    },
    chat=ChatRules(seller_may_start=False, reply_window=None, marketing_needs_consent=True),
    notes=(
        "No buyer identity: per-buyer points are not possible; loyalty runs through WB's segment "
        "instruments and «Баллы за отзывы», and loyalsync measures and recommends.",
    ),
    # What `connector.perform` carries out (tests/connectors/test_declared_writes.py checks it on the emulator).
    writes=frozenset({ActionKind.REPLY_TO_REVIEW}),
    review_program=programs.REVIEW_PROGRAM,
    loyalty_discount=programs.LOYALTY_DISCOUNT,
)
