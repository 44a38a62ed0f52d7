"""An emulator of the Avito API for business (orders, reviews, Messenger chats) on the shared pipeline.

Built from shared/marketplaces/avito.md (sections cited as §n) and its example payloads (official
spec examples), not from any client: OAuth2 client_credentials tokens that live 24 h and answer 403
once expired (§2), order pages numbered from 1 with repeated-key array filters and at most 20 orders
(§3), offset-paged reviews with moderated answers (§4), 429 with X-RateLimit headers on ratings and
without them on order-management (§5). Where the doc is ambiguous the strict reading is enforced and
the choice is said where it is made.

`create_app(EmulatorConfig(...))` is the entry point. `app.state` holds, besides the pipeline's
bookkeeping (`emulator`, `stats`, `request_log`, `corrupted`, `breakage`, `writes`, `faults`,
`short_pages`): `orders` ({id: `Order`}), `reviews` ({id: `Review`}), `chats` ({chat id: `Chat`}),
`user_id` (the seller account), `tokens_issued`, `requests_with_expired_token`, `late_changes`
({order id: (status before, after)}), `answers_by_review` ({review id: every `Answer` posted through
the API}) and `data` (`Dataset`). Data and JSON shapes live in `emulator_data`; this module is the protocol.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from connectors.avito.emulator_data import (
    DELIVERY_DATE_MAX,
    STATUSES,
    Answer,
    Chat,
    Dataset,
    Item,
    Order,
    RejectReason,
    Review,
    Stage,
    account_json,
    chat_json,
    generate,
    moderate,
    order_json,
    ratings_info_json,
    review_json,
)
from connectors.emulation import Fault, PayloadShape
from connectors.emulator_base import BucketLimits, Call, Emulator, Throttle, remaining
from connectors.ratelimit import Rate, TokenBucket

__all__ = ["ANSWERS", "CHAT", "DELIVERY_DATE_MAX", "INFO", "ORDERS", "REVIEWS", "SELF", "STATUSES", "TOKEN",
           "Answer", "Chat", "EmulatorConfig", "Fault", "Item", "Order", "RejectReason", "Review", "Stage",
           "create_app"]

TOKEN = "/token"
SELF = "/core/v1/accounts/self"
ORDERS = "/order-management/1/orders"
REVIEWS = "/ratings/v1/reviews"
INFO = "/ratings/v1/info"
ANSWERS = "/ratings/v1/answers"
CHAT = "/messenger/v2/accounts/{user_id}/chats/{chat_id}"
# Route groups: the stats key, the limit group and the error body's shape.
AUTH, ACCOUNTS, ORDER_MANAGEMENT, RATINGS, MESSENGER = "auth", "accounts", "order-management", "ratings", "messenger"

#: §3/§5: getOrders "max 500 requests per minute" (`x-rate-limiter.default: 500`), per account.
ORDERS_RATE = Rate(500, 60.0, 500)
#: §5: ratings declare no limit, yet declare X-RateLimit-Limit ("requests per minute"); the headers
#: need a number. UNCONFIRMED: 60 per minute per account, enforced with a 429 like the others.
RATINGS_RATE = Rate(60, 60.0, 60)
MAX_ORDERS_LIMIT = 20  # §3: limit 0..20
DEFAULT_ORDERS_LIMIT = 10  # not documented (UNCONFIRMED): the spec's example value
MAX_REVIEWS_LIMIT = 50  # §4: limit 1..50
_INTEGER = re.compile(r"-?[0-9]+")  # ASCII digits only
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class EmulatorConfig:
    seed: int = 7
    orders: int = 300
    reviews: int = 80
    client_id: str = "avito-client-id"
    client_secret: str = "avito-client-secret"
    token_lifetime: float = 86400.0  # seconds an access token lives, measured on `monotonic` (avito.md §2: 24 h)
    revoke_previous: bool = False  # whether issuing a new token revokes the earlier ones (§2: UNCONFIRMED; model both)
    messenger: bool = True  # the tariff includes Messenger («Максимальный», §2/§3); False: Messenger answers 403
    # An answer stays `moderation` this long (on the serving clock), then `published` or `rejected` (§4).
    moderation_seconds: float = 3600.0
    history_days: int = 60
    generated_at: datetime | None = None  # the data's "now" (default: the wall clock at build)
    serving_at: datetime | None = None  # the platform's "now" when answering (default: the wall clock)
    rate_limits: bool = True
    faults: tuple[Fault, ...] = ()
    monotonic: Callable[[], float] = time.monotonic
    latency: float = 0.0  # seconds each answer takes (real time)


class BadRequest(Exception):
    pass


@dataclass
class IssuedToken:
    issued: float  # on `monotonic`
    revoked: bool = False  # by a later token (`revoke_previous`) or by an `expired_token` fault


# -- error bodies (§3, §4, §5) -----------------------------------------------------------------------

def refusal(group: str, status: int, message: str, code: str | int | None = None) -> tuple[int, Any]:
    """The error body of `group`: order-management's flat `{code:int, message}` (§5 schema `error`);
    /token's OAuth2 `{error, error_description}` (RFC 6749 §5.2: the auth spec declares no error);
    ratings', Messenger's and user-info's `{"error": {code, message}}` (their specs' error schemas;
    ratings' 400 carries the string code "validation", §4)."""
    if group == ORDER_MANAGEMENT:
        return status, {"code": status, "message": message}
    if group == AUTH:
        return status, {"error": code or "server_error", "error_description": message}
    return status, {"error": {"code": status if code is None else code, "message": message}}


def validation(message: str) -> tuple[int, Any]:
    """§4: `{"error": {"code": "validation", "message": ...}}`, as reviews_error_400.response.json."""
    return refusal(RATINGS, 400, message, "validation")


# -- the orders query (§3) ---------------------------------------------------------------------------

@dataclass(frozen=True)
class OrdersQuery:
    statuses: frozenset[str]
    ids: frozenset[str]
    date_from: int | None
    page: int
    limit: int


def _values(params: QueryParams, name: str) -> list[str]:
    """§3: arrays are repeated keys (`statuses=a&statuses=b`); `statuses[]=` is accepted too."""
    return params.getlist(name) + params.getlist(f"{name}[]")


def _integer(params: QueryParams, name: str, default: int | None) -> int | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"{name} is given more than once")
    if not values:
        return default
    if not _INTEGER.fullmatch(values[0]):
        raise BadRequest(f"{name} must be an integer, got {values[0]!r}")
    return int(values[0])


def parse_orders_query(params: QueryParams) -> OrdersQuery:
    statuses = _values(params, "statuses")
    unknown = [s for s in statuses if s not in STATUSES]  # a comma-joined list is no status either
    if unknown:
        raise BadRequest(f"unknown statuses {unknown}: use {', '.join(STATUSES)}, one per repeated key")
    # §3 dateFrom: an integer unix timestamp (seconds) of creation; an ISO date is refused.
    date_from = _integer(params, "dateFrom", None)
    page = _integer(params, "page", 1)
    if page is None or page < 1:  # §3: "likely 1-based": the strict reading refuses page 0
        raise BadRequest("page starts from 1")
    limit = _integer(params, "limit", DEFAULT_ORDERS_LIMIT)
    if limit is None or not 0 <= limit <= MAX_ORDERS_LIMIT:
        raise BadRequest(f"limit must be 0..{MAX_ORDERS_LIMIT}")
    # Unknown parameters (`dateTo`, an updated-since filter) are ignored, as §3 says none exist:
    # a client that sends them gets orders it did not mean to bound.
    return OrdersQuery(frozenset(statuses), frozenset(_values(params, "ids")), date_from, page, limit)


def matches(query: OrdersQuery, order: Order, stage: Stage) -> bool:
    return ((not query.statuses or stage.status in query.statuses)
            and (not query.ids or order.id in query.ids)
            and (query.date_from is None or order.created_at.timestamp() >= query.date_from))


def _review_window(params: QueryParams) -> tuple[int, int]:
    """§4: `offset` (integer ≥ 0) and `limit` (1..50), both required."""
    numbers = {}
    for name in ("offset", "limit"):
        values = params.getlist(name)
        if not values:
            raise BadRequest(f"Field `{name}` is required")
        if len(values) > 1 or not _INTEGER.fullmatch(values[0]):
            raise BadRequest(f"Field `{name}` is not integer")
        numbers[name] = int(values[0])
    if numbers["offset"] < 0:
        raise BadRequest("Field `offset` must be greater than or equal to 0")
    if not 1 <= numbers["limit"] <= MAX_REVIEWS_LIMIT:
        raise BadRequest(f"Field `limit` must be between 1 and {MAX_REVIEWS_LIMIT}")
    return numbers["offset"], numbers["limit"]


# -- payload faults ----------------------------------------------------------------------------------

def _records(payload: Any) -> list[tuple[str, dict[str, Any]]]:
    """(kind, record) of an orders or reviews page."""
    if not isinstance(payload, dict):
        return []
    out: list[tuple[str, dict[str, Any]]] = []
    for kind, name in (("order", "orders"), ("review", "reviews")):
        records = payload.get(name)
        out += [(kind, r) for r in records if isinstance(r, dict)] if isinstance(records, list) else []
    return out


#: Fields the spec does not require (schemas/orders_page.json, reviews_page.json); `?`: only while null.
OPTIONAL = {"order": ("marketplaceId", "availableActions", "returnPolicy?"),
            "review": ("images", "item?", "sender?", "answer?")}
#: The wrong JSON type a strict mapper must notice: orders' ISO time as unix seconds, reviews' the reverse.
WRONG = {"order": ("createdAt", 1783684479), "review": ("createdAt", "2026-07-10T11:44:39Z")}
SHAPE = PayloadShape(records=_records, key=lambda kind, rec: str(rec.get("id")), optional=OPTIONAL, wrong=WRONG)


class AvitoEmulator(Emulator):
    """Avito's side of the pipeline: Bearer tokens from /token, per-account limits, three error shapes."""

    shape = SHAPE

    def __init__(self, config: EmulatorConfig):
        rates = {ORDER_MANAGEMENT: ORDERS_RATE, RATINGS: RATINGS_RATE}
        super().__init__(config, BucketLimits(rates, config.monotonic) if config.rate_limits else None)
        generated_at = (config.generated_at or datetime.now(UTC)).astimezone(UTC)
        self.data: Dataset = generate(config.seed, config.orders, config.reviews, config.history_days, generated_at,
                                      self.faults.late_changes(), config.moderation_seconds)
        self.orders, self.reviews = self.data.orders, self.data.reviews
        # §3 documents no order; clients assume newest first: by creation, then id, newest first.
        self.listed = sorted(self.orders.values(), key=lambda o: (o.created_at, int(o.id)), reverse=True)
        self.by_date = sorted(self.reviews.values(), key=lambda r: (r.created_at, r.id), reverse=True)
        self.tokens: dict[str, IssuedToken] = {}
        self.answers_by_review: dict[int, list[Answer]] = {}
        self.shifts: dict[tuple, int] = {}  # listing -> records short pages held back (`list_orders`)
        self.offset = timedelta(0)  # how far `advance` moved the serving clock
        self.next_answer_id = 1 + max((r.answer.id for r in self.reviews.values() if r.answer), default=1_234_000)
        self.counters = {"tokens_issued": 0, "requests_with_expired_token": 0}
        self.state: Any = None  # app.state, set by `create_app`, so the counters show there live

    def advance(self, seconds: float) -> None:
        """Move the serving clock on (tests, demo): statuses and moderation follow it."""
        self.offset += timedelta(seconds=seconds)

    def count(self, name: str) -> None:
        self.counters[name] += 1
        if self.state is not None:
            setattr(self.state, name, self.counters[name])

    # -- the platform's words for the pipeline ---------------------------------------------------------

    def now(self) -> datetime:
        return ((self.config.serving_at or datetime.now(UTC)).astimezone(UTC) + self.offset).replace(microsecond=0)

    async def serve(self, call: Call) -> Response:
        if call.group == AUTH:  # /token takes no bearer, and an expired_token fault has no token to expire there
            call.now, call.key = self.now(), "token"
            return await self.limited(call)
        return await super().serve(call)

    def authenticate(self, call: Call) -> Response | None:
        scheme, _, token = call.request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            # The specs declare 401 "authentication required" for a request without credentials.
            return self.respond(call, *refusal(call.group, 401, "Unauthorized: no Bearer access token"))
        issued = self.tokens.get(token)
        if issued is None:  # §3: "403 means both expired/invalid token and API not enabled"
            return self.respond(call, *refusal(call.group, 403, "Forbidden: invalid access token"))
        if issued.revoked or self.config.monotonic() - issued.issued >= self.config.token_lifetime:
            self.count("requests_with_expired_token")  # §2: "After expiry all requests return 403"
            return self.respond(call, *refusal(call.group, 403, "Forbidden: the access token has expired"))
        call.key, call.extra["token"] = self.config.client_id, token  # limits count per account
        return None

    def expired(self, call: Call) -> Response:
        """An `expired_token` fault: the presented token expires now and stays expired; a new one works
        unless the fault fires again (`times=None`: the account then refuses every token)."""
        self.tokens[call.extra["token"]].revoked = True
        self.count("requests_with_expired_token")
        return self.respond(call, *refusal(call.group, 403, "Forbidden: the access token has expired"))

    def admit(self, call: Call) -> Throttle | None:
        # §5: "Retry-After not documented": the real limit's refusal carries no hint; only a
        # `rate_limit` fault that names a wait sends one.
        throttle = super().admit(call)
        return None if throttle is None else Throttle(None, None, throttle.limit)

    def throttled(self, call: Call, throttle: Throttle) -> Response:
        response = self.respond(call, *refusal(call.group, 429, "Too Many Requests"))
        if call.group == RATINGS:  # §5: the headers on ratings; order-management has only the body
            response.headers.update({"X-RateLimit-Limit": str(RATINGS_RATE.requests), "X-RateLimit-Remaining": "0"})
        if throttle.retry is not None:
            response.headers["Retry-After"] = str(math.ceil(throttle.retry))
        return response

    def finish(self, call: Call, response: Response) -> Response:
        if call.group == RATINGS:  # §5: X-RateLimit-Limit / -Remaining on ratings answers
            left = remaining(call.quota) if isinstance(call.quota, TokenBucket) else RATINGS_RATE.requests
            response.headers.update({"X-RateLimit-Limit": str(RATINGS_RATE.requests),
                                     "X-RateLimit-Remaining": str(left)})
        return response

    def failure(self, call: Call, status: int) -> tuple[int, Any]:
        return refusal(call.group, status, "Internal Error" if status == 500 else "Service temporarily unavailable")

    async def invoke(self, call: Call) -> tuple[int, Any]:
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        return await super().invoke(call)

    def respond(self, call: Call, status: int, payload: Any) -> Response:
        return Response(orjson.dumps(payload), status, media_type="application/json")

    def corrupt(self, payload: Any) -> Any:
        """`malformed`: one order or review of a page gets a `createdAt` that is no time; its id (a string)."""
        records = _records(payload)
        if not records:
            return None
        kind, record = records[len(records) // 2]
        record["createdAt"] = "not-a-date" if kind == "order" else "not-a-timestamp"
        return str(record["id"])

    # -- auth and account (§2) ------------------------------------------------------------------------

    async def issue_token(self, request: Request, now: datetime) -> tuple[int, Any]:
        """POST /token: form-urlencoded `grant_type=client_credentials&client_id&client_secret` (§2)."""
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return refusal(AUTH, 400, "the body must be application/x-www-form-urlencoded", "invalid_request")
        pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        form = dict(pairs)
        if len(form) != len(pairs):  # RFC 6749 §3.2: no parameter more than once
            return refusal(AUTH, 400, "a parameter is given more than once", "invalid_request")
        if not all(form.get(k) for k in ("grant_type", "client_id", "client_secret")):
            return refusal(AUTH, 400, "grant_type, client_id and client_secret are required", "invalid_request")
        if form["grant_type"] != "client_credentials":  # orders accept only this flow (§2)
            return refusal(AUTH, 400, "only grant_type=client_credentials is supported", "unsupported_grant_type")
        if (form["client_id"], form["client_secret"]) != (self.config.client_id, self.config.client_secret):
            return refusal(AUTH, 400, "client authentication failed", "invalid_client")
        if self.config.revoke_previous:  # §2: UNCONFIRMED whether a new token revokes the old ones
            for issued in self.tokens.values():
                issued.revoked = True
        token = secrets.token_urlsafe(16)
        self.tokens[token] = IssuedToken(self.config.monotonic())
        self.count("tokens_issued")
        return 200, {"access_token": token, "expires_in": int(self.config.token_lifetime), "token_type": "Bearer"}

    async def account_self(self, request: Request, now: datetime) -> tuple[int, Any]:
        return 200, account_json(self.data.seller)

    # -- orders (§3) ----------------------------------------------------------------------------------

    async def list_orders(self, request: Request, now: datetime) -> tuple[int, Any]:
        """GET /order-management/1/orders: newest first, pages from 1, stop on `hasMore=false`."""
        try:
            query = parse_orders_query(request.query_params)
        except BadRequest as refused:
            return refusal(ORDER_MANAGEMENT, 400, str(refused))
        found = [o for o in self.listed if o.created_at <= now and matches(query, o, o.at(now))]
        if query.limit == 0:  # the spec allows 0 (minimum 0): a page of no orders; hasMore says whether any exist
            return 200, {"hasMore": bool(found), "orders": []}
        # A `short_page` fault: page N serves fewer orders than the limit although more follow, and
        # the ones it held back open page N + 1 (the listing shifted under the reader). A client that
        # reads until hasMore is false gets each exactly once; one that stops on a short page loses them.
        listing = tuple(sorted((k, v) for k, v in request.query_params.multi_items() if k != "page"))
        if query.page == 1:
            self.shifts[listing] = 0
        shift = self.shifts.get(listing, 0)
        start = max(0, (query.page - 1) * query.limit - shift)
        full = found[start:start + query.limit]
        page = self.faults.shorten(request.url.path, full, more=start + query.limit < len(found))
        self.shifts[listing] = shift + len(full) - len(page)
        return 200, {"hasMore": start + len(page) < len(found), "orders": [order_json(o, now) for o in page]}

    # -- reviews and answers (§4) ---------------------------------------------------------------------

    def visible_reviews(self, now: datetime) -> list[Review]:
        """§4: "Only active reviews are listed", newest first (UNCONFIRMED; clients assume it)."""
        shown = [r for r in self.by_date if r.active and r.created_at <= now]
        for review in shown:
            if review.answer is not None:
                review.answer.settle(now)
        return shown

    async def list_reviews(self, request: Request, now: datetime) -> tuple[int, Any]:
        try:
            offset, limit = _review_window(request.query_params)
        except BadRequest as refused:
            return validation(str(refused))
        found = self.visible_reviews(now)
        # Offset paging: a short page simply serves fewer; a client that advances by what it got misses nothing.
        page = self.faults.shorten(request.url.path, found[offset:offset + limit], more=offset + limit < len(found))
        return 200, {"total": len(found), "reviews": [review_json(r) for r in page]}

    async def ratings_info(self, request: Request, now: datetime) -> tuple[int, Any]:
        return 200, ratings_info_json(self.visible_reviews(now))

    async def post_answer(self, request: Request, now: datetime) -> tuple[int, Any]:
        """POST /ratings/v1/answers `{reviewId, message}` -> `{id, createdAt}`; the answer is moderated."""
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return validation("Request body is not valid JSON")
        if not isinstance(body, dict):
            return validation("Request body must be an object")
        review_id, message = body.get("reviewId"), body.get("message")
        if not isinstance(review_id, int) or isinstance(review_id, bool):
            return validation("Field `reviewId` is not integer")
        if not isinstance(message, str) or not message.strip():
            return validation("Field `message` must be a non-empty string")
        review = next((r for r in self.visible_reviews(now) if r.id == review_id), None)
        if review is None:  # spec: 404 "Отзыв не найден"
            return refusal(RATINGS, 404, "Review not found")
        # The spec declares 400 (no 409) for a refused answer: the review does not take one now.
        if not review.can_answer:
            return validation("The review cannot be answered (canAnswer is false)")
        if review.answer is not None and review.answer.status != "rejected":
            return validation("The review already has an answer; delete it before answering again")
        answer = Answer(self.next_answer_id, message, "moderation", now, [],
                        now + timedelta(seconds=self.config.moderation_seconds), moderate(message))
        self.next_answer_id += 1
        review.answer = answer  # a rejected answer is replaced
        self.answers_by_review.setdefault(review.id, []).append(answer)
        answer.settle(now)  # moderation_seconds=0: decided at once
        return 200, {"id": answer.id, "createdAt": int(now.timestamp())}

    async def delete_answer(self, request: Request, now: datetime) -> tuple[int, Any]:
        """DELETE /ratings/v1/answers/{answer_id} -> `{success: true}`; the review may be answered again."""
        raw = request.path_params["answer_id"]
        if not _DIGITS.fullmatch(raw):
            return validation("Field `answer_id` is not integer")
        review = next((r for r in self.visible_reviews(now) if r.answer is not None and r.answer.id == int(raw)), None)
        if review is None:  # spec: 404 "Ответ не найден"
            return refusal(RATINGS, 404, "Answer not found")
        review.answer = None
        return 200, {"success": True}

    # -- Messenger (§3) -------------------------------------------------------------------------------

    async def get_chat(self, request: Request, now: datetime) -> tuple[int, Any]:
        """GET /messenger/v2/accounts/{user_id}/chats/{chat_id}: `users[]` holds the buyer's hashed id."""
        if not self.config.messenger:  # §2/§3: Messenger for goods needs the «Максимальный» subscription
            return refusal(MESSENGER, 403, "Messenger API is not available on this account's tariff: "
                                           "goods sellers need the «Максимальный» subscription")
        raw = request.path_params["user_id"]
        if not _DIGITS.fullmatch(raw):
            return refusal(MESSENGER, 400, "user_id must be an integer")
        if int(raw) != self.data.seller.user_id:  # another account's chats: no access
            return refusal(MESSENGER, 403, "Forbidden: user_id is not the token's account")
        chat = self.data.chats.get(request.path_params["chat_id"])
        if chat is None or chat.created_at > now:
            return refusal(MESSENGER, 404, "Chat not found")
        return 200, chat_json(chat, self.data.seller)


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build the emulator app; the data set is generated here, once."""
    emulator = AvitoEmulator(config or EmulatorConfig())
    routes = [
        # §2: the spec's path is /token, the docs show /token/; clients use both.
        emulator.route(TOKEN, emulator.issue_token, group=AUTH, method="POST"),
        emulator.route(TOKEN + "/", emulator.issue_token, group=AUTH, method="POST"),
        emulator.route(SELF, emulator.account_self, group=ACCOUNTS),
        emulator.route(ORDERS, emulator.list_orders, group=ORDER_MANAGEMENT),
        emulator.route(REVIEWS, emulator.list_reviews, group=RATINGS),
        emulator.route(INFO, emulator.ratings_info, group=RATINGS),
        emulator.route(ANSWERS, emulator.post_answer, group=RATINGS, method="POST", write=True),
        emulator.route(ANSWERS + "/{answer_id}", emulator.delete_answer, group=RATINGS, method="DELETE", write=True),
        emulator.route(CHAT, emulator.get_chat, group=MESSENGER),
    ]
    app = emulator.build_app(routes, orders=emulator.orders, reviews=emulator.reviews, chats=emulator.data.chats,
                             user_id=emulator.data.seller.user_id, late_changes=emulator.data.late_changes,
                             answers_by_review=emulator.answers_by_review, data=emulator.data, **emulator.counters)
    emulator.state = app.state
    return app
