"""leases and replicas (several daemons on one PostgreSQL), and the outbox's per-action claim

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('leases',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('token', sa.BigInteger(), nullable=False),
    sa.Column('acquired_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('replicas',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('incarnation', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('started_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('seen_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    # Plain nullable columns: SQLite adds them without a table copy.
    op.add_column('actions', sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    op.add_column('actions', sa.Column('claimed_until', store.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by')
    op.drop_table('replicas')
    op.drop_table('leases')
