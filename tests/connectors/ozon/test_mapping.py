"""Ozon payloads (tests/fixtures/ozon, copied from the shared reference) -> normalised records."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.base import MappingContext
from connectors.errors import MalformedRecord
from connectors.ozon.mapping import (
    fulfilment,
    map_fbo_posting,
    map_fbs_posting,
    map_review,
    posting_status,
)
from connectors.records import OrderStatus
from store.identity import buyer_key_hasher
from tests.conftest import load_fixture

HASHER = buyer_key_hasher(b"salt" * 8, "ozon")
CTX = MappingContext(marketplace="ozon", account="main", buyer_key=HASHER)
S = OrderStatus


def fbs_v4() -> dict:
    return load_fixture("ozon", "fbs_list_response.json")["postings"][0]


def with_customer_id(value) -> dict:
    raw = fbs_v4()
    raw["customer"]["customer_id"] = value
    return raw


def test_v4_posting_with_a_customer_keeps_only_the_salted_key():
    raw = fbs_v4()
    rec = map_fbs_posting(raw, CTX)
    assert rec.order_id == "0208245774-0029-1"  # the posting, not the order: it has its own status
    assert rec.buyer_key == HASHER("12345678") and len(rec.buyer_key) == 32
    text = repr(rec)
    for personal in ("12345678", "Иван Петров", "+79031234567", "ivan.petrov@example.com", "Домофон"):
        assert personal not in text
    assert rec.fulfilment == "fbs"  # tpl_integration_type "ozon": Ozon delivers
    assert rec.created_at == datetime(2026, 5, 14, 8, 0, tzinfo=UTC) and rec.updated_at == rec.created_at
    assert rec.status is S.CREATED and rec.platform_status == "awaiting_packaging/posting_created"


def test_v4_lines_use_products_price_per_unit_and_sum_to_the_total():
    rec = map_fbs_posting(fbs_v4(), CTX)
    assert [(ln.sku, ln.offer_id, ln.quantity, ln.price) for ln in rec.lines] == [
        ("1904686181", "b4408110", 1, Decimal("12990.00")),
        ("1904686182", "h667722", 2, Decimal("3490.00")),
    ]
    # 12990 + 2 × 3490; financial_data (2500 in this synthetic example) is deliberately not used.
    assert rec.total == Decimal("19970.00") and rec.currency == "RUB"
    assert rec.lines[0].name == "Смартфон Xiaomi Note 12"


@pytest.mark.parametrize("value", [12345678, "12345678", " 12345678", "0012345678"])
def test_the_same_customer_id_as_number_or_string_gives_one_key(value):
    assert map_fbs_posting(with_customer_id(value), CTX).buyer_key == HASHER("12345678")


def test_customer_id_is_read_as_the_number_the_official_example_sends():
    assert type(fbs_v4()["customer"]["customer_id"]) is int  # int64, a JSON number (ozon.md §2.1)
    # Past 2**53 a number keeps every digit (Python's JSON reads ints exactly), as its string does.
    big = 2**63 - 25
    assert map_fbs_posting(with_customer_id(big), CTX).buyer_key == HASHER(str(big))
    assert map_fbs_posting(with_customer_id(str(big)), CTX).buyer_key == HASHER(str(big))


@pytest.mark.parametrize("value", [0, "0", "", None])
def test_an_empty_or_zero_customer_id_is_no_buyer(value):
    assert map_fbs_posting(with_customer_id(value), CTX).buyer_key is None


def test_a_null_or_absent_customer_is_no_buyer():
    raw = fbs_v4()
    raw["customer"] = None
    assert map_fbs_posting(raw, CTX).buyer_key is None
    del raw["customer"]
    assert map_fbs_posting(raw, CTX).buyer_key is None


def test_unfulfilled_v4_posting_integer_amounts_and_no_customer():
    raw = load_fixture("ozon", "fbs_unfulfilled_list_v4_response.json")["postings"][0]
    rec = map_fbs_posting(raw, CTX)
    assert rec.order_id == "41517061-0214-1" and rec.buyer_key is None
    assert rec.total == Decimal("300.00") and rec.lines[0].sku == "4116250392"  # "300" → 300.00
    assert rec.status is S.CREATED and rec.platform_status == "awaiting_deliver/posting_in_carriage"
    assert rec.created_at == datetime(2026, 5, 4, 6, 44, 37, tzinfo=UTC)


def test_deprecated_v3_posting_decimal_string_price_beside_currency_code():
    raw = load_fixture("ozon", "fbs_list_v3_response.json")["result"]["postings"][0]
    rec = map_fbs_posting(raw, CTX)
    assert rec.lines[0].price == Decimal("1530.00") and rec.currency == "RUB"  # "1530.0000"
    assert rec.created_at == datetime(2026, 3, 30, 11, 26, tzinfo=UTC)  # no fraction at all
    assert rec.buyer_key is None and rec.fulfilment == "fbs"


def test_fbo_v3_microseconds_delivered_and_no_buyer():
    raw = load_fixture("ozon", "fbo_list_response.json")["postings"][0]
    rec = map_fbo_posting(raw, CTX)
    assert rec.order_id == "9121072335-0187-1" and rec.fulfilment == "fbo" and rec.buyer_key is None
    assert rec.created_at == datetime(2026, 5, 10, 23, 59, 51, 653736, tzinfo=UTC)
    assert rec.status is S.DELIVERED and rec.platform_status == "delivered/posting_received"
    assert rec.total == Decimal("28990.00") and rec.lines[0].sku == "9880276314"


def test_no_posting_carries_a_time_of_its_status_so_none_is_given():
    """ozon.md §2.1/§2.4: `delivering_date` is the hand-over to delivery and the official v4 example
    fills it on a posting still `awaiting_packaging` (a plan, not a status time); cancellations
    carry no time; FBO has only its creation times. The store stamps when a sync first saw each."""
    official = fbs_v4()
    assert official["status"] == "awaiting_packaging" and official["delivering_date"] == "2026-05-19T15:30:00.000Z"
    delivering = dict(fbs_v4(), status="delivering", substatus="posting_in_courier_service",
                      pickup_code_verified_at="2026-05-19T15:31:00Z")
    cancelled = dict(fbs_v4(), status="cancelled", substatus="posting_canceled")
    cancelled["cancellation"] = dict(cancelled["cancellation"], cancel_reason_id=352,
                                     cancellation_initiator="CLIENT", cancellation_type="client")
    fbs = [map_fbs_posting(raw, CTX) for raw in (official, delivering, cancelled)]
    assert [r.status for r in fbs] == [S.CREATED, S.IN_DELIVERY, S.CANCELLED]
    fbo = [map_fbo_posting(raw, CTX) for raw in load_fixture("ozon", "fbo_list_response.json")["postings"]]
    get = load_fixture("ozon", "fbs_get_response.json")["result"]
    assert any(r.status is S.DELIVERED for r in fbo)
    assert [r.status_changed_at for r in [*fbs, *fbo, map_fbs_posting(get, CTX)]] == [None] * (len(fbo) + 4)


def test_fbo_v2_string_price():
    raw = load_fixture("ozon", "fbo_list_v2_response.json")["result"][0]
    rec = map_fbo_posting(raw, CTX)
    assert rec.total == Decimal("81.00") and rec.currency == "RUB"
    assert rec.created_at == datetime(2021, 9, 1, 0, 23, 45, 607000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("price", "currency_code", "expected"),
    [
        ({"amount": 12990, "currency": "RUB"}, None, Decimal("12990.00")),  # a number in the object
        ({"amount": "12990.5", "currency": "rub"}, None, Decimal("12990.50")),
        (662.86, "RUB", Decimal("662.86")),  # a JSON double: via str(), no binary error
        ("81", "KZT", Decimal("81.00")),
    ],
)
def test_every_price_shape_becomes_an_exact_decimal(price, currency_code, expected):
    raw = fbs_v4()
    raw["products"] = raw["products"][:1]
    raw["products"][0]["price"] = price
    if currency_code:
        raw["products"][0]["currency_code"] = currency_code
    rec = map_fbs_posting(raw, CTX)
    assert rec.total == expected and rec.lines[0].price == expected
    assert rec.currency == (currency_code or "RUB")


@pytest.mark.parametrize(
    ("tpl", "schema", "expected"),
    [("ozon", "fbs", "fbs"), ("3pl_tracking", "fbs", "rfbs"), ("non_integrated", None, "rfbs"),
     ("aggregator", None, "rfbs"), ("hybryd", None, "rfbs"), (None, "rfbs", "rfbs"), (None, None, "fbs"),
     ("", "fbs", "fbs")],
)
def test_rfbs_is_any_delivery_not_done_by_ozon(tpl, schema, expected):
    raw = fbs_v4()
    raw["tpl_integration_type"], raw["delivery_schema"] = tpl, schema
    assert fulfilment(raw) == expected
    assert map_fbs_posting(raw, CTX).fulfilment == expected


@pytest.mark.parametrize(
    ("status", "substatus", "expected"),
    [
        ("awaiting_registration", None, S.CREATED), ("acceptance_in_progress", None, S.CREATED),
        ("awaiting_approve", None, S.CREATED), ("awaiting_packaging", "posting_created", S.CREATED),
        ("awaiting_verification", None, S.CREATED), ("awaiting_deliver", "posting_in_carriage", S.CREATED),
        ("delivering", "posting_on_way_to_city", S.IN_DELIVERY), ("driver_pickup", None, S.IN_DELIVERY),
        ("sent_by_seller", None, S.IN_DELIVERY), ("arbitration", None, S.IN_DELIVERY),
        ("client_arbitration", None, S.IN_DELIVERY), ("not_accepted", None, S.IN_DELIVERY),
        ("delivered", "posting_received", S.DELIVERED), ("delivered", "posting_delivered", S.DELIVERED),
        ("cancelled", "posting_canceled", S.CANCELLED), ("cancelled_from_split_pending", None, S.CANCELLED),
        ("cancelled", "posting_returned_to_warehouse", S.RETURNED),
        ("delivering", "posting_returned_to_warehouse", S.RETURNED),
        ("some_future_status", None, S.CREATED),  # stored with its raw value, not quarantined
    ],
)
def test_ozon_statuses(status, substatus, expected):
    assert posting_status(status, substatus) is expected


def test_reviews_v2_utc_sku_and_no_order_or_buyer():
    first, second = (map_review(r, CTX) for r in load_fixture("ozon", "review_list_response.json")["reviews"])
    assert first.review_id == "017c0d1c-66d3-b838-3d29-cf9b95a6ac48" and first.sku == "827098843"
    assert first.rating == 4 and first.text.startswith("Пришло быстро")
    assert first.created_at == datetime(2026, 6, 3, 7, 23, 55, 970000, tzinfo=UTC)
    assert (first.pros, first.cons) == ("", "")  # Ozon no longer returns pros/cons
    assert first.order_id is None and first.buyer_key is None
    assert not first.answered and first.answer_text is None  # no comments, none fetched
    assert second.text == "" and second.rating == 2  # a rating-only review


def test_official_review_example_sends_sku_as_a_string():
    rec = map_review(load_fixture("ozon", "review_list_v2_response_official_example.json")["reviews"][0], CTX)
    assert rec.sku == "148591503" and rec.rating == 2


def _review_with(*comments: dict) -> dict:
    raw = load_fixture("ozon", "review_list_response.json")["reviews"][1]
    raw["_comments"] = list(comments)
    return raw


def test_answered_means_a_live_comment_of_the_seller():
    official = load_fixture("ozon", "review_comment_list_response.json")["comments"][0]
    # The official example is the seller's own comment, but moderation rejected it.
    assert official["is_owner"] and official["is_rejected"]
    rejected = map_review(_review_with(official), CTX)
    assert not rejected.answered and rejected.answer_text is None
    live = dict(official, is_rejected=False, is_published=True)
    rec = map_review(_review_with(official, live), CTX)
    assert rec.answered and rec.answer_text == "comment text"
    buyer = dict(live, is_owner=False, text="А где ответ?")
    assert not map_review(_review_with(buyer), CTX).answered
    newest = dict(live, text="Исправили, спасибо!")
    assert map_review(_review_with(live, buyer, newest), CTX).answer_text == "Исправили, спасибо!"


def _set(doc, path, value):
    target = doc
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()
_V4 = ("fbs_list_response.json", ("postings", 0), map_fbs_posting)
_V3 = ("fbs_list_v3_response.json", ("result", "postings", 0), map_fbs_posting)
_FBO = ("fbo_list_response.json", ("postings", 0), map_fbo_posting)
_REV = ("review_list_response.json", ("reviews", 0), map_review)


@pytest.mark.parametrize(
    ("source", "path", "bad", "reason"),
    [
        (_V4, ("in_process_at",), "not-a-date", "in_process_at"),
        (_V4, ("in_process_at",), "2026-05-14T08:00:00", "in_process_at: time without an offset"),
        (_V4, ("products", 0, "price", "amount"), "abc", r"products\[0\]\.price\.amount"),
        (_V4, ("products", 0, "price", "amount"), "-5.00", r"products\[0\]\.price\.amount"),
        (_V4, ("products", 0, "price", "currency"), "rubles", r"products\[0\]\.price\.currency"),
        (_V4, ("products", 1, "price", "currency"), "USD", "several currencies"),
        (_V4, ("products", 1, "quantity"), 0, r"products\[1\]\.quantity"),
        (_V4, ("products", 0, "sku"), None, r"products\[0\]\.sku"),
        (_V4, ("products", 0, "offer_id"), "x" * 300, r"products\[0\]\.offer_id"),
        (_V4, ("products",), [], "products"),
        (_V4, ("status",), None, "status"),
        (_V4, ("substatus",), 7, "substatus"),
        (_V4, ("customer",), "Иван Петров", "customer"),
        (_V4, ("customer", "customer_id"), "id-12345678", "customer.customer_id"),
        (_V4, ("customer", "customer_id"), 12345678.0, "customer.customer_id"),
        (_V4, ("customer", "customer_id"), True, "customer.customer_id"),
        (_V4, ("posting_number",), "", "posting_number"),
        (_V3, ("products", 0, "currency_code"), _DELETE, r"products\[0\]\.currency_code"),
        (_FBO, ("created_at",), "not-a-date", "created_at"),
        (_REV, ("rating",), 9, "rating"),
        (_REV, ("rating",), "5", "rating"),
        (_REV, ("published_at",), "yesterday", "published_at"),
        (_REV, ("sku",), 0, "sku"),
        (_REV, ("text",), ["a"], "text"),
        (_REV, ("id",), _DELETE, "id"),
    ],
)
def test_malformed_values_raise_malformed_record_naming_the_field(source, path, bad, reason):
    fixture, record_path, mapper = source
    doc = load_fixture("ozon", fixture)
    raw = doc
    for step in record_path:
        raw = raw[step]
    raw = copy.deepcopy(raw)
    _set(raw, path, bad)
    with pytest.raises(MalformedRecord, match=reason) as info:
        mapper(raw, CTX)
    if path[0] != "posting_number" and path[0] != "id":
        assert info.value.record_key in ("0208245774-0029-1", "0132112277-0101-1", "9121072335-0187-1",
                                         "017c0d1c-66d3-b838-3d29-cf9b95a6ac48")
    assert "12345678" not in info.value.reason  # a raw buyer id never reaches the quarantine reason
