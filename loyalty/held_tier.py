"""The tier a member holds at any moment, as a function of their orders (docs/loyalty-rules.md §3).

Pure: no I/O, no clock. The tier basis at `t` counts the orders live at `t` (created before it and
not void yet) created within `tier_policy.window` before `t`, at what the buyer kept of them at
`t`. The held tier moves up at once when an order is created and the basis reaches a higher tier,
and follows the downgrade policy once at every midnight UTC. So it is the same whenever a job
runs: daily runs, frequent runs and a rebuild all read the same timeline.

Between two moments where the basis can change (an order created, leaving the window, becoming
void, partly returned), the qualifying tier is constant, so at most one midnight per tier step
can change the held tier; the walk jumps over the others (`HeldTiers` is fast on years of history).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from loyalty.engine import CANCELLED, PARTIALLY_RETURNED, RETURNED, SETTLE_DELAY, OrderFact
from loyalty.rules import LoyaltySettings

__all__ = ["HeldTiers", "counts", "kept_at", "voided_at"]

_NONE = -1  # the rank of "no tier"
_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)
_ZERO = Decimal(0)


def voided_at(order: OrderFact) -> datetime | None:
    """When the order became void (cancelled or returned), or None."""
    if order.status not in (CANCELLED, RETURNED):
        return None
    return order.status_changed_at or order.updated_at


def counts(order: OrderFact, settle_delay: timedelta = SETTLE_DELAY) -> bool:
    """Whether the order counts for the program at all: an order that became void before it settled
    (a cancellation within the settle delay) never earns, holds no reward, takes no position and is
    in no tier basis (docs/loyalty-rules.md §2)."""
    void = voided_at(order)
    return void is None or void >= order.created_at + settle_delay


def kept_at(order: OrderFact, t: datetime) -> Decimal:
    """What the buyer kept of the order at `t`: the total, less returned goods once partly returned."""
    if order.status == PARTIALLY_RETURNED and (order.status_changed_at or order.updated_at) <= t:
        return order.kept_total
    return order.total


# The walk runs on integer microseconds since the epoch: comparing, bisecting and finding the
# next midnight of ints cost a fraction of the same on aware datetimes, and a rebuild walks every
# order of every member (bench/loyalty.py: 7.8 s of a million-order rebuild's planning on datetimes).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400_000_000


def _us(t: datetime) -> int:
    """`t` (aware) as microseconds since the epoch, exactly."""
    return (t - _EPOCH) // _TICK


def _datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class HeldTiers:
    """One member's tier timeline under `settings`; ask `at(t)` for times in increasing order.

    Ranks: -1 is no tier, `i` is `settings.tiers[i]`.
    """

    def __init__(self, orders: Iterable[OrderFact], settings: LoyaltySettings):
        self.settings = settings
        self.orders = sorted((o for o in orders if counts(o)), key=lambda o: (o.created_at, o.order_id))
        self.created = [_us(o.created_at) for o in self.orders]
        policy = settings.tier_policy
        self.window = policy.window // _TICK
        self.by_orders, self.downgrade = policy.basis == "orders", policy.downgrade
        self.thresholds = [t.min_spend if t.min_spend is not None else Decimal(t.min_orders or 0)
                           for t in settings.tiers]
        # The basis as prefix sums over creation order, less the few orders a void or a partial
        # return changes (`qualifying` visits only those): linear per member, not quadratic.
        self.prefix = [_ZERO]
        for o in self.orders:
            self.prefix.append(self.prefix[-1] + o.total)
        # Per altered order (by index): when it became void, when it was partly returned (or None).
        self.altered: list[int] = []
        self.voids: dict[int, int | None] = {}
        self.partial: dict[int, int | None] = {}
        for i, o in enumerate(self.orders):
            void = voided_at(o)
            if void is not None or o.status == PARTIALLY_RETURNED:
                self.altered.append(i)
                self.voids[i] = None if void is None else _us(void)
                self.partial[i] = (_us(o.status_changed_at or o.updated_at) if o.status == PARTIALLY_RETURNED
                                   else None)
        self.changes = self._change_points()
        self.held = _NONE
        self.clock: int | None = None  # the moment `held` describes
        self.next_creation = 0  # index of the first order whose creation is not applied yet
        self._since: int | None = None  # when `held` last changed
        self.previous = _NONE  # what was held before that

    @property
    def since(self) -> datetime | None:
        """When the held tier last changed (None: never held one)."""
        return None if self._since is None else _datetime(self._since)

    def _change_points(self) -> list[int]:
        """Moments after which the basis may differ: creations, window exits, voids, partial returns."""
        window = self.window
        points = set(self.created)
        points.update(c + window for c in self.created)
        for i in self.altered:
            for t in (self.voids[i], self.partial[i]):
                if t is not None:
                    points.add(t)
        return sorted(points)

    def qualifying(self, t: int) -> int:
        """The rank of the highest tier the basis at `t` reaches (-1: none)."""
        if not self.thresholds:
            return _NONE
        lo, hi = bisect_left(self.created, t - self.window), bisect_left(self.created, t)
        count, spend = hi - lo, self.prefix[hi] - self.prefix[lo]
        altered = self.altered
        if altered and altered[-1] >= lo:
            for i in altered[bisect_left(altered, lo):bisect_left(altered, hi)]:
                o = self.orders[i]
                void = self.voids[i]
                if void is not None and void <= t:
                    count -= 1
                    spend -= o.total
                else:
                    partial = self.partial[i]
                    if partial is not None and partial <= t:
                        spend -= o.total - o.kept_total
        basis = Decimal(count) if self.by_orders else spend
        rank = _NONE
        for i, threshold in enumerate(self.thresholds):
            if basis >= threshold:
                rank = i
        return rank

    def _midnight(self, held: int, qualifying: int) -> int:
        if qualifying >= held or self.downgrade == "recompute":
            return qualifying
        if self.downgrade == "never":
            return held
        return held - 1  # one_down: one step toward the qualifying tier

    def _steady(self, held: int, qualifying: int) -> bool:
        """Whether later midnights change nothing while the qualifying tier stays `qualifying`."""
        return held == qualifying or (self.downgrade == "never" and held > qualifying)

    def _advance(self, until: int) -> None:
        """Apply every midnight and order creation up to and including `until`.

        (State in locals, written back at the end: this loop runs for every order of a rebuild.)"""
        created, last, qualifying = self.created, len(self.created), self.qualifying
        clock, held, nxt = self.clock, self.held, self.next_creation
        while True:
            creation = created[nxt] if nxt < last else None
            if clock is not None:
                midnight = (clock // _DAY_US + 1) * _DAY_US
                # A midnight at an order's own instant is evaluated first (docs/loyalty-rules.md §3).
                if midnight <= until and (creation is None or midnight <= creation):
                    q = qualifying(midnight)
                    rank = self._midnight(held, q)
                    if rank != held:
                        self.previous, self._since, held = held, midnight, rank
                    clock = midnight
                    if self._steady(held, q):
                        clock = self._skip_steady_midnights(midnight, until)
                    continue
            if creation is not None and creation <= until:
                rank = qualifying(creation)
                if rank > held:
                    self.previous, self._since, held = held, creation, rank
                clock = creation
                nxt += 1
                continue
            if clock is not None and until > clock:
                clock = until
            self.clock, self.held, self.next_creation = clock, held, nxt
            return

    def _skip_steady_midnights(self, midnight: int, until: int) -> int:
        """Where the clock goes after a steady `midnight`: just before the next change point (or to
        `until`), as the midnights in between change nothing.

        The basis is constant strictly between two change points; at a change point itself it may
        still be the old one (an order leaves the window just after `created + window`), so a
        midnight that falls on one is never skipped past.
        """
        k = bisect_left(self.changes, midnight)
        nxt = self.changes[k] if k < len(self.changes) else None
        if nxt == midnight:
            return midnight
        target = until if nxt is None else min(until, nxt - 1)
        return max(target, midnight)

    def at(self, t: datetime) -> int:
        """The rank held at `t` (after the midnight and the creations at `t` itself)."""
        us = _us(t)
        if self.clock is not None and us < self.clock:
            raise ValueError("HeldTiers.at() needs increasing times")
        if not self.thresholds:  # no tiers configured: nothing to walk
            self.clock = us
            return _NONE
        self._advance(us)
        return self.held

    def name(self, rank: int) -> str | None:
        return None if rank == _NONE else self.settings.tiers[rank].name

    def rate(self, rank: int, marketplace: str) -> Decimal:
        """The earn rate at `rank` on `marketplace` (docs §4)."""
        if rank != _NONE:
            return self.settings.tiers[rank].earn_rate
        over = self.settings.marketplaces.get(marketplace)
        if over is not None and over.earn_rate is not None:
            return over.earn_rate
        return self.settings.earn_rate


def held_ranks(orders: Sequence[OrderFact], settings: LoyaltySettings, times: Iterable[datetime]) -> list[int]:
    """The held rank at each of `times` (any order)."""
    wanted = sorted(set(times))
    walk = HeldTiers(orders, settings)
    ranks = {t: walk.at(t) for t in wanted}
    return [ranks[t] for t in times]
