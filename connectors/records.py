"""Normalised records: what every connector's mapping produces and what the store keeps.

Plain slotted dataclasses, not pydantic models: ingest builds hundreds of thousands of them per second.
Money is `Decimal` in major units; times are timezone-aware UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

__all__ = ["OrderLine", "OrderRecord", "OrderStatus", "ProductName", "ReviewRecord"]


class OrderStatus(StrEnum):
    """The normalised order lifecycle every platform's statuses map onto."""

    CREATED = "created"
    IN_DELIVERY = "in_delivery"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    # Delivered, then some of the goods (not all) came back; `OrderRecord.returned_total` says how much.
    PARTIALLY_RETURNED = "partially_returned"
    RETURNED = "returned"


@dataclass(slots=True, frozen=True)
class OrderLine:
    """One product line of an order; `price` is per unit, major units."""

    sku: str
    offer_id: str | None
    name: str | None
    quantity: int
    price: Decimal


@dataclass(slots=True, frozen=True)
class OrderRecord:
    """One order as loyalsync knows it.

    `source` names the API the record came from and `source_rank` how much that API is trusted when
    two APIs describe the same order (higher wins; see `store.upsert`).
    `returned_total` is the value (major units, as `total`) of the goods returned so far: 0 when
    none; a `returned` order may leave it 0, its status already says everything came back.
    `status_changed_at` is the platform's own time of the order's CURRENT status, only where the
    payload carries one (aware UTC; each mapping cites the field); None otherwise, and then the
    store stamps the time a sync first saw the status (`store.upsert`). Platforms without any
    status time (Kaspi) leave it None everywhere.
    """

    marketplace: str
    account: str
    order_id: str
    created_at: datetime
    updated_at: datetime
    status: OrderStatus
    platform_status: str
    fulfilment: str | None
    currency: str
    total: Decimal
    lines: tuple[OrderLine, ...]
    buyer_key: str | None = None
    source: str = ""
    source_rank: int = 0
    returned_total: Decimal = Decimal(0)
    status_changed_at: datetime | None = None


@dataclass(slots=True, frozen=True)
class ReviewRecord:
    """One product review; `order_id`/`buyer_key` stay None unless the platform links them."""

    marketplace: str
    account: str
    review_id: str
    sku: str
    rating: int
    text: str
    pros: str
    cons: str
    created_at: datetime
    answered: bool
    answer_text: str | None
    order_id: str | None = None
    buyer_key: str | None = None
    product_name: str | None = field(default=None)
    brand: str | None = field(default=None)


# Control characters (line breaks included) and runs of whitespace become one space: a name goes
# into a one-line public reply, and a platform's catalog is text we did not write.
_SPACES = re.compile(r"[\s\x00-\x1f\x7f]+")


@dataclass(slots=True, frozen=True)
class ProductName:
    """A product's display name (and brand, where the platform gives one) for one SKU.

    Build it with `ProductName.of`, which takes whatever a platform sent: anything but a
    non-blank string yields None, so garbage is never stored as a name.
    """

    name: str
    brand: str | None = None

    NAME_MAX = 255  # longer names are cut here: a reply quotes the name, it does not list specs
    BRAND_MAX = 128

    @classmethod
    def of(cls, name: object, brand: object = None) -> ProductName | None:
        """The cleaned name and brand, or None when `name` is missing, blank or not a string."""
        clean = _clean(name, cls.NAME_MAX)
        return None if clean is None else cls(clean, _clean(brand, cls.BRAND_MAX))


def _clean(value: object, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    text = _SPACES.sub(" ", value).strip()
    return text[:limit].rstrip() or None
