"""The ledger's persistence: idempotent inserts, lot consumption, balances, the earn job.

Every write is `INSERT ... ON CONFLICT (idempotency_key) DO NOTHING` plus the lot updates it
implies, in one transaction; re-running with the same orders changes nothing. Amounts are summed
in Python because SQLite keeps `Money` as text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Connection, Engine

from loyalty.engine import EARN, REVERSE, SETTLE_DELAY, Entry, Member, OrderFact, member_entries
from loyalty.rules import LoyaltySettings
from loyalty.tables import LedgerEntryRow
from sync.store.upsert import dialect_insert

__all__ = ["ApplyResult", "Balances", "RunResult", "apply", "balances", "entries_of", "run_once"]

log = logging.getLogger("loyalsync.loyalty")
LEDGER: Table = LedgerEntryRow.__table__  # type: ignore[assignment]
_ZERO = Decimal(0)
_BATCH_MEMBERS = 500
_ENTRY_FIELDS = ("kind", "amount", "idempotency_key", "order_id", "rule", "effective_at",
                 "available_from", "expires_at", "marketplace", "account", "buyer_key")


@dataclass(frozen=True, slots=True)
class Balances:
    """A member's figures; `expired` is what waits for the expire job (0 once it has run)."""

    pending: Decimal
    available: Decimal
    lifetime: Decimal
    debt: Decimal
    expired: Decimal = _ZERO

    @property
    def total(self) -> Decimal:
        """Equals the sum of the member's ledger amounts (the invariant the verify job checks)."""
        return self.pending + self.available + self.expired - self.debt


@dataclass(slots=True)
class ApplyResult:
    """What one `apply` changed."""

    inserted: int = 0
    filled: int = 0  # lots whose available_from/expires_at became known


@dataclass(slots=True)
class RunResult:
    """What one `run_once` did; `no_identity` counts orders without a buyer key per marketplace."""

    members: int = 0
    orders: int = 0
    inserted: int = 0
    filled: int = 0
    late: int = 0
    no_identity: dict[str, int] = field(default_factory=dict)


def _engine(target: Any) -> Engine:
    return target.engine if hasattr(target, "engine") else target


def _member_where(member: Member) -> tuple:
    mp, acct, buyer = member
    return (LEDGER.c.marketplace == mp, LEDGER.c.account == acct, LEDGER.c.buyer_key == buyer)


def apply(target: Any, entries: Iterable[Entry]) -> ApplyResult:
    """Write `entries` (a Store or an Engine) in one transaction; already-present keys change nothing."""
    with _engine(target).begin() as conn:
        return _apply(conn, entries)


def _apply(conn: Connection, entries: Iterable[Entry]) -> ApplyResult:
    result = ApplyResult()
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT that returns the new id.
    insert = (dialect_insert(conn, LEDGER).on_conflict_do_nothing(index_elements=["idempotency_key"])
              .returning(LEDGER.c.id))
    for e in entries:
        row = {f: getattr(e, f) for f in _ENTRY_FIELDS}
        # Lots start full; debits start as all debt and shrink as lots cover them.
        row["remaining"] = e.amount
        if conn.execute(insert, row).first() is not None:
            result.inserted += 1
            if e.amount < 0:
                _consume(conn, e)
        elif e.kind == EARN and e.available_from is not None:
            # Filled once: the first delivered time known wins, so re-runs never move it.
            stmt = (update(LEDGER)
                    .where(LEDGER.c.idempotency_key == e.idempotency_key, LEDGER.c.available_from.is_(None))
                    .values(available_from=e.available_from, expires_at=e.expires_at))
            result.filled += conn.execute(stmt).rowcount
    return result


def _consume(conn: Connection, debit: Entry) -> None:
    """Take `debit` from lots: a reversal's own lot first, then oldest available, then pending."""
    member = (debit.marketplace, debit.account, debit.buyer_key)
    stmt = (select(LEDGER.c.id, LEDGER.c.order_id, LEDGER.c.rule, LEDGER.c.available_from, LEDGER.c.remaining)
            .where(*_member_where(member), LEDGER.c.kind == EARN)
            .with_for_update())  # PostgreSQL: concurrent runs queue here; SQLite ignores it
    lots = [r for r in conn.execute(stmt).all() if r.remaining > 0]

    def oldest_first(r: Any) -> tuple:
        own = debit.kind == REVERSE and r.order_id == debit.order_id and r.rule == debit.rule
        since = r.available_from.timestamp() if r.available_from is not None else 0.0
        return (not own, r.available_from is None, since, r.id)

    need = -debit.amount
    for r in sorted(lots, key=oldest_first):
        if need <= 0:
            break
        take = min(r.remaining, need)
        need -= take
        conn.execute(update(LEDGER).where(LEDGER.c.id == r.id).values(remaining=r.remaining - take))
    # Whatever no lot covered stays visible as debt on the debit itself, never hidden.
    conn.execute(update(LEDGER).where(LEDGER.c.idempotency_key == debit.idempotency_key)
                 .values(remaining=-need))


def entries_of(target: Any, member: Member | None = None) -> list[dict[str, Any]]:
    """Ledger rows (of one member, or all), oldest first."""
    stmt = select(LEDGER).order_by(LEDGER.c.id)
    if member is not None:
        stmt = stmt.where(*_member_where(member))
    with _engine(target).connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def balances(target: Any, member: Member, now: datetime) -> Balances:
    """A member's pending, available, lifetime and debt figures at `now`, derived from the ledger."""
    pending = available = expired = lifetime = debt = _ZERO
    for r in entries_of(target, member):
        amount, remaining = r["amount"], r["remaining"] or _ZERO
        if r["kind"] in (EARN, REVERSE):
            lifetime += amount
        if amount < 0:
            debt -= remaining
        elif r["expires_at"] is not None and r["expires_at"] <= now:
            expired += remaining
        elif r["available_from"] is not None and r["available_from"] <= now:
            available += remaining
        else:
            pending += remaining
    return Balances(pending=pending, available=available, lifetime=lifetime, debt=debt, expired=expired)


def _recorded(conn: Connection) -> dict[Member, dict[str, Entry]]:
    out: dict[Member, dict[str, Entry]] = {}
    for r in conn.execute(select(*(LEDGER.c[f] for f in _ENTRY_FIELDS))).mappings():
        e = Entry(**r)
        out.setdefault((e.marketplace, e.account, e.buyer_key), {})[e.idempotency_key] = e
    return out


def _changes(entries: Sequence[Entry], recorded: dict[str, Entry]) -> list[Entry]:
    """The entries that would change the ledger: new keys, or lots whose availability became known."""
    out = []
    for e in entries:
        old = recorded.get(e.idempotency_key)
        if old is None or (old.kind == EARN and old.available_from is None and e.available_from is not None):
            out.append(e)
    return out


def run_once(store: Any, settings: LoyaltySettings, now: datetime, *,
             settle_delay=SETTLE_DELAY) -> RunResult:
    """Earn, activate and reverse for every member's settled orders; one transaction per member batch."""
    result = RunResult()
    by_member: dict[Member, list[OrderFact]] = {}
    for row in store.iter_orders():
        mp = row["marketplace"]
        over = settings.marketplaces.get(mp)
        if over is not None and not over.enabled:
            continue
        if not row["buyer_key"]:
            result.no_identity[mp] = result.no_identity.get(mp, 0) + 1
            continue
        fact = OrderFact.from_row(row)
        by_member.setdefault((fact.marketplace, fact.account, fact.buyer_key), []).append(fact)
        result.orders += 1
    result.members = len(by_member)
    if not settings.enabled:
        return result
    with store.engine.connect() as conn:
        recorded = _recorded(conn)
    batch: list[Entry] = []
    for count, (member, orders) in enumerate(by_member.items(), 1):
        known = recorded.get(member, {})
        changes = _changes(member_entries(orders, settings, known, now, settle_delay=settle_delay), known)
        latest = max((e.effective_at for e in known.values() if e.kind == EARN), default=None)
        for e in changes:
            if e.kind == EARN and e.idempotency_key not in known and latest is not None and e.effective_at < latest:
                # Arrived after a later order was earned: its tier may differ from a replay's.
                result.late += 1
                log.warning("loyalty: late order %s/%s/%s earned after later orders",
                            e.marketplace, e.account, e.order_id)
        batch.extend(changes)
        if count % _BATCH_MEMBERS == 0:
            _flush(store, batch, result)
            batch = []
    _flush(store, batch, result)
    return result


def _flush(store: Any, batch: list[Entry], result: RunResult) -> None:
    if batch:
        done = apply(store, batch)
        result.inserted += done.inserted
        result.filled += done.filled
