"""The conformance suite every connector + emulator pair must pass.

Use it from a connector's tests in a few lines:

    class TestWildberriesConformance(ConformanceSuite):
        harness = WildberriesHarness()
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from connectors.base import Connector, RecordType, StreamSettings, WriteNotSupported, WriteRequest, WriteStatus
from connectors.capabilities import ActionKind
from connectors.testing.driver import SimulatedCrash, StreamOutcome, SyncDriver
from connectors.testing.harness import ConnectorHarness, FakeTime, FaultRequest
from connectors.testing.schemas import schema_problem

__all__ = ["NOW", "ConformanceSuite", "SimulatedCrash"]

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_FULL = os.environ.get("LOYALSYNC_FULL", "") not in ("", "0")


class ConformanceSuite:
    """Behaviour every connector must show against its emulator; subclass and set `harness`."""

    harness: ClassVar[ConnectorHarness]
    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    # -- helpers ---------------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _use_driver(self, kit_driver: SyncDriver) -> Iterator[None]:
        self.driver = kit_driver
        self._opened: list[Any] = []
        yield
        for store in self._opened:
            kit_driver.close(store)

    def _store(self, tmp_path: Path, name: str, crash_at: int | None = None) -> Any:
        store = self.driver.store(tmp_path / f"{name}.db", crash_at=crash_at)
        self._opened.append(store)
        return store

    def _connector(self, app: Any, time: FakeTime, account=None, answers: list | None = None) -> Connector:
        cls = self.harness.connector_cls
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=app)
        if answers is not None:
            transport = _Recording(transport, answers, time.monotonic)
        return cls(account or self.harness.account(), transport=transport, clock=time.monotonic, sleep=time.sleep)

    async def _sync(self, store: Any, app: Any, time: FakeTime, at: datetime = NOW,
                    account=None, commit_records: int | None = None, answers: list | None = None,
                    ) -> list[StreamOutcome]:
        async with self._connector(app, time, account, answers) as connector:
            return await self.driver.sync(store, connector, at, commit_records=commit_records)

    def _app(self, time: FakeTime, faults: Sequence[FaultRequest] = (), at: datetime = NOW):
        return self.harness.emulator(generated_at=NOW, serving_at=at, monotonic=time.monotonic,
                                     faults=faults, token=self.harness.token)

    def _fault_streams(self) -> list[str]:
        """The streams a fault is staged on: one per endpoint (`ConnectorHarness.shares_endpoint`),
        so two streams that read one list do not double its refusals into a run of them."""
        return [s for s in self.harness.connector_cls.streams if s not in self.harness.shares_endpoint]

    def _streams(self, kind: RecordType) -> list[str]:
        return [n for n, s in self.harness.connector_cls.streams.items() if s.record_type is kind]

    def snapshot(self, store: Any) -> tuple[list[dict], list[dict]]:
        """The store as its export: what 'identical' means for users."""
        return self.driver.snapshot(store)

    # -- the suite -------------------------------------------------------------------------------

    async def test_first_sync_stores_every_record(self, tmp_path: Path) -> None:
        time = FakeTime()
        app = self._app(time)
        results = await self._sync(self._store(tmp_path, "a"), app, time)
        assert all(r.ok for r in results), [r.error for r in results]
        store = self._store(tmp_path, "a")
        orders, reviews = self.snapshot(store)
        assert {o["order_id"] for o in orders} == self.harness.expected_order_ids(app, NOW)
        assert {r["review_id"] for r in reviews} == self.harness.expected_review_ids(app, NOW)
        assert len(orders) == len({(o["account"], o["order_id"]) for o in orders})
        assert self.harness.rate_limited_count(app) == 0, "the client's pacing caused a 429"

    def _without_overlap(self):
        """The harness account with lookback and re-scans off: only the cursor keeps data whole."""
        account = self.harness.account()
        off = StreamSettings(lookback=timedelta(0), rescan_lookback=timedelta(0))
        return account.model_copy(update={"streams": dict.fromkeys(self.harness.connector_cls.streams, off)})

    # Every early commit and a few later ones; LOYALSYNC_FULL=1 (the suite's full run) adds the rest.
    @pytest.mark.parametrize("crash_at", [1, 2, 3, 4, 5, 6, 8, 11] if _FULL else [1, 2, 4, 8])
    async def test_resume_after_crash_matches_an_uninterrupted_run(self, tmp_path: Path, crash_at: int) -> None:
        time = FakeTime()
        account = self._without_overlap()
        reference = self._store(tmp_path, "reference")
        await self._sync(reference, self._app(time), time, account=account)

        # A commit per page: a crash may then fall between any two pages.
        crashing = self._store(tmp_path, "crashed", crash_at=crash_at)
        with pytest.raises(SimulatedCrash):
            await self._sync(crashing, self._app(time), time, account=account, commit_records=1)
        # Restart: a new process sees only what was committed.
        resumed = self._store(tmp_path, "crashed")
        results = await self._sync(resumed, self._app(time), time, account=account)
        assert all(r.ok for r in results), [r.error for r in results]
        assert self.snapshot(resumed) == self.snapshot(reference)

    async def test_overlapping_runs_give_no_duplicates_and_follow_changes(self, tmp_path: Path) -> None:
        time = FakeTime()
        later = NOW + timedelta(days=3)
        incremental = self._store(tmp_path, "incremental")
        await self._sync(incremental, self._app(time), time, at=NOW)
        await self._sync(incremental, self._app(time), time, at=NOW)  # pure overlap
        app_later = self._app(time, at=later)
        await self._sync(incremental, app_later, time, at=later)

        fresh = self._store(tmp_path, "fresh")
        await self._sync(fresh, self._app(time, at=later), time, at=later)
        # A buyer shown only while an order was active is remembered by the incremental store and
        # not seen by a fresh one; every other field must agree.
        assert _without_unseen_buyers(self.snapshot(incremental), self.snapshot(fresh)) == self.snapshot(fresh)
        orders, _ = self.snapshot(incremental)
        assert {o["order_id"] for o in orders} == self.harness.expected_order_ids(app_later, later)

    def _only(self, stream: str):
        """The harness account with every stream but `stream` switched off."""
        account = self.harness.account()
        streams = dict(account.streams)
        for other in self.harness.connector_cls.streams:
            if other != stream:
                streams[other] = streams.get(other, StreamSettings()).model_copy(update={"enabled": False})
        return account.model_copy(update={"streams": streams})

    async def test_short_pages_mid_stream_lose_nothing(self, tmp_path: Path) -> None:
        """A page shorter than the limit is not the end unless the platform says so (it rarely
        does): every paging loop must go on to the platform's own end mark."""
        for stream in self.harness.connector_cls.streams:
            account = self._only(stream)
            time = FakeTime()
            clean = self._store(tmp_path, f"clean-{stream}")
            await self._sync(clean, self._app(time), time, account=account)

            fault = FaultRequest(stream=stream, kind="short_page", times=None, probability=0.5)
            app = self._app(time, [fault])
            cut = self._store(tmp_path, f"short-{stream}")
            results = await self._sync(cut, app, time, account=account)
            assert all(r.ok for r in results), [r.error for r in results]
            assert self.harness.short_pages_served(app) > 0, f"{stream}: the emulator cut no page short"
            assert self.snapshot(cut) == self.snapshot(clean), f"{stream}: records lost after a short page"

    async def test_a_late_change_to_an_old_order_reaches_the_store(self, tmp_path: Path) -> None:
        """An order that changes long after it was created (a late return, a parcel that waited
        weeks) must show its new status: on the next poll where the platform can filter by change
        time, with the periodic re-scan where it can only filter by creation time."""
        connector_cls = self.harness.connector_cls
        for stream in self._streams(RecordType.ORDER):
            spec = self.harness.account().stream_spec(connector_cls.streams[stream])
            if stream in connector_cls.changes_only_by_rescan:
                assert spec.rescan_every is not None and spec.rescan_lookback is not None, \
                    f"{stream} is declared to follow changes by re-scan but has no re-scan"
                later = NOW + spec.rescan_every + timedelta(hours=2)
                # Inside the re-scan's reach and beyond the lookback: only the re-scan finds it.
                age = spec.rescan_lookback - (later - NOW) - timedelta(days=1)
                assert age > spec.lookback, f"{stream}: its re-scan reaches no further than its lookback"
            else:
                later, age = NOW + timedelta(hours=2), timedelta(days=45)
            fault = FaultRequest(stream=stream, kind="late_change", times=3, age=age,
                                 change_after=timedelta(hours=1))
            time = FakeTime()
            store = self._store(tmp_path, f"late-{stream}")
            app = self._app(time, [fault])
            await self._sync(store, app, time, at=NOW)
            changes = self.harness.late_changes(app)
            assert changes, f"{stream}: the emulator staged no late change"
            before = {o["order_id"]: o["status"] for o in self.snapshot(store)[0]}
            assert all(before.get(k) != after for k, (_, after) in changes.items()), \
                f"{stream}: the late change was already visible at the first sync"

            results = await self._sync(store, self._app(time, [fault], at=later), time, at=later)
            assert all(r.ok for r in results), [r.error for r in results]
            stored = {o["order_id"]: o["status"] for o in self.snapshot(store)[0]}
            assert {k: stored.get(k) for k in changes} == {k: after for k, (_, after) in changes.items()}, \
                f"{stream}: an old order's late change did not reach the store"

    async def test_rate_limit_storm_is_waited_out(self, tmp_path: Path) -> None:
        time = FakeTime()
        faults = [FaultRequest(stream=s, kind="rate_limit", times=4, retry_after=3)
                  for s in self._fault_streams()]
        app = self._app(time, faults)
        store = self._store(tmp_path, "storm")
        results = await self._sync(store, app, time)
        assert all(r.ok for r in results), [r.error for r in results]
        assert self.harness.rate_limited_count(app) >= 4 * len(faults)
        assert any(abs(s - 3) < 0.01 for s in time.slept) or time.now >= 1_000 + 3, \
            "the client did not honour the platform's retry hint"
        clean, clean_time = self._store(tmp_path, "clean"), FakeTime()
        await self._sync(clean, self._app(clean_time), clean_time)
        assert self.snapshot(store) == self.snapshot(clean)

    async def test_a_rate_limit_without_a_hint_is_backed_off_and_waited_out(self, tmp_path: Path) -> None:
        """A refusal that says nothing of when to come back (no Retry-After, none of the platform's
        headers) is not asked again at once: the client backs off, longer than its pacing, and the
        run ends with exactly what a run without refusals stores."""
        time = FakeTime()
        faults = [FaultRequest(stream=s, kind="rate_limit", times=3, retry_after=None)
                  for s in self._fault_streams()]
        app = self._app(time, faults)
        store = self._store(tmp_path, "no-hint")
        answers: list[tuple[str, str, int, bytes, float]] = []
        results = await self._sync(store, app, time, answers=answers)
        assert all(r.ok for r in results), [r.error for r in results]
        assert self.harness.rate_limited_count(app) >= 3 * len(faults)
        waited: dict[tuple[str, str], float] = {}
        for i, (method, path, status, _, at) in enumerate(answers):
            if status not in (420, 429):  # 420: Market's "too many requests"
                continue
            again = next((a for a in answers[i + 1:] if a[:2] == (method, path)), None)
            assert again is not None, f"{method} {path} was never asked again after a refusal"
            assert again[4] > at, f"{method} {path} was asked again at once after a refusal without a hint"
            waited[(method, path)] = waited.get((method, path), 0.0) + again[4] - at
        assert waited and all(w >= 1.0 for w in waited.values()), f"backed off too little: {waited}"
        clean, clean_time = self._store(tmp_path, "clean"), FakeTime()
        await self._sync(clean, self._app(clean_time), clean_time)
        assert self.snapshot(store) == self.snapshot(clean)

    async def test_fields_the_platform_adds_or_leaves_out_change_nothing(self, tmp_path: Path) -> None:
        """Schema drift: every answer gains fields the platform never documented (any JSON type, in
        every object) and leaves out the ones it documents as optional. The mapping reads what it
        needs and ignores the rest: nothing is quarantined and the store ends as without the drift."""
        time = FakeTime()
        faults = [FaultRequest(s, "schema_drift", times=None) for s in self._fault_streams()]
        store = self._store(tmp_path, "drift")
        results = await self._sync(store, self._app(time, faults), time)
        assert all(r.ok for r in results), [r.error for r in results]
        assert self.driver.quarantine(store) == [], "a record with drifted fields was quarantined"
        clean, clean_time = self._store(tmp_path, "clean"), FakeTime()
        await self._sync(clean, self._app(clean_time), clean_time)
        assert self.snapshot(store) == self.snapshot(clean), "the drift changed what was stored"

    async def test_server_errors_are_retried(self, tmp_path: Path) -> None:
        time = FakeTime()
        faults = [FaultRequest(stream=s, kind="server_error", times=2)
                  for s in self._fault_streams()]
        app = self._app(time, faults)
        results = await self._sync(self._store(tmp_path, "5xx"), app, time)
        assert all(r.ok for r in results), [r.error for r in results]

    async def test_a_cut_off_answer_is_read_again_and_nothing_is_lost(self, tmp_path: Path) -> None:
        """A body cut off mid-way (a dropped connection, an overloaded gateway) is never taken for a
        shorter list: the request is sent again, or, where records of the answer were already handed
        on (a streamed answer), the stream's run fails saying so and the next run reads it whole."""
        time = FakeTime()
        faults = [FaultRequest(s, "truncated", times=2) for s in self._fault_streams()]
        store = self._store(tmp_path, "cut")
        results = await self._sync(store, self._app(time, faults), time)
        clean, clean_time = self._store(tmp_path, "clean"), FakeTime()
        await self._sync(clean, self._app(clean_time), clean_time)
        if all(r.ok for r in results):
            assert self.snapshot(store) == self.snapshot(clean), "records lost to a cut-off answer"
            return
        assert all(r.ok or r.state in ("error", "deferred") and r.error for r in results), \
            [(r.state, r.error) for r in results]
        results = await self._sync(store, self._app(time), time)
        assert all(r.ok for r in results), [r.error for r in results]
        assert self.snapshot(store) == self.snapshot(clean), "records lost to a cut-off answer"

    async def test_a_token_expiring_mid_sync_is_a_clear_error_and_the_next_sync_completes(
            self, tmp_path: Path, caplog) -> None:
        """The token expires after a few pages: the run stops with an error naming the token (no
        traceback, the token nowhere), keeps what it committed, and a run with a valid token later
        ends exactly where an uninterrupted one does."""
        caplog.set_level(logging.DEBUG)
        time = FakeTime()
        stream = self._streams(RecordType.ORDER)[0]
        store = self._store(tmp_path, "expiring")
        if self.harness.refreshes_token:
            await self._token_refreshed_mid_sync(tmp_path, store, stream, time, caplog)
            return
        results = await self._sync(store, self._app(time, [FaultRequest(stream, "expired_token", after=2)]), time)
        failed = [r for r in results if not r.ok]
        assert failed and all("token" in (r.error or "").lower() for r in failed), [r.error for r in results]
        assert "Traceback" not in caplog.text and self.harness.token not in caplog.text
        results = await self._sync(store, self._app(time), time)
        assert all(r.ok for r in results), [r.error for r in results]
        clean, clean_time = self._store(tmp_path, "clean"), FakeTime()
        await self._sync(clean, self._app(clean_time), clean_time)
        assert self.snapshot(store) == self.snapshot(clean)

    async def _token_refreshed_mid_sync(self, tmp_path: Path, store: Any, stream: str, time: FakeTime,
                                        caplog) -> None:
        """A connector that refreshes its token (OAuth): the token expires after a few pages, the
        next request is refused once, the connector fetches a new token and the sync goes on to
        the end. No request is refused more than once (a refused token is replaced, never resent)."""
        answers: list[tuple[str, str, int, bytes, float]] = []
        results = await self._sync(store, self._app(time, [FaultRequest(stream, "expired_token", after=2)]), time,
                                   answers=answers)
        assert all(r.ok for r in results), [r.error for r in results]
        refused = [(m, p) for m, p, status, _, _ in answers if status in (401, 403)]
        assert refused, "the token never expired"
        assert len(refused) <= len(self.harness.connector_cls.streams), f"refused again and again: {refused}"
        assert "Traceback" not in caplog.text and self.harness.token not in caplog.text
        clean, clean_time = self._store(tmp_path, "clean"), FakeTime()
        await self._sync(clean, self._app(clean_time), clean_time)
        assert self.snapshot(store) == self.snapshot(clean)

    async def test_money_and_time_round_trip(self, tmp_path: Path) -> None:
        time = FakeTime()
        app = self._app(time)
        store = self._store(tmp_path, "money")
        await self._sync(store, app, time)
        orders, _ = self.snapshot(store)
        assert orders
        for order in orders:
            expected = self.harness.expected_order(app, order["order_id"])
            created = datetime.fromisoformat(order["created_at"])
            assert created.utcoffset() == timedelta(0)
            assert created == expected.created_at, order["order_id"]
            assert Decimal(order["total"]) == expected.total, order["order_id"]
            assert order["total"].count(".") == 1 and len(order["total"].split(".")[1]) == 2
            assert order["currency"] == expected.currency
            if expected.returned_total is not None:
                assert Decimal(order["returned_total"]) == expected.returned_total, order["order_id"]

    async def test_malformed_record_is_quarantined_and_the_rest_stored(self, tmp_path: Path) -> None:
        time = FakeTime()
        app = self._app(time, [FaultRequest(stream=s, kind="malformed") for s in self._fault_streams()])
        store = self._store(tmp_path, "bad")
        results = await self._sync(store, app, time)
        assert all(r.ok for r in results), [r.error for r in results]
        corrupted = self.harness.corrupted_ids(app)
        quarantined = self.driver.quarantine(store)
        assert corrupted and {q["record_key"] for q in quarantined} == corrupted
        assert all(q["reason"] for q in quarantined)
        orders, reviews = self.snapshot(store)
        stored = {o["order_id"] for o in orders} | {r["review_id"] for r in reviews}
        expected = self.harness.expected_order_ids(app, NOW) | self.harness.expected_review_ids(app, NOW)
        # Everything else arrived; a record corrupted in one API may still come whole from another.
        assert expected - stored <= corrupted

    async def test_bad_token_is_a_clear_error_and_never_leaks(self, tmp_path: Path, caplog) -> None:
        caplog.set_level(logging.DEBUG)
        time = FakeTime()
        wrong = self.harness.with_secret(self.harness.account(), "wrong-sentinel-token-91c2")
        store = self._store(tmp_path, "auth")
        results = await self._sync(store, self._app(time), time, account=wrong)
        assert results and all(r.state == "error" for r in results)
        assert all("token" in (r.error or "").lower() for r in results)
        dumped = caplog.text + repr(results) + repr(self.snapshot(store))
        assert "wrong-sentinel-token-91c2" not in dumped

    async def test_token_never_reaches_logs_or_store(self, tmp_path: Path, caplog) -> None:
        caplog.set_level(logging.DEBUG)
        time = FakeTime()
        store = self._store(tmp_path, "secret")
        fault = FaultRequest(self._streams(RecordType.ORDER)[0], "server_error")
        results = await self._sync(store, self._app(time, [fault]), time)
        assert all(r.ok for r in results)
        db_text = Path(tmp_path / "secret.db").read_bytes()
        assert self.harness.token not in caplog.text
        assert self.harness.token.encode() not in db_text

    async def test_declared_writes_land_are_found_again_and_the_rest_are_not_supported(self, tmp_path: Path) -> None:
        """Each write the connector declares (`capabilities.writes`) is performed against its
        emulator, lands there, and `find_done` then finds it (so a write whose answer was lost is
        never sent twice); every other action kind is `WriteNotSupported`, never a request. A declared
        kind the harness offers nothing for (`write_requests`) is not tried: Ozon's and Market's
        `start_chat` happens inside `send_chat_message`."""
        time = FakeTime()
        app = self._app(time)
        store = self._store(tmp_path, "writes")
        await self._sync(store, app, time)
        orders, reviews = self.snapshot(store)
        declared = self.harness.connector_cls.capabilities.writes
        candidates = self.harness.write_requests(orders, reviews, NOW)
        landed: dict[ActionKind, WriteRequest] = {}
        async with self._connector(app, time) as connector:
            for kind in ActionKind:
                if kind not in declared:
                    with pytest.raises(WriteNotSupported):
                        await connector.perform(WriteRequest(kind, f"kit:{kind}", "kit-target", "kit"))
                    continue
                if not candidates.get(kind):  # e.g. start_chat: done inside send_chat_message
                    continue
                statuses = []
                for request in candidates[kind]:  # the first the platform accepts (a chat may be closed)
                    result = await connector.perform(request)
                    statuses.append(result.status)
                    if result.status is WriteStatus.DONE:
                        landed[kind] = request
                        break
                assert kind in landed, f"no {kind} landed on the emulator: {statuses}"
            assert landed or not declared, "the harness offers no write the connector declares"
            for kind, request in landed.items():
                found = await connector.find_done(request)
                assert found is not None and found.status is WriteStatus.ALREADY_DONE, \
                    f"find_done does not see the {kind} that just landed: {found}"

    async def test_every_emulator_answer_fits_the_vendored_schemas(self, tmp_path: Path) -> None:
        """The emulator is checked against the platform's own schemas, not against the client: every
        answer of a full sync, of a 429/5xx storm, of a wrong token and of the declared writes."""
        schemas = self.harness.response_schemas()
        if schemas is None:
            pytest.skip("the harness vendors no response schemas (ConnectorHarness.response_schemas)")
        pytest.importorskip("jsonschema")
        answers: list[tuple[str, str, int, bytes]] = []
        time = FakeTime()
        app = self._app(time)
        store = self._store(tmp_path, "schemas")
        await self._sync(store, app, time, answers=answers)
        storm = [FaultRequest(s, kind, times=2) for s in self._fault_streams()
                 for kind in ("rate_limit", "server_error")]
        await self._sync(self._store(tmp_path, "storm"), self._app(time, storm), time, answers=answers)
        wrong = self.harness.with_secret(self.harness.account(), "wrong-sentinel-token-91c2")
        await self._sync(self._store(tmp_path, "wrong"), self._app(time), time, account=wrong, answers=answers)
        orders, reviews = self.snapshot(store)
        declared = self.harness.connector_cls.capabilities.writes
        async with self._connector(app, time, answers=answers) as connector:
            for kind, requests in self.harness.write_requests(orders, reviews, NOW).items():
                if kind in declared and requests:
                    await connector.perform(requests[0])
        problems = [p for method, path, status, body, _ in answers
                    if (p := schema_problem(method, path, status, body, schemas))]
        assert answers and problems == [], problems[:10]
        assert {answer[2] // 100 for answer in answers} >= {2, 4, 5}, "the runs met no error to check"


class _Recording(httpx.AsyncBaseTransport):
    """Keeps every answer (method, path, status, body) that passes through, whole."""

    def __init__(self, inner: httpx.AsyncBaseTransport, answers: list, clock: Callable[[], float]):
        self.inner = inner
        self.answers = answers
        self.clock = clock

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        at = self.clock()
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.answers.append((request.method, request.url.path, response.status_code, body, at))
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)


def _without_unseen_buyers(snapshot, reference):
    """`snapshot` with buyer keys dropped where `reference` has none for the same order."""
    orders, reviews = snapshot
    unseen = {o["order_id"] for o in reference[0] if o["buyer_key"] is None}
    return [{**o, "buyer_key": None} if o["order_id"] in unseen else o for o in orders], reviews
