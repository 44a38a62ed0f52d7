"""A large backfill's peak memory and speed, and how much of WB's request budget the client uses.

What is measured
  The Wildberries emulator runs in a child process (spawned, so it shares no memory with the
  measured process), served by uvicorn on 127.0.0.1 through `sync.demo.serve_emulator`. This
  process is only the daemon side: the real `StreamRunner` + `WildberriesConnector` (HTTP client,
  rate limiter, mapping) writing into a fresh SQLite store.

  (b) backfill   The emulator holds `--orders` orders (default 1,000,000) with its rate limits
                 off; the account's `rate_limits` setting lifts the client's pacing too. Every
                 enabled stream runs to completion, one after the other (the daemon's first sync).
                 Reported: peak RSS of this process (getrusage ru_maxrss, and /proc/self/statm
                 sampled every 20 ms, per stream), orders stored and orders/s end to end.
                 Target: peak RSS < 300 MB.
  (c) rate use   A fresh emulator with WB's DEFAULT limits, too many orders and reviews to finish.
                 The `orders` (Marketplace: 300/min, burst 20) and `reviews` (Feedbacks: 3/s,
                 burst 6) streams run concurrently on one connector with tiny pages
                 (orders_page_size=10, feedbacks_page_size=1) for `--duration` seconds, then are
                 cancelled. Reported per group: requests the emulator received, 429s (emulator and
                 client), and the share of the allowed rate used = requests / (burst + rate x
                 elapsed). Targets: 0 x 429, share >= 90 %.

Run: .venv/bin/python bench/backfill.py [--orders 1000000] [--duration 60] [--part all|backfill|rate]
Writes bench/results/backfill.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr

from connectors.base import RateOverride
from connectors.wildberries.client import ENDPOINT_GROUPS
from connectors.wildberries.connector import WildberriesConnector
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings
from sync.runner import StreamRunner
from sync.store import Store, connect, migrate
from sync.store.tables import OrderRow

RESULTS = Path(__file__).parent / "results"
TOKEN = "bench-token-not-a-secret"
RSS_TARGET_MB = 300
MB = 1024 * 1024


def _emulator_main(config: dict, pipe) -> None:
    """Child process: serve one emulator until told to stop, then send back its counters."""
    from connectors.wildberries.emulator import EmulatorConfig, create_app
    from sync.demo import serve_emulator

    app = create_app(EmulatorConfig(token=TOKEN, **config))

    async def serve() -> None:
        async with serve_emulator(app) as url:
            pipe.send(url)
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"

    asyncio.run(serve())
    stats = app.state.stats
    pipe.send({"requests": dict(stats.requests), "throttled": dict(stats.throttled),
               "by_group_status": {f"{g} {s}": n for (g, s), n in stats.by_group_status.items()},
               "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


@contextmanager
def emulator(**config):
    """A spawned emulator process; yields (base URL, dict that receives its stats on exit)."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_emulator_main, args=(config, theirs), daemon=True)
    proc.start()
    stats: dict = {}
    try:
        if not ours.poll(120):
            raise RuntimeError("the emulator did not start within 120 s")
        yield ours.recv(), stats
    finally:
        if proc.is_alive():
            ours.send("stop")
            if ours.poll(30):
                stats.update(ours.recv())
        proc.join(10)
        if proc.is_alive():
            proc.terminate()


class RssSampler(threading.Thread):
    """Samples this process's resident set every `interval` s; keeps the peak per label."""

    def __init__(self, interval: float = 0.02):
        super().__init__(daemon=True)
        self.interval, self.label = interval, "start"
        self.peaks: Counter[str] = Counter()
        self._halt = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            rss = self.rss()
            if rss > self.peaks[self.label]:
                self.peaks[self.label] = rss

    def stop(self) -> None:
        self._halt.set()
        self.join()


def account(url: str, **settings) -> WildberriesAccountSettings:
    return WildberriesAccountSettings(name="bench", token_env="BENCH_WB_TOKEN", token=SecretStr(TOKEN),
                                      base_urls=dict.fromkeys(PRODUCTION_HOSTS, url), **settings)


def new_store(tmp: str, name: str) -> Store:
    engine = connect(f"sqlite:///{tmp}/{name}.db")
    migrate(engine)
    return Store(engine)


async def backfill(url: str, store: Store, sampler: RssSampler, only: list[str] | None = None) -> dict:
    lifted = dict.fromkeys((g.name for g in ENDPOINT_GROUPS),
                           RateOverride(requests=1_000_000, period_seconds=1, burst=10_000))
    runner = StreamRunner(store)  # write_in_thread=True, as in the daemon
    streams: dict[str, dict] = {}
    started = time.perf_counter()
    async with WildberriesConnector(account(url, rate_limits=lifted)) as connector:
        for stream in only or connector.enabled_streams():
            sampler.label, t0 = stream, time.perf_counter()
            r = await runner.run(connector, stream)
            streams[stream] = {"state": r.state, "error": r.error, "records": r.records, "pages": r.pages,
                               "seconds": time.perf_counter() - t0}
        http = connector.client.http.stats
    elapsed = time.perf_counter() - started
    sampler.label = "end"
    orders = store.count(OrderRow)
    return {"streams": streams, "seconds": elapsed, "orders_stored": orders, "orders_per_s": orders / elapsed,
            "records_per_s": sum(s["records"] for s in streams.values()) / elapsed,
            "client_requests": sum(http.requests.values()), "client_429": http.rate_limited}


async def rate_use(url: str, store: Store, duration: float) -> dict:
    settings = account(url, orders_page_size=10, feedbacks_page_size=1)
    runner = StreamRunner(store)
    async with WildberriesConnector(settings) as connector:
        started = time.monotonic()
        tasks = {s: asyncio.create_task(runner.run(connector, s)) for s in ("orders", "reviews")}
        done, pending = await asyncio.wait(tasks.values(), timeout=duration)
        elapsed = time.monotonic() - started
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        http = connector.client.http.stats
    early = [s for s, t in tasks.items() if t in done]
    return {"elapsed": elapsed, "finished_early": early, "client_rate_limited": http.rate_limited,
            "client_requests": {f"{g} {s}": n for (g, s), n in http.requests.items()},
            "limiter_wait_seconds": http.limiter_wait_seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=1_000_000, help="orders in the backfill emulator")
    ap.add_argument("--reviews", type=int, default=20_000, help="reviews in the backfill emulator")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of the rate-use run")
    ap.add_argument("--part", choices=("all", "backfill", "rate"), default="all")
    ap.add_argument("--streams", nargs="+", help="backfill only these streams (default: every enabled one)")
    ap.add_argument("--dir", help="where the SQLite files go (default: the system temp dir)")
    args = ap.parse_args()
    out: dict = {"args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="loyalsync-bench-", dir=args.dir) as tmp:
        if args.part in ("all", "backfill"):
            t0 = time.perf_counter()
            with emulator(orders=args.orders, reviews=args.reviews, rate_limits=False) as (url, emu):
                print(f"(b) emulator with {args.orders:,} orders up in {time.perf_counter() - t0:.1f}s at {url}")
                store = new_store(tmp, "backfill")
                sampler = RssSampler()
                base = sampler.rss()
                sampler.start()
                b = asyncio.run(backfill(url, store, sampler, args.streams))
                sampler.stop()
            b.update(rss_before_mb=base / MB, ru_maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                     sampled_peak_mb={k: v / MB for k, v in sampler.peaks.items()}, emulator=emu,
                     db_mb=sum(p.stat().st_size for p in Path(tmp).glob("backfill.db*")) / MB)
            out["backfill"] = b
            print_backfill(b)
        if args.part in ("all", "rate"):
            with emulator(orders=200_000, reviews=20_000) as (url, emu):
                print(f"\n(c) emulator with default limits at {url}; running orders + reviews for {args.duration:g}s")
                r = asyncio.run(rate_use(url, new_store(tmp, "rate"), args.duration))
            r["emulator"] = emu
            out["rate"] = r
            print_rate(r)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backfill.json").write_text(json.dumps(out, indent=2, default=str))


def print_backfill(b: dict) -> None:
    print("\n(peak RSS: of this process while the stream ran; freed memory stays with the allocator)")
    print(f"{'stream':<20}{'state':>7}{'records':>10}{'pages':>7}{'seconds':>9}{'peak RSS MB':>13}")
    for name, s in b["streams"].items():
        print(f"{name:<20}{s['state']:>7}{s['records']:>10,}{s['pages']:>7}{s['seconds']:>9.1f}"
              f"{b['sampled_peak_mb'].get(name, 0):>13.0f}" + (f"   {s['error']}" if s["error"] else ""))
    peak = max(b["ru_maxrss_mb"], *b["sampled_peak_mb"].values())
    print(f"orders stored {b['orders_stored']:,} in {b['seconds']:.1f}s = {b['orders_per_s']:,.0f} orders/s "
          f"({b['records_per_s']:,.0f} records/s); {b['client_requests']} requests, {b['client_429']} x 429")
    print(f"daemon RSS: {b['rss_before_mb']:.0f} MB before, peak {b['ru_maxrss_mb']:.0f} MB (ru_maxrss); "
          f"emulator process peak {b['emulator'].get('maxrss_mb', 0):.0f} MB; store {b['db_mb']:.0f} MB")
    print(f"target: peak RSS < {RSS_TARGET_MB} MB: {'met' if peak < RSS_TARGET_MB else 'NOT met'} ({peak:.0f} MB)")


def print_rate(r: dict) -> None:
    emu = r["emulator"]
    rates = {g.name: g.rate for g in ENDPOINT_GROUPS}
    r["groups"] = {}
    print(f"\n{'group':<13}{'limit':>16}{'requests':>10}{'allowed':>9}{'share':>8}{'429 emu':>9}{'429 client':>12}")
    for group in ("marketplace", "feedbacks"):
        rate = rates[group]
        sent = emu.get("requests", {}).get(group, 0)
        allowed = rate.burst + rate.per_second * r["elapsed"]
        c429 = sum(n for k, n in r["client_requests"].items() if k == f"{group} 429")
        e429 = emu.get("throttled", {}).get(group, 0)
        r["groups"][group] = g = {"requests": sent, "allowed": allowed, "share": sent / allowed,
                                  "emulator_429": e429, "client_429": c429}
        limit = f"{rate.requests}/{rate.period_seconds:g}s b{rate.burst}"
        print(f"{group:<13}{limit:>16}{sent:>10}{allowed:>9.0f}{g['share']:>8.1%}{e429:>9}{c429:>12}")
    print(f"elapsed {r['elapsed']:.1f}s; limiter waits {r['limiter_wait_seconds']:.1f}s"
          + (f"; finished early (share understated): {r['finished_early']}" if r["finished_early"] else ""))
    ok = all(g["share"] >= 0.9 and g["emulator_429"] == 0 for g in r["groups"].values())
    print(f"target: 0 x 429 and share >= 90 % in every group: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
