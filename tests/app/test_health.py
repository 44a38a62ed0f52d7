"""`/healthz` tells the truth: 503 naming the problem and what to do when nothing is stored (a full
disk, damaged pages, every token rejected, no success for N intervals); 200 again on recovery."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.engine import make_url

from app.backoff import AuthBackoff
from app.config import AppConfig, AppSettings, DatabaseSettings, MarketplaceAccount, ScheduleSettings
from app.health import Health, StreamWatch, store_failure_kind
from app.metrics import Metrics
from app.scheduler import Daemon
from app.service import service_app
from app.wiring import App, open_store
from connectors.base import RateOverride, StreamSettings
from connectors.wildberries.emulator import EmulatorConfig, create_app
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings
from store import Store
from store.store import StreamKey
from sync.runner import RunResult

pytestmark = pytest.mark.anyio

TOKEN = "health-sentinel-token-7c2a90"
TOKEN_ENV = "LOYALSYNC_TEST_WB_TOKEN"
WB = "wildberries"
STREAMS = ("orders", "orders_statistics", "reviews")
FAST = RateOverride(requests=10_000, period_seconds=1, burst=10_000)
INTERVAL = timedelta(seconds=0.3)


def _config(tmp_path: Path) -> AppConfig:
    account = WildberriesAccountSettings(
        name="main", token_env=TOKEN_ENV, token=SecretStr(TOKEN),
        base_urls=dict.fromkeys(PRODUCTION_HOSTS, "http://emulator"),
        rate_limits=dict.fromkeys(("marketplace", "statistics", "feedbacks"), FAST),
        streams={s: StreamSettings(poll_interval=INTERVAL) for s in STREAMS},
    )
    settings = AppSettings(database=DatabaseSettings(url="sqlite://"), schedule=ScheduleSettings(jitter_seconds=0))
    return AppConfig(settings=settings, accounts=(MarketplaceAccount(WB, account),),
                     config_path=tmp_path / "loyalsync.toml")


def _emulator(token: str = TOKEN):
    return create_app(EmulatorConfig(seed=3, orders=60, reviews=20, token=token, rate_limits=False))


@asynccontextmanager
async def _running(tmp_path: Path, store: Store, token: str = TOKEN) -> AsyncIterator[tuple[Daemon, httpx.AsyncClient]]:
    """A daemon polling the WB emulator into `store`, and a client of its endpoint."""
    registry = Metrics(store)
    app = App(_config(tmp_path), store=store, transports={WB: httpx.ASGITransport(app=_emulator(token))},
              request_observer=registry.request_observer)
    daemon = Daemon(app, on_result=registry.observe_run)
    registry.watch(lambda: daemon.running)
    registry.watch_health(daemon.health)
    endpoint = service_app(daemon, registry)
    task = asyncio.create_task(daemon.run())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=endpoint), base_url="http://svc") as client:
            yield daemon, client
    finally:
        daemon.stop.set()
        await asyncio.wait_for(task, timeout=10)
        endpoint.state.executor.shutdown()


async def _health_until(client: httpx.AsyncClient, condition, what: str, timeout: float = 15) -> httpx.Response:
    """GET /healthz until `condition(response)`; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get("/healthz")
        if condition(response):
            return response
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last answer {response.status_code}: {response.text}")
        await asyncio.sleep(0.05)


def _conditions(response: httpx.Response) -> set[str]:
    return {p["condition"] for p in response.json()["problems"]}


def _metric(text: str, name: str, **labels: str) -> float:
    found = [s.value for f in text_string_to_metric_families(text) for s in f.samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(found)


# -- the daemon against a broken store and rejected tokens -----------------------------------------


async def test_a_healthy_daemon_is_200_with_the_same_body_shape(tmp_path: Path, sqlite_store: Store) -> None:
    async with _running(tmp_path, sqlite_store) as (daemon, client):
        ok = await _health_until(client, lambda r: r.json().get("streams") == {"ok": 3}, "every stream to sync")
    assert ok.status_code == 200
    assert ok.json() == {"status": "ok", "problems": [], "scheduler": "running", "store": "ok", "streams": {"ok": 3}}


def _corrupt_copy(source: Path, target: Path, tables: tuple[str, ...]) -> int:
    """Copy a store, then write garbage over every page of `tables` and their indexes in the copy."""
    shutil.copyfile(source, target)
    with sqlite3.connect(target) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        marks = ",".join("?" * len(tables))
        pages = [n for (n,) in conn.execute(
            f"SELECT pageno FROM dbstat WHERE name IN ({marks}) "  # noqa: S608 - placeholders only
            f"OR name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ({marks}))",
            tables + tables)]
    conn.close()
    with target.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(bytes([0xA5]) * page_size)
    return len(pages)


async def test_a_corrupted_store_is_503_naming_the_store_and_what_to_do(tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    seeded = open_store(f"sqlite:///{good}")
    async with App(_config(tmp_path), store=seeded, transports={WB: httpx.ASGITransport(app=_emulator())}) as app:
        await app.sync_once(app.jobs())
    seeded.engine.dispose()  # the last connection checkpoints the WAL into the file
    assert not Path(f"{good}-wal").exists()
    broken = tmp_path / "broken.db"
    assert _corrupt_copy(good, broken, ("orders", "order_lines", "reviews")) > 0

    store = open_store(f"sqlite:///{broken}")
    try:
        async with _running(tmp_path, store) as (_, client):
            sick = await _health_until(client, lambda r: "store_corrupted" in _conditions(r),
                                       "the damaged pages to be reported")
            scrape = (await client.get("/metrics")).text
    finally:
        store.engine.dispose()
    assert sick.status_code == 503
    body = sick.json()
    assert body["status"] == "unhealthy" and body["store"] == "ok"  # `SELECT 1` alone would call it fine
    [problem] = [p for p in body["problems"] if p["condition"] == "store_corrupted"]
    assert "malformed" in problem["message"]
    assert problem["action"].startswith(f"{broken} is corrupted: stop the daemon, restore it from a backup")
    assert TOKEN not in sick.text
    assert _metric(scrape, "loyalsync_store_write_failures_total", kind="corrupted") >= 1
    assert _metric(scrape, "loyalsync_job_failures_total") >= 1


async def test_a_full_disk_is_503_naming_the_disk_then_200_once_there_is_room(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = open_store(f"sqlite:///{path}")
    with store.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    full = {"on": True}

    @event.listens_for(store.engine, "checkout")
    def _limit(dbapi_conn, record, proxy) -> None:
        # A file that may not grow: SQLite answers "database or disk is full", as on a full disk.
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages if full['on'] else 1_000_000_000}")

    try:
        async with _running(tmp_path, store) as (_, client):
            sick = await _health_until(client, lambda r: "store_disk_full" in _conditions(r), "the full disk")
            scrape = (await client.get("/metrics")).text
            full["on"] = False
            well = await _health_until(client, lambda r: r.status_code == 200, "recovery once there is room")
    finally:
        store.engine.dispose()
    assert sick.status_code == 503
    [problem] = [p for p in sick.json()["problems"] if p["condition"] == "store_disk_full"]
    assert "database or disk is full" in problem["message"]
    assert problem["action"].startswith(f"the disk holding {path} is full: free space")
    assert _metric(scrape, "loyalsync_store_write_failures_total", kind="disk_full") >= 1
    assert well.json()["problems"] == [] and well.json()["status"] == "ok"


async def test_every_token_rejected_is_503_naming_the_account_and_its_env_var(
        tmp_path: Path, sqlite_store: Store, caplog) -> None:
    caplog.set_level("INFO", logger="loyalsync")
    async with _running(tmp_path, sqlite_store, token="another-token") as (daemon, client):  # every call: 401
        sick = await _health_until(client, lambda r: "token_rejected" in _conditions(r), "the rejected token")
        scrape = (await client.get("/metrics")).text
        # Each stream's next try was moved out by its backoff, not left at the poll interval.
        assert all(daemon.auth_backoff._steps.get(f"{WB}/main/{s}", 0) >= 1 for s in STREAMS)
    assert sick.status_code == 503
    [problem] = [p for p in sick.json()["problems"] if p["condition"] == "token_rejected"]
    assert problem["account"] == f"{WB}/main"
    assert problem["action"].startswith(f"token rejected: set a new token in ${TOKEN_ENV}")
    assert TOKEN not in sick.text and "another-token" not in sick.text
    assert _metric(scrape, "loyalsync_auth_failures_total", marketplace=WB, account="main") >= 3
    backoff_lines = [r.getMessage() for r in caplog.records if "token rejected" in r.getMessage()]
    assert backoff_lines and all("next try at" in line and TOKEN_ENV in line for line in backoff_lines)
    assert TOKEN not in caplog.text
    # One warning per rejected try, carrying the platform's words; the runner's own line is info.
    # (Ours only: on a loaded machine APScheduler warns that a 0.3 s job's next run was skipped.)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "/main/" in r.getMessage()
                and r.name.startswith("loyalsync")]
    assert warnings == backoff_lines and all("(" in line and "HTTP 401" in line for line in warnings), warnings


# -- the rules, on a fake clock ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _watches(*streams: str) -> list[StreamWatch]:
    return [StreamWatch(f"{WB}/main/{s}", WB, "main", s, timedelta(minutes=5), TOKEN_ENV) for s in streams]


def test_no_success_within_n_intervals_is_a_problem_after_the_grace_and_a_success_clears_it() -> None:
    clock = Clock()
    health = Health(make_url("sqlite:///x.db"), unhealthy_after=3, clock=clock)
    health.watch(_watches("orders", "reviews"))
    clock.now += timedelta(minutes=15)  # exactly the grace: still fine
    assert health.problems() == []
    clock.now += timedelta(seconds=1)
    [stale] = health.problems()
    assert stale.condition == "no_recent_success" and "3 of its poll intervals" in stale.message
    health.run_finished(f"{WB}/main/reviews", RunResult(StreamKey(WB, "main", "reviews"), "ok"))
    assert health.problems() == []


def test_only_streams_this_replica_holds_are_judged_and_a_takeover_gets_its_grace() -> None:
    clock = Clock()
    health = Health(make_url("sqlite:///x.db"), unhealthy_after=3, clock=clock)
    mine = StreamWatch(f"{WB}/main/orders", WB, "main", "orders", timedelta(minutes=5), TOKEN_ENV, "account:a")
    theirs = StreamWatch(f"{WB}/other/orders", WB, "other", "orders", timedelta(minutes=5), TOKEN_ENV, "account:b")
    health.watch([mine, theirs])
    health.run_finished(mine.job, RunResult(StreamKey(WB, "main", "orders"), "ok"))
    clock.now += timedelta(minutes=14)
    health.run_finished(mine.job, RunResult(StreamKey(WB, "main", "orders"), "ok"))
    clock.now += timedelta(minutes=14)
    assert health.problems(held={"account:a"}) == []  # the other account's stream never ran here
    assert health.problems(held=set()) == []  # a replica holding nothing has nothing to be late with
    assert health.problems(held={"account:b"}) == []  # just taken over: its grace starts now
    clock.now += timedelta(minutes=16)
    assert [p.condition for p in health.problems(held={"account:b"})] == ["no_recent_success"]


def test_store_failures_are_classified_by_what_the_database_said() -> None:
    assert store_failure_kind(sqlite3.OperationalError("database or disk is full")) == "disk_full"
    assert store_failure_kind(sqlite3.DatabaseError("database disk image is malformed")) == "corrupted"
    assert store_failure_kind(sqlite3.OperationalError("database is locked")) == "write_failed"


def test_auth_backoff_doubles_from_one_interval_caps_at_an_hour_and_resets() -> None:
    backoff, now, every = AuthBackoff(), datetime(2025, 6, 1, tzinfo=UTC), timedelta(minutes=5)
    waits = [backoff.rejected("j", every, now).wait for _ in range(7)]
    assert waits == [timedelta(minutes=m) for m in (5, 10, 20, 40, 60, 60, 60)]
    assert backoff.rejected("j", every, now).at == now + timedelta(hours=1)
    assert backoff.succeeded("j") and not backoff.succeeded("j")
    assert backoff.rejected("j", every, now).wait == every
    # A poll interval longer than the cap is never shortened by backing off.
    assert AuthBackoff().rejected("k", timedelta(hours=2), now).wait == timedelta(hours=2)


def test_loyalsync_health_prints_each_problem_and_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    from app import healthcheck

    body = {"status": "unhealthy", "problems": [{"condition": "token_rejected", "account": f"{WB}/main",
                                                 "message": f"{WB}/main: the platform rejected the token",
                                                 "action": f"token rejected: set a new token in ${TOKEN_ENV}"}]}
    monkeypatch.setattr(httpx, "get", lambda url, timeout: httpx.Response(503, json=body))
    healthy, line = healthcheck.probe("0.0.0.0", 8787)
    assert not healthy
    assert line == (f"unhealthy (503) at http://127.0.0.1:8787/healthz: {WB}/main: the platform rejected the "
                    f"token -> token rejected: set a new token in ${TOKEN_ENV}")
