"""Segments from order facts only; the service-recovery flag from reviews never reaches them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.records import OrderRecord, OrderStatus, ReviewRecord
from loyalty.membership import refresh_members, stored_members
from loyalty.rules import LoyaltySettings, SegmentThresholds
from loyalty.segments import segment, service_recovery
from store import PageWrite, Store
from store.store import StreamKey

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TH = SegmentThresholds()  # new 30d, at_risk x2, sleeping 90d, lost 365d


def o(days_ago: float, total: str = "1000", status: str = "delivered") -> tuple:
    return (NOW - days_ago * DAY, Decimal(total), status)


def test_new_when_first_order_is_recent():
    assert segment([o(29)], NOW, TH) == "new"
    assert segment([o(30)], NOW, TH) == "new"  # within is inclusive
    assert segment([o(31)], NOW, TH) == "active"


def test_lost_and_sleeping_from_the_last_order():
    assert segment([o(400), o(365)], NOW, TH) == "lost"
    assert segment([o(400), o(364)], NOW, TH) == "sleeping"
    assert segment([o(400), o(90)], NOW, TH) == "sleeping"
    assert segment([o(100), o(80)], NOW, TH) == "at_risk"  # 80 days since > 2 x 20


def test_no_counted_order_is_lost():
    assert segment([], NOW, TH) == "lost"
    assert segment([o(5, status="cancelled")], NOW, TH) == "lost"


def test_at_risk_when_gap_exceeds_factor_times_median_interval():
    regular = [o(100), o(80), o(60), o(40)]  # every 20 days
    assert segment(regular + [o(20)], NOW, TH) == "active"  # 20 days since: usual
    assert segment(regular, NOW, TH) == "active"  # 40 days: exactly 2 x 20, not more
    assert segment(regular[:-1] + [o(41)], NOW, TH) == "at_risk"  # 41 > 2 x 19.5 median
    # the factor is configurable
    assert segment(regular, NOW, SegmentThresholds(at_risk_gap_factor=1.5)) == "at_risk"


def test_split_postings_are_one_visit():
    # Two postings of one checkout (same moment) do not make a zero interval: visits 20 days apart,
    # 40 days since the last is exactly 2 x 20 (with postings counted apart the median would be 10).
    same = [(NOW - 60 * DAY, Decimal(500), "delivered"), (NOW - 60 * DAY, Decimal(700), "delivered")]
    assert segment(same + [o(40)], NOW, TH) == "active"
    assert segment(same + [o(41)], NOW, TH) == "at_risk"


def test_at_risk_when_recent_order_value_falls_below_half():
    earlier = [o(70, "3000"), o(60, "3000")]
    assert segment(earlier + [o(50, "1400"), o(40, "1400"), o(30, "1400")], NOW,
                   SegmentThresholds(at_risk_gap_factor=10)) == "at_risk"
    assert segment(earlier + [o(50, "1500"), o(40, "1500"), o(30, "1500")], NOW,
                   SegmentThresholds(at_risk_gap_factor=10)) == "active"  # exactly half is not below
    # three orders only: no earlier mean to compare with
    assert segment([o(50, "3000"), o(40, "10"), o(35, "10")], NOW,
                   SegmentThresholds(at_risk_gap_factor=10)) == "active"


def test_cancelled_orders_do_not_count():
    assert segment([o(200), o(3, status="cancelled")], NOW, TH) == "sleeping"
    assert segment([o(100, status="cancelled"), o(10)], NOW, TH) == "new"
    cheap_cancelled = [o(70, "3000"), o(60, "3000"), o(50, "3000"), o(45, "1", "cancelled"),
                       o(40, "1", "cancelled"), o(35, "1", "cancelled")]
    assert segment(cheap_cancelled, NOW, SegmentThresholds(at_risk_gap_factor=10)) == "active"


def test_future_orders_are_ignored_and_two_tuples_accepted():
    assert segment([(NOW - 200 * DAY, 100), (NOW + DAY, 100)], NOW, TH) == "sleeping"


def test_service_recovery_is_a_recent_low_rating():
    assert service_recovery([(2, NOW - 29 * DAY)], NOW)
    assert service_recovery([(1, NOW - 30 * DAY)], NOW)
    assert not service_recovery([(2, NOW - 31 * DAY)], NOW)
    assert not service_recovery([(3, NOW - DAY), (5, NOW)], NOW)
    assert not service_recovery([(1, NOW + DAY)], NOW)
    assert not service_recovery([], NOW)


def test_segment_takes_no_review_input():
    import inspect

    assert list(inspect.signature(segment).parameters) == ["order_dates_and_totals", "now", "thresholds"]


# --- on both backends: the projection's segments never follow a rating -------------------------

KEY = StreamKey("ozon", "main", "orders")
REVIEWS_KEY = StreamKey("ozon", "main", "reviews")
SETTINGS = LoyaltySettings(enabled=True)


def order(order_id: str, buyer: str, days_ago: float, total: str = "1000",
          status: OrderStatus = OrderStatus.DELIVERED) -> OrderRecord:
    at = NOW - days_ago * DAY
    return OrderRecord(marketplace="ozon", account="main", order_id=order_id, created_at=at, updated_at=at,
                       status=status, platform_status=status.value, fulfilment="fbs", currency="RUB",
                       total=Decimal(total), lines=(), buyer_key=buyer)


def review(review_id: str, buyer: str | None, rating: int, days_ago: float) -> ReviewRecord:
    return ReviewRecord(marketplace="ozon", account="main", review_id=review_id, sku="s1", rating=rating,
                        text="", pros="", cons="", created_at=NOW - days_ago * DAY, answered=False,
                        answer_text=None, buyer_key=buyer)


def _orders() -> list[OrderRecord]:
    return [
        order("N1", "new", 5),
        order("A1", "act", 100), order("A2", "act", 80), order("A3", "act", 60), order("A4", "act", 40),
        order("R1", "risk", 100), order("R2", "risk", 80),
        order("S1", "sleep", 120),
        order("L1", "lost", 500),
        order("C1", "cancel", 2, status=OrderStatus.CANCELLED), order("C2", "cancel", 200),
    ]


EXPECTED = {"new": "new", "act": "active", "risk": "at_risk", "sleep": "sleeping", "lost": "lost",
            "cancel": "sleeping"}


def test_changing_review_ratings_never_changes_any_segment(store: Store):
    store.write_page(KEY, PageWrite(orders=_orders()), now=NOW)
    refresh_members(store, SETTINGS, NOW)
    before = {m[2]: r["segment"] for m, r in stored_members(store).items()}
    assert before == EXPECTED
    assert not any(r["service_recovery"] for r in stored_members(store).values())
    rng = random.Random(4)
    buyers = sorted(EXPECTED)
    for round_ in range(3):
        # A platform that links reviews to buyers, with every rating changed each round.
        reviews = [review(f"r{i}", b, rng.randint(1, 5), rng.uniform(0, 60))
                   for i, b in enumerate(buyers * 2)]
        reviews[0] = review("r0", buyers[0], 1 if round_ % 2 == 0 else 5, 1)
        store.write_page(REVIEWS_KEY, PageWrite(reviews=reviews), now=NOW)
        refresh_members(store, SETTINGS, NOW)
        rows = stored_members(store)
        assert {m[2]: r["segment"] for m, r in rows.items()} == before
        assert rows[("ozon", "main", buyers[0])]["service_recovery"] is (round_ % 2 == 0)


def test_unlinked_reviews_never_set_service_recovery(store: Store):
    store.write_page(KEY, PageWrite(orders=_orders()), now=NOW)
    # Today's platforms: no buyer key on reviews. Even a 1-star review on the order's day is not joined.
    store.write_page(REVIEWS_KEY, PageWrite(reviews=[review("x1", None, 1, 5)]), now=NOW)
    refresh_members(store, SETTINGS, NOW)
    assert not any(r["service_recovery"] for r in stored_members(store).values())


@pytest.mark.parametrize("factor", [1.5, 3.0])
def test_ratings_are_not_an_argument_anywhere_in_segment_inputs(factor: float):
    """Same orders, any ratings: the pure function gives one answer (it has no way to see them)."""
    orders = [o(100), o(70), o(40)]
    assert len({segment(orders, NOW, SegmentThresholds(at_risk_gap_factor=factor)) for _ in range(3)}) == 1
