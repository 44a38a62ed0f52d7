"""The ledger table's rows: reading a member's entries, inserting new ones, and writing what the fold
says back (`remaining`, availability, `expire` and forgiveness entries).

Every insert is `INSERT … ON CONFLICT (idempotency_key) DO NOTHING`: two runs that read the same
ledger compute the same keys, so the second writes nothing. `refold` turns a member's rows into
`loyalty.fold` input and writes the result in the caller's transaction:

- each lot's and debit's `remaining` (a debit's is minus its uncovered debt);
- `expire:{ref}` with what a lot lost to expiry, and `forgive:{ref}` (kind `adjust`, the take-back's
  order and rule) with what a take-back forgave because those points had expired unused; `ref` names
  the lot or take-back (`ref_of`: a hash of its key, which may hold any character). When a later
  fold disagrees with what is written (an event dated before an expiry arrived late), one more
  entry `…#{n}` carries the difference: amounts already written are never edited.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from loyalty.bulk_load import LedgerLoading, is_refused_for_loading
from loyalty.engine import EARN, EXPIRE, REVERSE, Entry, Member
from loyalty.fold import FoldLot, Spend, TakeBack, fold_owned
from store.loyalty_tables import LedgerEntryRow, LoyaltyDueRow
from store.types import Binders, binders, raw, readers

__all__ = ["ADJUST", "DUE", "FORGIVE", "LEDGER", "SPEND", "Folded", "Row", "bound_rows", "due_of", "fold_rows",
           "insert_bound", "insert_new", "member_filters", "member_rows", "next_due", "ref_of", "refold",
           "remaining_updates", "set_availability", "write_due", "write_remaining"]

LEDGER: Table = LedgerEntryRow.__table__  # type: ignore[assignment]
DUE: Table = LoyaltyDueRow.__table__  # type: ignore[assignment]
SPEND, ADJUST = "spend", "adjust"
FORGIVE = "forgive:"  # the key prefix of the adjust entries that carry what a take-back forgave
_ZERO = Decimal(0)
_INSERT_CHUNK = 1000  # rows per INSERT: 12 parameters each, well under both databases' limits
ENTRY_FIELDS = ("kind", "amount", "idempotency_key", "order_id", "rule", "effective_at",
                "available_from", "expires_at", "marketplace", "account", "buyer_key")
_INSERT_COLUMNS = (*ENTRY_FIELDS, "remaining")
_CONVERTED = frozenset({"amount", "effective_at", "available_from", "expires_at"})
_SQL: dict[tuple, str] = {}
_PLAIN_INSERT = (f"INSERT INTO {LEDGER.name} ({', '.join(_INSERT_COLUMNS)}) "
                 f"VALUES ({', '.join(['?'] * len(_INSERT_COLUMNS))})")


@dataclass(slots=True)
class Row:
    """A recorded ledger row: the entry, its id (None: not written yet) and what is left of it."""

    id: int | None
    entry: Entry
    remaining: Decimal | None


def _dialect_key(conn: Connection, name: str) -> tuple:
    d = conn.dialect
    return (name, d.name, d.driver, d.paramstyle)


def _mark(conn: Connection) -> str:
    # exec_driver_sql hands tuples straight to the DB-API: "?" for sqlite3, "%s" for psycopg.
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _insert_sql(conn: Connection, rows: int) -> str:
    key = (*_dialect_key(conn, "insert"), rows)
    sql = _SQL.get(key)
    if sql is None:
        one = "(" + ",".join([_mark(conn)] * len(_INSERT_COLUMNS)) + ")"
        sql = _SQL[key] = (
            f"INSERT INTO {LEDGER.name} ({', '.join(_INSERT_COLUMNS)}) VALUES {', '.join([one] * rows)} "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key")
    return sql


def _execute_many(conn: Connection, name: str, sql: str, rows: list[tuple]) -> None:
    if rows:
        conn.exec_driver_sql(sql.replace("?", _mark(conn)), rows)


def bound_rows(bind: Binders, entries: Sequence[Entry], remaining: Mapping[str, Decimal] | None = None) -> list[tuple]:
    """`entries` as `_INSERT_COLUMNS` tuples for the driver (`bind`: its dialect's converters), each
    key once; the key is at index 2, the kind at 0. A lot's and a debit's `remaining` is
    `remaining[key]` when given (what a fold said), else the lot starts full and the debit as all
    debt (`refold` then writes what is really left)."""
    given = remaining or {}
    utc, money = bind.utc, bind.money
    rows: list[tuple] = []
    seen: set[str] = set()
    for e in entries:
        if e.idempotency_key in seen:
            continue
        seen.add(e.idempotency_key)
        left = given.get(e.idempotency_key, e.amount) if e.kind in (EARN, REVERSE, SPEND) else None
        rows.append((e.kind, money(e.amount), e.idempotency_key, e.order_id, e.rule, utc(e.effective_at),
                     utc(e.available_from), utc(e.expires_at), e.marketplace, e.account, e.buyer_key,
                     money(left) if left is not None else None))
    return rows


def insert_bound(conn: Connection, rows: Sequence[tuple], *, keyed: bool = True) -> set[str]:
    """Insert `bound_rows` whose key is not in the ledger; the keys of those inserted.

    `keyed=False` is for a load into an empty ledger without its key index (`loyalty.bulk_load`):
    plain INSERTs of rows whose keys are known to be new."""
    if not keyed:
        _execute_many(conn, "plain insert", _PLAIN_INSERT, list(rows))
        return {row[2] for row in rows}
    if conn.dialect.name == "sqlite":
        return _insert_counted(conn, rows)
    inserted: set[str] = set()
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start:start + _INSERT_CHUNK]
        params = tuple(v for row in chunk for v in row)
        inserted.update(key for _id, key in conn.exec_driver_sql(_insert_sql(conn, len(chunk)), params))
    return inserted


def _insert_counted(conn: Connection, rows: Sequence[tuple]) -> set[str]:
    """`insert_bound` on SQLite, without RETURNING: reading a row back per insert cost as much as the
    inserts (bench/loyalty.py). The count of rows inserted says whether every key was new, the usual
    case. When some were not, the inserted rows are the last ones by id: SQLite has one writer, this
    statement holds the lock, and a rowid table gives each new row max(id) + 1."""
    if not rows:
        return set()
    marks = ",".join(["?"] * len(_INSERT_COLUMNS))
    sql = (f"INSERT INTO {LEDGER.name} ({', '.join(_INSERT_COLUMNS)}) VALUES ({marks}) "
           "ON CONFLICT (idempotency_key) DO NOTHING")
    try:
        count = conn.exec_driver_sql(sql, list(rows)).rowcount
    except OperationalError as exc:
        if is_refused_for_loading(exc):
            raise LedgerLoading("a first full run is loading the ledger (its key index is built at the end); "
                                "nothing was written, the next run writes it") from None
        raise
    if count == len(rows):
        return {row[2] for row in rows}
    if count <= 0:
        return set()
    c = LEDGER.c
    last = select(c.id).order_by(c.id.desc()).limit(1).scalar_subquery()
    return set(conn.execute(select(c.idempotency_key).where(c.id > last - count)).scalars())


def insert_new(conn: Connection, entries: Sequence[Entry],
               remaining: Mapping[str, Decimal] | None = None) -> set[str]:
    """Insert every entry whose key is not in the ledger; the keys of those inserted (see `bound_rows`)."""
    return insert_bound(conn, bound_rows(binders(conn.dialect), entries, remaining))


def member_filters(members: Iterable[Member], chunk: int = 500, table: Table = LEDGER) -> Iterator[tuple]:
    """WHERE clauses that select the rows of `members` in `table` (the ledger, or `loyalty_due`): per
    account, up to `chunk` buyer keys each (the member index, and under both databases' parameter
    limits)."""
    c = table.c
    by_account: dict[tuple[str, str], list[str]] = {}
    for mp, acct, buyer in members:
        by_account.setdefault((mp, acct), []).append(buyer)
    for (mp, acct), buyers in by_account.items():
        for start in range(0, len(buyers), chunk):
            yield (c.marketplace == mp, c.account == acct, c.buyer_key.in_(buyers[start:start + chunk]))


def member_rows(conn: Connection, members: Iterable[Member], *, lock: bool = False) -> dict[Member, list[Row]]:
    """Every recorded row of `members`, by member, oldest first.

    `lock`: PostgreSQL row locks, so concurrent runs over one member queue (SQLite ignores it).
    """
    members = list(members)
    out: dict[Member, list[Row]] = {m: [] for m in members}
    c = LEDGER.c
    read = readers(conn.dialect)
    utc, money = read.utc, read.money
    # Raw values converted here: the column types' processors cost more than the query (`readers`).
    columns = [c.id, raw(c.remaining), *(raw(c[f]) if f in _CONVERTED else c[f] for f in ENTRY_FIELDS)]
    for where in member_filters(members):
        stmt = select(*columns).where(*where).order_by(c.id)
        if lock:
            stmt = stmt.with_for_update()
        for (row_id, left, kind, amount, key, order_id, rule, effective, available, expires, r_mp, r_acct,
             buyer) in conn.execute(stmt):
            entry = Entry(kind, money(amount), key, order_id, rule, utc(effective), utc(available), utc(expires),
                          r_mp, r_acct, buyer)
            out.setdefault((r_mp, r_acct, buyer), []).append(Row(row_id, entry, money(left)))
    return out


def set_availability(conn: Connection, rows: Iterable[tuple[int, datetime | None, datetime | None]]) -> int:
    """Write lots' `available_from`/`expires_at` (id, available_from, expires_at); the count."""
    bind = binders(conn.dialect)
    params = [(bind.utc(a), bind.utc(x), i) for i, a, x in rows]
    _execute_many(conn, "availability",
                  f"UPDATE {LEDGER.name} SET available_from = ?, expires_at = ? WHERE id = ?", params)
    return len(params)


def next_due(entries: Iterable[Entry], now: datetime) -> datetime | None:
    """When the member's points next change by time alone after `now`: the earliest `available_from`
    or `expires_at` of its lots later than `now` (None: never, until something else happens)."""
    due = None
    for e in entries:
        if e.kind != EARN:
            continue
        for at in (e.available_from, e.expires_at):
            if at is not None and at > now and (due is None or at < due):
                due = at
    return due


def due_of(conn: Connection, members: Iterable[Member]) -> dict[Member, datetime]:
    """The recorded `loyalty_due` moment of each of `members` that has one."""
    c = DUE.c
    utc = readers(conn.dialect).utc
    out: dict[Member, datetime] = {}
    for where in member_filters(members, table=DUE):
        for mp, acct, buyer, at in conn.execute(select(c.marketplace, c.account, c.buyer_key, raw(c.due_at))
                                                .where(*where)):
            out[(mp, acct, buyer)] = utc(at)
    return out


def write_due(conn: Connection, due: Mapping[Member, datetime | None],
              recorded: Mapping[Member, datetime] | None = None) -> int:
    """Record when each member is due next (None: not due; its row goes); with `recorded` (what
    `due_of` read in this transaction), only the members whose moment changed. The count written."""
    if recorded is not None:
        due = {m: at for m, at in due.items() if recorded.get(m) != at}
    gone = [m for m, at in due.items() if at is None]
    utc = binders(conn.dialect).utc
    # Bound here and handed to the driver: a rebuild writes 100,000 of these, and SQLAlchemy's
    # per-row processing of a list of dicts cost 10 % of the writer's time.
    rows = [(mp, acct, buyer, utc(at)) for (mp, acct, buyer), at in sorted(due.items()) if at is not None]
    for where in member_filters(gone, table=DUE):
        conn.execute(DUE.delete().where(*where))
    _execute_many(conn, "due", f"INSERT INTO {DUE.name} (marketplace, account, buyer_key, due_at) "
                  "VALUES (?, ?, ?, ?) ON CONFLICT (marketplace, account, buyer_key) "
                  "DO UPDATE SET due_at = excluded.due_at", rows)
    return len(due)


def ref_of(key: str) -> str:
    """A short name for an entry in the keys of the entries derived from it."""
    return "h" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _generation_key(base: str, recorded: Mapping[str, Row]) -> str:
    """`base`, or `base#n` for the first n not recorded yet."""
    if base not in recorded:
        return base
    n = 2
    while f"{base}#{n}" in recorded:
        n += 1
    return f"{base}#{n}"


@dataclass(slots=True)
class Folded:
    """What folding one member's rows says to write: new `expire`/forgiveness entries, and each lot's
    and debit's `remaining` by key."""

    new: list[Entry]
    remaining: dict[str, Decimal]


def fold_rows(rows: list[Row], now: datetime) -> Folded:
    """Fold one member's rows (pure; see `refold`)."""
    by_key = {r.entry.idempotency_key: r for r in rows}
    lots = [r for r in rows if r.entry.kind == EARN]
    lot_by_id = {r.id: r for r in lots if r.id is not None}
    horizon = max([now, *(r.entry.effective_at for r in rows if r.entry.kind != EARN)])
    result = fold_owned(
        [FoldLot(r.entry.idempotency_key, (r.entry.order_id or "", r.entry.rule or ""), r.entry.amount,
                 r.entry.effective_at, r.entry.available_from, r.entry.expires_at) for r in lots],
        (TakeBack(r.entry.idempotency_key, (r.entry.order_id or "", r.entry.rule or ""), -r.entry.amount,
                  r.entry.effective_at) for r in rows if r.entry.kind == REVERSE),
        (Spend(r.entry.idempotency_key, -r.entry.amount, r.entry.effective_at)
         for r in rows if r.entry.kind == SPEND),
        horizon, with_balances=False)
    new: list[Entry] = []
    written_expired = _written(rows, EXPIRE, lot_by_id)
    for r in lots:
        key = r.entry.idempotency_key
        delta = result.expired.get(key, _ZERO) + written_expired.get(key, _ZERO)
        if delta:
            e = r.entry
            new.append(Entry(EXPIRE, -delta, _generation_key(f"expire:{ref_of(key)}", by_key), e.order_id, e.rule,
                             e.expires_at or horizon, marketplace=e.marketplace, account=e.account,
                             buyer_key=e.buyer_key))
    written_forgiven = _written(rows, ADJUST, {})
    for r in rows:
        if r.entry.kind != REVERSE:
            continue
        key = r.entry.idempotency_key
        delta = result.forgiven.get(key, _ZERO) - written_forgiven.get(key, _ZERO)
        if delta:
            e = r.entry
            new.append(Entry(ADJUST, delta, _generation_key(f"{FORGIVE}{ref_of(key)}", by_key), e.order_id, e.rule,
                             e.effective_at, marketplace=e.marketplace, account=e.account,
                             buyer_key=e.buyer_key))
    remaining: dict[str, Decimal] = {}
    for r in rows:
        kind, key = r.entry.kind, r.entry.idempotency_key
        if kind == EARN:
            remaining[key] = result.remaining.get(key, r.entry.amount)
        elif kind in (REVERSE, SPEND):
            remaining[key] = -result.uncovered.get(key, _ZERO)
    return Folded(new, remaining)


def remaining_updates(conn: Connection, rows: Iterable[Row], remaining: Mapping[str, Decimal]) -> int:
    """Write `remaining` of the recorded `rows` whose value changed; the count."""
    updates = []
    for r in rows:
        want = remaining.get(r.entry.idempotency_key)
        if want is not None and r.id is not None and (r.remaining is None or Decimal(r.remaining) != want):
            updates.append((r.id, want))
            r.remaining = want
    return write_remaining(conn, updates)


def write_remaining(conn: Connection, updates: Sequence[tuple[int, Decimal]]) -> int:
    """Set `remaining` of rows by id: (id, value) pairs; the count."""
    money = binders(conn.dialect).money
    _execute_many(conn, "remaining", f"UPDATE {LEDGER.name} SET remaining = ? WHERE id = ?",
                  [(money(want), row_id) for row_id, want in updates])
    return len(updates)


def refold(conn: Connection, member: Member, rows: list[Row], now: datetime) -> tuple[int, int]:
    """Fold one member's rows and write the result; (expire entries written, rows updated).

    The fold reaches at least to the latest time any row carries, so what a run wrote is never
    folded away by a run with an earlier `now` (e.g. a spend stamped by the outbox).
    """
    folded = fold_rows(rows, now)
    inserted = insert_new(conn, folded.new)
    updated = remaining_updates(conn, rows, folded.remaining)
    write_due(conn, {member: next_due((r.entry for r in rows), now)})
    return sum(1 for e in folded.new if e.kind == EXPIRE and e.idempotency_key in inserted), updated


def _written(rows: Iterable[Row], kind: str, lot_by_id: Mapping[int, Row]) -> dict[str, Decimal]:
    """What `expire` entries (by lot key, negative) or forgiveness entries (by take-back key) carry."""
    mine = [r for r in rows if r.entry.kind == kind]
    out: dict[str, Decimal] = {}
    if not mine:
        return out
    targets = {ref_of(r.entry.idempotency_key): r.entry.idempotency_key for r in rows}
    for r in mine:
        e = r.entry
        if kind == ADJUST and not e.idempotency_key.startswith(FORGIVE):
            continue
        ref = e.idempotency_key.split(":", 1)[1].split("#")[0]
        target = targets.get(ref)
        if target is None and kind == EXPIRE and ref.isdigit() and int(ref) in lot_by_id:
            target = lot_by_id[int(ref)].entry.idempotency_key  # an earlier version's `expire:{lot id}`
        if target is not None:
            out[target] = out.get(target, _ZERO) + e.amount
    return out

