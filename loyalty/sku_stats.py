"""Per-SKU sales and review counts for the review-incentive planner, as SQL aggregates.

What the planner may look at about a SKU is how much it sold and how many reviews it has: counts
only. The query never selects a review's rating, text or author (DESIGN invariant 4: nothing about
review incentives may depend on what a review says); `sku_stats_query` is public so a test can
check the statement's text.

Join keys, per platform (checked against `connectors/*/mapping.py`): the order line's `sku` and the
review's `sku` are the same identifier on each platform, so the two tables are matched on
(marketplace, account, sku):

- Wildberries: both are the product card's `nmId` (order `nmId`, feedback `productDetails.nmId`);
  the seller's article is in `order_lines.offer_id` and is not used.
- Ozon: both are Ozon's `sku` (posting `products[].sku`, review `sku`).
- Yandex Market: both are the seller's `offerId` (order `items[].offerId`, feedback
  `identifiers.offerId`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, Table, and_, distinct, func, select
from sqlalchemy.engine import Engine

from connectors.records import OrderStatus
from store.tables import OrderLineRow, OrderRow, ReviewRow

__all__ = ["SkuStats", "sku_stats", "sku_stats_query"]

ORDERS: Table = OrderRow.__table__  # type: ignore[assignment]
LINES: Table = OrderLineRow.__table__  # type: ignore[assignment]
REVIEWS: Table = ReviewRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class SkuStats:
    """One SKU of one account: sales in a window and its review count (all time).

    `orders` counts the non-cancelled orders created in [since, until) with at least one line of the
    SKU, `units` the quantities on those lines; `reviews` counts every stored review of the SKU,
    whenever written. `product_name` is a name from the order lines, else from the reviews, or None.
    """

    marketplace: str
    account: str
    sku: str
    product_name: str | None
    orders: int
    units: int
    reviews: int


def sku_stats_query(since: datetime, until: datetime) -> Select:
    """The statement behind `sku_stats`: SKUs sold in [since, until), left-joined to review counts."""
    o, ln, r = ORDERS.c, LINES.c, REVIEWS.c
    sold = (
        select(ln.marketplace, ln.account, ln.sku,
               func.count(distinct(ln.order_id)).label("orders"),
               func.sum(ln.quantity).label("units"),
               func.max(ln.name).label("line_name"))
        .select_from(LINES.join(ORDERS, and_(o.marketplace == ln.marketplace, o.account == ln.account,
                                             o.order_id == ln.order_id)))
        .where(o.created_at >= since, o.created_at < until, o.status != OrderStatus.CANCELLED.value)
        .group_by(ln.marketplace, ln.account, ln.sku)
        .subquery("sold")
    )
    # Counts only: the rating (or any other review content) is never selected.
    reviewed = (
        select(r.marketplace, r.account, r.sku,
               func.count().label("reviews"),
               func.max(r.product_name).label("review_name"))
        .group_by(r.marketplace, r.account, r.sku)
        .subquery("reviewed")
    )
    s, v = sold.c, reviewed.c
    return (
        select(s.marketplace, s.account, s.sku,
               func.coalesce(s.line_name, v.review_name).label("product_name"),
               s.orders, s.units,
               func.coalesce(v.reviews, 0).label("reviews"))
        .select_from(sold.outerjoin(reviewed, and_(v.marketplace == s.marketplace, v.account == s.account,
                                                   v.sku == s.sku)))
        .order_by(s.marketplace, s.account, s.sku)
    )


def sku_stats(engine: Engine, since: datetime, until: datetime) -> list[SkuStats]:
    """Every SKU with a non-cancelled order created in [since, until) (aware datetimes), with its counts.

    SKUs that sold nothing in the window are left out: the planner only proposes SKUs that sell.
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be aware datetimes (UTC)")
    with engine.connect() as conn:
        rows = conn.execute(sku_stats_query(since, until)).all()
    return [SkuStats(marketplace=mp, account=acct, sku=sku, product_name=name, orders=int(orders),
                     units=int(units or 0), reviews=int(reviews))
            for mp, acct, sku, name, orders, units, reviews in rows]
