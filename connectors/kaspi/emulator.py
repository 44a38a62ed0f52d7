"""An emulator of the Kaspi.kz Shop API (orders) on the shared pipeline (`connectors.emulator_base`).

Built from shared/marketplaces/kaspi.md (sections cited as §n) and its official doc examples, not
from any client: JSON:API at `/shop/api/v2`, `X-Auth-Token`, one state per request, epoch-ms
creation windows of at most 14 days, zero-based page numbers, money as floats, two phone forms,
unknown statuses. Where the doc is ambiguous it follows §3's "an emulator enforces the doc strictly".

`create_app(EmulatorConfig(...))` is the entry point. `app.state` holds, besides the pipeline's
bookkeeping (`stats`, `request_log`, `corrupted`, `breakage`, `writes`, `faults`, `short_pages`,
`emulator`): `orders` ({JSON:API id: `Order`}), `late_changes` ({id: (status before, after)}),
`customer_forms` ({buyer label: the `cellPhone` strings its orders carry}) and `data` (`Dataset`).
Data and resources live in `emulator_data`; this module is the protocol.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from connectors.emulation import Fault, PayloadShape
from connectors.emulator_base import BucketLimits, Call, Emulator, Throttle
from connectors.kaspi.emulator_data import (
    STATES,
    Dataset,
    Entry,
    Order,
    Stage,
    entry_resource,
    generate,
    ms,
    order_resource,
    product_resource,
)
from connectors.ratelimit import Rate

__all__ = ["API", "Entry", "EmulatorConfig", "Fault", "Order", "Stage", "create_app"]

API = "/shop/api/v2"
ORDERS = f"{API}/orders"
MEDIA_TYPE = "application/vnd.api+json"  # §2
MAX_PAGE_SIZE = 100  # §3
MAX_SPAN_MS = 14 * 86_400_000  # §3: "max search period 14 days"
#: §5: undocumented; one client self-limits to 6 rps. A bucket of 6, refilled 6 per second, per token.
SERVER_RATE = Rate(6, 1.0, 6)
GROUP = "shop_api"
_INTEGER = re.compile(r"-?[0-9]+")  # ASCII digits only: "１２" is no epoch
F = "filter[orders]"


@dataclass(frozen=True)
class EmulatorConfig:
    seed: int = 7
    orders: int = 300
    reviews: int = 0  # accepted and ignored: Kaspi has no review API (§4)
    token: str = "kaspi-test-token"
    history_days: int = 60  # orders are created within this many days before `generated_at`
    generated_at: datetime | None = None  # the data's "now" (default: wall clock at build)
    serving_at: datetime | None = None  # the platform's "now" when answering (default: wall clock)
    rate_limits: bool = True
    faults: tuple[Fault, ...] = ()
    monotonic: Callable[[], float] = time.monotonic
    unknown_statuses: int = 0  # this many orders carry a status no document names
    latency: float = 0.0  # seconds each answer takes (real time)


def error(status: int, title: str) -> tuple[int, dict[str, Any]]:
    """§5: every error is JSON:API style, `{"errors": [{"title": ...}]}`."""
    return status, {"errors": [{"title": title}]}


class BadRequest(Exception):
    pass


# -- the orders query (§3, §3.1) ---------------------------------------------------------------------

@dataclass(frozen=True)
class OrdersQuery:
    number: int
    size: int
    code: str | None
    state: str | None
    low: int | None  # creationDate bounds in epoch ms, inclusive
    high: int | None
    status: str | None
    signature: bool | None
    entries: bool


def _one(params: QueryParams, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"{name} is given more than once")
    return values[0] if values else None


def _integer(params: QueryParams, name: str, default: int | None = None) -> int:
    raw = _one(params, name)
    if raw is None:
        if default is None:
            raise BadRequest(f"{name} is required")
        return default
    if not _INTEGER.fullmatch(raw):
        raise BadRequest(f"{name} must be an integer, got {raw!r}")
    return int(raw)


def parse_orders_query(params: QueryParams, now: datetime) -> OrdersQuery:
    code = _one(params, f"{F}[code]")
    # §3.1: a lookup by code needs only the code; page and window then default, state is optional.
    number = _integer(params, "page[number]", 0 if code else None)
    size = _integer(params, "page[size]", 20 if code else None)
    if number < 0:
        raise BadRequest("page[number] starts from 0")  # §3: zero-based, negative numbers rejected
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BadRequest(f"page[size] must be 1..{MAX_PAGE_SIZE}")
    state = _one(params, f"{F}[state]")
    if state is None and code is None:
        raise BadRequest(f"{F}[state] is required")
    if state is not None and state not in STATES:  # a comma-joined list is no state (§3: one per request)
        raise BadRequest(f"{F}[state] must be one of {', '.join(STATES)}")
    low, high = _window(params, now, required=code is None)
    signature = _one(params, f"{F}[signatureRequired]")
    if signature not in (None, "true", "false"):
        raise BadRequest(f"{F}[signatureRequired] must be true or false")
    _one(params, f"{F}[deliveryType]")  # §3: both spellings accepted, the filter is not applied
    return OrdersQuery(number, size, code, state, low, high, _one(params, f"{F}[status]"),
                       None if signature is None else signature == "true", _includes_entries(params))


def _window(params: QueryParams, now: datetime, required: bool) -> tuple[int | None, int | None]:
    """Inclusive (low, high) creationDate bounds in ms (§3: `$ge` required, ms, at most 14 days).

    The span is the distance between the two values given, whatever the operators: `$ge`..`$le`
    of exactly 14 days passes, 14 days + 1 ms does not. Without `$le`/`$lt` the window runs to
    "now" and the 14-day limit still applies from the lower bound: the doc gives no exception.
    """
    name = f"{F}[creationDate]"
    bounds = {op: _integer(params, f"{name}[{op}]") for op in ("$ge", "$gt", "$le", "$lt")
              if _one(params, f"{name}[{op}]") is not None}
    lower = [op for op in ("$ge", "$gt") if op in bounds]
    upper = [op for op in ("$le", "$lt") if op in bounds]
    if not lower:
        if required or upper:
            raise BadRequest(f"{name}[$ge] is required")
        return None, None
    if len(lower) > 1 or len(upper) > 1:
        raise BadRequest(f"{name}: one lower and at most one upper bound")
    start = bounds[lower[0]]
    end = bounds[upper[0]] if upper else ms(now)
    if end < start:
        raise BadRequest(f"{name}: the upper bound is before the lower one")
    if end - start > MAX_SPAN_MS:
        raise BadRequest(f"{name}: the search period must not exceed 14 days")
    low = start + (lower[0] == "$gt")
    high = (end - (upper[0] == "$lt")) if upper else end
    return low, high


def _includes_entries(params: QueryParams) -> bool:
    raw = _one(params, "include[orders]")
    names = raw.split(",") if raw else []
    if any(n not in ("entries", "user") for n in names):  # §3: `=entries` or `=user`
        raise BadRequest("include[orders] may name entries and user only")
    return "entries" in names


def matches(query: OrdersQuery, order: Order, stage: Stage) -> bool:
    created = ms(order.created_at)
    return ((query.code is None or order.code == query.code)
            and (query.state is None or stage.state == query.state)
            and (query.low is None or created >= query.low)
            and (query.high is None or created <= query.high)
            and (query.status is None or stage.status == query.status)
            and (query.signature is None or order.signature_required == query.signature))


# -- payload faults ------------------------------------------------------------------------------------

def _records(payload: Any) -> list[tuple[str, dict[str, Any]]]:
    """(kind, record) of an orders page: each order's attributes and its customer."""
    data = payload.get("data") if isinstance(payload, dict) else None
    out: list[tuple[str, dict[str, Any]]] = []
    for item in data if isinstance(data, list) else []:
        attrs = item.get("attributes") if isinstance(item, dict) and item.get("type") == "orders" else None
        if isinstance(attrs, dict):
            out.append(("order", attrs))
            if isinstance(attrs.get("customer"), dict):
                out.append(("customer", attrs["customer"]))
    return out


#: Fields the examples show absent or null (optional in schemas/orders_page.json): the PREPAID example
#: has no creditTerm, the pickup one no Kaspi Delivery blocks, neither a plannedDeliveryDate.
OPTIONAL = {
    "order": ("plannedDeliveryDate", "reservationDate", "kaspiDelivery", "originAddress", "deliveryAddress",
              "assembled", "creditTerm"),
    "customer": ("name?",),
}
#: A number sent as a string: the wrong JSON type a strict mapper must notice.
WRONG = {"order": ("totalPrice", "2000.0")}


class KaspiEmulator(Emulator):
    """Kaspi's side of the pipeline: X-Auth-Token, a per-token bucket, JSON:API bodies."""

    def __init__(self, config: EmulatorConfig):
        limits = BucketLimits({GROUP: SERVER_RATE}, config.monotonic) if config.rate_limits else None
        super().__init__(config, limits)
        generated_at = (config.generated_at or datetime.now(UTC)).astimezone(UTC)
        self.data: Dataset = generate(config.seed, config.orders, config.history_days, config.unknown_statuses,
                                      generated_at, self.faults.late_changes())
        self.orders = self.data.orders
        # Kaspi documents no order: by creation then id, so that page N is always the same slice.
        self.listed = sorted(self.orders.values(), key=lambda o: (o.created_at, o.id))
        ids = {o.code: o.id for o in self.listed}

        def key(kind: str, rec: dict[str, Any]) -> str:
            """An order's JSON:API id (found by its code: the faults see only attributes)."""
            return ids.get(str(rec.get("code")), "?") if kind == "order" else f"customer:{rec.get('id')}"

        self.shape = PayloadShape(records=_records, key=key, optional=OPTIONAL, wrong=WRONG)
        self.shifts: dict[tuple, int] = {}  # listing -> records short pages held back (`list_orders`)

    # -- the platform's words for the pipeline ---------------------------------------------------------

    def now(self) -> datetime:
        return (self.config.serving_at or datetime.now(UTC)).astimezone(UTC)

    def authenticate(self, call: Call) -> Response | None:
        if call.request.headers.get("x-auth-token") != self.config.token:  # §2
            return self.respond(call, *error(401, "Invalid or missing X-Auth-Token"))  # §5.1: 401 = token invalid
        call.key = self.config.token
        return None

    def expired(self, call: Call) -> Response:
        return self.respond(call, *error(401, "Token is not valid"))

    def admit(self, call: Call) -> Throttle | None:
        # §5: the limit is undocumented, so its refusal carries no hint (no Retry-After); only a
        # `rate_limit` fault that names a wait sends one.
        throttle = super().admit(call)
        return None if throttle is None else Throttle(None, None, throttle.limit)

    def throttled(self, call: Call, throttle: Throttle) -> Response:
        response = self.respond(call, *error(429, "Too many requests"))
        if throttle.retry is not None:
            response.headers["Retry-After"] = str(math.ceil(throttle.retry))
        return response

    def failure(self, call: Call, status: int) -> tuple[int, Any]:
        return error(status, "Internal Server Error" if status == 500 else "Service Unavailable")

    async def invoke(self, call: Call) -> tuple[int, Any]:
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        return await super().invoke(call)

    def respond(self, call: Call, status: int, payload: Any) -> Response:
        return Response(orjson.dumps(payload), status, media_type=MEDIA_TYPE)

    def corrupt(self, payload: Any) -> Any:
        """`malformed`: one order of a page gets a `totalPrice` that is no number; its id."""
        data = payload.get("data") if isinstance(payload, dict) else None
        orders = [o for o in data if o.get("type") == "orders"] if isinstance(data, list) else []
        if not orders:
            return None
        order = orders[len(orders) // 2]
        order["attributes"]["totalPrice"] = "not-a-number"
        return order["id"]

    # -- endpoints --------------------------------------------------------------------------------------

    async def list_orders(self, request: Request, now: datetime) -> tuple[int, Any]:
        """GET /orders (§3): one state, a creation window, zero-based pages; or one order by code (§3.1)."""
        try:
            query = parse_orders_query(request.query_params, now)
        except BadRequest as refusal:
            return error(400, str(refusal))
        found = [o for o in self.listed if o.created_at <= now and matches(query, o, o.at(now))]
        # A `short_page` fault: page N serves fewer records than the size although more follow, and
        # the records it held back open page N + 1 (the listing shifted under the reader); pageCount
        # grows to match. A client that stops on a short page loses them; one that reads up to
        # pageCount, as §3 says, gets every record. The shift is per listing, from its page 0.
        listing = tuple(sorted((k, v) for k, v in request.query_params.multi_items() if k != "page[number]"))
        if query.number == 0:
            self.shifts[listing] = 0
        shift = self.shifts.get(listing, 0)
        start = max(0, query.number * query.size - shift)
        full = found[start:start + query.size]
        page = self.faults.shorten(request.url.path, full, more=start + query.size < len(found))
        shift = self.shifts[listing] = shift + len(full) - len(page)
        included = [entry_resource(o, e) for o in page for e in o.entries] if query.entries else []
        return 200, {"data": [order_resource(o, now, query.entries) for o in page], "included": included,
                     "meta": {"pageCount": math.ceil((len(found) + shift) / query.size), "totalCount": len(found)}}

    async def order_entries(self, request: Request, now: datetime) -> tuple[int, Any]:
        """GET /orders/{id}/entries (order_entries.response.json)."""
        order = self.orders.get(request.path_params["order_id"])
        if order is None or order.created_at > now:
            return error(404, "Order not found")
        return 200, {"data": [entry_resource(order, e) for e in order.entries], "included": []}

    async def entry_product(self, request: Request, now: datetime) -> tuple[int, Any]:
        """GET /orderentries/{id}/product (orderentry_product.response.json)."""
        found = self.data.entries.get(request.path_params["entry_id"])
        if found is None or found[0].created_at > now:
            return error(404, "Order entry not found")
        return 200, {"data": product_resource(found[1]), "included": []}


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build the emulator app; the data set is generated here, once."""
    emulator = KaspiEmulator(config or EmulatorConfig())
    routes = [
        emulator.route(ORDERS, emulator.list_orders, group=GROUP),
        emulator.route(ORDERS + "/{order_id}/entries", emulator.order_entries, group=GROUP),
        emulator.route(API + "/orderentries/{entry_id}/product", emulator.entry_product, group=GROUP),
    ]
    return emulator.build_app(routes, orders=emulator.orders, late_changes=emulator.data.late_changes,
                              customer_forms=emulator.data.customer_forms, data=emulator.data)

