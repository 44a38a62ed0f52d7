"""The loyalty tables: the append-only ledger (docs/loyalty-engine.md) and the members projection."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Column, Index, String, Text
from sqlmodel import Field, SQLModel

from store.types import Money, UTCDateTime

__all__ = ["ActionAttemptRow", "ActionRow", "LedgerEntryRow", "LoyaltyDueRow", "LoyaltyStateRow",
           "MemberProjectionRow"]


class LedgerEntryRow(SQLModel, table=True):
    """One ledger entry; earn entries are lots whose `remaining` is consumed by later debits."""

    __tablename__ = "loyalty_ledger"
    __table_args__ = (
        # Every write is INSERT ... ON CONFLICT (idempotency_key) DO NOTHING: re-runs change nothing.
        Index("ux_loyalty_ledger_key", "idempotency_key", unique=True),
        Index("ix_loyalty_ledger_member", "marketplace", "account", "buyer_key"),
        # No index on available_from/expires_at: the ten-minute run reads `loyalty_due` instead (one
        # row a member, not two random index inserts a lot: they doubled the cost of a rebuild).
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


class LoyaltyStateRow(SQLModel, table=True):
    """Where the incremental loyalty run got to (`loyalty.incremental`): named moments."""

    __tablename__ = "loyalty_state"

    name: str = Field(primary_key=True, max_length=64)
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class LoyaltyDueRow(SQLModel, table=True):
    """When a member's ledger next changes by time alone: the earliest `available_from` or
    `expires_at` of its lots after the last fold (`loyalty.ledger_rows.next_due`). The ten-minute
    run wakes the members whose moment has come (`loyalty.incremental`); no row: nothing is due."""

    __tablename__ = "loyalty_due"
    __table_args__ = (Index("ix_loyalty_due_at", "due_at"),)

    marketplace: str = Field(primary_key=True, max_length=32)
    account: str = Field(primary_key=True, max_length=64)
    buyer_key: str = Field(primary_key=True, max_length=64)
    due_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class MemberProjectionRow(SQLModel, table=True):
    """One member as `loyalty.membership.refresh_members` last evaluated it (a projection of orders).

    `tier` is the tier the member holds under `tier_policy.downgrade`; `prior_tier`/`prior_tier_since`
    are what it held before the evaluation at `evaluated_at`, so re-evaluating at the same time
    starts from the same place (idempotent) instead of stepping down again.
    """

    __tablename__ = "loyalty_members"
    __table_args__ = (Index("ix_loyalty_members_segment", "segment"),)

    marketplace: str = Field(primary_key=True, max_length=32)
    account: str = Field(primary_key=True, max_length=64)
    buyer_key: str = Field(primary_key=True, max_length=64)
    orders: int
    spend: Decimal = Field(sa_column=Column(Money, nullable=False))
    first_order_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_order_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    tier: str | None = Field(default=None, max_length=32)
    tier_since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    prior_tier: str | None = Field(default=None, max_length=32)
    prior_tier_since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    segment: str = Field(max_length=16)
    service_recovery: bool
    evaluated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class ActionRow(SQLModel, table=True):
    """One proposed action in the outbox (`loyalty.outbox`); `key` makes proposing it again a no-op."""

    __tablename__ = "actions"
    __table_args__ = (
        Index("ux_actions_key", "key", unique=True),
        Index("ix_actions_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(String(512), nullable=False))
    kind: str = Field(max_length=32)
    marketplace: str = Field(max_length=32)
    account: str = Field(max_length=64)
    target: str = Field(max_length=256)
    title: str = Field(default="", sa_column=Column(Text, nullable=False))
    text: str | None = Field(default=None, sa_column=Column(Text))
    public: bool = False
    purpose: str = Field(max_length=16)
    grounds: str = Field(default="", sa_column=Column(Text, nullable=False))  # comma-separated field names
    cost: Decimal = Field(sa_column=Column(Money, nullable=False))
    params: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    # JSON: what the gate checks again at send time (chat context, a reply's template; loyalty.send_check)
    context: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    approval: str = Field(max_length=8)  # auto | manual
    status: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=48)  # the gate's refusal reason
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    platform_ref: str | None = Field(default=None, max_length=256)
    attempts: int = 0
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    # The executor working it and until when (`loyalty.outbox`): one replica at a time per action.
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class ActionAttemptRow(SQLModel, table=True):
    """One try of the executor and the platform's answer (or the error), for the record."""

    __tablename__ = "action_attempts"
    __table_args__ = (Index("ix_action_attempts_action", "action_id"),)

    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="actions.id")
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    step: str = Field(max_length=16)  # check | send
    outcome: str = Field(max_length=16)  # done | already_done | not_done | rejected | error
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
