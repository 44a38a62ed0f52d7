"""The loyalty ledger: the run that keeps it equal to what the rules say, and balances read from it.

`run_once(store, settings, now)` plans each member's lots and take-backs (`loyalty.plan`), writes
what is new, then folds the member's whole ledger (`loyalty.fold`) and writes what is left in each
lot, what expired and what was forgiven (`loyalty.ledger_rows`). One transaction per batch of
members; every insert is keyed, so a second run over the same data writes nothing, and two runs at
once write the same keys (the second is a no-op). The rules are docs/loyalty-rules.md.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

import loyalty.batch as write_batch
from loyalty.batch import BatchCounts, plan_member, write_plans
from loyalty.bulk_load import BulkLoad, bulk_load, restore_key_index
from loyalty.engine import EARN, EXPIRE, REVERSE, SETTLE_DELAY, BudgetCutoff, Entry, Member, OrderFact, lot_position
from loyalty.fold import FoldLot, Spend, TakeBack, fold
from loyalty.ledger_rows import DUE, LEDGER, SPEND, insert_new, member_rows, refold
from loyalty.order_source import MEMBER_BATCH, batches, members_of, orders_of
from loyalty.plan import member_entries
from loyalty.rules import LoyaltySettings
from store.db import in_memory
from store.store import Store
from store.types import binders

__all__ = ["LEDGER", "ApplyResult", "Balances", "RunResult", "apply", "apply_in", "balances", "balances_of_rows",
           "entries_of", "expire_once", "lasting_available", "rows_by_member", "run_once"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Balances:
    """A member's figures at a moment (docs/loyalty-rules.md §7).

    `expired` is what lots lost to expiry and no take-back forgave; `expired_unwritten` the part of
    it whose `expire` entry a run has not written yet (a lot past its `expires_at` since the last run).
    `lifetime` is what was granted less what was taken back.
    """

    pending: Decimal
    available: Decimal
    lifetime: Decimal
    debt: Decimal
    expired: Decimal = _ZERO
    expired_unwritten: Decimal = _ZERO

    @property
    def total(self) -> Decimal:
        """Equals the sum of the member's ledger amounts (the invariant the tests check)."""
        return self.pending + self.available + self.expired_unwritten - self.debt


@dataclass(slots=True)
class ApplyResult:
    """What one `apply` changed."""

    inserted: int = 0
    updated: int = 0


@dataclass(slots=True)
class RunResult:
    """What one `run_once` did; `no_identity` counts orders without a buyer key per marketplace."""

    members: int = 0
    orders: int = 0
    inserted: int = 0
    filled: int = 0  # lots whose available_from/expires_at were written
    late: int = 0
    expired: int = 0  # expire entries written
    no_identity: dict[str, int] = field(default_factory=dict)

    def add(self, counts: BatchCounts) -> None:
        self.inserted += counts.inserted
        self.filled += counts.filled
        self.late += counts.late
        self.expired += counts.expired


def _engine(target: Any) -> Engine:
    return target.engine if hasattr(target, "engine") else target


def apply(target: Any, entries: Iterable[Entry], *, now: datetime | None = None) -> ApplyResult:
    """Write `entries` (e.g. a `spend` the outbox made) in one transaction, then refold their members
    at `now` (default: the latest `effective_at` among them). Keys already present change nothing."""
    entries = list(entries)
    result = ApplyResult()
    if not entries:
        return result
    with _engine(target).begin() as conn:
        return apply_in(conn, entries, now=now)


def apply_in(conn: Connection, entries: Sequence[Entry], *, now: datetime | None = None) -> ApplyResult:
    """`apply` inside the caller's transaction (the outbox writes a spend with its action's state)."""
    result = ApplyResult()
    if not entries:
        return result
    at = now or max(e.effective_at for e in entries)
    result.inserted = len(insert_new(conn, entries))
    members = {(e.marketplace, e.account, e.buyer_key) for e in entries}
    for member, rows in member_rows(conn, members, lock=True).items():
        result.updated += refold(conn, member, rows, at)[1]
    return result


def entries_of(target: Any, member: Member | None = None) -> list[dict[str, Any]]:
    """Ledger rows (of one member, or all), oldest first."""
    stmt = select(LEDGER).order_by(LEDGER.c.id)
    if member is not None:
        mp, acct, buyer = member
        stmt = stmt.where(LEDGER.c.marketplace == mp, LEDGER.c.account == acct, LEDGER.c.buyer_key == buyer)
    with _engine(target).connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def _fold_input(rows: Iterable[dict[str, Any]]) -> tuple[list[FoldLot], list[TakeBack], list[Spend]]:
    """Ledger rows as the fold's lots, take-backs and spends."""
    lots, takes, spends = [], [], []
    for r in rows:
        kind, key, identity = r["kind"], r["idempotency_key"], (r["order_id"] or "", r["rule"] or "")
        if kind == EARN:
            lots.append(FoldLot(key, identity, r["amount"], r["effective_at"], r["available_from"], r["expires_at"]))
        elif kind == REVERSE:
            takes.append(TakeBack(key, identity, -r["amount"], r["effective_at"]))
        elif kind == SPEND:
            spends.append(Spend(key, -r["amount"], r["effective_at"]))
    return lots, takes, spends


def balances_of_rows(rows: Iterable[dict[str, Any]], now: datetime) -> Balances:
    """One member's balances at `now` from its ledger rows: the fold (`loyalty.fold`) replayed to `now`.

    Exact at any moment, past ones too (`members --now`): a lot past its `expires_at` is expired
    and a lot that became available pays outstanding debt, whether or not a run has written that
    yet. The `expire` and forgiveness entries a run writes are what the same fold said.
    """
    rows = list(rows)
    written = sum((-r["amount"] for r in rows if r["kind"] == EXPIRE and r["effective_at"] <= now), _ZERO)
    f = fold(*_fold_input(rows), now).balances
    assert f is not None
    return Balances(pending=f.pending, available=f.available, lifetime=f.lifetime, debt=f.debt,
                    expired=f.expired, expired_unwritten=max(f.expired_gross - written, _ZERO))


def lasting_available(rows: Iterable[dict[str, Any]], now: datetime, until: datetime) -> Decimal:
    """What of a member's available points at `now` is in lots that do not expire by `until`, less
    debt: what a spend sent any time up to `until` is sure to find (a promo code proposed now)."""
    lots, takes, spends = _fold_input(rows)
    result = fold(lots, takes, spends, now)
    assert result.balances is not None
    lasting = sum((result.remaining[lot.key] for lot in lots
                   if lot.available_from is not None and lot.available_from <= now
                   and (lot.expires_at is None or lot.expires_at > until)), _ZERO)
    return lasting - result.balances.debt


def rows_by_member(rows: Iterable[dict[str, Any]]) -> dict[Member, list[dict[str, Any]]]:
    """Ledger rows grouped by member, each member's in the order given."""
    out: dict[Member, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r["marketplace"], r["account"], r["buyer_key"]), []).append(r)
    return out


def balances(target: Any, member: Member, now: datetime) -> Balances:
    """A member's pending, available, lifetime, debt and expired points at `now`, from the ledger."""
    return balances_of_rows(entries_of(target, member), now)


def run_once(store: Store, settings: LoyaltySettings, now: datetime, *, settle_delay=SETTLE_DELAY,
             members: Iterable[Member] | None = None) -> RunResult:
    """Bring the ledger of every member (or only `members`) up to what the rules say at `now`.

    Budget: `per_member_points` is applied per member in lot order. `total_points` needs one global
    order: when it is set, a first read-only pass finds where the budget runs out among every
    member's new lots (`lot_position`), and the writing pass grants up to there.
    """
    result = RunResult()
    if settings.enabled:
        restore_key_index(store.engine)
    if members is None and settings.enabled:
        with bulk_load(store.engine) as load:
            if not _parallel(store, settings, now, settle_delay, result, load):
                _in_this_process(store, settings, now, settle_delay, result, None, load)
        result.expired += expire_once(store, now)
        return result
    _in_this_process(store, settings, now, settle_delay, result, members, None)
    return result


def _in_this_process(store: Store, settings: LoyaltySettings, now: datetime, settle_delay: Any, result: RunResult,
                     members: Iterable[Member] | None, load: BulkLoad | None) -> None:
    """`run_once` planning and writing in this process (every member when `members` is None)."""
    chosen = None if members is None else sorted(orders_of(store, settings, members).items())
    source = members_of(store, settings, result.no_identity) if chosen is None else iter(chosen)
    if not settings.enabled:
        for _member, orders in source:
            result.members += 1
            result.orders += len(orders)
        return
    # Only the chosen members can have new lots: the others have nothing new (loyalty.incremental).
    cutoff = _budget_cutoff(store, settings, now, settle_delay, chosen)
    # Planned MEMBER_BATCH members at a time (memory), written WRITE_MEMBERS a transaction (fewer
    # commits, loyalty.batch). An in-memory SQLite database is one connection per thread: the order
    # reads between batches would end the transaction, so there each batch is its own.
    per_write = MEMBER_BATCH if in_memory(store.engine.url) else write_batch.WRITE_MEMBERS
    for group in _groups(batches(source), per_write):
        with store.engine.begin() as conn:
            for batch in group:
                for _member, orders in batch:
                    result.members += 1
                    result.orders += len(orders)
                _process(conn, batch, settings, now, settle_delay, result, cutoff, load)


def _parallel(store: Store, settings: LoyaltySettings, now: datetime, settle_delay: Any, result: RunResult,
              load: BulkLoad | None) -> bool:
    """Every member planned in worker processes (`loyalty.parallel`), if the store allows and there
    are enough members; False when the run should go on in this process."""
    from loyalty.parallel import every_buyer, orders_by_marketplace, plan_in_workers, workers_for

    if getattr(type(store), "iter_orders", None) is not Store.iter_orders:
        return False  # another order source (simulate's view): read through it here
    buyers = every_buyer(store.engine)
    workers = workers_for(store.engine, len(buyers))
    if workers <= 1:
        return False
    total = orders_by_marketplace(store.engine, settings)
    cutoff = _budget_cutoff(store, settings, now, settle_delay)
    keyed: Counter[str] = Counter()
    for members, orders, counts in plan_in_workers(store, buyers, settings, now, settle_delay, cutoff, workers,
                                                   load):
        result.members += members
        keyed += orders
        result.add(counts)
    result.orders = sum(keyed.values())
    # Orders without a buyer key: the ones the workers did not read (no order row read for them).
    result.no_identity.update({mp: n - keyed[mp] for mp, n in total.items() if n > keyed[mp]})
    return True


def _groups(source: Iterator[list], members: int) -> Iterator[Iterator[list]]:
    """`source`'s batches in groups of about `members` members, each group read as it is consumed
    (consume each group before asking for the next)."""
    for first in source:
        def group(first: list = first) -> Iterator[list]:
            count = len(first)
            yield first
            while count < members:
                nxt = next(source, None)
                if nxt is None:
                    return
                count += len(nxt)
                yield nxt
        yield group()


def _process(conn: Connection, batch: list[tuple[Member, list[OrderFact]]], settings: LoyaltySettings,
             now: datetime, settle_delay: Any, result: RunResult, cutoff: BudgetCutoff | None,
             load: BulkLoad | None = None) -> None:
    """One batch of members in the caller's transaction: read their rows, plan, write (`loyalty.batch`)."""
    recorded = member_rows(conn, [m for m, _ in batch], lock=True)
    bind = binders(conn.dialect)
    plans = [plan_member(m, orders, recorded[m], settings, now, settle_delay, cutoff, bind) for m, orders in batch]
    current = {m: {r.id: r.remaining for r in rows if r.id is not None} for m, rows in recorded.items()}
    result.add(write_plans(conn, plans, now, current=current, load=load))


class _Latest:
    """A new lot in the budget's heap, ordered so that the LATEST position is on top."""

    __slots__ = ("position", "amount")

    def __init__(self, position: tuple, amount: Decimal):
        self.position, self.amount = position, amount

    def __lt__(self, other: _Latest) -> bool:
        return self.position > other.position


def _granted(target: Any) -> Decimal:
    """Every point the program ever granted: the sum of earn entries (taking back gives none back)."""
    total = _ZERO
    with _engine(target).connect() as conn:
        for (amount,) in conn.execute(select(LEDGER.c.amount).where(LEDGER.c.kind == EARN)):
            total += Decimal(amount)
    return total


def _budget_cutoff(store: Store, settings: LoyaltySettings, now: datetime, settle_delay: Any,
                   chosen: list[tuple[Member, list[OrderFact]]] | None = None) -> BudgetCutoff | None:
    """Where `budget.total_points` runs out among this run's new lots; None when they all fit.

    Keeps only the lots that can still fall inside the budget (a heap with the latest on top,
    popped while the rest still exhaust it), so memory follows the budget, not the order table.
    """
    total = settings.budget.total_points
    if total is None:
        return None
    left = total - _granted(store)
    if left <= 0:
        return BudgetCutoff(None)
    heap: list[_Latest] = []
    held = _ZERO
    for batch in batches(members_of(store, settings) if chosen is None else iter(chosen)):
        with store.engine.connect() as conn:
            recorded = member_rows(conn, [m for m, _ in batch])
        for member, orders in batch:
            known = {r.entry.idempotency_key: r.entry for r in recorded[member]}
            for e in member_entries(orders, settings, known, now, settle_delay=settle_delay):
                if e.kind != EARN or e.idempotency_key in known:
                    continue
                heapq.heappush(heap, _Latest(lot_position(e, settings), e.amount))
                held += e.amount
                while heap and held - heap[0].amount >= left:
                    held -= heapq.heappop(heap).amount
    if held < left:
        return None  # everything new fits
    spent = _ZERO
    for lot in sorted(heap, key=lambda item: item.position):
        if spent + lot.amount >= left:
            return BudgetCutoff(lot.position, left - spent)
        spent += lot.amount
    raise AssertionError("unreachable: the held lots reach the budget")


def expire_once(target: Any, now: datetime) -> int:
    """Refold every member whose points changed by time alone by `now` (a lot expired or became
    available: `loyalty_due`, which every ledger write keeps); the number of `expire` entries
    written. Safe to run any time, twice, or beside a run."""
    c = DUE.c
    engine = _engine(target)
    with engine.connect() as conn:
        due = sorted(tuple(r) for r in conn.execute(select(c.marketplace, c.account, c.buyer_key)
                                                    .where(c.due_at <= now)))
    written = 0
    for start in range(0, len(due), 500):
        with engine.begin() as conn:
            for member, rows in member_rows(conn, due[start:start + 500], lock=True).items():
                written += refold(conn, member, rows, now)[0]
    return written
