"""`orders.delivered_at` and `orders.changed_at` on SQLite and PostgreSQL (store.upsert).

`delivered_at`: when the order first reached `delivered` or `partially_returned`, kept once known,
so the loyalty engine counts a return window from the delivery even after a return (a rebuild then
knows what live runs knew). `changed_at`: the wall time of the last write that changed what the
loyalty engine reads; re-reading the same data leaves it alone.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from store import Store
from tests.store.conftest import migrate_to
from tests.store.test_status_changed_at import N1, N2, N3, N4, T0, H, S, order, write


def row(store: Store, order_id: str = "rid-1") -> dict:
    return {r["order_id"]: r for r in store.iter_orders()}[order_id]


def test_the_first_delivery_is_kept_through_a_return(store: Store):
    write(store, N1, order(S.IN_DELIVERY, T0 + H))
    assert row(store)["delivered_at"] is None
    write(store, N2, order(S.DELIVERED, T0 + 5 * H))
    assert row(store)["delivered_at"] == T0 + 5 * H  # the platform's time of the delivery
    write(store, N3, order(S.RETURNED, T0 + 9 * H))
    r = row(store)
    assert (r["status"], r["status_changed_at"], r["delivered_at"]) == ("returned", T0 + 9 * H, T0 + 5 * H)


def test_a_delivery_without_a_platform_time_is_dated_when_a_sync_saw_it(store: Store):
    write(store, N1, order(S.CREATED))
    write(store, N2, order(S.DELIVERED))
    assert row(store)["delivered_at"] == N2
    write(store, N3, order(S.PARTIALLY_RETURNED))
    assert row(store)["delivered_at"] == N2  # a partial return does not move the delivery


def test_an_order_first_seen_returned_has_no_delivery_time_and_one_first_seen_partly_returned_has_its_time(
        store: Store):
    write(store, N1, order(S.RETURNED, T0 + 3 * H, order_id="gone"), order(S.PARTIALLY_RETURNED, order_id="part"),
          order(S.DELIVERED, T0 + 2 * H, order_id="dated"))
    assert row(store, "gone")["delivered_at"] is None
    assert row(store, "dated")["delivered_at"] == T0 + 2 * H  # the platform's time
    # First seen already delivered without a platform time (a backfill): the record's last change
    # (T0, its updated_at), not the sync's clock N1, ten hours later; its status time stays N1.
    assert (row(store, "part")["delivered_at"], row(store, "part")["status_changed_at"]) == (T0, N1)


def test_a_backfilled_delivery_is_dated_by_the_platforms_last_change(store: Store):
    write(store, N3, replace(order(S.DELIVERED, order_id="old"), updated_at=T0 + 4 * H))
    assert row(store, "old")["delivered_at"] == T0 + 4 * H
    write(store, N4, replace(order(S.RETURNED, order_id="old"), updated_at=T0 + 35 * H))
    assert row(store, "old")["delivered_at"] == T0 + 4 * H  # kept through the return


def test_changed_at_moves_only_when_what_loyalty_reads_changes(store: Store):
    before = datetime.now(UTC)
    write(store, N1, order(S.CREATED, T0))
    first = row(store)["changed_at"]
    assert first is not None and first >= before - timedelta(seconds=1)  # the wall time, not the run's `now`
    write(store, N2, order(S.CREATED, T0))  # the same order read again
    assert row(store)["changed_at"] == first
    steps = [order(S.DELIVERED, T0 + H),  # a new status
             replace(order(S.PARTIALLY_RETURNED, T0 + 2 * H), returned_total=Decimal(100)),
             replace(order(S.PARTIALLY_RETURNED, T0 + 2 * H), returned_total=Decimal(300)),  # the return grows
             replace(order(S.PARTIALLY_RETURNED, T0 + 2 * H), returned_total=Decimal(300), buyer_key="b" * 32)]
    seen = first
    for step in steps:
        write(store, N3, step)
        now = row(store)["changed_at"]
        assert now > seen, step
        seen = now
    write(store, N4, steps[-1])
    assert row(store)["changed_at"] == seen




def test_migration_0009_dates_stored_deliveries_and_adds_the_state_table(bare_engine):
    migrate_to(bare_engine, "0008")
    with bare_engine.begin() as conn:
        for oid, status in (("d", "delivered"), ("p", "partially_returned"), ("r", "returned")):
            conn.execute(text(
                "INSERT INTO orders (marketplace, account, order_id, created_at, updated_at, status, "
                "platform_status, currency, total, source, source_rank, returned_total, status_changed_at) "
                "VALUES ('ozon', 'main', :oid, :t, :t, :s, :s, 'RUB', 10, '', 0, 0, :t)"),
                {"oid": oid, "s": status, "t": T0})
    migrate_to(bare_engine, "0009")
    got = {r["order_id"]: (r["delivered_at"], r["changed_at"]) for r in Store(bare_engine).iter_orders()}
    assert got == {"d": (T0, T0), "p": (T0, T0), "r": (None, T0)}
    with bare_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM loyalty_state")).scalar() == 0
    migrate_to(bare_engine, "0008", down=True)
    with bare_engine.connect() as conn:
        assert "delivered_at" not in list(conn.execute(text("SELECT * FROM orders")).keys())


def test_an_order_first_seen_void_without_a_time_is_dated_by_the_platforms_last_change(store: Store):
    """A backfill meets orders already cancelled or returned that no run ever saw alive: dated by
    `updated_at` (Ozon: the creation), they never count (docs/loyalty-rules.md §2), on every run
    alike. An order the store held open and a sync then sees cancelled is dated when first seen."""
    write(store, N1, replace(order(S.CANCELLED, order_id="gone"), updated_at=T0 + H),
          replace(order(S.RETURNED, order_id="back"), updated_at=T0 + 2 * H), order(S.CREATED, order_id="open"))
    assert (row(store, "gone")["status_changed_at"], row(store, "back")["status_changed_at"]) == (T0 + H, T0 + 2 * H)
    assert row(store, "gone")["changed_at"] is not None  # the incremental job reads it like any new row
    # Re-read later, still undated: the stored time stays (the mark is not a platform stamp).
    write(store, N2, replace(order(S.CANCELLED, order_id="gone"), updated_at=T0))
    assert row(store, "gone")["status_changed_at"] == T0 + H
    # A stored open order cancelled without a time: live runs saw it alive, so it is dated when seen.
    write(store, N3, replace(order(S.CANCELLED, order_id="open"), updated_at=T0 + H))
    assert row(store, "open")["status_changed_at"] == N3
    # The same page twice in one write stores what two writes store.
    write(store, N4, replace(order(S.CANCELLED, order_id="twice"), updated_at=T0 + 3 * H),
          replace(order(S.CANCELLED, order_id="twice"), updated_at=T0 + 3 * H))
    assert row(store, "twice")["status_changed_at"] == T0 + 3 * H
