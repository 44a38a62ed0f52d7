"""The RetailCRM sink: members, orders and points sent to one RetailCRM account through the CRM
outbox (`crm.outbox`): each thing stored once, claimed by one sender, its attempt counted and
committed before the call, and the CRM's state read back before any credit or charge is sent again.

What is sent (`enqueue`, state-based: a run finds what has no row yet):
- a customer per member (`customer:{externalId}`), before anything of theirs;
- an order per change of a member's order (orders without a buyer — every Wildberries order —
  belong to no member and stay out); the row sends the order as it is when sent;
- a bonus credit per earn lot once it is usable (`available_from` has passed: the return window
  is over, so its dates no longer move), keyed by the lot's ledger key;
- a charge per take-back (`reverse`) of a lot that was credited, and per spend (a promo code paid
  with points). Expiry is not sent: the CRM expires each credit itself on its `expireDate`, which
  is never later than the lot's.
- A lot taken back before it was ever credited (returned within the return window) is not sent,
  nor its take-back: they are stored as `skipped`, so the CRM never shows points that were not
  the buyer's for a day (credit today, active tomorrow, charged back after).

Exactly once (`deliver`): RetailCRM's credit and charge calls have no idempotency key, and their
operations echo neither a comment nor an expiry. So each row's first attempt writes `ref` (the
customer and what the CRM's operations will show of it: type, amount, activation day) and
`first_attempt_at`; before any later attempt, the account's operations since the first attempt of
any row with the same `ref` are counted, and if they outnumber our confirmed rows with that `ref`,
this one landed and is marked sent, not sent again. Exact as long as one sender works at a time
(the daemon's job lease; claims besides) and nobody else posts a credit of the same amount and
activation day to that account meanwhile (a manager's credit that matches makes us skip one of
ours: never a double).

Order of sending in a run: customers, orders (`orders/upload` in fifties, HTTP 460 read as a
partial success, refused ones edited by externalId), credits, charges. A reversal's charge waits
for its lot's credit to be sent and active (a charge is taken from active bonuses); a spend's
charge waits for the member's earlier credits and the next day on the account's calendar.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from functools import partial
from typing import Any

import httpx
from sqlalchemy import Connection, and_, func, literal, select, tuple_

from connectors.errors import ApiError, AuthError
from crm.outbox import (
    DELIVERIES,
    MAX_ATTEMPTS,
    Source,
    backoff,
    by_time,
    claim,
    insert_rows,
    note_run,
    read_page,
    set_row,
    set_rows,
)
from store import Store
from store.loyalty_tables import LedgerEntryRow
from store.tables import OrderLineRow, OrderRow

from .client import CHARGE, UPLOAD_MAX, Operation, RetailCrmClient, landed
from .entities import credit_operation, customer_entity, customer_id, order_entity, order_id
from .settings import RetailCrmSettings

__all__ = ["CHARGE_ROW", "CREDIT_ROW", "CUSTOMER_ROW", "ORDER_ROW", "SinkResult", "deliver", "enqueue"]

log = logging.getLogger("loyalsync.crm")
LEDGER = LedgerEntryRow.__table__
ORDERS = OrderRow.__table__
LINES = OrderLineRow.__table__
CUSTOMER_ROW, ORDER_ROW, CREDIT_ROW, CHARGE_ROW = ("retailcrm.customer", "retailcrm.order", "retailcrm.credit",
                                                  "retailcrm.charge")
BATCH = 1000  # store rows read at a time
SKEW = timedelta(minutes=10)  # the CRM's clock against ours, around the operations window
WAIT = timedelta(minutes=1)  # a charge whose credit is still on its way looks again after this
NOT_CREDITED = "taken back before it was credited: neither sent"
TOO_SHORT = "usable for less than a whole day on the CRM's calendar: a credit would give it longer"


# -- enqueue -----------------------------------------------------------------------------------------

def enqueue(store: Store, sink: RetailCrmSettings, now: datetime) -> int:
    """Store what the CRM has not been sent yet; how many rows were added."""
    if not sink.enabled:
        return 0
    added = 0
    sources: list[Callable[[Connection, RetailCrmSettings, datetime, Any], tuple[int, Any]]] = [_enqueue_orders]
    if sink.points:
        sources += [_enqueue_lots, _enqueue_debits]
    for source in sources:
        position = None
        while True:
            with store.engine.begin() as conn:
                n, position = source(conn, sink, now, position)
            added += n
            if position is None:
                break
    return added


def _row(sink: RetailCrmSettings, event_id: str, kind: str, payload: dict[str, Any], now: datetime, *,
         status: str = "pending", ref: str | None = None, note: str | None = None) -> dict[str, Any]:
    return {"endpoint": sink.name, "event_id": event_id, "event_type": kind, "payload": json.dumps(payload),
            "status": status, "attempts": 0, "next_attempt_at": now, "created_at": now, "ref": ref,
            "last_error": note}


def _customer_row(sink: RetailCrmSettings, mp: str, acct: str, buyer: str, now: datetime) -> dict[str, Any]:
    return _row(sink, f"customer:{customer_id(mp, acct, buyer)}", CUSTOMER_ROW,
                {"marketplace": mp, "account": acct, "buyer_key": buyer}, now)


def _enqueue_orders(conn: Connection, sink: RetailCrmSettings, now: datetime, position: Any) -> tuple[int, Any]:
    """Members' orders changed since the sink's `orders` cursor (orders.changed_at, then key; a
    run's first page from CHANGE_MARGIN before it, for writes that committed late)."""

    def read(conn: Connection, start: list | None) -> tuple[list[Any], list | None]:
        c = ORDERS.c
        stmt = select(c.marketplace, c.account, c.order_id, c.buyer_key, c.status, c.changed_at).where(
            c.changed_at.is_not(None))
        if start:
            changed, *key = start
            stmt = stmt.where(tuple_(c.changed_at, c.marketplace, c.account, c.order_id)
                              > tuple_(literal(datetime.fromisoformat(changed), c.changed_at.type), *key))
        if sink.marketplaces:
            stmt = stmt.where(c.marketplace.in_(sink.marketplaces))
        rows = conn.execute(stmt.order_by(c.changed_at, c.marketplace, c.account, c.order_id).limit(BATCH)).all()
        if not rows:
            return [], None
        last = rows[-1]
        return list(rows), [last.changed_at.isoformat(), last.marketplace, last.account, last.order_id]

    rows, position = read_page(conn, sink.name, Source("orders", read, by_time("", "", "")), position)
    members = [r for r in rows if r.buyer_key]
    out = [_customer_row(sink, r.marketplace, r.account, r.buyer_key, now) for r in members]
    if sink.orders:
        # One row a change, keyed by its time (a status that comes back, a platform's correction, is
        # a change too); each sends the order as it is when sent, and one batch sends an order once.
        for r in members:
            ref = f"order:{order_id(r.marketplace, r.account, r.order_id)}"
            out.append(_row(sink, f"{ref}@{r.changed_at.isoformat()}", ORDER_ROW,
                            {"marketplace": r.marketplace, "account": r.account, "order_id": r.order_id}, now,
                            ref=ref))
    return insert_rows(conn, out), position


def _unsent(conn: Connection, sink: RetailCrmSettings, kinds: Sequence[str], after: int | None,
            extra: Any = None) -> list[Any]:
    """Ledger entries of these kinds with no row of this sink yet, after the ledger id `after`."""
    e, d = LEDGER.c, DELIVERIES.c
    stmt = (select(LEDGER).outerjoin(DELIVERIES, and_(d.endpoint == sink.name, d.event_id == e.idempotency_key))
            .where(e.kind.in_(kinds), d.id.is_(None), e.id > (after or 0)))
    if extra is not None:
        stmt = stmt.where(extra)
    if sink.marketplaces:
        stmt = stmt.where(e.marketplace.in_(sink.marketplaces))
    return conn.execute(stmt.order_by(e.id).limit(BATCH)).mappings().all()


@dataclass(slots=True)
class _Identity:
    """One lot identity (marketplace, account, order, rule): its entries, and whether this sink has
    a credit of it (pending, sent or dead: not skipped)."""

    entries: list[Any] = field(default_factory=list)
    credited: bool = False

    @property
    def net(self) -> Decimal:
        return sum((Decimal(r["amount"]) for r in self.entries), Decimal(0))


def _identities(conn: Connection, sink: RetailCrmSettings, rows: Iterable[Any]) -> dict[tuple, _Identity]:
    keys = {(r["marketplace"], r["account"], r["order_id"], r["rule"]) for r in rows}
    if not keys:
        return {}
    e, d = LEDGER.c, DELIVERIES.c
    found: dict[tuple, _Identity] = {k: _Identity() for k in keys}
    for r in conn.execute(select(LEDGER).where(e.kind.in_(("earn", "reverse")),
                                               tuple_(e.marketplace, e.account, e.order_id, e.rule).in_(sorted(keys)))
                          ).mappings():
        found[(r["marketplace"], r["account"], r["order_id"], r["rule"])].entries.append(r)
    earn_keys = {r["idempotency_key"]: k for k, ident in found.items() for r in ident.entries if r["kind"] == "earn"}
    if earn_keys:
        for event_id in conn.execute(select(d.event_id).where(d.endpoint == sink.name, d.event_type == CREDIT_ROW,
                                                               d.status != "skipped",
                                                               d.event_id.in_(list(earn_keys)))).scalars():
            found[earn_keys[event_id]].credited = True
    return found


def _skip_identity(sink: RetailCrmSettings, ident: _Identity, now: datetime) -> list[dict[str, Any]]:
    """Rows that record a lot identity and its take-backs as not sent (the CRM never held them)."""
    return [_row(sink, r["idempotency_key"], CREDIT_ROW if r["kind"] == "earn" else CHARGE_ROW,
                 {"key": r["idempotency_key"]}, now, status="skipped", note=NOT_CREDITED) for r in ident.entries]


def _enqueue_lots(conn: Connection, sink: RetailCrmSettings, now: datetime, after: int | None) -> tuple[int, Any]:
    """Earn lots usable by `now` that have no row: a credit each (or skipped with their take-backs)."""
    e = LEDGER.c
    lots = _unsent(conn, sink, ("earn",), after, and_(e.amount > 0, e.available_from.is_not(None),
                                                       e.available_from <= now))
    if not lots:
        return 0, None
    identities = _identities(conn, sink, lots)
    out, skipped = [], set()
    for lot in lots:
        key = (lot["marketplace"], lot["account"], lot["order_id"], lot["rule"])
        ident = identities[key]
        if not ident.credited and ident.net <= 0:
            if key not in skipped:
                skipped.add(key)
                out += _skip_identity(sink, ident, now)
            continue
        member = (lot["marketplace"], lot["account"], lot["buyer_key"])
        out.append(_customer_row(sink, *member, now))
        out.append(_row(sink, lot["idempotency_key"], CREDIT_ROW, {"key": lot["idempotency_key"],
                                                                   "customer": customer_id(*member)}, now))
        ident.credited = True
    return insert_rows(conn, out), (lots[-1]["id"] if len(lots) == BATCH else None)


def _enqueue_debits(conn: Connection, sink: RetailCrmSettings, now: datetime, after: int | None) -> tuple[int, Any]:
    """Take-backs of credited lots and spends that have no row: a charge each. A take-back of a lot
    not credited yet waits (no row) until the lot is, or is skipped with it."""
    debits = _unsent(conn, sink, ("reverse", "spend"), after)
    if not debits:
        return 0, None
    identities = _identities(conn, sink, [r for r in debits if r["kind"] == "reverse"])
    out, skipped = [], set()
    for r in debits:
        if r["kind"] == "reverse":
            key = (r["marketplace"], r["account"], r["order_id"], r["rule"])
            ident = identities[key]
            if not ident.credited:
                if ident.net <= 0 and key not in skipped:
                    skipped.add(key)
                    out += _skip_identity(sink, ident, now)
                continue  # its lot is not usable yet: looked at again next run
        customer = customer_id(r["marketplace"], r["account"], r["buyer_key"])
        operation = Operation(CHARGE, -Decimal(r["amount"]))
        out.append(_row(sink, r["idempotency_key"], CHARGE_ROW, {"key": r["idempotency_key"], "customer": customer,
                                                                  "operation": operation.to_json()},
                        now, ref=f"{customer}|{operation.visible()}"))
    return insert_rows(conn, out), (debits[-1]["id"] if len(debits) == BATCH else None)


# -- deliver -----------------------------------------------------------------------------------------

@dataclass(slots=True)
class SinkResult:
    sent: int = 0
    found: int = 0  # credits or charges whose answers were lost, found applied in the CRM
    retrying: int = 0
    waiting: int = 0  # charges waiting for their credit
    skipped: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


class _Run:
    """One delivery run: the client, the account's zone, and loyalty account ids found so far."""

    def __init__(self, store: Store, sink: RetailCrmSettings, client: RetailCrmClient, zone: tzinfo, now: datetime,
                 claimer: str):
        self.store, self.sink, self.client, self.zone, self.now, self.claimer = store, sink, client, zone, now, claimer
        self.accounts: dict[str, int] = {}
        self.result = SinkResult()
        # Customers and orders are upserts, safe to send again: their attempts and answers are
        # written a batch at a time (`buffered`). Credits and charges write each before and after.
        self.buffer: list[tuple[int, dict[str, Any]]] | None = None

    async def db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def write(self, row_id: int, **values: Any) -> None:
        if self.buffer is not None:
            self.buffer.append((row_id, values))
        else:
            await self.db(set_row, self.store, row_id, **values)

    async def buffered(self, send: Callable[[list[dict[str, Any]]], Awaitable[None]],
                       rows: list[dict[str, Any]]) -> None:
        self.buffer = []
        try:
            await send(rows)
        finally:
            writes, self.buffer = self.buffer, None
            await self.db(set_rows, self.store, writes)

    # rows' fates
    async def sent(self, row: dict[str, Any], note: str | None = None) -> None:
        await self.write(row["id"], status="sent", sent_at=datetime.now(UTC), last_error=note, claimed_by=None,
                         claimed_until=None)
        self.result.sent += 1

    async def failed(self, row: dict[str, Any], attempts: int, error: str) -> None:
        if attempts >= MAX_ATTEMPTS:
            await self.write(row["id"], status="dead", last_error=f"{error}: {attempts} attempts", claimed_by=None,
                             claimed_until=None)
            self.result.dead += 1
            log.warning("%s: %s is a dead letter after %d attempts (%s); `loyalsync crm --resend %d` sends it again",
                        self.sink.name, row["event_id"], attempts, error, row["id"])
            return
        await self.write(row["id"], next_attempt_at=self.now + backoff(attempts), last_error=error, claimed_by=None,
                         claimed_until=None)
        self.result.retrying += 1

    async def later(self, row: dict[str, Any], at: datetime, why: str) -> None:
        await self.write(row["id"], next_attempt_at=max(at, self.now + WAIT), last_error=why, claimed_by=None,
                         claimed_until=None)
        self.result.waiting += 1

    async def skipped(self, row: dict[str, Any], why: str) -> None:
        await self.write(row["id"], status="skipped", last_error=why, claimed_by=None, claimed_until=None)
        self.result.skipped += 1

    async def attempt(self, row: dict[str, Any], **values: Any) -> int:
        """Count the attempt (committed) before the call; the first one also notes when."""
        attempts = row["attempts"] + 1
        first = row.get("first_attempt_at") or datetime.now(UTC)
        await self.write(row["id"], attempts=attempts, first_attempt_at=first, **values)
        row.update(attempts=attempts, first_attempt_at=first, **values)
        return attempts

    async def account(self, customer: str) -> int:
        if customer not in self.accounts:
            # A card number of our own (the client keeps no phone): the keyed hash's first 16 characters.
            self.accounts[customer] = await self.client.ensure_account(customer, "ls" + customer.rsplit(":", 1)[1][:16])
        return self.accounts[customer]

    # kinds
    async def customers(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            payload = json.loads(row["payload"])
            attempts = await self.attempt(row)
            entity = customer_entity(payload["marketplace"], payload["account"], payload["buyer_key"])
            try:
                await self.client.upsert_customer(entity.pop("externalId"), entity)
            except ApiError as exc:
                await self._refused(row, attempts, exc)
                continue
            await self.sent(row)

    async def orders(self, rows: list[dict[str, Any]]) -> None:
        entities: dict[str, dict[str, Any]] = {}
        rows_of: dict[str, list[dict[str, Any]]] = {}
        found = await self.db(_orders_now, self.store, [json.loads(row["payload"]) for row in rows], self.zone,
                              self.sink)
        for row in rows:
            payload = json.loads(row["payload"])
            entity = found.get((payload["marketplace"], payload["account"], payload["order_id"]))
            if entity is None:
                await self.skipped(row, "the order is no longer in the store")
                continue
            await self.attempt(row)
            entities[entity["externalId"]] = entity
            rows_of.setdefault(entity["externalId"], []).append(row)
        if not entities:
            return
        try:
            upload = await self.client.upload_orders(list(entities.values()))
        except ApiError as exc:
            for group in rows_of.values():
                for row in group:
                    await self._refused(row, row["attempts"], exc)
            return
        for external, group in rows_of.items():
            error: ApiError | None = None
            if external not in upload.uploaded:
                try:  # refused by the upload (most often: the CRM has it already): edited instead
                    await self.client.edit_order(entities[external])
                except ApiError as exc:
                    error = exc
            for row in group:
                if error is None:
                    await self.sent(row)
                else:
                    await self._refused(row, row["attempts"], error, upload.failed.get(external))

    async def credits(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            payload = json.loads(row["payload"])
            if "operation" not in payload:  # first attempt: the lot's days on the CRM's calendar, fixed now
                lot = await self.db(_lot, self.store, payload["key"])
                if lot is None:
                    await self.skipped(row, "the lot is no longer in the ledger")
                    continue
                operation = credit_operation(Decimal(lot["amount"]), lot["available_from"], lot["expires_at"],
                                             self.zone)
                if operation is None:
                    await self.skipped(row, TOO_SHORT)
                    continue
                payload["operation"] = operation.to_json()
            await self._apply(row, payload)

    async def charges(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            payload = json.loads(row["payload"])
            entry = await self.db(_lot, self.store, payload["key"])
            ready = await self.db(_charge_ready, self.store, self.sink.name, row, entry, self.zone)
            if ready is not None:
                await self.later(row, *ready)
                continue
            await self._apply(row, payload)

    async def _apply(self, row: dict[str, Any], payload: dict[str, Any]) -> None:
        """One credit or charge: found applied already, or sent (the attempt counted first, with
        what the CRM will show of it: `ref`, the window's key)."""
        customer, operation = payload["customer"], Operation.from_json(payload["operation"])
        ref = f"{customer}|{operation.visible()}"
        written = {"ref": ref, "payload": json.dumps(payload)}
        prior = row["attempts"]
        try:
            account = await self.account(customer)
            if prior and await self._landed(row, ref, account, operation):
                await self.db(set_row, self.store, row["id"], status="sent", sent_at=datetime.now(UTC),
                              last_error="found in the CRM's operations: its answer had been lost",
                              claimed_by=None, claimed_until=None)
                self.result.found += 1
                return
        except ApiError as exc:
            # Counted too: a CRM that keeps refusing the account ends this row as a dead letter.
            await self._refused(row, await self.attempt(row, **written), exc)
            return
        attempts = await self.attempt(row, **written)
        comment = f"loyalsync {row['event_id']}"
        try:
            if operation.type == CHARGE:
                await self.client.charge(account, operation.amount, comment)
            else:
                assert operation.activation is not None
                await self.client.credit(account, operation.amount, operation.activation, operation.expire, comment)
        except ApiError as exc:
            await self._refused(row, attempts, exc)
            return
        await self.sent(row)

    async def _landed(self, row: dict[str, Any], ref: str, account: int, operation: Operation) -> bool:
        first, confirmed = await self.db(_same_ref, self.store, self.sink.name, ref)
        operations = await self.client.operations(account, (first or row["first_attempt_at"]) - SKEW,
                                                  datetime.now(UTC) + SKEW, self.zone)
        return landed(operations, operation, confirmed)

    async def _refused(self, row: dict[str, Any], attempts: int, exc: ApiError, why: str | None = None) -> None:
        if isinstance(exc, AuthError):
            await self.db(set_row, self.store, row["id"], claimed_by=None, claimed_until=None)
            raise exc
        await self.failed(row, attempts, why or _words(exc))


def _words(exc: ApiError) -> str:
    """An error as one line for the outbox: the CRM's words where it gave some."""
    message = exc.platform_message or exc.args[0]
    status = f"HTTP {exc.status}: " if exc.status else ""
    return f"{status}{message}"[:500]


def _orders_now(store: Store, payloads: Sequence[dict[str, Any]], zone: tzinfo,
                sink: RetailCrmSettings) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The RetailCRM orders of these store orders as they are now (members' orders only)."""
    c, li = ORDERS.c, LINES.c
    keys = sorted({(p["marketplace"], p["account"], p["order_id"]) for p in payloads})
    with store.engine.connect() as conn:
        orders = conn.execute(select(ORDERS).where(tuple_(c.marketplace, c.account, c.order_id).in_(keys),
                                                   c.buyer_key.is_not(None))).mappings().all()
        lines: dict[tuple[str, str, str], list[Any]] = {}
        for line in conn.execute(select(LINES).where(tuple_(li.marketplace, li.account, li.order_id).in_(keys))
                                 .order_by(li.marketplace, li.account, li.order_id, li.line_no)).mappings():
            lines.setdefault((line["marketplace"], line["account"], line["order_id"]), []).append(line)
    return {(o["marketplace"], o["account"], o["order_id"]): order_entity(
        o, lines.get((o["marketplace"], o["account"], o["order_id"]), []), zone, sink.statuses, sink.order_method)
        for o in orders}


def _lot(store: Store, key: str) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(LEDGER).where(LEDGER.c.idempotency_key == key)).mappings().first()
    return dict(row) if row is not None else None


def _same_ref(store: Store, sink: str, ref: str) -> tuple[datetime | None, int]:
    """The first attempt of any row with this `ref`, and how many of them are confirmed sent."""
    d = DELIVERIES.c
    with store.engine.connect() as conn:
        first, confirmed = conn.execute(select(func.min(d.first_attempt_at), func.count().filter(d.status == "sent"))
                                        .where(d.endpoint == sink, d.ref == ref)).one()
    return first, int(confirmed or 0)


def _day_start(day: Any, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _charge_ready(store: Store, sink: str, row: dict[str, Any], entry: dict[str, Any] | None,
                  zone: tzinfo) -> tuple[datetime, str] | None:
    """None when the charge can be sent now; else when to look again, and why it waits."""
    if entry is None:
        return None
    d, e = DELIVERIES.c, LEDGER.c
    with store.engine.connect() as conn:
        if entry["kind"] == "reverse":
            # Its lot's credits: sent and active (a charge is taken from active bonuses).
            earn = select(e.idempotency_key).where(e.kind == "earn", e.marketplace == entry["marketplace"],
                                                   e.account == entry["account"], e.order_id == entry["order_id"],
                                                   e.rule == entry["rule"])
            credits = conn.execute(select(d.status, d.ref).where(d.endpoint == sink, d.event_type == CREDIT_ROW,
                                                                 d.event_id.in_(earn))).all()
        else:
            # A spend: the member's earlier credits first, and the next day (what it spent is active by then).
            credits = conn.execute(select(d.status, d.ref).where(
                d.endpoint == sink, d.event_type == CREDIT_ROW, d.id < row["id"],
                d.payload.contains(json.dumps(json.loads(row["payload"])["customer"]), autoescape=True))).all()
    if any(status == "pending" for status, _ in credits):
        return datetime.now(UTC), "waits for its credit to be sent"
    # ref: customer|type|amount|activation day
    days = [date.fromisoformat(ref.rsplit("|", 1)[1]) for status, ref in credits
            if status == "sent" and ref and ref.rsplit("|", 1)[1]]
    if entry["kind"] == "spend":
        days.append(entry["effective_at"].astimezone(zone).date() + timedelta(days=1))
    active_from = max((_day_start(day, zone) for day in days if day is not None), default=None)
    if active_from is not None and active_from > datetime.now(UTC):
        return active_from, "waits for its credit to become active"
    return None


async def deliver(store: Store, sink: RetailCrmSettings, now: datetime, *, claimer: str,
                  transport: httpx.AsyncBaseTransport | None = None, clock: Callable[[], float] | None = None,
                  sleep: Callable[[float], Awaitable[None]] | None = None) -> SinkResult:
    """Send what is due, in the order customers, orders, credits, charges; record each answer."""
    if not sink.enabled:
        return SinkResult()
    client = RetailCrmClient(sink.url, sink.api_key.get_secret_value(), site=sink.site,
                             max_per_second=sink.max_per_second, timeout_seconds=sink.timeout_seconds,
                             transport=transport, clock=clock, sleep=sleep)
    try:
        try:
            zone = await client.zone()
        except AuthError as exc:
            why = f"{exc} (the key in {sink.api_key_env}, for {sink.url})"
            await asyncio.to_thread(note_run, store, sink.name, why)
            return SinkResult(errors=[f"{sink.name}: {why}"])
        except ApiError as exc:
            why = f"the CRM at {sink.url} did not answer ({exc}); nothing is lost: everything waits in the outbox"
            await asyncio.to_thread(note_run, store, sink.name, why)
            return SinkResult(errors=[f"{sink.name}: {why}"])
        await asyncio.to_thread(note_run, store, sink.name, None)
        run = _Run(store, sink, client, zone, now, claimer)
        kinds = [(CUSTOMER_ROW, partial(run.buffered, run.customers)), (ORDER_ROW, partial(run.buffered, run.orders)),
                 (CREDIT_ROW, run.credits), (CHARGE_ROW, run.charges)]
        try:
            for kind, send in kinds:
                while batch := await asyncio.to_thread(claim, store, sink.name, now, claimer, types=[kind],
                                                       limit=UPLOAD_MAX):
                    await send(batch)
        except AuthError as exc:
            run.result.errors.append(f"{sink.name}: {exc}")
            await asyncio.to_thread(note_run, store, sink.name, f"{exc} (the key in {sink.api_key_env})")
        return run.result
    finally:
        await client.aclose()
