"""The conformance kit's sync driver (`connectors.testing.driver.SyncDriver`): the daemon's own
runner and store, so a connector is certified against exactly what will run it.

Registered under the entry-point group `loyalsync.kit_driver` in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.base import Connector
from connectors.testing.driver import SimulatedCrash, StreamOutcome
from store import PageWrite, Store, connect, migrate
from store.export import order_export, review_export
from store.store import StreamKey
from sync.runner import COMMIT_RECORDS, StreamRunner

__all__ = ["KIT_SALT", "RunnerDriver"]

# Every store of one test hashes buyer ids alike, so stores can be compared record for record.
KIT_SALT = b"conformance-kit-salt-0123456789ab"


class _CrashingStore(Store):
    """A store that dies before its `crash_at`-th commit."""

    def __init__(self, engine: Any, crash_at: int):
        super().__init__(engine, salt=KIT_SALT)
        self.crash_at = crash_at
        self.writes = 0

    def write_pages(self, key: StreamKey, pages: Sequence[PageWrite], *, now: datetime, **options: Any) -> None:
        self.writes += 1
        if self.writes == self.crash_at:
            raise SimulatedCrash(f"crash before commit {self.writes}")
        super().write_pages(key, pages, now=now, **options)  # e.g. the runner's lease `fence`


class RunnerDriver:
    """`StreamRunner` into a SQLite `Store`, writing in the caller's thread (the kit's fake clock)."""

    def store(self, path: Path, *, crash_at: int | None = None) -> Store:
        engine = connect(f"sqlite:///{path}")
        migrate(engine)
        return _CrashingStore(engine, crash_at) if crash_at else Store(engine, salt=KIT_SALT)

    async def sync(self, store: Store, connector: Connector, at: datetime, *,
                   commit_records: int | None = None) -> list[StreamOutcome]:
        runner = StreamRunner(store, clock=lambda: at, write_in_thread=False,
                              commit_records=commit_records or COMMIT_RECORDS)
        outcomes = []
        for stream in connector.enabled_streams():
            result = await runner.run(connector, stream)
            outcomes.append(StreamOutcome(stream, result.state, result.error))
        return outcomes

    def snapshot(self, store: Store) -> tuple[list[dict], list[dict]]:
        return [order_export(r) for r in store.iter_orders()], [review_export(r) for r in store.iter_reviews()]

    def quarantine(self, store: Store) -> list[dict]:
        return store.quarantine()

    def close(self, store: Store) -> None:
        store.engine.dispose()
