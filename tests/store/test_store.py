"""The store on SQLite and on the local PostgreSQL: upserts, the cross-API merge, atomic cursors."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from connectors.records import OrderLine, OrderRecord, OrderStatus, ReviewRecord
from store import PageWrite, Store, connect, migrate
from store.store import Quarantined, StreamKey
from store.tables import OrderLineRow, OrderRow
from tests.store.conftest import migrate_to

T0 = datetime(2026, 8, 18, 9, 41, 27, tzinfo=UTC)
KEY = StreamKey("wildberries", "main", "orders")


def order(order_id: str = "rid-1", *, status=OrderStatus.CREATED, rank: int = 2, total: str = "1429.00",
          updated: datetime = T0, fulfilment: str | None = "fbs", source: str = "marketplace") -> OrderRecord:
    price = Decimal(total)
    return OrderRecord(
        marketplace="wildberries", account="main", order_id=order_id, created_at=T0, updated_at=updated,
        status=status, platform_status=f"{status.value}-raw", fulfilment=fulfilment, currency="RUB",
        total=price, lines=(OrderLine("245178903", "mug", None, 1, price),), source=source, source_rank=rank,
    )


def review(review_id: str = "Qm7L", *, answered: bool = False) -> ReviewRecord:
    return ReviewRecord(
        marketplace="wildberries", account="main", review_id=review_id, sku="245178903", rating=4,
        text="ok", pros="", cons="", created_at=T0, answered=answered,
        answer_text="Спасибо!" if answered else None,
    )


def test_migrations_create_every_table_and_are_idempotent(store: Store):
    migrate(store.engine)  # a second start must not fail or change anything
    tables = set(inspect(store.engine).get_table_names())
    assert {"orders", "order_lines", "reviews", "stream_cursors", "quarantine", "accounts", "meta",
            "alembic_version"} <= tables


def test_money_and_time_round_trip_exactly(store: Store):
    store.write_page(KEY, PageWrite(orders=[order(total="1248.32")]), now=T0)
    [row] = list(store.iter_orders())
    assert row["total"] == Decimal("1248.32") and isinstance(row["total"], Decimal)
    assert row["created_at"] == T0 and row["created_at"].tzinfo is not None
    assert row["lines"][0]["price"] == Decimal("1248.32")


def test_naive_datetimes_are_refused(store: Store):
    naive = replace(order(), created_at=T0.replace(tzinfo=None))
    with pytest.raises(Exception, match="naive datetime"):
        store.write_page(KEY, PageWrite(orders=[naive]), now=T0)


def test_upsert_on_natural_key_never_duplicates(store: Store):
    for _ in range(3):
        store.write_page(KEY, PageWrite(orders=[order("a"), order("b")], reviews=[review()]), now=T0)
    assert store.count(OrderRow) == 2 and store.count(OrderLineRow) == 2
    assert len(list(store.iter_reviews())) == 1


def test_other_accounts_keep_their_own_rows(store: Store):
    store.write_page(KEY, PageWrite(orders=[order("same-id")]), now=T0)
    other = replace(order("same-id", total="1.00"), account="second")
    store.write_page(StreamKey("wildberries", "second", "orders"), PageWrite(orders=[other]), now=T0)
    totals = {r["account"]: r["total"] for r in store.iter_orders()}
    assert totals == {"main": Decimal("1429.00"), "second": Decimal("1.00")}


def test_lower_ranked_source_fills_gaps_but_does_not_override(store: Store):
    store.write_page(KEY, PageWrite(orders=[order(status=OrderStatus.DELIVERED, fulfilment=None)]), now=T0)
    stats = order(status=OrderStatus.CREATED, rank=1, total="1000.00", fulfilment="fbs",
                  updated=T0 + timedelta(hours=2), source="statistics")
    store.write_page(StreamKey("wildberries", "main", "orders_statistics"), PageWrite(orders=[stats]), now=T0)
    [row] = list(store.iter_orders())
    assert row["status"] == "delivered" and row["total"] == Decimal("1429.00")
    assert row["source"] == "marketplace"
    assert row["fulfilment"] == "fbs"  # the gap is filled from the other API
    assert row["updated_at"] == T0 + timedelta(hours=2)  # the newest change time wins
    assert row["lines"][0]["price"] == Decimal("1429.00")


def test_a_cancellation_from_any_source_closes_an_open_order(store: Store):
    store.write_page(KEY, PageWrite(orders=[order(status=OrderStatus.IN_DELIVERY)]), now=T0)
    store.write_page(KEY, PageWrite(orders=[order(status=OrderStatus.CANCELLED, rank=1)]), now=T0)
    assert next(store.iter_orders())["status"] == "cancelled"
    # ...but not a delivered one: the more trusted API saw the buyer receive it.
    store.write_page(KEY, PageWrite(orders=[order("d", status=OrderStatus.DELIVERED)]), now=T0)
    store.write_page(KEY, PageWrite(orders=[order("d", status=OrderStatus.CANCELLED, rank=1)]), now=T0)
    assert {r["order_id"]: r["status"] for r in store.iter_orders()}["d"] == "delivered"


def test_higher_rank_arriving_later_takes_over(store: Store):
    store.write_page(KEY, PageWrite(orders=[order(rank=1, total="1000.00", source="statistics")]), now=T0)
    store.write_page(KEY, PageWrite(orders=[order(status=OrderStatus.DELIVERED)]), now=T0)
    [row] = list(store.iter_orders())
    assert (row["status"], row["total"], row["source"]) == ("delivered", Decimal("1429.00"), "marketplace")


def test_reviews_follow_the_platforms_latest_view(store: Store):
    store.write_page(KEY, PageWrite(reviews=[review()]), now=T0)
    store.write_page(KEY, PageWrite(reviews=[review(answered=True)]), now=T0)
    [row] = list(store.iter_reviews())
    assert row["answered"] and row["answer_text"] == "Спасибо!"


def test_quarantine_keeps_each_bad_record_once(store: Store):
    bad = Quarantined(record_key="rid-9", reason="createdAt: not a date-time", payload={"rid": "rid-9"})
    for _ in range(3):
        store.write_page(KEY, PageWrite(orders=[order()], quarantined=[bad]), now=T0)
    [row] = store.quarantine()
    assert row["record_key"] == "rid-9" and "createdAt" in row["reason"]


class Crash(BaseException):
    """Stands in for the process dying between two statements of one transaction."""


def test_cursor_moves_only_with_its_page(store: Store, monkeypatch):
    store.write_page(KEY, PageWrite(orders=[order("a")], cursor_at=T0), now=T0)

    def die(*_args):
        raise Crash

    # The orders and their lines are written, then the process dies before reviews and cursor.
    monkeypatch.setattr("store.upsert.upsert_reviews", die)
    with pytest.raises(Crash):
        store.write_page(KEY, PageWrite(orders=[order("b")], reviews=[review()],
                                        cursor_at=T0 + timedelta(days=1)), now=T0)
    monkeypatch.undo()
    # The failed page left nothing behind: neither its good record nor its cursor move.
    assert {r["order_id"] for r in store.iter_orders()} == {"a"}
    assert store.get_cursor(KEY).cursor_at == T0


def test_run_results_are_recorded(store: Store):
    store.write_page(KEY, PageWrite(orders=[order()], cursor_at=T0), now=T0)
    store.record_run(KEY, state="deferred", at=T0, error="HTTP 429: try on the next run")
    state = store.get_cursor(KEY)
    assert (state.state, state.last_error, state.records_synced) == ("deferred", "HTTP 429: try on the next run", 1)
    store.record_run(KEY, state="ok", at=T0 + timedelta(minutes=1))
    state = store.get_cursor(KEY)
    assert state.state == "ok" and state.last_error is None and state.last_success_at == T0 + timedelta(minutes=1)


def test_iteration_pages_through_large_tables(store: Store):
    orders = [order(f"id-{i:05d}") for i in range(2500)]
    store.write_page(KEY, PageWrite(orders=orders), now=T0)
    ids = [r["order_id"] for r in store.iter_orders(batch=700)]
    assert ids == sorted(o.order_id for o in orders)


@pytest.mark.postgres
def test_postgres_keeps_money_as_numeric(pg_store: Store):
    pg_store.write_page(KEY, PageWrite(orders=[order(total="0.10")]), now=T0)
    with pg_store.engine.connect() as conn:
        kind = conn.execute(text("SELECT pg_typeof(total)::text FROM orders")).scalar_one()
        assert kind == "numeric"
        assert conn.execute(text("SELECT sum(total) FROM orders")).scalar_one() == Decimal("0.10")


def test_buyer_key_coverage_counts_only_keyed_orders(store: Store):
    keyed = replace(order("k"), buyer_key="a" * 32)
    store.write_page(KEY, PageWrite(orders=[keyed, order("n1"), order("n2")]), now=T0)
    assert store.buyer_key_coverage("wildberries", "main") == (3, 1)
    assert store.buyer_key_coverage("wildberries", "other") == (0, 0)


def test_a_buyer_key_once_seen_is_kept_when_a_later_read_has_none(store: Store):
    # Yandex Market shows a DBS buyer only while the order is active.
    store.write_page(KEY, PageWrite(orders=[replace(order(), buyer_key="b" * 32)]), now=T0)
    store.write_page(KEY, PageWrite(orders=[order(status=OrderStatus.DELIVERED)]), now=T0)
    [row] = list(store.iter_orders())
    assert row["buyer_key"] == "b" * 32 and row["status"] == "delivered"


def test_returned_total_round_trips_exactly_and_defaults_to_zero(store: Store):
    partial = replace(order("p", status=OrderStatus.PARTIALLY_RETURNED, total="5796.00"),
                      returned_total=Decimal("2609.05"))
    store.write_page(KEY, PageWrite(orders=[partial, order("n")]), now=T0)
    rows = {r["order_id"]: r for r in store.iter_orders()}
    assert rows["p"]["status"] == "partially_returned"  # 18 characters: the column is wide enough
    assert rows["p"]["returned_total"] == Decimal("2609.05") and isinstance(rows["p"]["returned_total"], Decimal)
    assert rows["n"]["returned_total"] == 0


def test_returned_total_never_shrinks_whatever_source_sends_it(store: Store):
    partial = replace(order(status=OrderStatus.PARTIALLY_RETURNED), returned_total=Decimal("9.00"))
    store.write_page(KEY, PageWrite(orders=[partial]), now=T0)
    # Larger as a number but not as text ("10.00" < "9.00"): the merge compares amounts.
    store.write_page(KEY, PageWrite(orders=[replace(partial, returned_total=Decimal("10.00"))]), now=T0)
    assert next(store.iter_orders())["returned_total"] == Decimal("10.00")
    # The trusted source reading less (or nothing) does not make returned goods unreturned...
    for less in (Decimal("9.99"), Decimal("0"), Decimal("1.5")):
        store.write_page(KEY, PageWrite(orders=[replace(partial, returned_total=less)]), now=T0)
        assert next(store.iter_orders())["returned_total"] == Decimal("10.00")
    # ...and a more complete figure from a less trusted source still counts (returns only grow).
    stats = replace(order(status=OrderStatus.DELIVERED, rank=1, source="statistics"),
                    returned_total=Decimal("1429.00"))
    store.write_page(StreamKey("wildberries", "main", "orders_statistics"), PageWrite(orders=[stats]), now=T0)
    [row] = list(store.iter_orders())
    assert row["returned_total"] == Decimal("1429.00")
    assert (row["status"], row["source"]) == ("partially_returned", "marketplace")  # the rest stays trusted


def test_a_partially_returned_order_is_closed_to_a_late_cancellation(store: Store):
    store.write_page(KEY, PageWrite(orders=[order(status=OrderStatus.PARTIALLY_RETURNED)]), now=T0)
    store.write_page(KEY, PageWrite(orders=[order(status=OrderStatus.CANCELLED, rank=1)]), now=T0)
    assert next(store.iter_orders())["status"] == "partially_returned"
    # The trusted source moving it on (everything came back) is taken as for any other status.
    store.write_page(KEY, PageWrite(orders=[order(status=OrderStatus.RETURNED)]), now=T0)
    assert next(store.iter_orders())["status"] == "returned"





def test_migration_0004_gives_existing_orders_a_zero_returned_total(bare_engine):
    migrate_to(bare_engine, "0003")
    with bare_engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO orders (marketplace, account, order_id, created_at, updated_at, status, platform_status,"
            " currency, total, source, source_rank) VALUES ('yandex_market', 'main', '1', :t, :t, 'returned',"
            " 'PARTIALLY_RETURNED', 'RUB', '5796.00', 'orders', 1)"), {"t": T0.replace(tzinfo=None)})
    migrate(bare_engine)
    store = Store(bare_engine)
    [row] = list(store.iter_orders())
    assert row["returned_total"] == 0 and isinstance(row["returned_total"], Decimal)
    assert row["total"] == Decimal("5796.00")
    # New writes after the upgrade carry the value and the new status.
    partial = replace(order("2", status=OrderStatus.PARTIALLY_RETURNED), returned_total=Decimal("119.00"))
    store.write_page(KEY, PageWrite(orders=[partial]), now=T0)
    assert {r["order_id"]: r["returned_total"] for r in store.iter_orders()}["2"] == Decimal("119.00")
    # Down again: the old schema knows only full returns.
    migrate_to(bare_engine, "0003", down=True)
    columns = {c["name"] for c in inspect(bare_engine).get_columns("orders")}
    assert "returned_total" not in columns
    with bare_engine.connect() as conn:
        statuses = set(conn.execute(text("SELECT status FROM orders")).scalars())
    assert statuses == {"returned"}


def test_two_streams_writing_the_same_orders_at_once_never_deadlock(pg_store: Store):
    """WB's orders and statistics streams upsert the same orders concurrently, in their own order."""
    import threading

    orders = [order(f"rid-{i:04d}") for i in range(300)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def stream(name: str, rows: list[OrderRecord]) -> None:
        key = StreamKey("wildberries", "main", name)
        try:
            for round_ in range(15):
                start.wait()
                pg_store.write_page(key, PageWrite(orders=rows), now=T0 + timedelta(seconds=round_))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=stream, args=("orders", orders)),
               threading.Thread(target=stream, args=("orders_statistics", orders[::-1]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert pg_store.count(OrderRow) == 300


def _random_pages(rng: random.Random, pages: int) -> list[PageWrite]:
    """Pages of a few orders and reviews drawn from a small pool, so the same ones come back."""
    out = []
    for p in range(pages):
        orders = {}
        for _ in range(rng.randint(0, 6)):
            oid = f"rid-{rng.randint(1, 8)}"
            o = order(oid, status=rng.choice(list(OrderStatus)), rank=rng.choice((1, 2)),
                      total=f"{rng.randint(1, 5000)}.{rng.randint(0, 99):02d}",
                      updated=T0 + timedelta(minutes=rng.randint(0, 50)),
                      fulfilment=rng.choice(("fbs", "fbo", None)))
            lines = tuple(OrderLine(str(900 + n), None, None, rng.randint(1, 3), Decimal(n + 1))
                          for n in range(rng.randint(1, 3)))
            orders[oid] = replace(o, lines=lines, buyer_key=rng.choice((None, "k" * 32, "q" * 32)),
                                  returned_total=Decimal(rng.choice((0, 0, 5, 17))),
                                  status_changed_at=rng.choice((None, T0 - timedelta(minutes=rng.randint(0, 50)))))
        reviews = [review(f"r{rng.randint(1, 4)}", answered=rng.random() < 0.5) for _ in range(rng.randint(0, 2))]
        bad = [Quarantined("x", "bad", {"n": rng.randint(1, 3)})] if rng.random() < 0.3 else []
        cursor = T0 + timedelta(hours=p) if rng.random() < 0.5 else None
        out.append(PageWrite(orders=list(orders.values()), reviews=list({r.review_id: r for r in reviews}.values()),
                             quarantined=bad, cursor_at=cursor))
    return out


def _stored(store: Store) -> dict:
    """What the store holds; `changed_at` is the wall time of a write, not part of what was stored."""
    cursor = store.get_cursor(KEY)
    orders = [{k: v for k, v in o.items() if k != "changed_at"} for o in store.iter_orders()]
    return {"orders": orders, "reviews": list(store.iter_reviews()),
            "quarantine": sorted((q["payload"], q["reason"]) for q in store.quarantine()),
            "cursor": (cursor.cursor_at, cursor.records_synced)}


@pytest.mark.parametrize("seed", range(12))
def test_pages_written_together_store_what_writing_them_one_by_one_stores(seed: int, sqlite_store: Store,
                                                                         tmp_path):
    """A batch may carry the same order several times (a re-read, WB's `>=` paging): each later
    version must merge onto the earlier one exactly as a later page would."""
    pages = _random_pages(random.Random(seed), 8)
    assert len({o.order_id for p in pages for o in p.orders}) < sum(len(p.orders) for p in pages)
    one_by_one = Store(connect(f"sqlite:///{tmp_path / 'one.db'}"))
    migrate(one_by_one.engine)
    for page in pages:
        one_by_one.write_page(KEY, page, now=T0)
    sqlite_store.write_pages(KEY, pages, now=T0)
    assert _stored(sqlite_store) == _stored(one_by_one)
    one_by_one.engine.dispose()


def test_a_batch_with_repeated_orders_merges_in_order_on_postgres(pg_store: Store):
    """Each version of a repeated order merges onto the one before, on PostgreSQL too."""
    first = replace(order(), buyer_key="b" * 32)
    cancelled = order(status=OrderStatus.CANCELLED, updated=T0 + timedelta(hours=1))
    lower = replace(order(rank=1, updated=T0 + timedelta(minutes=5)), buyer_key=None)
    pages = [PageWrite(orders=[first, order("rid-2")]), PageWrite(orders=[cancelled]),
             PageWrite(orders=[lower], cursor_at=T0)]
    pg_store.write_pages(KEY, pages, now=T0)
    rows = {r["order_id"]: r for r in pg_store.iter_orders()}
    assert rows["rid-1"]["status"] == "cancelled" and rows["rid-1"]["buyer_key"] == "b" * 32
    assert rows["rid-1"]["updated_at"] == T0 + timedelta(hours=1)
    assert pg_store.get_cursor(KEY).cursor_at == T0 and pg_store.get_cursor(KEY).records_synced == 4


def test_postgres_refuses_a_value_too_long_for_its_column_rather_than_cutting_it(pg_store: Store):
    """The bulk upsert casts arrays to the bare types: a cut order id would merge two orders."""
    with pytest.raises(DBAPIError, match="too long"):
        pg_store.write_page(KEY, PageWrite(orders=[order("9" * 129)]), now=T0)
    assert pg_store.count(OrderRow) == 0


def _buyer_index_entries(engine) -> int:
    """Entries in orders' buyer-key index, read from the index itself."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))
            conn.execute(text("SET enable_bitmapscan = off"))
            plan = "\n".join(conn.execute(text(
                "EXPLAIN SELECT count(*) FROM orders WHERE buyer_key >= ''")).scalars())
            assert "ix_orders_buyer_key" in plan, plan
            return conn.execute(text("SELECT count(*) FROM orders WHERE buyer_key >= ''")).scalar_one()
        plan = str(conn.execute(text(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM orders INDEXED BY ix_orders_buyer_key "
            "WHERE buyer_key >= ''")).all())
        assert "ix_orders_buyer_key" in plan, plan
        return conn.execute(text(
            "SELECT count(*) FROM orders INDEXED BY ix_orders_buyer_key WHERE buyer_key >= ''")).scalar_one()


def test_migration_0007_indexes_only_orders_with_a_buyer(bare_engine):
    migrate(bare_engine)
    store = Store(bare_engine)
    keyed = [replace(order(f"k{i}"), buyer_key=f"buyer-{i % 3}") for i in range(6)]
    anonymous = [order(f"a{i}") for i in range(4)]
    store.write_page(KEY, PageWrite(orders=keyed + anonymous), now=T0)
    [index] = [i for i in inspect(bare_engine).get_indexes("orders") if i["name"] == "ix_orders_buyer_key"]
    where = index.get("dialect_options", {}).get(f"{bare_engine.dialect.name}_where")
    assert where is not None and "buyer_key IS NOT NULL" in str(where), index
    # Lookups by key use it, and it holds the keyed orders only.
    assert _buyer_index_entries(bare_engine) == 6
    assert store.count(OrderRow) == 10
    # Down: the whole-table index again (queries do not change either way).
    migrate_to(bare_engine, "0006", down=True)
    [index] = [i for i in inspect(bare_engine).get_indexes("orders") if i["name"] == "ix_orders_buyer_key"]
    assert not index.get("dialect_options", {}).get(f"{bare_engine.dialect.name}_where"), index


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_pool_sized_for_the_callers_concurrency_keeps_its_connections_open(backend, request, tmp_path):
    """10 writers at once, 20 rounds: each connection is opened once, not once per write (a new
    PostgreSQL connection is a new server process; a new SQLite one a cold page cache)."""
    import threading

    from sqlalchemy import event

    url = f"sqlite:///{tmp_path / 'pool.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    writers, rounds = 10, 20
    engine = connect(url, connections=writers)
    opened = []
    event.listen(engine, "connect", lambda *_: opened.append(1))
    all_in = threading.Barrier(writers)

    def write() -> None:
        for _ in range(rounds):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                all_in.wait(timeout=10)  # every writer holds a connection at this moment
            all_in.wait(timeout=10)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    assert len(opened) == writers


def test_the_daemon_store_keeps_a_connection_per_job_slot_and_more(tmp_path):
    from app.config import load_config
    from app.wiring import App, store_connections

    (tmp_path / "loyalsync.toml").write_text("[schedule]\nmax_concurrent_jobs = 12\n", encoding="utf-8")
    cfg = load_config(tmp_path / "loyalsync.toml", database_url=f"sqlite:///{tmp_path / 'd.db'}", env={})
    app = App(cfg)
    assert store_connections(cfg) > 12 and app.store.engine.pool.size() == store_connections(cfg)
