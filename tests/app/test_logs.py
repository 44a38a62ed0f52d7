"""Log lines: JSON off a terminal, text on one or when forced, job lines naming their account and
stream, and a secret given to `setup_logging` masked everywhere, tracebacks included."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from pydantic import SecretStr

from app.config import AppConfig, AppSettings, DatabaseSettings, MarketplaceAccount, ScheduleSettings
from app.logs import LOG_FORMAT_ENV, log_context, setup_logging
from app.wiring import App
from connectors.base import RateOverride
from connectors.emulation import Fault
from connectors.wildberries.emulator import EmulatorConfig, create_app
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings
from store import Store

pytestmark = pytest.mark.anyio

SECRET = "LOG-SENTINEL-SECRET-7c2e90ab"
_LOGGERS = ("", "loyalsync", "httpx", "httpcore", "apscheduler", "alembic", "uvicorn")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restored_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """setup_logging changes the root logger: put every handler and level back afterwards."""
    monkeypatch.delenv(LOG_FORMAT_ENV, raising=False)
    saved = [(lg, lg.level, list(lg.handlers)) for lg in map(logging.getLogger, _LOGGERS)]
    try:
        yield
    finally:
        for lg, level, handlers in saved:
            lg.setLevel(level)
            lg.handlers[:] = handlers


def _json_lines(out: io.StringIO) -> list[dict]:
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_json_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    setup_logging([SECRET], stream=out)
    log = logging.getLogger("loyalsync.test")
    log.info("plain %d", 1)
    with log_context(marketplace="wildberries", account="main", stream="orders"):
        log.warning("inside a job")
    log.info("explicit", extra={"account": "other", "stream": "reviews"})

    plain, job, explicit = _json_lines(out)
    assert set(plain) == {"time", "level", "logger", "message"}
    assert (plain["level"], plain["logger"], plain["message"]) == ("INFO", "loyalsync.test", "plain 1")
    assert datetime.fromisoformat(plain["time"]).utcoffset().total_seconds() == 0
    assert job == {**job, "level": "WARNING", "message": "inside a job", "marketplace": "wildberries",
                   "account": "main", "stream": "orders"}
    assert (explicit["account"], explicit["stream"]) == ("other", "reviews")
    assert "marketplace" not in explicit  # the context ended with its block


def test_text_on_a_terminal_and_when_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = Terminal()
    setup_logging(stream=tty)
    with log_context(marketplace="ozon", account="shop", stream="reviews"):
        logging.getLogger("loyalsync.test").info("hello")
    line = tty.getvalue().strip()
    assert line.endswith(" INFO loyalsync.test [ozon/shop/reviews]: hello"), line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)

    # Forced by argument and by environment, either way round.
    forced = io.StringIO()
    setup_logging(stream=forced, fmt="text")
    logging.getLogger("loyalsync.test").info("forced")
    assert forced.getvalue().strip().endswith(" INFO loyalsync.test: forced")

    monkeypatch.setenv(LOG_FORMAT_ENV, "text")
    by_env = io.StringIO()
    setup_logging(stream=by_env)
    logging.getLogger("loyalsync.test").info("by env")
    assert by_env.getvalue().strip().endswith(" INFO loyalsync.test: by env")

    monkeypatch.setenv(LOG_FORMAT_ENV, "JSON")
    tty_json = Terminal()
    setup_logging(stream=tty_json)
    logging.getLogger("loyalsync.test").info("json on a tty")
    assert _json_lines(tty_json)[0]["message"] == "json on a tty"


def test_an_unknown_format_falls_back_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, "yaml")
    out = io.StringIO()
    setup_logging(stream=out)
    (warning,) = _json_lines(out)
    assert warning["level"] == "WARNING" and "LOYALSYNC_LOG_FORMAT='yaml' is not json or text" in warning["message"]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_secret_never_appears_not_even_in_a_traceback(fmt: str) -> None:
    out = io.StringIO()
    setup_logging([SECRET], stream=out, fmt=fmt)  # type: ignore[arg-type]
    log = logging.getLogger("loyalsync.test")
    token = SECRET
    log.warning("sent token=%s", token)
    log.warning("an object %s", {"Authorization": f"Bearer {token}"})
    try:
        raise ValueError(f"the platform refused {token}")
    except ValueError:
        log.exception("failed with %s", token)
    logging.getLogger("httpx").warning("library line with %s", token)  # any logger, not only ours

    text = out.getvalue()
    assert SECRET not in text
    assert text.count("***") >= 5
    assert "Traceback (most recent call last)" in text and "ValueError: the platform refused ***" in text
    if fmt == "json":
        lines = _json_lines(out)
        assert len(lines) == 4
        assert lines[2]["message"] == "failed with ***"
        assert lines[2]["exception"].startswith("Traceback") and SECRET not in lines[2]["exception"]


# -- a job's lines ------------------------------------------------------------------------------

TOKEN = "logs-job-token-4be1d9"
FAST = RateOverride(requests=10_000, period_seconds=1, burst=10_000)


async def test_job_lines_name_their_account_and_stream(tmp_path, sqlite_store: Store) -> None:
    account = WildberriesAccountSettings(
        name="main", token_env="UNUSED", token=SecretStr(TOKEN),
        base_urls=dict.fromkeys(PRODUCTION_HOSTS, "http://emulator"),
        rate_limits=dict.fromkeys(("marketplace", "statistics", "feedbacks"), FAST))
    config = AppConfig(settings=AppSettings(database=DatabaseSettings(url="sqlite://"),
                                            schedule=ScheduleSettings(jitter_seconds=0)),
                       accounts=(MarketplaceAccount("wildberries", account),), config_path=tmp_path / "x.toml")
    # A 500 on the reviews page: the HTTP layer logs its retry from inside the job.
    emulator = create_app(EmulatorConfig(seed=4, orders=10, reviews=10, token=TOKEN, rate_limits=False,
                                         faults=(Fault("/api/v1/feedbacks", "http_500", times=1),)))
    out = io.StringIO()
    setup_logging([TOKEN], verbose=True, stream=out)
    async with App(config, store=sqlite_store, transports={"wildberries": httpx.ASGITransport(app=emulator)}) as app:
        (job,) = app.jobs(stream="reviews")
        result = await app.run_job(job)
        logging.getLogger("loyalsync.test").info("after the job")
    assert result.ok, result.error

    lines = _json_lines(out)
    ours = [line for line in lines if line["logger"].startswith("loyalsync.http")]
    retry = [line for line in ours if line["message"].startswith("attempt 1/")]
    assert retry and retry[0]["level"] == "WARNING"
    assert ours and all((line["marketplace"], line["account"], line["stream"]) == ("wildberries", "main", "reviews")
                        for line in ours), ours
    after = [line for line in lines if line["message"] == "after the job"]
    assert after and "account" not in after[0] and "stream" not in after[0]
    assert TOKEN not in out.getvalue()


def _config(tmp_path) -> AppConfig:
    account = WildberriesAccountSettings(
        name="main", token_env="UNUSED", token=SecretStr(TOKEN),
        base_urls=dict.fromkeys(PRODUCTION_HOSTS, "http://emulator"))
    return AppConfig(settings=AppSettings(database=DatabaseSettings(url="sqlite://")),
                     accounts=(MarketplaceAccount("wildberries", account),), config_path=tmp_path / "x.toml")


# -- quiet logs: expected events are one readable line --------------------------------------------


def test_apscheduler_max_instances_is_logged_once_then_as_a_count() -> None:
    out = io.StringIO()
    setup_logging(fmt="text", stream=out)
    aps = logging.getLogger("apscheduler.scheduler")
    for _ in range(50):  # what APScheduler logs each time a stream is due while its run goes on
        aps.warning('Execution of job "%s" skipped: maximum number of running instances reached (%d)',
                    "wildberries/main/orders", 1)
    lines = [line for line in out.getvalue().splitlines() if "maximum number of running instances" in line]
    assert len(lines) == 1 and "repeats are counted" in lines[0], out.getvalue()


def test_the_repeat_filter_reports_how_many_it_held_back() -> None:
    from app.log_repeats import RepeatFilter

    now = [0.0]
    repeats = RepeatFilter(every=600, clock=lambda: now[0])
    message = 'Execution of job "%s" skipped: maximum number of running instances reached (%d)'

    def passes() -> logging.LogRecord | None:
        record = logging.LogRecord("apscheduler.scheduler", logging.WARNING, __file__, 1, message,
                                   ("wb/orders", 1), None)
        return record if repeats.filter(record) else None

    assert passes() is not None
    for _ in range(199):  # every 3 s for ten minutes
        now[0] += 3
        assert passes() is None
    now[0] += 3
    report = passes()
    assert report is not None and "199 more time(s) in the last 10 min" in report.getMessage()
    other = logging.LogRecord("loyalsync", logging.INFO, __file__, 1, "something else", None, None)
    assert repeats.filter(other)


async def test_loyalty_members_line_says_what_was_done_not_a_repr(tmp_path, sqlite_store: Store, caplog) -> None:
    from app.scheduler import Daemon

    daemon = Daemon(App(_config(tmp_path), store=sqlite_store))
    with caplog.at_level(logging.INFO, logger="loyalsync"):
        await daemon._members_run()
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("loyalty members")]
    assert "RefreshResult(" not in caplog.text
    assert line == "loyalty members: 0 members, 0 rows written, 0 left alone (evaluated later already)"


async def test_a_run_cut_short_by_a_lost_lease_is_one_info_line(tmp_path, sqlite_store: Store, caplog) -> None:
    from app.scheduler import Daemon

    app = App(_config(tmp_path), store=sqlite_store)
    daemon = Daemon(app)
    started = asyncio.Event()

    async def endless(job, on_page=None, fence=None):
        started.set()
        await asyncio.Event().wait()

    app.run_job = endless  # type: ignore[method-assign]
    daemon.coordinator.holds = lambda name: object()  # type: ignore[method-assign]  # held until the beat says lost
    daemon.coordinator.fence = lambda lease: None  # type: ignore[method-assign]
    job = app.jobs()[0]
    with caplog.at_level(logging.DEBUG):
        task = asyncio.create_task(daemon._run_job(job))
        await started.wait()
        daemon._after_beat([], [job.lease])
        assert await task is None  # returned: no CancelledError for APScheduler to print
    lines = [r for r in caplog.records if job.id in r.getMessage()]
    assert [(r.levelno, r.exc_info) for r in lines] == [(logging.INFO, None)], caplog.text
    assert "lease moved to another replica" in lines[0].getMessage()
    assert "Traceback" not in caplog.text and "CancelledError" not in caplog.text
