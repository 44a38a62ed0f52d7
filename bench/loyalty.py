"""Loyalty recompute: `loyalty.ledger.run_once` over 1,000,000 stored orders on SQLite.

Untimed setup: a seeded set of orders with buyer keys (~10 orders a member on average, a skewed
spread: many one-off buyers, a few heavy ones; ~3 % of orders without a buyer key), created over the
year before NOW; statuses mostly delivered (delivered 2-9 days after creation), some cancelled and
returned, the last few days still open. Written through `Store.write_page` in pages of 10,000.

Timed:
  recompute (fresh)    `run_once(store, SETTINGS, NOW)` on an empty ledger: every entry inserted;
  re-run (idempotent)  the same call again over the same data: must write nothing.

Settings: enabled, 3 tiers on spend (365-day window), a welcome reward, every 5th order in a year,
expiry after 365 days. Peak RSS is sampled from /proc/self/statm during each timed run (and
`ru_maxrss` for the whole process, setup included).

Run: .venv/bin/python bench/loyalty.py [--orders 1000000] [--members N] [--dir DIR]
Target: a full recompute of 1,000,000 orders in under 60 s on SQLite (judged on a linear projection
when --orders is smaller). Writes bench/results/loyalty.json (the bench/_common.py contract).
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
from loyalty.ledger import LEDGER, run_once  # noqa: E402
from loyalty.rules import EveryNthReward, ExpiryPolicy, LoyaltySettings, Tier, WelcomeReward  # noqa: E402
from sync.store import PageWrite, Store, connect, migrate  # noqa: E402
from sync.store.store import StreamKey  # noqa: E402

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TARGET_SECONDS = 60.0
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


def generate(store: Store, n: int, members: int, seed: int) -> dict[str, int]:
    """Write `n` orders in pages; returns the status counts."""
    rng = random.Random(seed)
    year = 365 * 86400
    statuses: dict[str, int] = {}
    for start in range(0, n, PAGE):
        page = []
        for i in range(start, min(n, start + PAGE)):
            # Skewed: member index ~ members * u^2 gives a long tail of heavy buyers.
            buyer = None if rng.random() < 0.03 else f"b{int(members * rng.random() ** 2):07d}"
            created = NOW - timedelta(seconds=rng.randrange(year))
            age = (NOW - created).days
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
            updated = min(updated, NOW)
            total = Decimal(rng.randrange(20000, 1_500_000)) / 100
            page.append(OrderRecord(
                marketplace=MP, account=ACCOUNT, order_id=f"{rng.getrandbits(48):012x}-{i}",
                created_at=created, updated_at=updated, status=status, platform_status=status.value,
                fulfilment="fbs", currency="RUB", total=total, lines=(), buyer_key=buyer,
                source="bench", source_rank=1))
            statuses[status.value] = statuses.get(status.value, 0) + 1
        store.write_page(KEY, PageWrite(orders=page), now=NOW)
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


def timed(store: Store) -> dict:
    with RSSSampler() as rss:
        t0 = time.perf_counter()
        r = run_once(store, SETTINGS, NOW)
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
    ap.add_argument("--profile", help="write a cProfile of the fresh recompute to this file")
    args = ap.parse_args()
    members = args.members or max(1, args.orders // 10)

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
            if args.profile:
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
                results["recompute (fresh)"] = timed(store)
                prof.disable()
                prof.dump_stats(args.profile)
            else:
                results["recompute (fresh)"] = timed(store)
            results["re-run (idempotent)"] = timed(store)
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
    fresh, again = results["recompute (fresh)"], results["re-run (idempotent)"]
    if again["inserted"] or again["filled"]:
        print(f"WARNING: the re-run wrote {again['inserted']} entries and filled {again['filled']} lots")
    # Scaled to 1,000,000 orders when --orders differs (linear: one pass over orders and ledger).
    projected = fresh["seconds"] * TARGET_ORDERS / max(args.orders, 1)
    met = projected < TARGET_SECONDS
    note = "" if args.orders == TARGET_ORDERS else f" (projected from {args.orders:,} orders)"
    print(f"\ntarget: full recompute of {TARGET_ORDERS:,} orders on SQLite < {TARGET_SECONDS:.0f}s: "
          f"{'met' if met else 'NOT met'} ({projected:.1f}s{note})")
    label = "" if args.orders == TARGET_ORDERS else f" (projected linearly from {args.orders:,})"
    rows = [
        row(f"recompute of {TARGET_ORDERS:,} orders{label}", projected, "s", f"< {TARGET_SECONDS:.0f} s", met),
        row(f"recompute of {args.orders:,} orders (fresh ledger)", fresh["seconds"], "s"),
        row("recompute speed (fresh)", fresh["orders_per_s"], "orders/s"),
        row(f"re-run over the same {args.orders:,} orders", again["seconds"], "s"),
        row("re-run: entries written or lots filled", again["inserted"] + again["filled"], "entries", "= 0",
            again["inserted"] + again["filled"] == 0),
        row("peak RSS during the fresh recompute", fresh["rss_peak_mb"], "MB"),
    ]
    print_rows("loyalty", rows)
    write_result("loyalty", vars(args), rows, target_seconds=TARGET_SECONDS, statuses=statuses,
                 ledger_rows=ledger_rows, ru_maxrss_mb=maxrss, projected_seconds_1m=projected,
                 target_met=met, results=results)

if __name__ == "__main__":
    main()
