"""What one member's orders imply at `now`: the lots they hold and what is taken back.

Pure: no I/O, no clock. The rules are docs/loyalty-rules.md §3–§5 and §8; this module decides
only how they become ledger entries:

- A lot's identity is `(order_id, rule)`: `rate`, `welcome`, `every_nth` or `offer:<name>`. The
  ledger may hold several grants of one identity (a reward taken back and given again) and several
  take-backs; what the buyer holds of it is granted − taken back.
- Each run compares that with what the buyer should keep (`keep`, the doc's `D`) and writes the
  difference: a grant (`earn`, amount positive) when the identity holds too little, a take-back
  (`reverse`, amount −X) when it holds too much. Amounts already granted are never recomputed: the
  first grant's amount is the lot's `A` (§4).
- Keys: the first grant `earn:{mp}:{acct}:{order}:{rule}`, later ones `…:{rule}#{n}`; take-backs
  `reverse:{mp}:{acct}:{order}:{rule}#{n}`; `n` counts the identity's recorded entries of that
  kind, so two runs that read the same ledger write the same keys (the second is a no-op).
- A lot's `available_from`/`expires_at` follow its order's current status (§6), so a replay gives
  the same dates as live runs; the ledger updates them when they change. A status that names no
  delivery (`returned`, `cancelled`) leaves them as they were: the lot is taken back anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from loyalty.engine import (
    CANCELLED,
    EARN,
    PARTIALLY_RETURNED,
    REVERSE,
    RULE_NTH,
    RULE_RATE,
    RULE_WELCOME,
    SETTLE_DELAY,
    BudgetCutoff,
    Entry,
    OrderFact,
    available_from,
    expires_at,
    is_settled,
    offer_applies,
    offer_rule,
    points,
)
from loyalty.held_tier import HeldTiers, counts, kept_at, voided_at
from loyalty.rules import LoyaltySettings, Segment
from loyalty.segments import segment

__all__ = ["Identity", "Recorded", "member_entries", "nth_holders"]

_ZERO = Decimal(0)
_ONE = _WHOLE = Decimal(1)
Identity = tuple[str, str]  # (order_id, rule)


@dataclass(slots=True)
class Recorded:
    """What the ledger holds of one identity."""

    grants: list[Entry] = field(default_factory=list)
    taken: Decimal = _ZERO  # Σ X of its take-backs
    take_backs: int = 0

    @property
    def granted(self) -> Decimal:
        if not self.grants:
            return _ZERO
        return sum((g.amount for g in self.grants), _ZERO)

    @property
    def holds(self) -> Decimal:
        return self.granted - self.taken

    @property
    def first_amount(self) -> Decimal | None:
        """The lot's `A`: the amount of its first grant."""
        return min(self.grants, key=lambda g: g.idempotency_key.count("#")).amount if self.grants else None


_NOTHING = Recorded()  # what an identity without entries holds (read only)


def by_identity(recorded: Mapping[str, Entry]) -> dict[Identity, Recorded]:
    """The member's recorded grants and take-backs, by identity."""
    out: dict[Identity, Recorded] = {}
    for e in recorded.values():
        if e.order_id is None or e.rule is None:
            continue
        if e.kind == EARN:
            out.setdefault((e.order_id, e.rule), Recorded()).grants.append(e)
        elif e.kind == REVERSE:
            rec = out.setdefault((e.order_id, e.rule), Recorded())
            rec.taken -= e.amount
            rec.take_backs += 1
    return out


def _void(o: OrderFact) -> bool:
    return voided_at(o) is not None


def _status_time(o: OrderFact) -> datetime:
    return o.status_changed_at or o.updated_at


def nth_holders(sequence: Sequence[OrderFact], n: int, period: timedelta) -> set[str]:
    """Order ids at positions n, 2n, … of each period of `sequence` (sorted by creation) (§5)."""
    holders: set[str] = set()
    start: datetime | None = None
    position = 0
    for o in sequence:
        if start is None or o.created_at >= start + period:
            start, position = o.created_at, 0
        position += 1
        if position % n == 0:
            holders.add(o.order_id)
    return holders


def _segment_at(earlier: Iterable[OrderFact], t: datetime, settings: LoyaltySettings) -> Segment:
    """The member's segment at `t` from the orders created before `t`, each with its status then (§4)."""
    prior = []
    for e in earlier:
        if e.created_at >= t:
            continue
        cancelled = e.status == CANCELLED and _status_time(e) <= t
        prior.append((e.created_at, kept_at(e, t), CANCELLED if cancelled else "delivered"))
    if not any(status != CANCELLED for _, _, status in prior):
        return "new"
    return segment(prior, t, settings.segments)


@dataclass(slots=True)
class _Want:
    """What the buyer should hold of one identity now: `keep(A)` of the lot's amount `A`."""

    order: OrderFact
    rule: str
    amount: Decimal  # A: the recorded first grant, or what a new grant would be (before budgets)
    share: Decimal  # the buyer keeps floor(A x share): 1 all, 0 nothing, kept/total after a partial return
    taken_at: datetime  # when the keep fell below the amount (used only if it did)
    fixed: Decimal | None = None  # keep exactly this (a lot no rule names any more keeps what it holds)

    def keep(self, amount: Decimal) -> Decimal:
        if self.fixed is not None:
            return self.fixed
        return (amount * self.share).quantize(_WHOLE, rounding=ROUND_DOWN)


class _Planner:
    """The per-member computation; one instance per `member_entries` call."""

    def __init__(self, orders: Iterable[OrderFact], settings: LoyaltySettings, recorded: Mapping[str, Entry],
                 now: datetime, settle_delay: timedelta):
        self.settings, self.now = settings, now
        self.every_order = sorted(orders, key=lambda o: (o.created_at, o.order_id))
        # An order void before it settled never counts (docs §2); one void later earns, then gives back.
        self.orders = [o for o in self.every_order if counts(o, settle_delay)]
        self.settled = [o for o in self.orders if is_settled(o, now, settle_delay)]
        self.counted = [o for o in self.settled if not _void(o)]
        self.recorded = by_identity(recorded)
        self.offers = sorted(settings.offers, key=lambda f: f.name)
        self._sequences: list[list[OrderFact]] | None = None
        self._times: list[datetime] | None = None

    def _record(self, order: OrderFact, rule: str) -> Recorded:
        return self.recorded.get((order.order_id, rule), _NOTHING)

    # -- what each identity should hold --------------------------------------------------------

    def wants(self) -> list[_Want]:
        walk = HeldTiers(self.orders, self.settings)
        welcome, nth = self._welcome(), self._every_nth()
        out: list[_Want] = []
        for i, o in enumerate(self.settled):
            rank = walk.at(o.created_at)
            applying = self._applying_offers(o, i) if self.offers else []
            out.extend(self._rate_and_bonuses(o, walk.rate(rank, o.marketplace), applying))
            if (want := welcome.get(o.order_id)) is not None:
                out.append(want)
            if (want := nth.get(o.order_id)) is not None:
                out.append(want)
        return out + self._leftovers({(w.order.order_id, w.rule) for w in out})

    def _leftovers(self, planned: set[Identity]) -> list[_Want]:
        """Recorded lots no rule names any more (an offer or reward changed in the config, or an
        order that no longer counts): kept as they are while their order counts, taken back when it
        is void."""
        by_id = {o.order_id: o for o in self.every_order}
        out = []
        for (oid, rule), rec in sorted(self.recorded.items()):
            o = by_id.get(oid)
            if (oid, rule) in planned or o is None or not rec.grants:
                continue
            if _void(o):
                out.append(_Want(o, rule, rec.first_amount or _ZERO, _ZERO, voided_at(o) or self.now))
            else:
                out.append(_Want(o, rule, rec.first_amount or _ZERO, _ONE, self.now, fixed=rec.holds))
        return out

    def _applying_offers(self, o: OrderFact, i: int) -> list:
        """The offers that apply to `o`, the `i`-th settled order (its segment from those before it)."""
        segmented = any(f.segments for f in self.offers)
        seg = _segment_at(self.settled[:i], o.created_at, self.settings) if segmented else None
        return [f for f in self.offers if offer_applies(f, o, seg)]

    def _rate_and_bonuses(self, o: OrderFact, rate: Decimal, applying: list) -> list[_Want]:
        """The rate lot and offer bonuses of a settled order; a void one is granted and given back
        at its void (docs §4), so a rebuild holds what live runs held meanwhile."""
        out = []
        for f in applying:
            rate *= f.multiplier
        void = _void(o)
        rec = self._record(o, RULE_RATE)
        amount = rec.first_amount if rec.grants else points(o.total, rate)
        if amount > 0:
            if void:
                share = _ZERO
            elif o.status == PARTIALLY_RETURNED and o.returned_total > 0 and o.total > 0:
                share = o.kept_total / o.total  # keep what the kept goods earned, rounded down (§4)
            else:
                share = _ONE
            out.append(_Want(o, RULE_RATE, amount, share, _status_time(o)))
        for f in applying:
            if f.bonus_points <= 0:
                continue
            rule = offer_rule(f)
            rec = self._record(o, rule)
            amount = rec.first_amount if rec.grants else f.bonus_points
            out.append(_Want(o, rule, amount, _ZERO if void else _ONE, _status_time(o)))
        # Bonus lots of offers that no longer apply (a rules change) stay as they are (`_leftovers`).
        return out

    def _welcome(self) -> dict[str, _Want]:
        """The welcome: held by the first counted order; a void holder's is given back (§5)."""
        out: dict[str, _Want] = {}
        reward = self.settings.welcome
        by_id = {o.order_id: o for o in self.settled}
        kept_by_live_order = False
        for (oid, rule), rec in self.recorded.items():
            o = by_id.get(oid)
            if rule != RULE_WELCOME or not rec.grants or o is None:
                continue
            amount = rec.first_amount or _ZERO
            if _void(o):
                out[oid] = _Want(o, RULE_WELCOME, amount, _ZERO, voided_at(o) or self.now)
            else:
                # Kept, even if the rules would now name another holder: rules change what is granted
                # after them, never what was granted (docs §5).
                out[oid] = _Want(o, RULE_WELCOME, amount, _ONE, self.now)
                kept_by_live_order = True
        if reward is None:
            return out
        # The first order before any void and after each void held the welcome until its own void:
        # granted and given back (what live runs wrote, whenever they ran; §5).
        for sequence in (self.settled, *self._between_voids()):
            first = sequence[0] if sequence else None
            if first is not None and _void(first) and first.order_id not in out:
                out[first.order_id] = _Want(first, RULE_WELCOME, reward.points, _ZERO,
                                            voided_at(first) or self.now)
        if self.counted and not kept_by_live_order:
            holder = self.counted[0]
            rec = self._record(holder, RULE_WELCOME)
            out[holder.order_id] = _Want(holder, RULE_WELCOME, rec.first_amount if rec.grants else reward.points,
                                         _ONE, self.now)
        return out

    def _every_nth(self) -> dict[str, _Want]:
        """Every-Nth rewards: held by positions n, 2n, … of each period; moved only by voids (§5)."""
        out: dict[str, _Want] = {}
        reward = self.settings.every_nth
        granted = {oid: rec for (oid, rule), rec in self.recorded.items() if rule == RULE_NTH and rec.grants}
        if reward is None and not granted:
            return out
        holders = nth_holders(self.counted, reward.n, reward.period) if reward is not None else set()
        # Who held a reward before the voids moved it: with every void order counted again, and after
        # each void in time order (one void gave it the reward, a later one moved it on).
        held: list[set[str]] = []  # holders before any void, then after each void; the last is `holders`
        if reward is not None:
            held = [nth_holders(sequence, reward.n, reward.period)
                    for sequence in (self.settled, *self._between_voids())] + [holders]
        moved: set[str] = set().union(*held) if held else set()
        for o in self.settled:
            rec = granted.get(o.order_id)
            amount = rec.first_amount if rec is not None else (reward.points if reward is not None else _ZERO)
            if o.order_id in holders:
                out[o.order_id] = _Want(o, RULE_NTH, amount, _ONE, self.now)
            elif o.order_id in moved:
                # It held the reward until a void moved it (its own or an earlier order's).
                out[o.order_id] = _Want(o, RULE_NTH, amount, _ZERO, self._lost_at(o.order_id, held))
            elif rec is not None:
                if _void(o):
                    out[o.order_id] = _Want(o, RULE_NTH, amount, _ZERO, voided_at(o) or self.now)
                else:  # a rules change: granted rewards stay
                    out[o.order_id] = _Want(o, RULE_NTH, amount, _ONE, self.now, fixed=rec.holds)
        return out

    def _void_times(self) -> list[datetime]:
        if self._times is None:
            self._times = sorted({t for t in map(voided_at, self.settled) if t is not None})
        return self._times

    def _between_voids(self) -> list[list[OrderFact]]:
        """The settled sequence just after each void but the last, in time order (after the last it
        is `counted`): where a reward may have stopped between two voids."""
        if self._sequences is None:
            pairs = [(o, voided_at(o)) for o in self.settled]
            self._sequences = [[o for o, v in pairs if v is None or v > t] for t in self._void_times()[:-1]]
        return self._sequences

    def _lost_at(self, order_id: str, held: list[set[str]]) -> datetime:
        """When a void moved the reward away for the last time (docs §7): the void after which the
        order stopped holding it and never held it again. Not the latest earlier void: an order that
        lost its reward to one void keeps not holding it through a later one, and live runs took it
        back at the first (`member_entries` dates it no earlier than the order's creation)."""
        times = self._void_times()  # held[i + 1] is the state just after times[i]
        for i in range(len(times) - 1, -1, -1):
            if order_id in held[i] and order_id not in held[i + 1]:
                return times[i]
        return self.now  # unreachable: an order in `moved` but not a holder lost it at some void


def _entry(kind: str, amount: Decimal, key: str, want: _Want, at: datetime, avail: datetime | None = None,
           expiry: datetime | None = None) -> Entry:
    o = want.order
    return Entry(kind, amount, key, o.order_id, want.rule, at, avail, expiry, o.marketplace, o.account, o.buyer_key)


def _grant_key(want: _Want, generation: int) -> str:
    o = want.order
    base = f"earn:{o.marketplace}:{o.account}:{o.order_id}:{want.rule}"
    return base if generation == 1 else f"{base}#{generation}"


def _take_back_key(want: _Want, n: int) -> str:
    o = want.order
    return f"reverse:{o.marketplace}:{o.account}:{o.order_id}:{want.rule}#{n}"


def member_entries(orders: Iterable[OrderFact], settings: LoyaltySettings, recorded: Mapping[str, Entry],
                   now: datetime, *, settle_delay: timedelta = SETTLE_DELAY,
                   cutoff: BudgetCutoff | None = None) -> list[Entry]:
    """The member's lots (recorded ones with their current availability, and new grants) and new
    take-backs at `now`, given the member's `recorded` entries by key. Lots come per order in
    budget order (rate, welcome, every-Nth, offer bonuses), each order's take-backs after them.
    """
    planner = _Planner(orders, settings, recorded, now, settle_delay)
    cap = settings.budget.per_member_points
    granted_so_far = _ZERO
    out: list[Entry] = []
    takes: list[Entry] = []
    dates: dict[str, tuple[datetime | None, datetime | None]] = {}  # per order: its lots' (available, expires)
    for want in sorted(planner.wants(), key=_lot_rank):
        rec = planner.recorded.get((want.order.order_id, want.rule), _NOTHING)
        when = dates.get(want.order.order_id)
        if when is None:
            avail = available_from(settings, want.order)
            when = dates[want.order.order_id] = (avail, expires_at(settings, avail))
        avail, expiry = when
        for g in rec.grants:
            # A status that names no delivery time (returned, cancelled) leaves the lot's dates as they were.
            if avail is None or (g.available_from == avail and g.expires_at == expiry):
                out.append(g)
            else:
                out.append(replace(g, available_from=avail, expires_at=expiry))
        granted_so_far += rec.granted
        holds = rec.holds
        lot_amount = rec.first_amount  # A: what the first grant gave, budgets applied
        keep = want.keep(lot_amount) if lot_amount is not None else None
        if lot_amount is None or keep > holds:
            grant = want.amount if lot_amount is None else keep - holds
            probe = _entry(EARN, grant, _grant_key(want, len(rec.grants) + 1), want, want.order.created_at,
                           avail, expiry)
            fits = grant
            if cap is not None:
                fits = min(fits, cap - granted_so_far)
            if cutoff is not None:
                fits = min(fits, cutoff.grant(probe, settings))
            if fits > 0:
                out.append(probe if fits == grant else replace(probe, amount=fits))
                granted_so_far += fits
                holds += fits
                if lot_amount is None:
                    lot_amount, keep = fits, want.keep(fits)
        if keep is not None and keep < holds:
            n = rec.take_backs + 1
            takes.append(_entry(REVERSE, keep - holds, _take_back_key(want, n), want,
                                max(want.taken_at, want.order.created_at)))
    return out + takes


_RULE_RANK = {RULE_RATE: 0, RULE_WELCOME: 1, RULE_NTH: 2}


def _lot_rank(want: _Want) -> tuple:
    """Budget order: by order (created_at, order_id), then rate, welcome, every-Nth, offer bonuses by name."""
    return (want.order.created_at, want.order.order_id, _RULE_RANK.get(want.rule, 3), want.rule)
