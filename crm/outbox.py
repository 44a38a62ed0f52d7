"""The CRM outbox (`webhook_deliveries`): what leaves for a webhook receiver or a CRM sink, stored
once per (endpoint, event id), claimed by one sender at a time, its attempt counted (committed)
before each send, retried with backoff, and given up as a dead letter a person can send again.

Shared by `crm.webhooks` (signed events) and `crm.retailcrm.sink` (RetailCRM calls); each of them
decides what one send is and what its answer means.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from store import Store
from store.crm_tables import WebhookCursorRow, WebhookDeliveryRow

__all__ = ["CHANGE_MARGIN", "CLAIM_FOR", "CURSORS", "DELIVERIES", "MAX_ATTEMPTS", "Source", "backoff", "by_id",
           "by_time", "claim", "cursor", "deliveries", "delivery_counts", "insert_rows", "read_page", "resend",
           "note_run", "save_cursor", "set_row", "set_rows", "summary",
           "type_counts"]

DELIVERIES: Table = WebhookDeliveryRow.__table__  # type: ignore[assignment]
CURSORS: Table = WebhookCursorRow.__table__  # type: ignore[assignment]
# 30 s, 1, 2, 4 … minutes, at most 6 h apart: twelve attempts span about a day and a half, long
# enough for a receiver's weekend outage to be bridged by the next working day's dead-letter resend.
MAX_ATTEMPTS = 12
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=6)
CLAIM_FOR = timedelta(minutes=2)  # one send's claim; a sender that died frees it after this
BATCH = 50
SINK_TYPES = "retailcrm."  # how a CRM sink's event types begin (crm.retailcrm.sink); webhooks' do not


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """The wait after `attempts` failed sends: doubling from FIRST_WAIT, capped, ±10 % jitter."""
    wait = min(FIRST_WAIT * 2 ** max(attempts - 1, 0), LONGEST_WAIT)
    return wait * (0.9 + 0.2 * (rng or random).random())


def cursor(conn: Connection, endpoint: str, source: str) -> Any:
    raw = conn.execute(select(CURSORS.c.position).where(CURSORS.c.endpoint == endpoint,
                                                        CURSORS.c.source == source)).scalar()
    return json.loads(raw) if raw is not None else None


def save_cursor(conn: Connection, endpoint: str, source: str, position: Any) -> None:
    value = json.dumps(position)
    changed = conn.execute(update(CURSORS).where(CURSORS.c.endpoint == endpoint, CURSORS.c.source == source)
                           .values(position=value)).rowcount
    if not changed:
        conn.execute(insert(CURSORS).values(endpoint=endpoint, source=source, position=value))


# Where a run starts reading a source again, before its saved cursor: a writer's transaction that
# began before the last run may commit after it, with a position (a change time, a ledger id) the
# cursor has passed. Events and rows are keyed by what they are, so what is read twice is stored once.
CHANGE_MARGIN = timedelta(minutes=10)
ID_MARGIN = 5000  # ledger ids: PostgreSQL hands them out at insert, and commits may land out of order


@dataclass(frozen=True, slots=True)
class Source:
    """One event source an endpoint reads with a cursor (`webhook_cursors`).

    `read(conn, start)`: what follows `start` (None: from the beginning), and the last position
    read, or None when nothing was read. `early(saved)`: where a run's first read starts, a margin
    before the saved cursor."""

    name: str
    read: Callable[[Connection, Any], tuple[list[Any], Any]]
    early: Callable[[Any], Any]


def by_time(*lowest: Any) -> Callable[[Any], Any]:
    """`Source.early` for a (time, key...) cursor: CHANGE_MARGIN earlier, from the lowest key."""
    def early(saved: Any) -> Any:
        return [(datetime.fromisoformat(saved[0]) - CHANGE_MARGIN).isoformat(), *lowest]
    return early


def by_id(saved: Any) -> Any:
    """`Source.early` for a ledger-id cursor."""
    return max(0, int(saved) - ID_MARGIN)


def read_page(conn: Connection, endpoint: str, source: Source, position: Any) -> tuple[list[Any], Any]:
    """One page of `source` for `endpoint`: from `position` (the last page's end), or on a run's
    first page from a margin before the saved cursor. Moves the cursor forward only; returns the
    items and where the next page starts (None: the source is read to its end)."""
    saved = cursor(conn, endpoint, source.name)
    start = position if position is not None else (source.early(saved) if saved is not None else None)
    items, last = source.read(conn, start)
    if last is None:
        return items, None
    if saved is None or _position_key(last) > _position_key(saved):
        save_cursor(conn, endpoint, source.name, last)
    return items, last


def _position_key(position: Any) -> Any:
    if isinstance(position, list | tuple) and position and isinstance(position[0], str):
        return (datetime.fromisoformat(position[0]), *position[1:])
    return position


RUN_ERROR = "last_run_error"  # a webhook_cursors source: why an endpoint's last run sent nothing


def note_run(store: Store, endpoint: str, error: str | None) -> None:
    """Keep why a run could not send at all (the CRM away, the key refused), or clear it: the rows
    wait untouched then, so none of them says why; `summary` does."""
    with store.engine.begin() as conn:
        if error is None:
            conn.execute(CURSORS.delete().where(CURSORS.c.endpoint == endpoint, CURSORS.c.source == RUN_ERROR))
        else:
            save_cursor(conn, endpoint, RUN_ERROR, error)


def insert_rows(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Store rows not stored yet (by endpoint and event id); how many were new."""
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(DELIVERIES).on_conflict_do_nothing(index_elements=["endpoint", "event_id"])
    # RETURNING counts what was new: an executemany's rowcount is -1 on psycopg.
    return len(conn.execute(stmt.returning(DELIVERIES.c.id), list(rows)).all())


def claim(store: Store, endpoint: str, now: datetime, claimer: str, *, types: Iterable[str] | None = None,
          limit: int = BATCH) -> list[dict[str, Any]]:
    """Up to `limit` due rows (of these event types), each claimed for this sender (one UPDATE per
    row: a row another sender claimed meanwhile is skipped). Claims are judged by the wall clock all
    senders share; a claim under this sender's own name is a killed earlier process's (one live
    process per replica name, as with leases) and is taken back at once."""
    c = DELIVERIES.c
    wall = datetime.now(UTC)
    free = or_(c.claimed_until.is_(None), c.claimed_until < wall, c.claimed_by == claimer)
    stmt = select(c.id).where(c.endpoint == endpoint, c.status == "pending", c.next_attempt_at <= now, free)
    if types is not None:
        stmt = stmt.where(c.event_type.in_(list(types)))
    with store.engine.begin() as conn:
        due = conn.execute(stmt.order_by(c.id).limit(limit)).scalars().all()
        if not due:
            return []
        # One UPDATE for the batch; RETURNING names the rows no other sender claimed meanwhile.
        mine = conn.execute(update(DELIVERIES).where(c.id.in_(due), c.status == "pending", free)
                            .values(claimed_by=claimer, claimed_until=wall + CLAIM_FOR)
                            .returning(c.id)).scalars().all()
        if not mine:
            return []
        return [dict(r) for r in conn.execute(select(DELIVERIES).where(c.id.in_(mine)).order_by(c.id)).mappings()]


def set_row(store: Store, row_id: int, **values: Any) -> None:
    """Write one row's state in its own transaction (committed before the caller goes on)."""
    with store.engine.begin() as conn:
        conn.execute(update(DELIVERIES).where(DELIVERIES.c.id == row_id).values(**values))


def _of_sinks(sinks: bool) -> Any:
    """Rows of CRM sinks (True) or of webhook receivers (False), told apart by their event types."""
    is_sink = DELIVERIES.c.event_type.startswith(SINK_TYPES, autoescape=True)
    return is_sink if sinks else ~is_sink


def set_rows(store: Store, writes: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
    """Write several rows' states, in order, in one transaction: one statement per set of columns
    written (a row's later write wins, as it would one by one)."""
    if not writes:
        return
    latest: dict[int, dict[str, Any]] = {}
    for row_id, values in writes:
        latest.setdefault(row_id, {}).update(values)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, values in latest.items():
        groups.setdefault(tuple(sorted(values)), []).append({"row_id": row_id, **values})
    with store.engine.begin() as conn:
        for columns, params in groups.items():
            stmt = (update(DELIVERIES).where(DELIVERIES.c.id == bindparam("row_id"))
                    .values({name: bindparam(name) for name in columns}))
            conn.execute(stmt, params)


def deliveries(store: Store, *, status: str | None = None, endpoint: str | None = None,
               endpoints: Iterable[str] | None = None, sinks: bool | None = None,
               limit: int = 200) -> list[dict[str, Any]]:
    """Rows, newest first, without their payloads; `sinks` as in `delivery_counts`."""
    c = DELIVERIES.c
    stmt = select(c.id, c.endpoint, c.event_id, c.event_type, c.status, c.attempts, c.next_attempt_at, c.last_error,
                  c.created_at, c.sent_at).order_by(c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(c.status == status)
    if endpoint is not None:
        stmt = stmt.where(c.endpoint == endpoint)
    if endpoints is not None:
        stmt = stmt.where(c.endpoint.in_(list(endpoints)))
    if sinks is not None:
        stmt = stmt.where(_of_sinks(sinks))
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def resend(store: Store, ids: Sequence[int] | None, now: datetime, *, endpoints: Iterable[str] | None = None,
           sinks: bool | None = None) -> int:
    """Send these dead letters again (all of them when `ids` is None): due now, retries counted afresh."""
    c = DELIVERIES.c
    stmt = update(DELIVERIES).where(c.status == "dead")
    if ids is not None:
        stmt = stmt.where(c.id.in_(list(ids)))
    if endpoints is not None:
        stmt = stmt.where(c.endpoint.in_(list(endpoints)))
    if sinks is not None:
        stmt = stmt.where(_of_sinks(sinks))
    with store.engine.begin() as conn:
        return conn.execute(stmt.values(status="pending", attempts=0, next_attempt_at=now, claimed_by=None,
                                        claimed_until=None)).rowcount


def type_counts(store: Store) -> dict[tuple[str, str, str], int]:
    """(endpoint, event type, status) -> rows."""
    c = DELIVERIES.c
    with store.engine.connect() as conn:
        return {(e, t, s): int(n) for e, t, s, n in conn.execute(
            select(c.endpoint, c.event_type, c.status, func.count()).group_by(c.endpoint, c.event_type, c.status))}


def delivery_counts(store: Store, *, sinks: bool | None = None) -> dict[tuple[str, str], int]:
    """(endpoint, status) -> rows; `sinks`: only CRM sinks' rows (True), only webhooks' (False)."""
    out: dict[tuple[str, str], int] = {}
    for (endpoint, kind, status), n in type_counts(store).items():
        if sinks is None or kind.startswith(SINK_TYPES) == sinks:
            out[(endpoint, status)] = out.get((endpoint, status), 0) + n
    return out


def summary(store: Store) -> list[str]:
    """One line per endpoint with rows (webhook receiver or CRM sink): sent, waiting, dead, and the
    last error."""
    c = DELIVERIES.c
    typed = type_counts(store)
    sinks = {e for (e, kind, _) in typed if kind.startswith(SINK_TYPES)}
    counts = [(e, s, n) for (e, s), n in delivery_counts(store).items()]
    with store.engine.connect() as conn:
        # The newest error per endpoint: later rows overwrite earlier ones.
        errors = dict(conn.execute(select(c.endpoint, c.last_error).where(c.last_error.is_not(None),
                                                                          c.status != "sent")
                                   .order_by(c.id)).all()) if counts else {}
    with store.engine.connect() as conn:
        run_errors = {e: json.loads(p) for e, p in conn.execute(
            select(CURSORS.c.endpoint, CURSORS.c.position).where(CURSORS.c.source == RUN_ERROR))}
    table: dict[str, dict[str, int]] = {e: {} for e in run_errors}
    for endpoint, state, n in counts:
        table.setdefault(endpoint, {})[state] = n
    lines = []
    for endpoint, n in sorted(table.items()):
        kind, again = (("RetailCRM", "loyalsync crm --resend-dead") if endpoint in sinks or endpoint in run_errors
                       else ("webhook", "loyalsync webhooks --resend-dead"))
        line = f"{kind} {endpoint}: {n.get('sent', 0)} sent, {n.get('pending', 0)} waiting, {n.get('dead', 0)} dead"
        if n.get("skipped"):
            line += f", {n['skipped']} not sent (see `loyalsync crm --status skipped`)"
        if endpoint in run_errors:
            line += f" (last run: {run_errors[endpoint]})"
        elif n.get("pending") or n.get("dead"):
            if last := errors.get(endpoint):
                line += f" (last error: {last})"
            if n.get("dead"):
                line += f"; `{again}` sends the dead ones again"
        lines.append(line)
    return lines
