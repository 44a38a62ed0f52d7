"""The daemon's endpoint over real HTTP: /healthz and /metrics while it polls the WB emulator, a clean
stop, a port in use refused with one line, and the hook that counts platform answers."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from typer.testing import CliRunner

from app.cli import app as cli
from app.config import AppConfig, AppSettings, DatabaseSettings, MarketplaceAccount, ScheduleSettings, load_config
from app.metrics import Metrics
from app.scheduler import Daemon
from app.service import Service, build_daemon, service_app
from app.wiring import App, open_store
from connectors.base import RateOverride
from connectors.emulation import Fault
from connectors.http import ObservedTransport
from connectors.wildberries.emulator import EmulatorConfig, create_app
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings
from loyalty.outbox import counts
from store import Store

pytestmark = pytest.mark.anyio

TOKEN = "service-sentinel-token-91f0c2"
STREAMS = ("orders", "orders_statistics", "reviews")
FAST = RateOverride(requests=10_000, period_seconds=1, burst=10_000)
WB = "wildberries"


def _config(db_url: str, tmp_path: Path) -> AppConfig:
    account = WildberriesAccountSettings(
        name="main", token_env="UNUSED", token=SecretStr(TOKEN),
        base_urls=dict.fromkeys(PRODUCTION_HOSTS, "http://emulator"),
        rate_limits=dict.fromkeys(("marketplace", "statistics", "feedbacks"), FAST),
    )
    settings = AppSettings(database=DatabaseSettings(url=db_url), schedule=ScheduleSettings(jitter_seconds=0))
    return AppConfig(settings=settings, accounts=(MarketplaceAccount(WB, account),),
                     config_path=tmp_path / "loyalsync.toml")


async def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def _samples(text: str) -> dict[str, list]:
    """Metric family name -> its samples, from the exposition text (which must parse)."""
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _value(samples: list, name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


async def test_healthz_and_metrics_over_http_while_the_daemon_polls(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    db_dir.mkdir()
    store = open_store(f"sqlite:///{db_dir / 'store.db'}")
    # One 429 on the first orders page and one record the mapping must refuse.
    emulator = create_app(EmulatorConfig(
        seed=3, orders=60, reviews=20, token=TOKEN, rate_limits=False,
        faults=(Fault("/api/v3/orders", "rate_limit", times=1, retry_after=1),
                Fault("/api/v1/feedbacks", "malformed", times=1))))
    registry = Metrics(store)
    application = App(_config("sqlite://", tmp_path), store=store,
                      transports={WB: httpx.ASGITransport(app=emulator)},
                      request_observer=registry.request_observer)
    daemon = Daemon(application, on_result=registry.observe_run)
    service = Service(daemon, registry, host="127.0.0.1", port=0)  # a free port, known once bound
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    task = asyncio.create_task(daemon.run(service))
    try:
        await _wait_for(lambda: {r.key.stream for r in daemon.results} == set(STREAMS), 15, "every stream to sync")
        await daemon._actions()  # the outbox job, now that reviews are in: its first run may have found none
        assert service.port != 0 and service.url == f"http://127.0.0.1:{service.port}"
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
            health = await client.get("/healthz")
            scrape = await client.get("/metrics")

            assert health.status_code == 200, health.text
            assert health.headers["content-type"] == "application/json"
            assert health.json() == {"status": "ok", "problems": [], "scheduler": "running", "store": "ok",
                                     "streams": {"ok": 3}}
            assert TOKEN not in health.text

            assert scrape.status_code == 200
            assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert TOKEN not in scrape.text
            m = _samples(scrape.text)
            stats = emulator.state.stats
            # Every answer the emulator gave is counted once, by its status, under the account.
            requests = {s.labels["status"]: s.value for s in m["loyalsync_platform_requests"]
                        if s.name.endswith("_total")}
            assert requests == {str(code): float(n) for code, n in stats.statuses.items()}
            assert requests["200"] > 0 and requests["429"] == 1
            assert {s.labels["account"] for s in m["loyalsync_platform_requests"]} == {"main"}
            assert _value(m["loyalsync_platform_rate_limited"], "loyalsync_platform_rate_limited_total",
                          marketplace=WB, account="main") == 1
            # Records synced match what the runs wrote; every stream wrote some.
            for stream in STREAMS:
                written = sum(r.records for r in daemon.results if r.key.stream == stream)
                assert written > 0
                assert _value(m["loyalsync_records_synced"], "loyalsync_records_synced_total",
                              stream=stream) == written
            # Cursor lag: a cursor per stream, behind now by at least the stream's lag, at most days.
            lags = {s.labels["stream"]: s.value for s in m["loyalsync_cursor_lag_seconds"]}
            assert set(lags) == set(STREAMS)
            assert all(0 <= lag < 3 * 86400 for lag in lags.values()), lags
            # The refused record is in quarantine under reviews; the other streams show zero.
            assert {s.labels["stream"]: s.value for s in m["loyalsync_quarantine_records"]} == {
                "orders": 0, "orders_statistics": 0, "reviews": 1}
            # The outbox gauge is the outbox's own counts, and the actions job proposed replies.
            outbox = counts(store)
            assert outbox and sum(outbox.values()) > 0
            actions = {(s.labels["marketplace"], s.labels["kind"], s.labels["status"], s.labels["reason"]): s.value
                       for s in m["loyalsync_actions"]}
            assert actions == {(mp, k, st, r or ""): float(n) for (mp, k, st, r), n in outbox.items()}
            assert _value(m["loyalsync_up"], "loyalsync_up") == 1
            assert _value(m["loyalsync_store_up"], "loyalsync_store_up") == 1

            # The store goes away (its folder deleted, pooled connections dropped): 503, named.
            shutil.rmtree(db_dir)
            store.engine.dispose()
            broken = await client.get("/healthz")
            assert broken.status_code == 503
            body = broken.json()
            assert body["status"] == "unhealthy" and body["store"] == "unreachable"
            assert body["scheduler"] == "running"
            assert [p for p in body["problems"] if p["condition"] == "store_unreachable"
                    and p["message"].startswith("store unreachable")], body
            # Metrics still answer: the counters, and store_up 0 instead of the store's gauges.
            degraded = _samples((await client.get("/metrics")).text)
            assert _value(degraded["loyalsync_store_up"], "loyalsync_store_up") == 0
            assert "loyalsync_cursor_lag_seconds" not in degraded
            assert _value(degraded["loyalsync_up"], "loyalsync_up") == 1
    finally:
        daemon.stop.set()
        await asyncio.wait_for(task, timeout=10)
        store.engine.dispose()

    # The daemon's stop stopped the server: the port is closed, signals are back as they were.
    assert _refused(service.port)
    assert service.server.started and service.server.should_exit
    assert not daemon.running
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers


async def test_healthz_is_503_when_the_scheduler_is_not_running(tmp_path: Path, sqlite_store: Store) -> None:
    daemon = Daemon(App(_config("sqlite://", tmp_path), store=sqlite_store))  # built, never started
    endpoint = service_app(daemon, Metrics(sqlite_store))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=endpoint), base_url="http://svc") as client:
            health = await client.get("/healthz")
            scrape = await client.get("/metrics")
    finally:
        endpoint.state.executor.shutdown()
    assert health.status_code == 503
    assert health.json() == {"status": "unhealthy", "problems": [{
        "condition": "scheduler_stopped", "message": "scheduler stopped",
        "action": "the daemon is stopping or never started: see its log, then start it again"}],
        "scheduler": "stopped", "store": "ok", "streams": {}}
    m = _samples(scrape.text)
    assert _value(m["loyalsync_up"], "loyalsync_up") == 0


async def test_observed_transport_counts_every_answer_and_failure(sqlite_store: Store) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(int(request.url.path.strip("/")))

    seen: list[tuple[str, int | None]] = []
    registry = Metrics(sqlite_store)
    observe = registry.request_observer("yandex_market", "shop")

    def both(request: httpx.Request, status: int | None) -> None:
        seen.append((request.url.path, status))
        observe(request, status)

    async with httpx.AsyncClient(transport=ObservedTransport(httpx.MockTransport(answer), both)) as client:
        for path in ("/200", "/420", "/429", "/503"):
            await client.get(f"http://api{path}")
        with pytest.raises(httpx.ConnectError):
            await client.get("http://api/down")
    assert seen == [("/200", 200), ("/420", 420), ("/429", 429), ("/503", 503), ("/down", None)]
    labels = {"marketplace": "yandex_market", "account": "shop"}
    got = {status: registry.registry.get_sample_value("loyalsync_platform_requests_total", {**labels, "status": status})
           for status in ("200", "420", "429", "503", "error")}
    assert got == {"200": 1, "420": 1, "429": 1, "503": 1, "error": 1}
    assert registry.registry.get_sample_value("loyalsync_platform_rate_limited_total", labels) == 2


async def test_a_failing_observer_never_fails_the_request(caplog) -> None:
    def broken(request: httpx.Request, status: int | None) -> None:
        raise RuntimeError("counting bug")

    transport = ObservedTransport(httpx.MockTransport(lambda r: httpx.Response(204)), broken)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("http://api/x")).status_code == 204
    assert "response observer failed" in caplog.text


def test_metrics_use_a_registry_of_their_own(sqlite_store: Store) -> None:
    from prometheus_client import REGISTRY

    first, second = Metrics(sqlite_store), Metrics(sqlite_store)
    first.requests.labels(WB, "a", "200").inc()
    assert second.registry.get_sample_value("loyalsync_platform_requests_total",
                                            {"marketplace": WB, "account": "a", "status": "200"}) is None
    assert REGISTRY.get_sample_value("loyalsync_platform_requests_total",
                                     {"marketplace": WB, "account": "a", "status": "200"}) is None


# -- configuration and the CLI ------------------------------------------------------------------


def test_service_settings_default_to_loopback_and_take_env_overrides(tmp_path: Path) -> None:
    assert AppSettings().service.model_dump() == {"enabled": True, "host": "127.0.0.1", "port": 8787}
    cfg = load_config(None, env={
        "LOYALSYNC_CONFIG": str(_global_config(tmp_path, "[service]\nhost = \"0.0.0.0\"\nport = 9100\n")),
        "LOYALSYNC_SERVICE_PORT": "9200"})
    assert (cfg.settings.service.host, cfg.settings.service.port) == ("0.0.0.0", 9200)  # env beats the file
    from connectors.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_config(_global_config(tmp_path, ""), env={"LOYALSYNC_SERVICE_PORT": "70000"})
    assert caught.value.problems == [
        "environment: LOYALSYNC_SERVICE_PORT: must be less than or equal to 65535 (got '70000')"]


def test_a_disabled_service_runs_the_daemon_alone(tmp_path: Path, sqlite_store: Store) -> None:
    cfg = _config("sqlite://", tmp_path)
    off = AppConfig(settings=cfg.settings.model_copy(update={"service": cfg.settings.service.model_copy(
        update={"enabled": False})}), accounts=cfg.accounts, config_path=cfg.config_path)
    daemon, service = build_daemon(off, sqlite_store)
    assert service is None and daemon.on_result is None and daemon.app.request_observer is None
    daemon, service = build_daemon(cfg, sqlite_store)
    assert service is not None and (service.host, service.port) == ("127.0.0.1", 8787)
    assert daemon.on_result is not None and daemon.app.request_observer is not None


def _global_config(root: Path, extra: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "marketplaces").mkdir(exist_ok=True)
    path = root / "loyalsync.toml"
    path.write_text(textwrap.dedent(f"""\
        [database]
        url = "sqlite:///{root / 'cli.db'}"
        """) + extra, encoding="utf-8")
    return path


@contextmanager
def _listening() -> Iterator[int]:
    """A port someone else already listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_run_with_the_port_in_use_exits_2_with_one_clear_line(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    config = _global_config(tmp_path / "config", "")
    (tmp_path / "config" / "marketplaces" / "wildberries.toml").write_text(textwrap.dedent("""\
        [[accounts]]
        name = "main"
        token_env = "LOYALSYNC_TEST_SERVICE_WB_TOKEN"
        """), encoding="utf-8")
    monkeypatch.setenv("LOYALSYNC_TEST_SERVICE_WB_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    for var in ("LOYALSYNC_CONFIG", "LOYALSYNC_DATABASE_URL", "LOYALSYNC_MODE", "LOYALSYNC_SERVICE_HOST"):
        monkeypatch.delenv(var, raising=False)
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogger("loyalsync").level)
    try:
        with _listening() as port:
            monkeypatch.setenv("LOYALSYNC_SERVICE_PORT", str(port))
            started = time.monotonic()
            result = CliRunner().invoke(cli, ["run", "--config", str(config)])
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        logging.getLogger("loyalsync").setLevel(saved[2])
    assert result.exit_code == 2, (result.output, result.exc_info)
    assert isinstance(result.exception, SystemExit)
    assert time.monotonic() - started < 10  # refused at once, not after a sync
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"cannot listen on 127.0.0.1:{port}: the port is in use; change [service] port in "
                     f"{config} or set LOYALSYNC_SERVICE_PORT"], result.stderr
    assert "Traceback" not in result.output and TOKEN not in result.output
