"""What Kaspi.kz lets a seller do (platform_rules.md §6, kaspi.md §4–§8). Every rule names where
the platform says so; an action the platform never mentions is not offered (`Capabilities.rule`)."""

from __future__ import annotations

from connectors.capabilities import ActionKind, ActionRule, BuyerIdentity, Capabilities, Channel, ChatRules
from connectors.kaspi.programs import SELLER_BONUS

__all__ = ["KASPI_CAPABILITIES"]

KASPI_CAPABILITIES = Capabilities(
    marketplace="kaspi",
    # Every order carries `customer.id` ("unique client code in Kaspi Shop") and `cellPhone`
    # (kaspi.md §3): the best buyer key of the six platforms, so per-buyer points work here.
    buyer_identity=BuyerIdentity.FULL,
    actions={
        ActionKind.REPLY_TO_REVIEW: ActionRule(
            channel=Channel.NONE,
            note="no review API: the Shop API covers orders and product import only (kaspi.md §4); reviews "
                 "are answered in the Kaspi Pay app",
        ),
        ActionKind.SEND_CHAT_MESSAGE: ActionRule(
            channel=Channel.NONE,
            note="no seller chat in the API; the buyer's phone is for fulfilment only: marketing to it needs "
                 "consent (kaspi.md §6, §8.5)",
        ),
        ActionKind.START_CHAT: ActionRule(channel=Channel.NONE, note="no seller chat in the API (kaspi.md §8.5)"),
        ActionKind.CREATE_PROMO_CODE: ActionRule(channel=Channel.NONE, note="no promo-code API (kaspi.md §8)"),
        ActionKind.SELLER_CASHBACK: ActionRule(
            channel=Channel.CABINET,
            note="«Бонус от продавца»: a seller-funded Kaspi bonus, set in the Kaspi Pay app (no API); shown "
                 "next to the shop when it has the lowest price, on top of Kaspi's own bonuses "
                 "(guide.kaspi.kz/partner/ru/marketing/bonus/q3806)",
        ),
        ActionKind.REVIEW_POINTS_PROGRAM: ActionRule(
            channel=Channel.NONE,
            note="review bonuses are Kaspi's own campaigns (up to 5,000 bonuses per review), not a seller "
                 "tool (platform_rules.md §6); never reward or condition anything on a review or rating",
        ),
    },
    chat=ChatRules(seller_may_start=False, marketing_needs_consent=True),
    notes=(
        "No review API: loyalsync reads orders only; review counts and replies stay in the Kaspi Pay app.",
        "Order statuses carry no time: each status is dated when a poll first sees it (late, never early).",
    ),
    # Kaspi's API writes are order fulfilment (accept, complete, cancel), not loyalty: none is sent.
    writes=frozenset(),
    seller_bonus=SELLER_BONUS,
)
