"""What Megamarket lets a seller do (platform_rules.md §4, megamarket.md §3, §5, §7). Every rule names
where the platform says so; an action the platform never mentions is not offered (`Capabilities.rule`)."""

from __future__ import annotations

from connectors.capabilities import ActionKind, ActionRule, BuyerIdentity, Capabilities, Channel, ChatRules
from connectors.megamarket.programs import RETURN_DUTY, SELLER_BONUS

__all__ = ["MEGAMARKET_CAPABILITIES"]

MEGAMARKET_CAPABILITIES = Capabilities(
    marketplace="megamarket",
    # DBS shipments carry `customer.phone` (hashed as the member key); FBS ones mostly none (§2.6).
    buyer_identity=BuyerIdentity.PARTIAL,
    actions={
        ActionKind.REPLY_TO_REVIEW: ActionRule(
            channel=Channel.NONE,
            note="no review API found in any public client or doc (megamarket.md §3); answers are given in the "
                 "cabinet and moderated",
        ),
        ActionKind.SEND_CHAT_MESSAGE: ActionRule(
            channel=Channel.NONE,
            note="no chat API (platform_rules.md §4); the DBS buyer's phone and e-mail are for delivery only "
                 "(152-FZ, 38-FZ)",
        ),
        ActionKind.START_CHAT: ActionRule(channel=Channel.NONE, note="no chat API (platform_rules.md §4)"),
        ActionKind.CREATE_PROMO_CODE: ActionRule(
            channel=Channel.NONE, note="no promo-code API found (megamarket.md §5)"),
        ActionKind.SELLER_CASHBACK: ActionRule(
            channel=Channel.CABINET,
            note="seller-funded bonus promos (СберСпасибо) are set in the cabinet; no API (megamarket.md §5)",
        ),
        ActionKind.REVIEW_POINTS_PROGRAM: ActionRule(
            channel=Channel.NONE,
            note="buyers get bonuses for reviews, but who funds them is unknown and no seller tool was found "
                 "(platform_rules.md §4); never reward or condition anything on a review or rating",
        ),
    },
    chat=ChatRules(seller_may_start=False, marketing_needs_consent=True),
    notes=(
        "No review API: loyalsync reads shipments only; reviews and questions stay in the cabinet.",
        "Members only for DBS buyers (and FBS ones whose shipment carries a phone): FBS shipments name no buyer.",
        "Each buyer return must be reported to Megamarket by the end of the next day: loyalsync lists it as a task.",
    ),
    # The order service's writes (confirm, pack, close, return) are fulfilment, not loyalty: none is sent.
    writes=frozenset(),
    seller_bonus=SELLER_BONUS,
    return_duty=RETURN_DUTY,
)
