"""What Avito lets a seller do (platform_rules.md §5 and the Avito column of its table; avito.md §6)."""

from __future__ import annotations

from connectors.capabilities import (
    ActionKind,
    ActionRule,
    BuyerIdentity,
    Capabilities,
    Channel,
    ChatRules,
    TextLimits,
)

__all__ = ["AVITO_CAPABILITIES"]

AVITO_CAPABILITIES = Capabilities(
    marketplace="avito",
    # Orders carry no buyer; each item's chatId leads to the Messenger chat, whose users[].id
    # ("обратите внимание на хэширование") is the one stable handle, and only on the «Максимальный»
    # tariff (avito.md §3): partial.
    buyer_identity=BuyerIdentity.PARTIAL,
    actions={
        ActionKind.REPLY_TO_REVIEW: ActionRule(
            channel=Channel.API, text=TextLimits(min_chars=1, max_chars=1000),
            note="POST /ratings/v1/answers; moderated (moderation → published or rejected with reasons); no links "
                 "or contacts (platform_rules.md §5)",
        ),
        ActionKind.START_CHAT: ActionRule(
            channel=Channel.NONE, note="no create-chat method: the buyer opens the chat (platform_rules.md §5)"),
        ActionKind.SEND_CHAT_MESSAGE: ActionRule(
            channel=Channel.NONE,
            note="only replies in a chat the buyer wrote in (1,000 characters, Messenger API on «Максимальный»); "
                 "a points notice would start the conversation, which Avito does not allow (platform_rules.md §5)",
        ),
        ActionKind.CREATE_PROMO_CODE: ActionRule(
            channel=Channel.NONE, note="no API to create promo codes (avito.md §6)"),
        ActionKind.LOYALTY_DISCOUNT: ActionRule(
            channel=Channel.CABINET,
            note="«Рассылка скидок и спецпредложений»: paid per message to an audience Avito fixes (users who "
                 "favourited a listing); beta API /special-offers/v1/* (avito.md §6)",
        ),
        ActionKind.REVIEW_POINTS_PROGRAM: ActionRule(
            channel=Channel.NONE,
            note="no review program: never pay or reward for an Avito review (platform_rules.md §5)"),
    },
    chat=ChatRules(seller_may_start=False, marketing_needs_consent=True),
    notes=(
        "Reviews are about the seller account (optionally a listing), never an order or a buyer.",
        "Per-buyer points need the Messenger API («Максимальный» tariff); without it loyalty is counted, "
        "not per buyer.",
    ),
    writes=frozenset({ActionKind.REPLY_TO_REVIEW}),
)
