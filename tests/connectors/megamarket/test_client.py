"""The Megamarket client against a small reference server written here from megamarket.md (§1, §2.1,
§2.2, §4), served through respx: each test is one trap of the document that would fail if ignored.

The reference server is deliberately plain: a list of shipments with creation instants; a search
returns the ids created within [dateFrom, dateTo] (both inclusive), at most `cap` of them, in an
order that has nothing to do with dates, and says nothing when it cut the list.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr, ValidationError

from connectors.base import Window
from connectors.errors import AuthError, FatalApiError
from connectors.megamarket.client import REFUSED, SEARCH, MegamarketClient, megamarket_time
from connectors.megamarket.settings import MegamarketAccountSettings
from connectors.testing import FakeTime

pytestmark = pytest.mark.anyio
HOST = "https://api.megamarket.tech"
TOKEN = "mm-token-3f9a1c"
DAY0 = datetime(2026, 7, 10, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class ReferenceMegamarket:
    """megamarket.md as a dict of shipments, checked on every request."""

    created: dict[str, datetime]
    cap: int = 100
    status: dict[str, str] = field(default_factory=dict)
    searches: list[dict[str, Any]] = field(default_factory=list)
    gets: list[list[str]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[httpx.Headers] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    clock: FakeTime | None = None
    hide_once: set[str] = field(default_factory=set)  # get leaves these out the first time asked
    # Stricter readings of the doc a server might hold: `statuses` required, only some names taken,
    # a smaller order/get batch, shipments order/get refuses outright.
    require_statuses: bool = False
    known_statuses: frozenset[str] | None = None
    get_limit: int | None = None
    refuse_ids: frozenset[str] = frozenset()
    refusals: int = 0

    def refuse(self, message: str) -> httpx.Response:
        self.refusals += 1
        return httpx.Response(400, json={"success": 0, "meta": {}, "error": {"code": "VALIDATION", "message": message}})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.headers.append(request.headers)
        if self.clock is not None:
            self.times.append(self.clock.monotonic())
        data = body["data"]
        if request.url.path == SEARCH:
            if self.require_statuses and not data.get("statuses"):
                return self.refuse("statuses is required")
            if self.known_statuses is not None and set(data.get("statuses") or ()) - self.known_statuses:
                return self.refuse("unknown status")
            self.searches.append(data)
            low, high = datetime.fromisoformat(data["dateFrom"]), datetime.fromisoformat(data["dateTo"])
            wanted = set(data.get("statuses") or ())
            found = [i for i, at in self.created.items() if low <= at <= high
                     and (not wanted or self.status.get(i, "NEW") in wanted)]
            found.sort(key=lambda i: hashlib.sha256(i.encode()).hexdigest())  # no date order (§2.1)
            return ok({"shipments": found[:min(int(data.get("count", 100)), self.cap)]})
        if self.get_limit is not None and len(data["shipments"]) > self.get_limit:
            return self.refuse(f"at most {self.get_limit} shipments")
        if self.refuse_ids & set(data["shipments"]):
            return self.refuse("shipment not available")
        self.gets.append(list(data["shipments"]))
        shown = [i for i in data["shipments"] if i in self.created and i not in self.hide_once]
        self.hide_once -= set(data["shipments"])
        return ok({"shipments": [{"shipmentId": i, "creationDate": self.created[i].isoformat()} for i in shown]})


def ok(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"success": 1, "meta": {}, "data": data})


def account(**extra: Any) -> MegamarketAccountSettings:
    return MegamarketAccountSettings(name="main", token_env="MM_TOKEN", token=SecretStr(TOKEN), **extra)


def client(time: FakeTime | None = None, **extra: Any) -> MegamarketClient:
    time = time or FakeTime()
    return MegamarketClient(account(**extra), clock=time.monotonic, sleep=time.sleep,
                            user_agent="loyalsync/1.0")


async def all_shipments(mm: MegamarketClient, window: Window) -> list[str]:
    ids = []
    async for page in mm.shipments(window):
        ids += [s["shipmentId"] for s in page.items]
    await mm.aclose()
    return ids


def spread(count: int, start: datetime, span: timedelta, prefix: str) -> dict[str, datetime]:
    step = span / count
    return {f"{prefix}{k}": (start + step * k).replace(microsecond=0) for k in range(count)}


@respx.mock
async def test_a_day_holding_five_times_the_cap_loses_no_shipment() -> None:
    busy = spread(500, DAY0 + timedelta(days=3), timedelta(hours=20), "busy")
    calm = spread(60, DAY0, timedelta(days=7), "calm")
    server = ReferenceMegamarket({**busy, **calm})
    respx.post(url__startswith=HOST).mock(side_effect=server)
    ids = await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=7)))
    assert sorted(ids) == sorted(server.created)  # every shipment, each once
    assert len(ids) == len(set(ids))
    # Every window the client settled on came back below the cap: none was taken at its word.
    leaves = [s for s in server.searches if _found(server, s) < server.cap]
    assert leaves and all(_found(server, s) < server.cap for s in leaves)
    # Bisection, not a crawl: a few searches per hundred shipments.
    assert len(server.searches) <= 4 * len(server.created) // server.cap + 10


def _found(server: ReferenceMegamarket, search: dict[str, Any]) -> int:
    low, high = datetime.fromisoformat(search["dateFrom"]), datetime.fromisoformat(search["dateTo"])
    return sum(1 for at in server.created.values() if low <= at <= high)


@respx.mock
async def test_a_client_that_trusted_a_full_search_would_have_lost_shipments() -> None:
    """The trap itself: one search of the busy day answers exactly the cap, silently."""
    busy = spread(500, DAY0, timedelta(hours=20), "busy")
    server = ReferenceMegamarket(busy)
    respx.post(url__startswith=HOST).mock(side_effect=server)
    first = server(httpx.Request("POST", HOST + SEARCH, json={"meta": {}, "data": {
        "token": TOKEN, "dateFrom": megamarket_time(DAY0), "dateTo": megamarket_time(DAY0 + timedelta(days=1)),
        "count": 100}}))
    assert len(first.json()["data"]["shipments"]) == 100 < len(busy)
    assert sorted(await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1)))) == sorted(busy)


@respx.mock
async def test_a_second_holding_the_cap_is_searched_status_by_status() -> None:
    crowd = {f"s{k}": DAY0 + timedelta(hours=5) for k in range(150)}
    server = ReferenceMegamarket(crowd, status={f"s{k}": ("NEW", "CONFIRMED", "DELIVERED")[k % 3] for k in range(150)})
    respx.post(url__startswith=HOST).mock(side_effect=server)
    ids = await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1)))
    assert sorted(ids) == sorted(crowd)
    assert any(s.get("statuses") for s in server.searches)


@respx.mock
async def test_requests_carry_the_token_in_body_and_header_and_a_product_user_agent() -> None:
    server = ReferenceMegamarket(spread(3, DAY0, timedelta(hours=3), "a"))
    respx.post(url__startswith=HOST).mock(side_effect=server)
    await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1)))
    assert server.bodies and server.gets
    for body, headers in zip(server.bodies, server.headers, strict=True):
        assert body["meta"] == {} and body["data"]["token"] == TOKEN  # §1: the body envelope
        assert headers["X-Merchant-Token"] == TOKEN and headers["Content-Type"] == "application/json"
        assert headers["User-Agent"] == "loyalsync/1.0"  # never python-httpx/* (§1)
    search = server.searches[0]
    # Never a status filter we did not need: a shipment in an undocumented status is listed too.
    assert "statuses" not in search and search["count"] == 100


@respx.mock
async def test_search_bounds_are_moscow_time_with_their_offset_and_cover_the_window() -> None:
    server = ReferenceMegamarket({})
    respx.post(url__startswith=HOST).mock(side_effect=server)
    start = datetime(2026, 7, 10, 21, 0, 0, 250000, tzinfo=UTC)
    await all_shipments(client(), Window(start, start + timedelta(hours=2, microseconds=500)))
    search = server.searches[0]
    # 21:00:00.25 UTC is 00:00:00 on the 11th in Moscow; the bounds widen to whole seconds, never narrow.
    assert search["dateFrom"] == "2026-07-11T00:00:00+03:00"
    assert search["dateTo"] == "2026-07-11T02:00:01+03:00"


@respx.mock
async def test_a_shipment_order_get_left_out_is_asked_for_again() -> None:
    server = ReferenceMegamarket(spread(10, DAY0, timedelta(hours=5), "g"), hide_once={"g3", "g7"})
    respx.post(url__startswith=HOST).mock(side_effect=server)
    ids = await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1)))
    assert sorted(ids) == sorted(server.created)
    assert server.gets[1] == ["g3", "g7"]


@respx.mock
async def test_get_batches_follow_the_setting() -> None:
    server = ReferenceMegamarket(spread(95, DAY0, timedelta(hours=20), "b"))
    respx.post(url__startswith=HOST).mock(side_effect=server)
    await all_shipments(client(get_batch=40), Window(DAY0, DAY0 + timedelta(days=1)))
    assert [len(batch) for batch in server.gets] == [40, 40, 15]


@respx.mock
async def test_no_second_holds_more_than_five_requests() -> None:
    time = FakeTime()
    server = ReferenceMegamarket(spread(450, DAY0, timedelta(days=2), "r"), clock=time)
    respx.post(url__startswith=HOST).mock(side_effect=server)
    await all_shipments(client(time), Window(DAY0, DAY0 + timedelta(days=2)))
    assert len(server.times) > 20
    # §4: "up to 5 requests per second per seller", counted over any 1-second span.
    worst = max(sum(1 for t in server.times if s <= t < s + 1.0) for s in server.times)
    assert worst <= 5
    assert server.times[-1] - server.times[0] < len(server.times) / 5 + 1  # and not much slower


@respx.mock
async def test_an_invalid_token_in_a_200_body_is_an_auth_error_without_the_token() -> None:
    respx.post(url__startswith=HOST).mock(return_value=httpx.Response(200, json={
        "success": 0, "meta": {}, "error": {"code": "VALIDATION", "message": "invalid token"}}))
    with pytest.raises(AuthError) as caught:
        await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1)))
    message = str(caught.value)
    assert "token was rejected" in message and "invalid token" in message and TOKEN not in message
    assert "test and production" in message


@respx.mock
async def test_any_other_success_0_stops_with_megamarket_s_words() -> None:
    respx.post(url__startswith=HOST).mock(return_value=httpx.Response(200, json={
        "success": 0, "meta": {}, "error": {"code": "VALIDATION", "message": "dateFrom is invalid"}}))
    with pytest.raises(FatalApiError, match="dateFrom is invalid") as caught:
        await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1)))
    assert not isinstance(caught.value, AuthError)


@respx.mock
async def test_a_block_page_names_the_user_agent_not_the_token() -> None:
    respx.post(url__startswith=HOST).mock(return_value=httpx.Response(
        403, text="<html><body><h1>403 Forbidden</h1></body></html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(FatalApiError) as caught:
        await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1)))
    assert not isinstance(caught.value, AuthError)
    assert "check User-Agent" in str(caught.value) and "loyalsync/1.0" in str(caught.value)


@respx.mock
async def test_a_json_403_is_a_token_error() -> None:
    respx.post(url__startswith=HOST).mock(return_value=httpx.Response(403, json={
        "success": 0, "meta": {}, "error": {"code": "FORBIDDEN", "message": "access denied"}}))
    with pytest.raises(AuthError):
        await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1)))


@respx.mock
async def test_the_500_megamarket_warns_of_is_retried() -> None:
    server = ReferenceMegamarket(spread(5, DAY0, timedelta(hours=5), "f"))
    answers = iter([httpx.Response(500, json={"success": 0, "meta": {}, "error": {"message": "internal"}})])
    respx.post(url__startswith=HOST).mock(side_effect=lambda request: next(answers, None) or server(request))
    assert sorted(await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1)))) == sorted(server.created)


@respx.mock
async def test_an_internal_error_told_in_a_200_body_is_retried_too() -> None:
    server = ReferenceMegamarket(spread(5, DAY0, timedelta(hours=5), "i"))
    answers = iter([httpx.Response(200, json={"success": 0, "meta": {}, "error": {"code": "INTERNAL_ERROR",
                                                                                   "message": "try later"}})])
    respx.post(url__startswith=HOST).mock(side_effect=lambda request: next(answers, None) or server(request))
    assert len(await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1)))) == 5


@respx.mock
async def test_the_same_shipment_in_two_windows_is_read_once() -> None:
    seam = DAY0 + timedelta(hours=12)
    server = ReferenceMegamarket({"seam": seam, **spread(150, DAY0, timedelta(hours=23), "w")})
    respx.post(url__startswith=HOST).mock(side_effect=server)
    ids = await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1)))
    assert Counter(ids)["seam"] == 1 and sorted(ids) == sorted(server.created)
    assert sum(batch.count("seam") for batch in server.gets) == 1


def test_the_environment_picks_the_host_its_token_belongs_to() -> None:
    # §1: "test and prod need different tokens", each bound to its host.
    assert account().base_urls["api"] == "https://api.megamarket.tech"
    assert account(environment="test").base_urls["api"] == "https://api-test.megamarket.tech"
    assert account(base_urls={"api": "http://127.0.0.1:8080"}).base_urls["api"] == "http://127.0.0.1:8080"
    with pytest.raises(ValidationError, match="production host but environment is 'test'"):
        account(environment="test", base_urls={"api": "https://api.megamarket.tech"})


@pytest.mark.parametrize("agent", ["python-requests/2.26.0", "python-httpx/0.28.1", "aiohttp/3.9", "curl/8.0"])
def test_a_library_user_agent_is_refused_in_the_config(agent: str) -> None:
    with pytest.raises(ValidationError, match="Megamarket blocks"):
        account(user_agent=agent)
    assert account(user_agent="loyalsync/1.0 (my-shop)").user_agent == "loyalsync/1.0 (my-shop)"


DOC_EIGHT = frozenset({"NEW", "CONFIRMED", "PACKED", "PACKING_EXPIRED", "SHIPPED", "DELIVERED", "MERCHANT_CANCELED",
                       "CUSTOMER_CANCELED"})


@respx.mock
@pytest.mark.parametrize(("known", "expected"), [(None, 13), (DOC_EIGHT, 8)])
async def test_a_server_that_insists_on_statuses_gets_them_and_is_asked_so_from_then_on(known, expected) -> None:
    server = ReferenceMegamarket(spread(250, DAY0, timedelta(days=2), "s"), require_statuses=True,
                                 known_statuses=known)
    respx.post(url__startswith=HOST).mock(side_effect=server)
    ids = await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=3)))
    assert sorted(ids) == sorted(server.created)
    assert {len(s["statuses"]) for s in server.searches} == {expected}
    assert server.refusals == 1 + (known is not None)  # refused once per filter it does not take, no more


@respx.mock
async def test_a_smaller_order_get_limit_is_found_by_halving_and_kept() -> None:
    server = ReferenceMegamarket(spread(90, DAY0, timedelta(hours=20), "h"), get_limit=12)
    respx.post(url__startswith=HOST).mock(side_effect=server)
    ids = await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1)))
    assert sorted(ids) == sorted(server.created)
    assert max(len(batch) for batch in server.gets) <= 12
    assert server.refusals <= 3  # 50 → 25 → 12, then batches of 12


@respx.mock
async def test_a_shipment_order_get_refuses_comes_back_marked_for_quarantine() -> None:
    server = ReferenceMegamarket(spread(8, DAY0, timedelta(hours=5), "q"), refuse_ids=frozenset({"q5"}))
    respx.post(url__startswith=HOST).mock(side_effect=server)
    mm = client()
    items = [item async for page in mm.shipments(Window(DAY0, DAY0 + timedelta(days=1))) for item in page.items]
    await mm.aclose()
    assert sorted(i["shipmentId"] for i in items) == sorted(server.created)
    [refused] = [i for i in items if REFUSED in i]
    assert refused == {"shipmentId": "q5", REFUSED: "shipment not available"}


@respx.mock
async def test_an_empty_result_written_as_null_is_empty() -> None:
    respx.post(url__startswith=HOST).mock(return_value=httpx.Response(200, json={
        "success": 1, "meta": {}, "data": {"shipments": None}}))
    assert await all_shipments(client(), Window(DAY0, DAY0 + timedelta(days=1))) == []
