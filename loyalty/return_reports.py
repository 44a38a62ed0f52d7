"""A platform's duty to report buyer returns, as one ops task per return the store sees.

Megamarket requires the seller to report each buyer return it has received «не позднее чем до конца
следующего дня после получения товара продавцом», or the platform's bonus-programme payouts are
computed wrongly (megamarket.md §2.5). Where to report it (`order/return`) has no documented body,
so loyalsync does not send it: it reminds a person, with the deadline, once per order and per
returned amount (a second unit coming back later is a second report).

The deadline is counted from when the return was seen: the platform's own time of it where the
record dates it, else the first poll that saw it. The goods may reach the seller later, which moves
the real deadline later, never earlier, so the task's date is never too late to act on. Returns seen
longer ago than `RECENT` (a first sync of a year of history) are not proposed: their deadline passed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select

from connectors.capabilities import ActionKind, Capabilities, Channel, ReturnDuty
from connectors.records import OrderStatus
from loyalty.actions import Action, Purpose
from store import Store
from store.tables import OrderRow

__all__ = ["RECENT", "deadline", "propose_return_reports"]

RECENT = timedelta(days=7)
CENT = Decimal("0.01")
_RETURNED = (OrderStatus.RETURNED.value, OrderStatus.PARTIALLY_RETURNED.value)


def deadline(seen: datetime, duty: ReturnDuty) -> datetime:
    """The end of the day `duty.days` after the day of `seen`, on the platform's calendar (aware)."""
    day = seen.astimezone(duty.zone).date() + timedelta(days=duty.days + 1)
    return datetime.combine(day, time(0), duty.zone) - timedelta(microseconds=1)


def propose_return_reports(store: Store, capabilities: Mapping[str, Capabilities], now: datetime) -> Iterator[Action]:
    """One ops task per returned order (and per returned amount) on a platform with a return duty."""
    duties = {mp: caps.return_duty for mp, caps in capabilities.items() if caps.return_duty is not None}
    if not duties:
        return
    o = OrderRow.__table__.c  # type: ignore[attr-defined]
    stmt = (select(o.marketplace, o.account, o.order_id, o.status, o.total, o.returned_total, o.currency,
                   o.status_changed_at)
            .where(o.marketplace.in_(sorted(duties)), o.status.in_(_RETURNED), o.status_changed_at >= now - RECENT)
            .order_by(o.marketplace, o.account, o.status_changed_at, o.order_id))
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    for mp, acct, order_id, status, total, returned_total, currency, seen in rows:
        duty = duties[mp]
        # To the kopeck, whatever the database gives back: the amount is part of the task's key.
        amount = Decimal(returned_total if status == OrderStatus.PARTIALLY_RETURNED.value else total).quantize(CENT)
        due = deadline(seen, duty)
        values = {"order": order_id, "returned": f"{amount:,f} {currency}", "seen": _local(seen, duty),
                  "deadline": _local(due, duty)}
        yield Action(
            kind=ActionKind.OPS_TASK, marketplace=mp, account=acct,
            key=f"return-report:{mp}:{acct}:{order_id}:{amount}", target=order_id, created_at=now,
            purpose=Purpose.SERVICE, grounds=frozenset({"order.status"}),
            title=f"report the return of {duty.label} shipment {order_id} ({values['returned']}) "
                  f"by {values['deadline']}",
            params={
                "channel": Channel.CABINET.value, "order": order_id, "returned": str(amount),
                "deadline": due.isoformat(), "seen": seen.isoformat(),
                "steps": [step.format(**values) for step in duty.steps],
                "rules": [rule.format(**values) for rule in duty.rules],
            },
        )


def _local(value: datetime, duty: ReturnDuty) -> str:
    """A time on the platform's calendar, as a person there reads it: `2026-07-15 23:59 MSK`."""
    local = value.astimezone(duty.zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
