"""An emulator of the Megamarket merchant API (orders) on the shared pipeline (`connectors.emulator_base`).

Built from shared/marketplaces/megamarket.md (sections cited as §n) and its example payloads, not
from any client: two POST endpoints with JSON envelopes `{"meta": {}, "data": {...}}`, the token in
the body and/or the `X-Merchant-Token` header, a User-Agent block, 5 requests per second per seller,
a search capped without a cursor, per-unit lines with a delivery pseudo-line. Where the document says
UNCONFIRMED the strictest plausible reading is served, and each such place says so.

`create_app(EmulatorConfig(...))` is the entry point. `app.state` holds, besides the pipeline's
bookkeeping (`stats`, `request_log`, `corrupted`, `breakage`, `writes`, `faults`, `short_pages`,
`emulator`): `shipments` ({shipmentId: `Shipment`}), `late_changes` ({shipmentId: (status before,
after)}), `naive_dates` (request dates read without an offset), `blocked_agents` (User-Agents
refused) and `data` (the `Dataset`). Data and JSON live in `emulator_data`; this module is the protocol.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.responses import Response

from connectors.emulation import Fault, PayloadShape
from connectors.emulator_base import Call, Emulator, Throttle
from connectors.megamarket.emulator_data import (
    CLIENT_STATUSES,
    DOC_STATUSES,
    MSK,
    Dataset,
    Shipment,
    Unit,
    ensure_utc,
    generate,
)

__all__ = ["GET", "SEARCH", "EmulatorConfig", "Fault", "Shipment", "Unit", "create_app"]

SEARCH = "/api/market/v1/orderService/order/search"  # §2.1
GET = "/api/market/v1/orderService/order/get"  # §2.2
#: §4 "up to 5 requests per second per seller": at most 5 within any 1.0 s, per token.
RATE, WINDOW = 5, 1.0
#: §2.1: `count` is not documented; a client defaults to 1000, another stops at 100. Accepted: 1..1000.
DEFAULT_COUNT, MAX_COUNT = 100, 1000
#: §2.2: the batch limit of order/get is UNCONFIRMED; 100 is the strict guess.
MAX_GET_IDS = 100
#: §1: a default library User-Agent is blocked (the doc names python-requests; the rest by the same logic).
BLOCKED_AGENTS = ("python-requests/", "python-httpx/", "aiohttp/", "python-urllib/", "go-http-client/", "curl/",
                  "okhttp/")
#: §1, §8: what a block looks like is UNCONFIRMED; a WAF's HTML page is the likely shape.
BLOCK_PAGE = "<html><body><h1>403 Forbidden</h1>Request blocked</body></html>"
KNOWN_FILTER_STATUSES = frozenset(DOC_STATUSES + CLIENT_STATUSES)  # §2.1: statuses[] takes §2.2's words
_WITH_OFFSET = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})")
_NAIVE = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class EmulatorConfig:
    seed: int = 7
    orders: int = 300  # shipments in the history
    reviews: int = 0  # accepted and ignored: no review API (§3)
    token: str = "megamarket-test-token"
    history_days: int = 60  # shipments are created within this many days before generated_at
    generated_at: datetime | None = None  # the data's "now" (default: wall clock at build)
    serving_at: datetime | None = None  # the platform's "now" when answering (default: wall clock)
    rate_limits: bool = True
    faults: tuple[Fault, ...] = ()
    monotonic: Callable[[], float] = time.monotonic
    unknown_statuses: int = 0  # this many shipments carry a status no document names
    search_cap: int = 100  # the server's own cap on ids per search (§2.1), whatever `count` asks
    busy_day: int = 0  # this many EXTRA shipments created on one Moscow day (generated_at − 3 days)
    server_errors: int = 0  # the first N requests answer HTTP 500 (§4 "may answer 500 — retry")
    dbs_share: float = 0.5  # share of DBS shipments (the rest FBS)
    latency: float = 0.0  # seconds each answer takes (real time)


def failed(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    """§4: `"success": 0` with an `error` object (error.response.json; the shape is UNCONFIRMED)."""
    return status, {"success": 0, "meta": {}, "error": {"code": code, "message": message}}


def succeeded(data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """`{"success": 1, "meta": {}, "data": ...}` (order_search.response.json, order_get.response.json)."""
    return 200, {"success": 1, "meta": {}, "data": data}


#: §4: business errors come back with HTTP 200 and `success: 0` (reportedly); a wrong token is one.
INVALID_TOKEN = failed(200, "VALIDATION", "invalid token")


class BadRequest(Exception):
    """A request the strict reading refuses: HTTP 400, code VALIDATION."""


def blocked(agent: str | None) -> bool:
    """§1: no User-Agent, or a library's default one."""
    return not agent or not agent.strip() or agent.strip().lower().startswith(BLOCKED_AGENTS)


# -- order/search (§2.1) -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchQuery:
    low: datetime  # creationDate bounds, inclusive, to the second
    high: datetime
    count: int
    statuses: frozenset[str]  # empty: every status


def parse_date(raw: Any, name: str, naive: list[str]) -> datetime:
    """ISO 8601 with an offset or Z (§2.1, §6); a naive `Y-m-d H:i:s` or `Y-m-d\\TH:i:s` is read as
    Moscow time and noted in `naive` (§2.1: how the server reads one is UNCONFIRMED); nothing else."""
    if not isinstance(raw, str):
        raise BadRequest(f"{name} must be a date string")
    try:
        if _WITH_OFFSET.fullmatch(raw):
            return datetime.fromisoformat(raw).astimezone(UTC).replace(microsecond=0)  # to the second
        match = _NAIVE.fullmatch(raw)
        if match:
            moment = datetime.fromisoformat(f"{match[1]}T{match[2]}").replace(tzinfo=MSK)
            naive.append(raw)
            return moment.astimezone(UTC)
    except ValueError:
        pass  # right shape, impossible date (month 13): refused below
    raise BadRequest(f"{name} must be an ISO 8601 date with an offset, e.g. 2026-07-10T14:30:30+03:00")


def parse_count(data: dict[str, Any]) -> int:
    """An integer, or a string of digits (a public client sends "100"), within 1..MAX_COUNT."""
    raw = data.get("count", DEFAULT_COUNT)
    if isinstance(raw, str) and _DIGITS.fullmatch(raw):
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_COUNT:
        raise BadRequest(f"count must be an integer from 1 to {MAX_COUNT}")
    return raw


def parse_statuses(data: dict[str, Any]) -> frozenset[str]:
    """Absent or empty: every status; else §2.2's words (and the client-known ones), nothing unknown."""
    raw = data.get("statuses", [])
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise BadRequest("statuses must be a list of status names")
    unknown = sorted(set(raw) - KNOWN_FILTER_STATUSES)
    if unknown:
        raise BadRequest(f"unknown statuses: {', '.join(unknown)}")
    return frozenset(raw)


def parse_search(data: dict[str, Any], now: datetime, naive: list[str]) -> SearchQuery:
    """`data{dateFrom, dateTo, count, statuses[]}`: dateFrom required, dateTo defaults to now. A key
    given as null is refused: the document shows none (strict reading)."""
    if "dateFrom" not in data:
        raise BadRequest("dateFrom is required")
    low = parse_date(data["dateFrom"], "dateFrom", naive)
    high = parse_date(data["dateTo"], "dateTo", naive) if "dateTo" in data else now.replace(microsecond=0)
    if low > high:
        raise BadRequest("dateFrom is after dateTo")
    return SearchQuery(low, high, parse_count(data), parse_statuses(data))


def parse_ids(data: dict[str, Any]) -> list[str]:
    """`data{shipments: [ids]}`: strings (numbers accepted), 1..MAX_GET_IDS of them, each once."""
    raw = data.get("shipments")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("shipments must be a non-empty list of shipment ids")
    if len(raw) > MAX_GET_IDS:
        raise BadRequest(f"at most {MAX_GET_IDS} shipments per request")
    if any(isinstance(i, bool) or not isinstance(i, str | int) for i in raw):
        raise BadRequest("shipment ids must be strings")
    return list(dict.fromkeys(str(i) for i in raw))


# -- payload faults ------------------------------------------------------------------------------------

#: Fields the examples show null or absent (optional in schemas/get_response.json); `name?`: only
#: while null. goodsData's flags are absent in the FBS example: §2.3 says to match on offerId.
OPTIONAL = {
    "shipment": ("reserveExpirationDate?", "customer?"),
    "item": ("subStatus?", "boxIndex?"),
    "goods": ("isDelivery", "isDigitalMarkRequired"),
}
#: An integer rouble amount sent as a string: the wrong JSON type a strict mapper must notice.
WRONG = {"shipment": ("depositedAmount", "2990")}


def _shipments_of(payload: Any) -> list[dict[str, Any]]:
    data = payload.get("data") if isinstance(payload, dict) else None
    shipments = data.get("shipments") if isinstance(data, dict) else None
    return [s for s in shipments if isinstance(s, dict)] if isinstance(shipments, list) else []


class MegamarketEmulator(Emulator):
    """Megamarket's side of the pipeline: the User-Agent block, body or header token, a sliding window."""

    def __init__(self, config: EmulatorConfig):
        super().__init__(config)
        generated_at = ensure_utc(config.generated_at or datetime.now(UTC))
        self.data: Dataset = generate(config.seed, config.orders, config.history_days, generated_at,
                                      unknown=config.unknown_statuses, busy=config.busy_day,
                                      dbs_share=config.dbs_share, late=self.faults.late_changes())
        self.shipments = self.data.shipments
        # §2.1: when more match than the cap, which come back is not by date: a seeded hash order.
        self.listed = sorted(self.shipments.values(), key=lambda s: self._hash(s.shipment_id))
        self.naive_dates: list[str] = []
        self.blocked_agents: list[str] = []
        self.windows: dict[str, deque[float]] = {}  # token -> instants of the requests admitted
        self.errors_left = config.server_errors
        self.token_expired = False  # set by an `expired_token` fault
        self.keys: dict[int, str] = {}  # id(record) -> its key, for the payload faults
        self.shape = PayloadShape(records=self._records, key=lambda kind, rec: self.keys.get(id(rec), "?"),
                                  optional=OPTIONAL, wrong=WRONG)

    def _hash(self, shipment_id: str) -> bytes:
        return hashlib.blake2b(f"{self.config.seed}:{shipment_id}".encode(), digest_size=8).digest()

    def _records(self, payload: Any) -> list[tuple[str, dict[str, Any]]]:
        """(kind, record) of an order/get answer; each record keyed by its shipment (and line)."""
        out: list[tuple[str, dict[str, Any]]] = []
        self.keys.clear()
        for shipment in _shipments_of(payload):
            sid = str(shipment.get("shipmentId"))
            found = [("shipment", shipment, sid)]
            if isinstance(shipment.get("customer"), dict):
                found.append(("customer", shipment["customer"], f"{sid}:customer"))
            for item in [i for i in shipment.get("items") or [] if isinstance(i, dict)]:
                found.append(("item", item, f"{sid}:item:{item.get('itemIndex')}"))
                if isinstance(item.get("goodsData"), dict):
                    found.append(("goods", item["goodsData"], f"{sid}:goods:{item.get('itemIndex')}"))
            for kind, record, key in found:
                self.keys[id(record)] = key
                out.append((kind, record))
        return out

    # -- the platform's words for the pipeline ---------------------------------------------------------

    def now(self) -> datetime:
        return ensure_utc(self.config.serving_at or datetime.now(UTC))

    async def serve(self, call: Call) -> Response:
        """The User-Agent block (a WAF in front, §1) and the server's own 500s (§4) come before the token."""
        call.extra["body"] = _json_body(await call.request.body())
        agent = call.request.headers.get("user-agent")
        if blocked(agent):
            self.blocked_agents.append(agent or "")
            return Response(BLOCK_PAGE, 403, media_type="text/html")
        if self.errors_left > 0:
            self.errors_left -= 1
            return self.respond(call, *self.failure(call, 500))
        return await super().serve(call)

    def authenticate(self, call: Call) -> Response | None:
        """§1: `data.token` and/or `X-Merchant-Token`; either alone works, both must agree."""
        body = call.extra.get("body")
        data = body.get("data") if isinstance(body, dict) else None
        given = [t for t in (data.get("token") if isinstance(data, dict) else None,
                             call.request.headers.get("x-merchant-token")) if t is not None]
        if not given or any(t != self.config.token for t in given) or self.token_expired:
            return self.respond(call, *INVALID_TOKEN)
        call.key = self.config.token
        return None

    def expired(self, call: Call) -> Response:
        """`expired_token`: the token is refused from now on (connectors.emulation), with the only
        refusal the document shows (§4, error.response.json)."""
        self.token_expired = True
        return self.respond(call, *INVALID_TOKEN)

    def admit(self, call: Call) -> Throttle | None:
        """§4: at most RATE requests within any WINDOW seconds per token (a sliding window: a bucket
        would let a second burst through right after the first). Refused requests are not counted.
        The throttle's status and body are UNCONFIRMED: 429 without a hint (no Retry-After)."""
        call.limit = RATE
        if not self.config.rate_limits:
            return None
        now, window = self.config.monotonic(), self.windows.setdefault(call.key, deque())
        while window and now - window[0] >= WINDOW - 1e-9:  # a client paced at exactly 5/s lands on the edge
            window.popleft()
        if len(window) >= RATE:
            return Throttle(None, None, RATE)
        window.append(now)
        return None

    def throttled(self, call: Call, throttle: Throttle) -> Response:
        response = self.respond(call, *failed(429, "TOO_MANY_REQUESTS", "Too many requests: at most 5 per second"))
        if throttle.retry is not None:  # only a `rate_limit` fault that names a wait
            response.headers["Retry-After"] = str(math.ceil(throttle.retry))
        return response

    def failure(self, call: Call, status: int) -> tuple[int, Any]:
        if status == 500:
            return failed(500, "INTERNAL_ERROR", "Internal server error, please retry")
        return failed(status, "SERVICE_UNAVAILABLE", "Service temporarily unavailable")

    async def invoke(self, call: Call) -> tuple[int, Any]:
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        body = call.extra.get("body")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return failed(400, "VALIDATION", 'the body must be {"meta": {}, "data": {...}}')
        try:
            return await call.handler(data, call.now)
        except BadRequest as refusal:
            return failed(400, "VALIDATION", str(refusal))

    def respond(self, call: Call, status: int, payload: Any) -> Response:
        return Response(orjson.dumps(payload), status, media_type="application/json")

    def corrupt(self, payload: Any) -> Any:
        """`malformed`: one shipment of an order/get answer gets a creationDate that is no date, or
        (every other time) a finalPrice that is a string; its shipmentId. Search answers: nothing."""
        shipments = _shipments_of(payload)
        if not shipments:
            return None
        shipment = shipments[len(shipments) // 2]
        if len(self.corrupted) % 2 == 0:
            shipment["creationDate"] = "not-a-date"
        else:
            shipment["items"][0]["finalPrice"] = str(shipment["items"][0]["finalPrice"])
        return shipment["shipmentId"]

    async def logged(self, call: Call) -> Any:
        """The request body, its token masked."""
        body = call.extra.get("body")
        if isinstance(body, dict) and isinstance(body.get("data"), dict) and "token" in body["data"]:
            return {**body, "data": {**body["data"], "token": "***"}}
        return body

    # -- endpoints --------------------------------------------------------------------------------------

    async def search(self, data: dict[str, Any], now: datetime) -> tuple[int, Any]:
        """order/search (§2.1): ids only, at most min(count, search_cap), no cursor, no total, no marker."""
        query = parse_search(data, now, self.naive_dates)
        found = [s.shipment_id for s in self.listed
                 if s.created_at <= now and query.low <= s.created_at <= query.high
                 and (not query.statuses or s.status_at(now) in query.statuses)]
        return succeeded({"shipments": found[:min(query.count, self.config.search_cap)]})

    async def get(self, data: dict[str, Any], now: datetime) -> tuple[int, Any]:
        """order/get (§2.2): the shipments asked for, as they stand at `now`; unknown ids left out. A
        `short_page` fault leaves out some that exist: the client must ask again for the missing ones."""
        found = [self.shipments[i] for i in parse_ids(data)
                 if i in self.shipments and self.shipments[i].created_at <= now]
        served = self.faults.shorten(GET, found, more=len(found) >= 2)
        return succeeded({"shipments": [s.payload(now) for s in served]})


def _json_body(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        return None


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build the emulator app; the data set is generated here, once."""
    emulator = MegamarketEmulator(config or EmulatorConfig())
    routes = [emulator.route(SEARCH, emulator.search, group="order/search", method="POST"),
              emulator.route(GET, emulator.get, group="order/get", method="POST")]
    return emulator.build_app(routes, shipments=emulator.shipments, late_changes=emulator.data.late_changes,
                              naive_dates=emulator.naive_dates, blocked_agents=emulator.blocked_agents,
                              data=emulator.data)
