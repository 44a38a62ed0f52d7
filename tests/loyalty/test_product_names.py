"""Replies name products: the review's own name, else the cache (order lines, the platform's catalog).

End to end through the Ozon and Yandex Market emulators: only reviews are synced, so every name
must come from the catalogs; the daemon's actions job looks them up before it plans replies, asks
each platform what its documents say, and a platform that fails costs a reply its name, never the
reply itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.config import AppConfig, AppSettings, DatabaseSettings, MarketplaceAccount
from app.scheduler import Daemon
from app.wiring import App, JobSpec
from connectors.base import Connector
from connectors.errors import FatalApiError
from connectors.ozon import OzonConnector
from connectors.ozon.catalog import PRODUCT_INFO
from connectors.ozon.emulator import EmulatorConfig as OzonEmulator
from connectors.ozon.emulator import Fault
from connectors.ozon.emulator import create_app as ozon_app
from connectors.ozon.settings import PRODUCTION_HOSTS as OZON_HOSTS
from connectors.ozon.settings import OzonAccountSettings
from connectors.records import OrderLine, OrderRecord, OrderStatus, ProductName, ReviewRecord
from connectors.testing import FakeTime
from connectors.yandex_market import YandexMarketConnector
from connectors.yandex_market.emulator import EmulatorConfig as MarketEmulator
from connectors.yandex_market.emulator import create_app as market_app
from connectors.yandex_market.settings import PRODUCTION_HOSTS as MARKET_HOSTS
from connectors.yandex_market.settings import YandexMarketAccountSettings
from loyalty.action_settings import ActionSettings, ReplySettings, ReplyTemplate
from loyalty.actions import Kind
from loyalty.outbox import action_rows
from loyalty.product_names import fill_product_names
from loyalty.replies import propose_replies
from store import PageWrite, Store
from store.products import unnamed_review_skus
from store.store import StreamKey

pytestmark = pytest.mark.anyio

NOW = datetime.now(UTC).replace(microsecond=0)  # the actions job plans at the real "now"
OZON_KEY, MARKET_KEY, BUSINESS = "ozon-names-sentinel-key", "ym-names-sentinel-token", 12345
CLIENT_ID = "777001"


def ozon_emulator(*faults: Fault, time: FakeTime | None = None) -> Any:
    return ozon_app(OzonEmulator(seed=6, orders=30, reviews=90, now=NOW, client_id=CLIENT_ID, token=OZON_KEY,
                                 rate_limits=False, faults=faults,
                                 **({"monotonic": time.monotonic} if time else {})))


def market_emulator(*faults: Fault) -> Any:
    return market_app(MarketEmulator(seed=6, business_id=BUSINESS, orders=60, reviews=70, now=NOW,
                                     token=MARKET_KEY, rate_limits=False, faults=faults))


def ozon_account() -> OzonAccountSettings:
    return OzonAccountSettings(name="main", token_env="X", token=SecretStr(OZON_KEY), client_id=CLIENT_ID,
                               base_urls=dict.fromkeys(OZON_HOSTS, "http://ozon"))


def market_account() -> YandexMarketAccountSettings:
    return YandexMarketAccountSettings(name="main", token_env="X", token=SecretStr(MARKET_KEY), business_id=BUSINESS,
                                       base_urls=dict.fromkeys(MARKET_HOSTS, "http://market"))


def catalog_of(ozon: Any, market: Any) -> dict[tuple[str, str], str]:
    """(marketplace, sku) -> the name each emulator's own catalogue gives it."""
    from connectors.yandex_market.emulator_orders import OFFERS

    names = {("ozon", str(p.sku)): p.name for p in ozon.state.data.products}
    return names | {("yandex_market", f"SKU-{stem}"): name for stem, name, _ in OFFERS}


async def sync_reviews_only(store: Store, ozon: Any, market: Any) -> App:
    config = AppConfig(settings=AppSettings(database=DatabaseSettings(url="sqlite://")),
                       accounts=(MarketplaceAccount("ozon", ozon_account()),
                                 MarketplaceAccount("yandex_market", market_account())),
                       config_path=Path("(test)"))
    app = App(config, store=store, transports={"ozon": httpx.ASGITransport(app=ozon),
                                               "yandex_market": httpx.ASGITransport(app=market)})
    for account in app.accounts():
        result = await app.run_job(JobSpec(account, "reviews"))
        assert result.ok, result.error
    return app


def replies(store: Store) -> list[dict[str, Any]]:
    return action_rows(store, kind=Kind.REPLY_TO_REVIEW.value)


def review_skus(store: Store) -> dict[tuple[str, str], str]:
    """(marketplace, review id) -> sku."""
    return {(r["marketplace"], r["review_id"]): r["sku"] for r in store.iter_reviews()}


async def test_the_actions_job_names_products_from_the_catalogs_before_it_plans_replies(sqlite_store: Store):
    ozon, market = ozon_emulator(), market_emulator()
    app = await sync_reviews_only(sqlite_store, ozon, market)
    wanted = unnamed_review_skus(sqlite_store.engine)
    assert set(wanted) == {("ozon", "main"), ("yandex_market", "main")}  # nothing synced names them
    await Daemon(app)._actions()
    await app.aclose()
    # Each platform was asked once, in its documented body, for exactly the SKUs still unnamed.
    ozon_asks = [body for _, path, body, _ in ozon.state.request_log if path == PRODUCT_INFO]
    assert ozon_asks == [{"sku": wanted[("ozon", "main")]}]
    assert market.state.offer_mapping_requests == [({}, {"offerIds": wanted[("yandex_market", "main")]})]
    names, skus = catalog_of(ozon, market), review_skus(sqlite_store)
    made = replies(sqlite_store)
    unanswered = {(r["marketplace"], r["review_id"]) for r in sqlite_store.iter_reviews() if not r["answered"]}
    assert {(r["marketplace"], r["target"]) for r in made} == unanswered  # every one, as before
    for reply in made:
        name = names[(reply["marketplace"], skus[(reply["marketplace"], reply["target"])])]
        assert f"«{name}»" in reply["text"] and f"«{name[:60]}»" in reply["title"], reply
        assert "арт." not in reply["text"] + reply["title"]
    assert {r["marketplace"] for r in made} == {"ozon", "yandex_market"}
    assert unnamed_review_skus(sqlite_store.engine) == {}


async def test_a_failing_platform_costs_replies_their_names_only_and_is_asked_again(sqlite_store: Store, caplog):
    time = FakeTime()
    # Six answers of 500: every attempt of the client's retry policy fails, then the platform recovers.
    ozon, market = ozon_emulator(Fault(PRODUCT_INFO, "http_500", times=6), time=time), market_emulator()
    app = await sync_reviews_only(sqlite_store, ozon, market)
    await app.aclose()
    wanted = unnamed_review_skus(sqlite_store.engine)
    async with (OzonConnector(ozon_account(), transport=httpx.ASGITransport(app=ozon), clock=time.monotonic,
                              sleep=time.sleep) as oz,
                YandexMarketConnector(market_account(), transport=httpx.ASGITransport(app=market)) as ym):
        connectors = {("ozon", "main"): oz, ("yandex_market", "main"): ym}
        with caplog.at_level(logging.WARNING, logger="loyalsync"):
            first = await fill_product_names(sqlite_store, connectors, now=NOW)
        [line] = [r for r in caplog.records if r.name == "loyalsync.product_names"]
        assert line.levelno == logging.WARNING and line.exc_info is None and "\n" not in line.getMessage()
        assert "ozon/main" in line.getMessage() and OZON_KEY not in line.getMessage()
        assert first.failed == [("ozon", "main")] and first.named[("yandex_market", "main")] > 0
        # Replies are planned all the same: Ozon's name the article, Market's the product.
        texts = {a.target: a.text for a in propose_replies(sqlite_store, ReplySettings(), NOW)}
        skus = review_skus(sqlite_store)
        ozon_texts = [t for (mp, rid), sku in skus.items() if mp == "ozon" and (t := texts.get(rid))]
        assert ozon_texts and all("арт. " in t for t in ozon_texts)
        assert unnamed_review_skus(sqlite_store.engine) == {("ozon", "main"): wanted[("ozon", "main")]}
        second = await fill_product_names(sqlite_store, connectors, now=NOW)
    assert second.failed == [] and second.named == {("ozon", "main"): len(wanted[("ozon", "main")])}
    assert unnamed_review_skus(sqlite_store.engine) == {}
    texts = [a.text or "" for a in propose_replies(sqlite_store, ReplySettings(), NOW)]
    assert texts and not any("арт." in t for t in texts)


class StubConnector(Connector):
    """A connector whose catalog answers what the test says (or never answers)."""

    name = "ozon"
    streams: dict[str, Any] = {}

    def __init__(self, answer: Any = None, *, hang: bool = False, error: Exception | None = None):
        self.answer, self.hang, self.error, self.asked = answer, hang, error, []

    def fetch(self, stream, window):  # pragma: no cover - never synced here
        raise NotImplementedError

    def map_record(self, stream, raw, ctx):  # pragma: no cover
        raise NotImplementedError

    async def product_names(self, skus: Sequence[str]) -> dict[str, ProductName]:
        self.asked.append(list(skus))
        if self.hang:
            await asyncio.sleep(3600)
        if self.error is not None:
            raise self.error
        return self.answer


def _review(review_id: str, sku: str, *, mp: str = "ozon", name: str | None = None, brand: str | None = None,
            rating: int = 5, ago: timedelta = timedelta(hours=1)) -> ReviewRecord:
    return ReviewRecord(marketplace=mp, account="main", review_id=review_id, sku=sku, rating=rating, text="",
                        pros="", cons="", created_at=NOW - ago, answered=False, answer_text=None,
                        product_name=name, brand=brand)


def _write_reviews(store: Store, *reviews: ReviewRecord) -> None:
    for r in reviews:
        store.write_page(StreamKey(r.marketplace, "main", "reviews"), PageWrite(reviews=[r]), now=NOW)


async def test_only_asked_skus_with_usable_names_are_cached(sqlite_store: Store):
    _write_reviews(sqlite_store, _review("r1", "101"), _review("r2", "102"), _review("r3", "103"))
    stub = StubConnector({"101": ProductName("Кружка"), "102": ProductName("   "), "999": ProductName("Чужой"),
                          "103": "garbage"})
    result = await fill_product_names(sqlite_store, {("ozon", "main"): stub}, now=NOW)
    assert stub.asked == [["101", "102", "103"]] and result.named == {("ozon", "main"): 1}
    assert unnamed_review_skus(sqlite_store.engine) == {("ozon", "main"): ["102", "103"]}


@pytest.mark.parametrize("stub", [StubConnector(hang=True), StubConnector(error=FatalApiError("boom", status=404)),
                                  StubConnector(error=httpx.ConnectError("refused")),
                                  StubConnector(error=KeyError("a connector's own bug"))],
                         ids=["hangs", "4xx", "network", "bug"])
async def test_a_lookup_that_hangs_or_fails_never_holds_replies_back(sqlite_store: Store, stub, caplog):
    _write_reviews(sqlite_store, _review("r1", "101"))
    with caplog.at_level(logging.WARNING, logger="loyalsync"):
        result = await asyncio.wait_for(fill_product_names(sqlite_store, {("ozon", "main"): stub}, now=NOW,
                                                           timeout=0.05), timeout=5)
    assert result.failed == [("ozon", "main")]
    assert len([r for r in caplog.records if r.name == "loyalsync.product_names"]) == 1
    [reply] = propose_replies(sqlite_store, ReplySettings(), NOW)
    assert "«арт. 101»" in (reply.text or "")


async def test_accounts_without_a_connector_are_left_alone(sqlite_store: Store):
    _write_reviews(sqlite_store, _review("r1", "101"), _review("m1", "SKU-1", mp="yandex_market"))
    stub = StubConnector({})
    result = await fill_product_names(sqlite_store, {("ozon", "main"): stub}, now=NOW)
    assert stub.asked == [["101"]] and result.asked == {("ozon", "main"): 1}


def _order(order_id: str, sku: str, name: str) -> OrderRecord:
    return OrderRecord(marketplace="ozon", account="main", order_id=order_id, created_at=NOW - timedelta(days=3),
                       updated_at=NOW - timedelta(days=2), status=OrderStatus.DELIVERED, platform_status="delivered",
                       fulfilment="fbs", currency="RUB", total=Decimal("590.00"),
                       lines=(OrderLine(sku, "mug-350", name, 1, Decimal("590.00")),))


def test_a_reply_takes_the_reviews_own_name_else_the_cache_else_the_article(sqlite_store: Store):
    sqlite_store.write_page(StreamKey("ozon", "main", "orders_fbs"),
                            PageWrite(orders=[_order("p1", "101", "Кружка керамическая 350 мл")]), now=NOW)
    sqlite_store.write_page(StreamKey("wildberries", "main", "reviews"), PageWrite(reviews=[
        _review("w0", "500", mp="wildberries", name="Худи оверсайз", brand="Бренд", ago=timedelta(days=2))]),
        now=NOW)
    _write_reviews(sqlite_store,
                   _review("r1", "101"),  # the order line names it
                   _review("r2", "102"),  # nothing does
                   _review("w1", "500", mp="wildberries", name="Худи, новое имя"),  # newer: renames the cache
                   _review("w2", "500", mp="wildberries", name="  "))  # a blank own name: the cache's
    template = ReplyTemplate(ratings=(1, 2, 3, 4, 5), text="Спасибо за отзыв о «{product}» {brand}!")
    made = {a.target: a for a in propose_replies(sqlite_store, ReplySettings(templates=(template,)), NOW)}
    assert made["r1"].text == "Спасибо за отзыв о «Кружка керамическая 350 мл» !"
    assert made["r1"].title == "reply to a 5★ review of «Кружка керамическая 350 мл»"
    assert made["r2"].text == "Спасибо за отзыв о «арт. 102» !" and made["r2"].title.endswith("«арт. 102»")
    # A review's own name wins; the cache (renamed by the newer w1, its brand kept) fills the blank
    # one, and its brand a review that has none.
    assert made["w0"].text == "Спасибо за отзыв о «Худи оверсайз» Бренд!"
    assert made["w1"].text == "Спасибо за отзыв о «Худи, новое имя» Бренд!"
    assert made["w2"].text == "Спасибо за отзыв о «Худи, новое имя» Бренд!"


def test_replies_still_plan_offline_from_the_cache(sqlite_store: Store):
    """`loyalsync actions --plan` has no connectors: it plans from what the cache holds."""
    from loyalty.action_job import plan_actions

    sqlite_store.write_page(StreamKey("ozon", "main", "orders_fbs"),
                            PageWrite(orders=[_order("p1", "101", "Кружка")]), now=NOW)
    _write_reviews(sqlite_store, _review("r1", "101"))
    [reply] = [a for a in plan_actions(sqlite_store, ActionSettings(), {}, NOW) if a.kind == Kind.REPLY_TO_REVIEW]
    assert "«Кружка»" in (reply.text or "")


async def test_run_actions_looks_names_up_before_it_plans(sqlite_store: Store):
    from loyalty.action_job import run_actions

    _write_reviews(sqlite_store, _review("r1", "101"))
    stub = StubConnector({"101": ProductName("Кружка")})
    await run_actions(sqlite_store, ActionSettings(), {}, {("ozon", "main"): stub}, mode="dry-run", now=NOW)
    [reply] = replies(sqlite_store)
    assert stub.asked == [["101"]] and "«Кружка»" in reply["text"]
