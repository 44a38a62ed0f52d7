"""A connector's streams, declared: what each reads, how its records are mapped and keyed.

A `Stream` is one entry of a connector's stream table: its `StreamSpec` (record type, cursor kind,
timings), the call that reads a window page by page, the pure mapping of one raw record, and the raw
field that holds the record's natural key. `Connector.fetch`, `map_record` and `record_key` look
the stream up here instead of branching on its name (cf. Airbyte CDK's `HttpStream` classes,
Singer SDK's `Stream`s).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from connectors.records import OrderRecord, ReviewRecord

__all__ = [
    "CursorKind",
    "MappingContext",
    "Page",
    "Record",
    "RecordType",
    "Stream",
    "StreamSpec",
    "Window",
    "stream_table",
]

Record = OrderRecord | ReviewRecord


class CursorKind(StrEnum):
    """How a stream remembers where it got to."""

    # The cursor is the end of the last fully read time window; the runner advances it.
    WINDOW = "window"
    # The cursor is the platform's own change mark (e.g. WB lastChangeDate) of the last page read;
    # pages arrive ordered by it, so every page end is a boundary that was fully read.
    HIGH_WATER = "high_water"


class RecordType(StrEnum):
    """What kind of normalised record a stream produces."""

    ORDER = "order"
    REVIEW = "review"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream's defaults; ops may override the timings per account."""

    name: str
    record_type: RecordType
    cursor: CursorKind
    window: timedelta  # largest span one request may cover
    lookback: timedelta  # re-read this much before the cursor on every run
    lag: timedelta  # the upper bound stays this far behind "now"
    start_history: timedelta  # how far back the first sync starts
    poll_interval: timedelta | None = None  # None: the config's schedule.default_poll_interval
    rescan_lookback: timedelta | None = None  # the periodic wider re-scan that repairs late data
    rescan_every: timedelta | None = None
    # The platform's own limit on one request's span: check-config refuses a longer `window`.
    max_window: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """A closed-open time range [start, end) in aware UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("window end must be after its start")


@dataclass(slots=True)
class Page:
    """Raw platform records of one response, and the cursor position right after them.

    `checkpoint` is set by HIGH_WATER streams only: everything before it has been delivered.
    """

    items: list[dict[str, Any]]
    checkpoint: datetime | None = None


def _no_buyer_keys(raw_id: str) -> str:
    raise RuntimeError("this mapping context has no buyer-key hasher; the runner provides one")


@dataclass(frozen=True, slots=True)
class MappingContext:
    """What pure mapping functions need besides the payload.

    `buyer_key` turns a platform's raw buyer id into the salted hash that is all loyalsync stores;
    mappings call it and never put a raw id in a record.
    """

    marketplace: str
    account: str
    buyer_key: Callable[[str], str] = field(default=_no_buyer_keys)



@dataclass(frozen=True, slots=True)
class Stream:
    """One stream a connector reads: its spec, how a window is fetched, and how records are mapped and keyed.

    `fetch(connector, window)` yields the raw pages of the window (the connector built for the account,
    so the call can reach its client and the account's effective spec); `map(raw, ctx)` is the pure
    mapping, raising `MalformedRecord`; `key` names the raw field with the platform id quarantine rows
    carry.
    """

    spec: StreamSpec
    fetch: Callable[[Any, Window], AsyncIterator[Page]]
    map: Callable[[dict[str, Any], MappingContext], Record]
    key: str

    @property
    def name(self) -> str:
        return self.spec.name

    def record_key(self, raw: Any) -> str | None:
        """The platform id of a raw record; None when it has none (or is no object at all)."""
        value = raw.get(self.key) if isinstance(raw, dict) else None
        return str(value) if value not in (None, "") else None


def stream_table(streams: Iterable[Stream]) -> Mapping[str, Stream]:
    """A connector's streams by name, in declaration order (the order jobs are scheduled in)."""
    table: dict[str, Stream] = {}
    for stream in streams:
        if stream.name in table:
            raise ValueError(f"stream {stream.name!r} is declared twice")
        table[stream.name] = stream
    return MappingProxyType(table)
