"""Ozon Seller API endpoints, pagination and auth; yields raw pages, maps nothing.

Orders are postings: FBS and rFBS from `POST /v4/posting/fbs/list`, FBO from
`POST /v3/posting/fbo/list`, both cursor-paged (`cursor`/`has_next`, at most 100 a page). The v3
FBS and v2 FBO lists are deprecated ("disabled from 1 June 2026", ozon.md §0) and not used.
Reviews come from `POST /v2/review/list` (`last_id`/`has_next`), each with the comments of
`POST /v1/review/comment/list` attached under `_comments` when it has any, so the mapping can
tell whether the seller answered.

Every paging loop ends where Ozon's document names the end (has_next, an empty page, `total`),
never on a page shorter than its limit; each stop rule cites it. Writes (review comments,
promo-code vouchers, buyer chat messages) are in `client_writes`; the paths, the error body and
the key-refusal test in `client_common`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from connectors.auth import HeaderAuth
from connectors.base import Page, Window
from connectors.errors import AuthError, FatalApiError, StreamUnavailable
from connectors.http import ApiClient, RetryPolicy
from connectors.ozon.client_common import (
    CHAT_HISTORY,
    CHAT_SEND,
    CHAT_START,
    COMMENT_CREATE,
    FBO_LIST,
    FBS_LIST,
    KEY_PROBLEM,
    MARKETPLACE,
    REVIEW_COMMENTS,
    REVIEW_LIST,
    SELLER_ACTIONS,
    VOUCHER_CREATE,
    describe_ozon_error,
    has_next,
    list_field,
    next_token,
    ozon_time,
    token_rejected,
)
from connectors.ozon.client_writes import OzonWrites, action_ref, action_title
from connectors.ozon.settings import OzonAccountSettings
from connectors.ratelimit import EndpointGroup, Rate, RateLimiter

__all__ = [
    "CHAT_HISTORY",
    "CHAT_SEND",
    "CHAT_START",
    "COMMENT_CREATE",
    "ENDPOINT_GROUPS",
    "FBO_LIST",
    "FBS_LIST",
    "REVIEW_COMMENTS",
    "REVIEW_LIST",
    "SELLER_ACTIONS",
    "VOUCHER_CREATE",
    "OzonClient",
    "action_ref",
    "action_title",
    "describe_ozon_error",
    "ozon_time",
    "token_rejected",
]

# Ozon allows 50 requests per second per Client-Id across ALL methods and ALL tools using that
# Client-Id (ozon.md §4.1), and documents no per-method limit for postings or reviews. A bucket of
# 25/s with a burst of 5 sends at most 30 in any second: well inside 50, leaving room for the
# seller's other integrations (ozon.md recommends 20–30 rps; "many identical or erroneous requests
# can get your access restricted"). Ops can raise it with rate_limits.seller_api. Chats have no
# documented limit of their own either, so every method, chats included, shares this one group.
ENDPOINT_GROUPS = (EndpointGroup("seller_api", Rate(25, 1.0, 5), host="api"),)

# One request may cover at most a year ("PERIOD_IS_TOO_LONG"); a day short of it to be safe.
MAX_PERIOD = timedelta(days=364)
COMMENT_CONCURRENCY = 4  # comment lists fetched at once for one page of reviews (all paced)
_POSTING_BLOCKS_OFF = {"analytics_data": False, "financial_data": False, "legal_info": False}

_SUBSCRIPTION_HINT = (
    "Ozon withholds the reviews API from this seller: it needs the «Управление отзывами» (review "
    "management) or Premium Pro subscription. Subscribe in the seller cabinet, or disable "
    "streams.reviews for this account"
)


class OzonClient(OzonWrites):
    """Reads one Ozon seller account's postings and reviews page by page."""

    def __init__(self, settings: OzonAccountSettings, *,
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
            auth=HeaderAuth({"Client-Id": settings.client_id, "Api-Key": token}, secrets=[token]),
            user_agent=user_agent or settings.user_agent,
            limiter=RateLimiter(ENDPOINT_GROUPS, overrides=settings.rate_limits, clock=clock, sleep=sleep),
            # Header names seen on live 429s ([3p], ozon.md §4.2); httpx matches them case-blind.
            retry_after_headers=("Retry-After",),
            remaining_header="RateLimit-Remaining",
            describe_error=describe_ozon_error,
            token_rejected=token_rejected,
            transport=transport,
            retry=RetryPolicy(request_deadline=settings.request_timeout_seconds),
            clock=clock,
            sleep=sleep,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- postings -------------------------------------------------------------------------------

    async def fbs_postings(self, window: Window) -> AsyncIterator[Page]:
        """FBS/rFBS postings that started processing, or last changed status, inside `window`.

        Two passes: by `since`/`to` (processing start, the order date) and by
        `last_changed_status_date` (ozon.md: "use this for incremental polling"). The second pass
        follows status changes of postings up to a year old, as far back as one request may reach
        ("период … не больше одного года"), so a late change arrives on the next poll; the first
        does not depend on whether Ozon counts a posting's creation as a status change (not
        documented). No `statuses` filter is sent: every status comes back.
        """
        for start, end in _periods(window):
            async for page in self._postings(FBS_LIST, {"since": ozon_time(start), "to": ozon_time(end)}):
                yield page
        changed = {"from": ozon_time(window.start), "to": ozon_time(window.end)}
        since = ozon_time(window.end - MAX_PERIOD)
        async for page in self._postings(FBS_LIST, {"since": since, "to": ozon_time(window.end),
                                                    "last_changed_status_date": changed}):
            yield page

    async def fbo_postings(self, window: Window) -> AsyncIterator[Page]:
        """FBO postings created inside `window`, every status.

        The v3 FBO list filters by creation only (`since`, `to`, `statuses`, posting and order
        numbers): a status change of an older posting is found by the stream's periodic re-scan
        (`OzonConnector.changes_only_by_rescan`), not by this poll.
        """
        for start, end in _periods(window):
            async for page in self._postings(FBO_LIST, {"since": ozon_time(start), "to": ozon_time(end)}):
                yield page

    async def _postings(self, path: str, filter_: dict[str, Any]) -> AsyncIterator[Page]:
        cursor = ""
        endpoint = f"POST {path}"
        # No optional block is needed by the mapping: analytics, finance and legal info stay null,
        # so less data (and no buyer company details) crosses the wire. FBO has no `barcodes`.
        blocks = dict(_POSTING_BLOCKS_OFF, **({"barcodes": False} if path == FBS_LIST else {}))
        body_base = {"filter": filter_, "limit": self.settings.postings_page_size, "sort_dir": "ASC",
                     "translit": False, "with": blocks}
        while True:
            body = await self.http.request_json("POST", "api", path, json={**body_base, "cursor": cursor})
            postings = list_field(body, "postings", endpoint)
            if postings:
                yield Page(postings)
            # ozon.md §2.1/§2.4, spec: "has_next: true, если в ответе вернулись не все отправления";
            # a page shorter than `limit` is not the end while it is true.
            if not has_next(body):
                return
            cursor = next_token(body, "cursor", cursor, endpoint)

    # -- reviews --------------------------------------------------------------------------------

    async def reviews(self, window: Window) -> AsyncIterator[Page]:
        """Reviews published inside `window`, oldest first, each with its comments if it has any.

        `status` and `order_status` have no documented default, so both are sent as `ALL`: reviews
        of cancelled orders and reviews already processed are read too.
        """
        endpoint = f"POST {REVIEW_LIST}"
        filters = {"published_from": ozon_time(window.start), "published_to": ozon_time(window.end),
                   "order_status": "ALL", "status": "ALL"}
        last_id = ""
        while True:
            body = await self._review_call(REVIEW_LIST, {
                "filters": filters, "last_id": last_id, "limit": self.settings.reviews_page_size,
                "sort_dir": "ASC",
            })
            reviews = list_field(body, "reviews", endpoint)
            await self._attach_comments(reviews)
            if reviews:
                yield Page(reviews)
            # ozon.md §3.1, spec: "has_next: true, если в ответе вернули не все отзывы"; then the
            # next page starts after `last_id`, "идентификатор последнего отзыва на странице".
            if not has_next(body):
                return
            last_id = next_token(body, "last_id", last_id, endpoint)

    async def review_comments(self, review_id: str) -> list[Any]:
        """Every comment on one review that Ozon lists, oldest first (offset-paged).

        Ozon lists only "comments that passed moderation" (spec, `/v1/review/comment/list`): a
        reply still being moderated is not here yet, and the stream's lookback reads it later.
        """
        endpoint = f"POST {REVIEW_COMMENTS}"
        limit, offset, out = self.settings.comments_page_size, 0, []
        seen: set[str] = set()
        while True:
            # The schema says `filter`, an official example `filters` (ozon.md §7.2): send neither.
            body = await self._review_call(REVIEW_COMMENTS, {
                "review_id": review_id, "limit": limit, "offset": offset, "sort_dir": "ASC",
            })
            comments = list_field(body, "comments", endpoint)
            # The answer has no has_next, and its `offset` ("количество элементов в выдаче") reads
            # as either the next offset or the total (the official example fits both): the one
            # end the spec leaves no doubt about is an empty page. Never "fewer than limit".
            if not comments:
                return out
            ids = {str(c.get("id")) for c in comments if isinstance(c, dict)}
            if ids and ids <= seen:
                raise FatalApiError("the next page repeats comments already read (offset ignored?); stopping "
                                    "rather than loop", marketplace=MARKETPLACE, endpoint=endpoint)
            seen |= ids
            out.extend(comments)
            offset += len(comments)  # skip exactly what was served, however short the page

    async def _attach_comments(self, reviews: list[Any]) -> None:
        wanted = [r for r in reviews if isinstance(r, dict) and _has_comments(r)]
        if not wanted:
            return
        gate = asyncio.Semaphore(COMMENT_CONCURRENCY)

        async def attach(review: dict[str, Any]) -> None:
            async with gate:
                try:
                    review["_comments"] = await self.review_comments(str(review["id"]))
                except FatalApiError as exc:
                    # Deleted between the list and this call: store the review without comments
                    # rather than fail the stream on every run. Ozon's wrong-key answer is a 404
                    # too (`_token_rejected`): that one is an AuthError and stops the stream.
                    if exc.status != 404 or isinstance(exc, AuthError):
                        raise

        # return_exceptions: every task finishes (none is left running), then the first error wins.
        results = await asyncio.gather(*(attach(r) for r in wanted), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _review_call(self, path: str, body: dict[str, Any], *, idempotent: bool = True) -> Any:
        return await self._subscribed(path, body, _SUBSCRIPTION_HINT, idempotent=idempotent)

    async def _subscribed(self, path: str, body: dict[str, Any], hint: str, *, idempotent: bool = True) -> Any:
        """A call to a method behind a paid subscription: Ozon's 403 for a missing one becomes
        StreamUnavailable (with `hint`), unless it says the key itself is at fault (AuthError)."""
        try:
            return await self.http.request_json("POST", "api", path, json=body, idempotent=idempotent)
        except AuthError as exc:
            if exc.status != 403 or KEY_PROBLEM.search(exc.platform_message):
                raise
            raise StreamUnavailable(
                hint, marketplace=exc.marketplace, endpoint=exc.endpoint,
                status=exc.status, platform_message=exc.platform_message, request_id=exc.request_id,
            ) from exc


def _periods(window: Window) -> list[tuple[datetime, datetime]]:
    """`window` cut into spans Ozon accepts in one filter (at most MAX_PERIOD each)."""
    out, start = [], window.start
    while start < window.end:
        end = min(start + MAX_PERIOD, window.end)
        out.append((start, end))
        start = end
    return out


def _has_comments(review: dict[str, Any]) -> bool:
    amount = review.get("comments_amount")
    has_id = isinstance(review.get("id"), str | int) and review.get("id") not in ("", None)
    return has_id and isinstance(amount, int) and not isinstance(amount, bool) and amount > 0
