"""loyalty_due replaces the ledger's date indexes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 03:00:00.000000

The ten-minute loyalty run wakes members whose lots become available or expire (loyalty.incremental).
It found them through indexes on `loyalty_ledger.available_from` and `expires_at` (0010); inserting
lots at random dates into those two indexes was half the write cost of a rebuild (bench/loyalty.py:
73 s of writes at 1,000,000 orders, 31 s without them). `loyalty_due` keeps one row a member instead:
when its ledger next changes by time alone.

Backfill: the members with a lot dated after the last loyalty run (`loyalty_state`), due at the
earliest such date; without a last run the next run is a full one, which writes every member's row.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import store.types


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    due = op.create_table(
        'loyalty_due',
        sa.Column('marketplace', sa.String(length=32), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('buyer_key', sa.String(length=64), nullable=False),
        sa.Column('due_at', store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('marketplace', 'account', 'buyer_key'),
    )
    op.create_index('ix_loyalty_due_at', 'loyalty_due', ['due_at'], unique=False)
    conn = op.get_bind()
    state = sa.table('loyalty_state', sa.column('name', sa.String),
                     sa.column('at', store.types.UTCDateTime(timezone=True)))
    last_run = conn.execute(sa.select(state.c.at).where(state.c.name == 'ledger.last_run')).scalar()
    if last_run is not None:
        ledger = sa.table('loyalty_ledger', *(sa.column(n, sa.String) for n in ('marketplace', 'account', 'buyer_key', 'kind')),
                          sa.column('available_from', store.types.UTCDateTime(timezone=True)),
                          sa.column('expires_at', store.types.UTCDateTime(timezone=True)))
        earliest: dict[tuple[str, str, str], datetime] = {}
        for column in (ledger.c.available_from, ledger.c.expires_at):
            stmt = (sa.select(ledger.c.marketplace, ledger.c.account, ledger.c.buyer_key, sa.func.min(column))
                    .where(ledger.c.kind == 'earn', column > last_run)
                    .group_by(ledger.c.marketplace, ledger.c.account, ledger.c.buyer_key))
            for mp, acct, buyer, at in conn.execute(stmt):
                if isinstance(at, str):  # SQLite returns min() of the text without the column type
                    at = datetime.fromisoformat(at).replace(tzinfo=UTC)
                key = (mp, acct, buyer)
                earliest[key] = min(at, earliest.get(key, at))
        if earliest:
            op.bulk_insert(due, [{'marketplace': mp, 'account': acct, 'buyer_key': buyer, 'due_at': at}
                                 for (mp, acct, buyer), at in sorted(earliest.items())])
    op.drop_index('ix_loyalty_ledger_available_from', table_name='loyalty_ledger')
    op.drop_index('ix_loyalty_ledger_expires_at', table_name='loyalty_ledger')


def downgrade() -> None:
    op.create_index('ix_loyalty_ledger_available_from', 'loyalty_ledger', ['available_from'], unique=False)
    op.create_index('ix_loyalty_ledger_expires_at', 'loyalty_ledger', ['expires_at'], unique=False)
    op.drop_index('ix_loyalty_due_at', table_name='loyalty_due')
    op.drop_table('loyalty_due')
