"""Client-side pacing: one token bucket per endpoint group, corrected by what the server reports.

Platforms meter each seller account per method group with a token bucket (WB documents exactly
that). Mirroring the bucket locally lets the daemon send at the full allowed rate without ever
provoking a 429; the server's `remaining` and `retry` headers pull the local bucket back in line
whenever our picture is too optimistic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

__all__ = ["Clock", "EndpointGroup", "Rate", "RateLimiter", "Sleep", "TokenBucket"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

# Float refill leaves dust (a wait of 1e-12 s after sleeping the computed delay). A wait this short
# counts as none: otherwise a clock whose resolution is coarser than the dust could loop forever.
_TIME_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class Rate:
    """A request budget: `requests` per `period_seconds`, at most `burst` sent at once."""

    requests: int
    period_seconds: float
    burst: int

    def __post_init__(self) -> None:
        if self.requests <= 0 or self.period_seconds <= 0 or self.burst <= 0:
            raise ValueError(f"rate fields must be positive, got {self!r}")

    @property
    def per_second(self) -> float:
        """Refill speed in tokens per second."""
        return self.requests / self.period_seconds


@dataclass(frozen=True, slots=True)
class EndpointGroup:
    """Endpoints that share one server-side budget, matched by host key and path prefix."""

    name: str
    rate: Rate
    host: str | None = None  # a key of the client's base_urls; None matches every host
    path_prefixes: tuple[str, ...] = ()  # empty: every path of the host
    cost_of_4xx: int = 1  # WB Marketplace counts a 4xx answer as 10 requests

    def matches(self, host: str, path: str) -> bool:
        """Whether a request to `host` + `path` spends this group's budget."""
        if self.host is not None and self.host != host:
            return False
        return not self.path_prefixes or any(path.startswith(p) for p in self.path_prefixes)


class TokenBucket:
    """An async token bucket: capacity `burst`, refilled continuously at `requests/period`."""

    def __init__(self, rate: Rate, *, clock: Clock | None = None, sleep: Sleep | None = None):
        self.rate = rate
        self._clock = clock or time.monotonic  # None: the real clocks (tests pass fakes)
        self._sleep = sleep or asyncio.sleep
        self._tokens = float(rate.burst)
        self._updated = self._clock()
        # Waiters queue on the lock (asyncio.Lock is FIFO and lets no newcomer barge past a
        # waiter) and the holder sleeps while holding it: first come, first served, so a costly
        # request is not starved by cheap ones. Spending is safe regardless, since the final
        # check-and-take in `acquire` runs with no await in between.
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TokenBucket({self.rate!r}, tokens={self.tokens:.2f})"

    @property
    def tokens(self) -> float:
        """Tokens available now; negative after a penalty or a server-requested pause."""
        self._refill()
        return self._tokens

    def wait_time(self, cost: int = 1) -> float:
        """Seconds until `cost` tokens are available, ignoring callers already queued."""
        self._refill()
        # A request dearer than the whole bucket waits for a full bucket and then goes into debt.
        deficit = min(float(cost), float(self.rate.burst)) - self._tokens
        delay = deficit / self.rate.per_second
        return delay if delay > _TIME_EPSILON else 0.0

    async def acquire(self, cost: int = 1) -> float:
        """Wait until `cost` tokens are available, take them, and return the seconds waited."""
        if cost < 1:
            raise ValueError(f"cost must be at least 1, got {cost}")
        started = self._clock()
        async with self._lock:
            # Re-check after every sleep: a pause or a lower `remaining` may arrive meanwhile.
            while (delay := self.wait_time(cost)) > 0:
                await self._sleep(delay)
            self._tokens -= cost
        return self._clock() - started

    def charge(self, cost: int) -> None:
        """Take `cost` more tokens after the fact (e.g. the 4xx penalty); may go negative."""
        self._refill()
        self._tokens -= cost

    def observe_remaining(self, remaining: int) -> None:
        """Apply the server's count of requests left: never believe we have more than that."""
        self._refill()
        self._tokens = min(self._tokens, float(remaining))

    def pause_for(self, seconds: float) -> None:
        """Apply a server-requested wait: the next single-token acquire waits `seconds`."""
        if seconds <= 0:
            return
        self._refill()
        # The server's bucket lets one request through after `seconds` and then refills at the
        # usual rate, so model exactly that instead of blocking until an absolute deadline.
        self._tokens = min(self._tokens, 1.0 - seconds * self.rate.per_second)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._updated
        if elapsed > 0:
            refilled = self._tokens + elapsed * self.rate.per_second
            self._tokens = min(float(self.rate.burst), refilled)
            self._updated = now


class RateLimiter:
    """One account's buckets, one per endpoint group; groups are matched in declaration order."""

    def __init__(
        self,
        groups: Sequence[EndpointGroup],
        *,
        overrides: Mapping[str, Rate] | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ):
        names = [g.name for g in groups]
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint group names must be unique, got {names}")
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            # A typo in an ops override would otherwise silently keep the default budget.
            raise ValueError(f"rate overrides for unknown groups {unknown}; known: {names}")
        self.groups: tuple[EndpointGroup, ...] = tuple(
            replace(g, rate=_as_rate(overrides[g.name])) if g.name in overrides else g
            for g in groups
        )
        self._buckets = {
            g.name: TokenBucket(g.rate, clock=clock, sleep=sleep) for g in self.groups
        }

    def __repr__(self) -> str:
        return f"RateLimiter(groups={[g.name for g in self.groups]})"

    def group_for(self, host: str, path: str) -> EndpointGroup | None:
        """The first group whose host and path prefix match, or None (the request is unpaced)."""
        return next((g for g in self.groups if g.matches(host, path)), None)

    async def acquire(self, group: str, cost: int = 1) -> float:
        """Take `cost` tokens from `group`'s bucket; return the seconds waited."""
        return await self.bucket(group).acquire(cost)

    def bucket(self, group: str) -> TokenBucket:
        """The bucket of `group`; KeyError names the known groups."""
        try:
            return self._buckets[group]
        except KeyError:
            known = list(self._buckets)
            raise KeyError(f"unknown endpoint group {group!r}; known: {known}") from None


def _as_rate(value: Rate | object) -> Rate:
    # Settings hold pydantic `RateOverride`s with the same three fields; accept them as they are.
    if isinstance(value, Rate):
        return value
    return Rate(
        requests=value.requests,  # type: ignore[attr-defined]
        period_seconds=value.period_seconds,  # type: ignore[attr-defined]
        burst=value.burst,  # type: ignore[attr-defined]
    )
