"""Kaspi.kz payloads (tests/fixtures/kaspi, the doc's own examples) -> records, and the traps of
kaspi.md §3 and §7 worked by hand: ms epochs, Almaty midnight, tenge floats, two phone forms,
statuses that depend on the state, a status no document names."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.base import MappingContext
from connectors.errors import MalformedRecord
from connectors.kaspi.client import from_epoch_ms, to_epoch_ms
from connectors.kaspi.mapping import buyer_phone, map_order, order_status
from connectors.records import OrderStatus
from store.identity import buyer_key_hasher
from tests.conftest import load_fixture

HASH = buyer_key_hasher(b"salt" * 8, "kaspi")
CTX = MappingContext(marketplace="kaspi", account="main", buyer_key=HASH)
ALMATY = timezone(timedelta(hours=5))  # UTC+5 since 2024-03-01


def listed_order() -> dict:
    """The doc's list example, as the client hands it on: the order with its included entries."""
    page = load_fixture("kaspi", "orders_list.response.json")
    order = copy.deepcopy(page["data"][0])
    included = {(i["type"], i["id"]): i for i in page["included"]}
    order["_entries"] = [included.get((r["type"], r["id"])) for r in order["relationships"]["entries"]["data"]]
    return order


def test_the_docs_list_example_maps_to_the_figures_it_shows():
    record = map_order(listed_order(), CTX)
    assert record.order_id == "496149022"  # `code`: the order number the seller sees in the cabinet
    # 1739349620761 ms = 2025-02-12 08:40:20.761 UTC (13:40:20.761 in Almaty), worked by hand.
    assert record.created_at == datetime(2025, 2, 12, 8, 40, 20, 761000, tzinfo=UTC)
    # approvedByBankDate 1739349626600 is the latest date that has happened.
    assert record.updated_at == datetime(2025, 2, 12, 8, 40, 26, 600000, tzinfo=UTC)
    assert (record.total, record.currency) == (Decimal("2000.00"), "KZT")
    assert record.status is OrderStatus.CREATED  # accepted, waiting in PICKUP for the buyer
    assert record.platform_status == "PICKUP/ACCEPTED_BY_MERCHANT"
    assert record.fulfilment == "seller"  # isKaspiDelivery false
    assert record.status_changed_at is None  # Kaspi dates no status: the store dates it when first seen
    # The example names two entries and includes one: the order keeps that line, and is not lost.
    assert [(ln.sku, ln.name, ln.quantity, ln.price) for ln in record.lines] == \
        [("259204", "Линейка", 1, Decimal("1000.00"))]
    assert record.buyer_key == HASH("+77000000000")


def test_no_phone_name_or_customer_id_reaches_the_record():
    order = listed_order()
    order["attributes"]["customer"].update(cellPhone="7071234567", firstName="Айгерим", lastName="Сапарова")
    shown = repr(map_order(order, CTX))
    for value in ("7071234567", "Айгерим", "Сапарова", order["attributes"]["customer"]["id"]):
        assert value not in shown


@pytest.mark.parametrize("form", ["7071234567", "77071234567", "87071234567", "+7 707 123-45-67", 7071234567])
def test_every_form_of_one_phone_is_one_buyer(form):
    # "10 digits in the doc, 11 digits 77… seen by a client" (kaspi.md §3): one buyer, one member.
    assert buyer_phone(form) == "+77071234567"
    order = listed_order()
    order["attributes"]["customer"]["cellPhone"] = form
    assert map_order(order, CTX).buyer_key == HASH("+77071234567")


@pytest.mark.parametrize("form", ["", "12345", "707123456789", None, True, {"n": 1}])
def test_what_is_no_phone_falls_back_to_the_customer_id(form):
    order = listed_order()
    order["attributes"]["customer"]["cellPhone"] = form
    assert buyer_phone(form) is None
    assert map_order(order, CTX).buyer_key == HASH("id:NzA3NjgyODAwNg")


@pytest.mark.parametrize(("state", "status", "expected"), [
    ("NEW", "APPROVED_BY_BANK", OrderStatus.CREATED),
    ("SIGN_REQUIRED", "APPROVED_BY_BANK", OrderStatus.CREATED),
    ("PICKUP", "ACCEPTED_BY_MERCHANT", OrderStatus.CREATED),
    ("DELIVERY", "ACCEPTED_BY_MERCHANT", OrderStatus.IN_DELIVERY),
    ("KASPI_DELIVERY", "ACCEPTED_BY_MERCHANT", OrderStatus.IN_DELIVERY),
    ("ARCHIVE", "COMPLETED", OrderStatus.DELIVERED),
    ("KASPI_DELIVERY", "CANCELLING", OrderStatus.CANCELLED),
    ("ARCHIVE", "CANCELLED", OrderStatus.CANCELLED),
    ("ARCHIVE", "RETURNED", OrderStatus.RETURNED),
    ("KASPI_DELIVERY", "KASPI_DELIVERY_RETURN_REQUESTED", OrderStatus.RETURNED),
    ("ARCHIVE", "RETURN_ACCEPTED_BY_MERCHANT", OrderStatus.RETURNED),
])
def test_the_state_is_part_of_the_status(state, status, expected):
    assert order_status(state, status) is expected
    order = listed_order()
    order["attributes"].update(state=state, status=status)
    assert map_order(order, CTX).status is expected


def test_a_status_no_document_names_is_quarantined_with_the_reason():
    order = listed_order()
    order["attributes"]["status"] = "PARTNER_REVIEW_PENDING"
    with pytest.raises(MalformedRecord, match="unknown Kaspi status 'PARTNER_REVIEW_PENDING'") as caught:
        map_order(order, CTX)
    assert caught.value.record_key == "496149022"  # the order number the seller looks up


@pytest.mark.parametrize(("served", "stored"), [
    (2000.0, "2000.00"), (1999.9, "1999.90"), (0.1 + 0.2, "0.30"), (12345.67, "12345.67"), (5990, "5990.00"),
])
def test_tenge_floats_are_exact_to_the_tiyn(served, stored):
    order = listed_order()
    order["attributes"]["totalPrice"] = served
    assert map_order(order, CTX).total == Decimal(stored)


@pytest.mark.parametrize("served", ["2000.0", None, True, -1.0, float("nan")])
def test_a_total_that_is_not_an_amount_is_quarantined(served):
    order = listed_order()
    order["attributes"]["totalPrice"] = served
    with pytest.raises(MalformedRecord, match="totalPrice"):
        map_order(order, CTX)


def test_almaty_midnight_is_the_instant_it_names():
    # Kaspi: "filter values in ms; all dates in the Almaty timezone" (kaspi.md §7). Epoch ms are
    # instants: 2026-03-02 00:00 in Almaty is 2026-03-01 19:00 UTC, on both sides of the conversion.
    midnight = datetime(2026, 3, 2, tzinfo=ALMATY)
    ms = 1772391600000  # 2026-03-01T19:00Z: 20,513 days × 86,400 s + 19 h, in ms
    assert to_epoch_ms(midnight) == ms and from_epoch_ms(ms) == midnight
    assert from_epoch_ms(ms - 1) == datetime(2026, 3, 1, 18, 59, 59, 999000, tzinfo=UTC)
    order = listed_order()
    order["attributes"].update(creationDate=ms, approvedByBankDate=ms + 5000)
    assert map_order(order, CTX).created_at == datetime(2026, 3, 1, 19, 0, tzinfo=UTC)


@pytest.mark.parametrize("served", ["1739349620761", 1739349620.761, None, 0])
def test_a_creation_date_that_is_not_epoch_ms_is_quarantined(served):
    order = listed_order()
    order["attributes"]["creationDate"] = served
    with pytest.raises(MalformedRecord, match="creationDate"):
        map_order(order, CTX)


def test_a_kaspi_delivery_order_is_the_marketplaces_to_ship_and_dated_by_the_banks_approval():
    order = copy.deepcopy(load_fixture("kaspi", "order_by_code_kaspi_delivery.response.json")["data"][0])
    record = map_order(order, CTX)
    assert record.fulfilment == "marketplace"
    assert record.status is OrderStatus.CANCELLED and record.platform_status == "KASPI_DELIVERY/CANCELLING"
    assert record.total == Decimal("5990.00")
    # approvedByBankDate 1745691163161 = 2025-04-26 18:12:43.161 UTC (20,204 days × 86,400 s + 65,563.161 s).
    assert record.updated_at == datetime(2025, 4, 26, 18, 12, 43, 161000, tzinfo=UTC)
