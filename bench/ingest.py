"""Ingest rate per platform: orders/s from page bytes to committed rows, against a plain-driver floor.

Pages are pre-built (untimed) in each platform's own format, as its client hands them to the runner:
  Wildberries     from the emulator's seeded generator: Marketplace orders with `_status`
                  attached (`--orders`, 1,000 a page) and the Statistics rows of the same orders;
  Ozon, Yandex Market   fetched by the connector's own client from its emulator (limits lifted,
                  `--connector-orders` orders, the platform's page size: Ozon 100 postings of
                  FBS/rFBS and FBO, Market 50 orders), kept as JSON bytes.
Timed: the daemon's own `StreamRunner.run` with only HTTP replaced (the connector's `fetch` hands
it the pages, parsed with orjson.loads as the client does): the connector's `map_record`, the
runner's batching (a commit per COMMIT_RECORDS orders of pages read back to back) and
`Store.write_pages` in the daemon's writer thread. Rows, per platform and backend:

  store ingest (records)   the same pages mapped beforehand (untimed) and written by
                       `Store.write_pages` in the runner's transactions into an empty store:
                       records to committed rows, the store's side of the comparison below;
  orders (fresh)       every order stream's pages into an empty store: every row an insert;
  orders (re-read)     the same pages again: every row hits ON CONFLICT (the lookback re-read);
  statistics (merge)   WB only: Statistics rows of the same orders, ~70 % merging into Marketplace rows;
  plain ...            the same orders and lines as ready tuples through the bare driver (sqlite3
                       `executemany`, psycopg `executemany`/COPY) into equivalent plain tables, in
                       the runner's transactions: the floor the store's path is compared with.

SQLite: a temporary file per platform with the store's own pragmas (store.db.SQLITE_PRAGMAS)
on both paths. PostgreSQL (127.0.0.1:5432, user postgres): a database per platform, created and
dropped here.

Run: .venv/bin/python bench/ingest.py [--orders 200000] [--connector-orders 50000]
     [--platforms wildberries ozon yandex_market kaspi avito megamarket] [--no-postgres] [--dir DIR]
Target: >= 30,000 orders/s for "store ingest (records)" on SQLite, every platform (see TARGET_PATH).
Writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# Run as `python bench/ingest.py`, this file's folder comes first on sys.path, and bench/loyalty.py
# would shadow the `loyalty` package (the migrations import it): look imports up from the root.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import httpx  # noqa: E402
import orjson  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from bench._common import print_rows, row, write_result  # noqa: E402
from connectors.base import Connector, MappingContext, Page, RateOverride, RecordType  # noqa: E402
from connectors.registry import available_connectors  # noqa: E402
from connectors.wildberries.connector import WildberriesConnector  # noqa: E402
from connectors.wildberries.emulator_data import generate  # noqa: E402
from connectors.wildberries.settings import WildberriesAccountSettings  # noqa: E402
from store import PageWrite, Store, connect, migrate  # noqa: E402
from store.db import SQLITE_PRAGMAS  # noqa: E402
from store.identity import buyer_key_hasher  # noqa: E402
from store.store import StreamKey  # noqa: E402
from store.tables import OrderLineRow, OrderRow  # noqa: E402
from sync.runner import COMMIT_RECORDS, StreamRunner, map_page  # noqa: E402
from sync.windows import plan_run  # noqa: E402

PLATFORMS = ("wildberries", "ozon", "yandex_market", "kaspi", "avito", "megamarket")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# A fixed salt keeps the mapping path identical to the runner's (buyer ids are hashed as there).
CTX = MappingContext("wildberries", "bench", buyer_key_hasher(b"bench-salt", "wildberries"))
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET = 30_000
# The issue compares ingest with "the raw driver's bulk insert of the same rows": the like-for-like
# path is the store's, from records to committed rows. The daemon's path from page bytes (parse and
# map included) is printed beside it.
TARGET_PATH = "store ingest (records)"
ORDER_COLS = tuple(c.name for c in OrderRow.__table__.columns)  # type: ignore[attr-defined]
LINE_COLS = tuple(c.name for c in OrderLineRow.__table__.columns)  # type: ignore[attr-defined]
PLAIN_DDL = (
    "CREATE TABLE plain_orders (marketplace VARCHAR(32), account VARCHAR(64), order_id VARCHAR(128),"
    " created_at {ts}, updated_at {ts}, status VARCHAR(32), platform_status VARCHAR(128),"
    " fulfilment VARCHAR(16), buyer_key VARCHAR(64), currency VARCHAR(3), total {money},"
    " source VARCHAR(32), source_rank INTEGER, returned_total {money}, status_changed_at {ts},"
    " delivered_at {ts}, changed_at {ts}, PRIMARY KEY (marketplace, account, order_id))",
    "CREATE INDEX ix_plain_created ON plain_orders (marketplace, account, created_at)",
    "CREATE INDEX ix_plain_buyer ON plain_orders (buyer_key)",
    "CREATE TABLE plain_lines (marketplace VARCHAR(32), account VARCHAR(64), order_id VARCHAR(128),"
    " line_no INTEGER, sku VARCHAR(128), offer_id VARCHAR(256), name TEXT, quantity INTEGER,"
    " price {money}, source_rank INTEGER, PRIMARY KEY (marketplace, account, order_id, line_no))",
)


def build_pages(n: int, size: int, seed: int) -> dict[str, list[bytes]]:
    """JSON pages of `n` Marketplace orders (with `_status`) and `n` Statistics rows."""
    now = int(NOW.timestamp())
    table = generate(seed, int(n / 0.68) + 1000, 0, 60, now).orders  # ~30 % are FBO
    fbs = [i for i in range(len(table)) if not table.fbo[i]][:n]
    if len(fbs) < n:
        sys.exit(f"generated only {len(fbs)} FBS orders")

    def marketplace(i: int) -> dict:
        order = table.marketplace_order(i, now)
        supplier, wb = table.status(i, now)
        order["_status"] = {"supplierStatus": supplier, "wbStatus": wb}
        return order

    return {
        "orders": [orjson.dumps([marketplace(i) for i in fbs[k:k + size]]) for k in range(0, n, size)],
        "orders_statistics": [orjson.dumps([table.statistics_row(i, now) for i in range(k, min(n, k + size))])
                              for k in range(0, n, size)],
    }


class _TimedStore(Store):
    """The store, timing its commits (`write`) for the phase split."""

    def __init__(self, store: Store):
        super().__init__(store.engine, salt=b"bench-salt")  # buyer ids hashed as in the daemon
        self.seconds = 0.0

    def write_pages(self, key, pages, **options) -> None:
        t0 = time.perf_counter()
        super().write_pages(key, pages, **options)
        self.seconds += time.perf_counter() - t0


def run_store(store: Store, connector, stream: str, pages: list[bytes], ctx: MappingContext = CTX) -> dict:
    """The daemon's own path minus HTTP: `StreamRunner.run` over the pages, parsed as they come.

    The connector's `fetch` is replaced by one that parses the pre-built JSON pages (the client's
    `orjson.loads`) on its first window and yields nothing after; the runner maps, batches and
    commits them as in the daemon (`write_in_thread`, `COMMIT_RECORDS`). Returns orders, seconds
    and the split by phase (`map` is the rest: mapping, batching, the runner's own work).
    """
    timed = _TimedStore(store)
    parse = 0.0
    left = [pages]

    async def replay(name: str, window) -> AsyncIterator[Page]:
        nonlocal parse
        for body in left.pop() if left else ():
            t0 = time.perf_counter()
            items = orjson.loads(body)
            parse += time.perf_counter() - t0
            yield Page(items=items)

    connector.fetch = replay
    runner = StreamRunner(timed, clock=lambda: NOW)
    t0 = time.perf_counter()
    result = asyncio.run(runner.run(connector, stream))
    seconds = time.perf_counter() - t0
    del connector.fetch
    assert result.ok and not result.quarantined, result.error
    return {"orders": result.records, "seconds": seconds,
            "split": {"parse": parse, "map": seconds - parse - timed.seconds, "write": timed.seconds}}


def plain_tuples(connector, ctx: MappingContext, pages: dict[str, list[bytes]],
                 native: bool) -> list[tuple[list, list]]:
    """(order tuples, line tuples) per page as stored; SQLite gets text times and amounts.

    Every order stream's pages, mapped by the platform's own `map_record`; an order met again (a
    window overlap) is left out, as the plain tables have no upsert.
    """
    def conv(v):
        if native:
            return v
        if isinstance(v, datetime):
            return v.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        return str(v) if type(v).__name__ == "Decimal" else v

    out, seen = [], set()
    for stream, bodies in pages.items():
        for body in bodies:
            orders = [o for o in map_page(connector, stream, orjson.loads(body), ctx).orders
                      if o.order_id not in seen]
            seen.update(o.order_id for o in orders)
            rows = [tuple(conv(_column(o, c)) for c in ORDER_COLS) for o in orders]
            lines = [(o.marketplace, o.account, o.order_id, i, ln.sku, ln.offer_id, ln.name,
                      ln.quantity, conv(ln.price), o.source_rank)
                     for o in orders for i, ln in enumerate(o.lines)]
            out.append((rows, lines))
    return out


def _column(order, name: str):
    """An order record's value for the column `name`, as the store fills it."""
    if name == "status":
        return order.status.value
    if name == "status_changed_at":  # the platform's time, else the write's `now`
        return order.status_changed_at or NOW
    if name == "delivered_at":  # a new row: its status time when it is delivered (store.upsert)
        delivered = order.status.value in ("delivered", "partially_returned")
        return (order.status_changed_at or NOW) if delivered else None
    if name == "changed_at":  # the write's wall time
        return NOW
    return getattr(order, name)


def transactions(batches: list[tuple[list, list]]) -> Iterator[list[tuple[list, list]]]:
    """Pages grouped as the runner commits them: a transaction closes at COMMIT_RECORDS orders."""
    group: list[tuple[list, list]] = []
    orders = 0
    for page in batches:
        group.append(page)
        orders += len(page[0])
        if orders >= COMMIT_RECORDS:
            yield group
            group, orders = [], 0
    if group:
        yield group


def plain_sqlite(path: Path, batches: list[tuple[list, list]]) -> dict:
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:  # the store's own settings: the comparison is of code, not tuning
        db.execute(pragma)
    for ddl in PLAIN_DDL:
        db.execute(ddl.format(ts="DATETIME", money="VARCHAR(32)"))
    ins_o = f"INSERT INTO plain_orders ({', '.join(ORDER_COLS)}) VALUES ({','.join('?' * len(ORDER_COLS))})"
    ins_l = f"INSERT INTO plain_lines VALUES ({','.join('?' * len(LINE_COLS))})"
    t0 = time.perf_counter()
    for group in transactions(batches):
        db.execute("BEGIN")
        for rows, lines in group:
            db.executemany(ins_o, rows)
            db.executemany(ins_l, lines)
        db.execute("COMMIT")
    seconds = time.perf_counter() - t0
    db.close()
    return {"orders": sum(len(r) for r, _ in batches), "seconds": seconds}


def plain_pg(url: str, batches: list[tuple[list, list]], copy: bool) -> dict:
    import psycopg

    prefix = "copy_" if copy else "plain_"
    marks = {"orders": ",".join(["%s"] * len(ORDER_COLS)), "lines": ",".join(["%s"] * len(LINE_COLS))}
    with psycopg.connect(url) as db:
        for ddl in PLAIN_DDL:
            db.execute(ddl.replace("plain_", prefix).format(ts="TIMESTAMPTZ", money="NUMERIC(20, 4)"))
        db.commit()
        t0 = time.perf_counter()
        for group in transactions(batches):
            with db.cursor() as cur:
                for page in group:
                    for name, data in zip(("orders", "lines"), page, strict=True):
                        if not data:
                            continue
                        if not copy:
                            cur.executemany(f"INSERT INTO {prefix}{name} VALUES ({marks[name]})", data)
                            continue
                        with cur.copy(f"COPY {prefix}{name} FROM STDIN") as cp:
                            for row in data:
                                cp.write_row(row)
            db.commit()
        seconds = time.perf_counter() - t0
    return {"orders": sum(len(r) for r, _ in batches), "seconds": seconds}


def run_streams(store: Store, connector, ctx: MappingContext, pages: dict[str, list[bytes]]) -> dict:
    """`run_store` over every order stream of a platform, added up."""
    parts = [run_store(store, connector, stream, bodies, ctx) for stream, bodies in pages.items()]
    split = {k: sum(p["split"][k] for p in parts) for k in ("parse", "map", "write")}
    return {"orders": sum(p["orders"] for p in parts), "seconds": sum(p["seconds"] for p in parts),
            "split": split, "streams": list(pages)}


def store_ingest(url: str, p: Platform) -> dict:
    """Records to committed rows in an empty store: `Store.write_pages` over the pages, mapped
    beforehand (untimed), in the runner's transactions: what the plain paths do with the same rows."""
    engine = connect(url)
    migrate(engine)
    store = Store(engine)
    orders, seconds = 0, 0.0
    try:
        for stream, bodies in p.orders.items():
            key = StreamKey(p.name, "bench", stream)
            pages = [map_page(p.connector, stream, orjson.loads(body), p.ctx) for body in bodies]
            for group in transactions([(page.orders, ()) for page in pages]):
                writes = [PageWrite(orders=page_orders) for page_orders, _ in group]
                t0 = time.perf_counter()
                store.write_pages(key, writes, now=NOW)
                seconds += time.perf_counter() - t0
                orders += sum(len(w.orders) for w in writes)
    finally:
        engine.dispose()
    return {"orders": orders, "seconds": seconds}


def loyalsync_runs(url: str, p: Platform) -> dict[str, dict]:
    """The daemon's path from page bytes: fresh, re-read, and (WB) the Statistics merge."""
    engine = connect(url)
    migrate(engine)
    store = Store(engine)
    store.ensure_account(p.name, "bench")
    try:
        out = {"orders (fresh)": run_streams(store, p.connector, p.ctx, p.orders),
               "orders (re-read)": run_streams(store, p.connector, p.ctx, p.orders)}
        if p.statistics:
            out["statistics (merge)"] = run_store(store, p.connector, "orders_statistics", p.statistics, p.ctx)
        return out
    finally:
        engine.dispose()


@contextmanager
def pg_database() -> Iterator[str]:
    """A database of its own on the local server, dropped afterwards."""
    import psycopg

    name = f"loyalsync_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def postgres(p: Platform) -> dict[str, dict]:
    """The store's paths and the bare driver, each in a database created (and dropped) for it."""
    with pg_database() as url:
        out = {"store ingest (records)": store_ingest(url, p)}
    with pg_database() as url:
        out.update(loyalsync_runs(url, p))
        plain = plain_tuples(p.connector, p.ctx, p.orders, native=True)
        out["plain executemany"] = plain_pg(url, plain, copy=False)
        out["plain COPY"] = plain_pg(url, plain, copy=True)
    return out


def sqlite(p: Platform, tmp: str) -> dict[str, dict]:
    out = {"store ingest (records)": store_ingest(f"sqlite:///{tmp}/{p.name}-records.db", p)}
    out.update(loyalsync_runs(f"sqlite:///{tmp}/{p.name}.db", p))
    plain = plain_tuples(p.connector, p.ctx, p.orders, native=False)
    out["plain executemany"] = plain_sqlite(Path(tmp) / f"{p.name}-plain.db", plain)
    return out


async def capture_order_pages(cls: type[Connector], orders: int, seed: int) -> dict[str, list[bytes]]:
    """Raw order pages of every order stream, fetched by the connector's own client from its
    emulator (limits lifted) and kept as JSON bytes: any connector, untimed."""
    setup = cls.demo(seed=seed, orders=orders, reviews=0, rate_limits=False)
    if setup is None:
        return {}
    unlimited = RateOverride(requests=10**9, period_seconds=1, burst=10**9)
    account = setup.account("http://emulator")
    account = account.model_copy(update={"rate_limits": dict.fromkeys(cls.rate_groups, unlimited)})
    now = datetime.now(UTC)
    pages: dict[str, list[bytes]] = {}
    seen: set[str] = set()
    async with cls(account, transport=httpx.ASGITransport(app=setup.app)) as connector:
        for name, spec in cls.streams.items():
            if spec.record_type is not RecordType.ORDER:
                continue
            for window in plan_run(account.stream_spec(spec), None, None, now).windows:
                async for page in connector.fetch(name, window):
                    # An order met again (Ozon reads FBS windows by creation AND by status change)
                    # is dropped, so "fresh" is all inserts and matches the plain path row for row.
                    items = [r for r in page.items if connector.record_key(name, r) not in seen]
                    seen.update(connector.record_key(name, r) for r in items)
                    if items:
                        # Streamed parsers hand exact Decimals; they were JSON numbers on the wire.
                        pages.setdefault(name, []).append(orjson.dumps(items, default=float))
    return pages


@dataclass
class Platform:
    """One platform's pre-built pages and the connector that maps them."""

    name: str
    connector: Connector
    ctx: MappingContext
    orders: dict[str, list[bytes]]  # order stream -> JSON pages
    statistics: list[bytes] | None = None  # WB only: Statistics rows of the same orders


def platform(name: str, args: argparse.Namespace) -> Platform | None:
    """Build (untimed) a platform's pages: WB from its generator, the others from their emulator."""
    ctx = MappingContext(name, "bench", buyer_key_hasher(b"bench-salt", name))
    if name == "wildberries":
        pages = build_pages(args.orders, args.page_size, args.seed)
        connector = WildberriesConnector(
            WildberriesAccountSettings(name="bench", token_env="BENCH_TOKEN", token=SecretStr("t")))
        return Platform(name, connector, ctx, {"orders": pages["orders"]}, pages["orders_statistics"])
    cls = available_connectors().get(name)
    if cls is None:
        return None
    pages = asyncio.run(capture_order_pages(cls, args.connector_orders, args.seed))
    if not pages:
        return None
    connector = cls(cls.demo(seed=args.seed, orders=1, reviews=0).account("http://unused"))
    return Platform(name, connector, ctx, pages)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=200_000, help="Wildberries orders (its own generator)")
    ap.add_argument("--connector-orders", type=int, default=50_000,
                    help="orders in the Ozon and Yandex Market emulators (pages fetched from them)")
    ap.add_argument("--page-size", type=int, default=1000, help="Wildberries page size")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--platforms", nargs="+", default=list(PLATFORMS), choices=PLATFORMS)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--dir", help="where the SQLite files go (default: the system temp dir)")
    args = ap.parse_args()

    results: dict[str, dict[str, dict[str, dict]]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="loyalsync-bench-", dir=args.dir) as tmp:
        for name in args.platforms:
            t0 = time.perf_counter()
            p = platform(name, args)
            if p is None:
                notes.append(f"{name}: no connector or emulator installed; skipped")
                continue
            mb = sum(map(len, (b for v in p.orders.values() for b in v))) / 1e6
            print(f"{name}: built {sum(map(len, p.orders.values()))} order pages ({mb:.0f} MB JSON) "
                  f"in {time.perf_counter() - t0:.1f}s (untimed)")
            results[name] = {"sqlite": sqlite(p, tmp)}
            if not args.no_postgres:
                try:
                    results[name]["postgresql"] = postgres(p)
                except Exception as exc:  # noqa: BLE001 - a missing server must not hide the SQLite figures
                    notes.append(f"{name}: PostgreSQL skipped: {type(exc).__name__}: {exc}")
                    print(notes[-1])
            del p

    rows = []
    print(f"\n{'path':<30}{'orders':>9}{'seconds':>9}{'orders/s':>10}{'vs plain':>10}   parse / map / write (s)")
    for name, backends in results.items():
        for backend, paths in backends.items():
            print(f"-- {name}, {backend}")
            plain = paths.get("plain executemany")
            floor = plain["orders"] / plain["seconds"] if plain else None
            for path, r in paths.items():
                r["orders_per_s"] = rate = r["orders"] / r["seconds"] if r["seconds"] else 0.0
                r["vs_plain_executemany"] = rate / floor if floor else None
                split = " / ".join(f"{v:.2f}" for v in r["split"].values()) if "split" in r else ""
                ratio = f"{rate / floor:>9.2f}x" if floor else f"{'':>10}"
                print(f"{path:<30}{r['orders']:>9}{r['seconds']:>9.2f}{rate:>10,.0f}{ratio}   {split}")
                target = f">= {TARGET:,}" if backend == "sqlite" and path == TARGET_PATH else None
                label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[backend]
                rows.append(row(f"{name} {label}: {path}", rate, "orders/s", target,
                                target is not None and rate >= TARGET))
    for note in notes:
        print(note)
    print_rows("ingest", rows)
    write_result("ingest", vars(args), rows, target_orders_per_s=TARGET, notes=notes, results=results)


if __name__ == "__main__":
    main()
