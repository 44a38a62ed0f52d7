"""WB payloads (tests/fixtures/wildberries, copied from the shared reference) -> normalised records."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.base import MappingContext
from connectors.errors import MalformedRecord
from connectors.records import OrderStatus
from connectors.wildberries.mapping import (
    map_feedback,
    map_marketplace_order,
    map_statistics_order,
    marketplace_status,
)
from tests.conftest import load_fixture

CTX = MappingContext(marketplace="wildberries", account="main")


def _orders_with_status():
    orders = load_fixture("wildberries", "orders_list.json")["orders"]
    statuses = {s["id"]: s for s in load_fixture("wildberries", "orders_status.json")["orders"]}
    for o in orders:
        s = statuses[o["id"]]
        o["_status"] = {"supplierStatus": s["supplierStatus"], "wbStatus": s["wbStatus"]}
    return orders


def test_marketplace_order_kopecks_to_rubles_in_the_sellers_currency():
    byn_order, rub_order = _orders_with_status()
    rec = map_marketplace_order(rub_order, CTX)
    assert rec.order_id == "3b9f2c7e81d54a0fa61c2e9d7b4f8a10"  # rid: the join key with srid
    assert rec.total == Decimal("1429.00") and rec.currency == "RUB"
    assert rec.lines[0].price == Decimal("1429.00") and rec.lines[0].sku == "245178903"
    assert rec.lines[0].offer_id == "mug-ceramic-350-white" and rec.lines[0].quantity == 1
    # Sold in BYN (price 1014 = 10.14 BYN), the seller is paid in RUB: convertedPrice 28322 kopecks.
    byn = map_marketplace_order(byn_order, CTX)
    assert byn.total == Decimal("283.22") and byn.currency == "RUB"


def test_marketplace_order_time_is_utc_and_statuses_are_normalised():
    sold, waiting = (map_marketplace_order(o, CTX) for o in _orders_with_status())
    assert waiting.created_at == datetime(2026, 8, 18, 9, 41, 27, tzinfo=UTC)
    assert sold.status is OrderStatus.DELIVERED and sold.platform_status == "complete/sold"
    assert waiting.status is OrderStatus.CREATED and waiting.platform_status == "confirm/waiting"
    assert waiting.fulfilment == "fbs"


@pytest.mark.parametrize(
    ("supplier", "wb", "expected"),
    [
        ("new", "waiting", OrderStatus.CREATED),
        ("confirm", "waiting", OrderStatus.CREATED),
        ("complete", "waiting", OrderStatus.IN_DELIVERY),
        ("complete", "sorted", OrderStatus.IN_DELIVERY),
        ("complete", "ready_for_pickup", OrderStatus.IN_DELIVERY),
        ("complete", "sold", OrderStatus.DELIVERED),
        ("cancel", "waiting", OrderStatus.CANCELLED),
        ("complete", "canceled_by_client", OrderStatus.CANCELLED),
        ("new", "declined_by_client", OrderStatus.CANCELLED),
        ("confirm", "canceled", OrderStatus.CANCELLED),
        (None, None, OrderStatus.CREATED),
    ],
)
def test_wb_status_pairs(supplier, wb, expected):
    assert marketplace_status(supplier, wb) is expected


def test_statistics_row_moscow_time_and_rubles():
    cancelled, active = (map_statistics_order(r, CTX) for r in load_fixture("wildberries", "statistics_orders.json"))
    # "2026-08-18T12:41:27" is Moscow time (UTC+3) without an offset.
    assert active.created_at == datetime(2026, 8, 18, 9, 41, 27, tzinfo=UTC)
    assert active.updated_at == datetime(2026, 8, 18, 9, 55, 3, tzinfo=UTC)
    assert active.total == Decimal("1248.32") and active.currency == "RUB"  # no float error
    assert active.status is OrderStatus.CREATED and active.fulfilment == "fbo"
    assert active.order_id == "7513432034713632943.1.0"
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.platform_status == "isCancel"
    assert cancelled.fulfilment == "fbs"  # "Склад продавца"
    assert cancelled.total == Decimal("1145.00")


def test_a_cancelled_statistics_row_changed_status_at_its_moscow_cancel_date():
    cancelled, active = load_fixture("wildberries", "statistics_orders.json")
    # The official example: "cancelDate": "2022-03-09T00:00:00", Moscow time without an offset.
    assert map_statistics_order(cancelled, CTX).status_changed_at == datetime(2022, 3, 8, 21, 0, tzinfo=UTC)
    # "0001-01-01T00:00:00" means unset: a live row has no status time (nor would a cancelled one
    # that WB has not dated yet); the store then stamps when a sync first saw the status.
    assert active["cancelDate"] == "0001-01-01T00:00:00"
    assert map_statistics_order(active, CTX).status_changed_at is None
    for unset in ("0001-01-01T00:00:00", None, ""):
        rec = map_statistics_order(dict(cancelled, cancelDate=unset), CTX)
        assert rec.status is OrderStatus.CANCELLED and rec.status_changed_at is None
    # A date on a row WB no longer calls cancelled is not the time of its current status.
    assert map_statistics_order(dict(cancelled, isCancel=False), CTX).status_changed_at is None
    with pytest.raises(MalformedRecord, match="cancelDate"):
        map_statistics_order(dict(cancelled, cancelDate="9 March"), CTX)
    # Dated by the day only, a same-day cancellation would precede the order: never before `date`.
    same_day = map_statistics_order(dict(cancelled, date="2022-03-09T14:05:00"), CTX)
    assert same_day.status_changed_at == same_day.created_at == datetime(2022, 3, 9, 11, 5, tzinfo=UTC)


def test_marketplace_orders_carry_no_status_time():
    """/api/v3/orders has `createdAt` only and /orders/status answers statuses without a date."""
    records = [map_marketplace_order(o, CTX) for o in _orders_with_status()]
    assert {r.status for r in records} == {OrderStatus.DELIVERED, OrderStatus.CREATED}
    assert [r.status_changed_at for r in records] == [None, None]


def test_both_apis_describe_the_same_order_with_one_key_and_instant():
    mp = map_marketplace_order(_orders_with_status()[1], CTX)
    row = dict(load_fixture("wildberries", "statistics_orders.json")[1], srid=mp.order_id)
    st = map_statistics_order(row, CTX)
    assert st.order_id == mp.order_id
    assert st.created_at == mp.created_at  # 12:41:27 MSK == 09:41:27Z
    assert mp.source_rank > st.source_rank


def test_feedback_with_offset_answered_and_unanswered():
    feedbacks = load_fixture("wildberries", "feedbacks_list.json")["data"]["feedbacks"]
    unanswered, answered = (map_feedback(f, CTX) for f in feedbacks)
    assert unanswered.created_at == datetime(2026, 8, 19, 5, 12, 3, tzinfo=UTC)
    assert unanswered.rating == 4 and not unanswered.answered and unanswered.answer_text is None
    assert unanswered.sku == "245178903" and unanswered.product_name == "Кружка керамическая 350 мл"
    assert unanswered.order_id is None and unanswered.buyer_key is None  # WB links neither
    assert answered.answered and answered.answer_text == "Пожалуйста. Ждём вас снова!"
    assert answered.brand == "Бест Трикотаж"


@pytest.mark.parametrize(
    ("mapper", "fixture", "path", "bad", "reason"),
    [
        (map_marketplace_order, "orders_list.json", ("orders", 1, "createdAt"), "not-a-date", "createdAt"),
        (map_marketplace_order, "orders_list.json", ("orders", 1, "convertedPrice"), "1429.00", "convertedPrice"),
        (map_marketplace_order, "orders_list.json", ("orders", 1, "convertedCurrencyCode"), 999, "currency"),
        (map_marketplace_order, "orders_list.json", ("orders", 1, "createdAt"), "2026-08-18T09:41:27", "offset"),
        (map_statistics_order, "statistics_orders.json", (1, "finishedPrice"), "abc", "finishedPrice"),
        (map_statistics_order, "statistics_orders.json", (1, "lastChangeDate"), "yesterday", "lastChangeDate"),
        (map_statistics_order, "statistics_orders.json", (1, "isCancel"), "no", "isCancel"),
        (map_statistics_order, "statistics_orders.json", (1, "date"), "0001-01-01T00:00:00", "not a real"),
        (map_feedback, "feedbacks_list.json", ("data", "feedbacks", 0, "createdDate"), "0001-01-01T00:00:00+03:00",
         "not a real"),
        (map_feedback, "feedbacks_list.json", ("data", "feedbacks", 0, "productValuation"), 9, "productValuation"),
    ],
)
def test_malformed_values_raise_malformed_record_naming_the_field(mapper, fixture, path, bad, reason):
    doc = load_fixture("wildberries", fixture)
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = bad
    record = target
    with pytest.raises(MalformedRecord, match=reason):
        mapper(record, CTX)
