"""orders: delivered_at and changed_at; loyalty_state

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 19:30:00.000000

`delivered_at` is when an order first reached `delivered` (or `partially_returned`): the loyalty
engine counts the return window from it, also after the order came back, so a rebuild knows what
live runs knew (docs/loyalty-rules.md §6). Orders already stored in one of those statuses get their
`status_changed_at`; others stay NULL until a sync sees them delivered.

`changed_at` is the wall time of the last write that changed what loyalty reads; the incremental
loyalty run reads members from it (loyalty.incremental). Existing rows get their
`status_changed_at` (the first run after the upgrade is a full one anyway: no `loyalty_state`
yet); NULL is left to mark a row a write is inserting (store.upsert, "undated void").
"""

from alembic import op
import sqlalchemy as sa
import store.types


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('delivered_at', store.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('changed_at', store.types.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE orders SET delivered_at = status_changed_at "
               "WHERE status IN ('delivered', 'partially_returned')")
    op.execute("UPDATE orders SET changed_at = status_changed_at")
    op.create_index('ix_orders_changed_at', 'orders', ['changed_at'], unique=False)
    op.create_table(
        'loyalty_state',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('at', store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('loyalty_state')
    op.drop_index('ix_orders_changed_at', table_name='orders')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('changed_at')
        batch_op.drop_column('delivered_at')
