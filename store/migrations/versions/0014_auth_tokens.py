"""auth_tokens: OAuth access tokens shared by replicas, with the claim of the one refreshing

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-14 10:00:00.000000

Avito's seller API issues client_credentials tokens of 24 h (avito.md §2) and asks that they be kept
centrally and refreshed ahead of expiry by one replica, not fetched by each (whether a new token
revokes the old one is not documented). One row per token key (`connectors.auth.ClientCredentials`
names it by token URL and client id); `claimed_by`/`claimed_until` mark the replica fetching a new
one, so the others wait for it instead of asking the platform too.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('auth_tokens',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('token', sa.Text(), nullable=True),
    sa.Column('issued_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('claimed_until', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('auth_tokens')
