"""Yandex Market client: auth, paging, 420 like 429, four requests in flight, buyer info for active DBS."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime

import httpx
import orjson
import pytest
import respx
from pydantic import SecretStr

from connectors.base import Window
from connectors.errors import AuthError, RetryDeferred
from connectors.testing import FakeTime
from connectors.yandex_market.client import YandexMarketClient, creation_chunks, describe_ym_error, market_time
from connectors.yandex_market.limits import rate_limit_hint
from connectors.yandex_market.settings import YandexMarketAccountSettings
from tests.conftest import load_fixture

pytestmark = pytest.mark.anyio
TOKEN = "ACMA:sentinel-api-key:151c0664"
BASE = "https://ym.test"
ORDERS = "/v1/businesses/777/orders"
FEEDBACK = "/v2/businesses/777/goods-feedback"
WINDOW = Window(datetime(2026, 7, 17, 9, 0, tzinfo=UTC), datetime(2026, 7, 18, 9, 0, tzinfo=UTC))
SERVER_NOW = datetime(2026, 7, 18, 9, 0, 5, tzinfo=UTC)
# A history short enough for one creation chunk: one request per update span, as the tests of
# paging, limits and buyers want. `test_each_update_span_...` reads the real depth.
ONE_CHUNK = timedelta(hours=1)


def client(time: FakeTime, **settings) -> YandexMarketClient:
    account = YandexMarketAccountSettings(name="main", token_env="X", token=SecretStr(TOKEN), business_id=777,
                                          base_urls={"api": BASE}, **settings)
    return YandexMarketClient(account, clock=time.monotonic, sleep=time.sleep)


async def collect(pages):
    return [p async for p in pages]


def orders_page(*orders, token: str | None = None) -> dict:
    return {"orders": list(orders), "paging": {"nextPageToken": token} if token else {}}


def order(order_id: int, program: str = "FBS", status: str = "PROCESSING", campaign: int = 21500000) -> dict:
    base = copy.deepcopy(load_fixture("yandex_market", "getBusinessOrders.response.json")["orders"][0])
    base.update(orderId=order_id, programType=program, status=status, campaignId=campaign)
    return base


def limited(remaining: int, wait: float, message: str = "Hit rate limit") -> httpx.Response:
    """A 420 as Market sends it: the envelope and the resource headers, no Retry-After."""
    body = load_fixture("yandex_market", "error_420.response.json")
    body["errors"][0]["message"] = message
    return httpx.Response(420, json=body, headers={
        "Date": format_datetime(SERVER_NOW, usegmt=True),
        "X-RateLimit-Resource-Limit": "10000",
        "X-RateLimit-Resource-Remaining": str(remaining),
        "X-RateLimit-Resource-Until": format_datetime(SERVER_NOW + timedelta(seconds=wait), usegmt=True),
    })


async def test_orders_send_the_api_key_filter_by_update_time_and_follow_page_tokens():
    first = load_fixture("yandex_market", "getBusinessOrders.response.json")
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(ORDERS).mock(side_effect=[
            httpx.Response(200, json=first),
            httpx.Response(200, json=orders_page(order(55113212035))),  # no nextPageToken: the end
        ])
        # The example's second order is a DBS one in PROCESSING: its buyer id is asked for.
        router.get("/v2/campaigns/21500001/orders/55113298761/buyer").mock(
            return_value=httpx.Response(200, json=load_fixture("yandex_market", "getOrderBuyerInfo.response.json")))
        ym = client(FakeTime())
        pages = await collect(ym.orders(WINDOW, history=ONE_CHUNK))
        await ym.aclose()
    one, two = (call.request for call in route.calls)
    assert one.headers["Api-Key"] == TOKEN and "Authorization" not in one.headers  # no "Bearer"
    assert dict(one.url.params) == {"limit": "50"}
    assert dict(two.url.params) == {"limit": "50", "page_token": "eyBuZXh0SWQ6IDIzNDIgfQ=="}
    body = orjson.loads(one.content)
    # Moscow time with its offset, one second early (bounds may be exclusive), the window's end;
    # creation dates from the day before the history's start to two days past the end's date.
    assert body == {"dates": {"creationDateFrom": "2026-07-17", "creationDateTo": "2026-07-20",
                              "updateDateFrom": "2026-07-17T11:59:59+03:00",
                              "updateDateTo": "2026-07-18T12:00:00+03:00"}, "fake": False}
    assert orjson.loads(two.content) == body
    assert [[o["orderId"] for o in p.items] for p in pages] == [[55113212034, 55113298761], [55113212035]]
    assert pages[0].items[1]["_buyer"] == {"id": "vPn3dL0KjLkCmr8WR2Ag5A"}


async def test_a_window_longer_than_30_days_is_split_into_requests_market_accepts():
    long = Window(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 7, 15, tzinfo=UTC))
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(ORDERS).mock(return_value=httpx.Response(200, json=orders_page()))
        ym = client(FakeTime(), campaign_ids=(21500000,))
        assert await collect(ym.orders(long, history=ONE_CHUNK)) == []
        await ym.aclose()
    spans = [orjson.loads(c.request.content) for c in route.calls]
    assert all(s["campaignIds"] == [21500000] for s in spans)
    bounds = [(datetime.fromisoformat(s["dates"]["updateDateFrom"]), datetime.fromisoformat(s["dates"]["updateDateTo"]))
              for s in spans]
    assert all(hi - lo <= timedelta(days=30) for lo, hi in bounds)
    assert bounds[0][0] == long.start - timedelta(seconds=1) and bounds[-1][1] == long.end
    assert all(a[1] == b[0] + timedelta(seconds=1) for a, b in zip(bounds, bounds[1:], strict=False))


async def test_each_update_span_is_read_in_creation_chunks_of_30_days_back_to_the_history():
    """Without creation dates Market reads only the last 30 days of orders (OrderDatesFilterDTO):
    every request names both filters, and the chunks reach the history's start."""
    history = timedelta(days=180)
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(ORDERS).mock(return_value=httpx.Response(200, json=orders_page()))
        ym = client(FakeTime())
        assert await collect(ym.orders(WINDOW, history=history)) == []
        await ym.aclose()
    bodies = [orjson.loads(c.request.content)["dates"] for c in route.calls]
    assert all((d["updateDateFrom"], d["updateDateTo"]) == ("2026-07-17T11:59:59+03:00", "2026-07-18T12:00:00+03:00")
               for d in bodies)
    chunks = [(date.fromisoformat(d["creationDateFrom"]), date.fromisoformat(d["creationDateTo"])) for d in bodies]
    assert len(chunks) == 7  # 180 days and the widening, 30 at a time
    assert all(timedelta(days=1) <= hi - lo <= timedelta(days=30) for lo, hi in chunks)
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))  # no gap, no overlap
    # From the day before the floor (2026-01-19 in Moscow) to two days past the end's date.
    assert chunks[0][0] == date(2026, 1, 18) and chunks[-1][1] == date(2026, 7, 20)


def test_creation_chunks_use_moscow_dates_and_widen_both_ends():
    # 21:30 UTC is 00:30 the next day in Moscow: a UTC date would end the chunks a day early.
    end = datetime(2026, 7, 17, 21, 30, tzinfo=UTC)
    assert list(creation_chunks(end - timedelta(hours=1), end)) == [(date(2026, 7, 16), date(2026, 7, 20))]
    floor = datetime(2026, 6, 1, 20, 59, tzinfo=UTC)  # 23:59 on June 1 in Moscow
    chunks = list(creation_chunks(floor, end))
    assert chunks[0] == (date(2026, 5, 31), date(2026, 6, 30)) and chunks[-1] == (date(2026, 6, 30), date(2026, 7, 20))


async def test_a_420_is_waited_out_like_a_429_for_the_time_market_names():
    time = FakeTime()
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(ORDERS).mock(side_effect=[limited(0, 7), httpx.Response(200, json=orders_page(order(1)))])
        ym = client(time)
        pages = await collect(ym.orders(WINDOW, history=ONE_CHUNK))
        await ym.aclose()
    assert [o["orderId"] for o in pages[0].items] == [1]
    # Until - Date = 7 s: measured on Market's clock, not ours (the server date is in the past here).
    assert any(abs(s - 7) < 0.01 for s in time.slept), time.slept
    assert ym.http.stats.rate_limited == 1


async def test_a_420_for_the_parallel_limit_backs_off_instead_of_waiting_for_the_hour():
    time = FakeTime()
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(ORDERS).mock(side_effect=[
            limited(9000, 3000, "Hit rate limit of 4 parallel requests for businessId 777"),
            httpx.Response(200, json=orders_page(order(1)))])
        ym = client(time)
        await collect(ym.orders(WINDOW, history=ONE_CHUNK))
        await ym.aclose()
    assert 0 < time.waited < 5  # a short backoff, not the 50 minutes until the budget's refill


async def test_a_420_storm_is_survived():
    time = FakeTime()
    storm = [limited(0, 2)] * 3 + [limited(5, 3600, "parallel")] * 2
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(ORDERS).mock(side_effect=[*storm, httpx.Response(200, json=orders_page(order(1)))])
        ym = client(time)
        pages = await collect(ym.orders(WINDOW, history=ONE_CHUNK))
        await ym.aclose()
    assert route.call_count == 6 and len(pages) == 1
    assert ym.http.stats.rate_limited == 5 and time.waited >= 6


async def test_a_refill_past_the_cap_defers_to_the_next_run():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(ORDERS).mock(return_value=limited(0, 2400))
        ym = client(FakeTime())
        with pytest.raises(RetryDeferred) as info:
            await collect(ym.orders(WINDOW, history=ONE_CHUNK))
        await ym.aclose()
    assert info.value.retry_after == pytest.approx(2400) and info.value.status == 420


async def test_buyer_info_is_asked_only_for_active_dbs_orders_and_only_the_id_is_kept():
    buyer = load_fixture("yandex_market", "getOrderBuyerInfo.response.json")
    page = orders_page(order(1, "DBS", "PROCESSING"), order(2, "DBS", "DELIVERY"), order(3, "DBS", "PICKUP"),
                       order(4, "DBS", "DELIVERED"), order(5, "DBS", "CANCELLED"), order(6, "FBS", "PROCESSING"),
                       order(7, "FBY", "DELIVERY"), order(8, "EXPRESS", "PICKUP"), order(9, "DBS", "UNPAID"))
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(ORDERS).mock(return_value=httpx.Response(200, json=page))
        info = router.get(path__regex=r"^/v2/campaigns/21500000/orders/(?P<oid>\d+)/buyer$").mock(
            return_value=httpx.Response(200, json=buyer))
        ym = client(FakeTime())
        (got,) = await collect(ym.orders(WINDOW, history=ONE_CHUNK))
        await ym.aclose()
    asked = sorted(int(c.request.url.path.split("/")[5]) for c in info.calls)
    assert asked == [1, 2, 3]
    assert all(c.request.headers["Api-Key"] == TOKEN for c in info.calls)
    by_id = {o["orderId"]: o for o in got.items}
    assert all(by_id[i]["_buyer"] == {"id": buyer["result"]["id"]} for i in (1, 2, 3))
    assert not any("_buyer" in by_id[i] for i in (4, 5, 6, 7, 8, 9))
    text = repr(got.items)
    assert buyer["result"]["phone"] not in text and buyer["result"]["lastName"] not in text


async def test_an_order_that_left_the_active_states_meanwhile_just_has_no_buyer():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(ORDERS).mock(return_value=httpx.Response(200, json=orders_page(order(1, "DBS"), order(2, "DBS"))))
        router.get("/v2/campaigns/21500000/orders/1/buyer").mock(return_value=httpx.Response(
            400, json={"status": "ERROR", "errors": [{"code": "BAD_REQUEST", "message": "wrong status"}]}))
        router.get("/v2/campaigns/21500000/orders/2/buyer").mock(
            return_value=httpx.Response(200, json=load_fixture("yandex_market", "getOrderBuyerInfo.response.json")))
        ym = client(FakeTime())
        (page,) = await collect(ym.orders(WINDOW, history=ONE_CHUNK))
        await ym.aclose()
    assert "_buyer" not in page.items[0] and page.items[1]["_buyer"]["id"] == "vPn3dL0KjLkCmr8WR2Ag5A"


async def test_never_more_than_four_requests_in_flight():
    running, peak = 0, 0

    async def slow_buyer(request: httpx.Request) -> httpx.Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)  # real time: the answers overlap only if the client lets them
        running -= 1
        return httpx.Response(200, json={"status": "OK", "result": {"id": f"buyer{request.url.path.split('/')[5]}"}})

    page = orders_page(*(order(i, "DBS", "PROCESSING") for i in range(1, 21)))
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(ORDERS).mock(return_value=httpx.Response(200, json=page))
        router.get(path__regex=r"/buyer$").mock(side_effect=slow_buyer)
        ym = client(FakeTime())
        (got,) = await collect(ym.orders(WINDOW, history=ONE_CHUNK))
        await ym.aclose()
    assert peak == 4 and ym.transport.max_in_flight == 4  # in parallel, but never past Market's limit
    assert all(o["_buyer"]["id"] == f"buyer{o['orderId']}" for o in got.items)


async def test_fewer_parallel_requests_when_configured():
    running, peak = 0, 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1
        return httpx.Response(200, json={"status": "OK", "result": {"id": "b"}})

    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(ORDERS).mock(return_value=httpx.Response(200, json=orders_page(
            *(order(i, "DBS") for i in range(1, 9)))))
        router.get(path__regex=r"/buyer$").mock(side_effect=slow)
        ym = client(FakeTime(), parallel_requests=2)
        await collect(ym.orders(WINDOW, history=ONE_CHUNK))
        await ym.aclose()
    assert peak == 2


async def test_reviews_page_by_token_and_carry_only_the_shops_comments():
    feedbacks = load_fixture("yandex_market", "getGoodsFeedbacks.response.json")
    feedbacks["result"]["feedbacks"][0]["statistics"]["commentsCount"] = 2
    second = {"status": "OK", "result": {"feedbacks": [dict(feedbacks["result"]["feedbacks"][0], feedbackId=5,
                                                             statistics={"rating": 4, "commentsCount": 0})],
                                         "paging": {}}}
    comments = load_fixture("yandex_market", "getGoodsFeedbackComments.response.json")
    buyer_reply = {"id": 1, "text": "Звоните мне", "parentId": 987654321, "author": {"type": "USER", "name": "Анна И."},
                   "status": "PUBLISHED", "feedbackId": 123456789}
    comments["result"]["comments"].append(buyer_reply)
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        listing = router.post(FEEDBACK).mock(side_effect=[httpx.Response(200, json=feedbacks),
                                                          httpx.Response(200, json=second)])
        thread = router.post(FEEDBACK + "/comments").mock(return_value=httpx.Response(200, json=comments))
        ym = client(FakeTime(), feedbacks_page_size=20)
        pages = await collect(ym.feedbacks(WINDOW))
        await ym.aclose()
    one, two = (c.request for c in listing.calls)
    assert orjson.loads(one.content) == {"dateTimeFrom": market_time(WINDOW.start - timedelta(seconds=1)),
                                         "dateTimeTo": market_time(WINDOW.end)}  # both bounds exclusive
    assert dict(one.url.params) == {"limit": "20"} and two.url.params["page_token"] == "eyBuZXh0SWQ6IDIzNDIgfQ=="
    assert thread.call_count == 1 and orjson.loads(thread.calls[0].request.content) == {"feedbackId": 123456789}
    first = pages[0].items[0]
    assert first["_comments"] == [{"id": 987654321, "text": "Спасибо за отзыв!", "parentId": None,
                                   "status": "PUBLISHED"}]
    assert "_comments" not in pages[1].items[0]


async def test_a_401_is_an_auth_error_with_markets_words_and_no_key():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(ORDERS).mock(return_value=httpx.Response(
            401, json=load_fixture("yandex_market", "error_401.response.json")))
        ym = client(FakeTime())
        with pytest.raises(AuthError) as info:
            await collect(ym.orders(WINDOW, history=ONE_CHUNK))
        await ym.aclose()
    text = str(info.value)
    assert "HTTP 401" in text and "UNAUTHORIZED: Api-Key token is invalid" in text and ORDERS in text
    assert TOKEN not in text and "sentinel-api-key" not in text


@pytest.mark.parametrize(("fixture", "message"), [
    ("error_401.response.json", "UNAUTHORIZED: Api-Key token is invalid"),
    ("error_420.response.json", "METHOD_FAILURE: Hit rate limit of 4 parallel requests for businessId 12345"),
])
def test_markets_error_envelope_yields_code_and_message(fixture, message):
    assert describe_ym_error(httpx.Response(400, json=load_fixture("yandex_market", fixture))).message == message
    assert describe_ym_error(httpx.Response(500, text="<html>")).message == ""


def test_the_420_hint_is_until_minus_date_and_only_when_the_budget_is_spent():
    headers = limited(0, 42).headers
    assert rate_limit_hint(headers) == 42
    assert rate_limit_hint(limited(3, 42).headers) is None
    no_date = httpx.Headers({k: v for k, v in headers.items() if k.lower() != "date"})
    assert rate_limit_hint(no_date, now=SERVER_NOW - timedelta(seconds=5)) == pytest.approx(47)
    assert rate_limit_hint(httpx.Headers({"X-RateLimit-Resource-Remaining": "0"})) is None
    assert rate_limit_hint(httpx.Headers({"X-RateLimit-Resource-Remaining": "0",
                                          "X-RateLimit-Resource-Until": "soon"})) is None


async def test_the_proxy_environment_is_honoured_as_httpx_would(monkeypatch):
    from connectors.http import NetworkTransport

    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there: refused at once
    transport = NetworkTransport()
    with pytest.raises(httpx.ConnectError):
        await transport.handle_async_request(httpx.Request("GET", "https://api.partner.market.yandex.ru/v2/campaigns"))
    await transport.aclose()
    assert list(transport._proxied) == ["http://127.0.0.1:9"]
