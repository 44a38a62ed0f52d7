"""Leases in the store: which replica works a piece of work (an account, a store-wide job) until when.

A lease is one row (name, holder, token, expires_at) of the `leases` table. Taking one is a single
atomic upsert that succeeds only when the row is missing, expired, or this replica's own; every
grant bumps `token`. The holder renews its leases well before they expire; a replica that stops
renewing (killed, frozen, cut off from the database) loses them after one lease period.

Writes made under a lease are *fenced*: `Leases.fence(lease)` gives a check to run first inside the
write's own transaction. On PostgreSQL it reads the lease row FOR SHARE, so no replica can take the
lease over until that write commits; on SQLite it takes the database's write lock with a no-op
update. Either way a replica whose lease was taken over finds its token gone and writes nothing:
two replicas never interleave writes to the same account, even when one of them was frozen for
longer than its lease.

Time is the database's on PostgreSQL (replicas on several machines need one clock) and the
process's on SQLite (one machine).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, or_, select, tuple_, update
from sqlalchemy.engine import Connection, Engine

from store.tables import LeaseRow
from store.upsert import dialect_insert

__all__ = ["Fence", "Lease", "LeaseLost", "Leases", "db_now", "holders"]

LEASES: Table = LeaseRow.__table__  # type: ignore[assignment]
Fence = Callable[[Connection], None]
# Leases per statement: well under SQLite's 32,766 bound parameters at five values a row.
_CHUNK = 500


class LeaseLost(Exception):
    """The lease a write was made under is no longer this replica's; the write did not happen."""


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    token: int
    expires_at: datetime


def db_now(conn: Connection) -> datetime:
    """The time leases are measured in: the database server's on PostgreSQL, ours on SQLite."""
    if conn.dialect.name == "postgresql":
        return conn.execute(select(func.clock_timestamp())).scalar_one().astimezone(UTC)
    return datetime.now(UTC)


class Leases:
    """The leases one replica (`holder`) takes, renews, fences with and gives back."""

    def __init__(self, engine: Engine, holder: str, ttl: timedelta):
        self.engine = engine
        self.holder = holder
        self.ttl = ttl
        self._held: dict[str, Lease] = {}
        # The heartbeat thread renews while the event loop reads and jobs take store-wide leases.
        self._lock = threading.Lock()

    @property
    def held(self) -> dict[str, Lease]:
        """The leases this replica believes it holds (as of its last renewal), by name."""
        with self._lock:
            return dict(self._held)

    def get(self, name: str) -> Lease | None:
        with self._lock:
            return self._held.get(name)

    def acquire(self, name: str) -> Lease | None:
        """Take `name` if it is free, expired, or ours from an earlier process; None if another has it.

        Every grant bumps the token, so only call this for a lease not held now: re-taking a held
        one would fence out the writes still running under it.
        """
        granted = self.acquire_many([name])
        return granted[0] if granted else None

    def acquire_many(self, names: Iterable[str]) -> list[Lease]:
        """`acquire` for many names in one transaction: the leases granted (the others are held).

        A takeover of a dead replica's share is hundreds of leases; one transaction each kept the
        heartbeat thread busy for seconds on a loaded machine, long enough for this replica's own
        leases to lapse before their next renewal. Names are taken in sorted order, so two replicas
        taking overlapping sets lock the rows in the same order and never deadlock.
        """
        wanted = sorted(set(names))
        if not wanted:
            return []
        c = LEASES.c
        granted: list[Lease] = []
        with self.engine.begin() as conn:
            now = db_now(conn)
            expires = now + self.ttl
            for start in range(0, len(wanted), _CHUNK):
                rows = [{"name": n, "holder": self.holder, "token": 1, "acquired_at": now, "expires_at": expires}
                        for n in wanted[start:start + _CHUNK]]
                stmt = dialect_insert(conn, LEASES).values(rows)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[c.name],
                    set_={"holder": self.holder, "token": c.token + 1, "acquired_at": now, "expires_at": expires},
                    where=or_(c.expires_at < now, c.holder == self.holder),
                ).returning(c.name, c.token)
                granted += [Lease(n, self.holder, int(token), expires) for n, token in conn.execute(stmt)]
        with self._lock:
            self._held.update((lease.name, lease) for lease in granted)
        return granted

    def renew(self) -> list[str]:
        """Extend every lease still ours; the names of those lost since the last renewal."""
        before = self.held
        if not before:
            return []
        c = LEASES.c
        renewed: dict[str, Lease] = {}
        with self.engine.begin() as conn:
            now = db_now(conn)
            expires = now + self.ttl
            names = sorted(before)
            for start in range(0, len(names), _CHUNK):
                stmt = (update(LEASES)
                        .where(c.holder == self.holder, c.name.in_(names[start:start + _CHUNK]), c.expires_at >= now)
                        .values(expires_at=expires).returning(c.name, c.token))
                for name, token in conn.execute(stmt):
                    if before[name].token == token:
                        renewed[name] = Lease(name, self.holder, int(token), expires)
        lost = [n for n in before if n not in renewed]
        with self._lock:
            for name in lost:
                if self._held.get(name) == before[name]:  # not re-taken or released meanwhile
                    del self._held[name]
            for name, lease in renewed.items():
                if name in self._held:
                    self._held[name] = lease
        return lost

    def release(self, name: str) -> None:
        """Give `name` back at once (a clean stop, or a share handed to another replica)."""
        self.release_many([name])

    def release_many(self, names: Iterable[str]) -> None:
        """`release` for many names in one transaction (a share handed to a replica that joined)."""
        with self._lock:
            gone = [lease for lease in (self._held.pop(n, None) for n in sorted(set(names))) if lease is not None]
        if not gone:
            return
        c = LEASES.c
        with self.engine.begin() as conn:
            for start in range(0, len(gone), _CHUNK):
                pairs = [(lease.name, lease.token) for lease in gone[start:start + _CHUNK]]
                conn.execute(delete(LEASES).where(c.holder == self.holder, tuple_(c.name, c.token).in_(pairs)))

    def release_all(self) -> None:
        """Give back every lease under this replica's name, also those of an earlier process of it."""
        with self._lock:
            self._held.clear()
        with self.engine.begin() as conn:
            conn.execute(delete(LEASES).where(LEASES.c.holder == self.holder))

    def fence(self, lease: Lease) -> Fence:
        """A check for the start of a write's transaction: raises `LeaseLost` unless `lease` still holds."""
        c = LEASES.c

        def check(conn: Connection) -> None:
            if conn.dialect.name == "postgresql":
                stmt: Any = (select(c.token)
                             .where(c.name == lease.name, c.holder == lease.holder, c.token == lease.token,
                                    c.expires_at > func.clock_timestamp())
                             .with_for_update(read=True))
                held = conn.execute(stmt).first() is not None
            else:
                # A write, so this transaction holds SQLite's write lock from here to its commit.
                stmt = (update(LEASES)
                        .where(c.name == lease.name, c.holder == lease.holder, c.token == lease.token,
                               c.expires_at > datetime.now(UTC))
                        .values(token=c.token))
                held = conn.execute(stmt).rowcount == 1
            if not held:
                raise LeaseLost(f"lease {lease.name} (token {lease.token}) is no longer held by {lease.holder}")

        return check


def holders(conn: Connection, names: Iterable[str]) -> dict[str, tuple[str, datetime]]:
    """name -> (holder, expires_at) of the leases that exist among `names`."""
    wanted = list(names)
    found: dict[str, tuple[str, datetime]] = {}
    c = LEASES.c
    for start in range(0, len(wanted), 500):
        stmt = select(c.name, c.holder, c.expires_at).where(c.name.in_(wanted[start:start + 500]))
        found.update({n: (h, e) for n, h, e in conn.execute(stmt)})
    return found
