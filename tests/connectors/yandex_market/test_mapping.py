"""Yandex Market payloads (tests/fixtures/yandex_market, copied from the shared reference) -> records."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.base import MappingContext
from connectors.errors import MalformedRecord
from connectors.records import OrderStatus
from connectors.yandex_market import YandexMarketConnector
from connectors.yandex_market.mapping import map_feedback, map_order, order_status
from store.identity import buyer_key_hasher
from sync.runner import map_page
from tests.conftest import load_fixture

HASH = buyer_key_hasher(b"salt" * 8, "yandex_market")
CTX = MappingContext(marketplace="yandex_market", account="main", buyer_key=HASH)
BUYER = load_fixture("yandex_market", "getOrderBuyerInfo.response.json")["result"]


def _order(**changes):
    order = load_fixture("yandex_market", "getBusinessOrders.response.json")["orders"][0]
    order.update(changes)
    return order


def _dbs_order():
    # The example's DBS courier order (its address under `delivery.courier.address`, as
    # BusinessOrderDTO has it), as the client hands it on: the buyer's id and nothing else of them.
    order = load_fixture("yandex_market", "getBusinessOrders.response.json")["orders"][1]
    assert order["programType"] == "DBS" and "address" in order["delivery"]["courier"]
    return dict(order, _buyer={"id": BUYER["id"]})


def _feedback():
    return load_fixture("yandex_market", "getGoodsFeedbacks.response.json")["result"]["feedbacks"][0]


def test_order_ids_money_time_and_status_from_the_payload():
    rec = map_order(_order(), CTX)
    assert rec.order_id == "55113212034"
    # "2026-07-10T14:30:30+03:00" is Moscow time with its offset.
    assert rec.created_at == datetime(2026, 7, 10, 11, 30, 30, tzinfo=UTC)
    assert rec.updated_at == datetime(2026, 7, 17, 8, 2, 41, tzinfo=UTC)
    assert rec.created_at.utcoffset().total_seconds() == 0
    assert rec.status is OrderStatus.DELIVERED and rec.platform_status == "DELIVERED/DELIVERY_SERVICE_DELIVERED"
    assert rec.fulfilment == "fbs"
    # RUR is Market's name for the rouble; amounts are major units, the line price covers 2 units.
    assert rec.currency == "RUB" and rec.total == Decimal("70.00")
    (line,) = rec.lines
    assert (line.sku, line.offer_id, line.quantity, line.price) == ("SKU-427086", "SKU-427086", 2, Decimal("35.00"))
    assert line.name == "Лампа галогеновая G4 20Вт"
    assert rec.buyer_key is None  # FBS exposes no buyer


def test_the_status_time_is_the_orders_update_date():
    """`updateDate` (the order's last update) is the one time Market gives after creation: at a first
    read of a status it is no earlier than the change. The official example's delivered order was
    delivered on 2026-07-15 (`realDeliveryDate`, a day) and last updated 2026-07-17T11:02:41+03:00."""
    delivered, processing = load_fixture("yandex_market", "getBusinessOrders.response.json")["orders"]
    rec = map_order(delivered, CTX)
    assert delivered["delivery"]["dates"]["realDeliveryDate"] == "2026-07-15"
    assert rec.status is OrderStatus.DELIVERED
    assert rec.status_changed_at == datetime(2026, 7, 17, 8, 2, 41, tzinfo=UTC)
    assert map_order(processing, CTX).status_changed_at == datetime(2026, 7, 16, 6, 20, 47, tzinfo=UTC)
    # Without `updateDate` (it is optional) there is no status time, not the creation date.
    bare = {k: v for k, v in delivered.items() if k != "updateDate"}
    assert map_order(bare, CTX).status_changed_at is None
    # An update stamped before creation is impossible; the status cannot predate the order.
    early = map_order(dict(delivered, updateDate="2026-07-01T00:00:00+03:00"), CTX)
    assert early.status_changed_at == early.created_at == datetime(2026, 7, 10, 11, 30, 30, tzinfo=UTC)


def test_plus_points_count_as_paid_and_subsidy_and_delivery_do_not():
    order = _order()
    item = order["items"][0]["prices"]
    item["payment"]["value"], item["cashback"]["value"] = 60.5, 9.5
    order["prices"]["payment"]["value"], order["prices"]["cashback"]["value"] = 60.5, 9.5
    order["prices"]["delivery"]["payment"]["value"] = 99.0
    rec = map_order(order, CTX)
    assert rec.total == Decimal("70.00") and rec.lines[0].price == Decimal("35.00")


def test_a_line_price_that_does_not_divide_evenly_is_rounded_half_up_to_the_kopeck():
    order = _order()
    order["items"][0].update(count=3)
    order["items"][0]["prices"]["payment"]["value"] = 100.0
    assert map_order(order, CTX).lines[0].price == Decimal("33.33")


def test_dbs_buyer_id_becomes_the_salted_key_and_nothing_else_of_the_buyer_is_kept():
    rec = map_order(_dbs_order(), CTX)
    assert rec.fulfilment == "dbs" and rec.status is OrderStatus.CREATED
    assert rec.buyer_key == HASH(BUYER["id"]) and len(rec.buyer_key) == 32
    text = repr(rec)
    for value in (BUYER["id"], BUYER["phone"], BUYER["lastName"], BUYER["firstName"], BUYER["middleName"]):
        assert value not in text
    # Nothing of the courier address (delivery.courier.address) reaches the record either.
    for value in ("Профсоюзная", "117292", "41К", "55.6812", "Позвоните"):
        assert value not in text


def test_the_same_buyer_gets_the_same_key_on_every_order_and_other_buyers_another():
    first = map_order(_dbs_order(), CTX)
    second = map_order(dict(_dbs_order(), orderId=55113212999), CTX)
    other = map_order(dict(_dbs_order(), _buyer={"id": "anotherBuyerId000000000"}), CTX)
    assert first.buyer_key == second.buyer_key != other.buyer_key


@pytest.mark.parametrize("program", ["FBS", "FBY", "EXPRESS"])
def test_only_dbs_orders_carry_a_buyer_key(program):
    assert map_order(dict(_dbs_order(), programType=program), CTX).buyer_key is None


def test_a_dbs_order_without_buyer_info_has_no_key():
    order = _dbs_order()
    del order["_buyer"]
    assert map_order(dict(order, status="DELIVERED"), CTX).buyer_key is None


@pytest.mark.parametrize(("program", "fulfilment"),
                         [("FBS", "fbs"), ("FBY", "fby"), ("DBS", "dbs"), ("EXPRESS", "express"),
                          ("LAAS", "laas")])
def test_placement_models_become_lower_case_fulfilment(program, fulfilment):
    assert map_order(_order(programType=program), CTX).fulfilment == fulfilment


@pytest.mark.parametrize(
    ("status", "expected"),
    [("PLACING", OrderStatus.CREATED), ("RESERVED", OrderStatus.CREATED), ("UNPAID", OrderStatus.CREATED),
     ("PENDING", OrderStatus.CREATED), ("PROCESSING", OrderStatus.CREATED),
     ("DELIVERY", OrderStatus.IN_DELIVERY), ("PICKUP", OrderStatus.IN_DELIVERY),
     ("DELIVERED", OrderStatus.DELIVERED), ("CANCELLED", OrderStatus.CANCELLED),
     ("PARTIALLY_RETURNED", OrderStatus.PARTIALLY_RETURNED), ("RETURNED", OrderStatus.RETURNED)],
)
def test_market_statuses(status, expected):
    assert order_status(status) is expected


def test_a_cancellation_keeps_its_reason_in_the_platform_status():
    rec = map_order(_order(status="CANCELLED", substatus="USER_CHANGED_MIND"), CTX)
    assert rec.status is OrderStatus.CANCELLED and rec.platform_status == "CANCELLED/USER_CHANGED_MIND"
    assert map_order(_order(status="RETURNED", substatus=None), CTX).platform_status == "RETURNED"
    # The emulator's (and maybe Market's) substatus of a return: UNKNOWN says nothing more.
    assert map_order(_order(status="RETURNED", substatus="UNKNOWN"), CTX).platform_status == "RETURNED"


def _partial(**changes):
    order = load_fixture("yandex_market", "getBusinessOrders.partially_returned.response.json")["orders"][0]
    order.update(changes)
    return order


def test_a_partial_return_is_its_own_status_with_the_value_of_the_returned_units():
    rec = map_order(_partial(), CTX)
    assert rec.status is OrderStatus.PARTIALLY_RETURNED and rec.platform_status == "PARTIALLY_RETURNED"
    assert rec.total == Decimal("5796.00")
    assert [ln.price for ln in rec.lines] == [Decimal("119.00"), Decimal("2490.00"), Decimal("459.00")]
    # 1 lamp RETURNED + 1 kettle REJECTED, each at its unit price (payment + cashback per unit).
    assert rec.returned_total == Decimal("2609.00")
    assert str(rec.returned_total) == "2609.00"


def test_a_partial_return_without_item_statuses_or_with_unknown_ones_returns_nothing_known():
    order = _partial()
    for item in order["items"]:
        item.pop("itemStatuses", None)
    assert map_order(order, CTX).returned_total == 0
    order["items"][0]["itemStatuses"] = [{"count": 7, "status": "SOMETHING_NEW"}, {"count": 2, "status": "RETURNED"}]
    assert map_order(order, CTX).returned_total == Decimal("238.00")


def test_a_full_return_gives_back_the_total_and_other_statuses_none():
    assert map_order(_partial(status="RETURNED"), CTX).returned_total == Decimal("5796.00")
    # REJECTED units of an order not delivered belong to its cancellation, not to a return.
    for status in ("DELIVERED", "CANCELLED", "DELIVERY", "PROCESSING"):
        rec = map_order(_partial(status=status), CTX)
        assert rec.returned_total == 0 and rec.status is not OrderStatus.PARTIALLY_RETURNED
    assert map_order(_order(), CTX).returned_total == 0


@pytest.mark.parametrize(
    ("statuses", "reason"),
    [
        ([{"count": -1, "status": "RETURNED"}], r"items\[0\].itemStatuses\[0\].count: expected a non-negative integer"),
        ([{"count": 1.5, "status": "RETURNED"}], r"items\[0\].itemStatuses\[0\].count: expected a non-negative"),
        ([{"count": "1", "status": "REJECTED"}], r"items\[0\].itemStatuses\[0\].count: expected a non-negative"),
        ([{"count": True, "status": "RETURNED"}], r"items\[0\].itemStatuses\[0\].count: expected a non-negative"),
        ([{"status": "RETURNED"}], r"items\[0\].itemStatuses\[0\].count: expected a non-negative integer"),
        ([{"count": 4, "status": "RETURNED"}], r"items\[0\].itemStatuses\[0\].count: 4 units of an item of 3"),
        ([{"count": 2, "status": "RETURNED"}, {"count": 2, "status": "REJECTED"}],
         r"items\[0\].itemStatuses: 4 units returned of an item of 3"),
        ({"count": 1, "status": "RETURNED"}, r"items\[0\].itemStatuses: expected a list"),
        (["RETURNED"], r"items\[0\].itemStatuses\[0\]: expected an object"),
    ],
)
def test_malformed_item_statuses_are_refused_with_a_reason(statuses, reason):
    order = _partial()
    order["items"][0]["itemStatuses"] = statuses
    with pytest.raises(MalformedRecord, match=reason) as info:
        map_order(order, CTX)
    assert info.value.record_key == "55113212999"


def test_a_page_with_malformed_item_statuses_quarantines_that_order_only():
    bad = _partial(orderId=55113213000)
    bad["items"][1]["itemStatuses"] = [{"count": 3, "status": "REJECTED"}]
    connector = YandexMarketConnector.__new__(YandexMarketConnector)  # mapping needs no client
    write = map_page(connector, "orders", [_partial(), bad], CTX)
    assert [r.order_id for r in write.orders] == ["55113212999"]
    assert [(q.record_key, q.reason) for q in write.quarantined] == [
        ("55113213000", "items[1].itemStatuses[0].count: 3 units of an item of 2")]


def test_another_currency_is_kept_and_a_mixed_one_is_refused():
    order = copy.deepcopy(_order())
    for dto in (order["prices"]["payment"], order["prices"]["cashback"], order["items"][0]["prices"]["payment"],
                order["items"][0]["prices"]["cashback"]):
        dto["currencyId"] = "KZT"
    assert map_order(order, CTX).currency == "KZT"
    order["items"][0]["prices"]["payment"]["currencyId"] = "RUR"
    with pytest.raises(MalformedRecord, match=r"items\[0\].prices.payment.currencyId"):
        map_order(order, CTX)


@pytest.mark.parametrize(
    ("path", "bad", "reason"),
    [
        (("creationDate",), "not-a-date", "creationDate"),
        (("creationDate",), "10-07-2026 14:30:30", "creationDate"),  # the deprecated list's format
        (("creationDate",), "2026-07-10T14:30:30", "creationDate: time without an offset"),
        (("updateDate",), "2026-07-17", "updateDate: time without an offset"),  # a date is no instant
        (("status",), "UNKNOWN", "status: unknown order status"),
        (("status",), None, "status"),
        (("substatus",), 7, "substatus"),
        (("programType",), 3, "programType"),
        (("prices", "payment", "value"), "abc", "prices.payment.value"),
        (("prices", "payment", "value"), -5, "prices.payment.value"),
        (("prices", "payment", "currencyId"), None, "prices.payment.currencyId"),
        (("prices",), None, "prices"),
        (("items",), [], "items"),
        (("items", 0, "count"), 0, r"items\[0\].count"),
        (("items", 0, "offerId"), "", r"items\[0\].offerId"),
        (("items", 0, "prices", "payment", "value"), True, r"items\[0\].prices.payment.value"),
        (("_buyer",), {"id": ""}, "_buyer.id"),
    ],
)
def test_malformed_order_values_name_the_field(path, bad, reason):
    order = _dbs_order() if path[0] == "_buyer" else _order()
    target = order
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = bad
    with pytest.raises(MalformedRecord, match=reason) as info:
        map_order(order, CTX)
    assert info.value.record_key == str(order["orderId"])


def test_an_order_without_an_id_is_malformed():
    with pytest.raises(MalformedRecord, match="orderId"):
        map_order(_order(orderId=None), CTX)


def test_review_links_order_and_offer_but_no_buyer():
    rec = map_feedback(_feedback(), CTX)
    assert rec.review_id == "123456789" and rec.sku == "SKU-427086"
    assert rec.order_id == "55113212034"  # identifiers.orderId
    assert rec.buyer_key is None  # Market names no reviewer id; the order's key is a join away
    assert rec.rating == 5
    assert (rec.text, rec.pros, rec.cons) == ("Пришла быстро, всё работает.", "Яркая", "Нет")
    assert rec.created_at == datetime(2026, 7, 16, 15, 22, 5, tzinfo=UTC)
    assert not rec.answered and rec.answer_text is None
    assert "Анна И." not in repr(rec)  # the author's display name is not kept


def test_review_answer_is_the_shops_latest_visible_top_level_comment():
    shop = load_fixture("yandex_market", "getGoodsFeedbackComments.response.json")["result"]["comments"]
    attached = [{k: c.get(k) for k in ("id", "text", "parentId", "status")} for c in shop]
    rec = map_feedback(dict(_feedback(), _comments=attached), CTX)
    assert rec.answered and rec.answer_text == "Спасибо за отзыв!"
    hidden = [dict(attached[0], status="BANNED"), dict(attached[0], id=2, status="DELETED")]
    assert not map_feedback(dict(_feedback(), _comments=hidden), CTX).answered
    thread = [dict(attached[0], text="Ответ"), dict(attached[0], id=3, parentId=987654321, text="Уточнение"),
              dict(attached[0], id=4, text="Дополнение", status="UNMODERATED")]
    assert map_feedback(dict(_feedback(), _comments=thread), CTX).answer_text == "Дополнение"


def test_a_review_without_an_order_link_has_none():
    feedback = _feedback()
    del feedback["identifiers"]["orderId"]
    assert map_feedback(feedback, CTX).order_id is None


@pytest.mark.parametrize(
    ("path", "bad", "reason"),
    [
        (("statistics", "rating"), 9, "statistics.rating"),
        (("statistics", "rating"), "5", "statistics.rating"),
        (("createdAt",), "2026-07-16 18:22:05", "createdAt"),
        (("createdAt",), "2026-07-16", "createdAt"),
        (("identifiers", "offerId"), None, "identifiers.offerId"),
        (("identifiers", "orderId"), True, "identifiers.orderId"),
        (("identifiers",), None, "identifiers"),
        (("description",), "text", "description"),
        (("_comments",), "yes", "_comments"),
    ],
)
def test_malformed_review_values_name_the_field(path, bad, reason):
    feedback = _feedback()
    target = feedback
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = bad
    with pytest.raises(MalformedRecord, match=reason) as info:
        map_feedback(feedback, CTX)
    assert info.value.record_key == "123456789"


def test_quarantined_orders_and_reviews_keep_no_personal_fields():
    connector = YandexMarketConnector.__new__(YandexMarketConnector)  # mapping needs no client
    official = dict(_dbs_order(), creationDate="broken", notes="+79990000000")
    # The deprecated OrderDTO's shape too: `delivery.address` with recipient and phone, `buyer`.
    deprecated = dict(official, orderId=55113298762,
                      delivery={"address": {"recipient": "Анна Иванова", "phone": "+79990000000"}},
                      buyer={"id": BUYER["id"], "firstName": "Анна"})
    write = map_page(connector, "orders", [official, deprecated], CTX)
    assert [(b.record_key, "creationDate" in b.reason) for b in write.quarantined] == [
        ("55113298761", True), ("55113298762", True)]
    text = repr([b.payload for b in write.quarantined])
    for value in (BUYER["id"], "+79990000000", "Анна", "Иванова", "Профсоюзная", "117292", "41К", "55.6812"):
        assert value not in text
    review = dict(_feedback(), createdAt="broken")
    (bad_review,) = map_page(connector, "reviews", [review], CTX).quarantined
    assert "Анна И." not in repr(bad_review.payload) and bad_review.record_key == "123456789"
