"""Ingest rate: orders/s from Wildberries page bytes to committed rows, against a plain-driver floor.

Pages are pre-built (untimed) from the emulator's seeded generator as the client hands them to the
runner (Marketplace orders with `_status` attached; Statistics rows), as JSON bytes. Timed per page,
the runner's own sequence minus HTTP: orjson.loads(bytes) -> sync.runner.map_page(...) ->
Store.write_page(...), one committed transaction each. Rows of the table:

  orders (fresh)       Marketplace pages into an empty store: every row an insert;
  orders (re-read)     the same pages again: every row hits ON CONFLICT (the 14-day lookback);
  statistics (merge)   Statistics rows of the same orders, ~70 % merging into Marketplace rows;
  plain ...            the same orders and lines as ready tuples through the bare driver (sqlite3
                       `executemany`, psycopg `executemany`/COPY) into equivalent plain tables, one
                       transaction per page: the floor the store's path is compared with.

SQLite: a temporary file with the store's own pragmas (sync.store.db.SQLITE_PRAGMAS) on both
paths. PostgreSQL (127.0.0.1:5432, user postgres): a database
created and dropped here.

Run: .venv/bin/python bench/ingest.py [--orders 200000] [--no-postgres] [--dir DIR]
Target: >= 30,000 orders/s for "orders (fresh)" on SQLite. Writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from pydantic import SecretStr

from connectors.base import Connector, MappingContext, RateOverride, RecordType
from connectors.registry import available_connectors
from connectors.wildberries.connector import WildberriesConnector
from connectors.wildberries.emulator_data import generate
from connectors.wildberries.settings import WildberriesAccountSettings
from sync.runner import map_page
from sync.store import Store, connect, migrate
from sync.store.db import SQLITE_PRAGMAS
from sync.store.identity import buyer_key_hasher
from sync.store.store import StreamKey
from sync.store.tables import OrderLineRow, OrderRow
from sync.windows import plan_run

RESULTS = Path(__file__).parent / "results"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# Benchmark data has no buyer ids; a fixed salt keeps the mapping path identical to the runner's.
CTX = MappingContext("wildberries", "bench", buyer_key_hasher(b"bench-salt", "wildberries"))
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET = 30_000
ORDER_COLS = tuple(c.name for c in OrderRow.__table__.columns)  # type: ignore[attr-defined]
LINE_COLS = tuple(c.name for c in OrderLineRow.__table__.columns)  # type: ignore[attr-defined]
PLAIN_DDL = (
    "CREATE TABLE plain_orders (marketplace VARCHAR(32), account VARCHAR(64), order_id VARCHAR(128),"
    " created_at {ts}, updated_at {ts}, status VARCHAR(32), platform_status VARCHAR(128),"
    " fulfilment VARCHAR(16), buyer_key VARCHAR(64), currency VARCHAR(3), total {money},"
    " source VARCHAR(32), source_rank INTEGER, returned_total {money},"
    " PRIMARY KEY (marketplace, account, order_id))",
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


def run_store(store: Store, connector, stream: str, pages: list[bytes], ctx: MappingContext = CTX) -> dict:
    """The timed loyalsync path; returns orders, seconds and the split by phase."""
    key = StreamKey(ctx.marketplace, "bench", stream)
    parse, mapping, write, orders = 0.0, 0.0, 0.0, 0
    for body in pages:
        t0 = time.perf_counter()
        items = orjson.loads(body)
        t1 = time.perf_counter()
        page = map_page(connector, stream, items, ctx)
        t2 = time.perf_counter()
        store.write_page(key, page, now=NOW)
        t3 = time.perf_counter()
        parse, mapping, write = parse + t1 - t0, mapping + t2 - t1, write + t3 - t2
        orders += len(page.orders)
        assert not page.quarantined, page.quarantined[:1]
    return {"orders": orders, "seconds": parse + mapping + write,
            "split": {"parse": parse, "map": mapping, "write": write}}


def plain_tuples(connector, stream: str, pages: list[bytes], native: bool) -> list[tuple[list, list]]:
    """(order tuples, line tuples) per page as stored; SQLite gets text times and amounts."""
    def conv(v):
        if native:
            return v
        if isinstance(v, datetime):
            return v.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        return str(v) if type(v).__name__ == "Decimal" else v

    out = []
    for body in pages:
        orders = map_page(connector, stream, orjson.loads(body), CTX).orders
        rows = [tuple(conv(getattr(o, c) if c != "status" else o.status.value) for c in ORDER_COLS)
                for o in orders]
        lines = [(o.marketplace, o.account, o.order_id, i, ln.sku, ln.offer_id, ln.name,
                  ln.quantity, conv(ln.price), o.source_rank)
                 for o in orders for i, ln in enumerate(o.lines)]
        out.append((rows, lines))
    return out


def plain_sqlite(path: Path, batches: list[tuple[list, list]]) -> dict:
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:  # the store's own settings: the comparison is of code, not tuning
        db.execute(pragma)
    for ddl in PLAIN_DDL:
        db.execute(ddl.format(ts="DATETIME", money="VARCHAR(32)"))
    ins_o = f"INSERT INTO plain_orders VALUES ({','.join('?' * len(ORDER_COLS))})"
    ins_l = f"INSERT INTO plain_lines VALUES ({','.join('?' * len(LINE_COLS))})"
    t0 = time.perf_counter()
    for rows, lines in batches:
        db.execute("BEGIN")
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
        for page in batches:
            with db.cursor() as cur:
                for name, data in zip(("orders", "lines"), page, strict=True):
                    if not copy:
                        cur.executemany(f"INSERT INTO {prefix}{name} VALUES ({marks[name]})", data)
                        continue
                    with cur.copy(f"COPY {prefix}{name} FROM STDIN") as cp:
                        for row in data:
                            cp.write_row(row)
            db.commit()
        seconds = time.perf_counter() - t0
    return {"orders": sum(len(r) for r, _ in batches), "seconds": seconds}


def loyalsync_runs(url: str, connector, pages: dict[str, list[bytes]]) -> dict[str, dict]:
    engine = connect(url)
    migrate(engine)
    store = Store(engine)
    store.ensure_account("wildberries", "bench")
    try:
        return {
            "orders (fresh)": run_store(store, connector, "orders", pages["orders"]),
            "orders (re-read)": run_store(store, connector, "orders", pages["orders"]),
            "statistics (merge)": run_store(store, connector, "orders_statistics", pages["orders_statistics"]),
        }
    finally:
        engine.dispose()


def postgres(connector, pages: dict[str, list[bytes]], plain: list) -> dict[str, dict]:
    import psycopg

    name = f"loyalsync_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
            out = loyalsync_runs(url, connector, pages)
            out["plain executemany"] = plain_pg(url, plain, copy=False)
            out["plain COPY"] = plain_pg(url, plain, copy=True)
            return out
        finally:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


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
    async with cls(account, transport=httpx.ASGITransport(app=setup.app)) as connector:
        for name, spec in cls.streams.items():
            if spec.record_type is not RecordType.ORDER:
                continue
            for window in plan_run(account.stream_spec(spec), None, None, now).windows:
                async for page in connector.fetch(name, window):
                    # Streamed parsers hand exact Decimals; they were JSON numbers on the wire.
                    pages.setdefault(name, []).append(orjson.dumps(page.items, default=float))
    return pages


def per_connector(orders: int, seed: int, tmp: str) -> dict[str, dict]:
    """Fresh ingest of each connector's order streams into SQLite, from its emulator's pages."""
    out: dict[str, dict] = {}
    for name, cls in sorted(available_connectors().items()):
        pages = asyncio.run(capture_order_pages(cls, orders, seed))
        if not pages:
            continue
        ctx = MappingContext(name, "bench", buyer_key_hasher(b"bench-salt", name))
        connector = cls(cls.demo(seed=seed, orders=1, reviews=0).account("http://unused"))
        engine = connect(f"sqlite:///{tmp}/{name}.db")
        migrate(engine)
        store = Store(engine)
        try:
            for stream, stream_pages in pages.items():
                out[f"{name} {stream}"] = run_store(store, connector, stream, stream_pages, ctx)
        finally:
            engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=200_000)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--dir", help="where the SQLite files go (default: the system temp dir)")
    ap.add_argument("--connector-orders", type=int, default=50_000,
                    help="orders per connector for the every-connector rows")
    args = ap.parse_args()

    t0 = time.perf_counter()
    pages = build_pages(args.orders, args.page_size, args.seed)
    mb = {k: sum(map(len, v)) / 1e6 for k, v in pages.items()}
    print(f"built {len(pages['orders'])} + {len(pages['orders_statistics'])} pages ({mb['orders']:.0f} + "
          f"{mb['orders_statistics']:.0f} MB JSON) in {time.perf_counter() - t0:.1f}s")
    connector = WildberriesConnector(
        WildberriesAccountSettings(name="bench", token_env="BENCH_TOKEN", token=SecretStr("t")))
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="loyalsync-bench-", dir=args.dir) as tmp:
        results["sqlite"] = loyalsync_runs(f"sqlite:///{tmp}/store.db", connector, pages)
        sqlite_plain = plain_tuples(connector, "orders", pages["orders"], native=False)
        results["sqlite"]["plain executemany"] = plain_sqlite(Path(tmp) / "plain.db", sqlite_plain)
        results["sqlite, every connector (fresh, pages from its emulator)"] = per_connector(
            args.connector_orders, args.seed, tmp)
    if not args.no_postgres:
        try:
            plain = plain_tuples(connector, "orders", pages["orders"], native=True)
            results["postgresql"] = postgres(connector, pages, plain)
        except Exception as exc:  # noqa: BLE001 - a missing server must not hide the SQLite figures
            print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}")

    print(f"\n{'path':<30}{'orders':>9}{'seconds':>9}{'orders/s':>10}{'vs plain':>10}   parse / map / write (s)")
    for backend, rows in results.items():
        print(f"-- {backend}")
        plain = rows.get("plain executemany")
        floor = plain["orders"] / plain["seconds"] if plain else None
        for path, r in rows.items():
            r["orders_per_s"] = rate = r["orders"] / r["seconds"]
            r["vs_plain_executemany"] = rate / floor if floor else None
            split = " / ".join(f"{v:.2f}" for v in r["split"].values()) if "split" in r else ""
            ratio = f"{rate / floor:>9.2f}x" if floor else f"{'':>10}"
            print(f"{path:<30}{r['orders']:>9}{r['seconds']:>9.2f}{rate:>10,.0f}{ratio}   {split}")
    fresh = results["sqlite"]["orders (fresh)"]["orders_per_s"]
    print(f"\ntarget: orders (fresh) on SQLite >= {TARGET:,}/s: {'met' if fresh >= TARGET else 'NOT met'}"
          f" ({fresh:,.0f}/s)")
    RESULTS.mkdir(exist_ok=True)
    out = {"args": vars(args), "python": sys.version.split()[0], "target_orders_per_s": TARGET,
           "results": results}
    (RESULTS / "ingest.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
