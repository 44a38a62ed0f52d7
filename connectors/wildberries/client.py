"""Wildberries endpoints, pagination and auth; yields raw pages, maps nothing."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx

from connectors.auth import HeaderAuth
from connectors.base import Page, Window
from connectors.convert import MOSCOW, parse_aware, parse_local, to_local_naive
from connectors.errors import FatalApiError, MalformedRecord
from connectors.http import ApiClient, PlatformErrorInfo, RetryPolicy
from connectors.ratelimit import EndpointGroup, Rate, RateLimiter
from connectors.wildberries.settings import WildberriesAccountSettings

__all__ = ["ENDPOINT_GROUPS", "FEEDBACK", "FEEDBACK_ANSWER", "WildberriesClient", "describe_wb_error"]

MARKETPLACE = "wildberries"

# WB's published budgets for a Personal token (wildberries.md §4). Statistics' burst of 10 is the
# 2026-08 figure; an older spec said 1 — a 429 then tells us, and X-Ratelimit-Retry is obeyed.
ENDPOINT_GROUPS = (
    EndpointGroup("marketplace", Rate(300, 60.0, 20), host="marketplace", cost_of_4xx=10),
    EndpointGroup("statistics", Rate(1, 60.0, 10), host="statistics"),
    EndpointGroup("feedbacks", Rate(3, 1.0, 6), host="feedbacks"),
)
FEEDBACK = "/api/v1/feedback"
FEEDBACK_ANSWER = "/api/v1/feedbacks/answer"
FEEDBACKS_MAX_SKIP = 199_990
STATUS_BATCH = 1000
STATISTICS_BATCH = 5000  # rows per page handed to the runner from one streamed statistics answer


def describe_wb_error(response: httpx.Response) -> PlatformErrorInfo:
    """Pull WB's message and request id out of any of its four error body shapes."""
    try:
        body = response.json()
    except ValueError:
        return PlatformErrorInfo()
    if not isinstance(body, dict):
        return PlatformErrorInfo()
    errors = body.get("errors")  # statistics: {"errors": [...] | "..."}
    if isinstance(errors, list):
        message = "; ".join(str(e) for e in errors)
    elif isinstance(errors, str):
        message = errors
    else:
        parts = [body.get(k) for k in ("title", "detail", "errorText", "code", "message")]
        message = ": ".join(str(p) for p in parts if isinstance(p, str) and p)
    request_id = body.get("requestId")
    return PlatformErrorInfo(message=message, request_id=request_id if isinstance(request_id, str) else "")


class WildberriesClient:
    """Reads WB's order and review endpoints page by page for one seller account."""

    def __init__(self, settings: WildberriesAccountSettings, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None,
                 user_agent: str | None = None):
        """`user_agent`: the connector's; else the account's `user_agent`, else `loyalsync/<version>`."""
        self.settings = settings
        token = settings.token.get_secret_value()
        self.http = ApiClient(
            marketplace=MARKETPLACE,
            base_urls=settings.base_urls,
            # The spec's scheme is the raw JWT, no "Bearer" prefix (wildberries.md §1).
            auth=HeaderAuth({"Authorization": token}, secrets=[token]),
            user_agent=user_agent or settings.user_agent,
            limiter=RateLimiter(ENDPOINT_GROUPS, overrides=settings.rate_limits, clock=clock, sleep=sleep),
            retry_after_headers=("X-Ratelimit-Retry", "Retry-After"),
            remaining_header="X-Ratelimit-Remaining",
            describe_error=describe_wb_error,
            transport=transport,
            retry=RetryPolicy(request_deadline=settings.request_timeout_seconds),
            clock=clock,
            sleep=sleep,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- Marketplace API: FBS orders -----------------------------------------------------------

    async def marketplace_orders(self, window: Window) -> AsyncIterator[Page]:
        """FBS orders created in `window`, each with its current status under `_status`.

        WB filters by creation time only (dateFrom/dateTo, ≤ 30 days a call) and serves orders
        created ≤ 3 months ago (wildberries.md §2a); the stream's window and history stay inside.
        """
        date_from, date_to = _unix_bounds(window)
        limit = self.settings.orders_page_size
        next_id = 0
        while True:
            body = await self.http.request_json(
                "GET", "marketplace", "/api/v3/orders",
                params={"limit": limit, "next": next_id, "dateFrom": date_from, "dateTo": date_to},
            )
            orders = _list_field(body, "orders", "GET /api/v3/orders")
            # wildberries.md §2a: WB documents only "send next=0, then the next from the answer";
            # the end is UNCONFIRMED. So the end is an empty `orders` page or a `next` that is
            # absent, not an integer or unchanged; never a page shorter than `limit`. The window
            # (dateFrom/dateTo) bounds what the cursor walks through.
            if not orders:
                return
            await self._attach_statuses(orders)
            yield Page(orders)
            new_next = body.get("next") if isinstance(body, dict) else None
            if not isinstance(new_next, int) or isinstance(new_next, bool) or new_next == next_id:
                return
            if new_next < next_id:
                raise FatalApiError(
                    f"WB's order cursor went back from {next_id} to {new_next}; paging would repeat forever",
                    marketplace=MARKETPLACE, endpoint="GET /api/v3/orders")
            next_id = new_next

    async def _attach_statuses(self, orders: list[Any]) -> None:
        ids = [o["id"] for o in orders if isinstance(o, dict) and isinstance(o.get("id"), int)]
        found: dict[int, dict[str, Any]] = {}
        for i in range(0, len(ids), STATUS_BATCH):
            body = await self.http.request_json(
                "POST", "marketplace", "/api/v3/orders/status", json={"orders": ids[i:i + STATUS_BATCH]}
            )
            for entry in _list_field(body, "orders", "POST /api/v3/orders/status"):
                if isinstance(entry, dict) and isinstance(entry.get("id"), int):
                    found[entry["id"]] = entry
        for order in orders:
            if isinstance(order, dict):
                status = found.get(order.get("id"))  # type: ignore[arg-type]
                if status is not None:
                    order["_status"] = {"supplierStatus": status.get("supplierStatus"),
                                        "wbStatus": status.get("wbStatus")}

    # -- Statistics API: all schemes incl. FBO ------------------------------------------------

    async def statistics_orders(self, window: Window) -> AsyncIterator[Page]:
        """Rows changed since `window.start`, paged by `lastChangeDate` (Moscow time, `>=`).

        One answer holds up to ~80,000 rows (~60 MB): it is parsed as it arrives and handed on
        in batches, each with its own checkpoint, so memory stays flat during a backfill.
        """
        current = window.start
        while True:
            reached: datetime | None = None
            rows_seen = 0
            batches = self.http.stream_json_items(
                "GET", "statistics", "/api/v1/supplier/orders",
                params={"dateFrom": to_local_naive(current, MOSCOW), "flag": 0},
                batch=STATISTICS_BATCH,
            )
            async for rows in batches:
                rows_seen += len(rows)
                latest = _latest_change(rows)
                if latest is not None and (reached is None or latest > reached):
                    reached = latest
                # Rows arrive ordered by lastChangeDate, so a batch's end is a boundary read whole.
                yield Page(rows, checkpoint=reached)
            # wildberries.md §2b: "If the response is an empty array [], all orders have been
            # retrieved". The next dateFrom is the last row's lastChangeDate and WB compares with
            # `>=`, so the last rows come back again: an answer with nothing newer is the end too.
            if not rows_seen:
                return
            if reached is None:
                raise FatalApiError("no row of the answer has a readable lastChangeDate to page on",
                                    marketplace=MARKETPLACE, endpoint="GET /api/v1/supplier/orders")
            if reached <= current:
                return
            current = reached

    # -- Feedbacks API --------------------------------------------------------------------------

    async def feedbacks(self, window: Window) -> AsyncIterator[Page]:
        """Reviews created in `window`: unanswered, answered, then the archive's.

        WB archives a review once it is answered, unanswered for 30 days, or has no text and no
        photos, and does not say whether GET /api/v1/feedbacks still lists archived ones
        (wildberries.md §3). So the archive is read too and the review id dedupes.
        """
        date_from, date_to = _unix_bounds(window)
        for answered in ("false", "true"):
            params = {"isAnswered": answered, "order": "dateAsc", "dateFrom": date_from, "dateTo": date_to}
            async for items in self._take_skip("/api/v1/feedbacks", params, FEEDBACKS_MAX_SKIP):
                yield Page(items)
        async for page in self._archived_feedbacks(window):
            yield page

    async def _archived_feedbacks(self, window: Window) -> AsyncIterator[Page]:
        """Archived reviews from the newest down to the first one created before `window`.

        The archive has no date filter (take/skip/nmId/order only), so it is read newest first
        and left after the page that reaches past the window's start. Every review read is kept,
        also those outside the window: the store's key (the review id) dedupes them.
        """
        async for items in self._take_skip("/api/v1/feedbacks/archive", {"order": "dateDesc"}, None):
            yield Page(items)
            if any(created is not None and created < window.start for created in map(_created, items)):
                return

    async def _take_skip(self, path: str, params: dict[str, Any], max_skip: int | None,
                         ) -> AsyncIterator[list[Any]]:
        """The pages of a take/skip listing, each non-empty.

        wildberries.md §3: skip moves by what was actually served and the end is an empty page;
        a page shorter than `take` is not the end (WB documents no such rule).
        """
        take, skip = self.settings.feedbacks_page_size, 0
        endpoint = f"GET {path}"
        while True:
            if max_skip is not None and skip > max_skip:
                raise FatalApiError(
                    f"more reviews in one window than WB lets a client page through (skip ≤ {max_skip}); "
                    "set a smaller streams.reviews.window", marketplace=MARKETPLACE, endpoint=endpoint)
            body = await self.http.request_json("GET", "feedbacks", path, params={**params, "take": take, "skip": skip})
            data = body.get("data") if isinstance(body, dict) else None
            items = _list_field(data, "feedbacks", endpoint)
            if not items:
                return
            yield items
            skip += len(items)

    async def feedback(self, feedback_id: str) -> dict[str, Any]:
        """One feedback by id (`GET /api/v1/feedback`), answered or not."""
        body = await self.http.request_json("GET", "feedbacks", FEEDBACK, params={"id": feedback_id})
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise FatalApiError("response has no 'data' object", marketplace=MARKETPLACE,
                                endpoint=f"GET {FEEDBACK}")
        return data

    async def answer_feedback(self, feedback_id: str, text: str) -> None:
        """Post the seller's answer (204, no body); sent once, never retried after a timeout or 5xx.

        It shares the feedbacks budget (3/s for the whole category) with the reads.
        """
        # httpx sets Content-Type: application/json for `json=`, which WB insists on (400 without).
        await self.http.request("POST", "feedbacks", FEEDBACK_ANSWER, json={"id": feedback_id, "text": text},
                                idempotent=False)


def _unix_bounds(window: Window) -> tuple[int, int]:
    """WB's inclusive whole-second [dateFrom, dateTo] covering the closed-open window."""
    return math.floor(window.start.timestamp()), math.ceil(window.end.timestamp()) - 1


def _list_field(body: Any, field: str, endpoint: str) -> list[Any]:
    value = body.get(field) if isinstance(body, dict) else None
    if value is None and isinstance(body, dict) and field in body:
        return []
    if not isinstance(value, list):
        raise FatalApiError(f"response has no '{field}' list", marketplace=MARKETPLACE,
                            endpoint=endpoint)
    return value


def _created(item: Any) -> datetime | None:
    """A feedback's createdDate (it carries its offset), or None if unreadable."""
    try:
        return parse_aware(item.get("createdDate") if isinstance(item, dict) else None, "createdDate")
    except MalformedRecord:
        return None


def _latest_change(rows: list[Any]) -> datetime | None:
    """The newest parseable lastChangeDate on a page (a malformed row must not stall paging)."""
    latest = None
    for row in reversed(rows):
        if not isinstance(row, dict):
            continue
        try:
            changed = parse_local(row.get("lastChangeDate"), "lastChangeDate", MOSCOW)
        except MalformedRecord:
            continue
        if latest is None or changed > latest:
            latest = changed
    return latest
