"""Hypothesis strategies: random member histories for the engine-vs-reference property tests.

A history is a few members on one or two marketplaces, ~200 days of orders, spends and one set of
valid rules (fixed: rule changes are a named exception, docs/loyalty-rules.md §9). Each order is
generated as a status TIMELINE (created → in_delivery → delivered → partially_returned → returned,
with times), so its state at any moment is known:

- `History.final_orders()` is the final order set (the timeline's end), what a rebuild reads;
- `History.arrivals()` is the chunked view: at each run time, the orders a sync would have stored
  by then, each in its state at that time. Run times are chosen so every creation and status change
  is seen less than a day after it happened, well inside the 2-day settle delay, which keeps the
  histories clear of §9's "status time more than the settle delay late".

Spends are promo codes for part of the points the reference model says were available when sent,
and now and then more than that (debt).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from hypothesis import strategies as st

from loyalty.rules import LoyaltySettings
from tests.loyalty.reference_adapter import rules_from_settings
from tests.loyalty.reference_model import compute
from tests.loyalty.reference_types import RefOrder, RefRules, RefSpend

__all__ = ["END", "FOCUSES", "T0", "History", "OrderTimeline", "Step", "fixed_history", "histories", "settings_dicts"]

T0 = datetime(2026, 1, 5, tzinfo=UTC)
SPAN_DAYS = 200
END = T0 + timedelta(days=SPAN_DAYS)
ACCOUNT = "main"
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
SEEN_WITHIN = DAY  # a sync sees every change within this long (< the 2-day settle delay)


@dataclass(frozen=True)
class Step:
    """The order reached `status` (or, for a growing partial return, `returned_total`) at `at`."""

    at: datetime
    status: str
    returned_total: Decimal = Decimal(0)


@dataclass(frozen=True)
class OrderTimeline:
    marketplace: str
    order_id: str
    buyer_key: str
    total: Decimal
    fulfilment: str
    skus: tuple[str, ...]
    steps: tuple[Step, ...]  # steps[0] is ("created", created_at); times ascend

    @property
    def created_at(self) -> datetime:
        return self.steps[0].at

    def state_at(self, r: datetime, *, know_delivery: bool = True) -> RefOrder | None:
        """The order as a sync at `r` would have stored it; None before it was created.

        `status_changed_at` is when the current status was first reached (a growing partial return
        keeps it). `delivered_at` (see reference_readings Q2) only with `know_delivery`.
        """
        seen = [s for s in self.steps if s.at <= r]
        if not seen:
            return None
        current = seen[-1]
        since = current.at
        for step in reversed(seen):
            if step.status != current.status:
                break
            since = step.at
        delivered = next((s.at for s in seen if s.status == "delivered"), None)
        return RefOrder(self.marketplace, ACCOUNT, self.order_id, self.buyer_key, self.created_at, current.status,
                        since, self.total, current.returned_total, self.fulfilment, "RUB", self.skus, (),
                        delivered if know_delivery else None)


@dataclass(frozen=True, repr=False)
class History:
    settings: LoyaltySettings
    rules: RefRules
    timelines: tuple[OrderTimeline, ...]
    spends: tuple[RefSpend, ...]
    run_times: tuple[datetime, ...]  # ascending, the last is END
    end: datetime = END

    def orders_at(self, r: datetime, *, know_delivery: bool = True) -> list[RefOrder]:
        states = (t.state_at(r, know_delivery=know_delivery) for t in self.timelines)
        return [s for s in states if s is not None]

    def final_orders(self, *, know_delivery: bool = True) -> list[RefOrder]:
        return self.orders_at(self.end, know_delivery=know_delivery)

    def describe(self) -> str:
        """The history in a few lines, for a failure message a person can replay on paper."""
        lines = ["rules: " + self.settings.model_dump_json(exclude_defaults=True)]
        for t in self.timelines:
            steps = ", ".join(f"{s.status}{'(' + str(s.returned_total) + ')' if s.returned_total else ''} "
                              f"{s.at:%m-%d %H:%M}" for s in t.steps)
            lines.append(f"{t.marketplace}/{t.buyer_key} {t.order_id} total {t.total} {t.fulfilment} {t.skus}: {steps}")
        lines += [f"spend {s.amount} by {'/'.join(s.member)} at {s.at:%m-%d %H:%M}" for s in self.spends]
        lines.append(f"runs {len(self.run_times)}, now {self.end:%m-%d %H:%M}")
        return "\n".join(lines)

    __repr__ = describe

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis prints examples with this
        printer.text("History(\n" + self.describe() + "\n)")

    def arrivals(self) -> list[tuple[datetime, list[RefOrder]]]:
        """(run time, the orders new or changed since the previous run, as they were at that time)."""
        out, before = [], {}
        for r in self.run_times:
            changed = []
            for order in self.orders_at(r):
                key = (order.marketplace, order.order_id)
                if before.get(key) != order:
                    changed.append(order)
                    before[key] = order
            out.append((r, changed))
        return out


# -- rules ------------------------------------------------------------------------------------------------

def _offer(draw, i: int) -> dict:
    start = T0 + timedelta(days=draw(st.integers(-20, SPAN_DAYS)))
    multiplier = draw(st.sampled_from(["1", "1.5", "2", "3"]))
    bonus = draw(st.sampled_from([0, 10, 25])) if multiplier != "1" else draw(st.sampled_from([10, 25]))
    conditions = draw(st.lists(st.sampled_from([
        {"field": "fulfilment", "op": "eq", "value": "fbs"},
        {"field": "fulfilment", "op": "ne", "value": "fbo"},
        {"field": "total", "op": "ge", "value": 1500},
        {"field": "sku", "op": "in", "value": ["S1"]},
        {"field": "marketplace", "op": "eq", "value": "ozon"},
    ]), max_size=2, unique_by=lambda c: (c["field"], c["op"])))
    segments = draw(st.sampled_from([[], [], ["new"], ["at_risk", "sleeping"], ["active"], ["lost", "sleeping"]]))
    return {"name": f"offer{i}", "starts": start, "ends": start + timedelta(days=draw(st.integers(5, 90))),
            "multiplier": multiplier, "bonus_points": bonus, "segments": segments, "conditions": conditions}


FOCUSES = ("all", "welcome", "every_nth", "tiers", "expiry")


def _focus(program: dict, focus: str) -> dict:
    """Keep one part of the program, so a failure points at one rule (the rest: plain rate, no expiry)."""
    if focus == "all":
        return program
    kept = {"enabled": True, "earn_rate": program["earn_rate"], "return_window": program["return_window"],
            "segments": program["segments"], "expiry": {"policy": "never"}}
    if focus == "welcome":
        kept["welcome"] = program.get("welcome") or {"points": 100}
    elif focus == "every_nth":
        kept["every_nth"] = program.get("every_nth") or {"n": 2, "points": 50, "period": timedelta(days=60)}
    elif focus == "tiers":
        kept["tiers"], kept["tier_policy"] = program["tiers"], program["tier_policy"]
        if not kept["tiers"]:
            kept["tiers"] = [{"name": "silver", "min_spend": 1000, "earn_rate": "0.1"}]
            kept["tier_policy"] = {**program["tier_policy"], "basis": "spend"}
    elif focus == "expiry":
        kept["expiry"] = program["expiry"] if program["expiry"]["policy"] != "never" else {"policy": "after_days",
                                                                                            "days": 10}
        kept["earn_rate"] = "0.05"
    return kept


@st.composite
def settings_dicts(draw, *, budgets: bool = True, focus: str = "all") -> dict:
    """A valid `[loyalty]` table: tiers under any downgrade policy, rewards, offers, expiry, budgets.

    `focus` (one of FOCUSES) keeps only one part of the program."""
    basis = draw(st.sampled_from(["spend", "orders"]))
    n_tiers = draw(st.integers(0, 3))
    thresholds = sorted(draw(st.lists(st.integers(0, 6) if basis == "orders" else st.integers(0, 8000),
                                      min_size=n_tiers, max_size=n_tiers, unique=True)))
    rates = sorted(draw(st.lists(st.sampled_from(["0.02", "0.04", "0.06", "0.08", "0.1"]), min_size=n_tiers,
                                 max_size=n_tiers)), key=Decimal)
    key = "min_orders" if basis == "orders" else "min_spend"
    program = {
        "enabled": True,
        "earn_rate": draw(st.sampled_from(["0", "0.01", "0.03", "0.05"])),
        "tiers": [{"name": f"tier{i}", key: th, "earn_rate": r} for i, (th, r) in enumerate(zip(thresholds, rates,
                                                                                                  strict=True))],
        "tier_policy": {"basis": basis, "window": timedelta(days=draw(st.integers(10, 90))),
                        "downgrade": draw(st.sampled_from(["never", "one_down", "recompute"]))},
        "return_window": timedelta(days=draw(st.integers(0, 20))),
        "expiry": draw(st.sampled_from([{"policy": "never"}, {"policy": "after_days", "days": 10},
                                        {"policy": "after_days", "days": 45}, {"policy": "end_of_month", "days": 20},
                                        {"policy": "end_of_month", "days": 60}])),
        "offers": [_offer(draw, i) for i in range(draw(st.integers(0, 3)))],
        "segments": {"new_within": timedelta(days=draw(st.integers(5, 30))),
                     "at_risk_gap_factor": draw(st.sampled_from([1.5, 2.0, 3.0])),
                     "sleeping_after": timedelta(days=draw(st.integers(20, 60))),
                     "lost_after": timedelta(days=draw(st.integers(61, 150)))},
    }
    if draw(st.booleans()):
        program["welcome"] = {"points": draw(st.sampled_from([50, 100, 200]))}
    if draw(st.booleans()):
        program["every_nth"] = {"n": draw(st.integers(2, 4)), "points": draw(st.sampled_from([20, 50, 80])),
                                "period": timedelta(days=draw(st.integers(15, 120)))}
    if draw(st.booleans()):
        program["marketplaces"] = {"ym": {"return_window": timedelta(days=draw(st.integers(0, 5))),
                                          "earn_rate": draw(st.sampled_from([None, "0.02", "0.07"]))}}
    if budgets and draw(st.integers(0, 3)) == 0:
        program["budget"] = {"total_points": draw(st.sampled_from([None, 300, 1500])),
                             "per_member_points": draw(st.sampled_from([None, 150, 600]))}
    return _focus(program, focus)


# -- orders -------------------------------------------------------------------------------------------------

KINDS = ("open", "delivered", "delivered", "delivered", "cancel_early", "cancel_late", "partial", "partial_growing",
         "returned", "partial_then_returned")


def _after(draw, at: datetime, low: timedelta, high: timedelta) -> datetime:
    return at + MINUTE * draw(st.integers(int(low / MINUTE), int(high / MINUTE)))


def _steps(draw, created: datetime, total: Decimal, kinds: tuple[str, ...] = KINDS) -> tuple[Step, ...]:
    kind = draw(st.sampled_from(kinds))
    steps = [Step(created, "created")]
    if kind == "cancel_early":  # before it settles
        steps.append(Step(_after(draw, created, 10 * MINUTE, 47 * HOUR), "cancelled"))
        return tuple(steps)
    shipped = _after(draw, created, HOUR, 2 * DAY)
    steps.append(Step(shipped, "in_delivery"))
    if kind == "open":
        return tuple(steps)
    if kind == "cancel_late":  # after it settled, before delivery
        steps.append(Step(_after(draw, created, 49 * HOUR, 10 * DAY), "cancelled"))
        return tuple(steps)
    delivered = _after(draw, shipped, DAY, 10 * DAY)
    steps.append(Step(delivered, "delivered"))
    last, returned = delivered, Decimal(0)
    if kind.startswith("partial"):
        returned = (total * draw(st.integers(1, 60)) / 100).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
        last = _after(draw, delivered, DAY, 30 * DAY)
        steps.append(Step(last, "partially_returned", returned))
        if kind == "partial_growing":
            returned = (returned + total * draw(st.integers(1, 30)) / 100).quantize(Decimal("0.01"), ROUND_FLOOR)
            steps.append(Step(_after(draw, last, DAY, 20 * DAY), "partially_returned", min(returned, total)))
    if kind.endswith("returned"):
        steps.append(Step(_after(draw, last, 5 * DAY, 120 * DAY), "returned", returned))
    return tuple(steps)


@st.composite
def _timelines(draw, kinds: tuple[str, ...] = KINDS) -> tuple[OrderTimeline, ...]:
    members = draw(st.lists(st.tuples(st.sampled_from(["ozon", "ym"]), st.sampled_from(["b1", "b2", "b3"])),
                            min_size=1, max_size=3, unique=True))
    timelines: list[OrderTimeline] = []
    for mp, buyer in members:
        created = None
        for _ in range(draw(st.integers(1, 9))):
            if created is not None and draw(st.integers(0, 6)) == 0:
                pass  # a split posting: same checkout, same instant
            else:
                created = T0 + MINUTE * draw(st.integers(0, SPAN_DAYS * 24 * 60 - 1))
            total = Decimal(draw(st.integers(10000, 500000))) / 100
            steps = _steps(draw, created, total, kinds)
            timelines.append(OrderTimeline(
                mp, f"O{len(timelines)}", buyer, total, draw(st.sampled_from(["fbs", "fbo", "rfbs"])),
                tuple(draw(st.lists(st.sampled_from(["S1", "S2", "S3"]), max_size=2, unique=True))),
                tuple(s for s in steps if s.at <= END)))
    return tuple(timelines)


def _run_times(delay, timelines, spends_at) -> tuple[datetime, ...]:
    """Runs that see every creation and status change less than SEEN_WITHIN after it, then END.

    `delay()` says how long after the first unseen change the next run comes."""
    events = sorted({s.at for t in timelines for s in t.steps} | set(spends_at))
    runs: list[datetime] = []
    for event in events:
        if runs and runs[-1] >= event:
            continue
        runs.append(min(END, event + delay()))
    if not runs or runs[-1] < END:
        runs.append(END)
    return tuple(runs)


def _spends(draw, timelines, rules: RefRules) -> tuple[RefSpend, ...]:
    """Promo codes: part of what the model says was available when sent, sometimes more (debt)."""
    members = sorted({(t.marketplace, ACCOUNT, t.buyer_key) for t in timelines})
    spends: list[RefSpend] = []
    wanted = draw(st.lists(st.tuples(st.sampled_from(members), st.integers(0, SPAN_DAYS * 24 * 60 - 1),
                                     st.sampled_from(["0.25", "0.5", "1", "over"])), max_size=4))
    for member, minute, share in sorted(wanted, key=lambda w: w[1]):
        at = T0 + MINUTE * minute
        orders = [o for o in (t.state_at(at) for t in timelines) if o is not None]
        available = compute(orders, spends, rules, at).members.get(member)
        have = available.balances.available if available else Decimal(0)
        amount = have + 50 if share == "over" else (have * Decimal(share)).to_integral_value(ROUND_FLOOR)
        if amount > 0:
            spends.append(RefSpend(member, amount, at, f"spend:{len(spends)}"))
    return tuple(spends)


@st.composite
def histories(draw, *, budgets: bool = True, spends: bool = True, focus: str = "all",
              two_step_returns: bool = True) -> History:
    """A random member history with fixed, valid rules (`focus`: see `settings_dicts`).

    `two_step_returns=False` leaves out orders returned in two steps (partly, then more or whole):
    the final order set keeps only the second step (docs/loyalty-rules.md §9)."""
    settings = LoyaltySettings.model_validate(draw(settings_dicts(budgets=budgets, focus=focus)))
    rules = rules_from_settings(settings)
    kinds = KINDS if two_step_returns else tuple(k for k in KINDS if k not in ("partial_then_returned",
                                                                                  "partial_growing"))
    timelines = draw(_timelines(kinds))
    sent = _spends(draw, timelines, rules) if spends else ()
    runs = _run_times(lambda: MINUTE * draw(st.integers(1, int(SEEN_WITHIN / MINUTE) - 1)), timelines,
                      [s.at for s in sent])
    return History(settings, rules, timelines, sent, runs)


def fixed_history(program: dict, timelines: list[OrderTimeline], spends: tuple[RefSpend, ...] = ()) -> History:
    """A hand-written history: runs one minute after each change (see `_run_times`), then at END."""
    settings = LoyaltySettings.model_validate({"enabled": True, **program})
    return History(settings, rules_from_settings(settings), tuple(timelines), tuple(spends),
                   _run_times(lambda: MINUTE, timelines, [s.at for s in spends]))
