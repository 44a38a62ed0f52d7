"""What the conformance kit needs from the program that syncs: the `SyncDriver` protocol.

The kit checks a connector against its emulator; it needs something that runs a sync into a store
it can crash, and shows the store as its export. That is the daemon's runner and store, and the kit
must not import the daemon (a connector package tests with the contract alone, and the contract is
the lowest layer). So the host registers its driver under the entry-point group
`loyalsync.kit_driver` (loyalsync's own: `sync.kit_driver:RunnerDriver`), and the kit loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from connectors.base import Connector

__all__ = ["DRIVER_GROUP", "SimulatedCrash", "StreamOutcome", "SyncDriver", "load_driver"]

DRIVER_GROUP = "loyalsync.kit_driver"


@dataclass(frozen=True, slots=True)
class StreamOutcome:
    """How one stream's run ended: `state` is ok | deferred | error | unavailable."""

    stream: str
    state: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok"


class SimulatedCrash(BaseException):
    """Stands in for kill -9: nothing in the daemon catches it, no cleanup code runs after it."""


class SyncDriver(Protocol):
    """Runs syncs into stores the way the daemon does."""

    def store(self, path: Path, *, crash_at: int | None = None) -> Any:
        """The store in the file `path` (created and migrated when new). With `crash_at`, the store
        raises `SimulatedCrash` instead of its `crash_at`-th commit; reopening `path` without it
        is a restarted process that sees only what was committed."""

    async def sync(self, store: Any, connector: Connector, at: datetime, *,
                   commit_records: int | None = None) -> list[StreamOutcome]:
        """Run every enabled stream of `connector` once into `store`, as of `at`; `commit_records=1`
        commits after every page (so a crash can fall between any two)."""

    def snapshot(self, store: Any) -> tuple[list[dict], list[dict]]:
        """(orders, reviews) as their export records: what "identical" means for users."""

    def quarantine(self, store: Any) -> list[dict]:
        """The quarantined records, each with at least `record_key` and `reason`."""

    def close(self, store: Any) -> None:
        """Release the store's connections."""


def load_driver(name: str | None = None) -> SyncDriver:
    """The driver registered under `loyalsync.kit_driver` (`name`, or the only/first one)."""
    found = sorted(entry_points(group=DRIVER_GROUP), key=lambda ep: ep.name)
    if name is not None:
        found = [ep for ep in found if ep.name == name]
    if not found:
        raise LookupError(f"no sync driver registered under the entry-point group {DRIVER_GROUP!r}"
                          f"{f' named {name!r}' if name else ''}: install loyalsync (pip install loyalsync) "
                          "in the environment that runs the conformance kit")
    return found[0].load()()

