"""webhook_deliveries, webhook_cursors: signed events for CRM endpoints, delivered through an outbox

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-20 10:00:00.000000

Each event (an order created or changed, a member joined, points earned, spent or expired, an
action sent) is stored once per endpoint and event id, then POSTed with an HMAC-SHA256 signature
until the endpoint answers 2xx; given up after the retries, it stays as a dead letter that the
CLI can send again. `webhook_cursors` keeps where each endpoint has read each event source.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_deliveries',
    sa.Column('event_id', sa.String(length=512), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('claimed_until', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('event_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['status', 'next_attempt_at'], unique=False)
    op.create_index('ux_webhook_deliveries_event', 'webhook_deliveries', ['endpoint', 'event_id'], unique=True)
    op.create_table('webhook_cursors',
    sa.Column('position', sa.Text(), nullable=False),
    sa.Column('endpoint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('endpoint', 'source')
    )


def downgrade() -> None:
    op.drop_table('webhook_cursors')
    op.drop_index('ux_webhook_deliveries_event', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_due', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
