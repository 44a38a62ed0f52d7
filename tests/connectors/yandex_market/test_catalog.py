"""Yandex Market product names: `…/offer-mappings` by `offerIds`, 100 a request, read as untrusted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from connectors.errors import FatalApiError, RetryDeferred
from connectors.records import ProductName
from connectors.testing import FakeTime
from connectors.yandex_market import YandexMarketConnector
from connectors.yandex_market.catalog import MAX_OFFER_IDS
from connectors.yandex_market.emulator import EmulatorConfig, Fault, create_app
from connectors.yandex_market.emulator_catalog import VENDORS
from connectors.yandex_market.emulator_orders import OFFERS
from connectors.yandex_market.limits import endpoint_groups
from connectors.yandex_market.settings import PRODUCTION_HOSTS, YandexMarketAccountSettings

pytestmark = pytest.mark.anyio

TOKEN, BUSINESS = "ym-catalog-sentinel-token", 12345
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BASE = "http://market.test"
MAPPINGS = f"/v2/businesses/{BUSINESS}/offer-mappings"
CATALOG = {f"SKU-{stem}": ProductName(name, vendor) for (stem, name, _), vendor in zip(OFFERS, VENDORS, strict=True)}


def make(time: FakeTime, *faults: Fault, **config: Any) -> Any:
    config = {"seed": 4, "business_id": BUSINESS, "orders": 20, "reviews": 10, "now": NOW, "clock": lambda: NOW,
              "token": TOKEN, **config}
    return create_app(EmulatorConfig(faults=faults, monotonic=time.monotonic, **config))


def connector(time: FakeTime, app: Any = None) -> YandexMarketConnector:
    account = YandexMarketAccountSettings(name="main", token_env="X", token=SecretStr(TOKEN), business_id=BUSINESS,
                                          base_urls=dict.fromkeys(PRODUCTION_HOSTS, BASE))
    transport = httpx.ASGITransport(app=app) if app is not None else None
    return YandexMarketConnector(account, transport=transport, clock=time.monotonic, sleep=time.sleep)


def test_names_are_paced_by_their_own_per_minute_group():
    group = next(g for g in endpoint_groups(BUSINESS) if g.matches("api", MAPPINGS))
    assert (group.name, group.rate.requests, group.rate.period_seconds) == ("offer_mappings", 100, 60.0)


async def test_names_come_in_batches_of_the_documented_hundred_offer_ids():
    time = FakeTime()
    app = make(time)
    unknown = [f"GONE-{k}" for k in range(230)]
    async with connector(time, app) as market:
        names = await market.product_names([*unknown[:150], *CATALOG, *unknown[150:], "SKU-LAMP-G4", " padded"])
    assert names == CATALOG  # the brand is the offer's `vendor`, absent for one offer
    requests = app.state.offer_mapping_requests
    # `offerIds` alone, no page token, limit or filter ("такой список возвращается только целиком").
    assert [query for query, _ in requests] == [{}] * 3
    assert [set(body) for _, body in requests] == [{"offerIds"}] * 3
    assert [len(body["offerIds"]) for _, body in requests] == [MAX_OFFER_IDS, MAX_OFFER_IDS, 230 + len(CATALOG) - 200]
    sent = [o for _, body in requests for o in body["offerIds"]]
    assert sorted(sent) == sorted({*unknown, *CATALOG})


async def test_a_420_is_waited_out_and_the_names_still_come():
    time = FakeTime()
    app = make(time, Fault(MAPPINGS, "rate_limit", retry_after=20))
    async with connector(time, app) as market:
        names = await market.product_names(["SKU-KETTLE-17"])
    assert names == {"SKU-KETTLE-17": CATALOG["SKU-KETTLE-17"]}
    assert app.state.stats.throttled["offer_mappings"] == 1 and app.state.stats.statuses[200] == 1
    assert time.waited >= 20


async def test_a_spent_budget_or_a_lasting_5xx_raises_for_the_caller_to_fall_back():
    time = FakeTime()
    app = make(time, Fault(MAPPINGS, "rate_limit", retry_after=3600))  # far past the client's wait cap
    async with connector(time, app) as market:
        with pytest.raises(RetryDeferred):
            await market.product_names(["SKU-KETTLE-17"])
    app = make(time, Fault(MAPPINGS, "http_500", times=None))
    async with connector(time, app) as market:
        with pytest.raises(RetryDeferred):
            await market.product_names(["SKU-KETTLE-17"])
    assert app.state.stats.statuses[500] > 1 and not app.state.stats.statuses[200]


async def test_an_untrusted_answer_gives_only_clean_names_of_asked_offers():
    def mapping(offer: Any) -> dict[str, Any]:
        return {"offer": offer, "mapping": {"marketSku": 1}}

    answer = {"status": "OK", "result": {"offerMappings": [
        mapping({"offerId": "A", "name": " Лампа\tнастольная ", "vendor": " Люмен "}),
        mapping({"offerId": "B", "name": ""}), mapping({"offerId": "C", "name": None}),
        mapping({"offerId": "D", "name": 5, "vendor": "Бренд"}), mapping({"offerId": "E"}),
        mapping({"offerId": "F", "name": "Носки", "vendor": ["x"]}),  # a broken brand is no brand
        mapping({"offerId": "ZZZ", "name": "Не спрашивали"}), mapping({"name": "Без offerId"}),
        mapping(None), {"offer": "x"}, "junk",
        mapping({"offerId": "A", "name": "Второе имя"}),
    ]}}
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(MAPPINGS).respond(200, json=answer)
        async with connector(FakeTime()) as market:
            names = await market.product_names(list("ABCDEF"))
    assert route.call_count == 1
    assert names == {"A": ProductName("Лампа настольная", "Люмен"), "F": ProductName("Носки")}


async def test_an_answer_without_offer_mappings_is_an_error():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(MAPPINGS).respond(200, json={"status": "OK", "result": {}})
        async with connector(FakeTime()) as market:
            with pytest.raises(FatalApiError, match="offerMappings"):
                await market.product_names(["A"])


async def test_the_emulator_names_an_offer_as_its_orders_do_and_knows_every_reviewed_one():
    time = FakeTime()
    app = make(time, orders=120, reviews=60)
    data, now = app.state.data, int(NOW.timestamp())
    on_items = {item["offerId"]: item["offerName"] for i in range(data.orders.visible_end(now))
                for item in data.orders.record(i, now)["items"]}
    reviewed = {data.reviews.offer(i) for i in range(len(data.reviews))}
    async with connector(time, app) as market:
        names = await market.product_names(sorted({*on_items, *reviewed}))
    assert on_items and reviewed <= set(names)
    assert {offer: names[offer].name for offer in on_items} == on_items
