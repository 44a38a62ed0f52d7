"""ApiClient.stream_json_items: big JSON arrays parsed as they arrive, in batches."""

from __future__ import annotations

from decimal import Decimal

import httpx
import orjson
import pytest
import respx

from connectors.errors import FatalApiError, RetriableApiError
from connectors.http import ApiClient, RetryPolicy
from connectors.testing import FakeTime

pytestmark = pytest.mark.anyio
BASE = "https://statistics.test"


def client(time: FakeTime) -> ApiClient:
    return ApiClient(marketplace="wildberries", base_urls={"statistics": BASE}, sleep=time.sleep,
                     clock=time.monotonic, retry=RetryPolicy(max_attempts=3))


async def collect(api: ApiClient, batch: int = 4) -> list[list]:
    return [b async for b in api.stream_json_items("GET", "statistics", "/rows", batch=batch)]


def rows(n: int) -> list[dict]:
    return [{"srid": f"s{i}", "finishedPrice": 1248.32 + i} for i in range(n)]


async def test_items_come_in_batches_with_exact_decimals():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get("/rows").mock(return_value=httpx.Response(200, content=orjson.dumps(rows(10))))
        batches = await collect(client(FakeTime()))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert batches[0][0] == {"srid": "s0", "finishedPrice": Decimal("1248.32")}


async def test_an_empty_body_is_an_empty_array():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get("/rows").mock(return_value=httpx.Response(200, content=b""))
        assert await collect(client(FakeTime())) == []


async def test_a_body_cut_midway_yields_what_arrived_then_a_retriable_error():
    body = orjson.dumps(rows(10))
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get("/rows").mock(return_value=httpx.Response(200, content=body[: len(body) * 2 // 3]))
        api, got = client(FakeTime()), []
        with pytest.raises(RetriableApiError, match="broke off mid-body"):
            async for batch in api.stream_json_items("GET", "statistics", "/rows", batch=4):
                got.extend(batch)
    assert got and [r["srid"] for r in got] == [f"s{i}" for i in range(len(got))]
    assert len(got) < 10 and len(got) % 4 != 0  # the partial last batch was handed on too


async def test_an_object_instead_of_an_array_is_fatal():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get("/rows").mock(return_value=httpx.Response(200, json={"errors": "nope"}))
        with pytest.raises(FatalApiError, match="expected a JSON array"):
            await collect(client(FakeTime()))


async def test_getting_the_answer_is_retried_like_any_request():
    time = FakeTime()
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.get("/rows").mock(side_effect=[
            httpx.Response(503, json={"title": "unavailable"}),
            httpx.Response(200, content=orjson.dumps(rows(3))),
        ])
        batches = await collect(client(time))
    assert route.call_count == 2 and [len(b) for b in batches] == [3]
    assert time.slept, "the 503 was not backed off"
