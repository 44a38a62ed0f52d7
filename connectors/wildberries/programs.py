"""How a person runs Wildberries' cabinet-only programs: «Баллы за отзывы» and «Скидка лояльности».

From shared/marketplaces/wildberries.md (§5.2) and platform_rules.md §1; the loyalty planners turn
these into ops tasks (`loyalty.incentives`).
"""

from __future__ import annotations

from decimal import Decimal

from connectors.capabilities import LoyaltyDiscountProgram, ReviewProgram

__all__ = ["LOYALTY_DISCOUNT", "REVIEW_PROGRAM"]

REVIEW_PROGRAM = ReviewProgram(
    name="Баллы за отзывы",
    steps=(
        "Sign in to the Wildberries seller cabinet (seller.wildberries.ru) as a user with the "
        "«Баллы за отзывы» access right (pointsForReviews) and open the «Баллы за отзывы» tool "
        "(there is no API for it).",
        "Add the product card nmId {sku}{product}.",
        "Set {points} points per review and a target of {reviews} reviews (a budget of {points_total} "
        "points, about {cost} ₽ with WB's 20% fee and VAT).",
        "Schedule the start at least 24 hours ahead: since 21 Jan 2026 WB moderates a launch before "
        "the badge goes live.",
        "Later, check the charge in the WB finance report, then mark this task done.",
    ),
    rules=(
        "WB pays the points to buyers who bought the item out and whose review passes moderation, "
        "whatever its rating: it is not payment for a five.",
        "Reward reviews only through «Баллы за отзывы»: no cashback cards, inserts, payments or gifts "
        "outside it (offer §9.3.1).",
        "Cost: about 1.44 ₽ per point (points + 20% WB fee + 20% VAT).",
    ),
)

# platform_rules.md §1.3, wildberries.md §5.2: a test since Jan 2026, cabinet only, no API.
LOYALTY_DISCOUNT = LoyaltyDiscountProgram(
    label="WB",
    name="Скидка лояльности",
    percent=(3, 50),
    min_total=(Decimal(1000), Decimal(100000)),
    steps=(
        "In the Wildberries seller cabinet open the tariff builder and choose the «Скидка лояльности» "
        "option (a test since January 2026; if it is missing, the store is not in the test yet; there "
        "is no API for it).",
        "Set the discount to {percent}% for buyers who bought out at least {min_total} ₽ from this "
        "store in the last 365 days.",
        "Set the duration to at least 30 days; once enabled in the tariff builder the option cannot "
        "be switched off for 90 days.",
        "Save; WB shows the discount and a progress widget on the store page. Then mark this task done.",
    ),
    rules=(
        "One storewide discount, 3–50%, for buyers with 1,000–100,000 ₽ bought out in 365 days: WB "
        "decides who qualifies; never target or contact individual buyers.",
        "WB charges its commission only on orders placed with the loyalty discount; the finance "
        "report shows loyalty_id and loyalty_discount.",
        "Never tie it to reviews or ratings.",
    ),
)
