"""Chat notices: tell a buyer, in the order's own chat on the platform, the points the order earned.

A service message about the buyer's own purchase: no offer, no link, nothing conditioned on a review.
One proposal per order (key `chat:points:{mp}:{acct}:{order_id}`), made once the loyalty job has
credited the order's points (after the settle delay) and only for orders created within
`[actions.chat] within`. Whether the seller may write there at all (who opens the chat, the time
windows) is the gate's call, from the platform's capabilities and the `ChatContext` built here.

The stored orders carry no delivery time. `delivered_at` is the order's last update once it is
delivered; on Ozon (the platform with a window after delivery) that is the posting's processing
time, which is earlier than the real delivery, so the gate closes the window early, never late.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, select

from connectors.capabilities import ActionKind
from loyalty.action_settings import ChatSettings
from loyalty.actions import Action, ChatContext, Purpose
from loyalty.ledger import LEDGER, balances
from store import Store
from store.tables import OrderRow

__all__ = ["chat_context", "points_notice_text", "propose_points_notices"]

ORDERS = OrderRow.__table__
GROUNDS = frozenset({"order.status", "order.created_at", "ledger.earn"})
_NOT_TOLD = ("cancelled", "returned")  # a cancelled or returned order's points are gone again
_DELIVERED = ("delivered", "partially_returned")


def chat_context(order: dict[str, Any]) -> ChatContext:
    """What the gate's chat rules need about one stored order (no chat known yet: writing starts one)."""
    delivered = order["updated_at"] if order["status"] in _DELIVERED else None
    return ChatContext(chat_exists=False, fulfilment=order["fulfilment"], paid_at=order["created_at"],
                       delivered_at=delivered)


def _points(value: Decimal) -> str:
    """Whole points without a trailing '.0'; fractions (a spend can leave some) keep two places."""
    return f"{value:.0f}" if value == value.to_integral_value() else f"{value:.2f}"


def points_notice_text(template: str, *, order_id: str, points: Decimal, balance: Decimal, store_name: str) -> str:
    return template.format(order=order_id, points=_points(points), balance=_points(balance),
                           store=store_name).strip()


def _credited_orders(store: Store, since: datetime) -> list[dict[str, Any]]:
    """Orders created since `since` with points credited, each with the points of all its earn lots."""
    ledger, orders = LEDGER.c, ORDERS.c
    stmt = (select(orders.marketplace, orders.account, orders.order_id, orders.buyer_key, orders.status,
                   orders.fulfilment, orders.created_at, orders.updated_at, ledger.amount)
            .join(LEDGER, and_(ledger.marketplace == orders.marketplace, ledger.account == orders.account,
                               ledger.order_id == orders.order_id, ledger.buyer_key == orders.buyer_key))
            .where(orders.created_at >= since, ledger.kind == "earn", orders.status.not_in(_NOT_TOLD))
            .order_by(orders.created_at, orders.order_id))
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(stmt).mappings():
            order = found.setdefault((row["marketplace"], row["account"], row["order_id"]),
                                     {**row, "points": Decimal(0)})
            order["points"] += Decimal(row["amount"])  # text on SQLite: summed here, not in SQL
    return [o for o in found.values() if o["points"] > 0]


def propose_points_notices(store: Store, settings: ChatSettings, store_name: str, now: datetime) -> Iterator[Action]:
    """One chat message per recent order whose points are credited (oldest first)."""
    if not settings.points_notice:
        return
    for order in _credited_orders(store, now - settings.within):
        mp, acct, oid, buyer = order["marketplace"], order["account"], order["order_id"], order["buyer_key"]
        b = balances(store, (mp, acct, buyer), now)
        text = points_notice_text(settings.points_text, order_id=oid, points=order["points"],
                                  balance=b.pending + b.available - b.debt, store_name=store_name)
        yield Action(kind=ActionKind.SEND_CHAT_MESSAGE, marketplace=mp, account=acct,
                     key=f"chat:points:{mp}:{acct}:{oid}",
                     target=oid, created_at=now, text=text, public=False, purpose=Purpose.SERVICE,
                     grounds=GROUNDS, chat=chat_context(order),
                     title=f"tell the buyer of order {oid} about {_points(order['points'])} points")
