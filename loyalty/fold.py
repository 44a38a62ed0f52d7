"""One member's points over time: lots, take-backs, spends, expiry and debt (docs/loyalty-rules.md §7).

Pure: no I/O, no clock. Given every lot, take-back and spend of a member, `fold` replays them in time
order up to `now` and says what is left in each lot, what expired, what each take-back had
forgiven, what each debit could not cover, and the balances. The ledger writes its `remaining`,
`expire` and forgiveness entries from this, so they never depend on when a job ran: no lot is
consumed at or after its `expires_at`, whether or not an expire step has run.

At one instant: grants, then expiries, then availabilities, then take-backs, then spends.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

__all__ = ["FoldBalances", "FoldLot", "FoldResult", "Spend", "TakeBack", "fold", "fold_owned"]

_ZERO = Decimal(0)
_GRANT, _EXPIRE, _AVAILABLE, _TAKE_BACK, _SPEND = range(5)


@dataclass(slots=True)
class FoldLot:
    """A granted lot: `identity` is its (order_id, rule)."""

    key: str
    identity: tuple[str, str]
    amount: Decimal
    created_at: datetime
    available_from: datetime | None
    expires_at: datetime | None
    remaining: Decimal = _ZERO
    expired: Decimal = _ZERO
    forgiven: Decimal = _ZERO  # of `expired`, what take-backs of this lot's identity have forgiven
    is_available: bool = False
    is_expired: bool = False


@dataclass(frozen=True, slots=True)
class TakeBack:
    """`amount` (> 0) taken back from the lots of `identity` at `at`."""

    key: str
    identity: tuple[str, str]
    amount: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class Spend:
    """`amount` (> 0) of available points spent at `at` (a promo code sent)."""

    key: str
    amount: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class FoldBalances:
    """`expired` is net of what take-backs forgave; `expired_gross` everything lots lost to expiry."""

    pending: Decimal
    available: Decimal
    expired: Decimal
    debt: Decimal
    lifetime: Decimal
    expired_gross: Decimal = _ZERO


@dataclass(slots=True)
class FoldResult:
    """Per lot: `remaining`, `expired`; per take-back: `forgiven`; per debit: `uncovered` (debt)."""

    remaining: dict[str, Decimal] = field(default_factory=dict)
    expired: dict[str, Decimal] = field(default_factory=dict)
    forgiven: dict[str, Decimal] = field(default_factory=dict)
    uncovered: dict[str, Decimal] = field(default_factory=dict)
    balances: FoldBalances | None = None


class _Wallet:
    """The replay's state. Lots that became available are kept in availability order (`available`),
    so a take-back or a spend walks only the lots it consumes, not every lot of a heavy buyer."""

    def __init__(self, lots: list[FoldLot]):
        self.debts: list[list] = []  # [debit key, uncovered], oldest first
        self.result = FoldResult()
        self.own: dict[tuple[str, str], list[FoldLot]] = {}  # per identity, by (created_at, key)
        for lot in sorted(lots, key=lambda lot: (lot.created_at, lot.key)):
            self.own.setdefault(lot.identity, []).append(lot)
        self.available: list[FoldLot] = []  # by `_by_availability`; emptied or expired ones pruned lazily
        self._available_keys: list[tuple] = []

    def make_available(self, lot: FoldLot) -> None:
        lot.is_available = True
        key = _by_availability(lot)
        at = bisect_right(self._available_keys, key)
        self._available_keys.insert(at, key)
        self.available.insert(at, lot)
        self.pay_debts(lot)

    def take(self, lots: Iterable[FoldLot], need: Decimal) -> Decimal:
        for lot in lots:
            if need <= 0:
                break
            got = min(lot.remaining, need)
            lot.remaining -= got
            need -= got
        return need

    def take_available(self, need: Decimal, skip: tuple[str, str] | None = None) -> Decimal:
        """Take `need` from live available lots in availability order (not those of `skip`)."""
        dead = 0
        for lot in self.available:
            if need <= 0:
                break
            if lot.remaining <= 0 or lot.is_expired:
                dead += 1  # never live again: remaining only falls once granted, expiry is final
                continue
            if lot.identity == skip:
                continue
            got = min(lot.remaining, need)
            lot.remaining -= got
            need -= got
        if dead > 16:
            keep = [i for i, lot in enumerate(self.available) if lot.remaining > 0 and not lot.is_expired]
            self.available = [self.available[i] for i in keep]
            self._available_keys = [self._available_keys[i] for i in keep]
        return need

    def owe(self, key: str, amount: Decimal) -> None:
        self.result.uncovered[key] = self.result.uncovered.get(key, _ZERO) + amount
        if amount > 0:
            self.debts.append([key, amount])

    def pay_debts(self, lot: FoldLot) -> None:
        if not self.debts:
            return
        for debt in self.debts:
            if lot.remaining <= 0:
                break
            pay = min(lot.remaining, debt[1])
            lot.remaining -= pay
            debt[1] -= pay
            self.result.uncovered[debt[0]] -= pay
        self.debts = [d for d in self.debts if d[1] > 0]

    def take_back(self, t: TakeBack) -> None:
        own = [lot for lot in self.own.get(t.identity, ()) if lot.created_at <= t.at]
        need = self.take((lot for lot in own if not lot.is_expired), t.amount)
        forgiven = _ZERO
        for lot in own:  # points that expired unused are gone, not owed twice
            if need <= 0:
                break
            f = min(need, lot.expired - lot.forgiven)
            lot.forgiven += f
            forgiven += f
            need -= f
        self.result.forgiven[t.key] = forgiven
        # Owed points come from available lots only; pending ones pay the debt when they become
        # available (§7). Taking them now would let a lot that is itself taken back before it is
        # available absorb a debt, and make the result depend on which such lots a run had written.
        self.owe(t.key, self.take_available(need, skip=t.identity))

    def spend(self, s: Spend) -> None:
        self.owe(s.key, self.take_available(s.amount))


_RULE_RANK = {"rate": 0, "welcome": 1, "every_nth": 2}  # then offer bonuses by name (docs §8)


def _lot_order(lot: FoldLot) -> tuple:
    """The lot order of docs §8 within one member: by order (created_at, order_id), then rate,
    welcome, every-Nth, offer bonuses by name (then a re-grant after its first grant). It breaks
    every tie between lots: which of two lots available at the same moment a spend uses first."""
    order_id, rule = lot.identity
    return (lot.created_at, order_id, _RULE_RANK.get(rule, 3), rule, lot.key)


def _by_availability(lot: FoldLot) -> tuple:
    return (lot.available_from, *_lot_order(lot))


def fold(lots: Iterable[FoldLot], take_backs: Iterable[TakeBack], spends: Iterable[Spend],
         now: datetime) -> FoldResult:
    """Replay the member's points up to `now` (see the module docstring). The lots given are not
    changed: the replay works on copies."""
    lots = [FoldLot(lot.key, lot.identity, lot.amount, lot.created_at, lot.available_from, lot.expires_at)
            for lot in lots]
    return fold_owned(lots, take_backs, spends, now)


def fold_owned(lots: list[FoldLot], take_backs: Iterable[TakeBack], spends: Iterable[Spend],
               now: datetime, *, with_balances: bool = True) -> FoldResult:
    """`fold` on fresh lots the caller made for it (their state fields are overwritten).

    `with_balances=False` leaves `balances` None, for a caller that writes only what each lot and
    debit keeps (the ledger job: it sums nothing it does not write)."""
    take_backs = [t for t in take_backs if t.at <= now]
    spends = [s for s in spends if s.at <= now]
    if take_backs or spends:
        wallet = _Wallet(lots)
        _replay(wallet, lots, take_backs, spends, now)
        result = wallet.result
    else:  # most members of a rebuild: no lot is consumed, so no wallet to index
        _age(lots, now)
        result = FoldResult()
    if not with_balances:
        for lot in lots:
            result.remaining[lot.key] = lot.remaining
            result.expired[lot.key] = lot.expired
        return result
    pending = available = expired = _ZERO
    for lot in lots:
        result.remaining[lot.key] = lot.remaining
        result.expired[lot.key] = lot.expired
        expired += lot.expired
        if lot.is_available:
            available += lot.remaining
        else:
            pending += lot.remaining
    taken = sum((t.amount for t in take_backs), _ZERO)
    forgiven = sum(result.forgiven.values(), _ZERO)
    granted = sum((lot.amount for lot in lots if lot.created_at <= now), _ZERO)
    result.balances = FoldBalances(pending=pending, available=available, expired=expired - forgiven,
                                   debt=sum(result.uncovered.values(), _ZERO), lifetime=granted - taken,
                                   expired_gross=expired)
    return result


def _age(lots: list[FoldLot], now: datetime) -> None:
    """The replay when nothing takes points (no take-back, no spend): each lot is granted, and only
    becomes available and expires, the same as in `_replay` (an expiry counts from the grant on)."""
    for lot in lots:
        lot.remaining = lot.amount
        x = lot.expires_at
        if x is not None and x <= now:
            lot.is_expired = True
            if x >= lot.created_at:  # (an expiry dated before the grant finds nothing; the grant refills)
                lot.expired, lot.remaining = lot.amount, _ZERO
        elif lot.available_from is not None and lot.available_from <= now:
            lot.is_available = True


def _replay(wallet: _Wallet, lots: list[FoldLot], take_backs: list[TakeBack], spends: list[Spend],
            now: datetime) -> None:
    """Every event up to `now` in time order (module docstring for ties)."""
    events: list[tuple] = []
    for lot in lots:
        order = _lot_order(lot)  # at one instant, one kind of event goes in lot order (§8)
        events.append((lot.created_at, _GRANT, order, lot))
        if lot.expires_at is not None and lot.expires_at <= now:
            events.append((lot.expires_at, _EXPIRE, order, lot))
        if lot.available_from is not None and lot.available_from <= now:
            events.append((max(lot.available_from, lot.created_at), _AVAILABLE, order, lot))
    events += [(t.at, _TAKE_BACK, (t.key,), t) for t in take_backs]
    events += [(s.at, _SPEND, (s.key,), s) for s in spends]
    events.sort(key=lambda e: e[:3])
    for _, kind, _, item in events:
        if kind == _GRANT:
            item.remaining = item.amount
        elif kind == _EXPIRE:
            item.expired += item.remaining
            item.remaining = _ZERO
            item.is_expired = True
        elif kind == _AVAILABLE:
            if not item.is_expired:
                wallet.make_available(item)
        elif kind == _TAKE_BACK:
            wallet.take_back(item)
        else:
            wallet.spend(item)
