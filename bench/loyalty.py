"""Loyalty ledger job over 1,000,000 stored orders on SQLite: the full rebuild and the incremental run.

Untimed setup: a seeded set of orders with buyer keys (~10 orders a member on average, a skewed
spread: many one-off buyers, a few heavy ones; ~3 % of orders without a buyer key), created over the
year before NOW; statuses mostly delivered (delivered 2-9 days after creation), some cancelled and
returned, the last few days still open. Written through `Store.write_page` in pages of 10,000.

Timed:
  rebuild, one process  `run_changed(…, full=True)` (what `loyalsync rebuild` runs) on an empty
                        ledger in this process only (LOYALSYNC_LOYALTY_WORKERS=1); the ledger is
                        emptied again after it;
  rebuild (fresh)       the same with the default worker processes (loyalty/parallel.py: one per
                        CPU, up to 8): every member, every entry inserted;
  full re-run           `run_once` over every member again, same data: must write nothing (what the
                        ten-minute job cost before it became incremental);
  incremental (+1 %)    1 % new orders written (untimed; new buyers and existing ones), then the
                        daemon's job, `run_changed` ten minutes later: only members with something new
                        (orders not settled yet earn nothing and wake no member);
  when they settle      the job two days later, when those orders settle: it wakes their members
                        (and those with lots that became available or expired) and replans each
                        member's whole history, so it costs what those members own, not what is new.

Settings: enabled, 3 tiers on spend (365-day window), a welcome reward, every 5th order in a year,
expiry after 365 days. Peak RSS is sampled from /proc/self/statm during each timed run (and
`ru_maxrss` for the whole process, setup included).

Run: .venv/bin/python bench/loyalty.py [--orders 1000000] [--members N] [--dir DIR]
Targets (docs: issue 16): the full rebuild of 1,000,000 orders < 30 s on SQLite (a smaller --orders
is projected linearly, and says so); the incremental run after 1 % new orders < 2 s and ≤ 5 % of the
full rebuild measured in the same run. Writes bench/results/loyalty.json (bench/_common.py).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

# Run as `python bench/loyalty.py`, this file's folder comes first on sys.path and its name would
# shadow the `loyalty` package: look up imports from the project root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from bench._common import print_rows, row, write_result  # noqa: E402
from connectors.records import OrderRecord, OrderStatus  # noqa: E402
from loyalty.engine import SETTLE_DELAY  # noqa: E402
from loyalty.incremental import ORDERS, STATE, run_changed  # noqa: E402
from loyalty.ledger import LEDGER, RunResult, run_once  # noqa: E402
from loyalty.ledger_rows import DUE  # noqa: E402
from loyalty.rules import EveryNthReward, ExpiryPolicy, LoyaltySettings, Tier, WelcomeReward  # noqa: E402
from store import PageWrite, Store, connect, migrate  # noqa: E402
from store.store import StreamKey  # noqa: E402

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TARGET_SECONDS = 30.0
TARGET_INCREMENTAL_SECONDS = 2.0
TARGET_INCREMENTAL_SHARE = 0.05
NEW_SHARE = 0.01
TARGET_ORDERS = 1_000_000
MP, ACCOUNT = "ozon", "bench"
KEY = StreamKey(MP, ACCOUNT, "orders")
SETTINGS = LoyaltySettings(
    enabled=True,
    earn_rate=Decimal("0.03"),
    tiers=(Tier(name="bronze", min_spend=Decimal(0), earn_rate=Decimal("0.03")),
           Tier(name="silver", min_spend=Decimal(20000), earn_rate=Decimal("0.05")),
           Tier(name="gold", min_spend=Decimal(80000), earn_rate=Decimal("0.07"))),
    welcome=WelcomeReward(points=Decimal(100)),
    every_nth=EveryNthReward(n=5, points=Decimal(250)),
    expiry=ExpiryPolicy(policy="after_days", days=365),
)
PAGE = 10_000


def generate(store: Store, n: int, members: int, seed: int, *, first: int = 0, now: datetime = NOW,
             span_days: int = 365) -> dict[str, int]:
    """Write `n` orders (ids from `first`) created over the `span_days` before `now`, in pages; returns
    the status counts."""
    rng = random.Random(seed)
    year = span_days * 86400
    statuses: dict[str, int] = {}
    # Buyer keys as the store makes them (an HMAC of the platform's buyer id): spread at random
    # over the key space, so heavy and light buyers are mixed in every run's key-ordered chunk.
    hasher, keys = store.buyer_key_hasher(MP), {}
    for start in range(first, first + n, PAGE):
        page = []
        for i in range(start, min(first + n, start + PAGE)):
            # Skewed: member index ~ members * u^2 gives a long tail of heavy buyers.
            index = None if rng.random() < 0.03 else int(members * rng.random() ** 2)
            buyer = None if index is None else keys.get(index) or keys.setdefault(index, hasher(f"buyer-{index}"))
            created = now - timedelta(seconds=rng.randrange(year))
            age = (now - created).days
            r = rng.random()
            if age < 3:
                status = OrderStatus.CREATED if r < 0.5 else OrderStatus.IN_DELIVERY
            elif r < 0.08:
                status = OrderStatus.CANCELLED
            elif r < 0.13 and age > 10:
                status = OrderStatus.RETURNED
            elif age < 10 and r < 0.3:
                status = OrderStatus.IN_DELIVERY
            else:
                status = OrderStatus.DELIVERED
            updated = created + timedelta(hours=rng.randrange(1, 24 * min(age, 9) + 2))
            if status is OrderStatus.CANCELLED:
                updated = created + timedelta(hours=rng.randrange(1, 24))
            updated = min(updated, now)
            total = Decimal(rng.randrange(20000, 1_500_000)) / 100
            page.append(OrderRecord(
                marketplace=MP, account=ACCOUNT, order_id=f"{rng.getrandbits(48):012x}-{i}",
                created_at=created, updated_at=updated, status=status, platform_status=status.value,
                fulfilment="fbs", currency="RUB", total=total, lines=(), buyer_key=buyer,
                source="bench", source_rank=1))
            statuses[status.value] = statuses.get(status.value, 0) + 1
        store.write_page(KEY, PageWrite(orders=page), now=now)
    return statuses


class RSSSampler:
    """Peak resident set size of this process (MB), sampled from /proc/self/statm."""

    def __init__(self, every: float = 0.05):
        self.every, self.peak, self._stop = every, 0.0, threading.Event()
        self._page = resource.getpagesize()

    def _rss(self) -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page / 1e6

    def __enter__(self) -> RSSSampler:
        self.start = self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def timed(call) -> dict:
    with RSSSampler() as rss:
        t0 = time.perf_counter()
        r: RunResult = call()
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "members": r.members, "orders": r.orders, "inserted": r.inserted,
            "filled": r.filled, "late": r.late, "no_identity": r.no_identity,
            "members_per_s": r.members / seconds, "orders_per_s": r.orders / seconds,
            "rss_start_mb": rss.start, "rss_peak_mb": rss.peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=TARGET_ORDERS)
    ap.add_argument("--members", type=int, help="distinct buyers (default: orders / 10)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", help="where the SQLite file goes (default: the system temp dir)")
    ap.add_argument("--profile", help="write a cProfile of the full rebuild to this file")
    args = ap.parse_args()
    members = args.members or max(1, args.orders // 10)
    if args.dir is not None and not Path(args.dir).is_dir():
        ap.error(f"--dir {args.dir}: no such directory (create it, or leave --dir out for the temp dir)")

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="loyalsync-bench-", dir=args.dir) as tmp:
        engine = connect(f"sqlite:///{tmp}/store.db")
        migrate(engine)
        store = Store(engine, salt=b"bench-salt")
        store.ensure_account(MP, ACCOUNT)
        t0 = time.perf_counter()
        statuses = generate(store, args.orders, members, args.seed)
        print(f"wrote {args.orders:,} orders (~{members:,} buyers; {statuses}) in "
              f"{time.perf_counter() - t0:.1f}s (untimed)")
        try:
            def rebuild() -> RunResult:
                return run_changed(store, SETTINGS, NOW, full=True).run

            # The same rebuild in one process (LOYALSYNC_LOYALTY_WORKERS=1), for the ratio; then the
            # ledger is emptied again for the timed rebuild with the default worker processes.
            import os

            from loyalty.parallel import WORKERS_ENV, workers_for

            os.environ[WORKERS_ENV] = "1"
            results["rebuild, one process"] = timed(rebuild)
            del os.environ[WORKERS_ENV]
            with engine.begin() as conn:
                conn.execute(LEDGER.delete())
                conn.execute(DUE.delete())
                conn.execute(STATE.delete())
            workers = workers_for(engine, results["rebuild, one process"]["members"])
            if args.profile:
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
                results["rebuild (fresh)"] = timed(rebuild)
                prof.disable()
                prof.dump_stats(args.profile)
            else:
                results["rebuild (fresh)"] = timed(rebuild)
            results["full re-run"] = timed(lambda: run_once(store, SETTINGS, NOW))
            # The history was synced long before the last run's newest write: outside the job's
            # re-read margin (loyalty.incremental.CHANGE_MARGIN), as on a store running a while.
            # (The setup wrote it all seconds ago, wall time.)
            synced, newest = NOW - timedelta(days=1), NOW - timedelta(hours=1)
            with engine.begin() as conn:
                conn.execute(ORDERS.update().values(changed_at=synced))
                conn.execute(STATE.update().where(STATE.c.name == "ledger.orders_changed").values(at=newest))
            # 1 % new orders from the last ten minutes' syncs (new and returning buyers), then the job.
            later = NOW + timedelta(minutes=10)
            added = max(1, int(args.orders * NEW_SHARE))
            generate(store, added, members + added // 2, args.seed + 1, first=args.orders, now=later, span_days=1)
            results["incremental (+1 %)"] = timed(lambda: run_changed(store, SETTINGS, later).run)
            # The same orders earn only once settled (loyalty.engine.SETTLE_DELAY): the job that runs
            # then wakes their members (and those whose lots became available or expired meanwhile).
            settled = later + SETTLE_DELAY + timedelta(minutes=10)
            results["when they settle"] = timed(lambda: run_changed(store, SETTINGS, settled).run)
            with engine.connect() as conn:
                from sqlalchemy import func, select

                ledger_rows = conn.execute(select(func.count()).select_from(LEDGER)).scalar_one()
        finally:
            engine.dispose()

    print(f"\n{'run':<22}{'seconds':>9}{'members':>10}{'members/s':>11}{'orders':>10}{'orders/s':>10}"
          f"{'written':>10}{'filled':>8}{'peak RSS MB':>13}")
    for name, r in results.items():
        print(f"{name:<22}{r['seconds']:>9.2f}{r['members']:>10,}{r['members_per_s']:>11,.0f}"
              f"{r['orders']:>10,}{r['orders_per_s']:>10,.0f}{r['inserted']:>10,}{r['filled']:>8,}"
              f"{r['rss_peak_mb']:>13,.0f}")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ledger rows: {ledger_rows:,}; ru_maxrss (whole process, setup included): {maxrss:,.0f} MB")
    fresh, again, incr = results["rebuild (fresh)"], results["full re-run"], results["incremental (+1 %)"]
    settle, one = results["when they settle"], results["rebuild, one process"]
    if again["inserted"] or again["filled"]:
        print(f"WARNING: the re-run wrote {again['inserted']} entries and filled {again['filled']} lots")
    # Scaled to 1,000,000 orders when --orders differs (linear: one pass over orders and ledger).
    scale = TARGET_ORDERS / max(args.orders, 1)
    projected = fresh["seconds"] * scale
    met = projected < TARGET_SECONDS
    share = incr["seconds"] / fresh["seconds"]
    incr_projected = incr["seconds"] * scale
    incr_met = incr_projected < TARGET_INCREMENTAL_SECONDS and share <= TARGET_INCREMENTAL_SHARE
    note = "" if args.orders == TARGET_ORDERS else f" (projected from {args.orders:,} orders)"
    print(f"\ntarget: full rebuild of {TARGET_ORDERS:,} orders on SQLite < {TARGET_SECONDS:.0f}s: "
          f"{'met' if met else 'NOT met'} ({projected:.1f}s{note})")
    print(f"target: incremental run after 1 % new orders < {TARGET_INCREMENTAL_SECONDS:.0f}s and "
          f"<= {TARGET_INCREMENTAL_SHARE:.0%} of the rebuild: {'met' if incr_met else 'NOT met'} "
          f"({incr_projected:.2f}s{note}, {share:.1%} of the rebuild)")
    label = "" if args.orders == TARGET_ORDERS else f" (projected linearly from {args.orders:,})"
    rows = [
        row(f"full rebuild of {TARGET_ORDERS:,} orders{label}", projected, "s", f"< {TARGET_SECONDS:.0f} s", met),
        row(f"full rebuild of {args.orders:,} orders (fresh ledger, {workers} workers)", fresh["seconds"], "s"),
        row(f"the same rebuild in one process{label}", one["seconds"] * scale, "s"),
        row("rebuild in workers / in one process (same run)", fresh["seconds"] / one["seconds"] * 100, "%"),
        row("full rebuild speed", fresh["orders_per_s"], "orders/s"),
        row(f"full re-run over the same {args.orders:,} orders", again["seconds"], "s"),
        row("full re-run: entries written or lots filled", again["inserted"] + again["filled"], "entries", "= 0",
            again["inserted"] + again["filled"] == 0),
        row(f"incremental run after 1 % new orders{label}", incr_projected, "s",
            f"< {TARGET_INCREMENTAL_SECONDS:.0f} s", incr_projected < TARGET_INCREMENTAL_SECONDS),
        row("incremental run / full rebuild (same run)", share * 100, "%", f"<= {TARGET_INCREMENTAL_SHARE:.0%}",
            share <= TARGET_INCREMENTAL_SHARE),
        row("incremental run: members read", incr["members"], "members"),
        row(f"run when those orders settle, 2 days later{label}", settle["seconds"] * scale, "s"),
        row("run when they settle / full rebuild (same run)", settle["seconds"] / fresh["seconds"] * 100, "%"),
        row("run when they settle: members read", settle["members"], "members"),
        row("peak RSS during the full rebuild", fresh["rss_peak_mb"], "MB"),
        row("peak RSS during the incremental run", incr["rss_peak_mb"], "MB"),
    ]
    print_rows("loyalty", rows)
    write_result("loyalty", vars(args), rows, target_seconds=TARGET_SECONDS, statuses=statuses,
                 ledger_rows=ledger_rows, ru_maxrss_mb=maxrss, projected_seconds_1m=projected,
                 target_met=met and incr_met, results=results)

if __name__ == "__main__":
    main()
