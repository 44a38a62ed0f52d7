"""The product-name cache: filled with each page from order lines and reviews, newest name wins,
garbage never stored; the catalog's names saved the same way; the SKUs still to look up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from connectors.records import OrderLine, OrderRecord, OrderStatus, ProductName, ReviewRecord
from store import PageWrite, Store
from store.products import PRODUCTS, save_catalog_names, unnamed_review_skus
from store.store import StreamKey

T0 = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
ORDERS, REVIEWS = StreamKey("ozon", "main", "orders_fbs"), StreamKey("ozon", "main", "reviews")


def order(order_id: str, *lines: tuple[str, str | None], at: datetime = T0, mp: str = "ozon",
          account: str = "main", updated: datetime | None = None) -> OrderRecord:
    return OrderRecord(
        marketplace=mp, account=account, order_id=order_id, created_at=at, updated_at=updated or at,
        status=OrderStatus.CREATED, platform_status="awaiting_packaging", fulfilment="fbs", currency="RUB",
        total=Decimal("100.00"), lines=tuple(OrderLine(sku, sku, name, 1, Decimal("100.00")) for sku, name in lines))


def review(review_id: str, sku: str, *, name: str | None = None, brand: str | None = None, at: datetime = T0,
           answered: bool = False, mp: str = "ozon") -> ReviewRecord:
    return ReviewRecord(marketplace=mp, account="main", review_id=review_id, sku=sku, rating=5, text="", pros="",
                        cons="", created_at=at, answered=answered, answer_text=None, product_name=name, brand=brand)


def cache(store: Store) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    c = PRODUCTS.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(c.marketplace, c.account, c.sku, c.name, c.brand, c.source, c.updated_at))
        return {(mp, acct, sku): (name, brand, source, at) for mp, acct, sku, name, brand, source, at in rows}


def test_order_lines_and_reviews_name_their_skus_as_pages_are_written(store: Store):
    store.write_page(ORDERS, PageWrite(orders=[
        order("p-1", ("101", "  Кружка\nкерамическая "), ("102", None), ("103", "   ")),
        order("p-2", ("101", "Кружка керамическая"), ("104", "Тарелка"), mp="yandex_market"),
    ]), now=T0)
    store.write_page(StreamKey("wildberries", "main", "reviews"), PageWrite(reviews=[
        review("w-1", "777", name="Худи оверсайз", brand="Бренд", mp="wildberries"),
        review("w-2", "778", name="", brand="Бренд", mp="wildberries"),  # no name: nothing cached
    ]), now=T0)
    assert cache(store) == {
        ("ozon", "main", "101"): ("Кружка керамическая", None, "order", T0),
        ("yandex_market", "main", "101"): ("Кружка керамическая", None, "order", T0),
        ("yandex_market", "main", "104"): ("Тарелка", None, "order", T0),
        ("wildberries", "main", "777"): ("Худи оверсайз", "Бренд", "review", T0),
    }


def test_the_newest_name_wins_whatever_order_pages_and_streams_come_in(store: Store):
    renamed = order("p-new", ("101", "Кружка 350 мл, белая"), at=T0 + 2 * HOUR)
    store.write_page(ORDERS, PageWrite(orders=[renamed]), now=T0)
    # Older records written later (a backfill, another stream, a lookback re-read) change nothing.
    store.write_pages(ORDERS, [PageWrite(orders=[order("p-old", ("101", "Кружка"), at=T0)]),
                               PageWrite(orders=[order("p-older", ("101", "Кружка старая"), at=T0 - HOUR)])], now=T0)
    store.write_page(REVIEWS, PageWrite(reviews=[review("r-1", "101", name="Кружка из отзыва", at=T0 + HOUR)]),
                     now=T0)
    assert cache(store)[("ozon", "main", "101")] == ("Кружка 350 мл, белая", None, "order", T0 + 2 * HOUR)
    # A newer review renames it and brings a brand, which a later line without one keeps.
    store.write_page(REVIEWS, PageWrite(reviews=[review("r-2", "101", name="Кружка «Утро»", brand="Гончар",
                                                        at=T0 + 3 * HOUR)]), now=T0)
    store.write_page(ORDERS, PageWrite(orders=[order("p-3", ("101", "Кружка «Утро» 350 мл"), at=T0 + 4 * HOUR)]),
                     now=T0)
    assert cache(store)[("ozon", "main", "101")] == ("Кружка «Утро» 350 мл", "Гончар", "order", T0 + 4 * HOUR)
    # An old order that changes now (delivered, returned) still carries the name it was placed with.
    store.write_page(ORDERS, PageWrite(orders=[order("p-old", ("101", "Кружка"), at=T0,
                                                     updated=T0 + 9 * HOUR)]), now=T0)
    assert cache(store)[("ozon", "main", "101")][0] == "Кружка «Утро» 350 мл"
    # Within one write, too, the newest record of a SKU gives its name.
    store.write_page(ORDERS, PageWrite(orders=[order("q-2", ("201", "Новое"), at=T0 + HOUR),
                                               order("q-1", ("201", "Старое"), at=T0)]), now=T0)
    assert cache(store)[("ozon", "main", "201")][0] == "Новое"


def test_catalog_names_are_cleaned_saved_and_newer_than_what_was_synced(store: Store):
    store.write_page(ORDERS, PageWrite(orders=[order("p-1", ("101", "Кружка"))]), now=T0)
    names: dict[Any, Any] = {
        "101": ProductName("Кружка 350 мл"), "102": ProductName("  Тарелка\n"), "103": ProductName("   "),
        "104": "not a ProductName", "x" * 129: ProductName("too long a SKU for the column"),
    }
    assert save_catalog_names(store.engine, "ozon", "main", names, T0 + HOUR) == 2
    assert cache(store) == {("ozon", "main", "101"): ("Кружка 350 мл", None, "catalog", T0 + HOUR),
                            ("ozon", "main", "102"): ("Тарелка", None, "catalog", T0 + HOUR)}


def test_the_skus_to_look_up_are_those_of_unanswered_reviews_nothing_names(store: Store):
    store.write_page(ORDERS, PageWrite(orders=[order("p-1", ("101", "Кружка"))]), now=T0)
    store.write_page(REVIEWS, PageWrite(reviews=[
        review("r-1", "101"),  # cached from the order line
        review("r-2", "102"), review("r-3", "102"),  # asked once
        review("r-4", "103", answered=True),  # answered: no reply to name it in
        review("r-5", "104", name="  "),  # a blank own name is no name
    ]), now=T0)
    store.write_page(StreamKey("yandex_market", "main", "reviews"), PageWrite(reviews=[
        review("m-1", "SKU-A", mp="yandex_market"),
        review("m-2", "SKU-B", mp="yandex_market", name="Лампа"),  # names itself (and is cached by it)
    ]), now=T0)
    assert unnamed_review_skus(store.engine) == {("ozon", "main"): ["102", "104"],
                                                 ("yandex_market", "main"): ["SKU-A"]}
    save_catalog_names(store.engine, "ozon", "main", {"102": ProductName("Тарелка")}, T0)
    assert unnamed_review_skus(store.engine) == {("ozon", "main"): ["104"], ("yandex_market", "main"): ["SKU-A"]}
