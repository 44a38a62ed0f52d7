"""Several daemon replicas on one store: who works which account, decided in the store itself.

Each replica registers in `replicas` and heartbeats every third of a lease period. On each beat it
renews its leases, counts the live replicas (seen within one lease period), and takes or gives back
account leases so it holds its fair share: ceil(accounts / live replicas). Which accounts a replica
prefers is rendezvous hashing of (replica, account), so shares are stable while the set of replicas
is, and a replica that joins or leaves moves only its own share.

A replica holding an account runs all of that account's streams and sends its outbox actions, so
one account's traffic (and its rate budget) stays in one process. A replica that dies stops
renewing: its leases expire after one lease period and the survivors take them on their next beat,
so its work resumes elsewhere within about 1⅓ lease periods. A clean stop gives everything back at
once. Store-wide jobs (points, members, action planning) take a lease per run.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import Table, delete, func, select
from sqlalchemy.engine import Engine

from store.tables import ReplicaRow
from store.upsert import dialect_insert
from sync.leases import Fence, Lease, Leases, db_now, holders

__all__ = ["Coordinator", "account_lease", "replica_summary"]

log = logging.getLogger("loyalsync.cluster")
REPLICAS: Table = ReplicaRow.__table__  # type: ignore[assignment]
SETTLE_SECONDS = 2.0


def account_lease(marketplace: str, account: str) -> str:
    """The lease name of one account: its streams and its outbox."""
    return f"account:{marketplace}/{account}"


def _preference(replica: str, name: str) -> int:
    """Rendezvous weight of `name` for `replica`: each replica prefers a different subset."""
    return int.from_bytes(hashlib.blake2b(f"{replica}\x00{name}".encode(), digest_size=8).digest(), "big")


class Coordinator:
    """One replica's share of the accounts, kept through leases; call `beat` every `interval`."""

    def __init__(self, engine: Engine, replica: str, ttl: timedelta, accounts: Sequence[str], *,
                 busy: Callable[[str], bool] = lambda name: False):
        """`accounts` are lease names (`account_lease`); `busy(name)` says a run under it is going on,
        so its lease is not handed to another replica mid-run."""
        self.engine = engine
        self.replica = replica
        self.ttl = ttl
        self.accounts = list(accounts)
        self.busy = busy
        self.leases = Leases(engine, replica, ttl)
        self.incarnation = uuid.uuid4().hex
        self._registered = False
        self.live = 1

    @property
    def interval(self) -> float:
        """Seconds between beats: three renewals per lease period, so one slow beat loses nothing."""
        return self.ttl.total_seconds() / 3

    def holds(self, name: str) -> Lease | None:
        return self.leases.get(name)

    def fence(self, lease: Lease) -> Fence:
        return self.leases.fence(lease)

    def start(self) -> tuple[list[str], list[str]]:
        """Register, void what an earlier process of this name held, and take a first share.

        On PostgreSQL, replicas often start together (`compose up --scale`): each registers, then
        waits a moment for the others to register too, so none takes every account at first.
        """
        self.leases.release_all()
        if self.engine.dialect.name != "sqlite":
            self._heartbeat()
            time.sleep(min(SETTLE_SECONDS, self.interval))
        return self.beat()

    def beat(self) -> tuple[list[str], list[str]]:
        """Heartbeat, renew, rebalance; the account leases (gained, lost or given back) of this beat."""
        self._heartbeat()
        lost = self.leases.renew()
        for name in lost:
            log.warning("lease %s lost (not renewed in time); another replica may have taken it", name)
        gained, given = self._balance()
        return gained, lost + given

    def stop(self) -> None:
        """Give every lease back and leave, so the other replicas take the work over at once."""
        self.leases.release_all()
        with self.engine.begin() as conn:
            conn.execute(delete(REPLICAS).where(REPLICAS.c.name == self.replica,
                                                REPLICAS.c.incarnation == self.incarnation))

    # -- store-wide jobs ------------------------------------------------------------------------

    def try_job(self, name: str) -> Lease | None:
        """A store-wide job's lease for one run, or None while another replica runs it."""
        return self.leases.acquire(f"job:{name}")

    def end_job(self, lease: Lease) -> None:
        self.leases.release(lease.name)

    # -- internals ------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        c = REPLICAS.c
        with self.engine.begin() as conn:
            now = db_now(conn)
            row = conn.execute(select(c.incarnation, c.seen_at).where(c.name == self.replica)).first()
            # Another incarnation's row before our first beat is our own earlier, dead process
            # (a restart); after it, someone wrote over ours since: a second live process.
            if (self._registered and row is not None and row.incarnation != self.incarnation
                    and row.seen_at > now - self.ttl):
                log.error("another live process also calls itself replica %r: give each replica its own "
                          "[cluster] replica (or LOYALSYNC_REPLICA)", self.replica)
            stmt = dialect_insert(conn, REPLICAS).values(name=self.replica, incarnation=self.incarnation,
                                                         started_at=now, seen_at=now)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[c.name], set_={"incarnation": self.incarnation, "seen_at": now}))
            live = conn.execute(select(func.count()).select_from(REPLICAS)
                                .where(c.seen_at >= now - self.ttl)).scalar_one()
            # Replicas unseen for many lease periods are gone: keep the table to the living.
            conn.execute(delete(REPLICAS).where(c.seen_at < now - 10 * self.ttl))
        self.live = max(1, int(live))
        self._registered = True

    def _balance(self) -> tuple[list[str], list[str]]:
        share = math.ceil(len(self.accounts) / self.live) if self.accounts else 0
        held = [n for n in self.leases.held if n.startswith("account:")]
        given: list[str] = []
        if len(held) > share:
            # Give back the ones this replica likes least, never one with a run going on.
            idle = sorted((n for n in held if not self.busy(n)), key=lambda n: _preference(self.replica, n))
            given = idle[:len(held) - share]
            self.leases.release_many(given)
            return [], given
        gained: list[str] = []
        if len(held) < share:
            mine = set(held)
            with self.engine.connect() as conn:
                now = db_now(conn)
                taken = holders(conn, (n for n in self.accounts if n not in mine))
            free = [n for n in self.accounts
                    if n not in mine and (n not in taken or taken[n][1] < now or taken[n][0] == self.replica)]
            free.sort(key=lambda n: _preference(self.replica, n), reverse=True)
            # The most preferred first, in bulk; a lease another replica took meanwhile makes room
            # for the next ones in a further round.
            while free and len(held) + len(gained) < share:
                need = share - len(held) - len(gained)
                batch, free = free[:need], free[need:]
                gained += [lease.name for lease in self.leases.acquire_many(batch)]
        return gained, given


def replica_summary(engine: Engine) -> list[str]:
    """One line per replica the store knows: live or not, accounts held, last heartbeat (`status`)."""
    from sync.leases import LEASES

    with engine.connect() as conn:
        now = db_now(conn)
        seen = conn.execute(select(REPLICAS.c.name, REPLICAS.c.seen_at).order_by(REPLICAS.c.name)).all()
        held = dict(conn.execute(
            select(LEASES.c.holder, func.count()).where(LEASES.c.name.like("account:%"),
                                                        LEASES.c.expires_at > now)
            .group_by(LEASES.c.holder)).all())
    return [f"replica {name}: {held.get(name, 0)} account(s) held, last heartbeat "
            f"{max(0, int((now - at).total_seconds()))} s ago" for name, at in seen]
