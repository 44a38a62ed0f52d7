"""What Yandex Market lets a seller do (see shared/marketplaces/platform_rules.md §3)."""

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
from connectors.yandex_market import programs

__all__ = ["YANDEX_MARKET_CAPABILITIES"]

# GoodsFeedbackCommentText: 1..4096 characters, "must not contain the shop's contacts or links to
# sites other than Market". Promo codes are not mentioned: off until confirmed.
_REPLY_TEXT = TextLimits(min_chars=1, max_chars=4096, links_allowed=False, contacts_allowed=False,
                         promo_codes_allowed=False)

YANDEX_MARKET_CAPABILITIES = Capabilities(
    marketplace="yandex_market",
    # DBS only: getOrderBuyerInfo gives a buyer id while the order is PROCESSING, DELIVERY or
    # PICKUP; FBS/FBY/Express expose none. Whether the id is stable across orders is undocumented.
    buyer_identity=BuyerIdentity.PARTIAL,
    actions={
        ActionKind.REPLY_TO_REVIEW: ActionRule(
            channel=Channel.API, text=_REPLY_TEXT,
            note="POST /v2/businesses/{businessId}/goods-feedback/comments/update with feedbackId; "
                 "1..4096 characters, no shop contacts, no links outside Market",
        ),
        ActionKind.EDIT_REVIEW_REPLY: ActionRule(
            channel=Channel.API, text=_REPLY_TEXT, edits_allowed=None,
            note="the same call with comment.id; editable (and deletable) while canModify is true",
        ),
        ActionKind.SEND_CHAT_MESSAGE: ActionRule(
            channel=Channel.API, text=TextLimits(min_chars=1, max_chars=4096),
            note="POST /v2/businesses/{businessId}/chats/message?chatId= in the order's (or return's) "
                 "chat, opened with chats/new if there is none; messages 1..4096 characters; "
                 "no marketing without the buyer's consent",
        ),
        ActionKind.START_CHAT: ActionRule(
            channel=Channel.API,
            note="POST /v2/businesses/{businessId}/chats/new for ORDER or RETURN chats only; "
                 "DIRECT (product) chats are started by the buyer alone",
        ),
        ActionKind.REVIEW_POINTS_PROGRAM: ActionRule(
            channel=Channel.CABINET,
            note="«Отзывы за баллы Яндекс Плюса»: enabled in the cabinet, cashback debited from "
                 "the seller balance; no API; never conditioned on the rating",
        ),
        ActionKind.CREATE_PROMO_CODE: ActionRule(
            channel=Channel.CABINET,
            note="seller promotions and promo codes are cabinet-only; getPromos returns "
                 "Market's promotions only",
        ),
        ActionKind.SELLER_CASHBACK: ActionRule(
            channel=Channel.NONE, note="seller-funded Plus cashback on purchases closed on 2024-09-16",
        ),
    },
    # No start or reply window is documented for ORDER/RETURN chats.
    chat=ChatRules(seller_may_start=True, start_window=None, reply_window=None,
                   marketing_needs_consent=True),
    notes=(
        "Buyer identity only for DBS orders, and only while they are active: loyalty members "
        "exist for DBS buyers; FBS/FBY/Express orders stay order-level.",
        "DIRECT chats are buyer-only; the seller may open ORDER and RETURN chats.",
        "DBS buyers marked trusted must not be called; contact them through Market chat only.",
    ),
    # What `connector.perform` carries out (tests/connectors/test_declared_writes.py checks it on the emulator).
    writes=frozenset({ActionKind.REPLY_TO_REVIEW, ActionKind.SEND_CHAT_MESSAGE, ActionKind.START_CHAT}),
    review_program=programs.REVIEW_PROGRAM,
)
