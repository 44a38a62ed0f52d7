"""The CRM tables: the CRM outbox (signed webhook events, and what a CRM sink sends) and where each
endpoint's event sources were last read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime

__all__ = ["WebhookCursorRow", "WebhookDeliveryRow"]


class WebhookDeliveryRow(SQLModel, table=True):
    """One event for one endpoint (a webhook receiver or a CRM sink). Stored once per (endpoint,
    event id); `status` is `pending` until the endpoint answers 2xx (`sent`) or the delivery is
    given up (`dead`, re-sendable); a CRM sink also keeps what it will not send (`skipped`).
    `attempts` is counted BEFORE each send, so a crash mid-send is still counted; `claimed_by` /
    `claimed_until` keep two senders (replicas) off one delivery."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ux_webhook_deliveries_event", "endpoint", "event_id", unique=True),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_ref", "endpoint", "ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    endpoint: str = Field(max_length=64)
    event_id: str = Field(sa_column=Column(String(512), nullable=False))
    event_type: str = Field(max_length=64)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=16)  # pending | sent | dead
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    # CRM sinks (crm.retailcrm.sink): what the CRM shows of this row's effect (account, operation,
    # amount, dates), and when it was first tried; both NULL for webhooks.
    ref: str | None = Field(default=None, sa_column=Column(String(512)))
    first_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class WebhookCursorRow(SQLModel, table=True):
    """How far one endpoint has read one event source (ledger entry id, order change time, ...)."""

    __tablename__ = "webhook_cursors"

    endpoint: str = Field(primary_key=True, max_length=64)
    source: str = Field(primary_key=True, max_length=32)
    position: str = Field(sa_column=Column(Text, nullable=False))
