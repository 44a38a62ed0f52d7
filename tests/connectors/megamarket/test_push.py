"""Megamarket's pushes (megamarket.md §2.4) read into the records the poll makes, on the documented
DBS `order/new` body (tests/fixtures/megamarket/order_new_dbs.push.request.json), worked by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.base import MappingContext
from connectors.errors import MalformedRecord
from connectors.megamarket.mapping import map_shipment
from connectors.megamarket.push import PUSH_SOURCE_RANK, parse_push, push_reply
from connectors.records import OrderStatus

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "megamarket"
CTX = MappingContext(marketplace="megamarket", account="main", buyer_key=lambda raw: f"key({raw})")


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_order_new_is_the_same_order_the_poll_reads() -> None:
    notice = parse_push("new", load("order_new_dbs.push.request.json"), CTX)
    assert notice.shipment_ids == ("9324007712345",) and not notice.problems
    (pushed,) = notice.records
    # The push's three kettles at 2490 and its delivery at 500: goods 7470, as order/get's example.
    assert pushed.total == Decimal(7470) and pushed.status is OrderStatus.CREATED
    assert [(line.sku, line.offer_id, line.name, line.quantity, line.price) for line in pushed.lines] == [
        ("100030000001", "KETTLE-17-STEEL", "Чайник электрический 1,7 л, сталь", 3, Decimal(2490))]
    assert pushed.created_at == datetime(2026, 7, 10, 13, 12, 28, tzinfo=UTC)  # shipmentDate +03:00
    assert pushed.fulfilment == "dbs"  # handover.serviceScheme
    assert pushed.buyer_key == "key(+79990001122)"
    # The shipment order/get returns for the same id is the same order, ranked above the push.
    polled = map_shipment(load("order_get_dbs.response.json")["data"]["shipments"][0], CTX)
    same = ("order_id", "created_at", "total", "lines", "buyer_key", "fulfilment", "currency")
    assert {f: getattr(pushed, f) for f in same} == {f: getattr(polled, f) for f in same}
    assert pushed.source == "push" and pushed.source_rank == PUSH_SOURCE_RANK < polled.source_rank


def test_every_shipment_of_a_push_is_read_not_only_the_first() -> None:
    body = load("order_new_dbs.push.request.json")
    second = json.loads(json.dumps(body["data"]["shipments"][0]))
    second["shipmentId"] = "9324007799999"
    body["data"]["shipments"].append(second)
    notice = parse_push("new", body, CTX)
    assert notice.shipment_ids == ("9324007712345", "9324007799999")
    assert [r.order_id for r in notice.records] == ["9324007712345", "9324007799999"]


def test_a_shipment_that_does_not_fit_is_set_aside_and_the_rest_read() -> None:
    body = load("order_new_dbs.push.request.json")
    broken = json.loads(json.dumps(body["data"]["shipments"][0]))
    broken["shipmentId"] = "777"
    broken["items"][0]["finalPrice"] = "2490"
    body["data"]["shipments"].insert(0, broken)
    notice = parse_push("new", body, CTX)
    assert notice.shipment_ids == ("777", "9324007712345")
    assert [r.order_id for r in notice.records] == ["9324007712345"]
    assert [p.record_key for p in notice.problems] == ["777"]


def test_order_cancel_names_its_shipments_for_the_poll_to_read() -> None:
    # Its body is not documented (§2.4): only the envelope and the ids are read.
    notice = parse_push("cancel", {"meta": {}, "data": {"shipments": [{"shipmentId": "9324007712345",
                                                                       "items": [{"itemIndex": "1"}]}]}}, CTX)
    assert notice.shipment_ids == ("9324007712345",) and notice.records == ()


@pytest.mark.parametrize("body", [None, [], {"data": {}}, {"data": {"shipments": "x"}}])
def test_a_body_that_is_not_the_envelope_is_refused(body: Any) -> None:
    with pytest.raises(MalformedRecord, match="data.shipments"):
        parse_push("new", body, CTX)


def test_the_reply_is_the_one_megamarket_expects() -> None:
    assert push_reply(True) == load("order_new.push.response.json")
    assert push_reply(False)["success"] == 0
