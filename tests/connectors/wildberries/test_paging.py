"""Every WB paging loop goes on to the end WB documents; a short page mid-stream loses nothing.

The respx tests pin each loop's requests; the emulator tests run the client through pages that a
`short_page` fault cut at random and compare with a clean run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from pydantic import SecretStr

from connectors.base import Window
from connectors.errors import FatalApiError
from connectors.testing import FakeTime
from connectors.wildberries.client import WildberriesClient
from connectors.wildberries.emulator import EmulatorConfig, Fault, create_app
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings
from tests.conftest import load_fixture

pytestmark = pytest.mark.anyio
WINDOW = Window(datetime(2026, 8, 18, 9, 0, tzinfo=UTC), datetime(2026, 8, 19, 9, 0, tzinfo=UTC))
NOW = datetime(2026, 8, 19, 12, 0, tzinfo=UTC)


def respx_client(**settings) -> WildberriesClient:
    time = FakeTime()
    account = WildberriesAccountSettings(
        name="main", token_env="X", token=SecretStr("t"),
        base_urls={"marketplace": "https://mp.test", "statistics": "https://st.test", "feedbacks": "https://fb.test"},
        **settings)
    return WildberriesClient(account, clock=time.monotonic, sleep=time.sleep)


async def collect(pages) -> list:
    return [item async for page in pages for item in page.items]


def order(order_id: int) -> dict:
    base = load_fixture("wildberries", "orders_list.json")["orders"][1]
    return {**base, "id": order_id, "rid": f"rid-{order_id}"}


def feedback(n: int, created: str = "2026-08-18T15:00:00+03:00") -> dict:
    base = load_fixture("wildberries", "feedbacks_list.json")["data"]["feedbacks"][0]
    return {**base, "id": f"fb-{n}", "createdDate": created}


def fb_page(items: list[dict]) -> httpx.Response:
    return httpx.Response(200, json={"data": {"countUnanswered": 0, "countArchive": 0, "feedbacks": items},
                                     "error": False, "errorText": "", "additionalErrors": None})


# --- GET /api/v3/orders: the `next` cursor --------------------------------------------------

async def test_orders_go_on_after_a_page_shorter_than_the_limit():
    statuses = {"orders": []}
    with respx.mock(base_url="https://mp.test", assert_all_called=True) as router:
        listing = router.get("/api/v3/orders").mock(side_effect=[
            httpx.Response(200, json={"next": 11, "orders": [order(10), order(11)]}),  # short: limit is 3
            httpx.Response(200, json={"next": 12, "orders": [order(12)]}),
            httpx.Response(200, json={"next": 12, "orders": []}),
        ])
        router.post("/api/v3/orders/status").mock(return_value=httpx.Response(200, json=statuses))
        wb = respx_client(orders_page_size=3)
        orders = await collect(wb.marketplace_orders(WINDOW))
        await wb.aclose()
    assert [o["id"] for o in orders] == [10, 11, 12]
    assert [c.request.url.params["next"] for c in listing.calls] == ["0", "11", "12"]


@pytest.mark.parametrize("ending", [{"orders": [order(13)]}, {"next": "13", "orders": [order(13)]},
                                    {"next": 12, "orders": [order(13)]}])
async def test_orders_end_on_an_absent_foreign_or_unchanged_cursor(ending):
    with respx.mock(base_url="https://mp.test", assert_all_called=True) as router:
        listing = router.get("/api/v3/orders").mock(side_effect=[
            httpx.Response(200, json={"next": 12, "orders": [order(12)]}), httpx.Response(200, json=ending)])
        router.post("/api/v3/orders/status").mock(return_value=httpx.Response(200, json={"orders": []}))
        wb = respx_client(orders_page_size=1)
        orders = await collect(wb.marketplace_orders(WINDOW))
        await wb.aclose()
    assert [o["id"] for o in orders] == [12, 13] and listing.call_count == 2


async def test_orders_refuse_a_cursor_that_goes_back():
    with respx.mock(base_url="https://mp.test") as router:
        router.get("/api/v3/orders").mock(side_effect=[
            httpx.Response(200, json={"next": 12, "orders": [order(12)]}),
            httpx.Response(200, json={"next": 5, "orders": [order(5)]})])
        router.post("/api/v3/orders/status").mock(return_value=httpx.Response(200, json={"orders": []}))
        wb = respx_client(orders_page_size=1)
        with pytest.raises(FatalApiError, match="went back from 12 to 5"):
            await collect(wb.marketplace_orders(WINDOW))
        await wb.aclose()


# --- GET /api/v1/feedbacks and /archive: take/skip ---------------------------------------------

async def test_feedbacks_skip_by_what_was_served_and_end_on_an_empty_page():
    with respx.mock(base_url="https://fb.test", assert_all_called=True) as router:
        listing = router.get("/api/v1/feedbacks").mock(side_effect=[
            fb_page([feedback(1), feedback(2)]),  # short: take is 3
            fb_page([feedback(3), feedback(4), feedback(5)]),
            fb_page([]),
            fb_page([]),  # isAnswered=true
        ])
        router.get("/api/v1/feedbacks/archive").mock(return_value=fb_page([]))
        wb = respx_client(feedbacks_page_size=3)
        items = await collect(wb.feedbacks(WINDOW))
        await wb.aclose()
    assert [f["id"] for f in items] == ["fb-1", "fb-2", "fb-3", "fb-4", "fb-5"]
    params = [dict(c.request.url.params) for c in listing.calls]
    assert [(p["isAnswered"], p["skip"]) for p in params] == [("false", "0"), ("false", "2"), ("false", "5"),
                                                              ("true", "0")]


async def test_the_archive_is_read_newest_first_until_a_page_reaches_past_the_window():
    newer, inside, older = "2026-08-19T13:00:00+03:00", "2026-08-18T15:00:00+03:00", "2026-08-18T11:59:59+03:00"
    with respx.mock(base_url="https://fb.test", assert_all_called=True) as router:
        router.get("/api/v1/feedbacks").mock(return_value=fb_page([]))
        archive = router.get("/api/v1/feedbacks/archive").mock(side_effect=[
            fb_page([feedback(1, newer)]),  # short, and newer than the window: go on
            fb_page([feedback(2, inside), feedback(3, inside)]),
            fb_page([feedback(4, inside), feedback(5, older)]),  # reaches past the window: last read
        ])
        wb = respx_client(feedbacks_page_size=2)
        items = await collect(wb.feedbacks(WINDOW))
        await wb.aclose()
    assert [f["id"] for f in items] == ["fb-1", "fb-2", "fb-3", "fb-4", "fb-5"]  # the key dedupes
    params = [dict(c.request.url.params) for c in archive.calls]
    assert params == [{"order": "dateDesc", "take": "2", "skip": str(s)} for s in (0, 1, 3)]


# --- the three loops against the emulator, pages cut short at random -------------------------

def emulator_client(app) -> WildberriesClient:
    time = FakeTime()
    account = WildberriesAccountSettings(
        name="main", token_env="X", token=SecretStr("t"), base_urls=dict.fromkeys(PRODUCTION_HOSTS, "http://wb"),
        orders_page_size=20, feedbacks_page_size=25)
    return WildberriesClient(account, transport=httpx.ASGITransport(app=app), clock=time.monotonic,
                             sleep=time.sleep)


def app_with(*paths: str):
    faults = tuple(Fault(path, "short_page", times=None, probability=0.6) for path in paths)
    return create_app(EmulatorConfig(seed=3, orders=600, reviews=400, now=NOW, clock=lambda: NOW,
                                     rate_limits=False, statistics_page_size=70, faults=faults))


async def read(app, stream: str) -> list[str]:
    wb = emulator_client(app)
    window = Window(NOW - timedelta(days=29), NOW)
    pages = {"orders": wb.marketplace_orders, "statistics": wb.statistics_orders, "reviews": wb.feedbacks}[stream]
    items = await collect(pages(window))
    await wb.aclose()
    if stream == "reviews":  # the archive's last page reaches past the window: where it ends varies
        items = [i for i in items if datetime.fromisoformat(i["createdDate"]) >= window.start]
    return sorted({str(i.get("rid") or i.get("srid") or i["id"]) for i in items})


@pytest.mark.parametrize(("stream", "paths"), [
    ("orders", ("/api/v3/orders",)),
    ("statistics", ("/api/v1/supplier/orders",)),
    ("reviews", ("/api/v1/feedbacks", "/api/v1/feedbacks/archive")),
])
async def test_short_pages_mid_stream_lose_nothing(stream, paths):
    clean = await read(app_with(), stream)
    cut_app = app_with(*paths)
    cut = await read(cut_app, stream)
    assert len(cut_app.state.short_pages) >= 3, "the emulator cut too few pages to test anything"
    assert {path for path, _, _ in cut_app.state.short_pages} == set(paths)
    assert cut == clean and len(clean) > 100
