"""Downgrade policies (pure) and the members projection on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.records import OrderRecord, OrderStatus
from loyalty.members import member_rows
from loyalty.membership import refresh_members, stored_members
from loyalty.rules import LoyaltySettings, Tier, TierPolicy
from loyalty.tiers import evaluate_tier
from store import PageWrite, Store
from store.store import StreamKey

TIERS = ("bronze", "silver", "gold")


def run(policy: str, start: str | None, qualifying: list[str | None]) -> list[str | None]:
    held, out = start, []
    for q in qualifying:
        held = evaluate_tier(held, q, policy, TIERS)
        out.append(held)
    return out


def test_falling_two_tiers():
    falls = ["bronze", "bronze", "bronze"]
    assert run("one_down", "gold", falls) == ["silver", "bronze", "bronze"]
    assert run("never", "gold", falls) == ["gold", "gold", "gold"]
    assert run("recompute", "gold", falls) == ["bronze", "bronze", "bronze"]


def test_rising_is_immediate_under_every_policy():
    for policy in ("never", "one_down", "recompute"):
        assert evaluate_tier(None, "gold", policy, TIERS) == "gold"
        assert evaluate_tier("bronze", "gold", policy, TIERS) == "gold"


def test_one_down_recovers_midway_and_drops_to_no_tier():
    assert run("one_down", "gold", ["bronze", "gold", None, None, None, None]) == [
        "silver", "gold", "silver", "bronze", None, None]
    assert run("one_down", "gold", ["bronze", "silver"]) == ["silver", "silver"]
    assert run("never", "silver", [None, "gold", "bronze"]) == ["silver", "gold", "gold"]
    assert run("recompute", "gold", [None]) == [None]


def test_policy_object_tier_objects_and_unknown_tiers():
    tiers = [Tier(name=n, min_spend=Decimal(i * 1000), earn_rate=Decimal("0.01")) for i, n in enumerate(TIERS)]
    assert evaluate_tier("gold", "bronze", TierPolicy(downgrade="one_down"), tiers) == "silver"
    assert evaluate_tier("platinum", "bronze", "one_down", TIERS) == "bronze"  # no longer configured
    with pytest.raises(ValueError):
        evaluate_tier("gold", "platinum", "one_down", TIERS)
    with pytest.raises(ValueError):
        evaluate_tier("gold", "bronze", "sometimes", TIERS)


# --- refresh_members on both backends ------------------------------------------------------------

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KEY = StreamKey("ozon", "main", "orders")
MEMBER = ("ozon", "main", "b1")


def settings(downgrade: str = "one_down") -> LoyaltySettings:
    return LoyaltySettings(
        enabled=True,
        tiers=(Tier(name="bronze", min_spend=Decimal(0), earn_rate=Decimal("0.03")),
               Tier(name="silver", min_spend=Decimal(5000), earn_rate=Decimal("0.05")),
               Tier(name="gold", min_spend=Decimal(20000), earn_rate=Decimal("0.07"))),
        tier_policy=TierPolicy(window=30 * DAY, downgrade=downgrade))


def order(order_id: str, created: datetime, total: str, buyer: str = "b1",
          status: OrderStatus = OrderStatus.DELIVERED, changed: datetime | None = None) -> OrderRecord:
    extra = {"status_changed_at": changed or created}
    return OrderRecord(marketplace="ozon", account="main", order_id=order_id, created_at=created,
                       updated_at=changed or created, status=status, platform_status=status.value,
                       fulfilment="fbs", currency="RUB", total=Decimal(total), lines=(), buyer_key=buyer, **extra)


def write(store: Store, *orders: OrderRecord) -> None:
    store.write_page(KEY, PageWrite(orders=list(orders)), now=T0)


def snapshot(store: Store) -> dict:
    return stored_members(store)


def test_refresh_is_idempotent(store: Store):
    write(store, order("A1", T0, "25000"), order("A2", T0 + DAY, "100", buyer="b2"),
          order("A3", T0 + 2 * DAY, "900", buyer="b2", status=OrderStatus.CANCELLED),
          order("X1", T0, "500", buyer=None))
    now = T0 + 5 * DAY
    first = refresh_members(store, settings(), now)
    before = snapshot(store)
    second = refresh_members(store, settings(), now)
    assert first.members == 2 and first.written == 2
    assert second.members == 2 and second.written == 0
    assert snapshot(store) == before
    row = before[MEMBER]
    # A1 (25000) counts from the midnight after it (11 Jan 00:00): gold from then.
    assert (row["orders"], row["spend"], row["tier"], row["tier_since"], row["segment"]) == (
        1, Decimal(25000), "gold", datetime(2026, 1, 11, tzinfo=UTC), "new")
    b2 = before[("ozon", "main", "b2")]
    assert (b2["orders"], b2["spend"], b2["last_order_at"], b2["tier"]) == (2, Decimal(100), T0 + DAY, "bronze")
    assert b2["service_recovery"] is False


def test_refresh_reflects_new_orders(store: Store):
    write(store, order("A1", T0, "1000"))
    now = T0 + 5 * DAY
    refresh_members(store, settings(), now)
    assert snapshot(store)[MEMBER]["tier"] == "bronze"
    write(store, order("A2", T0 + DAY, "6000"), order("B1", T0 + DAY, "100", buyer="b9"))
    result = refresh_members(store, settings(), now)  # same `now`: still sees the new orders
    rows = snapshot(store)
    assert result.written == 2
    assert (rows[MEMBER]["orders"], rows[MEMBER]["spend"], rows[MEMBER]["tier"]) == (2, Decimal(7000), "silver")
    assert ("ozon", "main", "b9") in rows


def test_one_down_steps_once_per_midnight_whenever_the_refresh_runs(store: Store):
    write(store, order("A1", T0, "25000"))
    # A1 leaves the 30-day window on 9 Feb 12:00: nothing above bronze qualifies from then.
    # one_down: gold -> silver at midnight 10 Feb, -> bronze at midnight 11 Feb.
    expected = [(T0 + 5 * DAY, "gold"), (datetime(2026, 2, 10, 1, tzinfo=UTC), "silver"),
                (datetime(2026, 2, 11, 1, tzinfo=UTC), "bronze"), (T0 + 60 * DAY, "bronze")]
    for now, tier in expected:
        refresh_members(store, settings(), now)
        assert snapshot(store)[MEMBER]["tier"] == tier, now
    # A run that skipped days (only the last date) and one that ran twice agree with the daily runs.
    for now, tier in expected:
        assert member_rows(store, settings(), now)[0].tier == tier
    silver = member_rows(store, settings(), datetime(2026, 2, 10, 23, tzinfo=UTC))[0]
    assert silver.tier == "silver"
    write(store, order("A2", T0 + 39 * DAY, "100"))  # arrives late: at its creation bronze qualifies
    refresh_members(store, settings(), T0 + 60 * DAY)
    row = snapshot(store)[MEMBER]
    assert row["tier"] == "bronze" and row["tier_since"] == datetime(2026, 2, 11, tzinfo=UTC)


@pytest.mark.parametrize(("downgrade", "expected"), [("never", ["gold", "gold"]),
                                                     ("recompute", ["bronze", "bronze"])])
def test_other_policies_on_the_store(store: Store, downgrade: str, expected: list[str]):
    write(store, order("A1", T0, "25000"), order("A2", T0 + 20 * DAY, "100"))
    refresh_members(store, settings(downgrade), T0 + 5 * DAY)
    got = []
    for days in (40, 41):
        refresh_members(store, settings(downgrade), T0 + days * DAY)
        got.append(snapshot(store)[MEMBER]["tier"])
    assert got == expected


def test_an_older_evaluation_never_overwrites_a_newer_one(store: Store):
    write(store, order("A1", T0, "25000"))
    refresh_members(store, settings(), T0 + 40 * DAY)
    before = snapshot(store)
    result = refresh_members(store, settings(), T0 + 5 * DAY)
    assert result.skipped_newer == 1 and result.written == 0
    assert snapshot(store) == before


def test_members_view_equals_the_projection_and_filters_by_segment(store: Store):
    write(store, order("A1", T0, "25000"), order("B1", T0 - 200 * DAY, "100", buyer="b2"))
    now = T0 + 40 * DAY
    computed = {r.buyer_key: (r.tier, r.segment) for r in member_rows(store, settings(), now)}
    # b1: gold until A1 left the window (9 Feb), then one step per midnight: bronze by 19 Feb;
    # 40 days since its only order: active. b2: 240 days since its order: sleeping.
    assert computed == {"b1": ("bronze", "active"), "b2": ("bronze", "sleeping")}
    refresh_members(store, settings(), T0 + 5 * DAY)
    refresh_members(store, settings(), now)
    stored = {m[2]: (r["tier"], r["segment"]) for m, r in snapshot(store).items()}
    assert stored == computed  # the projection caches the same function of the orders
    assert [r.buyer_key for r in member_rows(store, settings(), now, segment="sleeping")] == ["b2"]
    assert [r.buyer_key for r in member_rows(store, settings(), T0 + 5 * DAY, tier="gold")] == ["b1"]


def test_members_at_a_past_moment_see_the_orders_as_they_stood_then(store: Store):
    """Finding 7: `members --now <past date>` was not a point-in-time view."""
    write(store, order("A1", T0, "6000"), order("A2", T0 + 20 * DAY, "9000"))
    write(store, order("A1", T0, "6000", status=OrderStatus.RETURNED, changed=T0 + 10 * DAY))
    before_return = member_rows(store, settings(), T0 + 5 * DAY)[0]
    # On day 5: one order, not yet returned, 6000 kept: silver (from the midnight after it).
    assert (before_return.orders, before_return.spend, before_return.tier) == (1, Decimal(6000), "silver")
    after = member_rows(store, settings(), T0 + 25 * DAY)[0]
    # On day 25: A1 came back on day 10, A2 (9000) counts: silver again.
    assert (after.orders, after.spend, after.tier) == (2, Decimal(9000), "silver")
    assert member_rows(store, settings(), T0 - DAY) == []  # nothing yet
