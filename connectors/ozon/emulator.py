"""An Ozon Seller API emulator: one Starlette app serving the posting and review methods at their
real paths, with Ozon's field names, cursor paging, `{code, message, details}` errors, the
per-Client-Id rate limit and the reviews subscription refusal.

`create_app(EmulatorConfig(...))` is the only entry point; seed, clocks and faults are arguments
and all runtime state lives on `app.state`: `stats` (`EmulatorStats`), `request_log`
[(method, path, JSON body, status)], `corrupted` [(path, record id)] for `malformed` faults,
`breakage` (`connectors.emulation.Breakage`: what `schema_drift` and `wrong_type` did, keyed by
(path, posting number or review id)),
`comments` [(review id, text)] written through the API, `vouchers` (the seller actions created
through `/v1/seller-actions/create/voucher`, as `/v1/seller-actions/list` shows them), `chats`
({chat_id: {"posting_number", "messages": [items of /v3/chat/history, oldest first]}}), `writes`
(every write request received, as `connectors.emulation.write_entry` dicts `{"method", "path",
"body", "status", "applied"}`), `data` (the `Dataset`), `emulator`.

Chats follow the Premium Plus/Pro rules (platform_rules.md): the seller opens one by posting
number (FBS/rFBS, within 72 h of payment or delivery) and writes while the posting's window or a
buyer's 48 h reply window is open. Tests find postings with `emulator.chat_eligible()` and let the
buyer write with `emulator.buyer_message(posting_number, text)`.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from connectors.ozon.emulator_data import FBO, US, Dataset, LateChange, generate, iso
from connectors.ozon.emulator_records import fbo_posting, fbs_posting

__all__ = ["EmulatorConfig", "EmulatorStats", "Fault", "FaultKind", "create_app"]

_Handler = Callable[[dict[str, Any], int], Awaitable[tuple[int, Any]]]
_YEAR = 366 * 86_400 * US  # a leap year's span still passes Ozon's "at most one year"
_RATE_MESSAGE = "You have reached request rate limit per second"
_NO_SUBSCRIPTION = ("Метод доступен продавцам с подпиской «Управление отзывами» или Premium Pro "
                    "(reviews API requires a subscription)")
# The wording of Ozon's refusal is undocumented; 403 PERMISSION_DENIED as for the reviews one.
_NO_PREMIUM = "Метод доступен продавцам с подпиской Premium Plus или Premium Pro (chat requires Premium)"
_FIRST_MESSAGE_ID = 3_000_000_000_817_031_942  # the official example's magnitude: above 2**53
FBS_LIST, FBO_LIST = "/v4/posting/fbs/list", "/v3/posting/fbo/list"
REVIEW_LIST, COMMENT_LIST = "/v2/review/list", "/v1/review/comment/list"
SELLER_ACTIONS, CHAT_HISTORY = "/v1/seller-actions/list", "/v3/chat/history"
#: Ozon's answer to an Api-Key (or Client-Id) it does not know, from its official error table; live
#: probes ([3p]) saw it as HTTP 404 with gRPC code 5. `EmulatorConfig.bad_key_status` picks another
#: status, with the gRPC code that goes with it, to test the forms other reports mention.
INVALID_KEY_MESSAGE = "Invalid Api-Key, please check the key and try again"
_GRPC_FOR_STATUS = {401: 16, 403: 7, 404: 5}
_BAD_CLIENT_ID = "Client-Id header value should be positive integer"  # [3p], HTTP 400, code 3


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes one emulator instance; see the module docstring."""

    seed: int = 1
    orders: int = 200  # postings of all schemes
    reviews: int = 100
    history_days: int = 40  # postings and reviews spread over [now - history_days, now)
    now: datetime | None = None  # end of the generated history; default: real UTC now
    clock: Callable[[], datetime] | None = None  # "now" while serving; default: real UTC now
    client_id: str | None = None  # if set, any other Client-Id is refused
    token: str | None = None  # if set, any other Api-Key is refused
    bad_key_status: int = 404  # the HTTP status of "Invalid Api-Key" (401, 403 or 404)
    rate_limits: bool = True
    requests_per_second: int = 50  # per Client-Id, across all methods (ozon.md §4.1)
    reviews_subscription: bool = True  # False: review methods answer 403 (ozon.md §3)
    premium: bool = True  # False: chat start and send answer 403 (Premium Plus/Pro only, §5.5)
    rfbs_share: float = 0.25
    fbo_share: float = 0.3
    currency: str = "RUB"
    customer_visible_days: int | None = None  # rFBS buyer data vanishes this long after the end
    # Ozon documents no length limit for a review comment; 3,000 is an SDK's claim (capabilities).
    comment_max_length: int | None = 3000
    faults: tuple[Fault, ...] = ()
    monotonic: Callable[[], float] = time.monotonic  # the rate limiter's clock


@dataclass
class EmulatorStats:
    """Counters a test or benchmark reads after a run."""

    requests: Counter[str] = field(default_factory=Counter)  # by path
    statuses: Counter[int] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)  # every 429, by path

    @property
    def total_throttled(self) -> int:
        """All 429 answers, from the limiter and from `rate_limit` faults."""
        return sum(self.throttled.values())


def _error(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": message, "details": []}


class _Refused(Exception):
    """Raised by a method handler to answer with Ozon's error body instead of data."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.answer = _error(status, code, message)


def _bad(message: str) -> _Refused:
    return _Refused(400, 3, f"invalid request: {message}")


def _time(value: Any) -> int | None:
    """A filter date-time as unix microseconds, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if moment.tzinfo is None else int(moment.timestamp() * US)


def _cursor(t0: int, i: int) -> str:
    """Ozon's keyset cursor shape: base64 JSON naming the sort fields (treated as opaque)."""
    doc = {"fields": [{"name": "osp.in_process_at", "dir": "asc", "val": iso(t0, 6)},
                      {"name": "osp.id", "dir": "asc", "val": str(i)}]}
    return base64.b64encode(orjson.dumps(doc)).decode()


def _uncursor(text: str) -> tuple[int, int] | None:
    try:
        fields = orjson.loads(base64.b64decode(text, validate=True))["fields"]
        return _time(fields[0]["val"]) or 0, int(fields[1]["val"])
    except (ValueError, KeyError, IndexError, TypeError, orjson.JSONDecodeError):
        return None


def _scalar(body: dict[str, Any], name: str, default: Any) -> Any:
    """A request field, `default` when absent or null: Ozon's grpc-gateway reads a null scalar as
    its default (ozon.md §6), so `{"offset": null}` is offset 0, never a 400."""
    value = body.get(name)
    return default if value is None else value


def _limit(body: dict[str, Any], lo: int, hi: int, default: int = 0) -> int | None:
    value = _scalar(body, "limit", default)
    return value if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi else None


def _offset(body: dict[str, Any]) -> int:
    offset = _scalar(body, "offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise _bad("offset must be a non-negative integer")
    return offset


#: Ozon's answer for an expired (deactivated) key: the message is from Ozon's official error table
#: (ozon.md §4.3), 16 is gRPC UNAUTHENTICATED; which HTTP status Ozon uses is undocumented (401 here).
EXPIRED_KEY_MESSAGE = "Api-key is deactivated, use another one or generate a new one"


def _records(payload: Any) -> list[tuple[str, dict[str, Any]]]:
    """(kind, record) of a posting or review list answer."""
    if not isinstance(payload, dict):
        return []
    postings, reviews = payload.get("postings"), payload.get("reviews")
    if isinstance(postings, list):
        return [("posting", p) for p in postings if isinstance(p, dict)]
    if isinstance(reviews, list):
        return [("review", r) for r in reviews if isinstance(r, dict)]
    return []


_SHAPE = PayloadShape(
    records=_records,
    key=lambda kind, rec: str(rec["posting_number" if kind == "posting" else "id"]),
    # Optional blocks of the v4/v3 posting schemas and of ReviewInfo ("name?": only while null).
    optional={
        "posting": ("customer?", "addressee?", "delivering_date?", "pickup_code_verified_at?", "analytics_data",
                    "financial_data", "legal_info", "barcodes", "tracking_number", "cancellation",
                    "available_actions", "external_order", "delivery_method", "additional_data",
                    "cancel_reason_id", "parent_posting_number", "quantum_id"),
        "review": ("photos_amount", "videos_amount", "order_status", "is_rating_participant"),
    },
    wrong={"posting": ("products", {"sku": 1, "quantity": 1}), "review": ("rating", "4")},
)


def _corrupt(payload: Any) -> str | None:
    """Break one record of a page so a strict mapper must notice; return its id.

    A posting with a customer block is preferred, so quarantine is seen to strip buyer data.
    """
    records = payload.get("postings") or payload.get("reviews") if isinstance(payload, dict) else None
    if not records:
        return None
    if "reviews" in payload:
        rec = records[len(records) // 2]
        rec["rating"] = 9
        return rec["id"]
    rec = next((p for p in records if p.get("customer")), records[len(records) // 2])
    rec["created_at" if "created_at" in rec else "in_process_at"] = "not-a-date"
    return rec["posting_number"]


class _Emulator:
    """Request handling: the guard (auth, limit, subscription, faults, bookkeeping) and methods."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        born = int((config.now or datetime.now(UTC)).timestamp() * US)
        self.faults = FaultPlan(config.faults, config.seed)
        late = tuple(LateChange(f.path_prefix.startswith(FBO_LIST), f.times or 1,
                                born + int((f.delay or LATE_CHANGE_DELAY) * US), int(f.age * US))
                     for f in self.faults.late_changes())
        self.data: Dataset = generate(config.seed, config.orders, config.reviews, config.history_days,
                                      born, (config.rfbs_share, config.fbo_share), late)
        self.windows: dict[str, deque[float]] = {}
        self.stats = EmulatorStats()
        self.request_log: list[tuple[str, str, Any, int]] = []
        self.corrupted: list[tuple[str, str]] = []
        self.breakage = Breakage()
        self.comments: list[tuple[str, str]] = []
        self.vouchers: list[dict[str, Any]] = []
        self.writes: list[dict[str, Any]] = []
        self.chats: dict[str, dict[str, Any]] = {}
        self._message_ids = iter(range(_FIRST_MESSAGE_ID, 2**64))

    def now(self) -> int:
        moment = self.config.clock() if self.config.clock else datetime.now(UTC)
        return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * US)

    def route(self, path: str, handler: _Handler, *, reviews: bool = False, premium: bool = False,
              write: bool = False) -> Route:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body = orjson.loads(raw or b"{}")
            except orjson.JSONDecodeError:
                body = None
            entry = None
            if write:
                entry = write_entry(request.method, path, raw)
                self.writes.append(entry)
            response = await self._guarded(request, body, handler, reviews, premium, entry)
            if entry is not None:
                entry["status"] = response.status_code
            self.stats.requests[path] += 1
            self.stats.statuses[response.status_code] += 1
            if response.status_code == 429:
                self.stats.throttled[path] += 1
            self.request_log.append((request.method, path, body, response.status_code))
            return response

        return Route(path, endpoint, methods=["POST"])

    def _over_limit(self, client_id: str) -> float | None:
        """Seconds until a slot frees if this Client-Id already sent its requests this second."""
        if not self.config.rate_limits:
            return None
        tick = self.config.monotonic()
        sent = self.windows.setdefault(client_id, deque())
        while sent and sent[0] <= tick - 1.0:
            sent.popleft()
        if len(sent) >= self.config.requests_per_second:
            return sent[0] + 1.0 - tick
        sent.append(tick)
        return None

    def _remaining(self, client_id: str) -> int:
        return max(0, self.config.requests_per_second - len(self.windows.get(client_id, ())))

    async def _guarded(self, request: Request, body: Any, handler: _Handler, reviews: bool, premium: bool,
                       entry: dict[str, Any] | None = None) -> Response:
        client_id, key = request.headers.get("client-id", ""), request.headers.get("api-key", "")
        if not client_id or not key:
            return _json(*_error(401, 16, "Client-Id and Api-Key headers are required"))
        if not (client_id.isascii() and client_id.isdigit() and int(client_id) > 0):
            return _json(*_error(400, 3, _BAD_CLIENT_ID))
        cfg = self.config
        if (cfg.client_id is not None and client_id != cfg.client_id) or (cfg.token is not None and key != cfg.token):
            # A known Client-Id with a wrong key and a wrong Client-Id get the same answer ([3p]).
            status = cfg.bad_key_status
            return _json(*_error(status, _GRPC_FOR_STATUS.get(status, 16), INVALID_KEY_MESSAGE))
        if self.faults.pick(request.url.path, "auth") is not None:  # expired_token
            return _json(*_error(401, 16, EXPIRED_KEY_MESSAGE))
        wait = self._over_limit(client_id)
        if wait is not None:
            return self._throttled(max(1, math.ceil(wait)))
        if reviews and not cfg.reviews_subscription:
            return _json(*_error(403, 7, _NO_SUBSCRIPTION))
        if premium and not cfg.premium:
            return _json(*_error(403, 7, _NO_PREMIUM))
        k = self.faults.pick(request.url.path)
        fault = cfg.faults[k] if k is not None else None
        if fault is not None and fault.kind == "rate_limit":
            return self._throttled(fault.retry_after)
        if fault is not None and fault.kind in ("http_500", "http_503"):
            response = _json(*(_error(500, 13, "Internal error") if fault.kind == "http_500"
                               else _error(503, 14, "Service Unavailable")))
        else:
            if fault is not None and fault.kind == "timeout":
                await asyncio.sleep(fault.delay)  # the client's own deadline decides what happens
            try:
                if not isinstance(body, dict):
                    raise _bad("the body must be a JSON object")
                status, payload = await handler(body, self.now())
            except _Refused as refusal:
                status, payload = refusal.answer
            if entry is not None:
                entry["applied"] = 200 <= status < 300
            if fault is not None and fault.kind == "apply_then_timeout":
                await asyncio.sleep(fault.delay)  # applied; the client's deadline loses the answer
            if fault is not None and fault.kind == "apply_then_500":
                status, payload = _error(500, 13, "Internal error")
            if status == 200 and payload is not None:
                reshape_payload(self.faults, request.url.path, payload, _SHAPE, self.breakage)
            if fault is not None and fault.kind == "malformed":
                record_id = _corrupt(payload) if status == 200 else None
                if record_id is None:
                    self.faults.refund(k)  # nothing to corrupt: keep the fault for a real page
                else:
                    self.corrupted.append((request.url.path, record_id))
            response = _json(status, payload)
            if fault is not None and fault.kind == "truncated":
                response = Response(response.body[: len(response.body) // 2], status,
                                    media_type="application/json")
        response.headers["ratelimit-remaining"] = str(self._remaining(client_id))
        return response

    def _throttled(self, retry: int) -> Response:
        response = _json(429, {"code": 8, "message": _RATE_MESSAGE})  # the body seen live: no details
        response.headers.update({"retry-after": str(retry), "ratelimit-remaining": "0"})
        return response

    # --- postings ---
    def _posting_query(self, body: dict[str, Any], max_limit: int) -> tuple[Any, ...]:
        """(since, to, limit, after, statuses) of a posting list request, or _Refused."""
        flt = body.get("filter")
        if not isinstance(flt, dict):
            raise _bad("filter is required")
        since, to = _time(flt.get("since")), _time(flt.get("to"))
        if since is None or to is None or since > to:
            raise _bad("filter.since and filter.to must be date-times, since <= to")
        if to - since > _YEAR:
            raise _Refused(400, 3, "PERIOD_IS_TOO_LONG")
        limit = _limit(body, 1, max_limit)
        if limit is None:
            raise _bad(f"limit must be in [1, {max_limit}]")
        cursor = _scalar(body, "cursor", "")
        after = _uncursor(cursor) if cursor else None
        if cursor and after is None:
            raise _bad("cursor is malformed")
        statuses = flt.get("statuses")
        return since, to, limit, after, set(statuses) if isinstance(statuses, list) and statuses else None

    def _postings_answer(self, path: str, page: list[int], has_next: bool,
                         render: Callable[[int], Any]) -> tuple[int, Any]:
        # A short page keeps has_next true; the cursor follows the last posting actually served.
        page = self.faults.shorten(path, page, more=has_next)
        table = self.data.postings
        last = page[-1] if page else None
        return 200, {"cursor": _cursor(table.t0[last], last) if last is not None else "",
                     "has_next": has_next, "postings": [render(i) for i in page]}

    async def fbs_list(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        since, to, limit, after, statuses = self._posting_query(body, 100)
        table, cfg = self.data.postings, self.config
        keep = (lambda i: table.state(i, now)[0] in statuses) if statuses else None
        changed = body["filter"].get("last_changed_status_date")
        if changed is not None:
            frm = _time(changed.get("from")) if isinstance(changed, dict) else None
            till = _time(changed.get("to")) if isinstance(changed, dict) else None
            if frm is None or till is None:
                raise _bad("last_changed_status_date needs from and to")
            hits = [i for i in table.changed(since, to, frm, till, now)
                    if (after is None or (table.t0[i], i) > after) and (keep is None or keep(i))]
            page, has_next = hits[:limit], len(hits) > limit
        else:
            page, has_next = table.page(False, since, to, now, after, limit, keep)
        return self._postings_answer(FBS_LIST, page, has_next, lambda i: fbs_posting(
            table, i, now, cfg.currency, cfg.customer_visible_days))

    async def fbo_list(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        since, to, limit, after, statuses = self._posting_query(body, 100)
        table = self.data.postings
        keep = (lambda i: table.state(i, now)[0] in statuses) if statuses else None
        page, has_next = table.page(True, since, to, now, after, limit, keep)
        return self._postings_answer(FBO_LIST, page, has_next,
                                     lambda i: fbo_posting(table, i, now, self.config.currency))

    # --- reviews ---
    async def review_list(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        limit = _limit(body, 20, 100)
        if limit is None:
            raise _bad("limit must be in [20, 100]")
        flt = body.get("filters") or {}
        reviews = self.data.reviews
        lo_t, hi_t = _time(flt.get("published_from")), _time(flt.get("published_to"))
        lo = 0 if lo_t is None else bisect_left(reviews.published, lo_t)
        hi = reviews.visible_end(now if hi_t is None else min(hi_t, now))
        status, order_status = flt.get("status", "ALL"), flt.get("order_status", "ALL")
        hits = [i for i in range(lo, hi)
                if status in ("ALL", None, "") or reviews.status(i, now) == status
                if order_status in ("ALL", None, "") or reviews.order_status(i) == order_status]
        if body.get("sort_dir") == "DESC":
            hits.reverse()
        last_id = _scalar(body, "last_id", "")
        if last_id:
            k = reviews.index_of(last_id)
            if k is None or k not in hits:
                raise _bad("last_id is unknown")
            hits = hits[hits.index(k) + 1:]
        page = self.faults.shorten(REVIEW_LIST, hits[:limit], more=len(hits) > limit)
        return 200, {"reviews": [reviews.record(i, now) for i in page], "has_next": len(hits) > len(page),
                     "last_id": reviews.review_id(page[-1]) if page else ""}

    async def comment_list(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        limit, offset = _limit(body, 20, 100), _offset(body)
        if limit is None:
            raise _bad("limit must be in [20, 100]")
        reviews = self.data.reviews
        i = reviews.index_of(str(body.get("review_id") or ""))
        if i is None or reviews.published[i] > now:
            return _error(404, 5, "review not found")
        comments = reviews.comments(i, now)
        if body.get("sort_dir") == "DESC":
            comments.reverse()
        page = self.faults.shorten(COMMENT_LIST, comments[offset: offset + limit],
                                   more=len(comments) > offset + limit)
        # `offset` as in the official example (asked 123, one comment, answered 124): where the
        # next page starts, after what was actually served.
        return 200, {"comments": page, "offset": offset + len(page)}

    async def comment_create(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        reviews = self.data.reviews
        review_id, text, mark = body.get("review_id"), body.get("text"), body.get("mark_review_as_processed")
        if not isinstance(review_id, str) or not review_id:
            raise _bad("review_id is required")
        if not isinstance(text, str) or not text.strip():
            raise _bad("text is required")
        if mark is not None and not isinstance(mark, bool):
            raise _bad("mark_review_as_processed must be a boolean")
        limit = self.config.comment_max_length
        if limit is not None and len(text) > limit:
            raise _bad(f"text must be at most {limit} characters")
        i = reviews.index_of(review_id)
        if i is None or reviews.published[i] > now:
            return _error(404, 5, "review not found")
        # A second comment is allowed (Ozon has no edit); the connector's find_done prevents one.
        reviews.written.setdefault(i, []).append((text, now))
        self.comments.append((reviews.review_id(i), text))
        mine = [c for c in reviews.comments(i, now) if c["is_owner"] and c["text"] == text]
        return 200, {"comment_id": mine[-1]["id"]}

    # --- seller actions (beta) ---
    async def voucher_create(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        """`/v1/seller-actions/create/voucher` with the schema's checks (ozon.md §5.4)."""
        title = body.get("title")
        if not isinstance(title, str) or not 1 <= len(title) <= 256:
            raise _bad("title must be 1..256 characters")
        start, end = _time(body.get("date_start")), _time(body.get("date_end"))
        if start is None or end is None:
            raise _bad("date_start and date_end must be date-times")
        if end <= start or end <= now:
            raise _bad("date_end must be after date_start and in the future")
        budget = body.get("budget")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0:
            raise _bad("budget must be a positive integer")
        kind, value = body.get("discount_type"), body.get("discount_value")
        if kind not in ("PERCENT", "CURRENCY"):
            raise _bad("discount_type must be PERCENT or CURRENCY")
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise _bad("discount_value must be a positive number")
        if kind == "PERCENT" and value > 100:
            raise _bad("discount_value must be at most 100 for PERCENT")
        params = body.get("voucher_parameters")
        if not isinstance(params, dict):
            raise _bad("voucher_parameters is required")
        count, private, vtype = params.get("count_codes"), params.get("is_private"), params.get("type")
        if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
            raise _bad("voucher_parameters.count_codes must be a positive integer")
        if not isinstance(private, bool):
            raise _bad("voucher_parameters.is_private is required")
        if vtype not in ("ONE", "MULTIPLE", "UNIQUE"):
            raise _bad("voucher_parameters.type must be ONE, MULTIPLE or UNIQUE")
        users = _scalar(body, "user_ids", [])
        if not isinstance(users, list) or len(users) > 50 or not all(
                isinstance(u, str) and u.isdigit() for u in users):
            raise _bad("user_ids must be at most 50 numeric strings")
        action_id = 5_000_000 + len(self.vouchers) + 1
        self.vouchers.append({
            # The list's item shape is not documented beyond action_parameters (ozon.md §5.4).
            "id": action_id, "title": title, "action_type": "VOUCHER",
            "status": "PLANNED" if start > now else "ACTIVE",
            "date_start": body["date_start"], "date_end": body["date_end"], "budget": budget,
            "discount_type": kind, "discount_value": value,
            "voucher_parameters": {"count_codes": count, "is_private": private, "type": vtype},
            "user_ids": list(users), "action_parameters": {"picked_segments": []},
        })
        return 200, {"action_id": action_id}

    async def seller_actions(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        """`/v1/seller-actions/list`: filters `action_type[]`, `status[]`, `search`; `limit*`, `offset`."""
        limit, offset = _limit(body, 1, 100), _offset(body)
        if limit is None:
            raise _bad("limit must be in [1, 100]")
        types, statuses, search = body.get("action_type"), body.get("status"), _scalar(body, "search", "")
        if not isinstance(search, str) or 0 < len(search) < 3:
            raise _bad("search must be a string of at least 3 characters")
        hits = [a for a in self.vouchers
                if (not types or a["action_type"] in types) and (not statuses or a["status"] in statuses)
                and search.lower() in a["title"].lower()]
        page = self.faults.shorten(SELLER_ACTIONS, hits[offset: offset + limit], more=len(hits) > offset + limit)
        return 200, {"actions": [_listed_action(a) for a in page], "total": len(hits)}

    # --- chats (Premium Plus/Pro) ---
    def _posting(self, number: Any, now: int) -> int:
        if not isinstance(number, str) or not number:
            raise _bad("posting_number is required")
        i = self.data.postings.index_of(number)
        if i is None or self.data.postings.t0[i] > now:
            raise _Refused(404, 5, "posting not found")
        return i

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        if not isinstance(chat_id, str) or not chat_id:
            raise _bad("chat_id is required")
        if chat_id not in self.chats:
            raise _Refused(404, 5, "chat not found")
        return self.chats[chat_id]

    def _open(self, i: int) -> str:
        """The posting's chat, created on first use: Ozon keeps one chat per posting."""
        chat_id = self.data.postings.chat_id(i)
        self.chats.setdefault(chat_id, {"posting_number": self.data.postings.posting_number(i), "messages": []})
        return chat_id

    def _add(self, chat_id: str, text: str, user: dict[str, str], at: int) -> None:
        table = self.data.postings
        i = table.index_of(self.chats[chat_id]["posting_number"])
        assert i is not None
        self.chats[chat_id]["messages"].append({
            # uint64 by the schema, a string in the official example (ozon.md §6): sent as one.
            "message_id": str(next(self._message_ids)), "created_at": iso(at), "data": [text],
            # The enum has SUCCESS, MODERATION, FAILED and no "unset"; the official example sends SUCCESS.
            "is_image": False, "is_read": False, "moderate_image_status": "SUCCESS",
            "context": {"order_number": table.order_number(i), "sku": str(table.lines(i)[0][0].sku)},
            "user": user,
        })

    def _buyer_last(self, chat_id: str | None) -> int | None:
        messages = self.chats[chat_id]["messages"] if chat_id in self.chats else []
        times = [_time(m["created_at"]) for m in messages if m["user"]["type"] == "customer"]
        return max((t for t in times if t is not None), default=None)

    def buyer_message(self, posting_number: str, text: str, at: datetime | None = None) -> str:
        """Let the buyer write (opening the chat if needed, FBO too); return the chat_id."""
        i = self.data.postings.index_of(posting_number)
        if i is None:
            raise KeyError(posting_number)
        chat_id = self._open(i)
        customer = str(self.data.postings.customer_id(self.data.postings.buyer[i]))
        moment = int(at.timestamp() * US) if at is not None else self.now()
        self._add(chat_id, text, {"id": customer, "type": "customer"}, moment)
        return chat_id

    def chat_eligible(self, now: datetime | None = None) -> list[str]:
        """FBS/rFBS postings the seller may open a chat for and write to at `now` (default: the clock)."""
        at = int(now.timestamp() * US) if now is not None else self.now()
        table = self.data.postings
        return [table.posting_number(i) for i in range(len(table))
                if table.t0[i] <= at and table.chat_start_open(i, at) and table.chat_send_open(i, at, None)]

    async def chat_start(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        """`/v1/chat/start`: the posting's existing chat, or a new one where the seller may open it."""
        table = self.data.postings
        i = self._posting(body.get("posting_number"), now)
        chat_id = table.chat_id(i)
        if chat_id not in self.chats:
            # The refusals' status and wording are undocumented; FAILED_PRECONDITION is the gRPC
            # code for "not in this state", which Ozon's gateway answers with 400.
            if table.scheme[i] == FBO:
                raise _Refused(400, 9, "only the buyer can start a chat for an FBO posting")
            if not table.chat_start_open(i, now):
                raise _Refused(400, 9, "a chat can be started only within 72 hours after payment or delivery")
            self._open(i)
        return 200, {"result": {"chat_id": chat_id}}

    async def chat_send(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        """`/v1/chat/send/message`: plain text, 1..1000 characters, inside a sending window."""
        chat_id, text = body.get("chat_id"), body.get("text")
        chat = self._chat(chat_id)
        if not isinstance(text, str) or not text.strip() or len(text) > 1000:
            raise _bad("text must be 1..1000 characters")
        i = self.data.postings.index_of(chat["posting_number"])
        assert i is not None
        if not self.data.postings.chat_send_open(i, now, self._buyer_last(chat_id)):
            raise _Refused(400, 9, "the seller can write only until 72 hours after delivery, then "
                                   "within 48 hours of the buyer's last message")
        self._add(chat_id, text, {"id": self.config.client_id or "seller", "type": "seller"}, now)
        return 200, {"result": "success"}

    async def chat_history(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        """`/v3/chat/history`: `direction` Backward (default, newest first) or Forward from
        `from_message_id` (exclusive here; Ozon's side is undocumented), `limit` 1..1000 (50)."""
        chat = self._chat(body.get("chat_id"))
        direction = _scalar(body, "direction", "Backward")
        if direction not in ("Forward", "Backward"):
            raise _bad("direction must be Forward or Backward")
        limit = _scalar(body, "limit", 0) or 50  # unset, null or 0: "по умолчанию — 50"
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise _bad("limit must be in [1, 1000]")
        start = body.get("from_message_id")
        if start is not None and not (isinstance(start, int) and not isinstance(start, bool)
                                      or isinstance(start, str) and start.isascii() and start.isdigit()):
            raise _bad("from_message_id must be a uint64")
        hits = [m for m in chat["messages"] if (_time(m["created_at"]) or 0) <= now]
        if direction == "Backward":
            hits.reverse()
        if start is not None:
            after = (lambda m: int(m["message_id"]) > int(start)) if direction == "Forward" else \
                (lambda m: int(m["message_id"]) < int(start))
            hits = [m for m in hits if after(m)]
        page = self.faults.shorten(CHAT_HISTORY, hits[:limit], more=len(hits) > limit)
        return 200, {"messages": page, "has_next": len(hits) > len(page)}


def _listed_action(voucher: dict[str, Any]) -> dict[str, Any]:
    """An item of `/v1/seller-actions/list` (`SellerActionsListResponseAction` of the spec) for a
    voucher created here: the promotion's own fields are under `action_parameters`."""
    vp = voucher["voucher_parameters"]
    return {
        "action_id": voucher["id"],
        "action_parameters": {
            "title": voucher["title"], "type": "VOUCHER_DISCOUNT", "status": voucher["status"],
            "date_start": voucher["date_start"], "date_end": voucher["date_end"],
            "budget": float(voucher["budget"]), "budget_spent": 0.0,
            "discount_type": voucher["discount_type"], "discount_value": float(voucher["discount_value"]),
            "voucher_parameters": {"count_codes": vp["count_codes"], "is_private": vp["is_private"],
                                   "type": vp["type"]},
            "picked_segments": [], "auto_stop_action_reason": "UNSPECIFIED",
        },
        "allow_delete": True, "highlight_url": "", "is_editable": True, "is_participated": False,
        "is_turn_on": True, "sku_count": 0,
    }


def _json(status: int, payload: Any) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build the emulator app; the dataset is generated here, once."""
    emu = _Emulator(config or EmulatorConfig())
    app = Starlette(routes=[
        emu.route(FBS_LIST, emu.fbs_list),
        emu.route(FBO_LIST, emu.fbo_list),
        emu.route(REVIEW_LIST, emu.review_list, reviews=True),
        emu.route(COMMENT_LIST, emu.comment_list, reviews=True),
        emu.route("/v1/review/comment/create", emu.comment_create, reviews=True, write=True),
        emu.route("/v1/seller-actions/create/voucher", emu.voucher_create, write=True),
        emu.route(SELLER_ACTIONS, emu.seller_actions),
        emu.route("/v1/chat/start", emu.chat_start, premium=True, write=True),
        emu.route("/v1/chat/send/message", emu.chat_send, premium=True, write=True),
        emu.route(CHAT_HISTORY, emu.chat_history),  # base access since 2026 (ozon.md §5.5)
    ])
    app.state.emulator = emu
    app.state.data = emu.data
    app.state.stats = emu.stats
    app.state.request_log = emu.request_log
    app.state.corrupted = emu.corrupted
    app.state.breakage = emu.breakage
    app.state.comments = emu.comments
    app.state.vouchers = emu.vouchers
    app.state.writes = emu.writes
    app.state.chats = emu.chats
    app.state.faults = emu.faults  # `short_pages`: what `short_page` cut
    app.state.late_changes = emu.data.postings.late_changes
    return app

