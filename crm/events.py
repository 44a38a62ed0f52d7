"""The events a webhook carries, read from the store since where an endpoint last read each source.

Four sources, each with a cursor per endpoint (`webhook_cursors`):
- `ledger`: every ledger entry after the last id read: `points.earned|spent|expired|reversed|adjusted`,
  and `member.joined` for a member's first entry;
- `orders`: every order whose loyalty-relevant state changed (`orders.changed_at`) after the last
  (time, key) read: `order.created` the first time an endpoint hears of it, `order.changed` after;
- `actions`: every action sent (`sent_at`) after the last (time, id) read: `action.sent`;
- `members`: every member the tiers job evaluated after the last (time, key) read:
  `member.tier_changed` for each tier a member holds since a moment not told before.

Event ids are built from what the event is, never from row ids or the time it was read, so
reading a source again (a cursor lost, a replica taking over) makes the same ids, and the outbox's
unique (endpoint, event id) stores each once. No event carries buyer personal data: members are
the store's keyed hash (`buyer_key`), as in every export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Connection, Table, func, literal, select, tuple_

from store.loyalty_tables import ActionRow, LedgerEntryRow, MemberProjectionRow
from store.tables import OrderRow

__all__ = ["BATCH", "SOURCES", "Event", "action_events", "ledger_events", "order_events", "order_of", "tier_events"]

LEDGER: Table = LedgerEntryRow.__table__  # type: ignore[assignment]
ORDERS: Table = OrderRow.__table__  # type: ignore[assignment]
ACTIONS: Table = ActionRow.__table__  # type: ignore[assignment]
MEMBERS: Table = MemberProjectionRow.__table__  # type: ignore[assignment]
BATCH = 2000  # rows read from one source at a time
SOURCES = ("ledger", "orders", "actions", "members")
POINTS = {"earn": "points.earned", "spend": "points.spent", "expire": "points.expired", "reverse": "points.reversed",
          "adjust": "points.adjusted"}


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, as a receiver reads it (docs/webhooks/event.schema.json)."""

    id: str
    type: str
    occurred_at: datetime
    marketplace: str
    account: str
    data: dict[str, Any] = field(default_factory=dict)

    def body(self) -> bytes:
        """The exact bytes signed and sent: sorted keys, times in ISO 8601 UTC, money as strings."""
        return orjson.dumps({"id": self.id, "type": self.type, "occurred_at": _iso(self.occurred_at),
                             "marketplace": self.marketplace, "account": self.account, "data": self.data},
                            option=orjson.OPT_SORT_KEYS)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _money(value: Any) -> str:
    return f"{Decimal(value).quantize(Decimal('0.01')):f}"


def ledger_events(conn: Connection, after: int) -> tuple[list[Event], int]:
    """Events of the ledger entries with id > `after`, and the last id read."""
    c = LEDGER.c
    rows = conn.execute(select(LEDGER).where(c.id > after).order_by(c.id).limit(BATCH)).mappings().all()
    if not rows:
        return [], after
    members = {(r["marketplace"], r["account"], r["buyer_key"]) for r in rows}
    first = dict(((mp, acct, buyer), first_id) for mp, acct, buyer, first_id in conn.execute(
        select(c.marketplace, c.account, c.buyer_key, func.min(c.id))
        .where(tuple_(c.marketplace, c.account, c.buyer_key).in_(sorted(members)))
        .group_by(c.marketplace, c.account, c.buyer_key)))
    events: list[Event] = []
    for r in rows:
        member = (r["marketplace"], r["account"], r["buyer_key"])
        if first.get(member) == r["id"]:
            events.append(Event(f"member:{':'.join(member)}", "member.joined", r["effective_at"], r["marketplace"],
                                r["account"], {"buyer_key": r["buyer_key"]}))
        events.append(Event(
            f"points:{r['idempotency_key']}", POINTS.get(r["kind"], "points.adjusted"), r["effective_at"],
            r["marketplace"], r["account"],
            {"buyer_key": r["buyer_key"], "amount": _money(r["amount"]), "order_id": r["order_id"],
             "rule": r["rule"], "entry_key": r["idempotency_key"], "available_from": _iso(r["available_from"]),
             "expires_at": _iso(r["expires_at"])}))
    return events, rows[-1]["id"]


def order_events(conn: Connection, after: tuple[str, ...] | None,
                 known_of: Callable[[Connection], set[str]]) -> tuple[list[Event], tuple]:
    """Events of the orders changed after the (changed_at, marketplace, account, order_id) `after`.

    `known_of(conn)`: "marketplace:account:order_id" of orders this endpoint has had an event of
    (`order.changed` for those, `order.created` for the others); asked only when an order changed,
    and the new ones are added to it."""
    c = ORDERS.c
    position = tuple_(c.changed_at, c.marketplace, c.account, c.order_id)
    stmt = select(ORDERS).where(c.changed_at.is_not(None))
    if after is not None:
        changed, *key = after
        stmt = stmt.where(position > tuple_(literal(datetime.fromisoformat(changed), c.changed_at.type), *key))
    rows = conn.execute(stmt.order_by(c.changed_at, c.marketplace, c.account, c.order_id).limit(BATCH)).mappings().all()
    known = known_of(conn) if rows else set()
    events = []
    for r in rows:
        order = f"{r['marketplace']}:{r['account']}:{r['order_id']}"
        total, returned = _money(r["total"]), _money(r["returned_total"])
        kind = "order.changed" if order in known else "order.created"
        known.add(order)
        # The change's time is in the id: an order back in a state it had before (a platform's
        # correction) is news, while reading the same change twice makes the same id.
        events.append(Event(
            f"order:{order}:{r['status']}:{total}:{returned}@{_iso(r['changed_at'])}", kind, r["changed_at"],
            r["marketplace"], r["account"],
            {"order_id": r["order_id"], "status": r["status"], "platform_status": r["platform_status"],
             "created_at": _iso(r["created_at"]), "currency": r["currency"], "total": total,
             "returned_total": returned, "fulfilment": r["fulfilment"], "buyer_key": r["buyer_key"]}))
    if not rows:
        return [], after or ()
    last = rows[-1]
    return events, (_iso(last["changed_at"]), last["marketplace"], last["account"], last["order_id"])


def order_of(event_id: str) -> str:
    """"marketplace:account:order_id" of an order event's id
    (`order:{mp}:{account}:{order_id}:{status}:{total}:{returned}@{changed_at}`)."""
    return event_id.removeprefix("order:").rsplit("@", 1)[0].rsplit(":", 3)[0]


def action_events(conn: Connection, after: tuple[str, int] | None) -> tuple[list[Event], tuple]:
    """Events of the actions sent after the (sent_at, id) `after`."""
    c = ACTIONS.c
    stmt = select(ACTIONS).where(c.status == "sent", c.sent_at.is_not(None))
    if after is not None:
        sent = literal(datetime.fromisoformat(after[0]), c.sent_at.type)  # bound as the column stores it
        stmt = stmt.where(tuple_(c.sent_at, c.id) > tuple_(sent, after[1]))
    rows = conn.execute(stmt.order_by(c.sent_at, c.id).limit(BATCH)).mappings().all()
    events = [Event(f"action:{r['key']}", "action.sent", r["sent_at"], r["marketplace"], r["account"],
                    {"action_key": r["key"], "kind": r["kind"], "target": r["target"], "title": r["title"],
                     "platform_ref": r["platform_ref"]}) for r in rows]
    if not rows:
        return [], after or ()
    return events, (_iso(rows[-1]["sent_at"]), rows[-1]["id"])


def tier_events(conn: Connection, after: tuple[str, ...] | None) -> tuple[list[Event], tuple]:
    """`member.tier_changed` for members evaluated after the (evaluated_at, marketplace, account,
    buyer_key) `after` that hold a tier since a known moment. The id names the tier and that moment,
    so the daily re-evaluation of an unchanged member makes no new event. (A member who loses every
    tier holds none since no moment: not told.)"""
    c = MEMBERS.c
    position = tuple_(c.evaluated_at, c.marketplace, c.account, c.buyer_key)
    stmt = select(MEMBERS)
    if after is not None:
        evaluated, *key = after
        stmt = stmt.where(position > tuple_(literal(datetime.fromisoformat(evaluated), c.evaluated_at.type), *key))
    rows = conn.execute(stmt.order_by(c.evaluated_at, c.marketplace, c.account, c.buyer_key)
                        .limit(BATCH)).mappings().all()
    events = [Event(f"tier:{r['marketplace']}:{r['account']}:{r['buyer_key']}:{r['tier']}:{_iso(r['tier_since'])}",
                    "member.tier_changed", r["tier_since"], r["marketplace"], r["account"],
                    {"buyer_key": r["buyer_key"], "tier": r["tier"], "since": _iso(r["tier_since"]),
                     "orders": r["orders"], "spend": _money(r["spend"])})
              for r in rows if r["tier"] is not None and r["tier_since"] is not None]
    if not rows:
        return [], after or ()
    last = rows[-1]
    return events, (_iso(last["evaluated_at"]), last["marketplace"], last["account"], last["buyer_key"])
