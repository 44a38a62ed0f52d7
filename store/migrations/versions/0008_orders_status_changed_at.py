"""orders: status_changed_at, when the order reached its current status

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 10:00:00.000000

The loyalty engine counts return windows from it (issue 16). New writes give the platform's own
time of the status, else when a sync first saw it (store.upsert). Orders already stored get
their `updated_at`: the change time the store kept until now, which for Ozon and WB Marketplace
is the creation time; a later read that brings a new status, or an earlier platform stamp of the
same one, replaces it.
"""

from alembic import op
import sqlalchemy as sa
import store.types


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added empty, filled, then made NOT NULL: a server default would stay behind and give a row
    # written without the column a made-up time instead of an error. On SQLite the last step copies
    # the table (batch mode, its indexes recreated as they are); PostgreSQL alters it in place.
    op.add_column('orders', sa.Column('status_changed_at', store.types.UTCDateTime(timezone=True),
                                      nullable=True))
    op.execute("UPDATE orders SET status_changed_at = updated_at")
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.alter_column('status_changed_at', existing_type=store.types.UTCDateTime(timezone=True),
                              nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('status_changed_at')
