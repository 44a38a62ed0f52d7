"""WB client quirks, checked against respx routes that must all be called."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest
import respx
from pydantic import SecretStr

from connectors.base import Window
from connectors.errors import AuthError, FatalApiError
from connectors.testing import FakeTime
from connectors.wildberries.client import WildberriesClient, describe_wb_error
from connectors.wildberries.settings import WildberriesAccountSettings
from tests.conftest import load_fixture

pytestmark = pytest.mark.anyio
TOKEN = "eyJhbGciOiJFUzI1NiIs.sentinel"
WINDOW = Window(datetime(2026, 8, 18, 9, 0, tzinfo=UTC), datetime(2026, 8, 19, 9, 0, tzinfo=UTC))


def client(time: FakeTime, **settings) -> WildberriesClient:
    account = WildberriesAccountSettings(
        name="main", token_env="X", token=SecretStr(TOKEN),
        base_urls={"marketplace": "https://mp.test", "statistics": "https://st.test", "feedbacks": "https://fb.test"},
        **settings,
    )
    return WildberriesClient(account, clock=time.monotonic, sleep=time.sleep)


async def collect(pages):
    return [p async for p in pages]


async def test_statistics_sends_moscow_time_without_offset_and_stops_on_an_empty_body():
    rows = load_fixture("wildberries", "statistics_orders.json")[1:]
    with respx.mock(base_url="https://st.test", assert_all_called=True) as router:
        route = router.get("/api/v1/supplier/orders").mock(side_effect=[
            httpx.Response(200, json=rows),
            httpx.Response(200, content=b""),  # reported instead of [] at the end
        ])
        wb = client(FakeTime())
        pages = await collect(wb.statistics_orders(WINDOW))
        await wb.aclose()
    first, second = (dict(call.request.url.params) for call in route.calls)
    assert first == {"dateFrom": "2026-08-18T12:00:00", "flag": "0"}  # 09:00 UTC is 12:00 in Moscow
    assert second["dateFrom"] == "2026-08-18T12:55:03"  # the last row's lastChangeDate, as WB says
    assert len(pages) == 1 and pages[0].checkpoint == datetime(2026, 8, 18, 9, 55, 3, tzinfo=UTC)


async def test_statistics_stops_when_only_the_boundary_row_comes_back():
    rows = load_fixture("wildberries", "statistics_orders.json")[1:]
    with respx.mock(base_url="https://st.test", assert_all_called=True) as router:
        route = router.get("/api/v1/supplier/orders").mock(return_value=httpx.Response(200, json=rows))
        wb = client(FakeTime())
        pages = await collect(wb.statistics_orders(WINDOW))
        await wb.aclose()
    assert route.call_count == 2 and len(pages) == 2  # `>=` repeats the last row; no progress = done


async def test_marketplace_sends_the_raw_token_unix_bounds_and_joins_statuses():
    orders = load_fixture("wildberries", "orders_list.json")
    statuses = load_fixture("wildberries", "orders_status.json")
    with respx.mock(base_url="https://mp.test", assert_all_called=True) as router:
        listing = router.get("/api/v3/orders").mock(return_value=httpx.Response(200, json=orders))
        status = router.post("/api/v3/orders/status").mock(return_value=httpx.Response(200, json=statuses))
        wb = client(FakeTime())
        pages = await collect(wb.marketplace_orders(WINDOW))
        await wb.aclose()
    request = listing.calls[0].request
    assert request.headers["Authorization"] == TOKEN  # the spec's scheme: no "Bearer"
    start = int(WINDOW.start.timestamp())
    assert dict(request.url.params) == {"limit": "1000", "next": "0", "dateFrom": str(start),
                                        "dateTo": str(start + 86400 - 1)}  # inclusive seconds
    assert orjson.loads(status.calls[0].request.content) == {"orders": [13833711, 3417853362]}
    assert [o["_status"]["wbStatus"] for o in pages[0].items] == ["sold", "waiting"]


async def test_feedbacks_page_with_take_and_skip_up_to_wbs_cap(monkeypatch):
    monkeypatch.setattr("connectors.wildberries.client.FEEDBACKS_MAX_SKIP", 6)
    doc = load_fixture("wildberries", "feedbacks_list.json")
    with respx.mock(base_url="https://fb.test", assert_all_called=True) as router:
        route = router.get("/api/v1/feedbacks").mock(return_value=httpx.Response(200, json=doc))
        wb = client(FakeTime(), feedbacks_page_size=2)
        # Each call returns a full page of 2, so paging continues until the guard would pass WB's skip cap.
        with pytest.raises(FatalApiError, match="smaller streams.reviews.window"):
            await collect(wb.feedbacks(WINDOW))
        await wb.aclose()
    params = [dict(c.request.url.params) for c in route.calls]
    assert params[0]["isAnswered"] == "false" and params[0]["skip"] == "0" and params[1]["skip"] == "2"
    assert [p["skip"] for p in params] == ["0", "2", "4", "6"]  # never past the cap


@pytest.mark.parametrize(
    ("fixture", "message", "request_id"),
    [
        ("error_401.json", "unauthorized: token problem", "7b80742415072fe8b6b7f7761f1d1211"),
        ("error_429.json", "too many requests", "9d3c02cc698f8b041c661a7c28bed293"),
        ("feedbacks_error_400.json", "Something went wrong", "734c9ea8-39e5-45c9-8cad-f03c13f733e9"),
        ("error_marketplace_400.json", "IncorrectParameter: Передан некорректный параметр", ""),
        ("statistics_error_400.json", "dateFrom: field required", ""),
        ("feedback_answer_error_400.json", "bad request: content-type header not specified", ""),
    ],
)
def test_every_wb_error_shape_yields_its_message(fixture, message, request_id):
    info = describe_wb_error(httpx.Response(400, json=load_fixture("wildberries", fixture)))
    assert info.message.startswith(message)
    if request_id:
        assert info.request_id == request_id


async def test_a_401_is_an_auth_error_carrying_wbs_words_not_the_token():
    with respx.mock(base_url="https://mp.test", assert_all_called=True) as router:
        router.get("/api/v3/orders").mock(
            return_value=httpx.Response(401, json=load_fixture("wildberries", "error_401.json")))
        wb = client(FakeTime())
        with pytest.raises(AuthError) as info:
            await collect(wb.marketplace_orders(WINDOW))
        await wb.aclose()
    text = str(info.value)
    assert "HTTP 401" in text and "token problem" in text and "GET /api/v3/orders" in text
    assert TOKEN not in text and "eyJhbGci" not in text
