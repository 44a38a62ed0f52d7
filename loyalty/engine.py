"""Pure ledger rules: the entries a member's orders imply. No I/O, no clock (`now` is an argument).

See docs/loyalty-engine.md. Decisions this module makes (and the spec leaves open):

- Points are `total x rate` rounded DOWN to whole points; an order worth 0 points makes no lot.
- Rate: the tier's `earn_rate` when tiers are configured and one is reached; otherwise the
  marketplace's `earn_rate` override, else the program's. Tiers are recomputed on a rolling
  `tier_policy.window` of settled orders created before this one (neither cancelled nor returned).
- An order first seen cancelled earns nothing. A returned order earns and is reversed (its real
  history: delivered, then returned). Welcome and every-Nth lots belong to the order that earned
  them and are reversed with it.
- Partial return (`returned_total > 0` on an order that is not cancelled or returned): only the
  rate lot shrinks, to the points the kept goods would have earned at the recorded rate:
  `floor(lot x kept / total)`; the reversal takes the rest (never keep a fraction for returned
  goods). Welcome, every-Nth and offer bonus lots stay: the order still counts. Returns only grow,
  so each larger `returned_total` writes one more reversal of the difference, keyed by that
  total; a later full return reverses what is left. The tier window counts the kept spend.
- `available_from = updated_at + return_window_for(mp)` when delivered (or partially returned,
  which happens only after delivery); expiry from that:
  `after_days` → available_from + days; `end_of_month` → the first instant (UTC) of the month after
  available_from + days; `never` → None.
- Every-Nth periods start at the member's first counted order and run `period` long; the next
  period starts at the first order after it. Counted: settled orders not cancelled.
- Amounts already recorded win: the ledger never recomputes them (reversals use the recorded lot).
- Expiry and reversal: points that expired are gone, not owed. A reversal reverses the lot's
  recorded amount minus what the expire job already took from that lot (the recorded `expire`
  entry carries the lot's `order_id` and `rule`); what is left was spent or is still in the lot,
  so the ledger takes it from the lot, then other lots, then keeps it as debt. A lot that expired
  whole is not reversed at all. The jobs run earn (with reversals) before expire, so a reversal
  and an expiry falling due in the same run: the reversal takes the lot first.
- Offers (`settings.offers`): an offer applies to an order that is not cancelled, was created in
  `[starts, ends)` and matches every condition. Conditions read the order's facts: marketplace,
  account, fulfilment, total, currency; `sku`/`offer_id` match when ANY line matches (`ne`: no line
  equals). An order whose lines are not known (`skus is None`) never matches an offer with a
  sku/offer_id condition (points are never given on a guess). Multipliers of all applying offers
  multiply the rate lot's rate; `bonus_points` is a lot of its own, key
  `earn:{mp}:{acct}:{order_id}:offer:{name}`, rule `offer:{name}` (a name too long for the 64-char
  rule column uses `offer:` + a hash of it), reversed with its order like welcome and every-Nth.
  A segment-only offer applies when the member was in one of its segments just before the order:
  `loyalty.segments.segment()` over the member's orders created strictly before this one, at the
  order's `created_at` (a member's first order is `new`). The stored segment
  (`loyalty_members`, refreshed daily) is for lists and display; the engine recomputes it at the
  order's time so the ledger stays a function of the order set, whenever the refresh ran.
- Budget: `per_member_points` caps the sum of a member's earn lots (lifetime, reversals do not
  give budget back). Lots are taken in order: per order by `(created_at, order_id)`, within an order
  rate, welcome, every-Nth, then offer bonuses by name; recorded lots count with their recorded
  amounts, a new lot is cut to what fits (0: no lot). `total_points` (a program-wide cap) is
  applied through `cutoff`: the ledger finds, over every member's new lots in the global order
  `lot_position` (created_at, marketplace, account, order_id, rank of the rule), the lot where the
  budget runs out (`BudgetCutoff`); lots before it are granted, that lot gets what is left, lots
  after it get nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from loyalty.rules import Condition, LoyaltySettings, Offer, Segment

__all__ = [
    "EARN",
    "EXPIRE",
    "PARTIALLY_RETURNED",
    "REVERSE",
    "RULE_NTH",
    "RULE_RATE",
    "RULE_WELCOME",
    "SETTLE_DELAY",
    "BudgetCutoff",
    "Entry",
    "Member",
    "OrderFact",
    "available_from",
    "earn_rate",
    "expires_at",
    "is_settled",
    "lot_position",
    "matches",
    "offer_applies",
    "offer_rule",
    "points",
]

# Longer than any platform's late-delivery lookback: by then every earlier order is in the store.
SETTLE_DELAY = timedelta(days=2)
EARN, REVERSE, EXPIRE = "earn", "reverse", "expire"
RULE_RATE, RULE_WELCOME, RULE_NTH = "rate", "welcome", "every_nth"
CANCELLED, RETURNED, DELIVERED = "cancelled", "returned", "delivered"
PARTIALLY_RETURNED = "partially_returned"
_VOID = (CANCELLED, RETURNED)
_WHOLE = Decimal(1)

Member = tuple[str, str, str]  # (marketplace, account, buyer_key)

# OrderFact and Entry are values: never changed after they are made (`dataclasses.replace` makes a
# changed copy). Not `frozen=True`: a frozen slotted dataclass takes ~8x longer to construct
# (every field through object.__setattr__), and a rebuild makes a million of each. `unsafe_hash`
# keeps them usable as dict keys and set members, as frozen ones were.
@dataclass(slots=True, unsafe_hash=True)
class OrderFact:
    """The facts of one order the engine may look at (never a review)."""

    marketplace: str
    account: str
    order_id: str
    buyer_key: str
    created_at: datetime
    updated_at: datetime
    status: str
    total: Decimal
    fulfilment: str | None = None
    currency: str | None = None
    skus: tuple[str, ...] | None = None  # None: the order's lines are not known
    offer_ids: tuple[str, ...] | None = None
    returned_total: Decimal = Decimal(0)  # value of the goods returned so far (partial returns)
    # When the order reached its current status: the platform's time, else when a sync first saw it
    # (`OrderRow.status_changed_at`); None where the source has no such column.
    status_changed_at: datetime | None = None
    # When it first reached delivered (or partially returned), kept after a return (`OrderRow.delivered_at`).
    delivered_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OrderFact:
        """From a `Store.iter_orders()` row (or any mapping with the same keys; lines optional)."""
        lines = row.get("lines")
        skus = offer_ids = None
        if lines is not None:
            skus = tuple(str(_get(ln, "sku")) for ln in lines)
            offer_ids = tuple(str(v) for v in (_get(ln, "offer_id") for ln in lines) if v is not None)
        return cls(row["marketplace"], row["account"], row["order_id"], row["buyer_key"],
                   row["created_at"], row["updated_at"], str(row["status"]), Decimal(row["total"]),
                   row.get("fulfilment"), row.get("currency"), skus, offer_ids,
                   Decimal(row.get("returned_total") or 0), row.get("status_changed_at"), row.get("delivered_at"))

    @property
    def kept_total(self) -> Decimal:
        """What the buyer kept: the total less returned goods (never below 0)."""
        if not self.returned_total:
            return self.total
        return max(self.total - self.returned_total, Decimal(0))


def _get(line: Any, name: str) -> Any:
    return line.get(name) if isinstance(line, Mapping) else getattr(line, name, None)


@dataclass(slots=True, unsafe_hash=True)
class Entry:
    """One ledger entry as the engine wants it to exist (member fields for the ledger's row)."""

    kind: str
    amount: Decimal
    idempotency_key: str
    order_id: str | None
    rule: str | None
    effective_at: datetime
    available_from: datetime | None = None
    expires_at: datetime | None = None
    marketplace: str = ""
    account: str = ""
    buyer_key: str = ""


def is_settled(order: OrderFact, now: datetime, settle_delay: timedelta = SETTLE_DELAY) -> bool:
    """Created more than `settle_delay` before `now`."""
    return order.created_at < now - settle_delay


def points(total: Decimal, rate: Decimal) -> Decimal:
    """Whole points for `total` at `rate`, rounded down (never give away a fraction)."""
    return (total * rate).quantize(_WHOLE, rounding=ROUND_DOWN)


def earn_rate(settings: LoyaltySettings, marketplace: str, basis: Decimal) -> Decimal:
    """The rate for an order whose member has `basis` (spend or order count) in the tier window."""
    rate = settings.earn_rate
    over = settings.marketplaces.get(marketplace)
    if over is not None and over.earn_rate is not None:
        rate = over.earn_rate
    for tier in settings.tiers:  # ascending thresholds: the last one reached wins
        threshold = tier.min_spend if tier.min_spend is not None else Decimal(tier.min_orders or 0)
        if basis >= threshold:
            rate = tier.earn_rate
    return rate


def available_from(settings: LoyaltySettings, order: OrderFact) -> datetime | None:
    """When the order's points stop being pending: the return window after it was first delivered
    (docs/loyalty-rules.md §6), also once it went back; None while it was never delivered."""
    delivered = order.delivered_at
    if delivered is None and order.status in (DELIVERED, PARTIALLY_RETURNED):
        delivered = order.status_changed_at or order.updated_at
    if delivered is None:
        return None
    return delivered + settings.return_window_for(order.marketplace)


def expires_at(settings: LoyaltySettings, available: datetime | None) -> datetime | None:
    """When a lot available from `available` expires (None: never, or not known yet)."""
    policy = settings.expiry
    if available is None or policy.policy == "never":
        return None
    end = available + timedelta(days=policy.days)
    if policy.policy == "after_days":
        return end
    end = end.astimezone(UTC)
    year, month = (end.year + 1, 1) if end.month == 12 else (end.year, end.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def offer_rule(offer: Offer) -> str:
    """The rule name of an offer's bonus lot (fits the ledger's 64-character rule column)."""
    rule = f"offer:{offer.name}"
    if len(rule) <= 64:
        return rule
    return "offer:" + hashlib.sha256(offer.name.encode()).hexdigest()[:32]


def _compare(op: str, have: Any, want: Any) -> bool:
    if op == "in":
        return have in want
    if op == "eq":
        return have == want
    if op == "ne":
        return have != want
    try:
        if op == "gt":
            return have > want
        if op == "ge":
            return have >= want
        if op == "lt":
            return have < want
        return have <= want  # "le"
    except TypeError:
        return False


def _norm(value: Any, numeric: bool) -> Any:
    if isinstance(value, list):
        return [_norm(v, numeric) for v in value]
    if numeric:
        try:
            return Decimal(str(value))
        except ArithmeticError:
            return None
    return str(value)


def matches(cond: Condition, order: OrderFact) -> bool | None:
    """Whether `order` meets `cond`; None when the order's lines are needed but not known."""
    numeric = cond.field == "total"
    want = _norm(cond.value, numeric)
    if cond.field in ("sku", "offer_id"):
        values = order.skus if cond.field == "sku" else order.offer_ids
        if order.skus is None or values is None:
            return None
        if cond.op == "ne":
            return all(_compare("ne", v, want) for v in values)
        return any(_compare(cond.op, v, want) for v in values)
    have = order.total if numeric else getattr(order, cond.field)
    if have is None:
        return False
    return _compare(cond.op, have if numeric else str(have), want)


def offer_applies(offer: Offer, order: OrderFact, segment_now: Segment | None = None) -> bool:
    """An offer active when the order was created, whose conditions all hold and, when the offer is
    segment-only, whose segments include `segment_now` (the member's segment just before the order)."""
    if not offer.starts <= order.created_at < offer.ends:
        return False
    if not all(matches(c, order) is True for c in offer.conditions):
        return False
    return not offer.segments or segment_now in offer.segments


_RULE_RANK = {RULE_RATE: 0, RULE_WELCOME: 1, RULE_NTH: 2}


def lot_position(lot: Entry, settings: LoyaltySettings) -> tuple:
    """Where a lot stands in the program-wide budget's order: its order's (created_at, marketplace,
    account, order_id), then rate, welcome, every-Nth, offer bonuses by offer name."""
    rank = _RULE_RANK.get(lot.rule or "")
    if rank is None:
        names = sorted(offer_rule(f) for f in settings.offers)
        rank = len(_RULE_RANK) + (names.index(lot.rule) if lot.rule in names else len(names))
    return (lot.effective_at, lot.marketplace, lot.account, lot.order_id or "", rank)


@dataclass(frozen=True, slots=True)
class BudgetCutoff:
    """Where `budget.total_points` runs out: the lot at `position` gets `amount`, later lots nothing.
    `position=None`: the budget is already spent, no new lot is granted."""

    position: tuple | None
    amount: Decimal = Decimal(0)

    def grant(self, lot: Entry, settings: LoyaltySettings) -> Decimal:
        """What of `lot` the program budget allows."""
        if self.position is None:
            return Decimal(0)
        at = lot_position(lot, settings)
        if at < self.position:
            return lot.amount
        return min(lot.amount, self.amount) if at == self.position else Decimal(0)
