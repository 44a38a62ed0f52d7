"""The store's tables. Natural keys are primary keys, so every write can be an idempotent upsert."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Column, Index, Integer, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from store.types import Money, UTCDateTime

__all__ = [
    "AccountRow",
    "AuthTokenRow",
    "LeaseRow",
    "MetaRow",
    "OrderLineRow",
    "OrderRow",
    "ProductRow",
    "QuarantineRow",
    "ReplicaRow",
    "ReviewRow",
    "StreamCursorRow",
]


class AccountRow(SQLModel, table=True):
    """A seller account named in the config."""

    __tablename__ = "accounts"

    marketplace: str = Field(primary_key=True, max_length=32)
    account: str = Field(primary_key=True, max_length=64)
    display_name: str | None = Field(default=None, max_length=128)


class OrderRow(SQLModel, table=True):
    """One order; see `connectors.records.OrderRecord`."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_created", "marketplace", "account", "created_at"),
        # Only orders with a buyer can belong to a member: the rest (every Wildberries order) stay
        # out of the index, which saves its upkeep on every insert. Lookups by a key (=, >) imply
        # IS NOT NULL, so both databases use it for them.
        Index("ix_orders_buyer_key", "buyer_key", postgresql_where=text("buyer_key IS NOT NULL"),
              sqlite_where=text("buyer_key IS NOT NULL")),
    )

    marketplace: str = Field(primary_key=True, max_length=32)
    account: str = Field(primary_key=True, max_length=64)
    order_id: str = Field(primary_key=True, max_length=128)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    status: str = Field(max_length=32)
    platform_status: str = Field(max_length=128)
    fulfilment: str | None = Field(default=None, max_length=16)
    buyer_key: str | None = Field(default=None, max_length=64)
    currency: str = Field(max_length=3)
    total: Decimal = Field(sa_column=Column(Money, nullable=False))
    source: str = Field(default="", max_length=32)
    source_rank: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    # Value of the goods returned so far (major units); returns only grow (see store.upsert).
    returned_total: Decimal = Field(default=Decimal(0), sa_column=Column(
        Money, nullable=False, default=Decimal(0), server_default=text("0")))
    # When the order reached its current status: the platform's own time where a record carries one
    # (`OrderRecord.status_changed_at`), else when a sync first saw the status; merged in
    # store.upsert. Not exported: a first-seen time differs between two runs of the same data.
    status_changed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # When the order first reached `delivered` (or `partially_returned`): the loyalty engine counts
    # the return window from it, also once the order went back (store.upsert). NULL: never seen so.
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # The wall time of the last write that changed what loyalty reads (status and its time, totals,
    # buyer): the incremental loyalty run picks up members from it (loyalty.incremental).
    changed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True, index=True))


class OrderLineRow(SQLModel, table=True):
    """One product line of an order, numbered from 0 in platform order."""

    __tablename__ = "order_lines"

    marketplace: str = Field(primary_key=True, max_length=32)
    account: str = Field(primary_key=True, max_length=64)
    order_id: str = Field(primary_key=True, max_length=128)
    line_no: int = Field(primary_key=True)
    sku: str = Field(max_length=128)
    offer_id: str | None = Field(default=None, max_length=256)
    name: str | None = Field(default=None, sa_column=Column(Text))
    quantity: int
    price: Decimal = Field(sa_column=Column(Money, nullable=False))
    source_rank: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))


class ReviewRow(SQLModel, table=True):
    """One product review; see `connectors.records.ReviewRecord`."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_created", "marketplace", "account", "created_at"),)

    marketplace: str = Field(primary_key=True, max_length=32)
    account: str = Field(primary_key=True, max_length=64)
    review_id: str = Field(primary_key=True, max_length=128)
    sku: str = Field(max_length=128)
    rating: int
    text: str = Field(sa_column=Column(Text, nullable=False))
    pros: str = Field(sa_column=Column(Text, nullable=False))
    cons: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    answered: bool
    answer_text: str | None = Field(default=None, sa_column=Column(Text))
    order_id: str | None = Field(default=None, max_length=128)
    buyer_key: str | None = Field(default=None, max_length=64)
    product_name: str | None = Field(default=None, sa_column=Column(Text))
    brand: str | None = Field(default=None, max_length=256)


class ProductRow(SQLModel, table=True):
    """A product's name for one SKU of an account: what replies to its reviews call it.

    Filled as pages are written, from order lines and reviews that name their product
    (`store.products`), and from the platform's catalog for SKUs nothing synced names
    (`loyalty.product_names`). `updated_at` is when the platform showed that name: the order's
    or the review's creation, or the catalog read; the newest one wins.
    """

    __tablename__ = "products"

    marketplace: str = Field(primary_key=True, max_length=32)
    account: str = Field(primary_key=True, max_length=64)
    sku: str = Field(primary_key=True, max_length=128)
    name: str = Field(sa_column=Column(Text, nullable=False))
    brand: str | None = Field(default=None, max_length=128)
    source: str = Field(max_length=16)  # order | review | catalog
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class StreamCursorRow(SQLModel, table=True):
    """Where one (account, stream) got to, and how its last run went."""

    __tablename__ = "stream_cursors"

    marketplace: str = Field(primary_key=True, max_length=32)
    account: str = Field(primary_key=True, max_length=64)
    stream: str = Field(primary_key=True, max_length=64)
    cursor_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_rescan_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_run_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_success_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_error_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    state: str = Field(default="new", max_length=16)  # new | ok | deferred | error | unavailable
    records_synced: int = Field(default=0)


class QuarantineRow(SQLModel, table=True):
    """A platform record that could not be normalised, kept with the reason (personal data stripped)."""

    __tablename__ = "quarantine"
    __table_args__ = (
        UniqueConstraint("marketplace", "account", "stream", "payload_hash", name="uq_quarantine"),
    )

    id: int | None = Field(default=None, primary_key=True)
    marketplace: str = Field(max_length=32)
    account: str = Field(max_length=64)
    stream: str = Field(max_length=64)
    record_key: str | None = Field(default=None, max_length=128)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    payload_hash: str = Field(sa_column=Column(String(64), nullable=False))
    seen_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class MetaRow(SQLModel, table=True):
    """Installation-wide key/value facts (e.g. the buyer-key salt)."""

    __tablename__ = "meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))


class LeaseRow(SQLModel, table=True):
    """Who works one piece of work (an account, a store-wide job) until when (`sync.leases`).

    `token` grows with every new grant: a write fenced with an older token is refused, so a
    replica that lost its lease while frozen cannot write over its successor.
    """

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    token: int = Field(sa_column=Column(BigInteger, nullable=False))
    acquired_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class ReplicaRow(SQLModel, table=True):
    """A running daemon replica and its last heartbeat; live ones share the accounts between them."""

    __tablename__ = "replicas"

    name: str = Field(primary_key=True, max_length=200)
    incarnation: str = Field(max_length=64)  # one per process start: tells a duplicate name apart
    started_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    seen_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class AuthTokenRow(SQLModel, table=True):
    """An access token fetched at runtime (OAuth), shared by replicas so one fetch serves them all.

    `claimed_by`/`claimed_until` mark the one replica fetching a new token for the key; the others
    wait for its row to change (`store.tokens`). A token is a secret: it is never exported, counted
    in a backup's printed summary or logged.
    """

    __tablename__ = "auth_tokens"

    key: str = Field(primary_key=True, max_length=300)
    token: str | None = Field(default=None, sa_column=Column(Text))
    issued_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
