"""products: the product-name cache replies read

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 12:00:00.000000

Replies to reviews named Ozon and Yandex Market products by article, since only Wildberries' reviews
carry a name. `products` keeps one name per (marketplace, account, sku): written with each page from
the order lines and reviews that name their product (store.products), else from the
platform's catalog (loyalty.product_names).

Backfill: for each SKU, the name of its newest naming record already stored, an order line or a
review (both by their `created_at`), so an upgraded store names its products at once instead of
asking the platforms for every one of them.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import store.types
from connectors.records import ProductName


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_UTC = store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    products = op.create_table(
        'products',
        sa.Column('marketplace', sa.String(length=32), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('sku', sa.String(length=128), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('brand', sa.String(length=128), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('updated_at', _UTC, nullable=False),
        sa.PrimaryKeyConstraint('marketplace', 'account', 'sku'),
    )
    conn = op.get_bind()
    best: dict[tuple[str, str, str], tuple[datetime, ProductName, str]] = {}
    for source, stmt in (('order', _newest_line_names()), ('review', _newest_review_names())):
        for mp, acct, sku, name, brand, at in conn.execute(stmt):
            if isinstance(at, str):  # SQLite may hand a windowed column back as text
                at = datetime.fromisoformat(at)
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
            clean = ProductName.of(name, brand)
            key = (mp, acct, sku)
            if clean is not None and (key not in best or at > best[key][0]):
                best[key] = (at, clean, source)
    if best:
        op.bulk_insert(products, [
            {'marketplace': mp, 'account': acct, 'sku': sku, 'name': name.name, 'brand': name.brand,
             'source': source, 'updated_at': at}
            for (mp, acct, sku), (at, name, source) in sorted(best.items(), key=lambda kv: kv[0])])


def downgrade() -> None:
    op.drop_table('products')


def _newest_line_names() -> sa.Select:
    """Per SKU, the name on the line of the most recently created order that names it."""
    lines = sa.table('order_lines', *(sa.column(n, sa.String) for n in ('marketplace', 'account', 'order_id',
                                                                        'sku', 'name')))
    orders = sa.table('orders', *(sa.column(n, sa.String) for n in ('marketplace', 'account', 'order_id')),
                      sa.column('created_at', _UTC))
    rank = sa.func.row_number().over(partition_by=(lines.c.marketplace, lines.c.account, lines.c.sku),
                                     order_by=(orders.c.created_at.desc(), lines.c.name))
    named = (sa.select(lines.c.marketplace, lines.c.account, lines.c.sku, lines.c.name,
                       sa.null().label('brand'), orders.c.created_at, rank.label('rank'))
             .select_from(lines.join(orders, sa.and_(orders.c.marketplace == lines.c.marketplace,
                                                     orders.c.account == lines.c.account,
                                                     orders.c.order_id == lines.c.order_id)))
             .where(lines.c.name.is_not(None), sa.func.trim(lines.c.name) != '')
             .subquery())
    return sa.select(named.c.marketplace, named.c.account, named.c.sku, named.c.name, named.c.brand,
                     named.c.created_at).where(named.c.rank == 1)


def _newest_review_names() -> sa.Select:
    """Per SKU, the name (and brand) of its newest review that names it."""
    reviews = sa.table('reviews', *(sa.column(n, sa.String) for n in ('marketplace', 'account', 'sku',
                                                                      'product_name', 'brand')),
                       sa.column('created_at', _UTC))
    rank = sa.func.row_number().over(partition_by=(reviews.c.marketplace, reviews.c.account, reviews.c.sku),
                                     order_by=(reviews.c.created_at.desc(), reviews.c.product_name))
    named = (sa.select(reviews.c.marketplace, reviews.c.account, reviews.c.sku, reviews.c.product_name,
                       reviews.c.brand, reviews.c.created_at, rank.label('rank'))
             .where(reviews.c.product_name.is_not(None), sa.func.trim(reviews.c.product_name) != '')
             .subquery())
    return sa.select(named.c.marketplace, named.c.account, named.c.sku, named.c.product_name, named.c.brand,
                     named.c.created_at).where(named.c.rank == 1)
