"""The ledger's persistence: idempotent inserts, lot consumption, balances, the earn job.

Every write is `INSERT ... ON CONFLICT (idempotency_key) DO NOTHING` plus the lot updates it
implies, in one transaction; re-running with the same orders changes nothing. Amounts are summed
in Python because SQLite keeps `Money` as text.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, or_, select
from sqlalchemy.engine import Connection, Engine

from loyalty.engine import (
    EARN,
    EXPIRE,
    REVERSE,
    SETTLE_DELAY,
    BudgetCutoff,
    Entry,
    Member,
    OrderFact,
    lot_position,
    member_entries,
)
from loyalty.rules import LoyaltySettings
from loyalty.tables import LedgerEntryRow
from sync.store.store import Store
from sync.store.tables import OrderLineRow, OrderRow
from sync.store.types import binders

__all__ = ["ApplyResult", "Balances", "RunResult", "apply", "balances", "entries_of", "expire_once", "run_once"]

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
    expired: int = 0  # expire entries written
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
    """Bulk form of "for each entry in order: insert it; a new debit consumes lots; a known lot
    gets its availability filled once". New rows go in with multi-row `INSERT ... ON CONFLICT DO
    NOTHING RETURNING` (so a key another run wrote first is never consumed twice); the lot
    consumption is then replayed in memory in entry order, each debit seeing exactly the lots (and
    their availability) it would have seen row by row, and the final `remaining` values are written
    with one executemany."""
    result = ApplyResult()
    entries = list(entries)
    if not entries:
        return result
    inserted = _insert_new(conn, entries)
    result.inserted = len(inserted)
    debit_members = {(e.marketplace, e.account, e.buyer_key) for e in entries
                     if e.amount < 0 and e.idempotency_key in inserted}
    position = {key: pos for pos, key in enumerate(inserted)}
    lots = _load_lots(conn, debit_members)
    for member_lots in lots.values():
        for lot in member_lots:
            lot.position = position.get(lot.key, -1)
    fill = _prepared_fill(conn)
    bind = binders(conn.dialect)
    changed: dict[int, Decimal] = {}
    done: set[str] = set()  # keys whose insert has been "reached" (a later duplicate is a conflict)
    for e in entries:
        key = e.idempotency_key
        if key in inserted and key not in done:
            done.add(key)
            if e.amount < 0:
                member = (e.marketplace, e.account, e.buyer_key)
                _consume(lots.get(member, ()), e, inserted[key], position[key], changed)
        elif e.kind == EARN and e.available_from is not None:
            # Filled once: the first delivered time known wins, so re-runs never move it.
            count = conn.exec_driver_sql(
                fill, (bind.utc(e.available_from), bind.utc(e.expires_at), key)).rowcount
            result.filled += count
            if count:
                for lot in lots.get((e.marketplace, e.account, e.buyer_key), ()):
                    if lot.key == key:
                        lot.available_from = e.available_from
    if changed:
        sql = _prepared_remaining(conn)
        money = bind.money
        rows = [(money(v), i) for i, v in changed.items()]
        if conn.dialect.positional:
            conn.exec_driver_sql(sql, rows)
        else:
            conn.exec_driver_sql(sql, [{"remaining": r, "id": i} for r, i in rows])
    return result


@dataclass(slots=True)
class _Lot:
    id: int
    key: str
    order_id: str | None
    rule: str | None
    available_from: datetime | None
    remaining: Decimal | None
    position: int  # order of its insert in this apply; -1 when it existed before


_INSERT_COLUMNS = (*_ENTRY_FIELDS, "remaining")
_MONEY_FIELDS = {"amount", "remaining"}
_TIME_FIELDS = {"effective_at", "available_from", "expires_at"}
_SQL: dict[tuple, str] = {}


def _dialect_key(conn: Connection, name: str) -> tuple:
    d = conn.dialect
    return (name, d.name, d.driver, d.paramstyle)


def _marks(conn: Connection, n: int) -> str:
    # exec_driver_sql hands tuples straight to the DB-API: "?" for sqlite3, "%s" for psycopg.
    return ",".join(["?" if conn.dialect.paramstyle == "qmark" else "%s"] * n)


def _insert_sql(conn: Connection, rows: int) -> str:
    key = (*_dialect_key(conn, "insert"), rows)
    sql = _SQL.get(key)
    if sql is None:
        one = f"({_marks(conn, len(_INSERT_COLUMNS))})"
        sql = _SQL[key] = (
            f"INSERT INTO {LEDGER.name} ({', '.join(_INSERT_COLUMNS)}) VALUES {', '.join([one] * rows)} "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key")
    return sql


def _prepared_fill(conn: Connection) -> str:
    key = _dialect_key(conn, "fill")
    sql = _SQL.get(key)
    if sql is None:
        m = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        sql = _SQL[key] = (f"UPDATE {LEDGER.name} SET available_from = {m}, expires_at = {m} "
                           f"WHERE idempotency_key = {m} AND available_from IS NULL")
    return sql


def _prepared_remaining(conn: Connection) -> str:
    key = _dialect_key(conn, "remaining")
    sql = _SQL.get(key)
    if sql is None:
        if conn.dialect.positional:
            sql = f"UPDATE {LEDGER.name} SET remaining = ? WHERE id = ?"
        else:
            sql = f"UPDATE {LEDGER.name} SET remaining = %(remaining)s WHERE id = %(id)s"
        _SQL[key] = sql
    return sql


_INSERT_CHUNK = 1000  # rows per INSERT: 12 parameters each, well under both databases' limits


def _insert_new(conn: Connection, entries: Sequence[Entry]) -> dict[str, int]:
    """Insert every entry whose key is not in the ledger; {key: id} of those inserted, in entry order."""
    bind = binders(conn.dialect)
    utc, money = bind.utc, bind.money
    rows: list[tuple] = []
    seen: set[str] = set()
    order: dict[str, int] = {}
    for e in entries:
        if e.idempotency_key in seen:
            continue  # a repeated key conflicts with its first occurrence
        seen.add(e.idempotency_key)
        order[e.idempotency_key] = len(order)
        # Lots start full; debits start as all debt and shrink as lots cover them.
        rows.append((e.kind, money(e.amount), e.idempotency_key, e.order_id, e.rule, utc(e.effective_at),
                     utc(e.available_from), utc(e.expires_at), e.marketplace, e.account, e.buyer_key,
                     money(e.amount)))
    ids: dict[str, int] = {}
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start:start + _INSERT_CHUNK]
        params = tuple(v for row in chunk for v in row)
        for row_id, key in conn.exec_driver_sql(_insert_sql(conn, len(chunk)), params):
            ids[key] = row_id
    # RETURNING's row order is not guaranteed: keep the entries' order (ids follow it too).
    return {k: ids[k] for k in sorted(ids, key=order.__getitem__)}


def _load_lots(conn: Connection, members: set[Member]) -> dict[Member, list[_Lot]]:
    """The earn lots of `members` as they stand now (after this apply's inserts)."""
    out: dict[Member, list[_Lot]] = {}
    if not members:
        return out
    by_account: dict[tuple[str, str], list[str]] = {}
    for mp, acct, buyer in members:
        by_account.setdefault((mp, acct), []).append(buyer)
    c = LEDGER.c
    for (mp, acct), buyers in by_account.items():
        for start in range(0, len(buyers), 500):
            stmt = (select(c.id, c.idempotency_key, c.order_id, c.rule, c.available_from, c.remaining,
                           c.buyer_key)
                    .where(c.marketplace == mp, c.account == acct, c.buyer_key.in_(buyers[start:start + 500]),
                           c.kind == EARN)
                    .with_for_update())  # PostgreSQL: concurrent runs queue here; SQLite ignores it
            for r in conn.execute(stmt):
                out.setdefault((mp, acct, r.buyer_key), []).append(
                    _Lot(r.id, r.idempotency_key, r.order_id, r.rule, r.available_from, r.remaining, -1))
    return out


def _consume(lots: Iterable[_Lot], debit: Entry, debit_id: int, at: int, changed: dict[int, Decimal]) -> None:
    """Take `debit` from lots: a reversal's own lot first, then oldest available, then pending.

    Only lots that existed when the row-by-row insert of `debit` would have run take part.
    """
    def oldest_first(r: _Lot) -> tuple:
        own = debit.kind == REVERSE and r.order_id == debit.order_id and r.rule == debit.rule
        since = r.available_from.timestamp() if r.available_from is not None else 0.0
        return (not own, r.available_from is None, since, r.id)

    live = [r for r in lots if r.remaining is not None and r.remaining > 0 and r.position < at]
    need = -debit.amount
    for r in sorted(live, key=oldest_first):
        if need <= 0:
            break
        take = min(r.remaining, need)
        need -= take
        r.remaining = changed[r.id] = r.remaining - take
    # Whatever no lot covered stays visible as debt on the debit itself, never hidden.
    changed[debit_id] = -need


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


def _recorded(conn: Connection, mp: str, acct: str, buyers: Sequence[str]) -> dict[Member, dict[str, Entry]]:
    """The recorded entries of some members of one account, by member and key."""
    out: dict[Member, dict[str, Entry]] = {}
    c = LEDGER.c
    for start in range(0, len(buyers), 500):
        stmt = (select(*(c[f] for f in _ENTRY_FIELDS))
                .where(c.marketplace == mp, c.account == acct, c.buyer_key.in_(buyers[start:start + 500])))
        for r in conn.execute(stmt):
            e = Entry(*r)
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


_ORDER_FIELDS = ("marketplace", "account", "order_id", "buyer_key", "created_at", "updated_at",
                 "status", "total", "fulfilment", "currency", "returned_total", "status_changed_at")


def _needs_lines(settings: LoyaltySettings) -> bool:
    """Whether some offer tests an order's lines (read them only then)."""
    return any(c.field in ("sku", "offer_id") for f in settings.offers for c in f.conditions)


def _lines_of(conn: Connection, rows: Sequence[Sequence[Any]]) -> dict[tuple[str, str, str], list[tuple]]:
    """(sku, offer_id) of the lines of the orders in `rows`, by order."""
    lines: Table = OrderLineRow.__table__  # type: ignore[assignment]
    c = lines.c
    by_account: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        by_account.setdefault((r[0], r[1]), []).append(r[2])
    out: dict[tuple[str, str, str], list[tuple]] = {}
    for (mp, acct), ids in by_account.items():
        for start in range(0, len(ids), 500):
            stmt = (select(c.order_id, c.sku, c.offer_id)
                    .where(c.marketplace == mp, c.account == acct, c.order_id.in_(ids[start:start + 500]))
                    .order_by(c.order_id, c.line_no))
            for oid, sku, offer_id in conn.execute(stmt):
                out.setdefault((mp, acct, oid), []).append((sku, offer_id))
    return out


_PAGE_ORDERS = 20_000


def _iter_members(engine: Engine, settings: LoyaltySettings,
                  result: RunResult) -> Iterator[tuple[Member, list[OrderFact]]]:
    """Each member's orders, member by member, read in short pages (never the whole order table).

    Keyset pages on the indexed `buyer_key`, each holding only whole buyer keys, and only the columns
    the engine reads; orders without a buyer key are counted per marketplace instead. Marketplaces
    switched off in the settings are skipped.
    """
    orders: Table = OrderRow.__table__  # type: ignore[assignment]
    c = orders.c
    off = [mp for mp, over in settings.marketplaces.items() if not over.enabled]
    skip = (c.marketplace.not_in(off),) if off else ()
    anonymous = (select(c.marketplace, func.count()).where(or_(c.buyer_key.is_(None), c.buyer_key == ""), *skip)
                 .group_by(c.marketplace))
    columns = [c[f] for f in _ORDER_FIELDS]
    with_lines = _needs_lines(settings)
    last: str | None = None
    with engine.connect() as conn:
        for mp, n in conn.execute(anonymous):
            result.no_identity[mp] = int(n)
    while True:
        after = c.buyer_key > last if last is not None else c.buyer_key.is_not(None)
        stmt = (select(*columns).where(after, c.buyer_key != "", *skip)
                .order_by(c.buyer_key).limit(_PAGE_ORDERS))
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
            if not rows:
                return
            end = rows[-1][3]
            if len(rows) == _PAGE_ORDERS:
                whole = [r for r in rows if r[3] != end]
                if whole:  # the last buyer may continue on the next page: read it then
                    rows, end = whole, whole[-1][3]
                else:  # one buyer fills the page: read all of that buyer's orders
                    rows = conn.execute(select(*columns).where(c.buyer_key == end, *skip)).all()
            lines = _lines_of(conn, rows) if with_lines else None
        by_member: dict[Member, list[OrderFact]] = {}
        for (mp, acct, oid, buyer, created, updated, status, total, fulfilment, currency, returned,
             status_changed) in rows:
            skus = offer_ids = None
            if lines is not None:
                mine = lines.get((mp, acct, oid), ())
                skus = tuple(str(sku) for sku, _ in mine)
                offer_ids = tuple(str(o) for _, o in mine if o is not None)
            by_member.setdefault((mp, acct, buyer), []).append(
                OrderFact(mp, acct, oid, buyer, created, updated, str(status), Decimal(total),
                          fulfilment, currency, skus, offer_ids, Decimal(returned or 0), status_changed))
        yield from by_member.items()
        last = end


def _iter_members_of(rows: Iterable[dict[str, Any]], settings: LoyaltySettings,
                     result: RunResult) -> Iterator[tuple[Member, list[OrderFact]]]:
    """`_iter_members` for an object with its own `iter_orders()` (e.g. simulate's filtered view)."""
    by_member: dict[Member, list[OrderFact]] = {}
    for row in rows:
        mp = row["marketplace"]
        over = settings.marketplaces.get(mp)
        if over is not None and not over.enabled:
            continue
        if not row["buyer_key"]:
            result.no_identity[mp] = result.no_identity.get(mp, 0) + 1
            continue
        fact = OrderFact.from_row(row)
        by_member.setdefault((fact.marketplace, fact.account, fact.buyer_key), []).append(fact)
    yield from by_member.items()


def _members(store: Any, settings: LoyaltySettings,
             result: RunResult) -> Iterator[tuple[Member, list[OrderFact]]]:
    if getattr(type(store), "iter_orders", None) is Store.iter_orders:
        return _iter_members(store.engine, settings, result)  # orders in the ledger's database
    return _iter_members_of(store.iter_orders(), settings, result)  # any other order source


def _batches(source: Iterable[tuple[Member, list[OrderFact]]]) -> Iterator[list[tuple[Member, list[OrderFact]]]]:
    batch: list[tuple[Member, list[OrderFact]]] = []
    for item in source:
        batch.append(item)
        if len(batch) == _BATCH_MEMBERS:
            yield batch
            batch = []
    if batch:
        yield batch


def run_once(store: Any, settings: LoyaltySettings, now: datetime, *,
             settle_delay=SETTLE_DELAY) -> RunResult:
    """Earn, activate and reverse for every member's settled orders; one transaction per member batch.
    Then `expire_once(store, now)`.

    Orders are streamed member by member; each batch of members reads its own recorded entries,
    so neither the order table nor the ledger is ever held in memory whole.

    Budget: `per_member_points` is enforced by the engine. `total_points` needs one global order
    to replay identically (live runs give the budget to whichever orders settle first, so must a
    replay): when it is set, a first read-only pass finds where the budget runs out among every
    member's new lots in `lot_position` order (`_budget_cutoff`), and the writing pass grants up to
    there. Two runs at once compute the same cutoff from the same orders and ledger, so they write
    the same keys and amounts; the unique keys make the second a no-op.
    """
    result = RunResult()
    if not settings.enabled:
        for _member, orders in _members(store, settings, result):
            result.members += 1
            result.orders += len(orders)
        return result
    cutoff = _budget_cutoff(store, settings, now, settle_delay)
    for batch in _batches(_members(store, settings, result)):
        for _member, orders in batch:
            result.members += 1
            result.orders += len(orders)
        _process(store, batch, settings, now, settle_delay, result, cutoff)
    result.expired = expire_once(store, now)
    return result


class _Latest:
    """A new lot in the budget's heap, ordered so that the LATEST position is on top."""

    __slots__ = ("position", "amount")

    def __init__(self, position: tuple, amount: Decimal):
        self.position, self.amount = position, amount

    def __lt__(self, other: _Latest) -> bool:
        return self.position > other.position


def _granted(target: Any) -> Decimal:
    """Every point the program ever granted: the sum of earn entries (reversals give none back)."""
    total = _ZERO
    with _engine(target).connect() as conn:
        for (amount,) in conn.execute(select(LEDGER.c.amount).where(LEDGER.c.kind == EARN)):
            total += Decimal(amount)
    return total


def _budget_cutoff(store: Any, settings: LoyaltySettings, now: datetime, settle_delay: Any) -> BudgetCutoff | None:
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
    for batch in _batches(_members(store, settings, RunResult())):
        with store.engine.connect() as conn:
            recorded = _recorded_of(conn, batch)
        for member, orders in batch:
            known = recorded.get(member, {})
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


def _recorded_of(conn: Connection, batch: Sequence[tuple[Member, list[OrderFact]]]) -> dict[Member, dict[str, Entry]]:
    by_account: dict[tuple[str, str], list[str]] = {}
    for (mp, acct, buyer), _ in batch:
        by_account.setdefault((mp, acct), []).append(buyer)
    recorded: dict[Member, dict[str, Entry]] = {}
    for (mp, acct), buyers in by_account.items():
        recorded.update(_recorded(conn, mp, acct, buyers))
    return recorded


_EXPIRE_BATCH = 1000


def expire_once(target: Any, now: datetime) -> int:
    """Write an `expire` entry for every lot with `expires_at <= now` and points left; the count.

    Each entry takes exactly what is left in its one lot (amount = -remaining, key
    `expire:{lot_id}`, `effective_at` = the lot's `expires_at`, `order_id`/`rule` of the lot so a
    later reversal knows those points are gone). Insert and lot update share a transaction per
    batch; a key already written (another run) leaves its lot alone, so re-running changes nothing.
    """
    c = LEDGER.c
    engine = _engine(target)
    written = 0
    last = 0
    while True:
        with engine.begin() as conn:
            stmt = (select(c.id, c.marketplace, c.account, c.buyer_key, c.order_id, c.rule, c.expires_at,
                           c.remaining)
                    .where(c.kind == EARN, c.expires_at.is_not(None), c.expires_at <= now, c.id > last)
                    .order_by(c.id).limit(_EXPIRE_BATCH)
                    .with_for_update())
            lots = conn.execute(stmt).all()
            if not lots:
                return written
            last = lots[-1].id
            due = [r for r in lots if r.remaining is not None and r.remaining > 0]
            if not due:
                continue
            entries = [Entry(EXPIRE, -r.remaining, f"expire:{r.id}", r.order_id, r.rule, r.expires_at,
                             marketplace=r.marketplace, account=r.account, buyer_key=r.buyer_key)
                       for r in due]
            inserted = _insert_new(conn, entries)
            bind = binders(conn.dialect)
            rows = []
            for r in due:
                entry_id = inserted.get(f"expire:{r.id}")
                if entry_id is not None:
                    rows += [(bind.money(_ZERO), r.id), (bind.money(_ZERO), entry_id)]
            if rows:
                sql = _prepared_remaining(conn)
                if conn.dialect.positional:
                    conn.exec_driver_sql(sql, rows)
                else:
                    conn.exec_driver_sql(sql, [{"remaining": v, "id": i} for v, i in rows])
            written += len(inserted)


def _process(store: Any, members: list[tuple[Member, list[OrderFact]]], settings: LoyaltySettings,
             now: datetime, settle_delay: Any, result: RunResult, cutoff: BudgetCutoff | None = None) -> None:
    """One batch of members: their changes, written in one transaction."""
    batch: list[Entry] = []
    with store.engine.begin() as conn:
        recorded = _recorded_of(conn, members)
        for member, orders in members:
            known = recorded.get(member, {})
            wanted = member_entries(orders, settings, known, now, settle_delay=settle_delay, cutoff=cutoff)
            changes = _changes(wanted, known)
            latest = max((e.effective_at for e in known.values() if e.kind == EARN), default=None)
            for e in changes:
                if (e.kind == EARN and e.idempotency_key not in known and latest is not None
                        and e.effective_at < latest):
                    # Arrived after a later order was earned: its tier may differ from a replay's.
                    result.late += 1
                    log.warning("loyalty: late order %s/%s/%s earned after later orders",
                                e.marketplace, e.account, e.order_id)
            batch.extend(changes)
        if batch:
            done = _apply(conn, batch)
            result.inserted += done.inserted
            result.filled += done.filled
