"""loyalty ledger: one append-only table with unique idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 14:40:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('loyalty_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('marketplace', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('buyer_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('amount', store.types.Money(precision=20, scale=4), nullable=False),
    sa.Column('idempotency_key', sa.String(length=512), nullable=False),
    sa.Column('order_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('effective_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('available_from', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('remaining', store.types.Money(precision=20, scale=4), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('loyalty_ledger', schema=None) as batch_op:
        batch_op.create_index('ux_loyalty_ledger_key', ['idempotency_key'], unique=True)
        batch_op.create_index('ix_loyalty_ledger_member', ['marketplace', 'account', 'buyer_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('loyalty_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_loyalty_ledger_member')
        batch_op.drop_index('ux_loyalty_ledger_key')

    op.drop_table('loyalty_ledger')
