"""Token-bucket pacing: never over-send, still use the whole budget, obey server corrections."""

from __future__ import annotations

import asyncio
import time

import pytest

import connectors.ratelimit
from connectors.base import RateOverride
from connectors.ratelimit import EndpointGroup, Rate, RateLimiter, TokenBucket
from connectors.testing import FakeTime


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _assert_never_over_sent(sends: list[float], rate: Rate) -> None:
    # The token-bucket promise: any interval [a, b] holds at most burst + rate * (b - a) sends.
    sends = sorted(sends)
    for i, start in enumerate(sends):
        for j in range(i, len(sends)):
            allowed = rate.burst + rate.per_second * (sends[j] - start)
            assert j - i + 1 <= allowed + 1e-6, (start, sends[j], j - i + 1, allowed)


def test_rate_rejects_non_positive_fields() -> None:
    with pytest.raises(ValueError):
        Rate(requests=0, period_seconds=60, burst=1)
    with pytest.raises(ValueError):
        Rate(requests=1, period_seconds=0, burst=1)
    assert Rate(300, 60, 20).per_second == 5


@pytest.mark.anyio
async def test_burst_is_free_then_one_interval_per_request() -> None:
    fake = FakeTime()
    bucket = TokenBucket(Rate(300, 60, 20), clock=fake.monotonic, sleep=fake.sleep)
    waits = [await bucket.acquire() for _ in range(20)]
    assert waits == [0] * 20 and fake.slept == []
    assert await bucket.acquire() == pytest.approx(0.2)
    assert await bucket.acquire() == pytest.approx(0.2)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("rate", "start"),
    [(Rate(300, 60, 20), 1000.0), (Rate(3, 1, 6), 5.0), (Rate(1000, 1, 1), 1e6)],
)
async def test_concurrent_callers_never_over_send_and_use_the_budget(rate: Rate, start: float):
    fake = FakeTime(start)
    bucket = TokenBucket(rate, clock=fake.monotonic, sleep=fake.sleep)
    sends: list[float] = []

    async def caller(n: int) -> None:
        for _ in range(n):
            await bucket.acquire()
            sends.append(fake.monotonic())

    async with asyncio.TaskGroup() as tg:
        for _ in range(4):
            tg.create_task(caller(100))

    assert len(sends) == 400
    _assert_never_over_sent(sends, rate)
    elapsed = max(sends) - start
    # Over a long run the sends after the initial burst must come at >= 95% of the allowed rate.
    assert (len(sends) - rate.burst) / elapsed >= 0.95 * rate.per_second


@pytest.mark.anyio
async def test_waiters_are_served_in_arrival_order() -> None:
    fake = FakeTime()
    bucket = TokenBucket(Rate(1, 1, 1), clock=fake.monotonic, sleep=fake.sleep)
    order: list[int] = []

    async def caller(i: int) -> None:
        await bucket.acquire()
        order.append(i)

    async with asyncio.TaskGroup() as tg:
        for i in range(6):
            tg.create_task(caller(i))
            await asyncio.sleep(0)  # fix the arrival order
    assert order == list(range(6))


@pytest.mark.anyio
async def test_a_costly_waiter_is_not_starved_by_cheap_ones() -> None:
    # Real time: concurrent sleeps must overlap, which a sleep-advances-the-clock fake cannot do.
    bucket = TokenBucket(Rate(200, 1, 5))
    await bucket.acquire(5)
    started = time.monotonic()
    done: list[str] = []

    async def caller(name: str, cost: int) -> None:
        await bucket.acquire(cost)
        done.append(name)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(caller("big", 5))
        await asyncio.sleep(0)
        for i in range(5):
            tg.create_task(caller(f"small{i}", 1))
    assert done[0] == "big"
    assert time.monotonic() - started >= 0.045  # 10 tokens at 200/s


@pytest.mark.anyio
async def test_charge_takes_the_4xx_penalty_and_may_go_negative() -> None:
    fake = FakeTime()
    bucket = TokenBucket(Rate(300, 60, 20), clock=fake.monotonic, sleep=fake.sleep)
    await bucket.acquire()
    bucket.charge(9)
    assert bucket.tokens == pytest.approx(10)
    bucket.charge(15)
    assert bucket.tokens == pytest.approx(-5)
    # 6 tokens short at 5/s.
    assert await bucket.acquire() == pytest.approx(1.2)


@pytest.mark.anyio
async def test_observe_remaining_only_ever_lowers_tokens() -> None:
    fake = FakeTime()
    bucket = TokenBucket(Rate(300, 60, 20), clock=fake.monotonic, sleep=fake.sleep)
    bucket.observe_remaining(50)
    assert bucket.tokens == pytest.approx(20)
    bucket.observe_remaining(0)
    assert bucket.tokens == pytest.approx(0)
    assert await bucket.acquire() == pytest.approx(0.2)


@pytest.mark.anyio
async def test_pause_for_makes_the_next_acquire_wait_exactly_that_long() -> None:
    fake = FakeTime()
    bucket = TokenBucket(Rate(300, 60, 20), clock=fake.monotonic, sleep=fake.sleep)
    bucket.pause_for(2.0)
    assert await bucket.acquire() == pytest.approx(2.0)
    # After the pause the bucket refills at the normal rate, with no extra burst.
    assert await bucket.acquire() == pytest.approx(0.2)
    bucket.pause_for(0)
    bucket.pause_for(-3)
    assert bucket.wait_time() == pytest.approx(0.2)


@pytest.mark.anyio
async def test_a_pause_during_a_wait_is_honoured() -> None:
    fake = FakeTime()
    bucket = TokenBucket(Rate(1, 1, 1), clock=fake.monotonic, sleep=fake.sleep)
    await bucket.acquire()
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)  # the waiter is now inside its 1 s sleep
    bucket.pause_for(5.0)
    paused_at = fake.monotonic()
    await waiter
    # It woke from the old 1 s sleep, saw the pause, and slept until 5 s after it arrived.
    assert fake.monotonic() - paused_at == pytest.approx(5.0)


@pytest.mark.anyio
async def test_cost_above_burst_waits_for_a_full_bucket_then_owes_the_rest() -> None:
    fake = FakeTime()
    bucket = TokenBucket(Rate(1, 1, 2), clock=fake.monotonic, sleep=fake.sleep)
    assert await bucket.acquire(5) == 0
    assert bucket.tokens == pytest.approx(-3)
    with pytest.raises(ValueError):
        await bucket.acquire(0)


@pytest.mark.anyio
async def test_real_clock_does_not_spin_on_float_dust() -> None:
    bucket = TokenBucket(Rate(1000, 1, 1))
    started = time.monotonic()
    for _ in range(20):
        await bucket.acquire()
    assert 0.015 <= time.monotonic() - started < 1.0


def test_group_for_matches_host_and_prefix_in_declaration_order() -> None:
    rate = Rate(1, 1, 1)
    limiter = RateLimiter(
        [
            EndpointGroup("fbs", rate, host="marketplace", path_prefixes=("/api/v3/orders",)),
            EndpointGroup("marketplace", rate, host="marketplace"),
            EndpointGroup("feedbacks", rate, host="feedbacks", path_prefixes=("/api/v1/",)),
        ]
    )
    assert limiter.group_for("marketplace", "/api/v3/orders/new").name == "fbs"
    assert limiter.group_for("marketplace", "/api/v3/supplies").name == "marketplace"
    assert limiter.group_for("feedbacks", "/api/v1/feedbacks").name == "feedbacks"
    assert limiter.group_for("feedbacks", "/ping") is None
    assert limiter.group_for("statistics", "/api/v1/supplier/orders") is None
    catch_all = RateLimiter([EndpointGroup("all", rate)])
    assert catch_all.group_for("anything", "/x").name == "all"


@pytest.mark.anyio
async def test_overrides_replace_a_group_rate() -> None:
    fake = FakeTime()
    groups = [EndpointGroup("fbs", Rate(300, 60, 20), cost_of_4xx=10)]
    limiter = RateLimiter(
        groups,
        overrides={"fbs": RateOverride(requests=60, period_seconds=60, burst=1)},
        clock=fake.monotonic,
        sleep=fake.sleep,
    )
    assert limiter.groups[0].rate == Rate(60, 60, 1)
    assert limiter.groups[0].cost_of_4xx == 10
    assert await limiter.acquire("fbs") == 0
    assert await limiter.acquire("fbs") == pytest.approx(1.0)


def test_unknown_names_are_rejected() -> None:
    rate = Rate(1, 1, 1)
    with pytest.raises(ValueError, match="unknown groups"):
        RateLimiter([EndpointGroup("fbs", rate)], overrides={"fsb": rate})
    with pytest.raises(ValueError, match="unique"):
        RateLimiter([EndpointGroup("fbs", rate), EndpointGroup("fbs", rate)])
    with pytest.raises(KeyError, match="known"):
        RateLimiter([EndpointGroup("fbs", rate)]).bucket("nope")


def test_exported_names_are_pinned() -> None:
    assert sorted(connectors.ratelimit.__all__) == [
        "Clock", "EndpointGroup", "Rate", "RateLimiter", "Sleep", "TokenBucket",
    ]
