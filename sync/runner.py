"""Runs one (account, stream): plan windows, fetch pages, map, and write each page with its cursor.

Invariants held here (DESIGN 1, 2, 7):
- a page's records and the cursor move they justify commit in one transaction; a WINDOW stream's
  cursor moves to a window's end only with that window's last page;
- pages read quickly one after another (a backfill) commit together, up to `commit_records`
  records and at most `commit_seconds` after the first of them was read, also while the next page
  is still on its way: one commit per page would cost more than its rows (`Store.write_pages`),
  and a page that came slowly is still in the store within a second;
- a crash anywhere leaves the cursor at a boundary that was fully read, so the next run re-reads
  and the natural-key upserts make the re-read harmless;
- a record that cannot be mapped is quarantined with its reason; the rest of its page is stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
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
from store import PageWrite, Store
from store.store import Quarantined, StreamKey
from sync.leases import Fence
from sync.windows import next_cursor, plan_run

__all__ = ["COMMIT_RECORDS", "COMMIT_SECONDS", "RunResult", "StreamRunner", "map_page", "utc_now"]

log = logging.getLogger("loyalsync.sync")

# What a mapping function may raise on hostile input besides MalformedRecord.
_MAPPING_FAILURES = (KeyError, TypeError, ValueError, AttributeError, InvalidOperation, IndexError,
                     OverflowError)


# Pages read back to back are committed together up to this many records, or this long after the
# first of them was read (see the module docstring).
COMMIT_RECORDS = 5000
COMMIT_SECONDS = 1.0


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
    # The platform rejected the token: the daemon backs off and health names the account's env var.
    auth_error: bool = False

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
    return Quarantined(record_key=key or connector.record_key(stream, raw), reason=reason[:500],
                       payload=without_personal(raw, connector.personal_fields))


def without_personal(value: Any, fields: frozenset[str]) -> Any:
    """`value` with every key named in `fields` left out, at any depth: a platform nests its buyer
    data (Kaspi's `attributes.customer`, Ozon's `customer.address`), and a quarantined record is
    kept in the store."""
    if isinstance(value, dict):
        return {k: without_personal(v, fields) for k, v in value.items() if k not in fields}
    if isinstance(value, list):
        return [without_personal(v, fields) for v in value]
    return value


class _Batch:
    """Pages read but not committed yet; they go to the store together, in order."""

    def __init__(self) -> None:
        self.pages: list[PageWrite] = []
        self.records = 0
        self.first_read: float | None = None

    def add(self, page: PageWrite) -> None:
        self.pages.append(page)
        self.records += page.record_count
        if self.first_read is None:
            self.first_read = time.monotonic()

    def seconds_left(self, limit: float) -> float | None:
        """How long the oldest page may still wait for its commit; None when nothing waits."""
        if self.first_read is None:
            return None
        return max(0.0, self.first_read + limit - time.monotonic())

    def take(self) -> list[PageWrite]:
        pages, self.pages, self.records, self.first_read = self.pages, [], 0, None
        return pages


class StreamRunner:
    """Syncs streams of connectors into one store."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utc_now,
                 write_in_thread: bool = True, commit_records: int = COMMIT_RECORDS,
                 commit_seconds: float = COMMIT_SECONDS):
        self.store = store
        self.clock = clock
        # SQLite/PostgreSQL commits block; a worker thread keeps other accounts' fetches moving.
        self.write_in_thread = write_in_thread
        self.commit_records = commit_records
        self.commit_seconds = commit_seconds

    async def _write(self, key: StreamKey, pages: list[PageWrite], now: datetime, fence: Fence | None) -> None:
        if self.write_in_thread:
            await asyncio.to_thread(self.store.write_pages, key, pages, now=now, fence=fence)
        else:
            self.store.write_pages(key, pages, now=now, fence=fence)

    async def run(self, connector: Connector, stream: str,
                  on_page: Callable[[RunResult], None] | None = None,
                  fence: Fence | None = None) -> RunResult:
        """Sync `stream` of `connector` up to now; never raises for platform trouble.

        `fence` guards every write (`sync.leases`): when it refuses, `LeaseLost` ends the run at
        once, nothing of it written; the replica that took the lease over carries on.
        `on_page` is called after each page read and each window finished (progress bars).
        """
        key = StreamKey(connector.name, connector.account.name, stream)
        result = RunResult(key=key, state="ok")
        now = self.clock()
        try:
            await self._sync(connector, stream, key, now, result, on_page or _ignore, fence)
        except AuthError as exc:
            result.auth_error = True
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
            # A rejected token is reported once per retry by whoever schedules the next one (the
            # daemon's backoff line carries these words); a one-shot sync prints it in its results.
            log.log(logging.INFO if result.auth_error else logging.WARNING, "%s: %s", key, result.error)
        await asyncio.to_thread(self.store.record_run, key, state=result.state, at=self.clock(),
                                error=result.error, fence=fence)
        return result

    async def _sync(self, connector: Connector, stream: str, key: StreamKey, now: datetime,
                    result: RunResult, on_page: Callable[[RunResult], None], fence: Fence | None) -> None:
        spec = connector.stream_spec(stream)
        ctx = connector.context(self.store.buyer_key_hasher(connector.name))
        state = self.store.get_cursor(key)
        plan = plan_run(spec, state.cursor_at, state.last_rescan_at, now)
        cursor = state.cursor_at
        span = _Span(plan.windows)
        batch = _Batch()

        async def commit() -> None:
            await self._write(key, batch.take(), now, fence)

        for i, window in enumerate(plan.windows):
            try:
                async for page in self._pages(connector.fetch(stream, window), batch, commit):
                    write = self._page_write(connector, stream, page, spec.cursor, cursor, ctx)
                    if write.cursor_at is not None:
                        cursor = write.cursor_at
                    self._read(batch, write, result)
                    result.covered = span.at(cursor if cursor and cursor > window.start else window.start)
                    on_page(result)
                    if self._due(batch):
                        await commit()
            except ApiError:
                # The platform stopped us mid-window: keep what was read. No page read moves this
                # window's cursor; a HIGH_WATER page carries its own fully-read checkpoint.
                if batch.pages:
                    await commit()
                raise
            # The window's end moves the cursor in the same transaction as its last pages or later.
            end = PageWrite()
            if spec.cursor is CursorKind.WINDOW:
                cursor = next_cursor(cursor, window.end)
                end.cursor_at = cursor
            last_window = i == len(plan.windows) - 1
            if last_window and (plan.rescan or state.cursor_at is None):
                end.rescan_at = now  # a first sync reads everything: it counts as a re-scan
            batch.add(end)
            if last_window or self._due(batch):
                await commit()
            result.covered = span.at(window.end)
            on_page(result)

    async def _pages(self, pages: AsyncIterator[Page], batch: _Batch,
                     commit: Callable[[], Awaitable[None]]) -> AsyncIterator[Page]:
        """`pages`, committing the batch when its time is up while the next page is on its way
        (a rate-limit wait, a slow platform), so a page read is never held back by the next one."""
        while True:
            arrival = asyncio.ensure_future(anext(pages))
            try:
                while not (await asyncio.wait({arrival}, timeout=batch.seconds_left(self.commit_seconds)))[0]:
                    await commit()
            except BaseException:
                if arrival.done() and not arrival.cancelled():
                    arrival.exception()  # seen: the error raised here is the one that stops the run
                else:
                    arrival.cancel()
                raise
            try:
                page = arrival.result()
            except StopAsyncIteration:
                return
            yield page

    def _read(self, batch: _Batch, write: PageWrite, result: RunResult) -> None:
        batch.add(write)
        result.records += write.record_count
        result.quarantined += len(write.quarantined)
        result.pages += 1

    def _due(self, batch: _Batch) -> bool:
        """Time to commit: enough records, or the oldest page read has waited long enough."""
        left = batch.seconds_left(self.commit_seconds)
        return batch.records >= self.commit_records or (left is not None and left <= 0)

    def _page_write(self, connector: Connector, stream: str, page: Page, kind: CursorKind,
                    cursor: datetime | None, ctx: MappingContext) -> PageWrite:
        write = map_page(connector, stream, page.items, ctx)
        if kind is CursorKind.HIGH_WATER and page.checkpoint is not None:
            write.cursor_at = next_cursor(cursor, page.checkpoint)
        return write


def _ignore(result: RunResult) -> None:
    pass
