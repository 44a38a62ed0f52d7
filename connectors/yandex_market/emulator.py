"""A Yandex Market Partner API emulator: one Starlette app at the real paths, with Market's field
names, page tokens, Api-Key auth, error envelope and both of its limits, each answered with 420.

`create_app(EmulatorConfig(...))` is the only entry point; all runtime state lives on `app.state`:
`stats` (`EmulatorStats`), `request_log` [(method, path, query, status)], `corrupted`
[(path, record id)] for `malformed` faults, `breakage` (`connectors.emulation.Breakage`: what
`schema_drift` and `wrong_type` did, keyed by (path, orderId or feedbackId as text)), `writes`
(every write request received, as
`connectors.emulation.write_entry` dicts `{"method", "path", "body", "status", "applied"}`),
`data` (the seeded `Dataset`), `chats` (`emulator_data.Chats`: chats opened through the API,
`chats.chats` by chatId; a test adds the buyer's words with `chats.add_message(chat_id, now, text)`),
`late_changes` ({orderId: (status before, status after)} of the orders a `late_change` fault
changed, in Market's words), `short_pages` (the fault plan's list of pages cut short),
`offer_mapping_requests` [(query, JSON body)] of `…/offer-mappings` (`emulator_catalog`), `emulator`.

The endpoints themselves (filters, page tokens, answers) are in `emulator_handlers`; the data in
`emulator_data` and `emulator_orders`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from types import MappingProxyType
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.emulation import Breakage, Fault, FaultKind, FaultPlan, PayloadShape, reshape_payload, write_entry
from connectors.yandex_market.emulator_catalog import CatalogEndpoints
from connectors.yandex_market.emulator_data import Dataset, generate, stage_late_changes
from connectors.yandex_market.emulator_handlers import Endpoints, error

__all__ = ["DEFAULT_LIMITS", "EmulatorConfig", "EmulatorStats", "Fault", "FaultKind", "create_app"]

#: resource -> requests per hour (spec `x-resource-limit-config` of each path, tier without the
#: Medium subscription; yandex_market.md §3-§4).
DEFAULT_LIMITS: Mapping[str, int] = MappingProxyType({
    "orders": 10_000, "buyer_info": 3_000, "feedbacks": 5_000, "feedback_comments": 5_000,
    "feedback_comment_update": 1_000, "chats": 5_000, "chat_history": 10_000, "chat_new": 1_000,
    "chat_message": 1_000, "offer_mappings": 100,
})
HOUR = 3600.0
#: Resources whose budget is not hourly: seconds per budget period (getOfferMappings: 100 a minute).
PERIODS: Mapping[str, float] = MappingProxyType({"offer_mappings": 60.0})


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes one emulator instance."""

    seed: int = 1
    business_id: int = 12345
    orders: int = 200
    reviews: int = 100
    buyers: int | None = None  # distinct buyers; default a quarter of the orders
    dbs_share: float = 0.25
    history_days: int = 25  # creation times spread over [now - history_days, now)
    now: datetime | None = None  # end of the generated history; default: real UTC now
    clock: Callable[[], datetime] | None = None  # "now" while serving; default: real UTC now
    token: str | None = None  # if set, any other Api-Key gets Market's 401
    rate_limits: bool = True
    limits: Mapping[str, int] = field(default_factory=lambda: DEFAULT_LIMITS)
    parallel_limit: int = 4  # requests in flight per business / per campaign
    latency: float = 0.0  # seconds each answer takes (real time), so that requests overlap
    faults: tuple[Fault, ...] = ()
    chat_history_page: int = 100  # most messages on one history page (Market's limit); tests lower it
    monotonic: Callable[[], float] = time.monotonic  # the clock of the hourly budgets


@dataclass
class EmulatorStats:
    """Counters a test or benchmark reads after a run."""

    requests: Counter[str] = field(default_factory=Counter)  # by resource
    statuses: Counter[int] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)  # 420s by resource
    parallel_refused: int = 0
    max_in_flight: int = 0  # the most requests one business or campaign had running at once
    buyer_info_calls: Counter[int] = field(default_factory=Counter)  # by order id

    @property
    def total_throttled(self) -> int:
        return sum(self.throttled.values())


#: Market's 401 for a token that no longer works (revoked Api-Key, expired OAuth token): the
#: verbatim example of the docs' error page (error_401.response.json).
EXPIRED_TOKEN_BODY = {"errors": [{"code": "UNAUTHORIZED", "message": "Api-Key token is invalid"}], "status": "ERROR"}


def _records(payload: Any) -> list[tuple[str, dict[str, Any]]]:
    """(kind, record) of an orders or goods-feedback answer."""
    if not isinstance(payload, dict):
        return []
    orders = payload.get("orders")
    if isinstance(orders, list):
        return [("order", o) for o in orders if isinstance(o, dict)]
    result = payload.get("result")
    feedbacks = result.get("feedbacks") if isinstance(result, dict) else None
    if isinstance(feedbacks, list):
        return [("review", f) for f in feedbacks if isinstance(f, dict)]
    return []


_SHAPE = PayloadShape(
    records=_records,
    key=lambda kind, rec: str(rec["orderId" if kind == "order" else "feedbackId"]),
    # Fields BusinessOrderDTO and GoodsFeedbackDTO do not require (and the mapping does not read).
    optional={
        "order": ("externalOrderId", "services", "buyerType", "notes", "cancelRequested", "sourcePlatform"),
        "review": ("author", "media"),
    },
    wrong={"order": ("items", {"offerId": "SKU-1", "count": 1}), "review": ("createdAt", 1763640000)},
)


def _corrupt(payload: Any) -> Any:
    """Break the middle record of an order or review page; return its id (None: nothing to break)."""
    if not isinstance(payload, dict):
        return None
    records = payload.get("orders")
    if records is None and isinstance(payload.get("result"), dict):
        records = payload["result"].get("feedbacks")
    if not records:
        return None
    rec = records[len(records) // 2]
    if "orderId" in rec:
        rec["creationDate"], rec["prices"]["payment"]["value"] = "not-a-date", "abc"
        return rec["orderId"]
    rec["statistics"]["rating"] = 9
    return rec["feedbackId"]


class _Emulator(Endpoints, CatalogEndpoints):
    """The guard (auth, both limits, faults, bookkeeping) around the endpoints."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        born = config.now or datetime.now(UTC)
        self.data: Dataset = generate(config.seed, config.orders, config.reviews, config.history_days,
                                      int(born.timestamp()), buyers=config.buyers,
                                      dbs_share=config.dbs_share)
        self.chats = self.data.chats
        self.faults = FaultPlan(config.faults, config.seed)
        self._reshapes = any(FaultPlan.stage_of(f.kind) == "payload" for f in config.faults)
        self.late_changes = stage_late_changes(self.data.orders, self.faults.late_changes(), int(born.timestamp()))
        self.stats = EmulatorStats()
        self.request_log: list[tuple[str, str, str, int]] = []
        self.corrupted: list[tuple[str, Any]] = []
        self.breakage = Breakage()
        self.writes: list[dict[str, Any]] = []
        self.offer_mapping_requests: list[tuple[dict[str, str], Any]] = []
        self.in_flight: Counter[str] = Counter()
        self.used: dict[str, tuple[int, int]] = {}  # resource -> (budget period number, requests)
        self._mono0 = config.monotonic()
        # Date and X-RateLimit-Resource-Until run on the budgets' clock, from the data's "now":
        # a test's frozen data clock and fake monotonic clock still give waits that make sense.
        self._wall0 = self.now()

    def now(self) -> float:
        """The data's "now" in unix seconds (the configured clock, or real time)."""
        moment = self.config.clock() if self.config.clock else datetime.now(UTC)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

    def route(self, path: str, resource: str, handler: Callable, method: str, *, write: bool = False) -> Route:
        async def endpoint(request: Request) -> Response:
            entry = None
            if write:
                entry = write_entry(request.method, request.url.path, await request.body())
                self.writes.append(entry)
            response = await self._guarded(request, resource, handler, entry)
            if entry is not None:
                entry["status"] = response.status_code
            self.stats.requests[resource] += 1
            self.stats.statuses[response.status_code] += 1
            if response.status_code == 420:
                self.stats.throttled[resource] += 1
            self.request_log.append((request.method, request.url.path, request.url.query,
                                     response.status_code))
            return response

        return Route(path, endpoint, methods=[method])

    async def _guarded(self, request: Request, resource: str, handler: Callable,
                       entry: dict[str, Any] | None = None) -> Response:
        now = int(self.now())
        key = request.url.path.split("/")[2:4]  # ["businesses", id] or ["campaigns", id]
        scope = f"{'businessId' if key[0] == 'businesses' else 'campaignId'} {key[1]}"
        wall = self._wall0 + (self.config.monotonic() - self._mono0)
        api_key = request.headers.get("api-key", "")
        if self.config.token is not None and api_key != self.config.token:
            prefixed = api_key.split(" ", 1)[0] in ("Bearer", "OAuth")
            message = "Api-Key token prefix invalid" if prefixed else "Api-Key token is invalid"
            return self._json(*error(401, "UNAUTHORIZED", message), wall=wall)
        if self.faults.pick(request.url.path, "auth") is not None:  # expired_token
            return self._json(401, EXPIRED_TOKEN_BODY, wall=wall)
        if self.in_flight[scope] >= self.config.parallel_limit:
            self.stats.parallel_refused += 1
            status, body = error(420, "METHOD_FAILURE", f"Hit rate limit of {self.config.parallel_limit} "
                                                         f"parallel requests for {scope}")
            return self._json(status, body, wall=wall, budget=self._budget(resource, spend=False))
        self.in_flight[scope] += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.in_flight[scope])
        try:
            # Hold the slot across a yield, as a real server does while it works on an answer.
            await asyncio.sleep(self.config.latency)
            return await self._answer(request, resource, handler, now, wall, entry)
        finally:
            self.in_flight[scope] -= 1

    def _budget(self, resource: str, spend: bool) -> tuple[int, int, float] | None:
        """(limit, remaining, seconds until the hour's budget refills), spending one if asked."""
        if not self.config.rate_limits or resource not in self.config.limits:
            return None
        limit, period = self.config.limits[resource], PERIODS.get(resource, HOUR)
        mono = self.config.monotonic() - self._mono0
        window = int(mono // period)
        start, used = self.used.get(resource, (window, 0))
        if start != window:
            used = 0
        if spend and used < limit:
            used += 1
        self.used[resource] = (window, used)
        return limit, limit - used, (window + 1) * period - mono

    async def _answer(self, request: Request, resource: str, handler: Callable, now: int,
                      wall: float, entry: dict[str, Any] | None = None) -> Response:
        budget = self._budget(resource, spend=False)
        if budget is not None and budget[1] <= 0:
            limit = budget[0]
            return self._json(*error(420, "METHOD_FAILURE", f"Hit rate limit of '{limit}' requests per "
                                                             f"'hour' for resource '{resource}'"),
                              wall=wall, budget=budget)
        budget = self._budget(resource, spend=True)  # 4xx answers count too
        k = self.faults.pick(request.url.path)
        fault = self.config.faults[k] if k is not None else None
        if fault is not None and fault.kind == "rate_limit":
            pretend = (budget[0] if budget else 1, 0, float(fault.retry_after))
            return self._json(*error(420, "METHOD_FAILURE", f"Hit rate limit of '{pretend[0]}' requests "
                                                             f"per 'hour' for resource '{resource}'"),
                              wall=wall, budget=pretend)
        if fault is not None and fault.kind in ("http_500", "http_503"):
            status = int(fault.kind[-3:])
            code = "INTERNAL_SERVER_ERROR" if status == 500 else "SERVICE_UNAVAILABLE"
            return self._json(*error(status, code, "injected fault"), wall=wall, budget=budget)
        if fault is not None and fault.kind == "timeout":
            await asyncio.sleep(fault.delay)
        status, payload = await handler(request, now)
        if entry is not None:
            entry["applied"] = 200 <= status < 300
        if fault is not None and fault.kind == "apply_then_timeout":
            await asyncio.sleep(fault.delay)  # applied; the client's deadline loses the answer
        if fault is not None and fault.kind == "apply_then_500":
            status, payload = error(500, "INTERNAL_SERVER_ERROR", "injected fault")
        if status == 200 and payload is not None and self._reshapes:
            # A copy: answers share objects with the data (comments, chats), which drift must not edit.
            payload = orjson.loads(orjson.dumps(payload))
            reshape_payload(self.faults, request.url.path, payload, _SHAPE, self.breakage)
        if fault is not None and fault.kind == "malformed":
            record_id = _corrupt(payload) if status == 200 else None
            if record_id is None:
                self.faults.refund(k)  # nothing to corrupt: keep the fault for a real page
            else:
                self.corrupted.append((request.url.path, record_id))
        response = self._json(status, payload, wall=wall, budget=budget)
        if fault is not None and fault.kind == "truncated":
            response = Response(response.body[: len(response.body) // 2], status,
                                headers=dict(response.headers), media_type="application/json")
        return response

    @staticmethod
    def _json(status: int, payload: Any, *, wall: float,
              budget: tuple[int, int, float] | None = None) -> Response:
        response = Response(orjson.dumps(payload), status, media_type="application/json")
        date = math.floor(wall)
        response.headers["Date"] = format_datetime(datetime.fromtimestamp(date, UTC), usegmt=True)
        if budget is not None:
            limit, remaining, refill = budget
            until = datetime.fromtimestamp(date + math.ceil(refill), UTC)
            response.headers.update({
                "X-RateLimit-Resource-Limit": str(limit),
                "X-RateLimit-Resource-Remaining": str(max(0, remaining)),
                "X-RateLimit-Resource-Until": format_datetime(until, usegmt=True),
            })
        return response


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build the emulator app; the dataset is generated here, once."""
    emu = _Emulator(config or EmulatorConfig())
    feedback = "/v2/businesses/{business_id:int}/goods-feedback"
    chats = "/v2/businesses/{business_id:int}/chats"
    routes = [
        emu.route("/v1/businesses/{business_id:int}/orders", "orders", emu.orders, "POST"),
        emu.route("/v2/campaigns/{campaign_id:int}/orders/{order_id:int}/buyer", "buyer_info",
                  emu.buyer, "GET"),
        emu.route(feedback, "feedbacks", emu.feedbacks, "POST"),
        emu.route(feedback + "/comments", "feedback_comments", emu.comments, "POST"),
        emu.route(feedback + "/comments/update", "feedback_comment_update", emu.update_comment, "POST",
                  write=True),
        emu.route(chats, "chats", emu.list_chats, "POST"),
        emu.route(chats + "/new", "chat_new", emu.create_chat, "POST", write=True),
        emu.route(chats + "/message", "chat_message", emu.send_chat_message, "POST", write=True),
        emu.route(chats + "/history", "chat_history", emu.chat_history, "POST"),
        emu.route("/v2/businesses/{business_id:int}/offer-mappings", "offer_mappings", emu.offer_mappings, "POST"),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = emu
    app.state.data = emu.data
    app.state.stats = emu.stats
    app.state.request_log = emu.request_log
    app.state.corrupted = emu.corrupted
    app.state.breakage = emu.breakage
    app.state.writes = emu.writes
    app.state.chats = emu.chats
    app.state.late_changes = emu.late_changes
    app.state.short_pages = emu.faults.short_pages
    app.state.offer_mapping_requests = emu.offer_mapping_requests
    return app
