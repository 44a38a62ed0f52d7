"""Yandex Market's two limits, as the client keeps them (yandex_market.md §6).

1. At most 4 requests in flight per business (and per campaign): `ParallelLimitTransport`
   holds a slot from sending a request until its body has been read.
2. A budget per method, mostly hourly (product names: per minute): `endpoint_groups` feeds the
   shared token-bucket limiter; every response's `X-RateLimit-Resource-Remaining` corrects it.

Both are answered with HTTP 420, not 429. The 420's only hint is `X-RateLimit-Resource-Until`, an
RFC 822 time at which the hourly budget refills. It means "wait" only when `Remaining` is 0 (an
exhausted budget); a 420 for the parallel limit carries the same headers with budget left, and
then the right wait is a short backoff, not the rest of the hour. The transport turns the first
case into seconds, measured against the response's own `Date` so that clock skew between us and
Market does not stretch or cut the wait, and hands them on in `RETRY_HINT_HEADER`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType

import httpx

from connectors.http import NetworkTransport
from connectors.ratelimit import EndpointGroup, Rate
from connectors.responses import ResponseAction

__all__ = [
    "ERROR_MAPPING",
    "PARALLEL_LIMIT",
    "RATES",
    "REMAINING_HEADER",
    "RETRY_HINT_HEADER",
    "UNTIL_HEADER",
    "ParallelLimitTransport",
    "endpoint_groups",
    "rate_limit_hint",
]

PARALLEL_LIMIT = 4
# Market's 429: both limits are answered with 420 (the connector declares it; its client classifies by it).
ERROR_MAPPING: Mapping[int, ResponseAction] = MappingProxyType({420: ResponseAction.RATE_LIMITED})
REMAINING_HEADER = "X-RateLimit-Resource-Remaining"
UNTIL_HEADER = "X-RateLimit-Resource-Until"
RETRY_HINT_HEADER = "X-Loyalsync-Retry-In"  # set by this transport only; never sent by Market

# Hourly budgets per method (yandex_market.md §3-§4, spec `x-resource-limit-config`). Reviews
# and comments use the tier without the "Медиум" subscription (5,000/h); a subscriber raises
# them to 10,000 with `rate_limits` in the account config. Market counts per fixed hour, so a
# burst is allowed; 10 % of the hour lets an ordinary run go unpaced while a backfill settles at
# the hourly rate and leaves the rest of the budget to the seller's other tools (e.g. an ERP
# that must confirm orders in time). Writing a comment (`comments/update`) has its own 1,000/h.
# Chats: createChat and sendMessageToChat have 1,000/h each, getChats 5,000/h and getChatHistory
# 10,000/h (spec `x-resource-limit-config`). One `chats` bucket at the lowest of them paces all four:
# a message costs two to four calls, so it still allows some 250 messages an hour, and it can
# never overspend any of Market's per-method budgets (their `Remaining` only ever lowers it).
# Product names (getOfferMappings) have 100 a minute (600 with Medium); a reply round asks once
# per 100 unnamed SKUs, so a tenth of it at once is plenty.
RATES: Mapping[str, Rate] = MappingProxyType({
    "orders": Rate(10_000, 3600.0, 1_000),
    "buyer_info": Rate(3_000, 3600.0, 300),
    "feedback_comment_update": Rate(1_000, 3600.0, 100),
    "feedback_comments": Rate(5_000, 3600.0, 500),
    "feedbacks": Rate(5_000, 3600.0, 500),
    "chats": Rate(1_000, 3600.0, 100),
    "offer_mappings": Rate(100, 60.0, 10),
})


def endpoint_groups(business_id: int) -> tuple[EndpointGroup, ...]:
    """The limiter groups of one business; longer prefixes come before the ones they extend."""
    business = f"/v2/businesses/{business_id}/goods-feedback"
    prefixes = {
        "orders": (f"/v1/businesses/{business_id}/orders",),
        "buyer_info": ("/v2/campaigns/",),  # the only campaign-level call the client makes
        "feedback_comment_update": (f"{business}/comments/update",),
        "feedback_comments": (f"{business}/comments",),
        "feedbacks": (business,),
        # chats, chats/new, chats/message, chats/history (and nothing else starts with it)
        "chats": (f"/v2/businesses/{business_id}/chats",),
        "offer_mappings": (f"/v2/businesses/{business_id}/offer-mappings",),
    }
    return tuple(EndpointGroup(name, RATES[name], host="api", path_prefixes=prefixes[name])
                 for name in RATES)


def rate_limit_hint(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Seconds until the exhausted hourly budget refills, or None when the 420 names no wait."""
    remaining, until = headers.get(REMAINING_HEADER), headers.get(UNTIL_HEADER)
    if remaining is None or until is None:
        return None
    try:
        if int(remaining.strip()) > 0:
            return None  # budget left: this 420 is the parallel limit
    except ValueError:
        return None
    refill = _http_date(until)
    base = _http_date(headers.get("Date", "")) or now or datetime.now(UTC)
    if refill is None:
        return None
    seconds = (refill - base).total_seconds()
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that frees its parallel-request slot once read or closed."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]):
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._release is not None:
                release, self._release = self._release, None
                release()


class ParallelLimitTransport(httpx.AsyncBaseTransport):
    """Wraps a transport: at most `limit` requests in flight, and 420 hints made readable.

    The slot is held until the response body is closed, because Market counts a request as
    running until it has answered in full.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None, *, limit: int = PARALLEL_LIMIT):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._inner = inner if inner is not None else NetworkTransport()
        self._slots = asyncio.Semaphore(limit)
        self.limit = limit
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._slots.acquire()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._release()
            raise
        headers = httpx.Headers(response.headers)
        if response.status_code == 420:
            hint = rate_limit_hint(headers)
            if hint is not None:
                headers[RETRY_HINT_HEADER] = f"{hint:.3f}"
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(response.status_code, headers=headers,
                              stream=_ReleasingStream(response.stream, self._release),
                              extensions=response.extensions)

    def _release(self) -> None:
        self.in_flight -= 1
        self._slots.release()

    async def aclose(self) -> None:
        await self._inner.aclose()
