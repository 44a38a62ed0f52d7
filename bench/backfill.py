"""A large backfill's peak memory and speed, and how much of each platform's request budget is used.

What is measured
  Each emulator runs in a child process (spawned, so it shares no memory with the measured
  process), served by uvicorn on 127.0.0.1 through `connectors.serve.serve_emulator`. This process is
  only the daemon side: the real `StreamRunner` + connector (HTTP client, rate limiter, mapping)
  writing into a fresh SQLite store.

  (b) backfill   The emulator holds `--orders` orders (default 1,000,000) with its rate limits
                 off; the account's `rate_limits` setting lifts the client's pacing too. Every
                 enabled stream runs to completion, one after the other (the daemon's first sync).
                 Reported: peak RSS of this process (getrusage ru_maxrss, and /proc/self/statm
                 sampled every 20 ms, per stream), orders stored and orders/s end to end.
                 Target: peak RSS < 300 MB, judged only at >= 1,000,000 orders.
  (c) rate use   Per platform, a fresh emulator with its DEFAULT limits (WB: Marketplace 300/min
                 burst 20, Feedbacks 3/s burst 6; Ozon: 50/s per Client-Id; Yandex Market: hourly
                 budgets per method, 4 requests in flight, answered with 420) and more data than
                 can be read in the time. The platform's order and review streams run concurrently
                 on one connector (the account's default rate budget) with the smallest pages the
                 platform takes, for `--duration` seconds, then are cancelled. Reported per rate
                 group: requests the emulator received, rate-limit answers (429, Market's 420) and
                 the share of the allowed rate used = requests / (burst + rate x elapsed) of the
                 client's budget for that group: WB's published limits; Ozon's 25/s (burst 5), the
                 half of the 50/s that ozon.md recommends leaving to the seller's other tools (the
                 share of the full 50/s is reported beside it); Market's hourly budget paced over
                 the hour (burst 10 %). Targets: 0 rate-limit answers, share >= 90 %.

Run: .venv/bin/python bench/backfill.py [--orders 1000000] [--duration 60] [--part all|backfill|rate]
         [--platforms wildberries ozon yandex_market kaspi avito megamarket]
Writes bench/results/backfill.json (the bench/_common.py contract: "rows", plus "backfill" and "rate").
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Run as `python bench/backfill.py`, this file's folder comes first on sys.path, and bench/loyalty.py
# would shadow the `loyalty` package (the migrations import it): look imports up from the root.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from pydantic import SecretStr  # noqa: E402

from bench._common import maxrss_mb, print_rows, row, write_result  # noqa: E402
from connectors.base import RateOverride  # noqa: E402
from connectors.registry import available_connectors  # noqa: E402
from connectors.wildberries.client import ENDPOINT_GROUPS  # noqa: E402
from connectors.wildberries.connector import WildberriesConnector  # noqa: E402
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings  # noqa: E402
from store import Store, connect, migrate  # noqa: E402
from store.tables import OrderRow  # noqa: E402
from sync.runner import StreamRunner  # noqa: E402

TOKEN = "bench-token-not-a-secret"
RSS_TARGET_MB = 300
RSS_TARGET_ORDERS = 1_000_000
SHARE_TARGET = 0.9
MB = 1024 * 1024
PLATFORMS = ("wildberries", "ozon", "yandex_market", "kaspi", "avito", "megamarket")
OZON_PLATFORM_RPS = 50  # ozon.md §4.1, the emulator's default
# Avito's emulator counts by API (its route groups); the client's budgets have their own names.
AVITO_GROUPS = {"order-management": "orders", "ratings": "ratings", "messenger": "messenger"}


@dataclass(frozen=True)
class RatePlan:
    """How one platform's rate-use run is set up."""

    streams: tuple[str, ...]  # run concurrently on one connector
    pages: dict  # account settings: the smallest pages, so requests are many and cheap
    data: dict  # emulator size per second of --duration (orders, reviews), at least 1,000 each
    judged: tuple[str, ...]  # the groups the streams page through; others (Market's comments and
    # buyer info, called per record that has them) follow those and are reported, not judged
    # The emulator counts requests by group (WB), by path (Ozon: one group) or by resource (Market).
    group_of: Callable[[str], str] = str  # the key is the group


RATE_PLANS = {
    "wildberries": RatePlan(("orders", "reviews"), {"orders_page_size": 10, "feedbacks_page_size": 1},
                            {"orders": 800, "reviews": 100}, ("marketplace", "feedbacks")),
    "ozon": RatePlan(("orders_fbs", "orders_fbo", "reviews"),
                     {"postings_page_size": 1, "reviews_page_size": 20, "comments_page_size": 20},
                     {"orders": 300, "reviews": 100}, ("seller_api",), group_of=lambda path: "seller_api"),
    "yandex_market": RatePlan(("orders", "reviews"), {"orders_page_size": 1, "feedbacks_page_size": 1},
                              {"orders": 200, "reviews": 100}, ("orders", "feedbacks")),
    # One route group on the emulator ("shop_api"), the client's one budget ("orders", 5/s).
    "kaspi": RatePlan(("orders",), {"page_size": 1}, {"orders": 300, "reviews": 0}, ("orders",),
                      group_of=lambda key: "orders"),
    # The emulator's route groups are Avito's API names; the client's budgets are "orders" and "ratings".
    "avito": RatePlan(("orders", "reviews"), {"orders_page_size": 1, "reviews_page_size": 1},
                      {"orders": 300, "reviews": 100}, ("orders",),
                      group_of=lambda key: AVITO_GROUPS.get(key, "account")),
    # One budget for search and get (5/s per seller); one shipment per order/get, so requests are many.
    "megamarket": RatePlan(("orders",), {"get_batch": 1}, {"orders": 300, "reviews": 0}, ("orders",),
                           group_of=lambda key: "orders"),
}


def _counters(stats) -> dict:
    """An emulator's stats object as plain JSON (Counter keys may be tuples)."""
    out = {}
    for k, v in vars(stats).items():
        if isinstance(v, dict):
            out[k] = {" ".join(map(str, key)) if isinstance(key, tuple) else str(key): n for key, n in v.items()}
        elif isinstance(v, int | float):
            out[k] = v
    return out


def _emulator_main(marketplace: str, demo: bool, config: dict, pipe) -> None:
    """Child process: serve one emulator until told to stop, then send back its counters."""
    from connectors.serve import serve_emulator

    if demo:  # the connector's own demo emulator: its default limits, its demo credentials
        app = available_connectors()[marketplace].demo(**config).app
    else:
        from connectors.wildberries.emulator import EmulatorConfig, create_app

        app = create_app(EmulatorConfig(token=TOKEN, **config))

    async def serve() -> None:
        async with serve_emulator(app) as url:
            pipe.send(url)
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"

    asyncio.run(serve())
    pipe.send({**_counters(app.state.stats), "maxrss_mb": maxrss_mb()})


@contextmanager
def emulator(marketplace: str = "wildberries", demo: bool = False, **config):
    """A spawned emulator process; yields (base URL, dict that receives its stats on exit)."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_emulator_main, args=(marketplace, demo, config, theirs), daemon=True)
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


async def rate_use(marketplace: str, url: str, store: Store, duration: float) -> dict:
    """The platform's streams concurrently on one connector with its default budget, for `duration` s."""
    cls, plan = available_connectors()[marketplace], RATE_PLANS[marketplace]
    settings = cls.demo(seed=1, orders=1, reviews=0).account(url)
    # The account's own (default) budget, not the demo's: Ozon's demo raises it to 40/s.
    settings = settings.model_copy(update={**plan.pages, "rate_limits": {}})
    store.ensure_account(marketplace, settings.name)
    runner = StreamRunner(store)
    async with cls(settings) as connector:
        started = time.monotonic()
        tasks = {s: asyncio.create_task(runner.run(connector, s)) for s in plan.streams}
        done, pending = await asyncio.wait(tasks.values(), timeout=duration)
        elapsed = time.monotonic() - started
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        http = connector.client.http.stats
    early = [s for s, t in tasks.items() if t in done]
    errors = {s: t.result().error for s, t in tasks.items() if t in done and t.result().error}
    return {"elapsed": elapsed, "finished_early": early, "errors": errors,
            "client_rate_limited": http.rate_limited,
            "client_requests": {f"{g} {s}": n for (g, s), n in http.requests.items()},
            "limiter_wait_seconds": http.limiter_wait_seconds}


def rate_groups(marketplace: str, r: dict) -> dict[str, dict]:
    """Per rate group: requests, allowed under the client's budget, share, rate-limit answers."""
    cls, plan = available_connectors()[marketplace], RATE_PLANS[marketplace]
    emu = r["emulator"]
    sent: Counter[str] = Counter()
    for key, n in emu.get("requests", {}).items():
        sent[plan.group_of(key)] += n
    limited: Counter[str] = Counter()
    for key, n in emu.get("throttled", {}).items():
        limited[plan.group_of(key)] += n
    groups = {}
    for group, n in sorted(sent.items()):
        rate = cls.rate_groups[group]
        allowed = rate.burst + rate.per_second * r["elapsed"]
        client = sum(v for k, v in r["client_requests"].items() if k.split()[0] == group
                     and k.split()[-1] in ("420", "429"))
        g = groups[group] = {"limit": f"{rate.requests}/{rate.period_seconds:g}s burst {rate.burst}",
                             "requests": n, "allowed": allowed, "share": n / allowed,
                             "emulator_rate_limited": limited[group], "client_rate_limited": client}
        if marketplace == "ozon":
            g["share_of_platform_limit"] = n / (OZON_PLATFORM_RPS * r["elapsed"])
    return groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=1_000_000, help="orders in the backfill emulator")
    ap.add_argument("--reviews", type=int, default=20_000, help="reviews in the backfill emulator")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of each platform's rate-use run")
    ap.add_argument("--part", choices=("all", "backfill", "rate"), default="all")
    ap.add_argument("--platforms", nargs="+", choices=PLATFORMS, default=list(PLATFORMS),
                    help="platforms of the rate-use run")
    ap.add_argument("--streams", nargs="+", help="backfill only these streams (default: every enabled one)")
    ap.add_argument("--dir", help="where the SQLite files go (default: the system temp dir)")
    args = ap.parse_args()
    out: dict = {}
    rows: list[dict] = []
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
            b.update(rss_before_mb=base / MB, ru_maxrss_mb=maxrss_mb(),
                     sampled_peak_mb={k: v / MB for k, v in sampler.peaks.items()}, emulator=emu,
                     db_mb=sum(p.stat().st_size for p in Path(tmp).glob("backfill.db*")) / MB)
            out["backfill"] = b
            rows += print_backfill(b, args.orders)
        if args.part in ("all", "rate"):
            out["rate"] = {}
            for marketplace in args.platforms:
                plan = RATE_PLANS[marketplace]
                size = {k: max(1_000, int(v * args.duration)) for k, v in plan.data.items()}
                with emulator(marketplace, demo=True, seed=1, **size) as (url, emu):
                    print(f"\n(c) {marketplace} emulator with default limits at {url}; running "
                          f"{' + '.join(plan.streams)} for {args.duration:g}s")
                    r = asyncio.run(rate_use(marketplace, url, new_store(tmp, f"rate-{marketplace}"),
                                             args.duration))
                r["emulator"] = emu
                r["groups"] = rate_groups(marketplace, r)
                out["rate"][marketplace] = r
                rows += print_rate(marketplace, r)
    print_rows("backfill", rows)
    write_result("backfill", vars(args), rows, **out)


def print_backfill(b: dict, orders: int) -> list[dict]:
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
    # The target is for a 1,000,000-order backfill; a smaller run only reports its figure.
    full = orders >= RSS_TARGET_ORDERS
    target = f"< {RSS_TARGET_MB} MB" if full else None
    print(f"target: peak RSS < {RSS_TARGET_MB} MB at {RSS_TARGET_ORDERS:,} orders: "
          + (("met" if peak < RSS_TARGET_MB else "NOT met") if full else f"not judged at {orders:,} orders")
          + f" ({peak:.0f} MB)")
    failed = [n for n, s in b["streams"].items() if s["state"] != "ok"]
    return [row(f"peak RSS, backfill of {orders:,} orders", peak, "MB", target, peak < RSS_TARGET_MB),
            row("backfill speed (orders stored / s, end to end)", b["orders_per_s"], "orders/s"),
            row("backfill streams that did not finish ok", len(failed), "streams", "= 0", not failed)]


def print_rate(marketplace: str, r: dict) -> list[dict]:
    print(f"\n{'group':<18}{'client budget':>24}{'requests':>10}{'allowed':>9}{'share':>8}"
          f"{'limited emu':>12}{'limited client':>15}")
    rows = []
    for group, g in r["groups"].items():
        print(f"{group:<18}{g['limit']:>24}{g['requests']:>10}{g['allowed']:>9.0f}{g['share']:>8.1%}"
              f"{g['emulator_rate_limited']:>12}{g['client_rate_limited']:>15}")
        judged = group in RATE_PLANS[marketplace].judged
        rows.append(row(f"{marketplace} {group}: share of allowed rate ({g['limit']})", 100 * g["share"], "%",
                        f">= {SHARE_TARGET:.0%}" if judged else None, g["share"] >= SHARE_TARGET))
        if "share_of_platform_limit" in g:
            print(f"{'':<18}share of Ozon's own {OZON_PLATFORM_RPS}/s: {g['share_of_platform_limit']:.1%}")
            rows.append(row(f"{marketplace} {group}: share of the platform's {OZON_PLATFORM_RPS}/s",
                            100 * g["share_of_platform_limit"], "%"))
    code = "420" if marketplace == "yandex_market" else "429"
    limited = sum(g["emulator_rate_limited"] for g in r["groups"].values())
    rows.append(row(f"{marketplace}: rate-limit answers ({code}) during the run", limited, "responses",
                    "= 0", limited == 0))
    emu = r["emulator"]
    if "max_in_flight" in emu:
        print(f"most requests in flight: {emu['max_in_flight']} (Market allows 4); "
              f"parallel-limit refusals: {emu.get('parallel_refused', 0)}")
        rows.append(row(f"{marketplace}: most requests in flight (Market allows 4)", emu["max_in_flight"], "requests"))
    print(f"elapsed {r['elapsed']:.1f}s; limiter waits {r['limiter_wait_seconds']:.1f}s"
          + (f"; finished early (share understated): {r['finished_early']}" if r["finished_early"] else "")
          + (f"; errors: {r['errors']}" if r["errors"] else ""))
    return rows


if __name__ == "__main__":
    sys.exit(main())
