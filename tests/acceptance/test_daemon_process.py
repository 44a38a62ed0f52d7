"""`loyalsync run` as sellers run it: a real process against the Wildberries emulator on loopback,
stopped with SIGTERM, then started again to carry on from where it stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette

from connectors.testing.serving import served
from connectors.wildberries.emulator import EmulatorConfig, create_app
from store import Store, connect
from store.tables import OrderRow, ReviewRow

SENTINEL = "SENTINEL-TOKEN-ac7e52f09b13d4"
TOKEN_ENV = "LOYALSYNC_ACCEPTANCE_WB_TOKEN"
STREAMS = ("orders", "orders_statistics", "reviews")
LOYALSYNC = Path(sys.executable).parent / "loyalsync"  # the console script of this venv
MSK = timezone(timedelta(hours=3))
START_TIMEOUT = 30  # first sync of every stream, process start-up included
STOP_TIMEOUT = 5  # SIGTERM to exit


def write_config(root: Path, base_url: str, database_url: str) -> Path:
    (root / "marketplaces").mkdir(parents=True)
    (root / "loyalsync.toml").write_text(textwrap.dedent(f"""\
        [database]
        url = "{database_url}"
        [schedule]
        jitter_seconds = 0
        """), encoding="utf-8")
    (root / "marketplaces" / "wildberries.toml").write_text(textwrap.dedent(f"""\
        [[accounts]]
        name = "main"
        token_env = "{TOKEN_ENV}"
        [accounts.base_urls]
        marketplace = "{base_url}"
        statistics = "{base_url}"
        feedbacks = "{base_url}"
        # Orders poll every second, so a SIGTERM may well land in the middle of a run.
        [accounts.streams.orders]
        poll_interval = "1s"
        # WB's real budgets would only make this test wait; pacing is tested elsewhere.
        [accounts.rate_limits.marketplace]
        requests = 1000
        period_seconds = 1
        burst = 1000
        [accounts.rate_limits.statistics]
        requests = 1000
        period_seconds = 1
        burst = 1000
        [accounts.rate_limits.feedbacks]
        requests = 1000
        period_seconds = 1
        burst = 1000
        """), encoding="utf-8")
    return root / "loyalsync.toml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """One `loyalsync run` process, its combined output in a file."""

    def __init__(self, config: Path, cwd: Path, log: Path):
        env = {k: v for k, v in os.environ.items()
               if k not in ("LOYALSYNC_CONFIG", "LOYALSYNC_DATABASE_URL", "LOYALSYNC_MODE")}
        env[TOKEN_ENV] = SENTINEL
        env["LOYALSYNC_SERVICE_PORT"] = str(_free_port())  # never the default port another daemon may hold
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen([str(LOYALSYNC), "run", "--config", str(config)], cwd=cwd, env=env,
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited ({self.proc.returncode}) before {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}:\n{self.output()}")
            time.sleep(0.1)

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; the exit code and how long the process took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"daemon still running {STOP_TIMEOUT}s after SIGTERM:\n{self.output()}")
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextmanager
def opened(url: str) -> Iterator[Store]:
    engine = connect(url)
    try:
        yield Store(engine)
    finally:
        engine.dispose()


def cursors(url: str) -> dict[str, dict]:
    """stream -> saved state; empty while the daemon has not created the store yet."""
    try:
        with opened(url) as store:
            return {c["stream"]: c for c in store.cursors()}
    except SQLAlchemyError:
        return {}


def stored(url: str) -> tuple[set[str], set[str], int, int]:
    """Order ids, review ids, and the row counts of both tables."""
    with opened(url) as store:
        return ({r["order_id"] for r in store.iter_orders()}, {r["review_id"] for r in store.iter_reviews()},
                store.count(OrderRow), store.count(ReviewRow))


def requests_after(emulator: Starlette, mark: int, path: str) -> list[dict[str, str]]:
    return [{k: v[0] for k, v in parse_qs(query).items()}
            for _, p, query, _ in list(emulator.state.request_log)[mark:] if p == path]


def check_output(text: str) -> None:
    assert "Traceback" not in text, text
    assert SENTINEL not in text
    assert "daemon started: 4 jobs" in text and "daemon stopped" in text, text  # 3 streams + actions


def test_daemon_stops_on_sigterm_and_resumes_from_its_cursors(tmp_path: Path) -> None:
    assert LOYALSYNC.exists(), f"no console script at {LOYALSYNC}: install the package (pip install -e .)"
    db = tmp_path / "daemon.db"
    url = f"sqlite:///{db}"
    emulator = create_app(EmulatorConfig(seed=21, orders=150, reviews=40, token=SENTINEL, rate_limits=False))
    daemons: list[Daemon] = []
    try:
        with served(emulator) as base_url:
            config = write_config(tmp_path / "config", base_url, url)

            # First start: a full backfill of every stream, then SIGTERM.
            first = Daemon(config, tmp_path, tmp_path / "first.log")
            daemons.append(first)
            first.wait_for(lambda: {s: c["state"] for s, c in cursors(url).items()} == dict.fromkeys(STREAMS, "ok"),
                           "every stream to sync")
            code, took = first.terminate()
            assert code == 0, first.output()
            check_output(first.output())

            saved = cursors(url)
            orders, reviews, order_rows, review_rows = stored(url)
            assert len(orders) == order_rows == 150
            assert len(reviews) == review_rows == 40
            mark = len(emulator.state.request_log)

            # Second start: every stream runs again from its saved cursor, not from scratch.
            second = Daemon(config, tmp_path, tmp_path / "second.log")
            daemons.append(second)

            def all_ran_again() -> bool:
                now = cursors(url)
                return all(s in now and now[s]["last_run_at"] > saved[s]["last_run_at"]
                           and now[s]["state"] == "ok" for s in STREAMS)

            second.wait_for(all_ran_again, "every stream to run again")
            code, _ = second.terminate()
            assert code == 0, second.output()
            check_output(second.output())
    finally:
        for daemon in daemons:
            daemon.kill()

    assert took < STOP_TIMEOUT
    # Nothing lost, nothing doubled.
    assert stored(url) == (orders, reviews, 150, 40)
    after = cursors(url)
    for stream in STREAMS:
        assert after[stream]["cursor_at"] >= saved[stream]["cursor_at"], stream

    # Resumed: the second process asked only for the lookback before the saved cursors. The
    # first asked for months of history, so this tells a resume from a fresh start.
    def earliest_unix(path: str, since: int) -> int:
        return min(int(q["dateFrom"]) for q in requests_after(emulator, since, path))

    for path, stream, lookback in (("/api/v3/orders", "orders", timedelta(days=14)),
                                   ("/api/v1/feedbacks", "reviews", timedelta(days=14))):
        resume_from = (saved[stream]["cursor_at"] - lookback - timedelta(minutes=1)).timestamp()
        assert earliest_unix(path, 0) < resume_from - 86400 * 7, stream  # the backfill went far back
        assert earliest_unix(path, mark) >= resume_from, stream
    stats = requests_after(emulator, mark, "/api/v1/supplier/orders")
    earliest = min(datetime.fromisoformat(q["dateFrom"]).replace(tzinfo=MSK) for q in stats)
    assert earliest >= saved["orders_statistics"]["cursor_at"] - timedelta(hours=2, minutes=1)
    assert SENTINEL.encode() not in db.read_bytes()
