"""webhook_deliveries.ref, .first_attempt_at: the outbox also carries what goes to a CRM sink

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-21 10:00:00.000000

A RetailCRM bonus credit has no idempotency key, so a credit whose answer was lost is looked for in
the account's operations before it is ever sent again (crm.retailcrm.sink). That needs, per row,
what the CRM will show of it (`ref`: account, operation type, amount and dates) and when it was
first tried (`first_attempt_at`: the operations window starts there). Webhook rows leave both NULL.
"""

import sqlalchemy as sa
from alembic import op

import store.types

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_deliveries') as batch:
        batch.add_column(sa.Column('ref', sa.String(length=512), nullable=True))
        batch.add_column(sa.Column('first_attempt_at', store.types.UTCDateTime(timezone=True), nullable=True))
        batch.create_index('ix_webhook_deliveries_ref', ['endpoint', 'ref'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries') as batch:
        batch.drop_index('ix_webhook_deliveries_ref')
        batch.drop_column('first_attempt_at')
        batch.drop_column('ref')
