"""Megamarket shipments to records: the documented examples, worked by hand (megamarket.md §2.2–§2.6).

Expected figures are computed here from the payloads as the document explains them, not read back
from the mapping: per-unit items summed by offer, the delivery pseudo-item out of the total,
`depositedAmount` not the total, ISO times with +03:00 to UTC, the DBS phone hashed in E.164.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.base import MappingContext
from connectors.errors import MalformedRecord
from connectors.megamarket.client import REFUSED
from connectors.megamarket.mapping import map_shipment
from connectors.records import OrderLine, OrderStatus

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "megamarket"
CTX = MappingContext(marketplace="megamarket", account="main", buyer_key=lambda raw: f"key({raw})")


def shipment(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))["data"]["shipments"][0]


def fbs() -> dict[str, Any]:
    return shipment("order_get.response.json")


def dbs() -> dict[str, Any]:
    return shipment("order_get_dbs.response.json")


def test_the_fbs_example_is_one_delivered_unit_dated_by_its_delivery_event() -> None:
    record = map_shipment(fbs(), CTX)
    assert record.order_id == "955233218"
    assert record.status is OrderStatus.DELIVERED and record.platform_status == "DELIVERED"
    assert record.fulfilment == "fbs"
    # "creationDate": "2026-07-10T14:30:30+03:00" is 11:30:30 UTC.
    assert record.created_at == datetime(2026, 7, 10, 11, 30, 30, tzinfo=UTC)
    # The item's DELIVERED event, 2026-07-14T12:00:00+03:00, dates the status; it is also the last change.
    assert record.status_changed_at == datetime(2026, 7, 14, 9, 0, tzinfo=UTC)
    assert record.updated_at == datetime(2026, 7, 14, 9, 0, tzinfo=UTC)
    # price 3290, discount 300: the buyer paid finalPrice 2990 (integer roubles).
    assert record.total == Decimal("2990.00") and record.currency == "RUB"
    assert record.lines == (OrderLine(sku="100028184590", offer_id="SKU-427086", name="Лампа настольная",
                                      quantity=1, price=Decimal("2990")),)
    assert record.buyer_key is None  # FBS: "customer": null (§2.6)
    assert record.returned_total == 0


def test_the_dbs_example_sums_its_units_by_offer_and_leaves_the_delivery_line_out() -> None:
    record = map_shipment(dbs(), CTX)
    # Three units of KETTLE-17-STEEL at 2490 and the "delivery" pseudo-line at 500: depositedAmount
    # 7970 = 3 × 2490 + 500 is what the buyer paid; the goods total is 7470.
    assert record.total == Decimal("7470")
    assert record.lines == (OrderLine(sku="100030000001", offer_id="KETTLE-17-STEEL",
                                      name="Чайник электрический 1,7 л, сталь", quantity=3, price=Decimal("2490")),)
    assert sum(line.price * line.quantity for line in record.lines) == record.total
    assert record.status is OrderStatus.CREATED and record.fulfilment == "dbs"
    assert record.created_at == datetime(2026, 7, 10, 13, 12, 28, tzinfo=UTC)
    assert record.status_changed_at is None  # no event dates CONFIRMED: the store stamps first sight
    # "79990001122" (11 digits, no plus) is hashed as +79990001122.
    assert record.buyer_key == "key(+79990001122)"


def test_a_buyer_is_one_member_whatever_form_the_phone_takes() -> None:
    keys = set()
    for phone in ("79990001122", "+79990001122", "89990001122", "+7 (999) 000-11-22", "8 999 000 11 22",
                  "9990001122"):
        raw = dbs()
        raw["customer"]["phone"] = phone
        keys.add(map_shipment(raw, CTX).buyer_key)
    assert keys == {"key(+79990001122)"}


@pytest.mark.parametrize("customer", [None, {}, {"phone": ""}, {"phone": "12345"}, {"phone": None}])
def test_no_usable_phone_means_no_member(customer: Any) -> None:
    raw = dbs()
    raw["customer"] = customer
    assert map_shipment(raw, CTX).buyer_key is None


def test_an_fbs_shipment_with_a_phone_has_a_member() -> None:
    raw = fbs()
    raw["customer"] = {"phone": "79991234567", "email": "", "comment": ""}
    assert map_shipment(raw, CTX).buyer_key == "key(+79991234567)"


def test_no_name_phone_email_or_address_reaches_the_record() -> None:
    raw = dbs()
    raw["customer"]["email"] = "olga@example.com"
    hashed = MappingContext(marketplace="megamarket", account="main",
                            buyer_key=lambda value: hashlib.sha256(value.encode()).hexdigest())
    text = repr(map_shipment(raw, hashed))
    for personal in ("Смирнова", "79990001122", "olga@example.com", "Профсоюзная", "Позвоните"):
        assert personal not in text


# Every status a source names, in the export's words, written out here (§2.2 and a client's union).
EXPORT = {"NEW": "created", "PENDING": "created", "PENDING_CONFIRMATION": "created", "CONFIRMED": "created",
          "PENDING_PACKING": "created", "PACKED": "created", "PACKING_EXPIRED": "created",
          "PENDING_SHIPPING": "in_delivery", "SHIPPED": "in_delivery", "SHIPPING_EXPIRED": "created",
          "DELIVERED": "delivered", "MERCHANT_CANCELED": "cancelled", "CUSTOMER_CANCELED": "cancelled"}


@pytest.mark.parametrize(("word", "expected"), sorted(EXPORT.items()))
def test_every_shipment_status_is_mapped(word: str, expected: str) -> None:
    raw = dbs()
    raw["status"] = word
    for item in raw["items"]:
        item["status"] = word
    assert map_shipment(raw, CTX).status.value == expected


def test_an_undocumented_status_is_quarantined_with_its_shipment_id() -> None:
    raw = dbs()
    raw["status"] = "AWAITING_FRAUD_CHECK"
    with pytest.raises(MalformedRecord, match="AWAITING_FRAUD_CHECK") as caught:
        map_shipment(raw, CTX)
    assert caught.value.record_key == "9324007712345"


def _event(name: str, at: str) -> dict[str, str]:
    return {"eventDate": at, "eventName": name, "eventValue": ""}


def _delivered_kettles() -> dict[str, Any]:
    raw = dbs()
    raw["status"] = "DELIVERED"
    for item in raw["items"]:
        item["status"] = "DELIVERED"
        item["events"] = [_event("DELIVERED", "2026-07-14T15:00:00+03:00")]
    return raw


def test_a_unit_cancelled_before_delivery_was_never_bought() -> None:
    raw = _delivered_kettles()
    raw["items"][2].update(status="MERCHANT_CANCELED",
                           events=[_event("MERCHANT_CANCELED", "2026-07-10T18:00:00+03:00")])
    record = map_shipment(raw, CTX)
    assert record.status is OrderStatus.DELIVERED and record.returned_total == 0
    assert record.total == Decimal(2 * 2490)
    assert [(line.offer_id, line.quantity) for line in record.lines] == [("KETTLE-17-STEEL", 2)]


def test_a_unit_cancelled_after_its_delivery_is_a_partial_return() -> None:
    raw = _delivered_kettles()
    raw["items"][1].update(status="CUSTOMER_CANCELED", events=[
        _event("DELIVERED", "2026-07-14T15:00:00+03:00"), _event("CUSTOMER_CANCELED", "2026-07-20T11:00:00+03:00")])
    record = map_shipment(raw, CTX)
    assert record.status is OrderStatus.PARTIALLY_RETURNED
    assert record.total == Decimal(3 * 2490) and record.returned_total == Decimal(2490)
    assert record.status_changed_at == datetime(2026, 7, 20, 8, 0, tzinfo=UTC)  # the return's event


def test_every_unit_back_after_delivery_is_a_return() -> None:
    raw = _delivered_kettles()
    raw["status"] = "CUSTOMER_CANCELED"
    for item in raw["items"]:
        item.update(status="CUSTOMER_CANCELED", events=[
            _event("DELIVERED", "2026-07-14T15:00:00+03:00"), _event("CUSTOMER_CANCELED", "2026-07-21T10:00:00+03:00")])
    record = map_shipment(raw, CTX)
    assert record.status is OrderStatus.RETURNED
    assert record.total == record.returned_total == Decimal(3 * 2490)


def test_a_shipment_cancelled_before_delivery_keeps_what_was_ordered() -> None:
    raw = dbs()
    raw["status"] = "CUSTOMER_CANCELED"
    for item in raw["items"]:
        item.update(status="CUSTOMER_CANCELED", events=[_event("CUSTOMER_CANCELED", "2026-07-11T09:30:00+03:00")])
    record = map_shipment(raw, CTX)
    assert record.status is OrderStatus.CANCELLED and record.returned_total == 0
    assert record.total == Decimal(7470)
    assert record.status_changed_at == datetime(2026, 7, 11, 6, 30, tzinfo=UTC)


def test_units_of_one_offer_at_different_prices_keep_the_total_exact() -> None:
    raw = dbs()
    raw["items"][0]["finalPrice"] = 2290  # one kettle 200 roubles cheaper (its own discount)
    record = map_shipment(raw, CTX)
    assert record.total == Decimal(2290 + 2 * 2490)
    assert sorted((line.price, line.quantity) for line in record.lines) == [(Decimal(2290), 1), (Decimal(2490), 2)]
    assert sum(line.price * line.quantity for line in record.lines) == record.total


def test_the_delivery_line_is_matched_on_its_offer_id_not_its_flag() -> None:
    raw = dbs()
    del raw["items"][3]["goodsData"]["isDelivery"]  # §2.3: the flag is UNCONFIRMED
    assert map_shipment(raw, CTX).total == Decimal(7470)


@pytest.mark.parametrize(("field", "value"), [("finalPrice", "2490"), ("finalPrice", 2490.5), ("finalPrice", -1),
                                              ("finalPrice", None), ("quantity", 0), ("offerId", "")])
def test_an_item_that_does_not_fit_quarantines_its_shipment(field: str, value: Any) -> None:
    raw = dbs()
    raw["items"][0][field] = value
    with pytest.raises(MalformedRecord) as caught:
        map_shipment(raw, CTX)
    assert caught.value.record_key == "9324007712345"


def test_a_whole_number_sent_as_a_float_is_the_same_amount() -> None:
    raw = dbs()
    for item in raw["items"]:
        item["finalPrice"] = float(item["finalPrice"])
    assert map_shipment(raw, CTX).total == Decimal(7470)


@pytest.mark.parametrize("value", ["2026-07-10T16:12:28", "10.07.2026 16:12", None, "not-a-date"])
def test_a_creation_time_without_an_offset_is_not_guessed(value: Any) -> None:
    raw = copy.deepcopy(dbs())
    raw["creationDate"] = value
    with pytest.raises(MalformedRecord, match="creationDate"):
        map_shipment(raw, CTX)


def test_a_numeric_shipment_id_is_the_same_id() -> None:
    raw = fbs()
    raw["shipmentId"] = 955233218
    assert map_shipment(raw, CTX).order_id == "955233218"


def test_a_shipment_order_get_refused_is_quarantined_with_megamarket_s_words() -> None:
    with pytest.raises(MalformedRecord, match="order/get refused this shipment \\(shipment not available\\)") as caught:
        map_shipment({"shipmentId": "955233218", REFUSED: "shipment not available"}, CTX)
    assert caught.value.record_key == "955233218"
