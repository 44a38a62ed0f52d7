"""A full ledger run on several processes: members are planned in worker processes, written here.

Planning is pure and per member (`loyalty.batch.plan_member`), and it is most of a full run's
time, so worker processes each read a chunk of members (orders and ledger rows, their own database
connection) and plan it, while this process writes the plans as they come, one transaction per
`loyalty.batch.WRITE_MEMBERS` members. `write_plans` checks in that transaction that no member's
ledger changed since its worker read it (else plans it again there), so the result is the one a
single process writes.

Used for full runs over many members (`loyalsync loyalty rebuild`, a first run); not where the
database cannot be opened twice (in-memory SQLite). Workers are spawned, never forked: the daemon
has threads. `LOYALSYNC_LOYALTY_WORKERS` sets how many (1: one process).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

import loyalty.batch as write_batch
from connectors.errors import LoyalsyncError
from loyalty.batch import BatchCounts, MemberPlan, plan_member, write_plans
from loyalty.bulk_load import BulkLoad
from loyalty.engine import BudgetCutoff, Member
from loyalty.ledger_rows import member_rows
from loyalty.order_source import MEMBER_BATCH, ORDERS, orders_of, orders_of_buyers
from loyalty.rules import LoyaltySettings
from store import Store, connect
from store.db import in_memory
from store.types import binders

__all__ = ["MIN_MEMBERS", "WORKERS_ENV", "WorkerLost", "every_buyer", "orders_by_marketplace", "plan_in_workers",
           "workers_for"]

log = logging.getLogger("loyalsync.loyalty")
WORKERS_ENV = "LOYALSYNC_LOYALTY_WORKERS"
MIN_MEMBERS = 2000  # below this, starting processes costs more than they save
_MAP_BYTES = 1 << 34  # up to 16 GiB of the database file mapped (SQLite maps what the file holds)
_IN_FLIGHT = 2  # chunks queued per worker: enough to keep them busy, bounded memory


class WorkerLost(LoyalsyncError):
    """A planning process ended without its answer (killed: most often out of memory)."""

    def __init__(self, workers: int):
        super().__init__(
            f"a loyalty worker process died during the full run ({workers} processes; most often the "
            f"system or the container's memory limit killed it). What was written is kept and a run "
            f"continues from it: run again with fewer processes ({WORKERS_ENV}=1 plans in one process "
            f"and needs the least memory) or give the container more memory.")


def workers_for(engine: Engine, members: int) -> int:
    """How many worker processes a full run over `members` members uses (1: none)."""
    if in_memory(engine.url):
        return 1
    wanted = os.environ.get(WORKERS_ENV)
    if wanted is not None:
        try:
            return max(1, int(wanted))
        except ValueError:
            log.warning("%s=%r is not a number of processes; using the default (one per CPU)", WORKERS_ENV, wanted)
    if members < MIN_MEMBERS:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def every_buyer(engine: Engine) -> list[str]:
    """Every buyer key in the orders, sorted (a key only on marketplaces switched off plans no member).

    Buyer keys, not members: DISTINCT over the buyer-key index alone reads no order row (0.1 s at a
    million orders, 4 s for the (marketplace, account, buyer) triples); workers find each key's
    members among the orders they read anyway."""
    c = ORDERS.c
    stmt = select(c.buyer_key).distinct().where(c.buyer_key.is_not(None), c.buyer_key != "")
    with engine.connect() as conn:
        return sorted(conn.execute(stmt).scalars())


def orders_by_marketplace(engine: Engine, settings: LoyaltySettings) -> dict[str, int]:
    """Orders per marketplace the program does not switch off (an index-only count)."""
    c = ORDERS.c
    off = [mp for mp, over in settings.marketplaces.items() if not over.enabled]
    stmt = select(c.marketplace, func.count()).group_by(c.marketplace)
    with engine.connect() as conn:
        return {mp: int(n) for mp, n in conn.execute(stmt) if mp not in off}


# -- in a worker process ---------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _start(url: str, settings: LoyaltySettings, now: datetime, settle_delay: timedelta,
           cutoff: BudgetCutoff | None) -> None:
    engine = connect(url, connections=1)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _map_for_reading)
    _WORKER.update(store=Store(engine), settings=settings, now=now, settle_delay=settle_delay, cutoff=cutoff)


def _map_for_reading(dbapi_conn: Any, _record: Any) -> None:
    """A worker reads its members' orders at random places of the table: through a memory map
    SQLite copies no page (bench/loyalty.py: a fifth less CPU for the reads). Only this read-only
    process maps the file; a database file cut short under it (a VACUUM by hand) would end the
    process, which the run reports as `WorkerLost`."""
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA mmap_size={_MAP_BYTES}")
    cur.close()


def _plan_chunk(buyers: list[str]) -> tuple[list[MemberPlan], Counter[str]]:
    """Plans for the members with these buyer keys, and how many orders they have per marketplace,
    read in this worker."""
    w = _WORKER
    store, settings = w["store"], w["settings"]
    orders = orders_of_buyers(store, settings, buyers)
    members = sorted(orders)
    with store.engine.connect() as conn:
        rows = member_rows(conn, members)
    bind = binders(store.engine.dialect)
    plans = [plan_member(m, orders[m], rows[m], settings, w["now"], w["settle_delay"], w["cutoff"], bind)
             for m in members]
    return plans, _per_marketplace(orders)


def _per_marketplace(orders: dict[Member, list]) -> Counter[str]:
    out: Counter[str] = Counter()
    for (mp, _acct, _buyer), facts in orders.items():
        out[mp] += len(facts)
    return out


# -- in this process -------------------------------------------------------------------------------

def plan_in_workers(store: Store, buyers: list[str], settings: LoyaltySettings, now: datetime,
                    settle_delay: timedelta, cutoff: BudgetCutoff | None, workers: int,
                    load: BulkLoad | None = None) -> Iterator[tuple[int, Counter[str], BatchCounts]]:
    """Plan the members of `buyers` in `workers` processes and write the plans here; per write:
    (members, their orders per marketplace, counts)."""
    url = store.engine.url.render_as_string(hide_password=False)
    chunks = [buyers[i:i + MEMBER_BATCH] for i in range(0, len(buyers), MEMBER_BATCH)]

    def replan(conn: Any, stale: list[Member]) -> list[MemberPlan]:
        orders = orders_of(store, settings, stale)
        rows = member_rows(conn, stale, lock=True)
        bind = binders(conn.dialect)
        return [plan_member(m, orders.get(m, []), rows[m], settings, now, settle_delay, cutoff, bind) for m in stale]

    # Enough chunks queued that the workers keep planning while this process writes a group.
    in_flight = workers * _IN_FLIGHT + write_batch.WRITE_MEMBERS // MEMBER_BATCH
    # An executor, not multiprocessing.Pool: a Pool replaces a killed worker and waits for its lost
    # chunk forever; the executor says the pool broke (`WorkerLost`).
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start,
                                 initargs=(url, settings, now, settle_delay, cutoff)) as pool:
            pending: deque = deque(pool.submit(_plan_chunk, chunk) for chunk in chunks[:in_flight])
            queued = iter(chunks[in_flight:])
            group: list[MemberPlan] = []
            group_orders: Counter[str] = Counter()
            while pending:
                plans, orders = pending.popleft().result()
                nxt = next(queued, None)
                if nxt is not None:
                    pending.append(pool.submit(_plan_chunk, nxt))
                group += plans
                group_orders += orders
                # Written in groups of WRITE_MEMBERS members: fewer, larger commits (loyalty.batch).
                if len(group) >= write_batch.WRITE_MEMBERS or not pending:
                    with store.engine.begin() as conn:
                        counts = write_plans(conn, group, now, replan=replan, load=load)
                    yield len(group), group_orders, counts
                    group, group_orders = [], Counter()
    except BrokenProcessPool:
        raise WorkerLost(workers) from None
