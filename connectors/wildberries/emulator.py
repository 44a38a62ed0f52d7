"""A Wildberries seller-API emulator: one Starlette app serving the Marketplace, Statistics and
Feedbacks paths with WB's field names, units, time zones, limits and error bodies.

Tests mount it through `httpx.ASGITransport`, the demo serves it with uvicorn, benchmarks give it
a million orders. `create_app(EmulatorConfig(...))` is the only entry point: the seed, the clocks
and the faults are arguments, and all runtime state lives on `app.state`:

- `stats` (`EmulatorStats`), `request_log` [(method, path, query, status)],
- `corrupted` [(path, record id)] for `malformed` faults, `answers` [(review id, text)],
- `breakage` (`connectors.emulation.Breakage`): what `schema_drift` and `wrong_type` did, keyed
  by (path, the store's record key: `rid`, `srid` or the feedback `id`),
- `writes`: every write request received, as `connectors.emulation.write_entry` dicts
  `{"method", "path", "body", "status", "applied"}`,
- `data` (the seeded `Dataset`), `emulator` (the internals),
- `short_pages` [(path, records served, records the page had)] for `short_page` faults,
- `late_changes` {rid: ("supplierStatus/wbStatus" before, after)} for `late_change` faults: the
  orders (FBS, so both APIs show them) that a refusal reaches long after they were created.

Paging follows WB's documents: `GET /api/v3/orders` serves orders with id > `next` and answers
the last served id as `next`; feedbacks are `take`/`skip`; Statistics serves rows with
`lastChangeDate >= dateFrom`. A `short_page` fault cuts any of them short mid-stream.

The WB paths live in `emulator_endpoints`, the orders in `emulator_orders`, the reviews and the
seeded dataset in `emulator_data`; this module is the guard, the limits and the app.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.emulation import (
    LATE_CHANGE_DELAY,
    Breakage,
    Fault,
    FaultKind,
    FaultPlan,
    PayloadShape,
    reshape_payload,
    write_entry,
)
from connectors.wildberries.emulator_data import Dataset, generate, iso_utc
from connectors.wildberries.emulator_endpoints import WbEndpoints

__all__ = ["DEFAULT_LIMITS", "EmulatorConfig", "EmulatorStats", "Fault", "FaultKind", "create_app"]

#: group -> (requests, period in seconds, burst), from WB's rate-limit tables for Personal tokens.
DEFAULT_LIMITS: Mapping[str, tuple[int, float, int]] = MappingProxyType({
    "marketplace": (300, 60, 20),
    "statistics": (1, 60, 10),
    "feedbacks": (3, 1, 6),
})
_Handler = Callable[[Request, int], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes one emulator instance; see the module docstring."""

    seed: int = 1
    orders: int = 200  # FBS and FBO together; about 30 % are FBO (Statistics only)
    reviews: int = 100
    history_days: int = 60  # createdAt spread over [now - history_days, now)
    now: datetime | None = None  # end of the generated history; default: real UTC now
    clock: Callable[[], datetime] | None = None  # "now" while serving; default: real UTC now
    token: str | None = None  # if set, any other Authorization value gets WB's 401
    rate_limits: bool = True
    limits: Mapping[str, tuple[int, float, int]] = field(default_factory=lambda: DEFAULT_LIMITS)
    statistics_page_size: int = 80_000  # WB: "from 0 to approximately 80 000" rows
    faults: tuple[Fault, ...] = ()
    monotonic: Callable[[], float] = time.monotonic  # the token buckets' clock


@dataclass
class EmulatorStats:
    """Counters a benchmark reads after a run."""

    requests: Counter[str] = field(default_factory=Counter)  # by group ("other" for /ping)
    statuses: Counter[int] = field(default_factory=Counter)
    by_group_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)  # every 429, by group

    @property
    def total_throttled(self) -> int:
        """All 429 answers, from the buckets and from `rate_limit` faults."""
        return sum(self.throttled.values())


class _Bucket:
    """WB's token bucket: `burst` capacity, refilled at requests/period per second."""

    def __init__(self, requests: int, period: float, burst: int, now: float):
        self.requests, self.period, self.capacity = requests, period, burst
        self.tokens, self.stamp = float(burst), now

    def refill(self, now: float) -> None:
        gained = (now - self.stamp) * self.requests / self.period
        self.tokens, self.stamp = min(self.capacity, self.tokens + gained), now

    def _seconds_until(self, tokens: float) -> int:
        # The epsilon absorbs float noise so that exactly 60.0 s does not round up to 61.
        return math.ceil((tokens - self.tokens) * self.period / self.requests - 1e-9)

    @property
    def retry_after(self) -> int:
        return max(1, self._seconds_until(1))

    @property
    def reset_after(self) -> int:
        return max(0, self._seconds_until(self.capacity))

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.tokens + 1e-9))


def _problem(status: int, title: str, detail: str, now: int) -> dict[str, Any]:
    """The gateway's error body shared by 401, 429 and 5xx (error_401.json, error_429.json)."""
    return {
        "title": title, "detail": detail, "code": f"07e4668e-{uuid.uuid4().hex[:12]}-[UK-emulator]",
        "requestId": uuid.uuid4().hex, "origin": "s2s-api-auth-catalog", "status": status,
        "statusText": {401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error",
                       503: "Service Unavailable"}[status],
        "timestamp": iso_utc(now),
    }


#: The gateway's answer once a token's 180 days are over. The body is the documented 401 shape
#: (error_401.json); the detail is golang-jwt v5's expiry error under WB's "token problem; " prefix,
#: the same library whose "token is malformed: …" the verbatim example shows.
EXPIRED_TOKEN_DETAIL = "token problem; token has invalid claims: token is expired"


def _records(payload: Any) -> list[tuple[str, dict[str, Any]]]:
    """(kind, record) of an order, statistics or feedback answer; status entries are not records."""
    if isinstance(payload, list):
        return [("row", r) for r in payload if isinstance(r, dict)]
    if not isinstance(payload, dict):
        return []
    data = payload.get("data")
    if isinstance(data, dict) and isinstance(data.get("feedbacks"), list):
        return [("review", r) for r in data["feedbacks"] if isinstance(r, dict)]
    orders = payload.get("orders")
    if isinstance(orders, list):
        return [("order", r) for r in orders if isinstance(r, dict) and "rid" in r]
    return []


_SHAPE = PayloadShape(
    records=_records,
    key=lambda kind, rec: str(rec[{"order": "rid", "row": "srid"}.get(kind, "id")]),
    # Fields the spec marks optional or nullable ("name?": left out only while null).
    optional={
        "order": ("address?", "scanPrice?", "comment", "colorCode", "offices", "skus", "options", "supplyId"),
        "row": ("spp", "incomeID", "techSize", "barcode", "category", "subject", "brand", "countryName",
                "oblastOkrugName", "regionName", "sticker", "cancelDate"),
        "review": ("answer?", "video?", "photoLinks?", "bables?", "parentFeedbackId?", "childFeedbackId?",
                   "returnProductOrdersDate?", "userName", "matchingSize", "color", "lastOrderShkId"),
    },
    # A number sent as a string: the commonest drift of a JSON API.
    wrong={"order": ("convertedPrice", "1299.00"), "row": ("finishedPrice", [1299]),
           "review": ("productValuation", "5")},
)


_REVIEW_LISTS = ("/api/v1/feedbacks", "/api/v1/feedbacks/archive")


def _corrupt(payload: Any) -> Any:
    """Break one record of a page in a way a strict mapper must notice; return its id.

    Only order, statistics-row and review pages qualify (None otherwise), so a fault on the
    "/api/v3/orders" prefix waits for an order page instead of spoiling an /orders/status reply.
    """
    records = payload if isinstance(payload, list) else payload.get("orders")
    if records is None and isinstance(payload.get("data"), dict):
        records = payload["data"].get("feedbacks")
    if not records:
        return None
    rec = records[len(records) // 2]  # the middle one, so a page's cursor fields stay usable
    if "srid" in rec:  # statistics row
        rec["date"], rec["totalPrice"] = "not-a-date", "abc"
        return rec["srid"]
    if "productValuation" in rec:
        rec["productValuation"] = 9
    elif "createdAt" in rec:
        rec["createdAt"] = "not-a-date"
    else:
        return None
    return rec["id"]


class _Emulator(WbEndpoints):
    """Request handling: the guard (auth, limits, faults, bookkeeping) and the WB endpoints."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        born = config.now or datetime.now(UTC)
        self.data: Dataset = generate(config.seed, config.orders, config.reviews,
                                      config.history_days, int(born.timestamp()))
        self.buckets: dict[tuple[str, str], _Bucket] = {}
        self.faults = FaultPlan(config.faults, config.seed)
        self.late_changes = self._stage_late_changes(int(born.timestamp()))
        self.stats = EmulatorStats()
        self.request_log: list[tuple[str, str, str, int]] = []
        self.corrupted: list[tuple[str, Any]] = []
        self.breakage = Breakage()
        self.answers: list[tuple[str, str]] = []
        self.writes: list[dict[str, Any]] = []

    def _stage_late_changes(self, born: int) -> dict[str, tuple[str, str]]:
        """Apply the plan's `late_change` faults to the orders: {rid: (status before, after)}."""
        staged: dict[str, tuple[str, str]] = {}
        table = self.data.orders
        for fault in self.faults.late_changes():
            change = born + int(fault.delay or LATE_CHANGE_DELAY)
            changed = table.apply_late_change(change, int(fault.age), fault.times or 1)
            staged.update({table.rid(i): states for i, states in changed.items()})
        return staged

    def now(self) -> int:
        """The request-time "now" in unix seconds."""
        moment = self.config.clock() if self.config.clock else datetime.now(UTC)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp())

    def _bucket(self, token: str, group: str) -> _Bucket | None:
        if not self.config.rate_limits or group not in self.config.limits:
            return None
        tick = self.config.monotonic()
        bucket = self.buckets.get((token, group))
        if bucket is None:
            bucket = self.buckets[(token, group)] = _Bucket(*self.config.limits[group], tick)
        bucket.refill(tick)
        return bucket

    def route(self, path: str, group: str, handler: _Handler, method: str = "GET", *,
              write: bool = False) -> Route:
        async def endpoint(request: Request) -> Response:
            entry = None
            if write:
                entry = write_entry(request.method, request.url.path, await request.body())
                self.writes.append(entry)
            response = await self._guarded(request, group, handler, entry)
            if entry is not None:
                entry["status"] = response.status_code
            self.stats.requests[group] += 1
            self.stats.statuses[response.status_code] += 1
            self.stats.by_group_status[(group, response.status_code)] += 1
            if response.status_code == 429:
                self.stats.throttled[group] += 1
            self.request_log.append((request.method, request.url.path,
                                     request.url.query, response.status_code))
            return response

        return Route(path, endpoint, methods=[method])

    async def _guarded(self, request: Request, group: str, handler: _Handler,
                       entry: dict[str, Any] | None = None) -> Response:
        now = self.now()
        raw_token = request.headers.get("authorization", "")
        token = raw_token.removeprefix("Bearer ").strip()
        if self.config.token is not None and token != self.config.token:
            body = _problem(401, "unauthorized", "token problem; token is malformed", now)
            return _json(401, body, media="application/problem+json")
        if self.faults.pick(request.url.path, "auth") is not None:  # expired_token
            body = _problem(401, "unauthorized", EXPIRED_TOKEN_DETAIL, now)
            return _json(401, body, media="application/problem+json")
        bucket = self._bucket(token, group)
        if bucket is not None:
            if bucket.tokens < 1:
                return self._throttled(now, bucket.retry_after, bucket.capacity, bucket.reset_after)
            bucket.tokens -= 1
        k = self.faults.pick(request.url.path)
        fault = self.config.faults[k] if k is not None else None
        if fault is not None and fault.kind == "rate_limit":
            if bucket is not None:
                bucket.tokens += 1  # the pretend 429 should not cost a real token
            cap = bucket.capacity if bucket is not None else 1
            return self._throttled(now, fault.retry_after, cap, fault.retry_after)
        if fault is not None and fault.kind in ("http_500", "http_503"):
            status = int(fault.kind[-3:])
            title = "internal server error" if status == 500 else "service unavailable"
            response = _json(status, _problem(status, title, "injected fault", now),
                             media="application/problem+json")
        else:
            if fault is not None and fault.kind == "timeout":
                await asyncio.sleep(fault.delay)  # the client's own deadline decides what happens
            status, payload = await handler(request, now)
            if entry is not None:
                entry["applied"] = 200 <= status < 300
            if fault is not None and fault.kind == "apply_then_timeout":
                await asyncio.sleep(fault.delay)  # applied; the client's deadline loses the answer
            if fault is not None and fault.kind == "apply_then_500":
                status, payload = 500, _problem(500, "internal server error", "injected fault", now)
            if status == 200 and payload is not None:
                reshape_payload(self.faults, request.url.path, payload, _SHAPE, self.breakage)
                self._still_broken(request.url.path, payload)
            if fault is not None and fault.kind == "malformed":
                record_id = _corrupt(payload) if payload is not None else None
                if record_id is None:
                    self.faults.refund(k)  # nothing to corrupt: keep the fault for a real page
                else:
                    self.corrupted.append((request.url.path, record_id))
            response = _json(status, payload)
            if fault is not None and fault.kind == "truncated":
                response = Response(response.body[: len(response.body) // 2], status,
                                    media_type="application/json")
        if bucket is not None:
            if group == "marketplace" and 400 <= response.status_code < 500:
                bucket.tokens -= 9  # WB: "one request with a 4XX response counts as 10"
            response.headers["X-Ratelimit-Remaining"] = str(bucket.remaining)
        return response

    def _still_broken(self, path: str, payload: Any) -> None:
        """A review a `wrong_type` fault broke on one list stays broken on the other.

        A review moves from GET /api/v1/feedbacks to the archive when it is answered or ages; it is
        the same record on WB's side, so it keeps its broken field (recorded under both paths).
        """
        if path not in _REVIEW_LISTS:
            return
        broken = {key: self.breakage.wrong_type[(other, key)] for other, key in self.breakage.wrong_type
                  if other in _REVIEW_LISTS and other != path}
        for kind, rec in _records(payload):
            field_name = broken.get(_SHAPE.key(kind, rec))
            if field_name is not None:
                rec[field_name] = _SHAPE.wrong[kind][1]
                self.breakage.wrong_type[(path, _SHAPE.key(kind, rec))] = field_name

    def _throttled(self, now: int, retry: int, limit: int, reset: int) -> Response:
        body = _problem(429, "too many requests", "limited by emulator", now)
        response = _json(429, body, media="application/problem+json")
        response.headers.update({"X-Ratelimit-Retry": str(retry), "X-Ratelimit-Limit": str(limit),
                                 "X-Ratelimit-Reset": str(reset)})
        return response


def _json(status: int, payload: Any, media: str = "application/json") -> Response:
    if payload is None:
        return Response(status_code=status)
    return Response(orjson.dumps(payload), status, media_type=media)


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build the emulator app; the dataset is generated here, once."""
    emu = _Emulator(config or EmulatorConfig())
    routes = [
        emu.route("/api/v3/orders", "marketplace", emu.orders),
        emu.route("/api/v3/orders/new", "marketplace", emu.orders_new),
        emu.route("/api/v3/orders/status", "marketplace", emu.orders_status, "POST"),
        emu.route("/api/v1/supplier/orders", "statistics", emu.supplier_orders),
        emu.route("/api/v1/feedbacks", "feedbacks", emu.feedbacks),
        emu.route("/api/v1/feedbacks/archive", "feedbacks", emu.feedbacks_archive),
        emu.route("/api/v1/feedbacks/count-unanswered", "feedbacks", emu.count_unanswered),
        emu.route("/api/v1/feedbacks/answer", "feedbacks", emu.answer, "POST", write=True),
        emu.route("/api/v1/feedback", "feedbacks", emu.feedback),
        emu.route("/ping", "other", emu.ping),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = emu
    app.state.data = emu.data
    app.state.stats = emu.stats
    app.state.request_log = emu.request_log
    app.state.corrupted = emu.corrupted
    app.state.breakage = emu.breakage
    app.state.answers = emu.answers
    app.state.writes = emu.writes
    app.state.short_pages = emu.faults.short_pages
    app.state.late_changes = emu.late_changes
    return app
