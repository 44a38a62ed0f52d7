"""How a person runs Megamarket's cabinet-only instruments: the seller-funded bonus and the
return report (megamarket.md §2.5, §5; platform_rules.md §4).

Megamarket's API covers orders, prices, stocks and cards; there is no API for buyer bonuses,
promo codes or chat (§5), so the points DBS members earn reach them only through the storewide
seller bonus, and the return report, whose API body is not documented (§2.5), is a person's task.
"""

from __future__ import annotations

from connectors.capabilities import ReturnDuty, SellerBonusProgram
from connectors.convert import MOSCOW

__all__ = ["RETURN_DUTY", "SELLER_BONUS"]

SELLER_BONUS = SellerBonusProgram(
    label="Megamarket",
    name="Бонусы от продавца",
    steps=(
        "In the Megamarket seller cabinet open the promotion tools and find the seller-funded bonus "
        "(«Бонусы от продавца», СберСпасибо); its exact menu is not in public documents, and there is no API.",
        "Set it to {percent}% of the price for the store's products: it is what the loyalty program "
        "earns its {members} Megamarket members (they hold {points} points that no Megamarket "
        "instrument can pay out one by one).",
        "Save, check that the bonus shows on a product card, then mark this task done.",
    ),
    rules=(
        "The bonus is the seller's money, paid to every buyer of the product as Megamarket bonuses, on "
        "top of the platform's own cashback.",
        "Never tie it to a review or a rating, and never contact buyers by phone or e-mail about it: the "
        "contacts in a DBS order are for its delivery (152-FZ, 38-FZ).",
    ),
)

RETURN_DUTY = ReturnDuty(
    label="Megamarket",
    # «не позднее чем до конца следующего дня после получения товара продавцом» (Единая оферта,
    # прил. 3 п. 1.5.15, quoted in megamarket.md §2.5).
    days=1,
    zone=MOSCOW,
    steps=(
        "In the Megamarket seller cabinet open shipment {order} and register the buyer's return "
        "({returned}) as received (the API's order/return, whose body is not documented).",
        "Do it by {deadline}: the end of the day after the return was seen ({seen}); if the goods "
        "reached you later, the deadline is the end of the day after they did.",
        "Mark this task done once Megamarket shows the return.",
    ),
    rules=(
        "A return reported late makes Megamarket compute its bonus-programme payouts wrongly "
        "(megamarket.md §2.5).",
    ),
)
