"""actions.context: what the gate needs to check an action again when it is sent

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 10:00:00.000000

The executor runs the policy gate again at send time (loyalty.send_check): an approval given a week
later, or a switch to live mode, must not send a chat notice whose window has closed or a reply whose
template was withdrawn. The chat context (who opened the chat, the order's times) and the reply's
template are stored with the action for that; rows written before hold '{}' (checked without them:
the chat rules then see no chat and no times, which refuses rather than sends).
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('actions') as batch:
        batch.add_column(sa.Column('context', sa.Text(), nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('actions') as batch:
        batch.drop_column('context')
