"""The loyalty ledger: the run that keeps it equal to what the rules say, and balances read from it.

`run_once(store, settings, now)` plans each member's lots and take-backs (`loyalty.plan`), writes
what is new, then folds the member's whole ledger (`loyalty.fold`) and writes what is left in each
lot, what expired and what was forgiven (`loyalty.ledger_rows`). One transaction per batch of
members; every insert is keyed, so a second run over the same data writes nothing, and two runs at
once write the same keys (the second is a no-op). The rules are docs/loyalty-rules.md.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from loyalty.engine import EARN, EXPIRE, REVERSE, SETTLE_DELAY, BudgetCutoff, Entry, Member, OrderFact, lot_position
from loyalty.fold import FoldLot, Spend, TakeBack, fold
from loyalty.ledger_rows import (
    LEDGER,
    SPEND,
    Folded,
    Row,
    fold_rows,
    insert_new,
    member_rows,
    refold,
    remaining_updates,
    set_availability,
)
from loyalty.order_source import batches, members_of, orders_of
from loyalty.plan import member_entries
from loyalty.rules import LoyaltySettings

__all__ = ["LEDGER", "ApplyResult", "Balances", "RunResult", "apply", "apply_in", "balances", "balances_of_rows",
           "entries_of", "expire_once", "lasting_available", "rows_by_member", "run_once"]

log = logging.getLogger("loyalsync.loyalty")
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


def run_once(store: Any, settings: LoyaltySettings, now: datetime, *, settle_delay=SETTLE_DELAY,
             members: Iterable[Member] | None = None) -> RunResult:
    """Bring the ledger of every member (or only `members`) up to what the rules say at `now`.

    Budget: `per_member_points` is applied per member in lot order. `total_points` needs one global
    order: when it is set, a first read-only pass finds where the budget runs out among every
    member's new lots (`lot_position`), and the writing pass grants up to there.
    """
    result = RunResult()
    chosen = None if members is None else sorted(orders_of(store, settings, members).items())
    source = members_of(store, settings, result.no_identity) if chosen is None else iter(chosen)
    if not settings.enabled:
        for _member, orders in source:
            result.members += 1
            result.orders += len(orders)
        return result
    # Only the chosen members can have new lots: the others have nothing new (loyalty.incremental).
    cutoff = _budget_cutoff(store, settings, now, settle_delay, chosen)
    for batch in batches(source):
        for _member, orders in batch:
            result.members += 1
            result.orders += len(orders)
        _process(store, batch, settings, now, settle_delay, result, cutoff)
    if chosen is None:
        result.expired += expire_once(store, now)
    return result


def _process(store: Any, batch: list[tuple[Member, list[OrderFact]]], settings: LoyaltySettings,
             now: datetime, settle_delay: Any, result: RunResult, cutoff: BudgetCutoff | None) -> None:
    """One batch of members: plan, fold what the ledger will hold, write it; one transaction.

    Each member's new entries are folded with its recorded rows before anything is written, so new
    lots go in with what is left of them and only changed rows are updated. If another run wrote
    some of the same keys first (the insert skips them), those members are read again and refolded.
    """
    with store.engine.begin() as conn:
        recorded = member_rows(conn, [m for m, _ in batch], lock=True)
        planned: list[Entry] = []
        moved: list[tuple[Row, Entry]] = []
        folds: dict[Member, tuple[list[Row], Folded]] = {}
        for member, orders in batch:
            rows = recorded[member]
            by_key = {r.entry.idempotency_key: r for r in rows}
            known = {k: r.entry for k, r in by_key.items()}
            latest = max((r.entry.effective_at for r in rows if r.entry.kind == EARN), default=None)
            after = {r.entry.idempotency_key: r for r in rows}
            for e in member_entries(orders, settings, known, now, settle_delay=settle_delay, cutoff=cutoff):
                old = by_key.get(e.idempotency_key)
                if old is None:
                    planned.append(e)
                    after[e.idempotency_key] = Row(None, e, None)
                    if e.kind == EARN and latest is not None and e.effective_at < latest:
                        # Arrived after a later order earned: decided on what was known then (docs §9).
                        result.late += 1
                        log.warning("loyalty: late order %s/%s/%s earned after later orders",
                                    e.marketplace, e.account, e.order_id)
                elif e.kind == EARN and (old.entry.available_from, old.entry.expires_at) != (
                        e.available_from, e.expires_at):
                    moved.append((old, e))
                    after[e.idempotency_key] = Row(old.id, e, old.remaining)
            mine = list(after.values())
            folds[member] = (mine, fold_rows(mine, now))
        remaining = {k: v for _, f in folds.values() for k, v in f.remaining.items()}
        inserted = insert_new(conn, planned, remaining)
        result.inserted += len(inserted)
        result.filled += set_availability(conn, [(r.id, e.available_from, e.expires_at) for r, e in moved])
        raced = {(e.marketplace, e.account, e.buyer_key) for e in planned if e.idempotency_key not in inserted}
        derived = [e for member, (_, f) in folds.items() if member not in raced for e in f.new]
        written = insert_new(conn, derived)
        result.expired += sum(1 for e in derived if e.kind == EXPIRE and e.idempotency_key in written)
        for member, (rows, f) in folds.items():
            if member not in raced:
                remaining_updates(conn, rows, f.remaining)
        # Another run wrote some of these keys first: read those members again (its rows included)
        # and fold them as they are now (our writes hold their rows from here on).
        for member, rows in member_rows(conn, sorted(raced), lock=True).items():
            result.expired += refold(conn, member, rows, now)[0]


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


def _budget_cutoff(store: Any, settings: LoyaltySettings, now: datetime, settle_delay: Any,
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
    """Refold every member with a lot past its `expires_at` that still holds points; the number of
    `expire` entries written. Safe to run any time, twice, or beside a run."""
    c = LEDGER.c
    stmt = (select(c.marketplace, c.account, c.buyer_key, c.remaining)
            .where(c.kind == EARN, c.expires_at.is_not(None), c.expires_at <= now))
    engine = _engine(target)
    with engine.connect() as conn:
        # Money is text on SQLite: compared here, not in SQL.
        due = sorted({(mp, acct, buyer) for mp, acct, buyer, left in conn.execute(stmt) if left and Decimal(left) > 0})
    written = 0
    for start in range(0, len(due), 500):
        with engine.begin() as conn:
            for member, rows in member_rows(conn, due[start:start + 500], lock=True).items():
                written += refold(conn, member, rows, now)[0]
    return written
