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
- `data` (the seeded `Dataset`), `emulator` (the internals), `faults` (the `FaultPlan`),
- `short_pages` [(path, records served, records the page had)] for `short_page` faults,
- `late_changes` {rid: ("supplierStatus/wbStatus" before, after)} for `late_change` faults: the
  orders (FBS, so both APIs show them) that a refusal reaches long after they were created.

Paging follows WB's documents: `GET /api/v3/orders` serves orders with id > `next` and answers
the last served id as `next`; feedbacks are `take`/`skip`; Statistics serves rows with
`lastChangeDate >= dateFrom`. A `short_page` fault cuts any of them short mid-stream.

The WB paths live in `emulator_endpoints`, the orders in `emulator_orders`, the reviews and the
seeded dataset in `emulator_data`; this module is what WB's side of the shared pipeline
(`connectors.emulator_base`) says: its token, limits, error bodies and routes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.responses import Response

from connectors.emulation import LATE_CHANGE_DELAY, Fault, FaultKind, PayloadShape
from connectors.emulator_base import BucketLimits, Call, Emulator, EmulatorStats, Throttle, remaining
from connectors.ratelimit import Rate
from connectors.wildberries.emulator_data import Dataset, generate, iso_utc
from connectors.wildberries.emulator_endpoints import WbEndpoints

__all__ = ["DEFAULT_LIMITS", "EmulatorConfig", "EmulatorStats", "Fault", "FaultKind", "create_app"]

#: group -> (requests, period in seconds, burst), from WB's rate-limit tables for Personal tokens.
DEFAULT_LIMITS: Mapping[str, tuple[int, float, int]] = MappingProxyType({
    "marketplace": (300, 60, 20),
    "statistics": (1, 60, 10),
    "feedbacks": (3, 1, 6),
})
_PROBLEM = "application/problem+json"


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


class _Emulator(WbEndpoints, Emulator):
    """WB's side of the pipeline: its token, buckets, problem bodies and the 4xx penalty."""

    shape = _SHAPE
    PRETEND_THROTTLE_SPENDS = False  # a `rate_limit` fault's 429 gives its token back

    def __init__(self, config: EmulatorConfig):
        rates = {group: Rate(*limit) for group, limit in config.limits.items()}
        super().__init__(config, BucketLimits(rates, config.monotonic) if config.rate_limits else None)
        born = config.now or datetime.now(UTC)
        self.data: Dataset = generate(config.seed, config.orders, config.reviews,
                                      config.history_days, int(born.timestamp()))
        self.late_changes = self._stage_late_changes(int(born.timestamp()))
        self.answers: list[tuple[str, str]] = []

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

    def authenticate(self, call: Call) -> Response | None:
        # "Bearer x" and a bare "x" are the same token, and share its buckets.
        call.key = call.request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if self.config.token is not None and call.key != self.config.token:
            return _problem_response(401, "unauthorized", "token problem; token is malformed", call.now)
        return None

    def expired(self, call: Call) -> Response:
        return _problem_response(401, "unauthorized", EXPIRED_TOKEN_DETAIL, call.now)

    def throttled(self, call: Call, throttle: Throttle) -> Response:
        response = _problem_response(429, "too many requests", "limited by emulator", call.now)
        response.headers["X-Ratelimit-Limit"] = str(throttle.limit)
        if throttle.retry is not None:  # a refusal without a hint: the client backs off on its own
            response.headers.update({"X-Ratelimit-Retry": str(throttle.retry),
                                     "X-Ratelimit-Reset": str(throttle.reset)})
        return response

    def failure(self, call: Call, status: int) -> tuple[int, Any]:
        title = "internal server error" if status == 500 else "service unavailable"
        return status, _problem(status, title, "injected fault", call.now)

    def fault_response(self, call: Call, status: int) -> Response:
        # The gateway's own 5xx is problem+json; a handler's lost answer (apply_then_500) is not.
        return _json(*self.failure(call, status), media=_PROBLEM)

    def respond(self, call: Call, status: int, payload: Any) -> Response:
        return _json(status, payload)

    def corrupt(self, payload: Any) -> Any:
        return _corrupt(payload)

    def reshape(self, call: Call, payload: Any) -> Any:
        super().reshape(call, payload)
        self._still_broken(call.path, payload)
        return payload

    def finish(self, call: Call, response: Response) -> Response:
        bucket = call.quota
        if bucket is not None:
            if call.group == "marketplace" and 400 <= response.status_code < 500:
                bucket.charge(9)  # WB: "one request with a 4XX response counts as 10"
            response.headers["X-Ratelimit-Remaining"] = str(remaining(bucket))
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


def _json(status: int, payload: Any, media: str = "application/json") -> Response:
    if payload is None:
        return Response(status_code=status)
    return Response(orjson.dumps(payload), status, media_type=media)


def _problem_response(status: int, title: str, detail: str, now: int) -> Response:
    return _json(status, _problem(status, title, detail, now), media=_PROBLEM)


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build the emulator app; the dataset is generated here, once."""
    emu = _Emulator(config or EmulatorConfig())
    routes = [
        emu.route("/api/v3/orders", emu.orders, group="marketplace"),
        emu.route("/api/v3/orders/new", emu.orders_new, group="marketplace"),
        emu.route("/api/v3/orders/status", emu.orders_status, group="marketplace", method="POST"),
        emu.route("/api/v1/supplier/orders", emu.supplier_orders, group="statistics"),
        emu.route("/api/v1/feedbacks", emu.feedbacks, group="feedbacks"),
        emu.route("/api/v1/feedbacks/archive", emu.feedbacks_archive, group="feedbacks"),
        emu.route("/api/v1/feedbacks/count-unanswered", emu.count_unanswered, group="feedbacks"),
        emu.route("/api/v1/feedbacks/answer", emu.answer, group="feedbacks", method="POST", write=True),
        emu.route("/api/v1/feedback", emu.feedback, group="feedbacks"),
        emu.route("/ping", emu.ping, group="other"),
    ]
    return emu.build_app(routes, data=emu.data, answers=emu.answers, late_changes=emu.late_changes)
