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
`emulator`.
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
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
from connectors.yandex_market.emulator_data import ACTIVE, Dataset, generate

__all__ = ["DEFAULT_LIMITS", "EmulatorConfig", "EmulatorStats", "Fault", "FaultKind", "create_app"]

#: resource -> requests per hour (yandex_market.md §3-§4; reviews without the Medium subscription).
DEFAULT_LIMITS: Mapping[str, int] = MappingProxyType({
    "orders": 10_000, "buyer_info": 3_000, "feedbacks": 5_000, "feedback_comments": 5_000,
    "feedback_comment_update": 1_000, "chats": 10_000, "chat_history": 10_000, "chat_new": 1_000,
    "chat_message": 1_000,
})
HOUR = 3600.0
FINAL = frozenset({"DELIVERED", "CANCELLED", "RETURNED", "PARTIALLY_RETURNED"})
COMMENT_MAX = 4096  # GoodsFeedbackCommentText: 1..4096 characters
CHAT_MESSAGE_MAX = 4096  # SendMessageToChatRequest.message: 1..4096 characters
# "must not contain the shop's contacts or links to sites other than Market": the emulator's
# stand-in check refuses any link that is not to market.yandex.ru, and e-mail addresses.
_FOREIGN_LINK = re.compile(r"(https?://|www\.)(?!market\.yandex\.ru)|[\w.+-]+@[\w-]+\.[\w.]+", re.I)


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


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"status": "ERROR", "errors": [{"code": code, "message": message}]}


def _token(offset: int) -> str:
    """Page tokens in Market's look (base64 of "{ nextId: N }")."""
    return base64.b64encode(f"{{ nextId: {offset} }}".encode()).decode()


def _offset(token: str | None) -> int | None:
    if not token:
        return 0
    try:
        text = base64.b64decode(token, validate=True).decode()
        return int(text.strip("{} ").removeprefix("nextId:").strip())
    except ValueError:
        return None


def _instant(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return int(moment.timestamp()) if moment.tzinfo is not None else None


def _limit(request: Request, default: int, most: int = 50, *, truncate: bool = True) -> int | None:
    """The page size asked for; above `most` it is cut down ("values >50 are truncated"), or
    refused (None) where the spec only gives a maximum."""
    raw = request.query_params.get("limit")
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return None
    if value < 1 or (value > most and not truncate):
        return None
    return min(value, most)


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


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
    # Optional fields of BusinessOrderDTO and GoodsFeedbackDTO.
    optional={
        "order": ("externalOrderId", "paymentType", "paymentMethod", "fake", "delivery", "buyerType", "notes"),
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


class _Emulator:
    """The guard (auth, both limits, faults, bookkeeping) and the endpoints."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        born = config.now or datetime.now(UTC)
        self.data: Dataset = generate(config.seed, config.orders, config.reviews, config.history_days,
                                      int(born.timestamp()), buyers=config.buyers,
                                      dbs_share=config.dbs_share)
        self.chats = self.data.chats
        self.faults = FaultPlan(config.faults, config.seed)
        self.stats = EmulatorStats()
        self.request_log: list[tuple[str, str, str, int]] = []
        self.corrupted: list[tuple[str, Any]] = []
        self.breakage = Breakage()
        self.writes: list[dict[str, Any]] = []
        self.in_flight: Counter[str] = Counter()
        self.used: dict[str, tuple[int, int]] = {}  # resource -> (hour window number, requests)
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
            return self._json(*_error(401, "UNAUTHORIZED", message), wall=wall)
        if self.faults.pick(request.url.path, "auth") is not None:  # expired_token
            return self._json(401, EXPIRED_TOKEN_BODY, wall=wall)
        if self.in_flight[scope] >= self.config.parallel_limit:
            self.stats.parallel_refused += 1
            status, body = _error(420, "METHOD_FAILURE", f"Hit rate limit of {self.config.parallel_limit} "
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
        limit = self.config.limits[resource]
        mono = self.config.monotonic() - self._mono0
        window = int(mono // HOUR)
        start, used = self.used.get(resource, (window, 0))
        if start != window:
            used = 0
        if spend and used < limit:
            used += 1
        self.used[resource] = (window, used)
        return limit, limit - used, (window + 1) * HOUR - mono

    async def _answer(self, request: Request, resource: str, handler: Callable, now: int,
                      wall: float, entry: dict[str, Any] | None = None) -> Response:
        budget = self._budget(resource, spend=False)
        if budget is not None and budget[1] <= 0:
            limit = budget[0]
            return self._json(*_error(420, "METHOD_FAILURE", f"Hit rate limit of '{limit}' requests per "
                                                             f"'hour' for resource '{resource}'"),
                              wall=wall, budget=budget)
        budget = self._budget(resource, spend=True)  # 4xx answers count too
        k = self.faults.pick(request.url.path)
        fault = self.config.faults[k] if k is not None else None
        if fault is not None and fault.kind == "rate_limit":
            pretend = (budget[0] if budget else 1, 0, float(fault.retry_after))
            return self._json(*_error(420, "METHOD_FAILURE", f"Hit rate limit of '{pretend[0]}' requests "
                                                             f"per 'hour' for resource '{resource}'"),
                              wall=wall, budget=pretend)
        if fault is not None and fault.kind in ("http_500", "http_503"):
            status = int(fault.kind[-3:])
            code = "INTERNAL_SERVER_ERROR" if status == 500 else "SERVICE_UNAVAILABLE"
            return self._json(*_error(status, code, "injected fault"), wall=wall, budget=budget)
        if fault is not None and fault.kind == "timeout":
            await asyncio.sleep(fault.delay)
        status, payload = await handler(request, now)
        if entry is not None:
            entry["applied"] = 200 <= status < 300
        if fault is not None and fault.kind == "apply_then_timeout":
            await asyncio.sleep(fault.delay)  # applied; the client's deadline loses the answer
        if fault is not None and fault.kind == "apply_then_500":
            status, payload = _error(500, "INTERNAL_SERVER_ERROR", "injected fault")
        if status == 200 and payload is not None:
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

    async def _body(self, request: Request) -> dict[str, Any] | None:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return body if isinstance(body, dict) else None

    def _business(self, request: Request) -> bool:
        return request.path_params["business_id"] == self.config.business_id

    # --- orders -------------------------------------------------------------------------------

    async def orders(self, request: Request, now: int) -> tuple[int, Any]:
        if not self._business(request):
            return _error(403, "FORBIDDEN", "Access denied to the business")
        body, limit = await self._body(request), _limit(request, 50)
        token = request.query_params.get("page_token") or request.query_params.get("pageToken")
        after = _offset(token)
        if body is None or limit is None or after is None:
            return _error(400, "BAD_REQUEST", "invalid body, limit or page_token")
        dates = body.get("dates") or {}
        lo, hi = _instant(dates.get("updateDateFrom")), _instant(dates.get("updateDateTo"))
        if (dates.get("updateDateFrom") and lo is None) or (dates.get("updateDateTo") and hi is None):
            return _error(400, "BAD_REQUEST", "updateDateFrom/updateDateTo must be ISO 8601 date-times")
        hi = now if hi is None else min(hi, now)
        lo = hi - 30 * 86400 if lo is None else lo
        if hi - lo > 30 * 86400:
            return _error(400, "BAD_REQUEST", "The date range must not exceed 30 days")
        campaigns, table = body.get("campaignIds"), self.data.orders
        page, i, end = [], table.index_of_id(after) if after else None, table.visible_end(now)
        i = 0 if i is None else i + 1
        while i < end and len(page) < limit:
            step = table.state(i, now)
            # Finished orders older than 30 days drop out of the list (as getOrders documents).
            stale = step.status in FINAL and step.at < now - 30 * 86400
            if lo <= step.at < hi and not stale and (not campaigns or table.campaign_of(i) in campaigns):
                page.append(i)
            i += 1
        more = len(page) == limit and i < end
        return 200, {"orders": [table.record(j, now) for j in page],
                     "paging": {"nextPageToken": _token(table.ids[page[-1]])} if more else {}}

    async def buyer(self, request: Request, now: int) -> tuple[int, Any]:
        table = self.data.orders
        order_id = request.path_params["order_id"]
        self.stats.buyer_info_calls[order_id] += 1
        i = table.index_of_id(order_id)
        if i is None or table.created[i] > now or table.campaign_of(i) != request.path_params["campaign_id"]:
            return _error(404, "NOT_FOUND", f"Order {order_id} not found")
        if table.program_of(i) != "DBS":
            return _error(400, "BAD_REQUEST", "Buyer information is available for DBS orders only")
        if table.state(i, now).status not in ACTIVE:
            return _error(400, "STATUS_NOT_ALLOWED", "Order status must be PROCESSING, DELIVERY or PICKUP")
        return 200, {"status": "OK", "result": self.data.buyers.info(table.buyer[i])}

    # --- reviews ------------------------------------------------------------------------------

    async def feedbacks(self, request: Request, now: int) -> tuple[int, Any]:
        if not self._business(request):
            return _error(403, "FORBIDDEN", "Access denied to the business")
        body, limit = await self._body(request), _limit(request, 25)
        token = request.query_params.get("page_token") or request.query_params.get("pageToken")
        at = _offset(token)
        if body is None or limit is None or at is None:
            return _error(400, "BAD_REQUEST", "invalid body, limit or page_token")
        lo, hi = _instant(body.get("dateTimeFrom")), _instant(body.get("dateTimeTo"))
        hi = now + 1 if hi is None else hi
        lo = hi - 183 * 86400 if lo is None else lo
        if hi - lo > 183 * 86400:
            return _error(400, "BAD_REQUEST", "The interval must not exceed 6 months")
        table = self.data.reviews
        hits = [i for i in range(table.visible_end(now)) if lo < table.created[i] < hi]  # both exclusive
        page = hits[at: at + limit]
        more = at + limit < len(hits)
        return 200, {"status": "OK", "result": {
            "feedbacks": [table.record(i, now) for i in page],
            "paging": {"nextPageToken": _token(at + limit)} if more else {}}}

    async def comments(self, request: Request, now: int) -> tuple[int, Any]:
        body = await self._body(request)
        fid = body.get("feedbackId") if body else None
        table = self.data.reviews
        i = table.index_of_id(fid) if isinstance(fid, int) else None
        if not self._business(request) or i is None or table.published[i] > now:
            return _error(400, "BAD_REQUEST", "feedbackId: unknown feedback")
        return 200, {"status": "OK", "result": {"comments": table.comments(i, now), "paging": {}}}

    async def update_comment(self, request: Request, now: int) -> tuple[int, Any]:
        """`goods-feedback/comments/update`: create (no `comment.id`), reply (`parentId`) or edit."""
        if not self._business(request):
            return _error(403, "FORBIDDEN", "Access denied to the business")
        body = await self._body(request)
        if body is None:
            return _error(400, "BAD_REQUEST", "Request body must be a JSON object")
        fid, comment = body.get("feedbackId"), body.get("comment")
        if not isinstance(fid, int) or isinstance(fid, bool):
            return _error(400, "BAD_REQUEST", "feedbackId: must be an integer")
        if not isinstance(comment, dict):
            return _error(400, "BAD_REQUEST", "comment: must not be null")
        text, comment_id, parent_id = comment.get("text"), comment.get("id"), comment.get("parentId")
        if not isinstance(text, str):
            return _error(400, "BAD_REQUEST", "comment.text: must not be null")
        if not 1 <= len(text) <= COMMENT_MAX or not text.strip():
            return _error(400, "BAD_REQUEST", f"comment.text: length must be between 1 and {COMMENT_MAX}")
        if _FOREIGN_LINK.search(text):
            return _error(400, "BAD_REQUEST", "comment.text: must not contain contacts or links to other sites")
        for name, value in (("comment.id", comment_id), ("comment.parentId", parent_id)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                return _error(400, "BAD_REQUEST", f"{name}: must be an integer")
        table = self.data.reviews
        i = table.index_of_id(fid)
        if i is None or table.published[i] > now:
            return _error(404, "NOT_FOUND", f"Feedback {fid} not found")
        if parent_id is not None and parent_id not in {c["id"] for c in table.comments(i, now)}:
            return _error(404, "NOT_FOUND", f"Comment {parent_id} not found")
        # A second comment is allowed by Market; the connector's find_done keeps it from happening.
        result = table.write_comment(i, now, text, comment_id, parent_id)
        if result is None:
            return _error(404, "NOT_FOUND", f"Comment {comment_id} not found")
        return 200, {"status": "OK", "result": result}


    # --- chats --------------------------------------------------------------------------------

    async def create_chat(self, request: Request, now: int) -> tuple[int, Any]:
        """`chats/new`: the chat of an order or a return; an existing one is returned as it is."""
        if not self._business(request):
            return _error(403, "FORBIDDEN", "Access denied to the business")
        body = await self._body(request)
        if body is None:
            return _error(400, "BAD_REQUEST", "Request body must be a JSON object")
        context = body.get("context")
        if context is None and _is_id(body.get("orderId")):
            context = {"type": "ORDER", "id": body["orderId"]}  # the deprecated form
        if not isinstance(context, dict) or not _is_id(context.get("id")):
            return _error(400, "BAD_REQUEST", "context: type and id are required")
        kind, target = context.get("type"), context["id"]
        if kind not in ("ORDER", "RETURN"):  # DIRECT included: only a buyer starts one
            return _error(400, "BAD_REQUEST", "context.type: must be one of ORDER, RETURN")
        table = self.data.orders
        if kind == "ORDER":
            i = table.index_of_id(target)
            if i is None or table.created[i] > now:
                return _error(404, "NOT_FOUND", f"Order {target} not found")
        else:
            i = table.index_of_return(target, now)
            if i is None or table.program_of(i) == "DBS":  # return chats: FBY, FBS and Express
                return _error(404, "NOT_FOUND", f"Return {target} not found")
        chat = self.chats.find(kind, target) or self.chats.open(i, now, kind)
        return 200, {"status": "OK", "result": {"chatId": chat["chatId"]}}

    async def list_chats(self, request: Request, now: int) -> tuple[int, Any]:
        """`chats`: filtered by `orderIds` (deprecated), `contexts`, `contextTypes`, `types`, `statuses`."""
        if not self._business(request):
            return _error(403, "FORBIDDEN", "Access denied to the business")
        body, limit = await self._body(request), _limit(request, 10, 20, truncate=False)
        at = _offset(request.query_params.get("page_token") or request.query_params.get("pageToken"))
        if body is None or limit is None or at is None:
            return _error(400, "BAD_REQUEST", "invalid body, limit (1..20) or page_token")
        names = ("orderIds", "contexts", "contextTypes", "types", "statuses")
        filters = {k: body.get(k) for k in names if body.get(k) is not None}
        if any(not isinstance(v, list) or not v for v in filters.values()):
            return _error(400, "BAD_REQUEST", "a filter must be a non-empty list")
        hits = [c for _, c in sorted(self.chats.chats.items()) if _chat_matches(c, filters)]
        more = at + limit < len(hits)
        return 200, {"status": "OK", "result": {
            "chats": [self.chats.info(c) for c in hits[at: at + limit]],
            "paging": {"nextPageToken": _token(at + limit)} if more else {}}}

    def _chat(self, request: Request) -> dict[str, Any] | tuple[int, Any]:
        """The chat named by `?chatId=`, or the (status, error) to answer."""
        if not self._business(request):
            return _error(403, "FORBIDDEN", "Access denied to the business")
        raw = request.query_params.get("chatId", "")
        if not raw.isdigit() or int(raw) < 1:
            return _error(400, "BAD_REQUEST", "chatId: must be a positive integer")
        chat = self.chats.chats.get(int(raw))
        return chat if chat is not None else _error(404, "NOT_FOUND", f"Chat {raw} not found")

    async def send_chat_message(self, request: Request, now: int) -> tuple[int, Any]:
        chat = self._chat(request)
        if isinstance(chat, tuple):
            return chat
        body = await self._body(request)
        text = body.get("message") if body else None
        if not isinstance(text, str):
            return _error(400, "BAD_REQUEST", "message: must not be null")
        if not 1 <= len(text) <= CHAT_MESSAGE_MAX:
            return _error(400, "BAD_REQUEST", f"message: length must be between 1 and {CHAT_MESSAGE_MAX}")
        self.chats.add_message(chat["chatId"], now, text, sender="PARTNER")
        return 200, {"status": "OK"}

    async def chat_history(self, request: Request, now: int) -> tuple[int, Any]:
        """`chats/history`: oldest first, from `messageIdFrom` on, `chat_history_page` at most per page."""
        chat = self._chat(request)
        if isinstance(chat, tuple):
            return chat
        body, limit = await self._body(request), _limit(request, 50, 100, truncate=False)
        at = _offset(request.query_params.get("page_token") or request.query_params.get("pageToken"))
        start = body.get("messageIdFrom") if body else None
        if body is None or limit is None or at is None or (start is not None and not _is_id(start)):
            return _error(400, "BAD_REQUEST", "invalid body, limit (1..100) or page_token")
        messages = [m for m in chat["messages"] if start is None or m["messageId"] >= start]
        size = min(limit, self.config.chat_history_page)
        more = at + size < len(messages)
        return 200, {"status": "OK", "result": {
            "orderId": chat.get("orderId"), "context": chat["context"], "messages": messages[at: at + size],
            "paging": {"nextPageToken": _token(at + size)} if more else {}}}


def _chat_matches(chat: dict[str, Any], filters: dict[str, list[Any]]) -> bool:
    ctx = chat["context"]
    own_id = ctx.get("returnId") if ctx["type"] == "RETURN" else ctx.get("orderId")
    contexts = filters.get("contexts")
    return (("orderIds" not in filters or ctx.get("orderId") in filters["orderIds"])
            and (contexts is None or any(isinstance(c, dict) and c.get("type") == ctx["type"]
                                         and c.get("id") == own_id for c in contexts))
            and ("contextTypes" not in filters or ctx["type"] in filters["contextTypes"])
            and ("types" not in filters or chat["type"] in filters["types"])
            and ("statuses" not in filters or chat["status"] in filters["statuses"]))


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
    return app
