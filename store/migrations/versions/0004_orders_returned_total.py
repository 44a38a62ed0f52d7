"""orders: returned_total (value of the goods returned so far) and room for `partially_returned`

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The server default gives every existing order 0 (nothing returned that we know of).
    op.add_column('orders', sa.Column('returned_total', store.types.Money(precision=20, scale=4),
                                      server_default=sa.text('0'), nullable=False))
    # "partially_returned" is 18 characters. SQLite does not enforce VARCHAR lengths, so only
    # PostgreSQL needs the wider column (and SQLite is spared a batch copy of the whole table).
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('orders', 'status', existing_type=sqlmodel.sql.sqltypes.AutoString(length=16),
                        type_=sqlmodel.sql.sqltypes.AutoString(length=32), existing_nullable=False)


def downgrade() -> None:
    # The old schema has no partial return: such orders go back to what 0003 stored for them.
    op.execute("UPDATE orders SET status = 'returned' WHERE status = 'partially_returned'")
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('orders', 'status', existing_type=sqlmodel.sql.sqltypes.AutoString(length=32),
                        type_=sqlmodel.sql.sqltypes.AutoString(length=16), existing_nullable=False)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('returned_total')
