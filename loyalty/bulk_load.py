"""A first full run into an empty ledger on SQLite writes without the key index, then builds it.

Every ledger insert is `INSERT … ON CONFLICT (idempotency_key) DO NOTHING` on the unique index of
the key. A first run over a large order history writes every entry new, each at a random place of
that index, and every commit rewrites most of its pages: at a million orders the index took a third
of the writing process's time (bench/loyalty.py: 18.2 s of CPU with it, 11.7 s without, 1.2 s to
build it afterwards from the rows). So a full run that finds the ledger empty (SQLite, at least
`MIN_ORDERS` orders) drops the index, writes plain INSERTs, and builds the index again at its end:
what bulk loaders do (SQLite's and PostgreSQL's docs on populating a database).

Nothing can be written twice meanwhile:
- the run writes each key once: a plan keys every entry by its order and rule, and no two members
  share an order;
- any other writer's `INSERT … ON CONFLICT (idempotency_key)` is refused by SQLite while the index is
  missing ("ON CONFLICT clause does not match any PRIMARY KEY or UNIQUE constraint"), so it writes
  nothing and says `LedgerLoading` (one line; it is retried on its next run);
- one run loads at a time: it takes the `ledger.bulk_load` mark in `loyalty_state` in the
  transaction that drops the index, and every write transaction of the load first renews that mark
  (a write: SQLite's write lock is held from there to the commit), so a load whose mark was taken
  from it (`restore_key_index`) stops before it writes.

The index is built again when the run ends, however it ends, in the transaction that clears the
mark. A run killed outright leaves both: the next ledger run (`restore_key_index`, first thing in
every run) waits while the mark is fresh, and builds the index once it is `STALE` old.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine

from connectors.errors import LoyalsyncError
from store.loyalty_tables import LedgerEntryRow, LoyaltyStateRow
from store.tables import OrderRow

__all__ = ["MIN_ORDERS", "STALE", "BulkLoad", "LedgerLoading", "bulk_load", "is_refused_for_loading",
           "restore_key_index"]

log = logging.getLogger("loyalsync.loyalty")
LEDGER: Table = LedgerEntryRow.__table__  # type: ignore[assignment]
STATE: Table = LoyaltyStateRow.__table__  # type: ignore[assignment]
ORDERS: Table = OrderRow.__table__  # type: ignore[assignment]
KEY_INDEX = "ux_loyalty_ledger_key"
MARK = "ledger.bulk_load"
MIN_ORDERS = 50_000  # below this the index costs well under a second: not worth the moving parts
STALE = timedelta(minutes=2)  # a load renews its mark at every commit (seconds apart)
_CREATE_INDEX = f"CREATE UNIQUE INDEX IF NOT EXISTS {KEY_INDEX} ON {LEDGER.name} (idempotency_key)"


class LedgerLoading(LoyalsyncError):
    """The ledger is being loaded by a first full run (or its load was stopped by another run)."""


def _clock() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class BulkLoad:
    """A load in progress: `at` is what this run last wrote into its mark."""

    at: datetime

    def renew(self, conn: Connection) -> None:
        """First statement of each write transaction of the load: still ours, then hold the write lock."""
        now = max(_clock(), self.at + timedelta(microseconds=1))
        done = conn.execute(update(STATE).where(STATE.c.name == MARK, STATE.c.at == self.at).values(at=now))
        if done.rowcount != 1:
            raise LedgerLoading("the first full run's load of the ledger was stopped: another run found it "
                                "stalled and rebuilt the ledger's key index; what it wrote is kept, and the "
                                "next run goes on from there")
        self.at = now


def _has_key_index(conn: Connection) -> bool:
    found = conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = :name"),
                         {"name": KEY_INDEX}).first()
    return found is not None


def _begin(engine: Engine) -> BulkLoad | None:
    """Take the mark and drop the index in one transaction, if this run may load; else None."""
    at = _clock()
    with engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(ORDERS)).scalar_one() < MIN_ORDERS:
            return None
        # A write first: it takes SQLite's write lock, so the checks below and the drop are one step.
        took = conn.execute(insert(STATE).prefix_with("OR IGNORE").values(name=MARK, at=at)).rowcount
        if took != 1 or conn.execute(select(LEDGER.c.id).limit(1)).first() is not None \
                or not _has_key_index(conn):
            conn.rollback()
            return None
        conn.execute(text(f"DROP INDEX {KEY_INDEX}"))
    log.info("loyalty: the ledger is empty; loading it without its key index, built at the end")
    return BulkLoad(at)


def _finish(engine: Engine, load: BulkLoad) -> None:
    """Build the index and clear our mark, in one transaction (a no-op for what another run did)."""
    with engine.begin() as conn:
        conn.execute(delete(STATE).where(STATE.c.name == MARK, STATE.c.at == load.at))
        conn.execute(text(_CREATE_INDEX))


@contextmanager
def bulk_load(engine: Engine) -> Iterator[BulkLoad | None]:
    """A `BulkLoad` for a full run into an empty SQLite ledger of a large store; None otherwise.

    Pass it to every write of the run (`loyalty.batch.write_plans`); the index is back when the
    block ends, however it ends.
    """
    load = _begin(engine) if engine.dialect.name == "sqlite" else None
    try:
        yield load
    finally:
        if load is not None:
            _finish(engine, load)


def restore_key_index(engine: Engine, now: datetime | None = None) -> None:
    """Before any ledger run: if a load's index is missing, wait for the load while its mark is fresh
    (`LedgerLoading`), or build the index and clear the mark of a load that died (`STALE`)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        if _has_key_index(conn):
            return
        mark = conn.execute(select(STATE.c.at).where(STATE.c.name == MARK)).scalar()
    now = now or _clock()
    if mark is not None and now - mark < STALE:
        raise LedgerLoading(f"a first full run is loading the ledger (its last write at {mark:%H:%M:%S} UTC); "
                            "this run waits for the next interval")
    with engine.begin() as conn:
        conn.execute(delete(STATE).where(STATE.c.name == MARK))
        conn.execute(text(_CREATE_INDEX))
    log.warning("loyalty: a first full run stopped midway (killed?); rebuilt the ledger's key index, and "
                "this run goes on from what it wrote")


def is_refused_for_loading(exc: BaseException) -> bool:
    """Whether SQLite refused a keyed insert because the key index is missing (a load runs)."""
    cause = getattr(exc, "orig", exc)
    return isinstance(cause, sqlite3.OperationalError) and "ON CONFLICT clause does not match" in str(cause)
