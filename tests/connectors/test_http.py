"""ApiClient: one response table, tenacity retries that follow hints, pacing feedback, redaction."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

import connectors.http
from connectors.errors import (
    AuthError,
    FatalApiError,
    RateLimitedError,
    RetriableApiError,
    RetryDeferred,
)
from connectors.http import (
    DEFAULT_ERROR_MAPPING,
    ApiClient,
    PlatformErrorInfo,
    RedactingFilter,
    ResponseAction,
    RetryPolicy,
    classify,
    parse_retry_after,
    redact,
)
from connectors.ratelimit import EndpointGroup, Rate, RateLimiter
from connectors.testing import FakeTime

MP = "https://marketplace-api.example"
ORDERS = "/api/v3/orders"
TOKEN = "sentinel-token-5f3c9a1e"  # noqa: S105 - a fake token the tests hunt for
WB_HINTS = ("X-Ratelimit-Retry", "Retry-After")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def _limiter(fake: FakeTime, rate: Rate = Rate(300, 60, 20), cost_of_4xx: int = 10) -> RateLimiter:
    group = EndpointGroup("fbs", rate, host="marketplace", path_prefixes=("/api/v3/orders",),
                          cost_of_4xx=cost_of_4xx)
    return RateLimiter([group], clock=fake.monotonic, sleep=fake.sleep)


def wb_describe(response: httpx.Response) -> PlatformErrorInfo:
    body = response.json()
    return PlatformErrorInfo(message=body.get("detail", ""), request_id=body.get("requestId", ""))


def _client(fake: FakeTime, *, limiter: RateLimiter | None = None, **kwargs: Any) -> ApiClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=6))
    kwargs.setdefault("retry_after_headers", WB_HINTS)
    return ApiClient(
        marketplace="wildberries",
        base_urls={"marketplace": MP + "/"},
        headers={"Authorization": TOKEN},
        secrets=[TOKEN],
        limiter=limiter,
        sleep=fake.sleep,
        clock=fake.monotonic,
        **kwargs,
    )


def _mock() -> respx.MockRouter:
    return respx.mock(base_url=MP, assert_all_called=True)


def _http_date(delta: timedelta) -> str:
    return format_datetime(datetime.now(UTC) + delta, usegmt=True)


@pytest.mark.anyio
async def test_success_returns_the_response_and_counts_it(fake: FakeTime, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="loyalsync.http")
    with _mock() as router:
        route = router.get(ORDERS).respond(200, json={"orders": []})
        async with _client(fake, limiter=_limiter(fake)) as client:
            response = await client.request("get", "marketplace", ORDERS, params={"limit": 10})
    assert response.json() == {"orders": []}
    assert route.calls.last.request.headers["Authorization"] == TOKEN
    assert client.stats.requests == {("fbs", 200): 1}
    assert "GET marketplace /api/v3/orders -> 200" in caplog.text


@pytest.mark.anyio
async def test_unknown_host_is_a_value_error(fake: FakeTime) -> None:
    async with _client(fake) as client:
        with pytest.raises(ValueError, match="unknown host 'stats'"):
            await client.request("GET", "stats", "/x")


@pytest.mark.anyio
async def test_paced_client_never_provokes_a_429_and_uses_the_budget(fake: FakeTime) -> None:
    rate = Rate(300, 60, 20)
    server = {"tokens": float(rate.burst), "at": fake.monotonic()}

    def wb_server(request: httpx.Request) -> httpx.Response:
        # The platform's own bucket, on the same clock: any over-send would get a 429.
        now = fake.monotonic()
        refilled = server["tokens"] + (now - server["at"]) * rate.per_second
        server["tokens"] = min(rate.burst, refilled)
        server["at"] = now
        if server["tokens"] < 1 - 1e-6:
            return httpx.Response(429, headers={"X-Ratelimit-Retry": "1"})
        server["tokens"] -= 1
        return httpx.Response(200, headers={"X-Ratelimit-Remaining": str(int(server["tokens"]))})

    started = fake.monotonic()
    with _mock() as router:
        router.get(ORDERS).mock(side_effect=wb_server)
        client = _client(fake, limiter=_limiter(fake), remaining_header="X-Ratelimit-Remaining")
        async with client, asyncio.TaskGroup() as tg:
            for _ in range(5):
                tg.create_task(_call_many(client, 100))
    assert client.stats.requests == {("fbs", 200): 500}
    elapsed = fake.monotonic() - started
    assert (500 - rate.burst) / elapsed >= 0.95 * rate.per_second


async def _call_many(client: ApiClient, n: int) -> None:
    for _ in range(n):
        await client.request("GET", "marketplace", ORDERS)


@pytest.mark.anyio
async def test_429_waits_exactly_the_wb_retry_hint_via_the_limiter(fake: FakeTime, caplog) -> None:
    limiter = _limiter(fake)
    with _mock() as router:
        router.get(ORDERS).mock(side_effect=[
            httpx.Response(429, headers={"X-Ratelimit-Retry": "2", "X-Ratelimit-Reset": "29"}),
            httpx.Response(200, json={}),
        ])
        async with _client(fake, limiter=limiter) as client:
            await client.request("GET", "marketplace", ORDERS)
    assert fake.waited == pytest.approx(2.0)
    assert client.stats.limiter_wait_seconds == pytest.approx(2.0)
    assert "retrying after a 2.00s limiter pause" in caplog.text
    assert (client.stats.rate_limited, client.stats.retries) == (1, 1)
    assert client.stats.requests == {("fbs", 429): 1, ("fbs", 200): 1}


@pytest.mark.anyio
@pytest.mark.parametrize("paced", [True, False])
async def test_retry_after_seconds_is_honoured(fake: FakeTime, paced: bool) -> None:
    with _mock() as router:
        router.get(ORDERS).mock(side_effect=[
            httpx.Response(429, headers={"Retry-After": "3.5"}), httpx.Response(200),
        ])
        async with _client(fake, limiter=_limiter(fake) if paced else None) as client:
            await client.request("GET", "marketplace", ORDERS)
    assert fake.waited == pytest.approx(3.5)


@pytest.mark.anyio
async def test_retry_after_http_date_is_honoured(fake: FakeTime) -> None:
    with _mock() as router:
        router.get(ORDERS).mock(side_effect=[
            httpx.Response(503, headers={"Retry-After": _http_date(timedelta(seconds=30))}),
            httpx.Response(200),
        ])
        async with _client(fake) as client:
            await client.request("GET", "marketplace", ORDERS)
    # HTTP dates have whole-second precision.
    assert 28.0 <= fake.waited <= 30.0


@pytest.mark.anyio
@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan", "Mon, 01 Jan 2001 00:00:00 GMT"])
async def test_a_useless_hint_falls_back_to_backoff(fake: FakeTime, value: str) -> None:
    policy = RetryPolicy(max_attempts=2, backoff_initial=0.5)
    with _mock() as router:
        router.get(ORDERS).mock(side_effect=[
            httpx.Response(429, headers={"X-Ratelimit-Retry": value}),
            httpx.Response(200),
        ])
        async with _client(fake, limiter=_limiter(fake), retry=policy) as client:
            await client.request("GET", "marketplace", ORDERS)
    # First backoff: initial plus up to `initial` of jitter; the limiter itself had tokens.
    assert 0.5 <= fake.waited <= 1.0
    assert client.stats.limiter_wait_seconds == 0


@pytest.mark.anyio
async def test_a_hint_above_the_cap_defers_without_waiting(fake: FakeTime) -> None:
    with _mock() as router:
        route = router.get(ORDERS).respond(429, headers={"X-Ratelimit-Retry": "600"})
        async with _client(fake, limiter=_limiter(fake)) as client:
            with pytest.raises(RetryDeferred) as caught:
                await client.request("GET", "marketplace", ORDERS)
    err = caught.value
    assert (err.retry_after, err.status, err.endpoint) == (600, 429, "GET /api/v3/orders")
    assert err.marketplace == "wildberries"
    assert isinstance(err.__cause__, RateLimitedError)
    assert route.call_count == 1 and fake.slept == []


@pytest.mark.anyio
async def test_5xx_then_success_backs_off_exponentially(fake: FakeTime) -> None:
    with _mock() as router:
        router.get(ORDERS).mock(side_effect=[
            httpx.Response(503), httpx.Response(500), httpx.Response(599), httpx.Response(200),
        ])
        async with _client(fake) as client:
            response = await client.request("GET", "marketplace", ORDERS)
    assert response.status_code == 200
    assert client.stats.retries == 3
    first, second, third = fake.slept
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 1.5 and 2.0 <= third <= 2.5


@pytest.mark.anyio
async def test_backoff_is_capped(fake: FakeTime) -> None:
    policy = RetryPolicy(max_attempts=8, backoff_initial=1.0, backoff_max=5.0)
    with _mock() as router:
        router.get(ORDERS).mock(side_effect=[httpx.Response(502)] * 7 + [httpx.Response(200)])
        async with _client(fake, retry=policy) as client:
            await client.request("GET", "marketplace", ORDERS)
    assert max(fake.slept) == 5.0


@pytest.mark.anyio
async def test_a_429_storm_is_survived(fake: FakeTime) -> None:
    storm = [httpx.Response(429, headers={"X-Ratelimit-Retry": "1"})] * 5
    with _mock() as router:
        router.get(ORDERS).mock(side_effect=[*storm, httpx.Response(200)])
        async with _client(fake, limiter=_limiter(fake)) as client:
            response = await client.request("GET", "marketplace", ORDERS)
    assert response.status_code == 200
    assert fake.waited == pytest.approx(5.0)
    assert (client.stats.rate_limited, client.stats.retries) == (5, 5)


@pytest.mark.anyio
async def test_exhausted_attempts_defer(fake: FakeTime) -> None:
    with _mock() as router:
        route = router.get(ORDERS).respond(503, headers={"Retry-After": "4"})
        async with _client(fake, retry=RetryPolicy(max_attempts=3)) as client:
            with pytest.raises(RetryDeferred) as caught:
                await client.request("GET", "marketplace", ORDERS)
    assert route.call_count == 3
    assert (caught.value.status, caught.value.retry_after) == (503, 4)
    assert "gave up after 3 attempts" in str(caught.value)
    assert isinstance(caught.value.__cause__, RetriableApiError)
    assert client.stats.deferred == 1


@pytest.mark.anyio
async def test_yandex_420_is_rate_limited_through_the_mapping_override(fake: FakeTime) -> None:
    until = _http_date(timedelta(seconds=10))
    with _mock() as router:
        router.post("/v1/businesses/1/orders").mock(side_effect=[
            httpx.Response(420, headers={"X-RateLimit-Resource-Until": until}),
            httpx.Response(200, json={"orders": []}),
        ])
        async with _client(
            fake,
            error_mapping={420: ResponseAction.RATE_LIMITED},
            retry_after_headers=("X-RateLimit-Resource-Until",),
        ) as client:
            await client.request("POST", "marketplace", "/v1/businesses/1/orders", json={})
    assert client.stats.rate_limited == 1
    assert 8.0 <= fake.waited <= 10.0


@pytest.mark.anyio
async def test_420_without_the_override_is_fatal(fake: FakeTime) -> None:
    with _mock() as router:
        router.get(ORDERS).respond(420)
        async with _client(fake) as client:
            with pytest.raises(FatalApiError):
                await client.request("GET", "marketplace", ORDERS)


@pytest.mark.anyio
async def test_400_is_fatal_with_the_platform_message_and_request_id(fake: FakeTime) -> None:
    body = {"title": "bad", "detail": f"bad date {'x' * 400} {TOKEN}", "requestId": "rid-42"}
    with _mock() as router:
        route = router.get(ORDERS).respond(400, json=body)
        async with _client(fake, describe_error=wb_describe) as client:
            with pytest.raises(FatalApiError) as caught:
                await client.request("GET", "marketplace", f"{ORDERS}?dateFrom=x")
    err = caught.value
    assert type(err) is FatalApiError and route.call_count == 1
    assert err.platform_message.startswith("bad date xxx") and len(err.platform_message) == 300
    assert err.request_id == "rid-42" and "[requestId rid-42]" in str(err)
    assert err.endpoint == "GET /api/v3/orders"  # never the query string
    assert "dateFrom" not in str(err)


@pytest.mark.anyio
async def test_default_describe_reads_wb_and_yandex_envelopes(fake: FakeTime) -> None:
    yandex = {"status": "ERROR", "errors": [{"code": "BAD_REQUEST", "message": "limit > 50"}]}
    with _mock() as router:
        router.get("/wb").respond(404, json={"title": "not found", "requestId": "r1"})
        router.get("/ym").respond(400, json=yandex)
        router.get("/text").respond(400, text="<html>oops</html>", headers={"X-Request-Id": "r3"})
        async with _client(fake) as client:
            errors = []
            for path in ("/wb", "/ym", "/text"):
                with pytest.raises(FatalApiError) as caught:
                    await client.request("GET", "marketplace", path)
                errors.append((caught.value.platform_message, caught.value.request_id))
    assert errors == [("not found", "r1"), ("limit > 50", ""), ("", "r3")]


@pytest.mark.anyio
@pytest.mark.parametrize("status", [401, 403])
async def test_auth_errors_are_not_retried(fake: FakeTime, status: int) -> None:
    with _mock() as router:
        route = router.get(ORDERS).respond(status, json={"title": "unauthorized"})
        async with _client(fake) as client:
            with pytest.raises(AuthError, match="fix the token"):
                await client.request("GET", "marketplace", ORDERS)
    assert route.call_count == 1 and fake.slept == []


@pytest.mark.anyio
async def test_a_dropped_connection_is_retried(fake: FakeTime) -> None:
    with _mock() as router:
        router.get(ORDERS).mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(200)])
        async with _client(fake) as client:
            assert (await client.request("GET", "marketplace", ORDERS)).status_code == 200
    assert client.stats.transport_errors == 1


@pytest.mark.anyio
async def test_the_deadline_is_enforced_over_asgi_then_deferred(fake: FakeTime) -> None:
    async def hanging_app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(3600)  # ASGITransport would wait for ever: it ignores httpx timeouts

    policy = RetryPolicy(max_attempts=3, request_deadline=0.02)
    client = _client(fake, retry=policy, transport=httpx.ASGITransport(app=hanging_app))
    async with client:
        with pytest.raises(RetryDeferred, match="no answer within 0.02s") as caught:
            await client.request("GET", "marketplace", ORDERS)
    assert caught.value.status is None
    assert client.stats.transport_errors == 3 and client.stats.retries == 2


@pytest.mark.anyio
async def test_a_4xx_costs_ten_tokens(fake: FakeTime) -> None:
    limiter = _limiter(fake)
    with _mock() as router:
        router.get(ORDERS).respond(409)
        async with _client(fake, limiter=limiter) as client:
            with pytest.raises(FatalApiError):
                await client.request("GET", "marketplace", ORDERS)
    assert limiter.bucket("fbs").tokens == pytest.approx(20 - 10)


@pytest.mark.anyio
async def test_remaining_header_lowers_the_bucket(fake: FakeTime) -> None:
    limiter = _limiter(fake)
    with _mock() as router:
        router.get(ORDERS).respond(200, headers={"X-Ratelimit-Remaining": "3"})
        async with _client(fake, limiter=limiter, remaining_header="X-Ratelimit-Remaining") as c:
            await c.request("GET", "marketplace", ORDERS)
    assert limiter.bucket("fbs").tokens == pytest.approx(3)


@pytest.mark.anyio
async def test_a_spent_budget_longer_than_the_cap_defers_instead_of_blocking(fake: FakeTime):
    limiter = _limiter(fake, rate=Rate(1, 3 * 3600, 1))  # WB base token: 1 request per 3 h
    with _mock() as router:
        route = router.get(ORDERS).respond(200)
        async with _client(fake, limiter=limiter) as client:
            await client.request("GET", "marketplace", ORDERS)
            with pytest.raises(RetryDeferred, match="budget is spent") as caught:
                await client.request("GET", "marketplace", ORDERS)
    assert caught.value.retry_after == pytest.approx(3 * 3600)
    assert route.call_count == 1 and fake.slept == []


@pytest.mark.anyio
async def test_the_token_never_leaks(fake: FakeTime, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    leaky = {"detail": f"token {TOKEN} is expired", "requestId": TOKEN}
    seen: list[BaseException] = []
    with _mock() as router:
        router.get("/auth").respond(401, json=leaky)
        router.get("/bad").respond(400, json=leaky)
        router.get("/limited").respond(429, json=leaky, headers={"X-Ratelimit-Retry": "1"})
        router.get("/drop").mock(side_effect=httpx.ConnectError(f"refused for {TOKEN}"))
        router.get(ORDERS).respond(429, json=leaky, headers={"X-Ratelimit-Retry": "1"})
        async with _client(fake, limiter=_limiter(fake), retry=RetryPolicy(max_attempts=2)) as c:
            for path in ("/auth", "/bad", "/limited", "/drop", ORDERS):
                with pytest.raises(Exception) as caught:  # noqa: PT011 - any type; text matters
                    await c.request("GET", "marketplace", path)
                seen.append(caught.value)
            assert TOKEN not in repr(c)
    for err in seen:
        assert isinstance(err, FatalApiError | RetryDeferred), err
        for cause in (err, err.__cause__):
            assert TOKEN not in str(cause) and TOKEN not in repr(cause)
        assert all(TOKEN not in str(v) for v in vars(err).values())
    assert TOKEN not in caplog.text
    assert "retrying" in caplog.text  # the retry warnings were logged, redacted


def test_redact_masks_every_secret_longest_first() -> None:
    assert redact("a secret-long and secret", ["secret", "secret-long", "ab"]) == "a *** and ***"
    assert redact("abc", ["abc"]) == "abc"  # too short to mask without destroying text


def test_redacting_filter_masks_messages_args_and_tracebacks(caplog) -> None:
    logger = logging.getLogger("loyalsync.test.redaction")
    flt = RedactingFilter([TOKEN])
    caplog.handler.addFilter(flt)
    try:
        logger.warning("header %s", {"Authorization": TOKEN})
        try:
            raise RuntimeError(f"boom {TOKEN}")
        except RuntimeError:
            logger.exception("failed with %r", TOKEN)
    finally:
        caplog.handler.removeFilter(flt)
    assert "header" in caplog.text and "failed with" in caplog.text and "boom ***" in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, "success"), (204, "success"), (299, "success"), (400, "fail"), (404, "fail"),
        (401, "auth"), (403, "auth"), (429, "rate_limited"), (420, "fail"), (418, "fail"),
        (408, "retry"), (425, "retry"), (500, "retry"), (504, "retry"), (599, "retry"),
        (302, "fail"),
    ],
)
def test_default_classification(status: int, action: str) -> None:
    assert classify(status) is ResponseAction(action)
    yandex = {**DEFAULT_ERROR_MAPPING, 420: ResponseAction.RATE_LIMITED}
    assert classify(420, yandex) is ResponseAction.RATE_LIMITED


def test_parse_retry_after() -> None:
    now = datetime(2026, 8, 19, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("2", now) == 2.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after("Wed, 19 Aug 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 19 Aug 2026 12:00:30 -0000", now) == 30.0
    for useless in ("0", "-1", "", "later", "inf", "Wed, 19 Aug 2026 11:59:00 GMT"):
        assert parse_retry_after(useless, now) is None, useless


def test_exported_names_are_pinned() -> None:
    assert sorted(connectors.http.__all__) == [
        "ApiClient", "ClientStats", "DEFAULT_ERROR_MAPPING", "NetworkTransport", "ObservedTransport",
        "PlatformErrorInfo", "RedactingFilter", "ResponseAction", "ResponseObserver", "RetryPolicy", "classify",
        "default_user_agent", "describe_json_error", "parse_retry_after", "redact",
    ]


@pytest.mark.anyio
async def test_a_single_string_secret_is_still_masked() -> None:
    async with ApiClient(marketplace="wb", base_urls={"m": MP}, secrets=TOKEN) as client:
        assert client._secrets == (TOKEN,)
    record = logging.makeLogRecord({"msg": "t=%s", "args": (TOKEN,)})
    RedactingFilter(TOKEN).filter(record)
    assert record.getMessage() == "t=***"
