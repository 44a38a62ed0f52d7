"""Kaspi.kz Shop API endpoints, paging and auth: yields raw pages, maps nothing (kaspi.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.auth import HeaderAuth
from connectors.base import Page, Window
from connectors.errors import FatalApiError, RetryDeferred
from connectors.http import ApiClient, RetryPolicy
from connectors.ratelimit import EndpointGroup, Rate, RateLimiter
from connectors.responses import PlatformErrorInfo, describe_json_error

from .settings import KaspiAccountSettings

__all__ = ["BROWSER_USER_AGENT", "ENDPOINT_GROUPS", "MARKETPLACE", "ORDERS", "STATES", "KaspiClient",
           "from_epoch_ms", "to_epoch_ms"]

MARKETPLACE = "kaspi"
# Rate limits are not documented; one client self-limits to 6 rps; "Default ≤ 5 rps per token,
# sequential per state" (kaspi.md §5).
ENDPOINT_GROUPS = (EndpointGroup("orders", Rate(5, 1.0, 5), host="api"),)
ORDERS = "/shop/api/v2/orders"
# "filter[orders][state] — required: NEW, SIGN_REQUIRED, PICKUP, DELIVERY, KASPI_DELIVERY, ARCHIVE
# (one per request → poll each state)" (kaspi.md §3). Walked in lifecycle order: an order that moves
# on while we walk moves to a state not yet walked, so this pass still sees it.
STATES = ("SIGN_REQUIRED", "NEW", "PICKUP", "DELIVERY", "KASPI_DELIVERY", "ARCHIVE")
# "requests time out without a browser User-Agent" (one client, kaspi.md §5.1): the default is a
# browser's, with the product named after it.
BROWSER_USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (compatible; loyalsync)"
# JSON:API: "Content-Type: application/vnd.api+json (and Accept)" (kaspi.md §2).
JSON_API = "application/vnd.api+json"
# A state walked again when its total changed mid-walk, at most this many times (see `_state_pages`).
REWALKS = 2


def to_epoch_ms(value: datetime) -> int:
    """A filter bound: "filter values in ms" (kaspi.md §7); an instant, whatever the zone."""
    return int(value.astimezone(UTC).timestamp() * 1000)


def from_epoch_ms(value: int) -> datetime:
    """Epoch milliseconds as an aware UTC instant (integer arithmetic: no float rounding)."""
    return datetime.fromtimestamp(value // 1000, UTC) + timedelta(milliseconds=value % 1000)


class KaspiClient:
    """Reads a Kaspi.kz shop's orders, state by state and page by page."""

    def __init__(self, settings: KaspiAccountSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None, user_agent: str | None = None,
                 secrets: tuple[str, ...] = ()):
        """`secrets`: more values to mask in logs and errors (a proxy's password)."""
        self.settings = settings
        token = settings.token.get_secret_value()
        self.http = ApiClient(
            marketplace=MARKETPLACE,
            base_urls=settings.base_urls,
            auth=HeaderAuth({"X-Auth-Token": token}, secrets=[token, *secrets]),
            user_agent=user_agent,
            limiter=RateLimiter(ENDPOINT_GROUPS, overrides=settings.rate_limits, clock=clock, sleep=sleep),
            transport=transport,
            retry=RetryPolicy(request_deadline=settings.request_timeout_seconds),
            describe_error=describe_kaspi_error,
            clock=clock,
            sleep=sleep,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def orders(self, window: Window) -> AsyncIterator[Page]:
        """Every order created in `window`, each state in turn, entries included.

        Kaspi filters by creation time only (no "updated since", kaspi.md §3): a status change of an
        older order is seen on a later run's re-read of its creation window (the stream's lookback
        and re-scan). The window must not span more than 14 days ("max search period 14 days").
        """
        for state in STATES:
            async for page in self._state_pages(state, window):
                yield page

    async def order_by_code(self, code: str) -> dict[str, Any] | None:
        """One order by its code, whatever its age (kaspi.md §3.1); None if Kaspi has no such order."""
        data = await self._get({"filter[orders][code]": code, "page[number]": 0, "page[size]": 1,
                                "include[orders]": "entries"})
        items = _orders_of(data)
        return items[0] if items else None

    async def _state_pages(self, state: str, window: Window) -> AsyncIterator[Page]:
        """The pages of one state, 0 up to `meta.pageCount` - 1 ("page[number] — zero-based";
        response `meta{pageCount, totalCount}`, kaspi.md §3). A page's length says nothing about the
        end: only pageCount does. Kaspi documents no sort order, so when `totalCount` changed while
        we walked (orders entered or left the state, shifting the pages) the state is walked again,
        at most REWALKS times; what a walk misses all the same, the next run's re-read finds."""
        # Kaspi filters only by what is asked (state, creation window); the code lookup is the one
        # query without a date limit (§3.1), and this stream does not need it.
        query = {"filter[orders][state]": state,
                 "filter[orders][creationDate][$ge]": to_epoch_ms(window.start),
                 "filter[orders][creationDate][$lt]": to_epoch_ms(window.end),
                 "page[size]": self.settings.page_size, "include[orders]": "entries"}
        for _ in range(1 + REWALKS):
            number, pages, totals = 0, 1, set()
            while number < pages:
                data = await self._get({**query, "page[number]": number})
                meta = data.get("meta") if isinstance(data, dict) else None
                pages, total = _count(meta, "pageCount"), _count(meta, "totalCount")
                totals.add(total)
                items = _with_entries(data)
                if items:
                    yield Page(items)
                number += 1
            if len(totals) == 1:
                return

    async def _get(self, params: dict[str, Any]) -> Any:
        try:
            return await self.http.request_json("GET", "api", ORDERS, params=params,
                                                headers={"Content-Type": JSON_API, "Accept": JSON_API})
        except RetryDeferred as exc:  # every retry spent
            if _could_not_connect(exc):
                raise RetryDeferred(
                    "Kaspi unreachable: no connection after every retry; Kaspi is reported to answer only "
                    "from Kazakhstan IP addresses and to time out without a browser User-Agent: set `proxy` "
                    "(a proxy in Kazakhstan) or `user_agent` for this account in marketplaces/kaspi.toml",
                    marketplace=MARKETPLACE, endpoint=f"GET {ORDERS}") from exc
            raise


def _could_not_connect(exc: BaseException) -> bool:
    """Whether the last try failed to connect at all (not a slow or refused answer)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx.ConnectTimeout | httpx.ConnectError):
            return True
        cause = cause.__cause__
    return False


def describe_kaspi_error(response: httpx.Response) -> PlatformErrorInfo:
    """Kaspi's error body is JSON:API: {"errors": [{"title": "…"}]} (kaspi.md §5)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    titles = [e.get("title") or e.get("detail") for e in errors if isinstance(e, dict)] \
        if isinstance(errors, list) else []
    text = "; ".join(str(t) for t in titles if t)
    return PlatformErrorInfo(text) if text else describe_json_error(response)


def _count(meta: Any, field: str) -> int:
    value = meta.get(field) if isinstance(meta, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FatalApiError(f"the answer's meta.{field} is not a count", marketplace=MARKETPLACE,
                            endpoint=f"GET {ORDERS}")
    return value


def _orders_of(data: Any) -> list[dict[str, Any]]:
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise FatalApiError("the answer has no 'data' list", marketplace=MARKETPLACE, endpoint=f"GET {ORDERS}")
    return [i if isinstance(i, dict) else {"_not_an_object": i} for i in items]


def _with_entries(data: Any) -> list[dict[str, Any]]:
    """The page's orders, each with its entries from `included` under `_entries` (JSON:API keeps
    them apart: `relationships.entries.data` names them, `included[]` holds them)."""
    orders = _orders_of(data)
    included = data.get("included") if isinstance(data, dict) else None
    by_id = {(i.get("type"), i.get("id")): i for i in included or () if isinstance(i, dict)}
    for order in orders:
        related = ((order.get("relationships") or {}).get("entries") or {}).get("data")
        if isinstance(related, list):
            order["_entries"] = [by_id.get((r.get("type"), r.get("id"))) for r in related if isinstance(r, dict)]
    return orders
