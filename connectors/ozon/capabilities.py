"""What Ozon lets a seller do (shared/marketplaces/platform_rules.md §2, ozon.md §5)."""

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
from connectors.ozon import programs

__all__ = ["OZON_CAPABILITIES", "REVIEWS_SUBSCRIPTION", "CHAT_SUBSCRIPTION"]

# The shared ActionRule has no field for a paid plan an action needs; the notes below name it
# with these exact strings so a gate or an ops report can find them.
REVIEWS_SUBSCRIPTION = "requires the «Управление отзывами» or Premium Pro subscription"
CHAT_SUBSCRIPTION = "requires Premium Plus or Premium Pro"

OZON_CAPABILITIES = Capabilities(
    marketplace="ozon",
    # `customer.customer_id` on FBS/rFBS postings, in practice only rFBS and maybe only while the
    # order is being delivered; FBO postings and reviews carry no buyer at all.
    buyer_identity=BuyerIdentity.PARTIAL,
    actions={
        ActionKind.REPLY_TO_REVIEW: ActionRule(
            channel=Channel.API,
            # Ozon documents no length limit; 3,000 is an SDK's claim [SECONDARY], kept as the cap.
            text=TextLimits(min_chars=1, max_chars=3000),
            note=f"POST /v1/review/comment/create; {REVIEWS_SUBSCRIPTION}; moderated; must relate "
                 "to the product; no links, contacts or personal data; promo codes off until "
                 "Ozon's rule is confirmed",
        ),
        ActionKind.EDIT_REVIEW_REPLY: ActionRule(
            channel=Channel.NONE,
            note="no edit method: delete (/v2/review/comment/delete) and create a new comment",
        ),
        ActionKind.START_CHAT: ActionRule(
            channel=Channel.API,
            note=f"POST /v1/chat/start by posting_number; {CHAT_SUBSCRIPTION}; FBS/rFBS only, "
                 "within 72 h after payment or after delivery; FBO: only the buyer starts a chat; "
                 "the posting's available_actions says can_create_chat",
        ),
        ActionKind.SEND_CHAT_MESSAGE: ActionRule(
            channel=Channel.API, text=TextLimits(min_chars=1, max_chars=1000),
            note=f"POST /v1/chat/send/message, plain text; {CHAT_SUBSCRIPTION}; FBO: within 48 h "
                 "of the buyer's last message; FBS/rFBS: from payment until 72 h after delivery, "
                 "then only replies within 48 h of the buyer's last message; never to ask for a "
                 "review or move the buyer off Ozon",
        ),
        ActionKind.CREATE_PROMO_CODE: ActionRule(
            channel=Channel.API,
            note="POST /v1/seller-actions/create/voucher (beta), type UNIQUE = one buyer × one "
                 "order, user_ids ≤ 50 (whether they are posting customer_ids is UNCONFIRMED); "
                 "a purchase or loyalty incentive only, never in exchange for a review",
        ),
        ActionKind.REVIEW_POINTS_PROGRAM: ActionRule(
            channel=Channel.CABINET,
            note="«Отзывы за баллы»: cabinet only (per product or campaign); 1 point = 1 ₽ plus "
                 "Ozon's fee (10 % in an older doc, 20 % + VAT in secondary sources); rates per "
                 "review type, never per rating; cost shows in finance as MarketplaceSaleReviewsItem",
        ),
        ActionKind.LOYALTY_DISCOUNT: ActionRule(
            channel=Channel.CABINET,
            note="own promotions with a customer-audience segment; segments cannot be created "
                 "through the API",
        ),
        ActionKind.SELLER_CASHBACK: ActionRule(
            channel=Channel.CABINET,
            note="«Бонусы продавца» (INDIVIDUAL_DISCOUNT_BY_PRODUCTS): no create method in the "
                 "API; mechanics unconfirmed",
        ),
    },
    # The shared ChatRules has one `seller_may_start` for every scheme: True here holds for
    # FBS/rFBS only (see the START_CHAT note); for FBO the buyer must write first.
    chat=ChatRules(seller_may_start=True, start_window=timedelta(hours=72),
                   reply_window=timedelta(hours=48), marketing_needs_consent=True),
    notes=(
        "Per-buyer loyalty only for postings with a customer block (rFBS in practice): the id "
        "is kept as a salted buyer_key; FBS without a customer and all FBO orders have none.",
        f"Reviews: reading and replying through the API {REVIEWS_SUBSCRIPTION}; without it the "
        "reviews stream is marked unavailable and orders keep syncing.",
        "Reviews carry no order or buyer, so nothing may be rewarded per review; review incentives "
        "go through «Отзывы за баллы», set up by a person in the cabinet.",
    ),
    # What `connector.perform` carries out (tests/connectors/test_declared_writes.py checks it on the emulator).
    writes=frozenset({ActionKind.REPLY_TO_REVIEW, ActionKind.SEND_CHAT_MESSAGE, ActionKind.START_CHAT,
                      ActionKind.CREATE_PROMO_CODE}),
    review_program=programs.REVIEW_PROGRAM,
)
