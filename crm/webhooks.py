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
import logging
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Connection, select

from connectors.http import default_user_agent, redact
from crm.events import Event, action_events, ledger_events, order_events, order_of, tier_events
from crm.outbox import (
    DELIVERIES,
    MAX_ATTEMPTS,
    Source,
    backoff,
    by_id,
    by_time,
    claim,
    deliveries,
    delivery_counts,
    insert_rows,
    read_page,
    resend,
    set_row,
    summary,
)
from crm.settings import WebhookEndpoint
from crm.signing import SIGNATURE_HEADER, signature_header
from store import Store

__all__ = ["MAX_ATTEMPTS", "DeliverResult", "backoff", "deliver", "deliveries", "delivery_counts", "enqueue", "resend",
           "summary"]

log = logging.getLogger("loyalsync.webhooks")
# Answers worth sending again: the receiver is down, slow or asks us to slow down. Any other 4xx
# says the receiver will not take this event as it is: a dead letter at once (re-sendable).
RETRY_STATUSES = frozenset({408, 409, 425, 429})


# -- enqueue -----------------------------------------------------------------------------------------

def enqueue(store: Store, endpoints: Sequence[WebhookEndpoint], now: datetime) -> int:
    """Store the events each endpoint has not had yet; how many deliveries were added."""
    added = 0
    for endpoint in (e for e in endpoints if e.enabled):
        told = _ToldOrders(endpoint.name)
        sources = (Source("ledger", _ledger, by_id), Source("orders", told.read, by_time("", "", "")),
                   Source("actions", _actions, by_time(0)), Source("members", _tiers, by_time("", "", "")))
        for source in sources:
            position = None
            while True:
                with store.engine.begin() as conn:
                    events, position = read_page(conn, endpoint.name, source, position)
                    added += _store_events(conn, endpoint, events, now)
                if position is None:
                    break
    return added


def _ledger(conn: Connection, start: int | None) -> tuple[list[Event], int | None]:
    events, last = ledger_events(conn, start or 0)
    return events, (last if last != (start or 0) else None)


class _ToldOrders:
    """One enqueue run's order source for one endpoint. Which orders the endpoint has heard of
    (`order.changed` for those, `order.created` for the others) is read from its deliveries once a
    run, and only when an order changed: not once per batch, not on the idle minutes."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.known: set[str] | None = None

    def read(self, conn: Connection, start: list | None) -> tuple[list[Event], list | None]:
        events, last = order_events(conn, tuple(start) if start else None, self._known)
        return events, (list(last) if events else None)

    def _known(self, conn: Connection) -> set[str]:
        if self.known is None:
            c = DELIVERIES.c
            ids = conn.execute(select(c.event_id).where(c.endpoint == self.endpoint, c.event_type.in_(
                ("order.created", "order.changed")))).scalars()
            self.known = {order_of(event_id) for event_id in ids}
        return self.known


def _actions(conn: Connection, start: list | None) -> tuple[list[Event], list | None]:
    events, last = action_events(conn, tuple(start) if start else None)
    return events, (list(last) if events else None)


def _tiers(conn: Connection, start: list | None) -> tuple[list[Event], list | None]:
    events, last = tier_events(conn, tuple(start) if start else None)
    return events, (list(last) if last and list(last) != start else None)


def _store_events(conn: Connection, endpoint: WebhookEndpoint, events: Iterable[Event], now: datetime) -> int:
    rows = [{"endpoint": endpoint.name, "event_id": e.id, "event_type": e.type, "payload": e.body().decode(),
             "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for e in events if endpoint.wants(e.type)]
    return insert_rows(conn, rows)


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
            while batch := await asyncio.to_thread(claim, store, endpoint.name, now, claimer):
                for row in batch:
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    next_at = max(next_at, time.monotonic()) + gap
                    await _send_one(store, client, endpoint, row, now, result, rng)
    return result


async def _send_one(store: Store, client: httpx.AsyncClient, endpoint: WebhookEndpoint, row: dict[str, Any],
                    now: datetime, result: DeliverResult, rng: random.Random | None) -> None:
    attempts = row["attempts"] + 1
    # Counted before the send (committed): a crash after it still counts.
    await asyncio.to_thread(set_row, store, row["id"], attempts=attempts)
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
        await asyncio.to_thread(set_row, store, row["id"], status="sent", sent_at=datetime.now(UTC), last_error=None,
                                claimed_by=None, claimed_until=None)
        result.sent += 1
        return
    permanent = status is not None and 400 <= status < 500 and status not in RETRY_STATUSES
    if permanent or attempts >= MAX_ATTEMPTS:
        why = "the endpoint refused it" if permanent else f"{attempts} attempts failed"
        await asyncio.to_thread(set_row, store, row["id"], status="dead", last_error=f"{error}: {why}",
                                claimed_by=None, claimed_until=None)
        result.dead += 1
        log.warning("webhook %s: event %s is a dead letter (%s: %s); `loyalsync webhooks --resend %d` sends it "
                    "again", endpoint.name, row["event_id"], error, why, row["id"])
        return
    await asyncio.to_thread(set_row, store, row["id"], next_attempt_at=now + backoff(attempts, rng),
                            last_error=error, claimed_by=None, claimed_until=None)
    result.retrying += 1
