"""§7 of docs/loyalty-rules.md: one member's balances from replaying every event in time order.

The events are built in full, sorted, and replayed one by one over plain lists: no index, no
shortcut. At one instant the order is grants, expiries, availabilities, taking back, spends (§7
"Ties"); within one kind, lots go in lot order and spends by their key (Q10 in the report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tests.loyalty import reference_readings as readings

__all__ = ["FoldLot", "RefBalances", "fold"]

GRANT, EXPIRE, AVAILABLE, TAKE_BACK, SPEND = range(5)  # §7 "Ties", in this order


@dataclass
class FoldLot:
    """A lot with its times (§6) and its taking back (§4, §5), plus the state the fold keeps."""

    order_id: str
    rule: str
    order_key: tuple  # the lot order (§8), for ties
    amount: Decimal  # A
    granted_at: datetime
    available_from: datetime | None
    expires_at: datetime | None
    take_back: Decimal  # X = A − D
    take_back_at: datetime | None
    kept: Decimal  # D
    remaining: Decimal = Decimal(0)
    expired: Decimal = Decimal(0)
    forgiven: Decimal = Decimal(0)
    owed: Decimal = Decimal(0)
    granted: bool = False
    available: bool = False
    is_expired: bool = False


@dataclass
class RefBalances:
    pending: Decimal = Decimal(0)
    available: Decimal = Decimal(0)
    expired: Decimal = Decimal(0)
    debt: Decimal = Decimal(0)
    lifetime: Decimal = Decimal(0)


@dataclass
class _Debit:
    uncovered: Decimal


@dataclass
class _State:
    lots: list[FoldLot]
    debits: list[_Debit] = field(default_factory=list)

    def debt(self) -> Decimal:
        return sum((d.uncovered for d in self.debits), Decimal(0))


def fold(lots: list[FoldLot], spends: list[tuple[datetime, str, Decimal]], now: datetime) -> RefBalances:
    """Replay the events up to `now` and read the balances (§7 "The balances at now")."""
    events = _events(lots, spends)
    state = _State(lots)
    for when, kind, _tie, subject in sorted(events, key=lambda e: e[:3]):
        if when > now or (when == now and not readings.EVENTS_AT_NOW_INCLUDED):
            break
        if kind == GRANT:
            subject.granted, subject.remaining = True, subject.amount
        elif kind == EXPIRE:
            subject.expired += subject.remaining
            subject.remaining, subject.is_expired = Decimal(0), True
        elif kind == AVAILABLE:
            subject.available = True
            _pay_debts(state, subject)
        elif kind == TAKE_BACK:
            _take_back(state, subject)
        else:
            _spend(state, subject)
    granted = [lot for lot in lots if lot.granted]
    return RefBalances(
        pending=sum((lot.remaining for lot in granted if not lot.available), Decimal(0)),
        available=sum((lot.remaining for lot in granted if lot.available and not lot.is_expired), Decimal(0)),
        # §7: what lots lost to expiry, less what take-backs forgave (those count as taken back).
        expired=sum((lot.expired - lot.forgiven for lot in granted), Decimal(0)),
        debt=state.debt(),
        lifetime=sum((lot.amount - lot.owed - lot.forgiven for lot in granted), Decimal(0)),
    )


def _events(lots: list[FoldLot], spends) -> list[tuple]:
    events: list[tuple] = []
    for lot in lots:
        start = lot.granted_at
        events.append((start, GRANT, lot.order_key, lot))
        if lot.available_from is not None:  # never before the lot exists
            events.append((max(lot.available_from, start), AVAILABLE, lot.order_key, lot))
        if lot.expires_at is not None:
            events.append((max(lot.expires_at, start), EXPIRE, lot.order_key, lot))
        if lot.take_back > 0 and lot.take_back_at is not None:
            events.append((max(lot.take_back_at, start), TAKE_BACK, lot.order_key, lot))
    for at, key, amount in spends:
        events.append((at, SPEND, (key,), amount))
    return events


def _pay_debts(state: _State, lot: FoldLot) -> None:
    """§7 Availability: the lot pays the oldest uncovered debits first."""
    for debit in state.debits:
        paid = min(lot.remaining, debit.uncovered)
        lot.remaining -= paid
        debit.uncovered -= paid


def _take_back(state: _State, lot: FoldLot) -> None:
    """§7 Taking back X of lot L: own remaining, then forgiven, then owed from other available lots, then
    debt (pending lots pay it when they become available)."""
    left = lot.take_back
    if not lot.is_expired:
        own = min(lot.remaining, left)
        lot.remaining -= own
        left -= own
    forgive = min(left, lot.expired - lot.forgiven)
    lot.forgiven += forgive
    left -= forgive
    lot.owed += lot.take_back - forgive
    others = [o for o in state.lots if o is not lot and o.granted and not o.is_expired and o.available]
    left = _consume(sorted(others, key=lambda o: (o.available_from, o.order_key)), left)
    if left > 0:
        state.debits.append(_Debit(left))


def _spend(state: _State, amount: Decimal) -> None:
    """§7 Spend: from available, unexpired lots, oldest available_from first; the rest is debt."""
    usable = sorted((o for o in state.lots if o.granted and o.available and not o.is_expired),
                    key=lambda o: (o.available_from, o.order_key))
    left = _consume(usable, amount)
    if left > 0:
        state.debits.append(_Debit(left))


def _consume(lots: list[FoldLot], amount: Decimal) -> Decimal:
    for lot in lots:
        take = min(lot.remaining, amount)
        lot.remaining -= take
        amount -= take
    return amount
