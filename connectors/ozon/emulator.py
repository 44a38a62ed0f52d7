"""An Ozon Seller API emulator: one Starlette app serving the posting and review methods at their
real paths, with Ozon's field names, cursor paging, `{code, message, details}` errors, the
per-Client-Id rate limit and the reviews subscription refusal. Its answers validate against
Ozon's official schema (tests/connectors/ozon/test_emulator_schema.py); requests are read as
Ozon's gateway reads them, a null scalar as its default.

`create_app(EmulatorConfig(...))` is the only entry point; seed, clocks and faults are arguments
and all runtime state lives on `app.state`: `stats` (`EmulatorStats`), `request_log`
[(method, path, JSON body, status)], `corrupted` [(path, record id)] for `malformed` faults,
`breakage` (`connectors.emulation.Breakage`: what `schema_drift` and `wrong_type` did, keyed by
(path, posting number or review id)),
`comments` [(review id, text)] written through the API, `vouchers` (the promotions created through
`/v1/seller-actions/create/voucher`, flat: `id`, `title`, `budget`, …; `/v1/seller-actions/list`
serves them in the spec's `action_id` + `action_parameters` shape), `chats`
({chat_id: {"posting_number", "messages": [items of /v3/chat/history, oldest first]}}), `writes`
(every write request received, as `connectors.emulation.write_entry` dicts `{"method", "path",
"body", "status", "applied"}`), `data` (the `Dataset`), `faults` (the `FaultPlan`; its
`short_pages` lists what `short_page` cut), `late_changes` ({posting number: (status before,
status after)} of the postings `late_change` moved), `emulator`.

Every paging method cuts a page short when a `short_page` fault fires and pages on from what it
served. `/v3/product/info/list` answers from the products the postings and reviews reference
(`emulator_catalog`). Chats and promo codes live in `emulator_writes`: tests find postings with
`emulator.chat_eligible()` and let the buyer write with `emulator.buyer_message(posting_number, text)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.responses import Response

from connectors.emulation import LATE_CHANGE_DELAY, Fault, FaultKind, PayloadShape
from connectors.emulator_base import BucketLimits, Call, Emulator, EmulatorStats, Throttle, remaining
from connectors.ozon.emulator_catalog import PRODUCT_INFO, CatalogMethods
from connectors.ozon.emulator_data import US, Dataset, LateChange, generate
from connectors.ozon.emulator_protocol import (
    CHAT_HISTORY,
    COMMENT_LIST,
    FBO_LIST,
    FBS_LIST,
    REVIEW_LIST,
    SELLER_ACTIONS,
    Refused,
    bad_request,
    error_answer,
)
from connectors.ozon.emulator_reads import ListMethods
from connectors.ozon.emulator_writes import SellerWrites
from connectors.ratelimit import Rate

__all__ = ["EmulatorConfig", "EmulatorStats", "Fault", "FaultKind", "create_app"]

_ALL_METHODS = "seller_api"  # the one limit group: Ozon counts a Client-Id's calls to every method
_COMMENT_CREATE, _CHAT_START, _CHAT_SEND = "/v1/review/comment/create", "/v1/chat/start", "/v1/chat/send/message"
_RATE_MESSAGE = "You have reached request rate limit per second"
_NO_SUBSCRIPTION = ("Метод доступен продавцам с подпиской «Управление отзывами» или Premium Pro "
                    "(reviews API requires a subscription)")
# The wording of Ozon's refusal is undocumented; 403 PERMISSION_DENIED as for the reviews one.
_NO_PREMIUM = "Метод доступен продавцам с подпиской Premium Plus или Premium Pro (chat requires Premium)"
_FIRST_MESSAGE_ID = 3_000_000_000_817_031_942  # the official example's magnitude: above 2**53
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


#: Methods that need the reviews subscription, and those that need Premium Plus/Pro (ozon.md §3, §5.5).
_NEEDS_SUBSCRIPTION = frozenset({REVIEW_LIST, COMMENT_LIST, _COMMENT_CREATE})
_NEEDS_PREMIUM = frozenset({_CHAT_START, _CHAT_SEND})


class _Emulator(ListMethods, SellerWrites, CatalogMethods, Emulator):
    """Ozon's side of the pipeline: its two headers, the per-Client-Id limit, its subscriptions."""

    shape = _SHAPE

    def __init__(self, config: EmulatorConfig):
        # One budget per Client-Id across all methods (ozon.md §4.1). Ozon gives the rate, not the
        # algorithm: a bucket of one second's requests, refilled continuously, as our client paces.
        rate = Rate(config.requests_per_second, 1.0, config.requests_per_second)
        super().__init__(config, BucketLimits({_ALL_METHODS: rate}, config.monotonic) if config.rate_limits else None)
        born = int((config.now or datetime.now(UTC)).timestamp() * US)
        late = tuple(LateChange(f.path_prefix.startswith(FBO_LIST), f.times or 1,
                                born + int((f.delay or LATE_CHANGE_DELAY) * US), int(f.age * US))
                     for f in self.faults.late_changes())
        self.data: Dataset = generate(config.seed, config.orders, config.reviews, config.history_days,
                                      born, (config.rfbs_share, config.fbo_share), late)
        self.comments: list[tuple[str, str]] = []
        self.vouchers: list[dict[str, Any]] = []
        self.chats: dict[str, dict[str, Any]] = {}
        self._message_ids = iter(range(_FIRST_MESSAGE_ID, 2**64))
        self.seller_id = config.client_id or "seller"  # the seller's `user.id` in its chat messages

    def now(self) -> int:
        moment = self.config.clock() if self.config.clock else datetime.now(UTC)
        return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * US)

    def authenticate(self, call: Call) -> Response | None:
        headers, cfg = call.request.headers, self.config
        client_id, key = headers.get("client-id", ""), headers.get("api-key", "")
        if not client_id or not key:
            return _json(*error_answer(401, 16, "Client-Id and Api-Key headers are required"))
        if not (client_id.isascii() and client_id.isdigit() and int(client_id) > 0):
            return _json(*error_answer(400, 3, _BAD_CLIENT_ID))
        if (cfg.client_id is not None and client_id != cfg.client_id) or (cfg.token is not None and key != cfg.token):
            # A known Client-Id with a wrong key and a wrong Client-Id get the same answer ([3p]).
            status = cfg.bad_key_status
            return _json(*error_answer(status, _GRPC_FOR_STATUS.get(status, 16), INVALID_KEY_MESSAGE))
        call.key = client_id
        return None

    def expired(self, call: Call) -> Response:
        return _json(*error_answer(401, 16, EXPIRED_KEY_MESSAGE))

    def limit_key(self, call: Call) -> tuple[str, str]:
        return call.key, _ALL_METHODS

    def throttled(self, call: Call, throttle: Throttle) -> Response:
        response = _json(429, {"code": 8, "message": _RATE_MESSAGE})  # the body seen live: no details
        response.headers["ratelimit-remaining"] = "0"
        if throttle.retry is not None:  # a refusal without a hint: the client backs off on its own
            response.headers["retry-after"] = str(throttle.retry)
        return response

    def gate(self, call: Call) -> Response | None:
        # Refused after the limit, so a refused call still counts; answered without a remaining header.
        if call.path in _NEEDS_SUBSCRIPTION and not self.config.reviews_subscription:
            return _json(*error_answer(403, 7, _NO_SUBSCRIPTION))
        if call.path in _NEEDS_PREMIUM and not self.config.premium:
            return _json(*error_answer(403, 7, _NO_PREMIUM))
        return None

    async def invoke(self, call: Call) -> tuple[int, Any]:
        body = await self.logged(call)
        try:
            if not isinstance(body, dict):
                raise bad_request("the body must be a JSON object")
            return await call.handler(body, call.now)
        except Refused as refusal:
            return refusal.answer

    def failure(self, call: Call, status: int) -> tuple[int, Any]:
        if status == 500:
            return error_answer(500, 13, "Internal error")
        return error_answer(503, 14, "Service Unavailable")

    def respond(self, call: Call, status: int, payload: Any) -> Response:
        return _json(status, payload)

    def corrupt(self, payload: Any) -> Any:
        return _corrupt(payload)

    def finish(self, call: Call, response: Response) -> Response:
        # With the limit off, the header still promises the whole second's budget.
        left = remaining(call.quota) if call.quota is not None else self.config.requests_per_second
        response.headers["ratelimit-remaining"] = str(left)
        return response

    async def logged(self, call: Call) -> Any:
        """The JSON body (None if it is not JSON): Ozon's methods are all POSTs with one."""
        if "body" not in call.extra:
            try:
                call.extra["body"] = orjson.loads(await call.request.body() or b"{}")
            except orjson.JSONDecodeError:
                call.extra["body"] = None
        return call.extra["body"]


def _json(status: int, payload: Any) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build the emulator app; the dataset is generated here, once."""
    emu = _Emulator(config or EmulatorConfig())
    routes = [emu.route(path, handler, group=path, method="POST", write=write) for path, handler, write in (
        (FBS_LIST, emu.fbs_list, False),
        (FBO_LIST, emu.fbo_list, False),
        (REVIEW_LIST, emu.review_list, False),
        (COMMENT_LIST, emu.comment_list, False),
        (_COMMENT_CREATE, emu.comment_create, True),
        ("/v1/seller-actions/create/voucher", emu.voucher_create, True),
        (SELLER_ACTIONS, emu.seller_actions, False),
        (_CHAT_START, emu.chat_start, True),
        (_CHAT_SEND, emu.chat_send, True),
        (CHAT_HISTORY, emu.chat_history, False),  # base access since 2026 (ozon.md §5.5)
        (PRODUCT_INFO, emu.product_info_list, False),
    )]
    return emu.build_app(routes, data=emu.data, comments=emu.comments, vouchers=emu.vouchers, chats=emu.chats,
                         late_changes=emu.data.postings.late_changes)
