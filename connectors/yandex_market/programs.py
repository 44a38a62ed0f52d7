"""How a person runs Yandex Market's cabinet-only review program «Отзывы за баллы Яндекс Плюса».

From shared/marketplaces/yandex_market.md and platform_rules.md §3; the review-incentive planner
turns it into ops tasks (`loyalty.incentives`).
"""

from __future__ import annotations

from connectors.capabilities import ReviewProgram

__all__ = ["REVIEW_PROGRAM"]

REVIEW_PROGRAM = ReviewProgram(
    name="Отзывы за баллы Яндекс Плюса",
    steps=(
        "In the Yandex Market seller cabinet open «Отзывы за баллы» (reviews for Yandex Plus points; "
        "there is no API for it).",
        "Choose the product with offerId {sku}{product}.",
        "Set the cashback to {points} Plus points per review and the target to {reviews} reviews "
        "(organic reviews count towards it; collection stops when it is reached).",
        "Make sure the seller balance covers about {cost} ₽: the points are debited from it. "
        "Then mark this task done.",
    ),
    rules=(
        "Buyers who bought the product on Market get the points for a review whatever its rating: "
        "encouraging only positive reviews is forbidden (the store rating is removed for 12 weeks).",
        "All customers, never selectively: do not invite chosen buyers.",
        "Reportedly only for products with fewer than 100 reviews, 50–500 points per review "
        "(launch news, unconfirmed).",
        "No own rewards for reviews outside the program.",
    ),
)
