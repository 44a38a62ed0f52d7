"""The held tier timeline (docs/loyalty-rules.md §3), worked on paper, against a day-by-day walk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.engine import OrderFact
from loyalty.held_tier import HeldTiers
from loyalty.rules import LoyaltySettings
from loyalty.tiers import evaluate_tier

DAY = timedelta(days=1)
T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a midnight


def program(downgrade: str = "one_down", window_days: int = 10) -> LoyaltySettings:
    return LoyaltySettings.model_validate({
        "enabled": True,
        "tiers": [{"name": "t0", "min_spend": 0, "earn_rate": "0.01"},
                  {"name": "t1", "min_spend": 1, "earn_rate": "0.02"},
                  {"name": "t2", "min_spend": 2, "earn_rate": "0.03"}],
        "tier_policy": {"window": timedelta(days=window_days), "downgrade": downgrade}})


def fact(oid: str, created: datetime, total: str = "100", status: str = "delivered",
         changed: datetime | None = None) -> OrderFact:
    return OrderFact("ozon", "main", oid, "b1", created, changed or created, status, Decimal(total),
                     status_changed_at=changed or created)


def test_an_order_created_at_midnight_counts_from_the_next_midnight_and_leaves_one_step_a_day():
    def held_at(t: datetime) -> str | None:
        walk = HeldTiers([fact("O", T0)], program())  # a fresh walk: asked once, from far away
        return walk.name(walk.at(t))

    # Jan 5 00:00: the midnight comes first (nothing yet: t0), then the creation (nothing before it).
    assert held_at(T0) == "t0"
    assert held_at(T0 + DAY) == "t2"  # Jan 6 00:00: 100 in the window
    # The order is in the window up to Jan 15 00:00 inclusive (t - 10 days <= created): still t2 then.
    assert held_at(T0 + 10 * DAY) == "t2"
    assert held_at(T0 + 11 * DAY) == "t1"  # Jan 16: out of the window, one step down
    assert held_at(T0 + 12 * DAY) == "t0"
    assert held_at(T0 + 200 * DAY) == "t0"


def _daily(orders: list[OrderFact], s: LoyaltySettings, until: datetime) -> str | None:
    """The rules walked literally: every creation, every midnight, the qualifying tier recomputed."""
    names = [t.name for t in s.tiers]

    # An order void before it settled (2 days) never counts (docs/loyalty-rules.md §2).
    orders = [o for o in orders if not (o.status in ("cancelled", "returned")
                                        and o.status_changed_at < o.created_at + timedelta(days=2))]

    def qualifying(t: datetime) -> str | None:
        basis = sum((o.total for o in orders if t - s.tier_policy.window <= o.created_at < t
                     and not (o.status in ("cancelled", "returned") and o.status_changed_at <= t)), Decimal(0))
        reached = None
        for tier in s.tiers:
            if basis >= tier.min_spend:
                reached = tier.name
        return reached

    events = sorted({(o.created_at, 1) for o in orders if o.created_at <= until}
                    | {(T0 + k * DAY, 0) for k in range(int((until - T0) / DAY) + 1)})
    held = None
    if not orders:
        return None
    first = min(o.created_at for o in orders)
    for at, kind in events:
        if at < first:
            continue
        q = qualifying(at)
        if kind == 0:
            held = evaluate_tier(held, q, s.tier_policy, s.tiers)
        elif q is not None and (held is None or names.index(q) > names.index(held)):
            held = q
    return held


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40 * 24) | st.integers(0, 40).map(lambda d: 24 * d),  # midnights too
                          st.sampled_from(["0", "1", "2"]),
                          st.sampled_from(["delivered", "cancelled", "returned"]), st.integers(0, 20 * 24)),
                min_size=1, max_size=6),
       st.sampled_from(["one_down", "never", "recompute"]), st.integers(1, 15), st.integers(0, 70 * 24))
def test_the_fast_walk_equals_a_day_by_day_walk(raw, downgrade, window, at_hours):
    orders = [fact(f"O{i}", T0 + timedelta(hours=h), total, status,
                   T0 + timedelta(hours=h + later) if status != "delivered" else None)
              for i, (h, total, status, later) in enumerate(raw)]
    s = program(downgrade, window)
    until = T0 + timedelta(hours=at_hours)
    walk = HeldTiers(orders, s)
    counting = [o for o in orders if not (o.status != "delivered" and o.status_changed_at < o.created_at + 2 * DAY)]
    expected = _daily(orders, s, until) if counting and until >= min(o.created_at for o in counting) else None
    assert walk.name(walk.at(until)) == expected
