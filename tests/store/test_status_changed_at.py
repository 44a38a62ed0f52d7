"""`orders.status_changed_at` on SQLite and PostgreSQL: when an order reached its current status.

The platform's own time where a record carries one, else the write's `now` (when a sync first saw
the status); merged after the status rules (see store.upsert). Times below: `P…` are platform
stamps, `N…` the writes' clocks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from app.export import order_export
from connectors.records import OrderLine, OrderRecord, OrderStatus
from connectors.wildberries.mapping import MARKETPLACE_RANK as MARKETPLACE
from connectors.wildberries.mapping import STATISTICS_RANK as STATISTICS
from loyalty.order_source import members_of
from loyalty.rules import LoyaltySettings
from store import PageWrite, Store, connect, migrate
from store.store import StreamKey
from tests.store.conftest import migrate_to

S = OrderStatus
T0 = datetime(2026, 8, 18, 9, 41, 27, tzinfo=UTC)
H = timedelta(hours=1)
N1, N2, N3, N4 = T0 + 10 * H, T0 + 20 * H, T0 + 30 * H, T0 + 40 * H
KEY = StreamKey("wildberries", "main", "orders")
STATS_KEY = StreamKey("wildberries", "main", "orders_statistics")


def order(status: S = S.CREATED, at: datetime | None = None, *, order_id: str = "rid-1",
          rank: int = MARKETPLACE, buyer: str | None = None) -> OrderRecord:
    """An order as a WB source sends it: Marketplace (rank 2) by default; `at` is its platform time."""
    return OrderRecord(
        marketplace="wildberries", account="main", order_id=order_id, created_at=T0, updated_at=T0,
        status=status, platform_status=f"{status.value}-raw", fulfilment="fbs", currency="RUB",
        total=Decimal("1429.00"), lines=(OrderLine("245178903", "mug", None, 1, Decimal("1429.00")),),
        buyer_key=buyer, source="marketplace" if rank == MARKETPLACE else "statistics", source_rank=rank,
        status_changed_at=at,
    )


def write(store: Store, now: datetime, *records: OrderRecord, key: StreamKey = KEY) -> None:
    store.write_page(key, PageWrite(orders=list(records)), now=now)


def stored(store: Store, order_id: str = "rid-1") -> tuple[str, datetime]:
    row = {r["order_id"]: r for r in store.iter_orders()}[order_id]
    assert row["status_changed_at"].tzinfo is not None
    return row["status"], row["status_changed_at"]


def test_an_insert_takes_the_platform_time_else_the_writes_now(store: Store):
    write(store, N1, order(S.CANCELLED, T0 + H, order_id="stamped"), order(S.CREATED, order_id="unstamped"))
    assert stored(store, "stamped") == ("cancelled", T0 + H)
    assert stored(store, "unstamped") == ("created", N1)


def test_a_new_status_takes_the_incoming_time_earlier_or_later(store: Store):
    write(store, N1, order(S.CREATED))
    write(store, N2, order(S.IN_DELIVERY))  # no platform time: first seen by this write
    assert stored(store) == ("in_delivery", N2)
    # A new status with a platform time takes it, even one before the stored first-seen time
    # (delivered an hour after creation, first read much later).
    write(store, N3, order(S.DELIVERED, T0 + H))
    assert stored(store) == ("delivered", T0 + H)
    write(store, N4, order(S.RETURNED))
    assert stored(store) == ("returned", N4)


def test_the_same_status_keeps_its_time_unless_an_earlier_platform_stamp_comes(store: Store):
    write(store, N1, order(S.DELIVERED, T0 + 5 * H))
    write(store, N2, order(S.DELIVERED))  # re-read without a time: first-seen now, later
    write(store, N3, order(S.DELIVERED, T0 + 6 * H))  # a later stamp (Market's updateDate moved on)
    assert stored(store) == ("delivered", T0 + 5 * H)
    write(store, N4, order(S.DELIVERED, T0 + 4 * H))  # an earlier stamp is the truer moment
    assert stored(store) == ("delivered", T0 + 4 * H)


def test_a_first_seen_time_never_replaces_a_stamp_even_a_later_one(store: Store):
    """A run's `now` is its start: a change read during the run is stamped after it. Another run
    that started before the change and reads the same status must not move the time back to its own
    start."""
    write(store, N2, order(S.CANCELLED, N2 + timedelta(seconds=30)))
    write(store, N2 - timedelta(seconds=5), order(S.CANCELLED))
    assert stored(store) == ("cancelled", N2 + timedelta(seconds=30))
    # Nor does an earlier first-seen time replace a later first-seen one (both runs only observed).
    write(store, N3, order(S.DELIVERED, order_id="seen"))
    write(store, N2, order(S.DELIVERED, order_id="seen"))
    assert stored(store, "seen") == ("delivered", N3)


def test_wb_statistics_dates_a_cancellation_the_marketplace_saw_first(store: Store):
    write(store, N1, order(S.IN_DELIVERY))
    write(store, N2, order(S.CANCELLED))  # Marketplace: cancelled, no time
    assert stored(store) == ("cancelled", N2)
    # Statistics (less trusted) has the same status with its cancelDate: the earlier stamp wins.
    write(store, N3, order(S.CANCELLED, N1 + H, rank=STATISTICS), key=STATS_KEY)
    assert stored(store) == ("cancelled", N1 + H)
    write(store, N4, order(S.CANCELLED))  # the Marketplace reading it again changes nothing
    assert stored(store) == ("cancelled", N1 + H)


def test_a_cancellation_taken_from_the_less_trusted_source_then_confirmed_keeps_its_time(store: Store):
    write(store, N1, order(S.IN_DELIVERY))
    # Statistics' cancellation closes the open order (taken from either source) with its cancelDate.
    write(store, N2, order(S.CANCELLED, N1 + H, rank=STATISTICS), key=STATS_KEY)
    assert stored(store) == ("cancelled", N1 + H)
    # The trusted Marketplace confirms it later, without a time: the status did not change.
    write(store, N3, order(S.CANCELLED))
    assert stored(store) == ("cancelled", N1 + H)


def test_a_status_first_written_by_the_less_trusted_source_keeps_its_time_when_confirmed(store: Store):
    write(store, N1, order(S.CREATED, rank=STATISTICS), key=STATS_KEY)  # FBS order seen by Statistics first
    write(store, N2, order(S.CREATED))  # the Marketplace takes the row over: same status
    rows = list(store.iter_orders())
    assert (rows[0]["source"], rows[0]["status_changed_at"]) == ("marketplace", N1)
    write(store, N3, order(S.IN_DELIVERY))
    assert stored(store) == ("in_delivery", N3)


def test_a_status_the_merge_refuses_leaves_the_time_alone(store: Store):
    write(store, N2, order(S.DELIVERED))
    # Statistics cannot see delivery: its "created" row with the creation time does not apply...
    write(store, N3, order(S.CREATED, T0, rank=STATISTICS), key=STATS_KEY)
    assert stored(store) == ("delivered", N2)
    # ...nor does a cancellation of a closed (delivered) order, however early its stamp.
    write(store, N4, order(S.CANCELLED, T0 + H, rank=STATISTICS), key=STATS_KEY)
    assert stored(store) == ("delivered", N2)


def test_a_higher_rank_taking_another_status_over_takes_its_time(store: Store):
    write(store, N1, order(S.CANCELLED, T0 + H, rank=STATISTICS), key=STATS_KEY)
    write(store, N2, order(S.DELIVERED))  # the trusted source's status wins (source_rank)
    assert stored(store) == ("delivered", N2)


def test_repeats_of_one_order_in_one_write_merge_in_order(store: Store):
    """One `write_pages` may carry an order several times (PostgreSQL: one statement per round)."""
    pages = [PageWrite(orders=[order(S.CREATED)]), PageWrite(orders=[order(S.DELIVERED, T0 + H)]),
             PageWrite(orders=[order(S.DELIVERED)]), PageWrite(orders=[order(S.DELIVERED, T0 + 2 * H)])]
    store.write_pages(KEY, pages, now=N1)
    assert stored(store) == ("delivered", T0 + H)


def test_a_time_given_in_another_zone_is_stored_as_the_same_instant(store: Store):
    moscow = T0.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+03:00").tzinfo)
    write(store, N1, order(S.CANCELLED, moscow))
    assert stored(store) == ("cancelled", T0) and stored(store)[1].utcoffset() == timedelta(0)


def test_the_engine_reads_it_and_the_export_leaves_it_out(store: Store):
    write(store, N1, order(S.DELIVERED, T0 + H, buyer="b" * 32), order(S.DELIVERED, order_id="rid-2", buyer="b" * 32))
    settings = LoyaltySettings(enabled=True)

    class Filtered:  # any other order source (simulate's view) goes through OrderFact.from_row
        def iter_orders(self):
            return store.iter_orders()

    for source in (store, Filtered()):
        [(member, facts)] = list(members_of(source, settings))
        assert member == ("wildberries", "main", "b" * 32)
        assert {f.order_id: f.status_changed_at for f in facts} == {"rid-1": T0 + H, "rid-2": N1}
    row = next(store.iter_orders())
    assert row["status_changed_at"] == T0 + H and "status_changed_at" not in order_export(row)


def test_two_runs_of_the_same_data_export_alike_though_first_seen_times_differ(tmp_path):
    stores = [Store(connect(f"sqlite:///{tmp_path / f'{n}.db'}")) for n in ("daily", "weekly")]
    for s, now in zip(stores, (N1, N4), strict=True):
        migrate(s.engine)
        write(s, now, order(S.DELIVERED))
    daily, weekly = (next(s.iter_orders()) for s in stores)
    assert (daily["status_changed_at"], weekly["status_changed_at"]) == (N1, N4)
    assert order_export(daily) == order_export(weekly)
    for s in stores:
        s.engine.dispose()


# -- the migration ---------------------------------------------------------------------------------




def _insert_0007_order(conn, order_id: str, status: str, updated: datetime) -> None:
    conn.execute(text(
        "INSERT INTO orders (marketplace, account, order_id, created_at, updated_at, status, platform_status,"
        " currency, total, source, source_rank) VALUES ('wildberries', 'main', :id, :c, :u, :s, :s,"
        " 'RUB', '1429.00', 'marketplace', 2)"),
        {"id": order_id, "c": T0.replace(tzinfo=None), "u": updated.replace(tzinfo=None), "s": status})


def test_migration_0008_backfills_updated_at_and_downgrades(bare_engine):
    migrate_to(bare_engine, "0007")
    with bare_engine.begin() as conn:
        _insert_0007_order(conn, "rid-1", "delivered", T0 + H)
        _insert_0007_order(conn, "rid-2", "in_delivery", T0 + 2 * H)
    migrate(bare_engine)
    [column] = [c for c in inspect(bare_engine).get_columns("orders") if c["name"] == "status_changed_at"]
    assert column["nullable"] is False and column.get("default") is None
    store = Store(bare_engine)
    assert stored(store, "rid-1") == ("delivered", T0 + H)
    assert stored(store, "rid-2") == ("in_delivery", T0 + 2 * H)
    # The backfilled times merge like any stored one.
    write(store, N1, order(S.DELIVERED), order(S.DELIVERED, order_id="rid-2"))
    assert stored(store, "rid-1") == ("delivered", T0 + H) and stored(store, "rid-2") == ("delivered", N1)
    # NOT NULL on both databases (SQLite through the table copy), and the indexes survived it.
    with pytest.raises(IntegrityError), bare_engine.begin() as conn:
        _insert_0007_order(conn, "rid-3", "created", T0)
    indexes = {i["name"] for i in inspect(bare_engine).get_indexes("orders")}
    assert {"ix_orders_created", "ix_orders_buyer_key"} <= indexes
    # Down: the column goes, the orders stay.
    migrate_to(bare_engine, "0007", down=True)
    assert "status_changed_at" not in {c["name"] for c in inspect(bare_engine).get_columns("orders")}
    with bare_engine.connect() as conn:
        assert set(conn.execute(text("SELECT order_id, status FROM orders")).all()) == {
            ("rid-1", "delivered"), ("rid-2", "delivered")}
    migrate(bare_engine)  # and up again
    assert stored(Store(bare_engine), "rid-2")[0] == "delivered"

