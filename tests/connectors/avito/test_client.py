"""Avito client against hand-written answers (respx): what it asks, where each walk ends, and its
OAuth token (avito.md §2–§5), with expectations taken from the document, not the emulator."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from pydantic import SecretStr

from connectors.avito import AvitoConnector
from connectors.avito.settings import AvitoAccountSettings
from connectors.base import Window
from connectors.errors import AuthError, StreamUnavailable
from connectors.testing import FakeTime
from tests.conftest import load_fixture

pytestmark = pytest.mark.anyio
SECRET = "avito-sentinel-secret-3c8e"
BASE = "https://avito.test"
WINDOW = Window(datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC))


def connector(**settings) -> AvitoConnector:
    account = AvitoAccountSettings(name="main", client_id="cid-7", client_secret_env="X",
                                   client_secret=SecretStr(SECRET), base_urls={"api": BASE}, orders_page_size=2,
                                   **settings)
    time = FakeTime()
    return AvitoConnector(account, clock=time.monotonic, sleep=time.sleep)


def order(order_id: str, created: str = "2026-07-10T11:44:39Z", **extra) -> dict:
    base = copy.deepcopy(load_fixture("avito", "orders.response.json")["orders"][0])
    base.update(id=order_id, createdAt=created, **extra)
    return base


def token_route(*tokens: str):
    answers = [httpx.Response(200, json={"access_token": t, "expires_in": 86400, "token_type": "Bearer"})
               for t in tokens]
    return respx.post(f"{BASE}/token").mock(side_effect=answers)


def query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(str(request.url)).query)


@respx.mock
async def test_orders_pages_start_at_1_and_end_where_has_more_is_false_not_on_a_short_page():
    token_route("tok-1")
    pages = {"1": {"hasMore": True, "orders": [order("1"), order("2")]},
             "2": {"hasMore": True, "orders": [order("3")]},  # short, and not the end
             "3": {"hasMore": False, "orders": [order("4"), order("5", created="2026-08-02T00:00:00Z")]}}
    route = respx.get(f"{BASE}/order-management/1/orders").mock(
        side_effect=lambda request: httpx.Response(200, json=pages[query(request)["page"][0]]))
    async with connector() as conn:
        ids = [o["id"] async for p in conn.client.orders(WINDOW) for o in p.items]
    assert ids == ["1", "2", "3", "4"]  # order 5 was created after the window: the next window's
    asked = [query(c.request) for c in route.calls]
    assert [q["page"] for q in asked] == [["1"], ["2"], ["3"]]
    # dateFrom is the window's start in unix seconds; there is no dateTo (avito.md §3).
    assert {q["dateFrom"][0] for q in asked} == {str(int(WINDOW.start.timestamp()))}
    assert all("dateTo" not in q for q in asked)
    assert route.calls[0].request.headers["Authorization"] == "Bearer tok-1"


@respx.mock
async def test_open_orders_are_asked_by_repeated_status_keys():
    token_route("tok-1")
    route = respx.get(f"{BASE}/order-management/1/orders").mock(
        return_value=httpx.Response(200, json={"hasMore": False, "orders": [order("9")]}))
    async with connector() as conn:
        [page] = [p async for p in conn.client.open_orders(WINDOW)]
    url = str(route.calls[0].request.url)
    assert "statuses=on_confirmation&statuses=ready_to_ship" in url and "statuses%5B%5D" not in url
    assert set(query(route.calls[0].request)["statuses"]) == {
        "on_confirmation", "ready_to_ship", "in_transit", "delivered", "on_return", "in_dispute"}
    assert [o["id"] for o in page.items] == ["9"]


@respx.mock
async def test_the_buyers_name_phone_and_address_never_leave_the_client():
    token_route("tok-1")
    fragment = load_fixture("avito", "orders_rdbs_buyerInfo.fragment.json")["delivery"]
    respx.get(f"{BASE}/order-management/1/orders").mock(return_value=httpx.Response(
        200, json={"hasMore": False, "orders": [order("7", delivery=fragment)]}))
    async with connector() as conn:
        [page] = [p async for p in conn.client.orders(WINDOW)]
    shown = repr(page.items)
    assert "Пушкин" not in shown and "79876543210" not in shown and "Каретный" not in shown
    assert page.items[0]["delivery"] == {"serviceType": "rdbs"}


@respx.mock
async def test_the_token_is_fetched_once_with_the_form_and_refreshed_once_on_403():
    tokens = token_route("tok-1", "tok-2")
    calls = iter([httpx.Response(403, json={"code": 403, "message": "token expired"}),
                  httpx.Response(200, json={"hasMore": False, "orders": [order("1")]}),
                  httpx.Response(200, json={"hasMore": False, "orders": []})])
    route = respx.get(f"{BASE}/order-management/1/orders").mock(side_effect=lambda request: next(calls))
    async with connector() as conn:
        assert [o["id"] async for p in conn.client.orders(WINDOW) for o in p.items] == ["1"]
        assert [o async for p in conn.client.open_orders(WINDOW) for o in p.items] == []
    form = parse_qs(tokens.calls[0].request.content.decode())
    assert form == {"grant_type": ["client_credentials"], "client_id": ["cid-7"], "client_secret": [SECRET]}
    assert tokens.calls[0].request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert tokens.call_count == 2  # the first, and one refresh after the 403
    assert [c.request.headers["Authorization"] for c in route.calls] == ["Bearer tok-1", "Bearer tok-2", "Bearer tok-2"]


@respx.mock
async def test_a_403_with_a_fresh_token_is_an_auth_error_after_one_refresh(caplog):
    tokens = token_route("tok-1", "tok-2", "tok-3")
    route = respx.get(f"{BASE}/order-management/1/orders").mock(
        return_value=httpx.Response(403, json={"code": 403, "message": "API is not enabled"}))
    async with connector() as conn:
        with pytest.raises(AuthError, match="API is not enabled"):
            [p async for p in conn.client.orders(WINDOW)]
    assert tokens.call_count == 2 and route.call_count == 2
    assert SECRET not in caplog.text and "tok-1" not in caplog.text


@respx.mock
async def test_wrong_client_credentials_are_one_clear_error_naming_them():
    respx.post(f"{BASE}/token").mock(return_value=httpx.Response(400, json={"error": "invalid_client"}))
    respx.get(f"{BASE}/order-management/1/orders").mock(return_value=httpx.Response(200, json={}))
    async with connector() as conn:
        with pytest.raises(AuthError) as caught:
            [p async for p in conn.client.orders(WINDOW)]
    assert "invalid_client" in str(caught.value) and "client_id" in str(caught.value)
    assert SECRET not in str(caught.value)


@respx.mock
async def test_without_messenger_on_the_tariff_the_buyer_stream_is_unavailable_saying_why():
    token_route("tok-1", "tok-2")
    respx.get(f"{BASE}/core/v1/accounts/self").mock(return_value=httpx.Response(200, json={"id": 55}))
    respx.get(f"{BASE}/order-management/1/orders").mock(
        return_value=httpx.Response(200, json={"hasMore": False, "orders": [order("1")]}))
    respx.get(url__regex=rf"{BASE}/messenger/v2/accounts/55/chats/.*").mock(
        return_value=httpx.Response(403, json={"error": {"code": 403, "message": "no access"}}))
    async with connector() as conn:
        with pytest.raises(StreamUnavailable, match="«Максимальный»"):
            [p async for p in conn.client.order_buyers(WINDOW)]


@respx.mock
async def test_the_buyer_of_an_order_is_the_other_user_of_its_chat_asked_once_per_chat():
    token_route("tok-1")
    respx.get(f"{BASE}/core/v1/accounts/self").mock(return_value=httpx.Response(200, json={"id": 55}))
    respx.get(f"{BASE}/order-management/1/orders").mock(
        return_value=httpx.Response(200, json={"hasMore": False, "orders": [order("1"), order("2")]}))
    chat = respx.get(url__regex=rf"{BASE}/messenger/v2/accounts/55/chats/.*").mock(
        return_value=httpx.Response(200, json={"id": "c", "users": [{"id": 55, "name": "shop"},
                                                                    {"id": 94235311, "name": "Олег"}]}))
    async with connector() as conn:
        items = [o async for p in conn.client.order_buyers(WINDOW) for o in p.items]
    assert [o["_buyer_user_id"] for o in items] == [94235311, 94235311]
    assert chat.call_count == 1  # both orders' items share the example's chat


@respx.mock
async def test_reviews_are_read_to_the_total_advancing_by_what_each_page_held():
    token_route("tok-1")
    base = load_fixture("avito", "reviews.response.json")["reviews"][0]
    made = [dict(base, id=n, createdAt=int(datetime(2026, 7, 2, tzinfo=UTC).timestamp()) + n) for n in range(5)]
    served = {0: made[:2], 2: made[2:3], 3: made[3:]}  # a short page in the middle
    route = respx.get(f"{BASE}/ratings/v1/reviews").mock(side_effect=lambda request: httpx.Response(
        200, json={"total": 5, "reviews": served[int(query(request)["offset"][0])]}))
    async with connector(reviews_page_size=2) as conn:
        ids = [r["id"] async for p in conn.client.reviews(WINDOW) for r in p.items]
    assert ids == [0, 1, 2, 3, 4]
    assert [query(c.request)["offset"] for c in route.calls] == [["0"], ["2"], ["3"]]


@respx.mock
async def test_the_token_is_asked_at_token_slash_where_only_that_is_served():
    # "docs show /token/, the spec paths /token; clients use both" (avito.md §9).
    respx.post(f"{BASE}/token").mock(return_value=httpx.Response(404, json={"code": 404, "message": "not found"}))
    slashed = respx.post(f"{BASE}/token/").mock(return_value=httpx.Response(
        200, json={"access_token": "tok-s", "expires_in": 86400, "token_type": "Bearer"}))
    route = respx.get(f"{BASE}/order-management/1/orders").mock(
        return_value=httpx.Response(200, json={"hasMore": False, "orders": [order("1")]}))
    async with connector() as conn:
        assert [o["id"] async for p in conn.client.orders(WINDOW) for o in p.items] == ["1"]
    assert slashed.call_count == 1 and route.calls[0].request.headers["Authorization"] == "Bearer tok-s"
