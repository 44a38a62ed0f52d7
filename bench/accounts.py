"""1,000 accounts in one daemon: scheduler CPU and RSS while polls find nothing new, and poll jitter.

What runs
  The real `app.scheduler.Daemon` over a real `app.wiring.App` and SQLite store, with `--accounts`
  Wildberries accounts (each its own connector, HTTP client and rate limiter, as in production) and
  one APScheduler job per account x stream (`--streams`, default all three WB streams: 3,000 jobs).
  The only stand-in is the platform: the connector class registered through `App(connectors=...)`
  is the real `WildberriesConnector` whose `fetch` answers one empty page without any HTTP, so a
  poll costs what the daemon itself spends on it (scheduling, a cursor read, window planning, one
  cursor write in a worker thread, the run record). Every stream polls every `--interval` seconds
  (the Daemon's own start-up spread and `schedule.jitter_seconds`, default 10 s, apply).

Timeline
  start-up     the Daemon starts; every job runs once within its first seconds (the first sync of
               an empty store reads several windows); reported: time until every job had run;
  measured     the next `--duration` seconds: process CPU (user + system, every thread) and RSS
               sampled every 0.5 s.

Figures
  CPU          process CPU seconds per minute over the measured window;
  RSS          mean and peak resident set over the window (and after start-up);
  jitter       for every poll that starts in the window: its actual start (the connector's
               `fetch` called) minus the time APScheduler scheduled it for (`JobSubmissionEvent.
               scheduled_run_times`, which already includes the configured random jitter): the
               scheduler's lateness plus any wait for one of `schedule.max_concurrent_jobs` slots.
               p50 / p95 / max, in ms.

Run: .venv/bin/python bench/accounts.py [--accounts 1000] [--duration 60] [--interval 30]
     [--streams orders orders_statistics reviews] [--quick]
No targets are set for these figures yet; they are reported. Writes bench/results/accounts.json.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Run as `python bench/accounts.py`, this file's folder comes first on sys.path, and bench/loyalty.py
# would shadow the `loyalty` package (the daemon imports it): look imports up from the root.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from app.config import AppConfig, AppSettings, DatabaseSettings, MarketplaceAccount  # noqa: E402
from app.scheduler import Daemon  # noqa: E402
from app.wiring import App  # noqa: E402
from bench._common import MB_BYTES, RssSampler, print_rows, row, write_result  # noqa: E402
from connectors.base import Page, StreamSettings, Window  # noqa: E402
from connectors.wildberries.connector import STREAMS, WildberriesConnector  # noqa: E402
from connectors.wildberries.settings import WildberriesAccountSettings  # noqa: E402


class Probe:
    """Scheduled times (from APScheduler's submission events) and actual starts (from `fetch`)."""

    def __init__(self) -> None:
        self.scheduled: dict[str, datetime] = {}
        self.starts: list[tuple[float, str, float]] = []  # (monotonic, job id, lateness in s)
        self.polls: dict[str, int] = {}

    def submitted(self, event: JobSubmissionEvent) -> None:
        if event.scheduled_run_times:
            self.scheduled[event.job_id] = event.scheduled_run_times[-1]

    def started(self, job_id: str) -> None:
        """The first `fetch` of a run; later windows of the same run find no scheduled time."""
        at = self.scheduled.pop(job_id, None)
        if at is None:
            return
        self.polls[job_id] = self.polls.get(job_id, 0) + 1
        self.starts.append((time.monotonic(), job_id, (datetime.now(UTC) - at).total_seconds()))


PROBE = Probe()


class WarningCounter(logging.Handler):
    """Counts the daemon's warnings by kind and phase instead of printing thousands of lines."""

    KINDS = (("is no longer held", "lease_lost"), ("maximum number of running instances", "run_skipped"),
             ("heartbeat failed", "heartbeat_failed"), ("not renewed in time", "lease_expired"))

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.phase = "startup"
        self.counts: dict[str, dict[str, int]] = {}
        self.examples: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        kind = next((k for text, k in self.KINDS if text in message), "other")
        phase = self.counts.setdefault(self.phase, {})
        phase[kind] = phase.get(kind, 0) + 1
        self.examples.setdefault(kind, message[:300])


class IdleConnector(WildberriesConnector):
    """The real WB connector (client, limiter, settings) whose platform has nothing new: no HTTP."""

    async def fetch(self, stream: str, window: Window) -> AsyncIterator[Page]:  # type: ignore[override]
        PROBE.started(f"{self.name}/{self.account.name}/{stream}")
        yield Page(items=[])


class MeasuredDaemon(Daemon):
    """The product's Daemon, with a listener for APScheduler's job submissions added."""

    def schedule(self):  # type: ignore[no-untyped-def]
        scheduler = super().schedule()
        scheduler.add_listener(PROBE.submitted, EVENT_JOB_SUBMITTED)
        return scheduler


def config(tmp: str, accounts: int, streams: list[str], interval: float) -> AppConfig:
    poll = StreamSettings(poll_interval=timedelta(seconds=interval))
    off = StreamSettings(enabled=False)
    accts = tuple(
        MarketplaceAccount("wildberries", WildberriesAccountSettings(
            name=f"acct{i:05d}", token_env="BENCH_IDLE_TOKEN", token=SecretStr("bench-token-not-a-secret"),
            streams={s: (poll if s in streams else off) for s in STREAMS}))
        for i in range(accounts))
    settings = AppSettings(database=DatabaseSettings(url=f"sqlite:///{tmp}/daemon.db"))
    return AppConfig(settings=settings, accounts=accts, config_path=Path(tmp) / "loyalsync.toml")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace, tmp: str) -> dict:
    warnings = WarningCounter()
    logging.getLogger().addHandler(warnings)  # a root handler: Python's last-resort printing stays off
    sampler = RssSampler(interval=0.5)
    sampler.start()
    t0 = time.monotonic()
    cfg = config(tmp, args.accounts, args.streams, args.interval)
    app = App(cfg, connectors={"wildberries": IdleConnector})
    jobs = len(app.jobs())
    built = time.monotonic() - t0
    daemon = MeasuredDaemon(app)
    task = asyncio.create_task(daemon.run())
    # Start-up: until every job has run once (the first sync of an empty store).
    deadline = time.monotonic() + args.startup_timeout
    while len(PROBE.polls) < jobs and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.1)
    ready = time.monotonic()
    startup = {"jobs": jobs, "build_app_s": built, "all_ran_once_s": ready - t0,
               "jobs_ran": len(PROBE.polls), "rss_mb": sampler.rss() / MB_BYTES}
    # Measured window.
    warnings.phase = "window"
    sampler.peak, samples = sampler.rss(), []
    cpu0 = cpu_seconds()
    w0 = time.monotonic()
    while time.monotonic() - w0 < args.duration and not task.done():
        await asyncio.sleep(0.5)
        samples.append(sampler.rss())
    elapsed = time.monotonic() - w0
    cpu = cpu_seconds() - cpu0
    peak = sampler.peak
    warnings.phase = "stop"
    daemon.stop.set()
    await asyncio.wait_for(task, timeout=60)
    sampler.stop()
    first = [late for at, _, late in PROBE.starts if at < ready]
    window = [late for at, _, late in PROBE.starts if w0 <= at <= w0 + elapsed]
    return {"startup": startup, "elapsed": elapsed, "cpu_seconds": cpu, "cpu_s_per_min": cpu / elapsed * 60,
            "rss_mean_mb": statistics.fmean(samples) / MB_BYTES if samples else None,
            "rss_peak_mb": peak / MB_BYTES, "polls_in_window": len(window),
            # APScheduler adds uniform(0, jitter_seconds) to each interval: the mean gap is longer.
            "expected_polls": jobs * elapsed / (args.interval + cfg.settings.schedule.jitter_seconds / 2),
            "cpu_ms_per_poll": 1000 * cpu / max(len(window), 1),
            "jitter_ms": {"p50": 1000 * pct(window, 0.5), "p95": 1000 * pct(window, 0.95),
                          "max": 1000 * max(window, default=float("nan"))},
            "first_run_lateness_ms": {"p50": 1000 * pct(first, 0.5), "p95": 1000 * pct(first, 0.95),
                                      "max": 1000 * max(first, default=float("nan"))},
            "warnings": warnings.counts, "warning_examples": warnings.examples,
            "max_concurrent_jobs": cfg.settings.schedule.max_concurrent_jobs,
            "jitter_seconds": cfg.settings.schedule.jitter_seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--duration", type=float, help="seconds measured after start-up (default 60; --quick 15)")
    ap.add_argument("--interval", type=float, help="poll interval of every stream, s (default 30; --quick 5)")
    ap.add_argument("--streams", nargs="+", choices=list(STREAMS), default=list(STREAMS))
    ap.add_argument("--startup-timeout", type=float, default=300.0)
    ap.add_argument("--quick", action="store_true", help="a 15 s window")
    ap.add_argument("--dir", help="where the SQLite file goes (default: the system temp dir)")
    args = ap.parse_args()
    args.duration = args.duration or (15.0 if args.quick else 60.0)
    # --quick: a 15 s window must see polls, so poll every 5 s (+ up to jitter_seconds); at 30 s no
    # poll started inside it and the jitter figures were NaN.
    args.interval = args.interval or (5.0 if args.quick else 30.0)

    with tempfile.TemporaryDirectory(prefix="loyalsync-bench-", dir=args.dir) as tmp:
        r = asyncio.run(measure(args, tmp))
    s, j, f = r["startup"], r["jitter_ms"], r["first_run_lateness_ms"]
    print(f"{args.accounts:,} accounts, {s['jobs']:,} jobs (polls every {args.interval:g} s); app built in "
          f"{s['build_app_s']:.1f}s; every job ran once after {s['all_ran_once_s']:.1f}s "
          f"({s['jobs_ran']:,} ran); RSS then {s['rss_mb']:.0f} MB")
    print(f"first runs: lateness p50 {f['p50']:.0f} ms, p95 {f['p95']:.0f} ms, max {f['max']:.0f} ms")
    print(f"measured {r['elapsed']:.1f}s: CPU {r['cpu_seconds']:.2f}s = {r['cpu_s_per_min']:.2f} CPU-s/min; "
          f"RSS mean {r['rss_mean_mb']:.0f} MB, peak {r['rss_peak_mb']:.0f} MB; {r['polls_in_window']:,} polls "
          f"(~{r['expected_polls']:,.0f} due); jitter p50 {j['p50']:.0f} ms, p95 {j['p95']:.0f} ms, "
          f"max {j['max']:.0f} ms")
    print(f"daemon warnings by phase: {r['warnings'] or 'none'}")
    n = f"{args.accounts:,} accounts"
    # Linear estimate: the same per-poll cost at WB's own intervals (orders 10, statistics 30,
    # reviews 15 min) instead of every --interval seconds.
    own = {name: STREAMS[name].poll_interval.total_seconds() / 60 for name in args.streams}
    real = r["cpu_ms_per_poll"] / 1000 * args.accounts * sum(1 / m for m in own.values())
    real_label = ", ".join(f"{v:g} min" for v in own.values())
    rows = [row(f"{n}: process CPU, polls every {args.interval:g} s find nothing", r["cpu_s_per_min"], "CPU-s/min"),
            row(f"{n}: RSS (mean over the window)", r["rss_mean_mb"] or 0.0, "MB"),
            row(f"{n}: RSS (peak over the window)", r["rss_peak_mb"], "MB"),
            row(f"{n}: poll jitter p50", j["p50"], "ms"),
            row(f"{n}: poll jitter p95", j["p95"], "ms"),
            row(f"{n}: poll jitter max", j["max"], "ms"),
            row(f"{n}: CPU per poll (window CPU / polls)", r["cpu_ms_per_poll"], "ms"),
            row(f"{n}: estimated CPU at the streams' own intervals ({real_label})", real, "CPU-s/min"),
            row(f"{n}: polls started in the window / due", r["polls_in_window"] / max(r["expected_polls"], 1), "ratio"),
            row(f"{n}: start-up until every one of {s['jobs']:,} jobs ran once", s["all_ran_once_s"], "s")]
    for phase in ("startup", "window"):
        for kind in ("lease_expired", "lease_lost", "run_skipped"):
            count = r["warnings"].get(phase, {}).get(kind, 0)
            what = {"lease_expired": "account leases lost: not renewed in time",
                    "lease_lost": "runs stopped: account lease lapsed",
                    "run_skipped": "runs skipped: previous run still going"}[kind]
            rows.append(row(f"{n}: {what} ({phase})", count, "leases" if kind == "lease_expired" else "runs"))
    print_rows("accounts", rows)
    write_result("accounts", vars(args), rows, **r)


if __name__ == "__main__":
    main()
