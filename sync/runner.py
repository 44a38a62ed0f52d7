"""Runs one (account, stream): plan windows, fetch pages, map, and write each page with its cursor.

Invariants held here (DESIGN 1, 2, 7):
- a page's records and the cursor move they justify commit in one transaction; a WINDOW stream's
  cursor moves to a window's end only with that window's last page;
- a crash anywhere leaves the cursor at a boundary that was fully read, so the next run re-reads
  and the natural-key upserts make the re-read harmless;
- a record that cannot be mapped is quarantined with its reason; the rest of its page is stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import InvalidOperation
from typing import Any

from connectors.base import Connector, CursorKind, MappingContext, Page, Window
from connectors.errors import (
    ApiError,
    AuthError,
    FatalApiError,
    MalformedRecord,
    RetryDeferred,
    StreamUnavailable,
)
from connectors.records import OrderRecord, ReviewRecord
from sync.leases import Fence
from sync.store import PageWrite, Store
from sync.store.store import Quarantined, StreamKey
from sync.windows import next_cursor, plan_run

__all__ = ["RunResult", "StreamRunner", "map_page", "utc_now"]

log = logging.getLogger("loyalsync.sync")

# What a mapping function may raise on hostile input besides MalformedRecord.
_MAPPING_FAILURES = (KeyError, TypeError, ValueError, AttributeError, InvalidOperation, IndexError,
                     OverflowError)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class RunResult:
    """How one stream run ended."""

    key: StreamKey
    state: str  # ok | deferred | error | unavailable
    records: int = 0
    quarantined: int = 0
    pages: int = 0
    error: str | None = None
    retry_after: float | None = None
    # Share (0..1) of the run's planned time span read so far: progress bars and their ETA.
    covered: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "ok"


class _Span:
    """Where a moment falls in a run's planned windows, as a share of their whole span."""

    def __init__(self, windows: Sequence[Window]):
        self.start = windows[0].start if windows else None
        self.seconds = (windows[-1].end - windows[0].start).total_seconds() if windows else 0.0

    def at(self, moment: datetime) -> float:
        if self.start is None or self.seconds <= 0:
            return 1.0
        return min(1.0, max(0.0, (moment - self.start).total_seconds() / self.seconds))


def map_page(connector: Connector, stream: str, items: list[Any], ctx: MappingContext) -> PageWrite:
    """Map a page's raw items; each one that fails goes to quarantine with the reason."""
    orders: dict[str, OrderRecord] = {}
    reviews: dict[str, ReviewRecord] = {}
    bad: list[Quarantined] = []
    for raw in items:
        try:
            if not isinstance(raw, dict):
                raise MalformedRecord(f"expected an object, got {type(raw).__name__}")
            record = connector.map_record(stream, raw, ctx)
        except MalformedRecord as exc:
            bad.append(_quarantined(connector, stream, raw, exc.reason, exc.record_key))
            continue
        except _MAPPING_FAILURES as exc:
            bad.append(_quarantined(connector, stream, raw, f"{type(exc).__name__}: {exc}", None))
            continue
        # Last one wins within a page: a platform may repeat a row (WB statistics' `>=` paging).
        if isinstance(record, OrderRecord):
            orders[record.order_id] = record
        else:
            reviews[record.review_id] = record
    return PageWrite(orders=list(orders.values()), reviews=list(reviews.values()), quarantined=bad)


def _quarantined(connector: Connector, stream: str, raw: Any, reason: str, key: str | None) -> Quarantined:
    payload = raw
    if isinstance(raw, dict):
        payload = {k: v for k, v in raw.items() if k not in connector.personal_fields}
    return Quarantined(record_key=key or connector.record_key(stream, raw), reason=reason[:500],
                       payload=payload)


class StreamRunner:
    """Syncs streams of connectors into one store."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utc_now,
                 write_in_thread: bool = True):
        self.store = store
        self.clock = clock
        # SQLite/PostgreSQL commits block; a worker thread keeps other accounts' fetches moving.
        self.write_in_thread = write_in_thread

    async def _write(self, key: StreamKey, page: PageWrite, now: datetime, fence: Fence | None) -> None:
        if self.write_in_thread:
            await asyncio.to_thread(self.store.write_page, key, page, now=now, fence=fence)
        else:
            self.store.write_page(key, page, now=now, fence=fence)

    async def run(self, connector: Connector, stream: str,
                  on_page: Callable[[RunResult], None] | None = None,
                  fence: Fence | None = None) -> RunResult:
        """Sync `stream` of `connector` up to now; never raises for platform trouble.

        `fence` guards every write (`sync.leases`): when it refuses, `LeaseLost` ends the run at
        once, nothing of it written; the replica that took the lease over carries on.
        """
        key = StreamKey(connector.name, connector.account.name, stream)
        result = RunResult(key=key, state="ok")
        now = self.clock()
        try:
            await self._sync(connector, stream, key, now, result, on_page, fence)
        except AuthError as exc:
            result.state, result.error = "error", (
                f"{exc}. Check the token in ${connector.account.token_env} and its API categories.")
        except StreamUnavailable as exc:
            result.state, result.error = "unavailable", str(exc)
        except RetryDeferred as exc:
            result.state, result.error, result.retry_after = "deferred", str(exc), exc.retry_after
        except FatalApiError as exc:
            result.state, result.error = "error", str(exc)
        except ApiError as exc:  # a retriable error that escaped the HTTP layer's retries
            result.state, result.error = "deferred", str(exc)
        if result.error:
            log.warning("%s: %s", key, result.error)
        await asyncio.to_thread(self.store.record_run, key, state=result.state, at=self.clock(),
                                error=result.error, fence=fence)
        return result

    async def _sync(self, connector: Connector, stream: str, key: StreamKey, now: datetime,
                    result: RunResult, on_page: Callable[[RunResult], None] | None,
                    fence: Fence | None) -> None:
        spec = connector.stream_spec(stream)
        ctx = connector.context(self.store.buyer_key_hasher(connector.name))
        state = self.store.get_cursor(key)
        plan = plan_run(spec, state.cursor_at, state.last_rescan_at, now)
        cursor = state.cursor_at
        span = _Span(plan.windows)
        for i, window in enumerate(plan.windows):
            last_window = i == len(plan.windows) - 1
            held: PageWrite | None = None  # one page of look-ahead: the last one carries the cursor
            try:
                async for page in connector.fetch(stream, window):
                    write = self._page_write(connector, stream, page, spec.cursor, cursor, ctx)
                    if write.cursor_at is not None:
                        cursor = write.cursor_at
                    if held is not None:
                        result.covered = span.at(cursor if cursor and cursor > window.start else window.start)
                        await self._commit(key, held, now, result, on_page, fence)
                    held = write
            except ApiError:
                # The platform stopped us mid-window: keep what was read. The held page moves no
                # window cursor; a HIGH_WATER page carries its own fully-read checkpoint.
                if held is not None:
                    await self._commit(key, held, now, result, on_page, fence)
                raise
            if held is None:
                held = PageWrite()
            if spec.cursor is CursorKind.WINDOW:
                cursor = next_cursor(cursor, window.end)
                held.cursor_at = cursor
            if last_window and (plan.rescan or state.cursor_at is None):
                held.rescan_at = now  # a first sync reads everything: it counts as a re-scan
            result.covered = span.at(window.end)
            await self._commit(key, held, now, result, on_page, fence)

    def _page_write(self, connector: Connector, stream: str, page: Page, kind: CursorKind,
                    cursor: datetime | None, ctx: MappingContext) -> PageWrite:
        write = map_page(connector, stream, page.items, ctx)
        if kind is CursorKind.HIGH_WATER and page.checkpoint is not None:
            write.cursor_at = next_cursor(cursor, page.checkpoint)
        return write

    async def _commit(self, key: StreamKey, write: PageWrite, now: datetime, result: RunResult,
                      on_page: Callable[[RunResult], None] | None, fence: Fence | None) -> None:
        await self._write(key, write, now, fence)
        result.records += write.record_count
        result.quarantined += len(write.quarantined)
        result.pages += 1
        if on_page is not None:
            on_page(result)

