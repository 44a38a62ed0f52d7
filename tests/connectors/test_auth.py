"""The auth hook: OAuth2 client credentials (cache, refresh ahead, 401 once, one fetch for many),
the token inside the JSON body, fixed headers, and the User-Agent on the wire. All through an ASGI
platform double on `httpx.ASGITransport`; nothing reaches the network."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.auth import BodyTokenAuth, CachedToken, ClientCredentials, HeaderAuth, MemoryTokenCache, TokenCache
from connectors.errors import AuthError, RetryDeferred
from connectors.http import ApiClient, RetryPolicy, default_user_agent
from connectors.redaction import RedactingFilter, SecretSet
from connectors.testing import FakeTime

API = "https://api.platform.example"
TOKEN_URL = "https://api.platform.example/token"
CLIENT_ID = "client-id-42"
CLIENT_SECRET = "client-secret-sentinel-9d41"  # noqa: S105 - fake, hunted for in output
T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


class Wall:
    """A wall clock tests move by hand (token expiry is wall time, shared by replicas)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Platform:
    """An OAuth2 platform double (shapes of avito.md §2): `POST /token` issues `access-N` tokens of
    `lifetime` seconds; `/orders` wants a live one; `/echo` answers with what it was sent."""

    def __init__(self, *, lifetime: int = 86400, token_delay: float = 0.0, oauth: bool = True):
        self.oauth = oauth  # False: /orders takes any credentials (body-token and header kinds)
        self.lifetime = lifetime
        self.token_delay = token_delay
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.token_forms: list[dict[str, str]] = []
        self.seen: list[httpx.Headers | Any] = []
        self.bodies: list[Any] = []
        self.reject_next = 0  # answer this many API calls 401 whatever the token
        self.fail_with_token_in_message = False
        self.app = Starlette(routes=[
            Route("/token", self.token, methods=["POST"]),
            Route("/orders", self.orders, methods=["GET", "POST"]),
        ])

    async def token(self, request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode()))  # form-urlencoded (avito.md §2)
        self.token_forms.append(form)
        self.seen.append(request.headers)
        if form.get("client_secret") != CLIENT_SECRET or form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        await asyncio.sleep(self.token_delay)  # a slow token endpoint: callers pile up meanwhile
        value = f"access-{len(self.issued) + 1}-tok"
        self.issued.append(value)
        return JSONResponse({"access_token": value, "expires_in": self.lifetime, "token_type": "Bearer"})

    async def orders(self, request: Request) -> JSONResponse:
        self.seen.append(request.headers)
        body = await request.body()
        self.bodies.append(orjson.loads(body) if body else None)
        auth = request.headers.get("authorization", "")
        if self.fail_with_token_in_message:
            return JSONResponse({"message": f"internal error for {auth}"}, status_code=500)
        if self.reject_next:
            self.reject_next -= 1
            return JSONResponse({"message": "token expired"}, status_code=401)
        token = auth.removeprefix("Bearer ")
        if self.oauth and (token not in self.issued or token in self.revoked):
            return JSONResponse({"message": "unauthorized"}, status_code=401)
        return JSONResponse({"orders": [], "token": token})


def _oauth(wall: Wall, *, cache: TokenCache | None = None, secrets: SecretSet | None = None,
           **kwargs: Any) -> ClientCredentials:
    return ClientCredentials(token_url=TOKEN_URL, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, cache=cache,
                             now=wall, runtime_secrets=secrets if secrets is not None else SecretSet(), **kwargs)


def _client(platform: Platform, auth: Any, **kwargs: Any) -> ApiClient:
    fake = FakeTime()
    kwargs.setdefault("retry", RetryPolicy(max_attempts=2))
    return ApiClient(marketplace="avito", base_urls={"api": API}, auth=auth,
                     transport=httpx.ASGITransport(app=platform.app), sleep=fake.sleep, clock=fake.monotonic,
                     **kwargs)


def _bearer(headers: Any) -> str:
    return headers["authorization"].removeprefix("Bearer ")


@pytest.mark.anyio
async def test_the_token_is_fetched_once_with_the_client_credentials_and_cached() -> None:
    platform, wall = Platform(), Wall()
    auth = _oauth(wall)
    async with _client(platform, auth) as client:
        for _ in range(3):
            body = await client.request_json("GET", "api", "/orders")
    assert body["token"] == "access-1-tok"
    assert platform.token_forms == [{"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                     "client_secret": CLIENT_SECRET}]
    assert auth.fetches == 1


@pytest.mark.anyio
async def test_the_token_is_refreshed_ahead_of_expiry_not_after() -> None:
    # A 1 h token: 10 % is 6 min, more than the 5 min floor, so it is renewed with 6 min left.
    platform, wall = Platform(lifetime=3600), Wall()
    async with _client(platform, _oauth(wall)) as client:
        await client.request("GET", "api", "/orders")
        wall.now = T0 + timedelta(minutes=53, seconds=59)  # 6 min 1 s left: still good
        assert _bearer(platform.seen[-1]) == "access-1-tok"
        await client.request("GET", "api", "/orders")
        assert platform.issued == ["access-1-tok"]
        wall.now = T0 + timedelta(minutes=54, seconds=1)  # 5 min 59 s left: renewed before use
        await client.request("GET", "api", "/orders")
    assert platform.issued == ["access-1-tok", "access-2-tok"]
    assert _bearer(platform.seen[-1]) == "access-2-tok"


def test_the_refresh_margin_is_a_tenth_of_the_lifetime_or_five_minutes() -> None:
    wall = Wall()
    auth = _oauth(wall)

    def due(lifetime: timedelta, left: timedelta) -> bool:
        issued = T0 - (lifetime - left)
        return auth.needs_refresh(CachedToken("x" * 8, issued_at=issued, expires_at=issued + lifetime))

    day = timedelta(hours=24)  # Avito's 86400 s: renewed with 2.4 h left
    assert not due(day, timedelta(hours=2, minutes=25))
    assert due(day, timedelta(hours=2, minutes=23))
    assert not due(timedelta(minutes=20), timedelta(minutes=5, seconds=1))  # the 5 min floor
    assert due(timedelta(minutes=20), timedelta(minutes=4, seconds=59))
    assert not due(timedelta(minutes=4), timedelta(minutes=2, seconds=1))  # never more than half
    assert due(day, timedelta(0))


@pytest.mark.anyio
async def test_a_401_refreshes_once_and_sends_again() -> None:
    platform, wall = Platform(), Wall()
    auth = _oauth(wall)
    async with _client(platform, auth) as client:
        await client.request("GET", "api", "/orders")
        platform.revoked.add("access-1-tok")  # e.g. another app issued a new one (avito.md §2)
        body = await client.request_json("GET", "api", "/orders")
    assert body["token"] == "access-2-tok"
    assert auth.fetches == 2
    assert [_bearer(h) for h in platform.seen if "authorization" in h] == [
        "access-1-tok", "access-1-tok", "access-2-tok"]


@pytest.mark.anyio
async def test_a_second_401_is_the_platforms_answer_not_a_loop() -> None:
    platform, wall = Platform(), Wall()
    auth = _oauth(wall)
    platform.reject_next = 10
    async with _client(platform, auth) as client:
        with pytest.raises(AuthError) as caught:
            await client.request("GET", "api", "/orders")
    assert caught.value.status == 401
    assert auth.fetches == 2  # the first token, and one refresh
    assert platform.reject_next == 8  # the request, and one retry with the new token


@pytest.mark.anyio
async def test_twenty_concurrent_requests_share_one_token_fetch() -> None:
    platform, wall = Platform(token_delay=0.05), Wall()
    auth = _oauth(wall)
    async with _client(platform, auth) as client:
        bodies = await asyncio.gather(*(client.request_json("GET", "api", "/orders") for _ in range(20)))
    assert platform.issued == ["access-1-tok"]
    assert {b["token"] for b in bodies} == {"access-1-tok"}


@pytest.mark.anyio
async def test_twenty_concurrent_401s_share_one_refresh() -> None:
    platform, wall = Platform(token_delay=0.01), Wall()
    async with _client(platform, _oauth(wall)) as client:
        await client.request("GET", "api", "/orders")
        platform.revoked.add("access-1-tok")
        bodies = await asyncio.gather(*(client.request_json("GET", "api", "/orders") for _ in range(20)))
    assert platform.issued == ["access-1-tok", "access-2-tok"]
    assert {b["token"] for b in bodies} == {"access-2-tok"}


@pytest.mark.anyio
async def test_two_clients_sharing_a_cache_fetch_one_token() -> None:
    platform, wall = Platform(token_delay=0.02), Wall()
    cache = MemoryTokenCache()
    first, second = _oauth(wall, cache=cache), _oauth(wall, cache=cache)
    async with _client(platform, first) as a, _client(platform, second) as b:
        await asyncio.gather(*(c.request("GET", "api", "/orders") for c in (a, b) for _ in range(5)))
    assert platform.issued == ["access-1-tok"]
    assert first.fetches + second.fetches == 1
    assert "access-1-tok" in second.secrets()  # a token another client fetched is masked here too


@pytest.mark.anyio
async def test_fetched_tokens_are_masked_in_errors_and_log_lines(caplog) -> None:
    platform, wall = Platform(), Wall()
    runtime = SecretSet()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter(runtime=runtime))
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        async with _client(platform, _oauth(wall, secrets=runtime)) as client:
            await client.request("GET", "api", "/orders")
            platform.fail_with_token_in_message = True  # the platform echoes the Authorization header
            with pytest.raises(RetryDeferred) as caught:
                await client.request("GET", "api", "/orders")
            logging.getLogger("loyalsync.test").error("failed: %s (sent %s)", caught.value, platform.issued[0])
    finally:
        logging.getLogger().removeHandler(handler)
    assert platform.issued == ["access-1-tok"]
    assert "access-1-tok" not in str(caught.value)
    assert "Bearer ***" in str(caught.value)
    http_lines = [r.getMessage() for r in caplog.records if r.name.startswith("loyalsync.http")]
    assert http_lines and not any("access-1-tok" in line for line in http_lines)  # retry lines: str(exc)
    logged = out.getvalue()
    assert "failed:" in logged and "access-1-tok" not in logged and CLIENT_SECRET not in logged
    assert {"access-1-tok", CLIENT_SECRET} <= set(runtime)


@pytest.mark.anyio
async def test_refused_client_credentials_are_an_auth_error_that_shows_no_secret() -> None:
    platform, wall = Platform(), Wall()
    auth = ClientCredentials(token_url=TOKEN_URL, client_id=CLIENT_ID, client_secret="wrong-secret-123",
                             now=wall, runtime_secrets=SecretSet())
    async with _client(platform, auth) as client:
        with pytest.raises(AuthError) as caught:
            await client.request("GET", "api", "/orders")
    assert caught.value.endpoint == "POST /token"
    assert "wrong-secret-123" not in str(caught.value)
    assert len(platform.seen) == 1  # the API itself was never called without a token


@pytest.mark.anyio
async def test_a_token_answer_without_expires_in_lives_the_default_lifetime() -> None:
    wall = Wall()

    async def send(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "no-expiry-token"}, request=request)

    auth = _oauth(wall, default_lifetime=timedelta(minutes=30))
    assert await auth.token(send) == "no-expiry-token"
    cached = await auth.cache.get(auth.cache_key)
    assert cached is not None and cached.expires_at == T0 + timedelta(minutes=30)


@pytest.mark.anyio
async def test_the_token_goes_into_the_json_body_and_a_header_and_is_masked() -> None:
    platform = Platform(oauth=False)
    merchant = "merchant-token-sentinel-77"
    async with _client(platform, BodyTokenAuth(merchant)) as client:
        await client.request("POST", "api", "/orders", json={"data": {"count": 100, "statuses": ["NEW"]}})
        await client.request("POST", "api", "/orders", json={"meta": {"x": 1}, "data": {"token": "stale"}})
        platform.fail_with_token_in_message = True
        with pytest.raises(RetryDeferred) as caught:
            await client.request("POST", "api", "/orders", json={})
    # megamarket.md §1, payloads/megamarket/order_search.request.json: {"meta": {}, "data": {"token", ...}}
    assert platform.bodies[0] == {"meta": {}, "data": {"token": merchant, "count": 100, "statuses": ["NEW"]}}
    assert platform.bodies[1] == {"meta": {"x": 1}, "data": {"token": merchant}}
    assert platform.bodies[2] == {"meta": {}, "data": {"token": merchant}}
    assert all(h["x-merchant-token"] == merchant for h in platform.seen)
    assert all(h["content-type"] == "application/json" for h in platform.seen)
    platform.fail_with_token_in_message = False
    assert merchant not in str(caught.value)


@pytest.mark.anyio
async def test_the_body_token_leaves_a_request_without_a_json_body_alone() -> None:
    platform = Platform(oauth=False)
    async with _client(platform, BodyTokenAuth("merchant-token-1234")) as client:
        await client.request("GET", "api", "/orders")
    assert platform.bodies == [None]
    assert platform.seen[0]["x-merchant-token"] == "merchant-token-1234"


@pytest.mark.anyio
async def test_header_auth_sets_its_headers_unless_a_call_sets_its_own() -> None:
    platform = Platform(oauth=False)
    auth = HeaderAuth({"Client-Id": "7", "Api-Key": "api-key-sentinel"}, secrets=["api-key-sentinel"])
    async with _client(platform, auth) as client:
        await client.request("GET", "api", "/orders")
        await client.request("GET", "api", "/orders", headers={"Client-Id": "8"})
    assert [(h["client-id"], h["api-key"]) for h in platform.seen] == [("7", "api-key-sentinel"),
                                                                       ("8", "api-key-sentinel")]
    assert auth.secrets() == ("api-key-sentinel",)


@pytest.mark.anyio
async def test_the_user_agent_is_on_every_request_token_requests_included() -> None:
    platform, wall = Platform(), Wall()
    async with _client(platform, _oauth(wall), user_agent="loyalsync-test/1.2 (+ops)") as client:
        await client.request("GET", "api", "/orders")
    assert [h["user-agent"] for h in platform.seen] == ["loyalsync-test/1.2 (+ops)"] * 2  # /token, /orders

    platform = Platform(oauth=False)
    async with _client(platform, HeaderAuth({})) as client:
        await client.request("GET", "api", "/orders")
    assert platform.seen[0]["user-agent"] == default_user_agent()
    assert default_user_agent().startswith("loyalsync/")


def _platform_clients(user_agent: str | None) -> list[tuple[Any, str, dict[str, str]]]:
    """Each built-in client, its first host's base URL and the auth headers it sent before the hook."""
    from pydantic import SecretStr

    from connectors.ozon.client import OzonClient
    from connectors.ozon.settings import OzonAccountSettings
    from connectors.wildberries.client import WildberriesClient
    from connectors.wildberries.settings import WildberriesAccountSettings
    from connectors.yandex_market.client import YandexMarketClient
    from connectors.yandex_market.settings import YandexMarketAccountSettings

    token, common = "platform-token-sentinel", {"name": "main", "token_env": "X", "user_agent": user_agent}
    wb = WildberriesAccountSettings(**common, token=SecretStr(token))
    oz = OzonAccountSettings(**common, token=SecretStr(token), client_id="123")
    ym = YandexMarketAccountSettings(**common, token=SecretStr(token), business_id=7)
    return [
        (WildberriesClient(wb), "marketplace", {"Authorization": token}),
        (OzonClient(oz), "api", {"Client-Id": "123", "Api-Key": token}),
        (YandexMarketClient(ym), "api", {"Api-Key": token}),
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("user_agent", [None, "SellerCo-sync/3.1"])
async def test_built_in_clients_send_their_old_auth_headers_and_the_user_agent(user_agent: str | None) -> None:
    import respx

    for platform_client, host, expected in _platform_clients(user_agent):
        base = platform_client.http.base_urls[host]
        with respx.mock(base_url=base, assert_all_called=True) as router:
            route = router.get("/ping").respond(200, json={})
            await platform_client.http.request("GET", host, "/ping")
            await platform_client.aclose()
        sent = route.calls.last.request.headers
        assert {k: sent[k] for k in expected} == expected, type(platform_client).__name__
        assert sent["User-Agent"] == (user_agent or default_user_agent())
        assert "python-httpx" not in sent["User-Agent"]
