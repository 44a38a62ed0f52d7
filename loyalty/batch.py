"""One batch of members through the ledger job: plan each member (pure), then write the plans.

`plan_member` takes a member's orders and recorded ledger rows and says everything the job will
write for it: the new entries (`loyalty.plan`), the lots whose dates moved, and what folding the
ledger as it will be says (`loyalty.ledger_rows.fold_rows`: `remaining` of every row, new `expire`
and forgiveness entries). `write_plans` writes a batch of plans in the caller's transaction.

The plan depends only on its inputs, so it can be made in another process (`loyalty.parallel`);
`write_plans` is told which members' ledgers changed since their rows were read (`stale`) and
plans those members again from scratch, and refolds members whose new keys another run wrote
first. Every insert is keyed: a second writer of the same plan writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.engine import Connection

from loyalty.bulk_load import BulkLoad
from loyalty.engine import EARN, EXPIRE, BudgetCutoff, Entry, Member, OrderFact
from loyalty.ledger_rows import (
    LEDGER,
    Row,
    bound_rows,
    due_of,
    fold_rows,
    insert_bound,
    member_filters,
    member_rows,
    next_due,
    refold,
    set_availability,
    write_due,
    write_remaining,
)
from loyalty.plan import member_entries
from loyalty.rules import LoyaltySettings
from store.types import Binders, raw, readers

__all__ = ["WRITE_MEMBERS", "BatchCounts", "MemberPlan", "current_rows", "plan_member", "write_plans"]

log = logging.getLogger("loyalsync.loyalty")

# Members per write transaction in a full run. SQLite writes every index page a transaction dirtied
# at its commit, and new keys land on random pages of the ledger's key index: 1.3 million rows
# written 6,500 a commit cost 24 s, 65,000 a commit 14 s, in one commit 9 s (raw sqlite3, same
# schema); the 1M-order rebuild took 50 s at 4,000 members a transaction, 43 s at 12,000, 43 s at
# 25,000. 10,000 members (~130,000 rows) hold the write lock ~2 s at a time.
WRITE_MEMBERS = 10_000


@dataclass(slots=True)
class MemberPlan:
    """What the job writes for one member, planned from the rows it read (`seen`: how many, and the
    highest id, which tells whether the ledger changed since: it is append-only). New entries come
    bound for the insert (`loyalty.ledger_rows.bound_rows`), so a plan made in another process
    travels as plain tuples."""

    member: Member
    seen: tuple[int, int]
    rows: list[tuple] = field(default_factory=list)  # the new entries, with what the fold leaves in them
    derived: list[tuple] = field(default_factory=list)  # the fold's new expire and forgiveness entries
    updates: dict[int, Decimal] = field(default_factory=dict)  # recorded row id -> remaining the fold says
    moved: list[tuple[int, datetime | None, datetime | None]] = field(default_factory=list)
    late: list[str] = field(default_factory=list)  # orders that earned after a later order had
    due: datetime | None = None  # when its points next change by time alone (`loyalty_due`)

    def __reduce__(self) -> tuple:
        # Pickled as its fields (a plan crosses from a worker process): a slotted dataclass's own
        # state protocol took half the unpickling time of a full rebuild's plans in the writer.
        return (MemberPlan, (self.member, self.seen, self.rows, self.derived, self.updates, self.moved,
                             self.late, self.due))


@dataclass(slots=True)
class BatchCounts:
    """What writing plans did (the job's RunResult adds these up)."""

    inserted: int = 0
    filled: int = 0
    expired: int = 0
    late: int = 0


def signature(rows: Iterable[Row]) -> tuple[int, int]:
    ids = [r.id for r in rows if r.id is not None]
    return (len(ids), max(ids, default=0))


def plan_member(member: Member, orders: list[OrderFact], rows: list[Row], settings: LoyaltySettings,
                now: datetime, settle_delay: timedelta, cutoff: BudgetCutoff | None, bind: Binders) -> MemberPlan:
    """Plan one member from its orders and its recorded rows (pure; `bind`: the database's converters)."""
    plan = MemberPlan(member, signature(rows))
    by_key = {r.entry.idempotency_key: r for r in rows}
    known = {k: r.entry for k, r in by_key.items()}
    latest = max((r.entry.effective_at for r in rows if r.entry.kind == EARN), default=None)
    after = dict(by_key)
    new: list[Entry] = []
    for e in member_entries(orders, settings, known, now, settle_delay=settle_delay, cutoff=cutoff):
        old = by_key.get(e.idempotency_key)
        if old is None:
            new.append(e)
            after[e.idempotency_key] = Row(None, e, None)
            if e.kind == EARN and latest is not None and e.effective_at < latest:
                plan.late.append(e.order_id or "")
        elif e.kind == EARN and (old.entry.available_from, old.entry.expires_at) != (e.available_from, e.expires_at):
            assert old.id is not None
            plan.moved.append((old.id, e.available_from, e.expires_at))
            after[e.idempotency_key] = Row(old.id, e, old.remaining)
    folded = fold_rows(list(after.values()), now)
    plan.due = next_due((r.entry for r in after.values()), now)
    plan.rows = bound_rows(bind, new, folded.remaining)
    plan.derived = bound_rows(bind, folded.new)
    plan.updates = {r.id: folded.remaining[r.entry.idempotency_key] for r in rows
                    if r.id is not None and r.entry.idempotency_key in folded.remaining}
    return plan


def current_rows(conn: Connection, members: list[Member], *, lock: bool) -> dict[Member, dict[int, Decimal | None]]:
    """Per member: {id: remaining} of its ledger rows now (locked on PostgreSQL while `lock`)."""
    c = LEDGER.c
    money = readers(conn.dialect).money
    out: dict[Member, dict[int, Decimal | None]] = {m: {} for m in members}
    for where in member_filters(members):
        stmt = select(c.id, c.marketplace, c.account, c.buyer_key, raw(c.remaining)).where(*where)
        if lock:
            stmt = stmt.with_for_update()
        for row_id, mp, acct, buyer, left in conn.execute(stmt):
            out[(mp, acct, buyer)][row_id] = money(left)
    return out


def write_plans(conn: Connection, plans: list[MemberPlan], now: datetime,
                replan: Callable[[Connection, list[Member]], list[MemberPlan]] | None = None,
                current: Mapping[Member, Mapping[int, Decimal | None]] | None = None,
                load: BulkLoad | None = None) -> BatchCounts:
    """Write `plans` in `conn`'s transaction.

    `current` is each member's {id: remaining} as the ledger holds it now, read in this transaction
    (read here when not given). A member whose ledger changed since its plan was made is planned
    again with `replan` (in this transaction) before anything of it is written. With `load` (a
    first run into an empty ledger, `loyalty.bulk_load`) the entries go in as plain INSERTs.
    """
    if load is not None:
        load.renew(conn)
    counts = BatchCounts()
    members = [p.member for p in plans]
    now_rows: Mapping[Member, Mapping[int, Decimal | None]]
    now_rows = current if current is not None else current_rows(conn, members, lock=True)
    stale = [p.member for p in plans if _changed(p, now_rows.get(p.member, {}))]
    if stale:
        if replan is None:
            raise RuntimeError("the ledger changed under a plan and no replan was given")
        again = {p.member: p for p in replan(conn, stale)}
        plans = [again.get(p.member, p) for p in plans]
        now_rows = {**now_rows, **current_rows(conn, stale, lock=True)}
    for p in plans:
        for order_id in p.late:
            # Arrived after a later order earned: decided on what was known then (docs §9).
            counts.late += 1
            log.warning("loyalty: late order %s/%s/%s earned after later orders", p.member[0], p.member[1], order_id)
    rows = [r for p in plans for r in p.rows]
    inserted = insert_bound(conn, rows, keyed=load is None)
    counts.inserted += len(inserted)
    counts.filled += set_availability(conn, [m for p in plans for m in p.moved])
    every_row = len(inserted) == len(rows)  # the usual case: no other run wrote any of these keys
    raced = set() if every_row else {p.member for p in plans if any(r[2] not in inserted for r in p.rows)}
    derived = [r for p in plans if p.member not in raced for r in p.derived]
    written = insert_bound(conn, derived, keyed=load is None)
    counts.expired += sum(1 for r in derived if r[0] == EXPIRE and r[2] in written)
    updates = []
    for p in plans:
        if p.member in raced:
            continue
        have = now_rows.get(p.member, {})
        for row_id, want in p.updates.items():
            current = have.get(row_id)
            if current is None or Decimal(current) != want:
                updates.append((row_id, want))
    write_remaining(conn, updates)
    written_due = [p for p in plans if p.member not in raced]
    write_due(conn, {p.member: p.due for p in written_due}, recorded=due_of(conn, [p.member for p in written_due]))
    # Another run wrote some of these keys first: read those members again (its rows included) and
    # fold them as they are now (our writes hold their rows from here on).
    for member, rows in member_rows(conn, sorted(raced), lock=True).items():
        counts.expired += refold(conn, member, rows, now)[0]
    return counts


def _changed(plan: MemberPlan, rows_now: Mapping[int, Decimal | None]) -> bool:
    return (len(rows_now), max(rows_now, default=0)) != plan.seen
