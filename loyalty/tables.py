"""The loyalty ledger's table: one append-only row per entry (docs/loyalty-engine.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Column, Index, String
from sqlmodel import Field, SQLModel

from sync.store.types import Money, UTCDateTime

__all__ = ["LedgerEntryRow"]


class LedgerEntryRow(SQLModel, table=True):
    """One ledger entry; earn entries are lots whose `remaining` is consumed by later debits."""

    __tablename__ = "loyalty_ledger"
    __table_args__ = (
        # Every write is INSERT ... ON CONFLICT (idempotency_key) DO NOTHING: re-runs change nothing.
        Index("ux_loyalty_ledger_key", "idempotency_key", unique=True),
        Index("ix_loyalty_ledger_member", "marketplace", "account", "buyer_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    marketplace: str = Field(max_length=32)
    account: str = Field(max_length=64)
    buyer_key: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # earn | spend | expire | reverse | adjust
    amount: Decimal = Field(sa_column=Column(Money, nullable=False))
    idempotency_key: str = Field(sa_column=Column(String(512), nullable=False))
    order_id: str | None = Field(default=None, max_length=128)
    rule: str | None = Field(default=None, max_length=64)
    effective_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    available_from: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    # Lots: what is left to consume. Debits: the part no lot could cover (debt, <= 0).
    remaining: Decimal | None = Field(default=None, sa_column=Column(Money))
