"""How a person runs Ozon's cabinet-only review program «Отзывы за баллы».

From shared/marketplaces/ozon.md and platform_rules.md §2; the review-incentive planner turns it
into ops tasks (`loyalty.incentives`).
"""

from __future__ import annotations

from connectors.capabilities import ReviewProgram

__all__ = ["REVIEW_PROGRAM"]

REVIEW_PROGRAM = ReviewProgram(
    name="Отзывы за баллы",
    steps=(
        "In the Ozon seller cabinet open Products → Reviews → «Отзывы за баллы» (there is no API for it).",
        "Create a manual campaign («Привлекайте покупателей отзывами за баллы»), not an automatic "
        "selection: only a manual campaign has a review target, and the automatic ones cannot be capped.",
        "Add the product with Ozon SKU {sku}{product}.",
        "Set the target to {reviews} reviews and {points} points per review for each review type "
        "(text, photo, video); if the cabinet requires a higher minimum rate, do not raise it: "
        "re-plan instead, the estimate is about {cost} ₽.",
        "Set the campaign period and start it; the charge shows in finance as "
        "MarketplaceSaleReviewsItem. Then mark this task done.",
    ),
    rules=(
        "1 point = 1 ₽, charged when a review is published, plus Ozon's fee (10 % in an older "
        "official doc, 20 % + VAT in secondary sources); the estimate uses a fee rate of {fee}.",
        "Rates are per review type (text, photo, video), never per rating.",
        "No discounts, payments, gifts or codes for reviews outside «Отзывы за баллы» "
        "(Ozon's rules; penalty points).",
    ),
)
