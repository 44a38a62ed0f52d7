"""actions outbox and attempts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 15:30:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('marketplace', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('grounds', sa.Text(), nullable=False),
    sa.Column('cost', store.types.Money(precision=20, scale=4), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('approval', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=48), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('platform_ref', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.create_index('ix_actions_status', ['status'], unique=False)
        batch_op.create_index('ux_actions_key', ['key'], unique=True)

    op.create_table('action_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action_id', sa.Integer(), nullable=False),
    sa.Column('at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['action_id'], ['actions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('action_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_action_attempts_action', ['action_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('action_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_action_attempts_action')

    op.drop_table('action_attempts')
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_index('ux_actions_key')
        batch_op.drop_index('ix_actions_status')

    op.drop_table('actions')
