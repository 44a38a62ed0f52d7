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
`emulator_data` and `emulator_orders`; this module is what Market's side of the shared pipeline
(`connectors.emulator_base`) says: Api-Key, the parallel limit, the hourly budgets, 420 and its envelope.
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
from starlette.responses import Response

from connectors.emulation import Fault, FaultKind, FaultPlan, PayloadShape
from connectors.emulator_base import Call, Emulator, Throttle
from connectors.emulator_base import EmulatorStats as BaseStats
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
class EmulatorStats(BaseStats):
    """The shared counters (`requests` and `throttled`, the 420s, by resource), and Market's own."""

    parallel_refused: int = 0
    max_in_flight: int = 0  # the most requests one business or campaign had running at once
    buyer_info_calls: Counter[int] = field(default_factory=Counter)  # by order id


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


class _HourlyBudgets:
    """Market's per-method budgets: a fixed count per clock hour (or minute), not a token bucket.

    The whole budget comes back at once when the period turns, and `X-RateLimit-Resource-Until`
    names that moment: a client that retries before it gets another 420.
    """

    def __init__(self, limits: Mapping[str, int], monotonic: Callable[[], float]):
        self.limits, self.monotonic = limits, monotonic
        self.start = monotonic()
        self.used: dict[str, tuple[int, int]] = {}  # resource -> (budget period number, requests)

    def check(self, resource: str, spend: bool) -> tuple[int, int, float] | None:
        """(limit, remaining, seconds until the budget refills), spending one if asked."""
        if resource not in self.limits:
            return None
        limit, period = self.limits[resource], PERIODS.get(resource, HOUR)
        mono = self.monotonic() - self.start
        window = int(mono // period)
        start, used = self.used.get(resource, (window, 0))
        if start != window:
            used = 0
        if spend and used < limit:
            used += 1
        self.used[resource] = (window, used)
        return limit, limit - used, (window + 1) * period - mono


class _Emulator(Endpoints, CatalogEndpoints, Emulator):
    """Market's side of the pipeline: Api-Key, the parallel limit, hourly budgets, 420s, its envelope."""

    shape = _SHAPE
    THROTTLE_STATUS = 420

    def __init__(self, config: EmulatorConfig):
        super().__init__(config, stats=EmulatorStats())
        born = config.now or datetime.now(UTC)
        self.data: Dataset = generate(config.seed, config.orders, config.reviews, config.history_days,
                                      int(born.timestamp()), buyers=config.buyers,
                                      dbs_share=config.dbs_share)
        self.chats = self.data.chats
        self.late_changes = stage_late_changes(self.data.orders, self.faults.late_changes(), int(born.timestamp()))
        self.offer_mapping_requests: list[tuple[dict[str, str], Any]] = []
        self.in_flight: Counter[str] = Counter()
        self.budgets = _HourlyBudgets(config.limits if config.rate_limits else {}, config.monotonic)
        # Date and X-RateLimit-Resource-Until run on the budgets' clock, from the data's "now":
        # a test's frozen data clock and fake monotonic clock still give waits that make sense.
        self._wall0 = self.now()

    def now(self) -> float:
        """The data's "now" in unix seconds (the configured clock, or real time)."""
        moment = self.config.clock() if self.config.clock else datetime.now(UTC)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

    def authenticate(self, call: Call) -> Response | None:
        # Every answer, refusals too, carries a Date on the budgets' clock, read as the request arrives.
        call.extra["wall"] = self._wall0 + (self.config.monotonic() - self.budgets.start)
        api_key = call.request.headers.get("api-key", "")
        if self.config.token is not None and api_key != self.config.token:
            prefixed = api_key.split(" ", 1)[0] in ("Bearer", "OAuth")
            message = "Api-Key token prefix invalid" if prefixed else "Api-Key token is invalid"
            return self.respond(call, *error(401, "UNAUTHORIZED", message))
        return None

    def expired(self, call: Call) -> Response:
        return self.respond(call, 401, EXPIRED_TOKEN_BODY)

    async def limited(self, call: Call) -> Response:
        """At most `parallel_limit` requests in flight per business or campaign, then the rest."""
        key = call.path.split("/")[2:4]  # ["businesses", id] or ["campaigns", id]
        scope = f"{'businessId' if key[0] == 'businesses' else 'campaignId'} {key[1]}"
        if self.in_flight[scope] >= self.config.parallel_limit:
            self.stats.parallel_refused += 1
            call.quota = self.budgets.check(call.group, spend=False)  # budget left: not the problem
            return self.respond(call, *error(420, "METHOD_FAILURE", f"Hit rate limit of {self.config.parallel_limit} "
                                                                     f"parallel requests for {scope}"))
        self.in_flight[scope] += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.in_flight[scope])
        try:
            # Hold the slot across a yield, as a real server does while it works on an answer.
            await asyncio.sleep(self.config.latency)
            return await super().limited(call)
        finally:
            self.in_flight[scope] -= 1

    def admit(self, call: Call) -> Throttle | None:
        budget = self.budgets.check(call.group, spend=False)
        if budget is not None and budget[1] <= 0:
            return Throttle(budget[2], budget[2], budget[0])
        call.quota = self.budgets.check(call.group, spend=True)  # 4xx answers count too
        call.limit = call.quota[0] if call.quota is not None else None
        return None

    def throttled(self, call: Call, throttle: Throttle) -> Response:
        # A refusal without a hint carries none of the budget's headers.
        call.quota = (throttle.limit, 0, throttle.reset) if throttle.reset is not None else None
        return self.respond(call, *error(420, "METHOD_FAILURE", f"Hit rate limit of '{throttle.limit}' requests "
                                                                 f"per 'hour' for resource '{call.group}'"))

    async def invoke(self, call: Call) -> tuple[int, Any]:
        return await call.handler(call.request, int(call.now))

    def failure(self, call: Call, status: int) -> tuple[int, Any]:
        return error(status, "INTERNAL_SERVER_ERROR" if status == 500 else "SERVICE_UNAVAILABLE", "injected fault")

    def reshape(self, call: Call, payload: Any) -> Any:
        if not any(FaultPlan.stage_of(f.kind) == "payload" for f in self.faults.faults):
            return payload
        # A copy: answers share objects with the data (comments, chats), which drift must not edit.
        return super().reshape(call, orjson.loads(orjson.dumps(payload)))

    def corrupt(self, payload: Any) -> Any:
        return _corrupt(payload)

    def respond(self, call: Call, status: int, payload: Any) -> Response:
        """Market's answer: a Date on every one, the budget's headers where a budget was consulted."""
        response = Response(orjson.dumps(payload), status, media_type="application/json")
        date = math.floor(call.extra["wall"])
        response.headers["Date"] = format_datetime(datetime.fromtimestamp(date, UTC), usegmt=True)
        if call.quota is not None:
            limit, left, refill = call.quota
            until = datetime.fromtimestamp(date + math.ceil(refill), UTC)
            response.headers.update({
                "X-RateLimit-Resource-Limit": str(limit),
                "X-RateLimit-Resource-Remaining": str(max(0, left)),
                "X-RateLimit-Resource-Until": format_datetime(until, usegmt=True),
            })
        return response


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build the emulator app; the dataset is generated here, once."""
    emu = _Emulator(config or EmulatorConfig())
    business = "/v2/businesses/{business_id:int}"
    feedback, chats = business + "/goods-feedback", business + "/chats"
    routes = [emu.route(path, handler, group=resource, method=method, write=write)
              for path, resource, handler, method, write in (
        ("/v1/businesses/{business_id:int}/orders", "orders", emu.orders, "POST", False),
        ("/v2/campaigns/{campaign_id:int}/orders/{order_id:int}/buyer", "buyer_info", emu.buyer, "GET", False),
        (feedback, "feedbacks", emu.feedbacks, "POST", False),
        (feedback + "/comments", "feedback_comments", emu.comments, "POST", False),
        (feedback + "/comments/update", "feedback_comment_update", emu.update_comment, "POST", True),
        (chats, "chats", emu.list_chats, "POST", False),
        (chats + "/new", "chat_new", emu.create_chat, "POST", True),
        (chats + "/message", "chat_message", emu.send_chat_message, "POST", True),
        (chats + "/history", "chat_history", emu.chat_history, "POST", False),
        (business + "/offer-mappings", "offer_mappings", emu.offer_mappings, "POST", False),
    )]
    return emu.build_app(routes, data=emu.data, chats=emu.chats, late_changes=emu.late_changes,
                         offer_mapping_requests=emu.offer_mapping_requests)
