"""The runner against the WB emulator: deferral past the wait cap, quarantine, and PostgreSQL end to end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from app.export import export_rows
from connectors.testing import FakeTime
from connectors.wildberries import WildberriesConnector
from connectors.wildberries.emulator import EmulatorConfig, Fault, create_app
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings
from store import Store
from store.store import StreamKey
from store.tables import OrderRow
from sync.runner import StreamRunner

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOKEN = "runner-test-token"


def emulator(time: FakeTime, *faults: Fault, orders: int = 600, **config):
    config.setdefault("statistics_page_size", 100)
    return create_app(EmulatorConfig(seed=5, orders=orders, reviews=120, now=NOW, clock=lambda: NOW, token=TOKEN,
                                     monotonic=time.monotonic, faults=faults, **config))


def connector(app, time: FakeTime) -> WildberriesConnector:
    account = WildberriesAccountSettings(name="main", token_env="X", token=SecretStr(TOKEN),
                                         base_urls={h: "http://wb" for h in PRODUCTION_HOSTS},
                                         orders_page_size=50, feedbacks_page_size=40)
    return WildberriesConnector(account, transport=httpx.ASGITransport(app=app), clock=time.monotonic,
                                sleep=time.sleep)


async def sync_all(store: Store, app, time: FakeTime):
    runner = StreamRunner(store, clock=lambda: NOW, write_in_thread=False)
    async with connector(app, time) as conn:
        return {s: await runner.run(conn, s) for s in conn.enabled_streams()}


async def test_a_wait_past_the_cap_defers_keeps_progress_and_the_next_run_finishes(sqlite_store: Store):
    time = FakeTime()
    # Statistics allows a burst of 2, then one request per 10 minutes: the third page's 429 asks
    # for a wait far past the 120 s cap.
    limits = {"marketplace": (300, 60, 20), "statistics": (1, 600, 2), "feedbacks": (3, 1, 6)}
    app = emulator(time, limits=limits)
    runner = StreamRunner(sqlite_store, clock=lambda: NOW, write_in_thread=False)
    key = StreamKey("wildberries", "main", "orders_statistics")
    async with connector(app, time) as conn:
        first = await runner.run(conn, "orders_statistics")
    assert first.state == "deferred" and first.retry_after and first.retry_after > 120
    assert first.pages == 2 and "next run" in (first.error or "")
    assert time.now < 1_000 + 120, "the client blocked for the whole hinted wait"
    state = sqlite_store.get_cursor(key)
    assert state.state == "deferred" and state.last_error
    assert state.cursor_at is not None, "the two pages read before the 429 were not kept"

    # The scheduler comes back later, again and again: each run moves the cursor on, none re-reads
    # from the start, and the stream finishes.
    cursors = [state.cursor_at]
    for _ in range(6):
        time.now += 1200
        async with connector(app, time) as conn:
            result = await runner.run(conn, "orders_statistics")
        cursors.append(sqlite_store.get_cursor(key).cursor_at)
        assert cursors[-1] >= cursors[-2]
        if result.ok:
            break
    assert result.ok and len(cursors) > 2
    rows = {r["order_id"] for r in export_rows(sqlite_store, "orders")}
    assert rows == {app.state.data.orders.rid(i) for i in range(len(app.state.data.orders))}


async def test_a_truncated_body_is_retried_not_stored(sqlite_store: Store):
    time = FakeTime()
    app = emulator(time, Fault("/api/v3/orders", "truncated", times=2))
    results = await sync_all(sqlite_store, app, time)
    assert all(r.ok for r in results.values())
    assert not sqlite_store.quarantine()


async def test_one_malformed_row_is_quarantined_with_its_reason_and_the_page_is_kept(sqlite_store: Store):
    time = FakeTime()
    app = emulator(time, Fault("/api/v1/feedbacks", "malformed"))
    results = await sync_all(sqlite_store, app, time)
    assert results["reviews"].ok and results["reviews"].quarantined == 1
    [bad] = sqlite_store.quarantine()
    assert bad["stream"] == "reviews" and "productValuation" in bad["reason"]
    assert '"userName"' not in bad["payload"]  # the buyer's name is stripped before quarantine
    stored = {r["review_id"] for r in export_rows(sqlite_store, "reviews")}
    expected = {app.state.data.reviews.review_id(i) for i in range(len(app.state.data.reviews))}
    [(path, _)] = app.state.corrupted
    if path == "/api/v1/feedbacks/archive":
        # WB's archive has no date filter: each window reads it newest first, so the review the
        # fault corrupted once comes whole on a later window's read and is stored from there.
        assert stored == expected
    else:
        assert stored == expected - {bad["record_key"]}


@pytest.mark.postgres
async def test_full_sync_into_postgres_matches_sqlite(pg_store: Store, sqlite_store: Store):
    time = FakeTime()
    pg_results = await sync_all(pg_store, emulator(time), time)
    sqlite_results = await sync_all(sqlite_store, emulator(time), time)
    assert all(r.ok for r in [*pg_results.values(), *sqlite_results.values()])
    for kind in ("orders", "reviews"):
        pg_rows, lite_rows = list(export_rows(pg_store, kind)), list(export_rows(sqlite_store, kind))
        assert pg_rows == lite_rows and pg_rows
    # A second run overlaps the first entirely and must change nothing.
    await sync_all(pg_store, emulator(time), time)
    assert list(export_rows(pg_store, "orders")) == list(export_rows(sqlite_store, "orders"))


async def test_statistics_cut_off_mid_answer_keeps_the_rows_before_and_finishes_next_run(sqlite_store: Store):
    time = FakeTime()
    app = emulator(time, Fault("/api/v1/supplier/orders", "truncated", times=1), statistics_page_size=400)
    runner = StreamRunner(sqlite_store, clock=lambda: NOW, write_in_thread=False)
    key = StreamKey("wildberries", "main", "orders_statistics")
    async with connector(app, time) as conn:
        first = await runner.run(conn, "orders_statistics")
    # Retrying the same request could not help mid-body: the run stops, keeping what arrived.
    assert first.state == "deferred" and "broke off" in (first.error or "")
    assert 0 < first.records < 400 and sqlite_store.get_cursor(key).cursor_at is not None
    async with connector(app, time) as conn:
        second = await runner.run(conn, "orders_statistics")
    assert second.ok
    rows = {r["order_id"] for r in export_rows(sqlite_store, "orders")}
    assert rows == {app.state.data.orders.rid(i) for i in range(len(app.state.data.orders))}


async def test_progress_covers_the_planned_span_in_order_and_ends_full(sqlite_store: Store):
    """What the progress bars show: the share of the planned windows read, never going back."""
    time = FakeTime()
    app = emulator(time, orders=600)
    runner = StreamRunner(sqlite_store, clock=lambda: NOW, write_in_thread=False)
    seen: dict[str, list[float]] = {}
    async with connector(app, time) as conn:
        for stream in ("orders", "reviews"):
            shares = seen.setdefault(stream, [])
            result = await runner.run(conn, stream, on_page=lambda r, shares=shares: shares.append(r.covered))
            assert result.ok and result.covered == 1.0
    for stream, shares in seen.items():
        assert shares == sorted(shares) and shares[-1] == 1.0, stream
        assert len(set(shares)) > 2, f"{stream}: the bar moves during the run, not only at its end"


class CommitLog(Store):
    """A store that notes the records of each commit."""

    def __init__(self, store: Store):
        super().__init__(store.engine)
        self.commits: list[int] = []

    def write_pages(self, key, pages, **options) -> None:
        super().write_pages(key, pages, **options)
        self.commits.append(sum(p.record_count for p in pages))


async def test_pages_read_back_to_back_commit_together_up_to_the_record_limit(sqlite_store: Store):
    time = FakeTime()
    store = CommitLog(sqlite_store)
    runner = StreamRunner(store, clock=lambda: NOW, write_in_thread=False, commit_records=120, commit_seconds=60)
    async with connector(emulator(time), time) as conn:
        result = await runner.run(conn, "orders_statistics")
    assert result.ok and result.pages >= 6, "the test needs a stream of several pages"
    # Statistics pages by `>=`: each page repeats the last row of the one before.
    assert sum(store.commits) == result.records and store.count(OrderRow) == 600
    # Each commit closes as soon as it holds 120 records; only the last may hold fewer.
    assert all(120 <= n < 120 + 100 for n in store.commits[:-1]) and len(store.commits) < result.pages


async def test_a_page_read_is_committed_while_the_next_one_is_slow_to_come(sqlite_store: Store):
    """A rate-limit wait or a slow platform must not keep what was read out of the store."""
    time = FakeTime()
    key = StreamKey("wildberries", "main", "orders_statistics")
    runner = StreamRunner(sqlite_store, clock=lambda: NOW, commit_seconds=0.05)
    stored_while_waiting: list[tuple[int, int]] = []
    async with connector(emulator(time), time) as conn:
        fetch, read = conn.fetch, []

        async def slow_second_page(stream, window):
            async for page in fetch(stream, window):
                if len(read) == 1:  # page 2 is held back until page 1 is stored (or 5 s pass)
                    for _ in range(500):
                        if sqlite_store.get_cursor(key).records_synced:
                            break
                        await asyncio.sleep(0.01)
                    stored_while_waiting.append((read[0], sqlite_store.get_cursor(key).records_synced))
                read.append(len(page.items))
                yield page

        conn.fetch = slow_second_page
        result = await runner.run(conn, "orders_statistics")
    assert result.ok and len(read) > 1
    [(first_page, stored)] = stored_while_waiting
    assert stored == first_page > 0
