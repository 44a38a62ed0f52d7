"""The ten-minute loyalty run: only the members something happened to since the last run.

A member's ledger changes when one of its orders changes (a sync wrote a new status, total, return
or buyer), when one of its orders settles, when one of its lots becomes available (it may pay debt)
or expires, or when it spends points (the outbox refolds the member itself). So each run reads:

- orders whose row changed since the last run (`orders.changed_at`, the wall time of the write,
  read back `CHANGE_MARGIN` early: a sync transaction that started before the last run may commit
  after it), if they are settled: an order created within the settle delay earns nothing yet, and
  every settled order of its member was created before it, so nothing it does changes them;
- orders created between `last run − settle delay` and `now − settle delay`;
- members whose lots became available or expired by now: `loyalty_due`, which every write of a
  member's ledger keeps at its next such moment (`loyalty.ledger_rows.next_due`), so a member a
  failed run left due is still due on the next one;

and runs `loyalty.ledger.run_once` for those members only. The first run, and `loyalsync rebuild`,
take every member. The result equals one full run over the same orders (a property test compares
them), because every member left out has nothing new to write: its orders, its lots' dates and
its spends are what the last run saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, select

from loyalty.engine import SETTLE_DELAY, Member
from loyalty.ledger import RunResult, run_once
from loyalty.ledger_rows import DUE
from loyalty.rules import LoyaltySettings
from store import Store
from store.loyalty_tables import LoyaltyStateRow
from store.tables import OrderRow
from store.upsert import dialect_insert

__all__ = ["CHANGE_MARGIN", "IncrementalResult", "changed_members", "run_changed"]

ORDERS: Table = OrderRow.__table__  # type: ignore[assignment]
STATE: Table = LoyaltyStateRow.__table__  # type: ignore[assignment]
CHANGE_MARGIN = timedelta(minutes=10)
_LAST_RUN, _ORDERS_SEEN = "ledger.last_run", "ledger.orders_changed"


@dataclass(slots=True)
class IncrementalResult:
    """What one incremental run did: `full` when it had to take every member."""

    run: RunResult
    full: bool
    changed_orders: int = 0


def _state(conn: Any) -> dict[str, datetime]:
    return {name: at for name, at in conn.execute(select(STATE.c.name, STATE.c.at))}


def _save(conn: Any, values: dict[str, datetime]) -> None:
    stmt = dialect_insert(conn, STATE)
    stmt = stmt.on_conflict_do_update(index_elements=["name"], set_={"at": stmt.excluded.at})
    conn.execute(stmt, [{"name": k, "at": v} for k, v in values.items()])


def changed_members(store: Store, settings: LoyaltySettings, since_run: datetime, orders_seen: datetime,
                    now: datetime, settle_delay: timedelta = SETTLE_DELAY) -> tuple[set[Member], datetime | None, int]:
    """Members with something new since the last run; the latest `changed_at` read; how many orders."""
    c = ORDERS.c
    members: set[Member] = set()
    latest, count = orders_seen, 0
    with store.engine.connect() as conn:
        changed = select(c.marketplace, c.account, c.buyer_key, c.changed_at, c.created_at).where(
            c.changed_at > orders_seen - CHANGE_MARGIN, c.buyer_key.is_not(None))
        settled_before = now - settle_delay
        for mp, acct, buyer, at, created in conn.execute(changed):
            latest = max(latest, at)
            count += 1
            if created < settled_before:
                members.add((mp, acct, buyer))
            # else: not settled yet, so it writes nothing now and changes nothing of earlier orders
            # (they come before it); the `settling` read below wakes its member when it settles.
        # Per account, so the read uses the (marketplace, account, created_at) index (the accounts
        # come from that index too: orders of an account the config no longer names still count).
        for mp, acct in conn.execute(select(c.marketplace, c.account).distinct()).all():
            settling = select(c.marketplace, c.account, c.buyer_key).where(
                c.marketplace == mp, c.account == acct, c.created_at >= since_run - settle_delay,
                c.created_at < now - settle_delay, c.buyer_key.is_not(None))
            members.update(tuple(r) for r in conn.execute(settling))  # type: ignore[misc]
        due = select(DUE.c.marketplace, DUE.c.account, DUE.c.buyer_key).where(DUE.c.due_at <= now)
        members.update(tuple(r) for r in conn.execute(due))  # type: ignore[misc]
    return {m for m in members if m[2]}, latest, count


def run_changed(store: Store, settings: LoyaltySettings, now: datetime, *,
                settle_delay: timedelta = SETTLE_DELAY, full: bool = False) -> IncrementalResult:
    """Bring the ledger up to `now` for the members with something new (every member when `full`,
    or on the first run). Records where it got to only when the run succeeded."""
    with store.engine.connect() as conn:
        state = _state(conn)
    with store.engine.connect() as conn:
        newest = conn.execute(select(ORDERS.c.changed_at).order_by(ORDERS.c.changed_at.desc()).limit(1)).scalar()
    if full or _LAST_RUN not in state or _ORDERS_SEEN not in state:
        result = IncrementalResult(run_once(store, settings, now, settle_delay=settle_delay), full=True)
        seen = newest  # a store without orders yet: the next run is a full one again (cheap)
    else:
        members, seen, count = changed_members(store, settings, state[_LAST_RUN], state[_ORDERS_SEEN], now,
                                               settle_delay)
        result = IncrementalResult(run_once(store, settings, now, settle_delay=settle_delay, members=members),
                                   full=False, changed_orders=count)
    if settings.enabled:
        # Two clocks: `ledger.last_run` is the run's `now`, `ledger.orders_changed` the store's own
        # write times (`orders.changed_at`), so a job that runs late never skips a write.
        marks = {_LAST_RUN: max(now, state.get(_LAST_RUN, now))}
        if seen is not None:
            marks[_ORDERS_SEEN] = max(seen, state.get(_ORDERS_SEEN, seen))
        with store.engine.begin() as conn:
            _save(conn, marks)
    return result
