"""Ozon product names: `/v3/product/info/list` by `sku`, 1,000 a request, every answer read as untrusted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from connectors.errors import FatalApiError, RetryDeferred
from connectors.ozon import OzonConnector
from connectors.ozon.catalog import MAX_SKUS, PRODUCT_INFO
from connectors.ozon.emulator import EmulatorConfig, Fault, create_app
from connectors.ozon.settings import PRODUCTION_HOSTS, OzonAccountSettings
from connectors.records import ProductName
from connectors.testing import FakeTime
from tests.conftest import load_fixture

pytestmark = pytest.mark.anyio

TOKEN, CLIENT_ID = "ozon-catalog-sentinel-key", "1943881"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BASE = "http://ozon.test"


def make(time: FakeTime, *faults: Fault) -> Any:
    return create_app(EmulatorConfig(seed=4, orders=20, reviews=10, now=NOW, clock=lambda: NOW, client_id=CLIENT_ID,
                                     token=TOKEN, faults=faults, monotonic=time.monotonic))


def connector(time: FakeTime, app: Any = None) -> OzonConnector:
    account = OzonAccountSettings(name="main", token_env="X", token=SecretStr(TOKEN), client_id=CLIENT_ID,
                                  base_urls=dict.fromkeys(PRODUCTION_HOSTS, BASE))
    transport = httpx.ASGITransport(app=app) if app is not None else None
    return OzonConnector(account, transport=transport, clock=time.monotonic, sleep=time.sleep)


def catalog_requests(app: Any) -> list[tuple[Any, int]]:
    return [(body, status) for _, path, body, status in app.state.request_log if path == PRODUCT_INFO]


async def test_names_come_in_batches_of_the_documented_thousand_skus():
    time = FakeTime()
    app = make(time)
    products = app.state.data.products
    known = [str(p.sku) for p in products]
    unknown = [str(10**12 + k) for k in range(2 * MAX_SKUS)]
    async with connector(time, app) as ozon:
        names = await ozon.product_names([*unknown[:1500], *known, *unknown[1500:], "SKU-not-a-number", known[0]])
    assert names == {str(p.sku): ProductName(p.name) for p in products}
    bodies = catalog_requests(app)
    # One kind of identifier per request (`sku`, int64 as strings, as v3GetProductInfoListRequest has
    # it), at most 1,000, every SKU once; a non-numeric SKU would make Ozon refuse a whole batch.
    assert [set(body) for body, _ in bodies] == [{"sku"}] * 3
    assert [len(body["sku"]) for body, _ in bodies] == [1000, 1000, len(known)]
    sent = [s for body, _ in bodies for s in body["sku"]]
    assert sorted(sent) == sorted({*known, *unknown}) and all(isinstance(s, str) for s in sent)
    assert all(status == 200 for _, status in bodies)


async def test_a_429_is_waited_out_and_the_names_still_come():
    time = FakeTime()
    app = make(time, Fault(PRODUCT_INFO, "rate_limit", retry_after=3))
    sku = app.state.data.products[0].sku
    async with connector(time, app) as ozon:
        names = await ozon.product_names([str(sku)])
    assert names == {str(sku): ProductName(app.state.data.products[0].name)}
    assert [status for _, status in catalog_requests(app)] == [429, 200]
    assert time.waited >= 3


async def test_a_5xx_that_outlasts_the_retries_raises_for_the_caller_to_fall_back():
    time = FakeTime()
    app = make(time, Fault(PRODUCT_INFO, "http_503", times=None))
    async with connector(time, app) as ozon:
        with pytest.raises(RetryDeferred):
            await ozon.product_names([str(app.state.data.products[0].sku)])
    assert {status for _, status in catalog_requests(app)} == {503}


async def test_nothing_to_ask_sends_nothing():
    time = FakeTime()
    app = make(time)
    async with connector(time, app) as ozon:
        assert await ozon.product_names([]) == {}
        assert await ozon.product_names(["offer-1", " 12"]) == {}
    assert catalog_requests(app) == []


def _item(sku: Any, name: Any, **more: Any) -> dict[str, Any]:
    return {"sku": sku, "name": name, **more}


async def test_an_untrusted_answer_gives_only_clean_names_of_asked_skus():
    answer = {"items": [
        _item(101, "  Кружка\nкерамическая  "),  # trimmed to one line
        _item(102, ""), _item(103, "   "), _item(104, None), _item(105, 42), _item(106, ["Тарелка"]),
        {"sku": 107}, "not an item", None,
        _item(999, "Не спрашивали"),  # a SKU nobody asked for
        _item("108", "Худи оверсайз"),  # the spec's examples write ids as strings too
        _item(1, "Товар со старым SKU", sources=[{"sku": 109, "source": "fbo"}, "junk"]),
        _item(110, "Ж" * 1000),  # capped
        _item(101, "Второе имя того же SKU"),  # the first one wins
    ]}
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(PRODUCT_INFO).respond(200, json=answer)
        async with connector(FakeTime()) as ozon:
            names = await ozon.product_names([str(s) for s in range(101, 111)])
    assert route.call_count == 1
    assert names == {"101": ProductName("Кружка керамическая"), "108": ProductName("Худи оверсайз"),
                     "109": ProductName("Товар со старым SKU"), "110": ProductName("Ж" * ProductName.NAME_MAX)}


async def test_an_answer_without_items_is_an_error_not_an_empty_catalog():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(PRODUCT_INFO).respond(200, json={"result": []})
        async with connector(FakeTime()) as ozon:
            with pytest.raises(FatalApiError, match="items"):
                await ozon.product_names(["101"])


def test_the_official_example_reads_as_its_one_product():
    from connectors.ozon.catalog import names_from_answer

    example = load_fixture("ozon", "product_info_list_response.json")
    assert names_from_answer(example, ["123456789", "5"]) == {"123456789": ProductName("Тестовый товар 123")}
    assert set(load_fixture("ozon", "product_info_list_request_official_example.json")) == {
        "offer_id", "product_id", "sku"}


async def test_the_emulator_names_a_sku_as_its_postings_do_and_knows_every_reviewed_one():
    time = FakeTime()
    app = make(time)
    data = app.state.data
    on_lines = {str(product.sku): product.name for i in range(len(data.postings))
                for product, _, _ in data.postings.lines(i)}
    reviewed = {str(data.products[data.reviews.product[i]].sku) for i in range(len(data.reviews))}
    async with connector(time, app) as ozon:
        names = await ozon.product_names(sorted({*on_lines, *reviewed}))
    assert on_lines and reviewed <= set(names)
    assert {sku: names[sku].name for sku in on_lines} == on_lines
