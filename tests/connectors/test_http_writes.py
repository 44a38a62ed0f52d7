"""ApiClient writes (`idempotent=False`): sent once after a timeout, 5xx or cut-off body; 429 still paced."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx

from connectors.errors import RetriableApiError, RetryDeferred
from connectors.http import ApiClient, RetryPolicy
from connectors.ratelimit import EndpointGroup, Rate, RateLimiter
from connectors.testing import FakeTime

HOST = "https://feedbacks-api.example"
ANSWER = "/api/v1/feedbacks/answer"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _client(fake: FakeTime, **kwargs: Any) -> ApiClient:
    limiter = RateLimiter([EndpointGroup("feedbacks", Rate(3, 1.0, 6), host="feedbacks")],
                          clock=fake.monotonic, sleep=fake.sleep)
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4))
    return ApiClient(marketplace="wildberries", base_urls={"feedbacks": HOST}, limiter=limiter,
                     retry_after_headers=("X-Ratelimit-Retry",), sleep=fake.sleep, clock=fake.monotonic,
                     **kwargs)


@pytest.mark.anyio
@pytest.mark.parametrize("failure", [
    httpx.Response(500, json={"title": "internal"}),
    httpx.Response(503),
    httpx.ReadTimeout("slow"),
    httpx.ConnectError("dropped"),
])
async def test_a_write_is_not_retried_after_a_failure_that_may_have_applied_it(failure: Any) -> None:
    fake = FakeTime()
    with respx.mock(base_url=HOST, assert_all_called=True) as router:
        route = router.post(ANSWER).mock(side_effect=[failure, httpx.Response(204)])
        async with _client(fake) as client:
            with pytest.raises(RetriableApiError) as caught:
                await client.request("POST", "feedbacks", ANSWER, json={"id": "x", "text": "ok"},
                                     idempotent=False)
    assert not isinstance(caught.value, RetryDeferred)
    assert route.call_count == 1
    assert client.stats.retries == 0 and fake.waited == 0


@pytest.mark.anyio
async def test_a_cut_off_body_on_a_write_is_not_retried() -> None:
    fake = FakeTime()
    with respx.mock(base_url=HOST, assert_all_called=True) as router:
        route = router.post(ANSWER).mock(side_effect=[httpx.Response(200, content=b'{"comment_id": "ab'),
                                                      httpx.Response(200, json={})])
        async with _client(fake) as client:
            with pytest.raises(RetriableApiError, match="not complete JSON"):
                await client.request_json("POST", "feedbacks", ANSWER, json={}, idempotent=False)
    assert route.call_count == 1


@pytest.mark.anyio
async def test_a_429_on_a_write_is_waited_out_by_the_limiter_and_sent_again() -> None:
    fake = FakeTime()
    with respx.mock(base_url=HOST, assert_all_called=True) as router:
        route = router.post(ANSWER).mock(side_effect=[
            httpx.Response(429, headers={"X-Ratelimit-Retry": "2"}), httpx.Response(204)])
        async with _client(fake) as client:
            response = await client.request("POST", "feedbacks", ANSWER, json={}, idempotent=False)
    assert response.status_code == 204 and route.call_count == 2
    assert fake.waited == pytest.approx(2.0)
    assert client.stats.requests == {("feedbacks", 429): 1, ("feedbacks", 204): 1}


@pytest.mark.anyio
async def test_a_429_storm_on_a_write_defers_like_a_read() -> None:
    fake = FakeTime()
    with respx.mock(base_url=HOST) as router:
        route = router.post(ANSWER).respond(429, headers={"X-Ratelimit-Retry": "1"})
        async with _client(fake) as client:
            with pytest.raises(RetryDeferred):
                await client.request("POST", "feedbacks", ANSWER, json={}, idempotent=False)
    assert route.call_count == 4


@pytest.mark.anyio
async def test_reads_still_retry_a_5xx() -> None:
    fake = FakeTime()
    with respx.mock(base_url=HOST, assert_all_called=True) as router:
        route = router.get("/api/v1/feedback").mock(side_effect=[httpx.Response(500), httpx.Response(200)])
        async with _client(fake) as client:
            assert (await client.request("GET", "feedbacks", "/api/v1/feedback")).status_code == 200
    assert route.call_count == 2


@pytest.mark.anyio
async def test_a_write_timing_out_over_asgi_reaches_the_app_once() -> None:
    received: list[str] = []

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        received.append(scope["path"])
        await asyncio.sleep(3600)

    fake = FakeTime()
    client = _client(fake, retry=RetryPolicy(max_attempts=3, request_deadline=0.02),
                     transport=httpx.ASGITransport(app=slow_app))
    async with client:
        with pytest.raises(RetriableApiError, match="no answer within 0.02s"):
            await client.request("POST", "feedbacks", ANSWER, json={}, idempotent=False)
    assert received == [ANSWER]
    assert client.stats.transport_errors == 1 and client.stats.retries == 0
