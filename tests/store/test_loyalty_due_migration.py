"""Migration 0011: `loyalty_due` replaces the ledger's date indexes, backfilled from the lots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, text

from tests.store.conftest import migrate_to

LAST_RUN = datetime(2026, 5, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _lot(conn, key: str, buyer: str, kind: str, available: datetime | None, expires: datetime | None) -> None:
    conn.execute(text(
        "INSERT INTO loyalty_ledger (marketplace, account, buyer_key, kind, amount, idempotency_key, "
        "effective_at, available_from, expires_at) VALUES ('ozon', 'main', :b, :k, 5, :key, :t, :a, :x)"),
        {"b": buyer, "k": kind, "key": key, "t": LAST_RUN - 30 * DAY,
         "a": available and available.replace(tzinfo=None), "x": expires and expires.replace(tzinfo=None)})


def test_migration_0011_records_each_member_due_after_the_last_run_and_drops_the_date_indexes(bare_engine):
    """b1: one lot available before the last run (seen) and expiring 9 days after it, one available 3
    days after it: due at +3d. b2: everything before the last run: not due. b3: only a take-back
    carries a later date (take-backs have none that matter): not due."""
    migrate_to(bare_engine, "0010")
    with bare_engine.begin() as conn:
        _lot(conn, "a", "b1", "earn", LAST_RUN - DAY, LAST_RUN + 9 * DAY)
        _lot(conn, "b", "b1", "earn", LAST_RUN + 3 * DAY, LAST_RUN + 40 * DAY)
        _lot(conn, "c", "b2", "earn", LAST_RUN - 9 * DAY, LAST_RUN - DAY)
        _lot(conn, "d", "b3", "reverse", LAST_RUN + DAY, None)
        conn.execute(text("INSERT INTO loyalty_state (name, at) VALUES ('ledger.last_run', :t)"),
                     {"t": LAST_RUN.replace(tzinfo=None)})
    migrate_to(bare_engine, "0011")
    with bare_engine.connect() as conn:
        rows = conn.execute(text("SELECT buyer_key, due_at FROM loyalty_due")).all()
    assert [(b, str(at)[:19]) for b, at in rows] == [("b1", "2026-05-04 00:00:00")]
    indexes = {i["name"] for i in inspect(bare_engine).get_indexes("loyalty_ledger")}
    assert not indexes & {"ix_loyalty_ledger_available_from", "ix_loyalty_ledger_expires_at"}
    migrate_to(bare_engine, "0010", down=True)
    indexes = {i["name"] for i in inspect(bare_engine).get_indexes("loyalty_ledger")}
    assert {"ix_loyalty_ledger_available_from", "ix_loyalty_ledger_expires_at"} <= indexes
    assert "loyalty_due" not in inspect(bare_engine).get_table_names()


def test_migration_0011_without_a_last_run_leaves_the_table_to_the_first_full_run(bare_engine):
    migrate_to(bare_engine, "0010")
    with bare_engine.begin() as conn:
        _lot(conn, "a", "b1", "earn", LAST_RUN + DAY, None)
    migrate_to(bare_engine, "0011")
    with bare_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM loyalty_due")).scalar() == 0
