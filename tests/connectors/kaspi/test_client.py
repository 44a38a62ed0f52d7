"""Kaspi.kz client against hand-written answers (respx): what it asks, and where each walk ends.

Expectations come from kaspi.md §2–§5.1, not from the emulator: one state per request, creation
bounds in epoch ms, zero-based pages up to `meta.pageCount`, the JSON:API headers, a browser
User-Agent, and a connect time-out that names its likely cause.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from pydantic import SecretStr

from connectors.base import Window
from connectors.errors import AuthError, RetryDeferred
from connectors.kaspi import KaspiConnector
from connectors.kaspi.client import BROWSER_USER_AGENT
from connectors.kaspi.settings import KaspiAccountSettings
from connectors.testing import FakeTime

pytestmark = pytest.mark.anyio
TOKEN = "kaspi-sentinel-token-41f9"
BASE = "https://kaspi.test"
ORDERS = f"{BASE}/shop/api/v2/orders"
WINDOW = Window(datetime(2026, 3, 1, 19, 0, tzinfo=UTC), datetime(2026, 3, 15, 19, 0, tzinfo=UTC))
STATES = ["SIGN_REQUIRED", "NEW", "PICKUP", "DELIVERY", "KASPI_DELIVERY", "ARCHIVE"]


def connector(time: FakeTime, **settings) -> KaspiConnector:
    account = KaspiAccountSettings(name="main", token_env="X", token=SecretStr(TOKEN), base_urls={"api": BASE},
                                   page_size=2, request_timeout_seconds=1.0, **settings)
    return KaspiConnector(account, clock=time.monotonic, sleep=time.sleep)


def order(code: str) -> dict:
    return {"type": "orders", "id": f"id-{code}", "attributes": {"code": code},
            "relationships": {"entries": {"data": [{"type": "orderentries", "id": f"e-{code}"}]}}}


def page(codes: list[str], page_count: int, total: int) -> httpx.Response:
    entries = [{"type": "orderentries", "id": f"e-{c}", "attributes": {"quantity": 1}} for c in codes]
    return httpx.Response(200, json={"data": [order(c) for c in codes], "included": entries,
                                     "meta": {"pageCount": page_count, "totalCount": total}})


def query(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}


async def read(conn: KaspiConnector) -> list[dict]:
    return [item async for p in conn.client.orders(WINDOW) for item in p.items]


@respx.mock
async def test_a_window_walks_every_state_in_lifecycle_order_with_ms_bounds_and_zero_based_pages():
    # ARCHIVE holds three pages; its middle page is short (one of two): only pageCount ends a walk.
    archive = {"0": page(["a1", "a2"], 3, 5), "1": page(["a3"], 3, 5), "2": page(["a4", "a5"], 3, 5)}

    def answer(request: httpx.Request) -> httpx.Response:
        q = query(request)
        if q["filter[orders][state]"] == "ARCHIVE":
            return archive[q["page[number]"]]
        return page([], 0, 0)

    route = respx.get(ORDERS).mock(side_effect=answer)
    time = FakeTime()
    async with connector(time) as conn:
        items = await read(conn)
    assert [i["attributes"]["code"] for i in items] == ["a1", "a2", "a3", "a4", "a5"]
    assert all(i["_entries"] and i["_entries"][0]["id"] == f"e-{i['attributes']['code']}" for i in items)
    asked = [query(call.request) for call in route.calls]
    assert [q["filter[orders][state]"] for q in asked] == STATES[:-1] + ["ARCHIVE"] * 3
    assert [q["page[number]"] for q in asked if q["filter[orders][state]"] == "ARCHIVE"] == ["0", "1", "2"]
    # 2026-03-01T19:00Z and 2026-03-15T19:00Z in ms (20,513 and 20,527 days × 86,400 s + 19 h).
    assert {(q["filter[orders][creationDate][$ge]"], q["filter[orders][creationDate][$lt]"]) for q in asked} == \
        {("1772391600000", "1773601200000")}
    assert {(q["page[size]"], q["include[orders]"]) for q in asked} == {("2", "entries")}
    headers = route.calls[0].request.headers
    assert headers["X-Auth-Token"] == TOKEN
    assert headers["Content-Type"] == headers["Accept"] == "application/vnd.api+json"
    assert headers["User-Agent"] == BROWSER_USER_AGENT


@respx.mock
async def test_a_state_whose_total_changed_mid_walk_is_walked_again():
    # An order left NEW between page 0 and page 1: the pages shifted, so NEW is read once more.
    answers = iter([page(["n1", "n2"], 2, 3), page(["n4"], 1, 2), page(["n2", "n4"], 1, 2)])

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers) if query(request)["filter[orders][state]"] == "NEW" else page([], 0, 0)

    respx.get(ORDERS).mock(side_effect=answer)
    async with connector(FakeTime()) as conn:
        codes = [i["attributes"]["code"] for i in await read(conn)]
    assert codes == ["n1", "n2", "n4", "n2", "n4"]  # duplicates are the store's to merge


@respx.mock
async def test_an_account_user_agent_replaces_the_browser_one():
    route = respx.get(ORDERS).mock(return_value=page([], 0, 0))
    async with connector(FakeTime(), user_agent="MyShop/2.0 (+https://shop.kz)") as conn:
        await read(conn)
    assert route.calls[0].request.headers["User-Agent"] == "MyShop/2.0 (+https://shop.kz)"


@respx.mock
async def test_connect_time_outs_are_one_error_naming_the_likely_cause(caplog):
    respx.get(ORDERS).mock(side_effect=httpx.ConnectTimeout("timed out"))
    async with connector(FakeTime()) as conn:
        with pytest.raises(RetryDeferred) as caught:
            await read(conn)
    message = str(caught.value)
    assert "Kaspi unreachable" in message and "Kazakhstan" in message and "proxy" in message
    assert "user_agent" in message and TOKEN not in message and TOKEN not in caplog.text


@respx.mock
async def test_a_refused_token_is_an_auth_error_with_kaspis_words_and_never_the_token(caplog):
    caplog.set_level(logging.DEBUG)
    respx.get(ORDERS).mock(return_value=httpx.Response(401, json={"errors": [{"title": "Invalid token"}]}))
    async with connector(FakeTime()) as conn:
        with pytest.raises(AuthError) as caught:
            await read(conn)
    assert "Invalid token" in str(caught.value)
    assert TOKEN not in str(caught.value) and TOKEN not in caplog.text


def test_a_proxy_password_is_a_secret_and_a_bad_proxy_url_is_refused():
    account = KaspiAccountSettings(name="m", token_env="X", token=SecretStr(TOKEN),
                                   proxy="http://shop:pr0xy-pass-77@10.0.0.5:3128")
    conn = KaspiConnector(account)
    assert "pr0xy-pass-77" in conn.client.http._secrets
    with pytest.raises(ValueError, match="proxy"):
        KaspiAccountSettings(name="m", token_env="X", proxy="10.0.0.5:3128")
