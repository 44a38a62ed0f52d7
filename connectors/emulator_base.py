"""The request pipeline every platform emulator shares; a platform configures it with hooks.

One request goes through the same stages on every platform, in this order:

1. `authenticate` (wrong or missing credentials: the platform's refusal), then the `auth` fault
   (`expired_token`: `expired`);
2. `limited`: the server-side limit (`admit`; over it: `throttled`), then `gate` (a refusal that
   still costs a request, e.g. Ozon's subscriptions);
3. one request fault from the `FaultPlan` (see `connectors.emulation`): a pretend throttle, a 5xx,
   a slow answer, a lost answer after the write applied, a broken record, a cut-off body;
4. the handler (`invoke`), the payload faults (`reshape`), the answer (`respond`), and `finish`
   (the platform's headers on everything that passed the limit).

Bookkeeping is the same everywhere: `stats`, `request_log`, `writes`, `corrupted`, `breakage`,
all published on `app.state` by `build_app`. A platform module subclasses `Emulator`, declares
its routes (`route`), its error bodies and its auth, and keeps its data and handlers to itself.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.emulation import Breakage, Fault, FaultPlan, PayloadShape, reshape_payload, write_entry
from connectors.ratelimit import Clock, Rate, TokenBucket

__all__ = ["BucketLimits", "Call", "Emulator", "EmulatorStats", "Throttle", "remaining", "seconds_until"]

Handler = Callable[..., Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class Throttle:
    """What a throttled answer tells the client: retry in `retry` s, full again in `reset` s (None:
    the answer gives no hint, as some platforms' gateways do; the client must back off on its own)."""

    retry: float | None
    reset: float | None
    limit: int


@dataclass
class Call:
    """One request on its way through the pipeline, and what the stages learned about it."""

    request: Request
    group: str  # the route's group: the stats key and, by default, the limit group
    handler: Handler
    now: Any = None  # the platform's "now", read once as the request arrives
    key: str = ""  # whom the limit counts (a token, a Client-Id), set by `authenticate`
    quota: Any = None  # what `admit` charged: a TokenBucket or the platform's own budget
    limit: int | None = None  # the budget's size, for a pretend throttle's headers
    entry: dict[str, Any] | None = None  # the write log entry of a write
    extra: dict[str, Any] = field(default_factory=dict)  # a platform's own per-request values

    @property
    def path(self) -> str:
        return self.request.url.path


@dataclass
class EmulatorStats:
    """Counters a test or benchmark reads after a run."""

    requests: Counter[str] = field(default_factory=Counter)  # by the route's group
    statuses: Counter[int] = field(default_factory=Counter)
    by_group_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)  # every throttled answer, by group

    @property
    def total_throttled(self) -> int:
        """All throttled answers, from the limits and from `rate_limit` faults."""
        return sum(self.throttled.values())


class BucketLimits:
    """Server-side limits on `connectors.ratelimit.TokenBucket`: one per (caller, group).

    A bucket is created full on a caller's first request of a group, as the platforms' buckets are.
    """

    def __init__(self, rates: Mapping[str, Rate], clock: Clock):
        self.rates, self.clock = dict(rates), clock
        self.buckets: dict[tuple[str, str], TokenBucket] = {}

    def bucket(self, key: str, group: str) -> TokenBucket | None:
        """The bucket of `key` in `group`, or None when the group has no limit."""
        if group not in self.rates:
            return None
        if (key, group) not in self.buckets:
            self.buckets[(key, group)] = TokenBucket(self.rates[group], clock=self.clock)
        return self.buckets[(key, group)]


def seconds_until(bucket: TokenBucket, tokens: float) -> int:
    """Whole seconds until `bucket` holds `tokens` (the epsilon keeps exactly 60.0 s at 60)."""
    rate = bucket.rate
    return math.ceil((tokens - bucket.tokens) * rate.period_seconds / rate.requests - 1e-9)


def remaining(bucket: TokenBucket) -> int:
    """Whole requests left in `bucket`, as a `remaining` header says."""
    return max(0, math.floor(bucket.tokens + 1e-9))


class Emulator:
    """The shared pipeline; a platform subclass fills in the hooks marked "platform"."""

    #: The status of a throttled answer (Yandex Market answers 420).
    THROTTLE_STATUS = 429
    #: Whether a `rate_limit` fault's pretend throttle spends a request of the real limit.
    PRETEND_THROTTLE_SPENDS = True
    #: How the payload faults find the records of an answer (platform).
    shape: PayloadShape

    def __init__(self, config: Any, limits: BucketLimits | None = None, stats: EmulatorStats | None = None):
        self.config = config
        self.faults = FaultPlan(config.faults, config.seed)
        self.limits = limits
        self.stats = stats or EmulatorStats()
        self.request_log: list[tuple[str, str, Any, int]] = []
        self.corrupted: list[tuple[str, Any]] = []
        self.breakage = Breakage()
        self.writes: list[dict[str, Any]] = []

    # --- routing and bookkeeping ---
    def route(self, path: str, handler: Handler, *, group: str, method: str = "GET", write: bool = False) -> Route:
        """A Starlette route whose requests go through the pipeline; `write` logs them in `writes`."""
        async def endpoint(request: Request) -> Response:
            call = Call(request, group, handler)
            if write:
                call.entry = write_entry(request.method, request.url.path, await request.body())
                self.writes.append(call.entry)
            response = await self.serve(call)
            if call.entry is not None:
                call.entry["status"] = response.status_code
            status = response.status_code
            self.stats.requests[group] += 1
            self.stats.statuses[status] += 1
            self.stats.by_group_status[(group, status)] += 1
            if status == self.THROTTLE_STATUS:
                self.stats.throttled[group] += 1
            self.request_log.append((request.method, request.url.path, await self.logged(call), status))
            return response

        return Route(path, endpoint, methods=[method])

    def build_app(self, routes: list[Route], **state: Any) -> Starlette:
        """The app, with the shared bookkeeping and the platform's own `state` on `app.state`."""
        app = Starlette(routes=routes)
        shared = {"emulator": self, "stats": self.stats, "request_log": self.request_log,
                  "corrupted": self.corrupted, "breakage": self.breakage, "writes": self.writes,
                  "faults": self.faults, "short_pages": self.faults.short_pages}
        for name, value in {**shared, **state}.items():
            setattr(app.state, name, value)
        return app

    # --- the pipeline ---
    async def serve(self, call: Call) -> Response:
        call.now = self.now()
        refused = self.authenticate(call)
        if refused is None and self.faults.pick(call.path, "auth") is not None:
            refused = self.expired(call)  # expired_token: every later request too
        return refused if refused is not None else await self.limited(call)

    async def limited(self, call: Call) -> Response:
        """Past the auth: the limit, the gate and the faults. A platform wraps it for limits of its own."""
        throttle = self.admit(call)
        if throttle is not None:
            return self.throttled(call, throttle)
        refused = self.gate(call)
        if refused is not None:
            return refused
        k = self.faults.pick(call.path)
        fault = self.faults.faults[k] if k is not None else None
        if fault is not None and fault.kind == "rate_limit":
            if not self.PRETEND_THROTTLE_SPENDS and isinstance(call.quota, TokenBucket):
                call.quota.charge(-1)  # give back the request `admit` took
            return self.throttled(call, Throttle(fault.retry_after, fault.retry_after, call.limit or 1))
        if fault is not None and fault.kind in ("http_500", "http_503"):
            response = self.fault_response(call, int(fault.kind[-3:]))
        else:
            response = await self.handle(call, k, fault)
        return self.finish(call, response)

    async def handle(self, call: Call, k: int | None, fault: Fault | None) -> Response:
        """The handler's answer, as the request fault `fault` (index `k`) bends it."""
        kind, delay = (fault.kind, fault.delay) if fault is not None else (None, 0.0)
        if kind == "timeout":
            await asyncio.sleep(delay)  # the client's own deadline decides what happens
        status, payload = await self.invoke(call)
        if call.entry is not None:
            call.entry["applied"] = 200 <= status < 300
        if kind == "apply_then_timeout":
            await asyncio.sleep(delay)  # applied; the client's deadline loses the answer
        if kind == "apply_then_500":
            status, payload = self.failure(call, 500)
        if status == 200 and payload is not None:
            payload = self.reshape(call, payload)
        if k is not None and kind == "malformed":
            self._break_one(call, k, payload if status == 200 else None)
        response = self.respond(call, status, payload)
        if kind == "truncated":
            # Half the body, whatever headers the platform set, and a length that matches the half.
            response.body = response.body[: len(response.body) // 2]
            if "content-length" in response.headers:  # none on a 204
                response.headers["content-length"] = str(len(response.body))
        return response

    def _break_one(self, call: Call, k: int, payload: Any) -> None:
        record_id = self.corrupt(payload) if payload is not None else None
        if record_id is None:
            self.faults.refund(k)  # nothing to corrupt: keep the fault for a real page
        else:
            self.corrupted.append((call.path, record_id))

    # --- hooks with a default ---
    def admit(self, call: Call) -> Throttle | None:
        """Charge the request to its bucket; a Throttle when the bucket is empty."""
        key, group = self.limit_key(call)
        bucket = call.quota = self.limits.bucket(key, group) if self.limits is not None else None
        if bucket is None:
            return None
        call.limit = bucket.rate.burst
        if bucket.tokens < 1 - 1e-9:  # a client paced to the same rate lands on the boundary: float noise
            return Throttle(max(1, seconds_until(bucket, 1)), max(0, seconds_until(bucket, bucket.rate.burst)),
                            bucket.rate.burst)
        bucket.charge(1)
        return None

    def limit_key(self, call: Call) -> tuple[str, str]:
        """(caller, group) of the bucket a request spends."""
        return call.key, call.group

    def gate(self, call: Call) -> Response | None:
        """A refusal after the limit (it costs a request) and before the faults."""
        return None

    async def invoke(self, call: Call) -> tuple[int, Any]:
        """Run the handler: (status, JSON payload)."""
        return await call.handler(call.request, call.now)

    def reshape(self, call: Call, payload: Any) -> Any:
        """Apply the payload faults to a successful answer."""
        reshape_payload(self.faults, call.path, payload, self.shape, self.breakage)
        return payload

    def fault_response(self, call: Call, status: int) -> Response:
        """The answer of an `http_500`/`http_503` fault."""
        return self.respond(call, *self.failure(call, status))

    def finish(self, call: Call, response: Response) -> Response:
        """The platform's last word on an answer that passed the limit (e.g. a remaining header)."""
        return response

    async def logged(self, call: Call) -> Any:
        """What `request_log` keeps of a request besides method and path: the query string."""
        return call.request.url.query

    # --- platform hooks ---
    def now(self) -> Any:
        raise NotImplementedError

    def authenticate(self, call: Call) -> Response | None:
        """The platform's refusal of missing or wrong credentials; sets `call.key`."""
        raise NotImplementedError

    def expired(self, call: Call) -> Response:
        """The platform's answer to an expired token."""
        raise NotImplementedError

    def throttled(self, call: Call, throttle: Throttle) -> Response:
        """The platform's answer over the limit."""
        raise NotImplementedError

    def failure(self, call: Call, status: int) -> tuple[int, Any]:
        """The platform's 5xx body."""
        raise NotImplementedError

    def respond(self, call: Call, status: int, payload: Any) -> Response:
        """The platform's answer for (status, payload)."""
        raise NotImplementedError

    def corrupt(self, payload: Any) -> Any:
        """Break one record of a page so a strict mapper must notice; its id, or None."""
        raise NotImplementedError
