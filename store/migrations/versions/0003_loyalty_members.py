"""loyalty members: a projection of orders with the held tier, segment and service-recovery flag

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 15:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('loyalty_members',
    sa.Column('marketplace', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('buyer_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('spend', store.types.Money(precision=20, scale=4), nullable=False),
    sa.Column('first_order_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_order_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('tier', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('tier_since', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('prior_tier', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('prior_tier_since', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('segment', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('service_recovery', sa.Boolean(), nullable=False),
    sa.Column('evaluated_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('marketplace', 'account', 'buyer_key')
    )
    with op.batch_alter_table('loyalty_members', schema=None) as batch_op:
        batch_op.create_index('ix_loyalty_members_segment', ['segment'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('loyalty_members', schema=None) as batch_op:
        batch_op.drop_index('ix_loyalty_members_segment')

    op.drop_table('loyalty_members')
