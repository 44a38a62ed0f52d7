"""orders.buyer_key indexed only where a buyer is known

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 14:00:00.000000

Orders without a buyer (all of Wildberries', most FBO postings) can never belong to a member, and
every lookup by buyer key (=, >, IN) implies IS NOT NULL: indexing their NULLs cost an index
insert per order for nothing.
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_KNOWN = sa.text("buyer_key IS NOT NULL")


def upgrade() -> None:
    op.drop_index('ix_orders_buyer_key', table_name='orders')
    op.create_index('ix_orders_buyer_key', 'orders', ['buyer_key'], unique=False,
                    postgresql_where=_KNOWN, sqlite_where=_KNOWN)


def downgrade() -> None:
    op.drop_index('ix_orders_buyer_key', table_name='orders')
    op.create_index('ix_orders_buyer_key', 'orders', ['buyer_key'], unique=False)
