"""How a person runs Kaspi's cabinet-only «Бонус от продавца» (platform_rules.md §6, kaspi.md §6).

Kaspi has no per-buyer reward instrument in its API (no promo codes, no chat, kaspi.md §8), so the
loyalty program's points reach Kaspi buyers only through this storewide, seller-funded bonus; the
loyalty planner turns it into an ops task (`loyalty.seller_bonus`).
"""

from __future__ import annotations

from connectors.capabilities import SellerBonusProgram

__all__ = ["SELLER_BONUS"]

SELLER_BONUS = SellerBonusProgram(
    label="Kaspi",
    name="Бонус от продавца",
    steps=(
        "Open the Kaspi Pay app as the shop's owner and go to the «Бонус от продавца» settings "
        "(guide.kaspi.kz/partner/ru/marketing/bonus/q3806; there is no API for it).",
        "Set the bonus to {percent}% for the shop's products: it is what the loyalty program earns "
        "its {members} Kaspi members (they hold {points} points that no Kaspi instrument can pay out "
        "one by one).",
        "Save, check that the bonus shows next to the shop on a product where its price is the "
        "lowest, then mark this task done.",
    ),
    rules=(
        "The bonus is the seller's money, paid as Kaspi bonuses to every buyer of the product, and is "
        "shown only where the shop offers the lowest price; it adds to Kaspi's own bonuses.",
        "Never tie it to a review or a rating, and never contact buyers by phone about it: the phone "
        "Kaspi gives is for delivery (marketing needs recorded consent).",
    ),
)
