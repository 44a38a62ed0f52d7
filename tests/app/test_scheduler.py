"""The daemon's scheduler: every stream on its own interval, never twice at once, a clean stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
import warnings
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from pydantic import SecretStr

from app.config import AppConfig, AppSettings, DatabaseSettings, MarketplaceAccount, ScheduleSettings
from app.scheduler import Daemon
from app.wiring import App, JobSpec
from connectors.base import RateOverride, StreamSettings
from connectors.wildberries.emulator import EmulatorConfig, create_app
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings
from store import Store
from sync.runner import RunResult

pytestmark = pytest.mark.anyio

TOKEN = "scheduler-sentinel-token-5d1e"
STREAMS = ("orders", "orders_statistics", "reviews")
INTERVAL = 0.2  # seconds between polls of every stream
SLOW_STREAM = "orders"
SLOW_SECONDS = 0.6  # three intervals: the scheduler must skip runs, not overlap them
# Generous budgets: the client's pacing is tested elsewhere and would only slow this test down.
FAST = RateOverride(requests=10_000, period_seconds=1, burst=10_000)


def _config(tmp_path: Path) -> AppConfig:
    account = WildberriesAccountSettings(
        name="sched", token_env="UNUSED", token=SecretStr(TOKEN),
        base_urls={host: "http://emulator" for host in PRODUCTION_HOSTS},
        rate_limits={group: FAST for group in ("marketplace", "statistics", "feedbacks")},
        streams={s: StreamSettings(poll_interval=timedelta(seconds=INTERVAL)) for s in STREAMS},
    )
    settings = AppSettings(
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'daemon.db'}"),
        schedule=ScheduleSettings(jitter_seconds=0, max_concurrent_jobs=8),
    )
    return AppConfig(settings=settings, accounts=(MarketplaceAccount("wildberries", account),),
                     config_path=tmp_path / "loyalsync.toml")


class RecordingApp(App):
    """An App that records every job run, how many copies of it run at once, and slows one stream."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.starts: dict[str, list[float]] = defaultdict(list)
        self.running: dict[str, int] = defaultdict(int)
        self.most_at_once: dict[str, int] = defaultdict(int)
        self.in_slow_job = asyncio.Event()

    async def run_job(self, job: JobSpec, on_page=None, fence=None) -> RunResult:
        self.starts[job.stream].append(time.monotonic())
        self.running[job.id] += 1
        self.most_at_once[job.id] = max(self.most_at_once[job.id], self.running[job.id])
        try:
            if job.stream == SLOW_STREAM:
                self.in_slow_job.set()
                await asyncio.sleep(SLOW_SECONDS)
            return await super().run_job(job, on_page, fence)
        finally:
            self.running[job.id] -= 1


def _app(tmp_path: Path, store: Store) -> tuple[RecordingApp, object]:
    emulator = create_app(EmulatorConfig(seed=3, orders=60, reviews=20, token=TOKEN, rate_limits=False))
    app = RecordingApp(_config(tmp_path), store=store,
                       transports={"wildberries": httpx.ASGITransport(app=emulator)})
    return app, emulator


async def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def _stop(daemon: Daemon, task: asyncio.Task) -> None:
    daemon.stop.set()
    await asyncio.wait_for(task, timeout=5)


def _other_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]


async def _nothing_left_running(before: set[asyncio.Task]) -> None:
    """Every task the daemon started has ended. A sync cut short leaves its page generators
    suspended, and the event loop closes those in tasks of its own (`async_generator_athrow`) a
    moment later: those may finish within that moment; anything still running after is a leak."""
    await _wait_for(lambda: set(_other_tasks()) <= before, 2, "the daemon's tasks to end")


async def test_every_stream_runs_on_its_interval_and_never_twice_at_once(
        tmp_path: Path, sqlite_store: Store, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    app, emulator = _app(tmp_path, sqlite_store)
    daemon = Daemon(app)
    before = set(_other_tasks())
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = asyncio.create_task(daemon.run())
        # Fast streams poll every INTERVAL; the slow one at most every SLOW_SECONDS.
        await _wait_for(lambda: all(len(app.starts[s]) >= 4 for s in STREAMS if s != SLOW_STREAM)
                        and len(app.starts[SLOW_STREAM]) >= 2, 10, "repeated runs of every stream")
        connectors = list(app._connectors.values())
        await _stop(daemon, task)

    assert not caught, [str(w.message) for w in caught]
    # Each stream ran again and again, paced by its interval: never more often than it allows
    # (a late start may follow an early one closely, so count runs rather than measure gaps).
    for stream in STREAMS:
        starts = app.starts[stream]
        assert len(starts) <= (starts[-1] - starts[0]) / INTERVAL + 2, (stream, starts)
    slow = app.starts[SLOW_STREAM]
    assert len(slow) <= (slow[-1] - slow[0]) / SLOW_SECONDS + 1, slow
    # The slow stream was due while it still ran, yet never ran twice at once.
    assert dict(app.most_at_once) == {f"wildberries/sched/{s}": 1 for s in STREAMS}
    # Every run that finished synced; the store knows every stream as ok.
    assert daemon.results and all(r.ok for r in daemon.results), [r.error for r in daemon.results]
    assert {r.key.stream for r in daemon.results} == set(STREAMS)
    assert {c["stream"]: c["state"] for c in sqlite_store.cursors()} == dict.fromkeys(STREAMS, "ok")
    # A clean stop: connectors closed, nothing left running, nothing went wrong on the way out.
    assert connectors and all(c.client.http._http.is_closed for c in connectors)
    assert app._connectors == {}
    await _nothing_left_running(before)
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers  # SIGINT is pytest's again
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text
    assert "Traceback" not in caplog.text
    assert TOKEN not in caplog.text
    assert emulator.state.stats.statuses[401] == 0


async def test_stop_during_a_run_cuts_it_short_quietly(tmp_path: Path, sqlite_store: Store, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    app, _ = _app(tmp_path, sqlite_store)
    daemon = Daemon(app)
    before = set(_other_tasks())
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(app.in_slow_job.wait(), timeout=5)
    connectors = list(app._connectors.values())
    started = time.monotonic()
    await _stop(daemon, task)

    # The slow job was cancelled, not waited for, and the stop did not log it as a crash.
    assert time.monotonic() - started < SLOW_SECONDS
    assert app.running[f"wildberries/sched/{SLOW_STREAM}"] == 0
    assert all(c.client.http._http.is_closed for c in connectors)
    await _nothing_left_running(before)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text
    assert "Traceback" not in caplog.text
    assert "daemon stopped" in caplog.text
    # The interrupted stream never recorded a result: its cursor stays where the last commit left it.
    assert SLOW_STREAM not in {r.key.stream for r in daemon.results}


def test_poll_intervals_come_from_the_account_then_the_connector_then_the_config(tmp_path: Path,
                                                                                   sqlite_store: Store) -> None:
    app, _ = _app(tmp_path, sqlite_store)
    daemon = Daemon(app)
    jobs = {job.stream: job for job in app.jobs()}
    assert daemon._interval(jobs["orders"]) == timedelta(seconds=INTERVAL)  # the account's override

    from dataclasses import replace

    plain = replace(app.config.accounts[0], settings=app.config.accounts[0].settings.model_copy(update={"streams": {}}))
    app.config = replace(app.config, accounts=(plain,))
    app._connectors.clear()
    spec = app.connector(plain).streams["reviews"]
    assert daemon._interval(JobSpec(plain, "reviews")) == spec.poll_interval  # the connector's default
    bare = replace(spec, poll_interval=None)
    app.connector(plain).streams = {**app.connector(plain).streams, "reviews": bare}
    assert daemon._interval(JobSpec(plain, "reviews")) == app.config.settings.schedule.default_poll_interval


async def test_a_stop_while_a_store_wide_job_gives_its_lease_back_is_quiet(tmp_path: Path, sqlite_store: Store):
    """Found by the crash harness: SIGTERM landing in `end_job` reached APScheduler as a traceback."""
    app, _ = _app(tmp_path, sqlite_store)
    daemon = Daemon(app)
    ending = threading.Event()
    release = threading.Event()
    end_job = daemon.coordinator.end_job

    def slow_end_job(lease):
        ending.set()
        release.wait(5)
        end_job(lease)

    async def step() -> None:
        pass

    daemon.coordinator.end_job = slow_end_job
    task = asyncio.create_task(daemon._store_wide("loyalty", step))
    await asyncio.to_thread(ending.wait, 5)
    daemon.stop.set()
    task.cancel()
    try:
        await task  # returns: no CancelledError for APScheduler to log
    finally:
        release.set()
    assert task.done() and not task.cancelled()

    # Without a stop, a cancellation is still a cancellation.
    release.clear()
    ending.clear()
    daemon.stop.clear()
    task = asyncio.create_task(daemon._store_wide("loyalty", step))
    await asyncio.to_thread(ending.wait, 5)
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_heartbeats_stay_on_time_when_a_beat_is_slow(monkeypatch):
    """Beats are due every interval from the last one's start: a slow beat (a loaded database) must
    not push the next lease renewal later and later. Clock and waits are simulated: no sleeping."""
    clock = [100.0]
    starts: list[float] = []

    class SlowCoordinator:
        interval = 0.3

        def beat(self):
            starts.append(clock[0])
            clock[0] += 0.2  # the beat itself takes two thirds of the interval
            return [], []

    class Halt:
        """`threading.Event.wait` on the simulated clock; set after six beats."""

        def wait(self, timeout: float) -> bool:
            clock[0] += timeout
            return len(starts) >= 6

    monkeypatch.setattr("app.scheduler.time.monotonic", lambda: clock[0])
    loop = asyncio.new_event_loop()  # only handed on when a beat gains or loses leases: none here
    try:
        Daemon._heartbeat(SimpleNamespace(coordinator=SlowCoordinator()), loop, Halt())
    finally:
        loop.close()
    # From each beat's end they would be 0.5 s apart; from its start they are 0.3 s apart.
    assert [round(b - a, 6) for a, b in zip(starts, starts[1:], strict=False)] == [0.3] * 5


async def test_an_expected_loyalty_failure_is_one_clear_line_without_a_traceback(caplog):
    """A loyalty run that ends with an error the daemon expects (a worker process killed for memory)
    is logged as its message, what to do included, not as a traceback; the daemon goes on."""
    from types import SimpleNamespace

    from sqlalchemy.engine import make_url

    from app.health import Health
    from app.scheduler import Daemon
    from loyalty.parallel import WorkerLost

    def step(store, settings, now):
        raise WorkerLost(2)

    config = SimpleNamespace(settings=SimpleNamespace(loyalty=None))
    me = SimpleNamespace(app=SimpleNamespace(store=None, config=config), stop=asyncio.Event(),
                         health=Health(make_url("sqlite://")))
    with caplog.at_level(logging.ERROR, logger="loyalsync"):
        assert await Daemon._in_thread(me, "loyalty", step) is None
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "LOYALSYNC_LOYALTY_WORKERS=1" in record.getMessage() and record.exc_info is None


async def test_a_restarted_replica_frees_the_outbox_claims_its_killed_process_left(tmp_path: Path,
                                                                                  sqlite_store: Store) -> None:
    """A replica killed mid-send leaves its actions claimed for three minutes (SEND_WINDOW +
    SEND_MARGIN); when it starts again under the same name it gives them back at once, as it does
    its leases, so whichever replica now holds those accounts can send them. Another replica's
    claims are left alone: that one may be alive and sending."""
    from sqlalchemy import insert, select

    from store.loyalty_tables import ActionRow

    actions = ActionRow.__table__
    now = datetime.now(UTC)
    until = now + timedelta(minutes=3)
    app, _ = _app(tmp_path, sqlite_store)
    daemon = Daemon(app)
    row = {"kind": "reply_to_review", "marketplace": "wildberries", "account": "sched", "target": "r1",
           "title": "", "grounds": "", "detail": "", "params": "{}", "context": "{}", "purpose": "service",
           "cost": 0, "approval": "auto", "status": "approved", "attempts": 1,
           "created_at": now, "updated_at": now, "claimed_until": until}
    with sqlite_store.engine.begin() as conn:
        conn.execute(insert(actions), [{**row, "key": "mine", "claimed_by": daemon.replica},
                                       {**row, "key": "theirs", "claimed_by": "another-replica"}])
    task = asyncio.create_task(daemon.run())
    claimed = {}

    def read_claims() -> dict:
        with sqlite_store.engine.connect() as conn:
            rows = conn.execute(select(actions.c.key, actions.c.claimed_by, actions.c.claimed_until)).all()
        claimed.update({r.key: (r.claimed_by, r.claimed_until) for r in rows})
        return claimed

    await _wait_for(lambda: read_claims()["mine"] == (None, None), 5, "the earlier process's claim to be freed")
    await _stop(daemon, task)
    assert read_claims()["theirs"] == ("another-replica", until)
