"""loyalty_ledger: indexes on available_from and expires_at

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 00:40:00.000000

The ten-minute loyalty run wakes the members whose lots became available or expired since the last
run (loyalty.incremental): without these indexes each run read the whole ledger twice (1.3 million
rows at 1,000,000 orders).
"""

from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_loyalty_ledger_available_from', 'loyalty_ledger', ['available_from'], unique=False)
    op.create_index('ix_loyalty_ledger_expires_at', 'loyalty_ledger', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_loyalty_ledger_expires_at', table_name='loyalty_ledger')
    op.drop_index('ix_loyalty_ledger_available_from', table_name='loyalty_ledger')
