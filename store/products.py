"""The product-name cache (`products`): what replies to reviews call a SKU.

Names arrive with the records a sync already reads, so they are cached as their pages are written,
in the same transaction (`Store.write_pages` calls `product_rows`, then `upsert.upsert_products`):
an order line's name (Ozon posting `products[].name`, Yandex Market `items[].offerName`) and a
review's own (Wildberries `productDetails.productName`, with its brand). A write adds one row per
SKU it names, so the cache costs a few rows per page whatever the order count, and replies read
it by primary key instead of scanning order lines. What no synced record names comes from the
platform's catalog (`loyalty.product_names` through `save_catalog_names`).

Every row keeps the time the platform showed its name (the order's creation, the review's
creation, the catalog read) and a newer one replaces it, so a renamed product takes its new name
whatever order pages and streams are written in. A brand is kept until a source gives another.
Names are cleaned on the way in (`connectors.records.ProductName.of`): blank or non-text names
are never stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Table, and_, false, func, select
from sqlalchemy.engine import Engine

from connectors.records import OrderRecord, ProductName, ReviewRecord
from store.tables import ProductRow, ReviewRow
from store.types import Binders, binders
from store.upsert import PRODUCT_COLUMNS, upsert_products

__all__ = ["CATALOG", "ORDER", "PRODUCTS", "REVIEW", "product_rows", "save_catalog_names", "unnamed_review_skus"]

PRODUCTS: Table = ProductRow.__table__  # type: ignore[assignment]
REVIEWS: Table = ReviewRow.__table__  # type: ignore[assignment]
ORDER, REVIEW, CATALOG = "order", "review", "catalog"  # `products.source`
_SKU_MAX = 128  # the column's length
if PRODUCT_COLUMNS != ("marketplace", "account", "sku", "name", "brand", "source", "updated_at"):
    raise ImportError("store.products builds rows for a different column layout than the table's")


def product_rows(orders: Iterable[OrderRecord], reviews: Iterable[ReviewRecord], bind: Binders) -> list[tuple]:
    """One driver-ready row per SKU the records name, from the newest record naming it, in key order."""
    # This runs over every line a backfill writes: per line one lookup in the account's dict; only
    # the winners are cleaned, and a winner whose name cleans to nothing gives no row.
    accounts: dict[tuple[str, str], dict[str, tuple[datetime, str, str | None, str]]] = {}
    for o in orders:
        # A line's name is the product's name when the order was placed (an old order's status
        # change later must not bring back a name the product has since lost).
        at, best = o.created_at, None
        for line in o.lines:
            if line.name is None:
                continue
            if best is None:
                best = accounts.setdefault((o.marketplace, o.account), {})
            held = best.get(line.sku)
            if held is None or held[0] < at:
                best[line.sku] = (at, line.name, None, ORDER)
    for r in reviews:
        if r.product_name is not None:
            best = accounts.setdefault((r.marketplace, r.account), {})
            held = best.get(r.sku)
            if held is None or held[0] < r.created_at:
                best[r.sku] = (r.created_at, r.product_name, r.brand, REVIEW)
    utc, rows = bind.utc, []
    # Key order: two writers of one account lock the rows in the same order (no deadlock).
    for (mp, acct), best in sorted(accounts.items()):
        for sku, (at, raw, brand, source) in sorted(best.items()):
            name = _clean(raw, brand)
            if name is not None:
                rows.append((mp, acct, sku, name.name, name.brand, source, utc(at)))
    return rows


# Every write names mostly the same products again: clean each distinct name once per process.
_clean = lru_cache(maxsize=65_536)(ProductName.of)


def unnamed_review_skus(engine: Engine) -> dict[tuple[str, str], list[str]]:
    """(marketplace, account) -> SKUs of unanswered reviews that neither carry nor have a cached name."""
    r, p = REVIEWS.c, PRODUCTS.c
    cached = and_(p.marketplace == r.marketplace, p.account == r.account, p.sku == r.sku)
    stmt = (select(r.marketplace, r.account, r.sku).distinct()
            .select_from(REVIEWS.outerjoin(PRODUCTS, cached))
            .where(r.answered == false(), func.trim(func.coalesce(r.product_name, "")) == "", p.sku.is_(None))
            .order_by(r.marketplace, r.account, r.sku))
    out: dict[tuple[str, str], list[str]] = {}
    with engine.connect() as conn:
        for mp, acct, sku in conn.execute(stmt):
            out.setdefault((mp, acct), []).append(sku)
    return out


def save_catalog_names(engine: Engine, marketplace: str, account: str, names: Mapping[str, ProductName],
                       at: datetime) -> int:
    """Cache names a platform's catalog gave at `at`; returns how many rows were written.

    Cleaned again here: whatever a connector hands over, only a usable name is stored.
    """
    utc = binders(engine.dialect).utc
    rows = []
    for sku, given in sorted(names.items()):
        name = ProductName.of(getattr(given, "name", None), getattr(given, "brand", None))
        if name is not None and isinstance(sku, str) and 0 < len(sku) <= _SKU_MAX:
            rows.append((marketplace, account, sku, name.name, name.brand, CATALOG, utc(at)))
    with engine.begin() as conn:
        upsert_products(conn, rows)
    return len(rows)
