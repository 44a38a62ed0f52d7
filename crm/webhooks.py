"""Signed webhooks through an outbox: events are stored once per endpoint, then POSTed until the
endpoint answers 2xx, with backoff, and given up as dead letters a person can send again.

At least once, deduplicable exactly once: every POST carries the event's id (`Loyalsync-Event-Id`,
also `id` in the body), the same on every retry, so a receiver that keeps the ids it has processed
sees each event once, even when an answer was lost after it processed the event and the delivery is
sent again. The attempt is counted (committed) before each send, as the actions outbox does, so a
crash mid-send still counts towards the retries; a delivery is claimed by one sender at a time.

    enqueue(store, endpoints, now)         read new events (crm.events) into webhook_deliveries
    deliver(store, endpoints, now, ...)    send what is due
    deliveries(store, ...), resend(...)    the dead letters, and sending them again
    summary(store)                         one line per endpoint for `loyalsync status`
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, Table, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connectors.http import default_user_agent, redact
from crm.events import Event, action_events, ledger_events, order_events, tier_events
from crm.settings import WebhookEndpoint
from crm.signing import SIGNATURE_HEADER, signature_header
from store import Store
from store.crm_tables import WebhookCursorRow, WebhookDeliveryRow

__all__ = ["MAX_ATTEMPTS", "DeliverResult", "backoff", "deliver", "deliveries", "delivery_counts", "enqueue", "resend",
           "summary"]

log = logging.getLogger("loyalsync.webhooks")
DELIVERIES: Table = WebhookDeliveryRow.__table__  # type: ignore[assignment]
CURSORS: Table = WebhookCursorRow.__table__  # type: ignore[assignment]
# 30 s, 1, 2, 4 … minutes, at most 6 h apart: twelve attempts span about a day and a half, long
# enough for a receiver's weekend outage to be bridged by the next working day's dead-letter resend.
MAX_ATTEMPTS = 12
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=6)
CLAIM_FOR = timedelta(minutes=2)  # one send's claim; a sender that died frees it after this
BATCH = 50
# Answers worth sending again: the receiver is down, slow or asks us to slow down. Any other 4xx
# says the receiver will not take this event as it is: a dead letter at once (re-sendable).
RETRY_STATUSES = frozenset({408, 409, 425, 429})


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """The wait after `attempts` failed sends: doubling from FIRST_WAIT, capped, ±10 % jitter."""
    wait = min(FIRST_WAIT * 2 ** max(attempts - 1, 0), LONGEST_WAIT)
    return wait * (0.9 + 0.2 * (rng or random).random())


# -- enqueue -----------------------------------------------------------------------------------------

def enqueue(store: Store, endpoints: Sequence[WebhookEndpoint], now: datetime) -> int:
    """Store the events each endpoint has not had yet; how many deliveries were added."""
    added = 0
    for endpoint in (e for e in endpoints if e.enabled):
        told = _ToldOrders(endpoint.name)
        for read in (_enqueue_ledger, told.enqueue, _enqueue_actions, _enqueue_tiers):
            while True:
                with store.engine.begin() as conn:
                    events, more = read(conn, endpoint)
                    added += _store_events(conn, endpoint, events, now)
                if not more:
                    break
    return added


def _cursor(conn: Connection, endpoint: str, source: str) -> Any:
    raw = conn.execute(select(CURSORS.c.position).where(CURSORS.c.endpoint == endpoint,
                                                        CURSORS.c.source == source)).scalar()
    return json.loads(raw) if raw is not None else None


def _save_cursor(conn: Connection, endpoint: str, source: str, position: Any) -> None:
    value = json.dumps(position)
    changed = conn.execute(update(CURSORS).where(CURSORS.c.endpoint == endpoint, CURSORS.c.source == source)
                           .values(position=value)).rowcount
    if not changed:
        conn.execute(insert(CURSORS).values(endpoint=endpoint, source=source, position=value))


def _enqueue_ledger(conn: Connection, endpoint: WebhookEndpoint) -> tuple[list[Event], bool]:
    after = _cursor(conn, endpoint.name, "ledger") or 0
    events, last = ledger_events(conn, after)
    if last != after:
        _save_cursor(conn, endpoint.name, "ledger", last)
    return events, last != after


class _ToldOrders:
    """One enqueue run's order source for one endpoint. Which orders the endpoint has heard of
    (`order.changed` for those, `order.created` for the others) is read from its deliveries once a
    run, and only when an order changed: not once per batch, not on the idle minutes."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.known: set[str] | None = None

    def enqueue(self, conn: Connection, endpoint: WebhookEndpoint) -> tuple[list[Event], bool]:
        after = _cursor(conn, endpoint.name, "orders")
        events, last = order_events(conn, tuple(after) if after else None, self._known)
        if events:
            _save_cursor(conn, endpoint.name, "orders", list(last))
        return events, bool(events)

    def _known(self, conn: Connection) -> set[str]:
        if self.known is None:
            c = DELIVERIES.c
            ids = conn.execute(select(c.event_id).where(c.endpoint == self.endpoint, c.event_type.in_(
                ("order.created", "order.changed")))).scalars()
            # order:{mp}:{account}:{order_id}:{status}:{total}:{returned}
            self.known = {event_id.removeprefix("order:").rsplit(":", 3)[0] for event_id in ids}
        return self.known


def _enqueue_actions(conn: Connection, endpoint: WebhookEndpoint) -> tuple[list[Event], bool]:
    after = _cursor(conn, endpoint.name, "actions")
    events, last = action_events(conn, tuple(after) if after else None)
    if events:
        _save_cursor(conn, endpoint.name, "actions", list(last))
    return events, bool(events)


def _enqueue_tiers(conn: Connection, endpoint: WebhookEndpoint) -> tuple[list[Event], bool]:
    after = _cursor(conn, endpoint.name, "members")
    events, last = tier_events(conn, tuple(after) if after else None)
    moved = bool(last) and list(last) != after
    if moved:
        _save_cursor(conn, endpoint.name, "members", list(last))
    return events, moved


def _store_events(conn: Connection, endpoint: WebhookEndpoint, events: Iterable[Event], now: datetime) -> int:
    rows = [{"endpoint": endpoint.name, "event_id": e.id, "event_type": e.type, "payload": e.body().decode(),
             "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for e in events if endpoint.wants(e.type)]
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(DELIVERIES).on_conflict_do_nothing(index_elements=["endpoint", "event_id"])
    # RETURNING counts what was new: an executemany's rowcount is -1 on psycopg.
    return len(conn.execute(stmt.returning(DELIVERIES.c.id), rows).all())


# -- deliver -----------------------------------------------------------------------------------------

@dataclass(slots=True)
class DeliverResult:
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)  # one line per endpoint that failed this round


async def deliver(store: Store, endpoints: Sequence[WebhookEndpoint], now: datetime, *, claimer: str,
                  transport: httpx.AsyncBaseTransport | None = None, rng: random.Random | None = None) -> DeliverResult:
    """Send every due delivery of every enabled endpoint once; record each answer."""
    result = DeliverResult()
    async with httpx.AsyncClient(transport=transport, headers={"User-Agent": default_user_agent()}) as client:
        for endpoint in (e for e in endpoints if e.enabled):
            # Paced: a receiver added to a store with history gets all of it, at its own rate.
            gap, next_at = 1.0 / endpoint.max_per_second, time.monotonic()
            while batch := await asyncio.to_thread(_claim, store, endpoint.name, now, claimer):
                for row in batch:
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    next_at = max(next_at, time.monotonic()) + gap
                    await _send_one(store, client, endpoint, row, now, result, rng)
    return result


def _claim(store: Store, endpoint: str, now: datetime, claimer: str) -> list[dict[str, Any]]:
    """Up to BATCH due deliveries, each claimed for this sender (one UPDATE per row: a row another
    sender claimed meanwhile is skipped). Claims are judged by the wall clock all senders share; a
    claim under this sender's own name is a killed earlier process's (one live process per replica
    name, as with leases) and is taken back at once."""
    c = DELIVERIES.c
    wall = datetime.now(UTC)
    free = or_(c.claimed_until.is_(None), c.claimed_until < wall, c.claimed_by == claimer)
    with store.engine.begin() as conn:
        due = conn.execute(select(c.id).where(c.endpoint == endpoint, c.status == "pending", c.next_attempt_at <= now,
                                              free).order_by(c.id).limit(BATCH)).scalars().all()
        mine = [i for i in due if conn.execute(update(DELIVERIES).where(c.id == i, c.status == "pending", free)
                                               .values(claimed_by=claimer, claimed_until=wall + CLAIM_FOR)).rowcount]
        if not mine:
            return []
        return [dict(r) for r in conn.execute(select(DELIVERIES).where(c.id.in_(mine)).order_by(c.id)).mappings()]


async def _send_one(store: Store, client: httpx.AsyncClient, endpoint: WebhookEndpoint, row: dict[str, Any],
                    now: datetime, result: DeliverResult, rng: random.Random | None) -> None:
    attempts = row["attempts"] + 1
    # Counted before the send (committed): a crash after it still counts.
    await asyncio.to_thread(_update, store, row["id"], attempts=attempts)
    body = row["payload"].encode()
    timestamp = int(datetime.now(UTC).timestamp())
    secret = endpoint.secret.get_secret_value()
    headers = {"Content-Type": "application/json", "Loyalsync-Event-Id": row["event_id"],
               "Loyalsync-Event-Type": row["event_type"], SIGNATURE_HEADER: signature_header(secret, timestamp, body)}
    try:
        response = await client.post(endpoint.url, content=body, headers=headers, timeout=endpoint.timeout_seconds)
        status, error = response.status_code, f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        status, error = None, f"no answer ({type(exc).__name__})"
    error = redact(error, (secret,))
    if status is not None and 200 <= status < 300:
        await asyncio.to_thread(_update, store, row["id"], status="sent", sent_at=datetime.now(UTC), last_error=None,
                                claimed_by=None, claimed_until=None)
        result.sent += 1
        return
    permanent = status is not None and 400 <= status < 500 and status not in RETRY_STATUSES
    if permanent or attempts >= MAX_ATTEMPTS:
        why = "the endpoint refused it" if permanent else f"{attempts} attempts failed"
        await asyncio.to_thread(_update, store, row["id"], status="dead", last_error=f"{error}: {why}",
                                claimed_by=None, claimed_until=None)
        result.dead += 1
        log.warning("webhook %s: event %s is a dead letter (%s: %s); `loyalsync webhooks --resend %d` sends it "
                    "again", endpoint.name, row["event_id"], error, why, row["id"])
        return
    await asyncio.to_thread(_update, store, row["id"], next_attempt_at=now + backoff(attempts, rng),
                            last_error=error, claimed_by=None, claimed_until=None)
    result.retrying += 1


def _update(store: Store, delivery: int, **values: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(DELIVERIES).where(DELIVERIES.c.id == delivery).values(**values))


# -- dead letters and status -------------------------------------------------------------------------

def deliveries(store: Store, *, status: str | None = None, endpoint: str | None = None,
               limit: int = 200) -> list[dict[str, Any]]:
    """Deliveries, newest first, without their payloads."""
    c = DELIVERIES.c
    stmt = select(c.id, c.endpoint, c.event_id, c.event_type, c.status, c.attempts, c.next_attempt_at, c.last_error,
                  c.created_at, c.sent_at).order_by(c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(c.status == status)
    if endpoint is not None:
        stmt = stmt.where(c.endpoint == endpoint)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def resend(store: Store, ids: Sequence[int] | None, now: datetime) -> int:
    """Send these dead letters again (all of them when `ids` is None): due now, retries counted afresh."""
    c = DELIVERIES.c
    stmt = update(DELIVERIES).where(c.status == "dead")
    if ids is not None:
        stmt = stmt.where(c.id.in_(list(ids)))
    with store.engine.begin() as conn:
        return conn.execute(stmt.values(status="pending", attempts=0, next_attempt_at=now, claimed_by=None,
                                        claimed_until=None)).rowcount


def delivery_counts(store: Store) -> dict[tuple[str, str], int]:
    """(endpoint, status) -> deliveries."""
    c = DELIVERIES.c
    with store.engine.connect() as conn:
        return {(e, s): int(n) for e, s, n in conn.execute(select(c.endpoint, c.status, func.count())
                                                           .group_by(c.endpoint, c.status))}


def summary(store: Store) -> list[str]:
    """One line per endpoint with deliveries: sent, waiting, dead, and the last error."""
    c = DELIVERIES.c
    counts = [(e, s, n) for (e, s), n in delivery_counts(store).items()]
    with store.engine.connect() as conn:
        # The newest error per endpoint: later rows overwrite earlier ones.
        errors = dict(conn.execute(select(c.endpoint, c.last_error).where(c.last_error.is_not(None))
                                   .order_by(c.id)).all()) if counts else {}
    table: dict[str, dict[str, int]] = {}
    for endpoint, state, n in counts:
        table.setdefault(endpoint, {})[state] = n
    lines = []
    for endpoint, n in sorted(table.items()):
        line = f"webhook {endpoint}: {n.get('sent', 0)} sent, {n.get('pending', 0)} waiting, {n.get('dead', 0)} dead"
        if n.get("pending") or n.get("dead"):
            if last := errors.get(endpoint):
                line += f" (last error: {last})"
            if n.get("dead"):
                line += "; `loyalsync webhooks --resend-dead` sends the dead ones again"
        lines.append(line)
    return lines
