"""Avito payloads (tests/fixtures/avito, the official spec's examples) -> records, worked by hand
from avito.md §3, §4, §7: the goods' total after discounts (not the seller's payout), statuses,
ISO and unix times, a review about the seller with no order or buyer, moderated answers."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.avito.mapping import STATUSES, map_order, map_review
from connectors.base import MappingContext
from connectors.errors import MalformedRecord
from connectors.records import OrderStatus
from store.identity import buyer_key_hasher
from tests.conftest import load_fixture

HASH = buyer_key_hasher(b"salt" * 8, "avito")
CTX = MappingContext(marketplace="avito", account="main", buyer_key=HASH)


def order() -> dict:
    return copy.deepcopy(load_fixture("avito", "orders.response.json")["orders"][0])


def review() -> dict:
    return copy.deepcopy(load_fixture("avito", "reviews.response.json")["reviews"][0])


def test_the_spec_example_order_maps_to_the_goods_the_buyer_paid_for():
    record = map_order(order(), CTX)
    assert record.order_id == "50000000000000000"
    assert record.created_at == datetime(2026, 7, 10, 11, 44, 39, tzinfo=UTC)
    assert record.updated_at == datetime(2026, 7, 14, 8, 12, 3, tzinfo=UTC)
    # 2 × 500 − the item's discountSum 20 = 980: not `prices.total` (960), the seller's payout
    # after Avito's commission (avito.md §3).
    assert (record.total, record.currency) == (Decimal(980), "RUB")
    assert [(ln.sku, ln.offer_id, ln.name, ln.quantity, ln.price) for ln in record.lines] == \
        [("132768483", "2799377316", "Кеды Venice", 2, Decimal(500))]
    assert record.status is OrderStatus.DELIVERED and record.platform_status == "delivered"
    assert record.fulfilment == "marketplace"  # pvz: Avito Доставка
    assert record.buyer_key is None and record.status_changed_at is None


def test_the_buyer_is_the_hashed_messenger_user_and_nothing_else():
    raw = order()
    raw["_buyer_user_id"] = 94235311
    assert map_order(raw, CTX).buyer_key == HASH("user:94235311")


@pytest.mark.parametrize(("word", "expected"), [
    ("on_confirmation", "created"), ("ready_to_ship", "created"), ("in_transit", "in_delivery"),
    ("delivered", "delivered"), ("closed", "delivered"), ("canceled", "cancelled"), ("on_return", "returned"),
    ("in_dispute", "returned"),
])
def test_every_documented_status_is_mapped(word, expected):
    raw = order()
    raw["status"] = word
    assert map_order(raw, CTX).status.value == expected
    assert set(STATUSES) == {"on_confirmation", "ready_to_ship", "in_transit", "canceled", "delivered", "on_return",
                             "in_dispute", "closed"}  # the eight of avito.md §3


def test_an_unknown_status_is_quarantined_with_the_reason():
    raw = order()
    raw["status"] = "awaiting_courier"
    with pytest.raises(MalformedRecord, match="unknown Avito status 'awaiting_courier'") as caught:
        map_order(raw, CTX)
    assert caught.value.record_key == "50000000000000000"


@pytest.mark.parametrize(("price", "discount", "total"), [(499.9, 0.9, "998.9"), (1000, 0, "2000"), (0.1, 0, "0.2")])
def test_kopecks_are_exact(price, discount, total):
    raw = order()
    raw["items"][0]["prices"].update(price=price, discountSum=discount)
    assert map_order(raw, CTX).total == Decimal(total)


def test_a_review_is_about_the_seller_with_no_order_or_buyer():
    record = map_review(review(), CTX)
    assert (record.review_id, record.sku, record.rating) == ("92312343", "1234567", 5)
    assert record.created_at == datetime(2019, 10, 21, 10, 34, tzinfo=UTC)  # 1571654040, unix seconds
    assert record.product_name == "Кеды Venice" and record.order_id is None and record.buyer_key is None
    assert record.answered and record.answer_text == "Спасибо за отзыв!"
    assert "Владимир" not in repr(record)  # the sender's name is not kept


@pytest.mark.parametrize(("status", "answered"), [("moderation", True), ("published", True), ("rejected", False)])
def test_an_answer_counts_unless_moderation_rejected_it(status, answered):
    raw = review()
    raw["answer"]["status"] = status
    assert map_review(raw, CTX).answered is answered


@pytest.mark.parametrize(("field", "value"), [("score", 6), ("score", "5"), ("createdAt", "2019-10-21"), ("id", "x")])
def test_a_review_that_does_not_fit_is_quarantined(field, value):
    raw = review()
    raw[field] = value
    with pytest.raises(MalformedRecord):
        map_review(raw, CTX)
