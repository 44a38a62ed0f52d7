"""Ozon Seller API endpoints, pagination and auth; yields raw pages, maps nothing.

Orders are postings: FBS and rFBS from `POST /v4/posting/fbs/list`, FBO from
`POST /v3/posting/fbo/list`, both cursor-paged (`cursor`/`has_next`, at most 100 a page). The v3
FBS and v2 FBO lists are deprecated ("disabled from 1 June 2026", ozon.md §0) and not used.
Reviews come from `POST /v2/review/list` (`last_id`/`has_next`), each with the comments of
`POST /v1/review/comment/list` attached under `_comments` when it has any, so the mapping can
tell whether the seller answered.

Writes: review comments, promo-code vouchers and buyer chat messages (`/v1/chat/start`,
`/v1/chat/send/message`, read back with `/v3/chat/history`), each sent once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.base import Page, Window
from connectors.errors import AuthError, FatalApiError, RetriableApiError, StreamUnavailable
from connectors.http import ApiClient, PlatformErrorInfo, RetryPolicy
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

MARKETPLACE = "ozon"
FBS_LIST = "/v4/posting/fbs/list"
FBO_LIST = "/v3/posting/fbo/list"
REVIEW_LIST = "/v2/review/list"
REVIEW_COMMENTS = "/v1/review/comment/list"
COMMENT_CREATE = "/v1/review/comment/create"
VOUCHER_CREATE = "/v1/seller-actions/create/voucher"
SELLER_ACTIONS = "/v1/seller-actions/list"
SELLER_ACTIONS_PAGE = 100  # `limit*`: 1..100 (v1SellerActionsListRequest)
CHAT_START = "/v1/chat/start"
CHAT_SEND = "/v1/chat/send/message"
CHAT_HISTORY = "/v3/chat/history"
CHAT_HISTORY_PAGE = 1000  # `limit`: default 50, at most 1000

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

# gRPC status codes Ozon's gateway puts in `code` (ozon.md §4.3).
_GRPC_CODES = {
    1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
    6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
    10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
    16: "UNAUTHENTICATED",
}
# Ozon's words for credentials it refuses (official error table, ozon.md §1/§4.3): "Invalid Api-Key,
# please check the key and try again", "Api-key is deactivated, …", "Api-Key is missing a required
# role for a method", "Api-Key is restricted to specific IP addresses", "403 Offer not signed", and a
# bad Client-Id ("Client-Id header value should be positive integer", [3p]); gRPC code 16 reads as
# "UNAUTHENTICATED: …". A 403 on a review method without these words is the missing subscription.
_KEY_PROBLEM = re.compile(r"api[- _]?key|client[- _]?id|offer not signed|unauthenticated", re.I)
_SUBSCRIPTION_HINT = (
    "Ozon withholds the reviews API from this seller: it needs the «Управление отзывами» (review "
    "management) or Premium Pro subscription. Subscribe in the seller cabinet, or disable "
    "streams.reviews for this account"
)
_CHAT_SUBSCRIPTION_HINT = (
    "Ozon withholds seller-to-buyer chat from this seller: starting a chat and sending messages "
    "need the Premium Plus or Premium Pro subscription. Subscribe in the seller cabinet, or stop "
    "proposing chat messages for this account"
)


def describe_ozon_error(response: httpx.Response) -> PlatformErrorInfo:
    """Ozon's `{code, message, details}` error body as "CODE_NAME: message"."""
    try:
        body = response.json()
    except ValueError:
        return PlatformErrorInfo()
    if not isinstance(body, dict):
        return PlatformErrorInfo()
    code, message = body.get("code"), body.get("message")
    # `code` is an int32 by the schema but a string in some official examples (ozon.md §7.5).
    if isinstance(code, int) and not isinstance(code, bool):
        name = _GRPC_CODES.get(code, f"code {code}")
    else:
        name = code if isinstance(code, str) else ""
    parts = [p for p in (name, message if isinstance(message, str) else "") if p]
    return PlatformErrorInfo(": ".join(parts), response.headers.get("X-Request-Id", ""))


def token_rejected(status: int, info: PlatformErrorInfo) -> bool:
    """Whether an error answer says the Api-Key or Client-Id is refused, whatever its status.

    The status is not documented (ozon.md §4.3, §8); live probes ([3p]) saw "Invalid Api-Key" as a
    404 with gRPC code 5 and a malformed Client-Id as a 400, so the words decide, on any 4xx but
    a 429 (a rate limit is never the key's fault).
    """
    return 400 <= status < 500 and status != 429 and _KEY_PROBLEM.search(info.message) is not None


def ozon_time(moment: datetime) -> str:
    """A filter bound in Ozon's `YYYY-MM-DDThh:mm:ssZ` pattern (UTC, whole seconds, floored).

    Flooring both ends keeps consecutive windows contiguous whether Ozon reads `to` as inclusive
    or not; an instant exactly on a boundary may be read twice, which the upserts absorb.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OzonClient:
    """Reads one Ozon seller account's postings and reviews page by page."""

    def __init__(self, settings: OzonAccountSettings, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None):
        self.settings = settings
        token = settings.token.get_secret_value()
        self.http = ApiClient(
            marketplace=MARKETPLACE,
            base_urls=settings.base_urls,
            headers={"Client-Id": settings.client_id, "Api-Key": token},
            secrets=[token] if token else [],
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
        follows status changes of postings of any age up to a year; the first does not depend on
        whether Ozon counts a posting's creation as a status change (not documented).
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
        """FBO postings created inside `window`; the v3 FBO list has no status-change filter."""
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
            postings = _list_field(body, "postings", endpoint)
            if postings:
                yield Page(postings)
            # ozon.md §2.1/§2.4, spec: "has_next: true, если в ответе вернулись не все отправления";
            # a page shorter than `limit` is not the end while it is true.
            if not _has_next(body):
                return
            cursor = _next_token(body, "cursor", cursor, endpoint)

    # -- reviews --------------------------------------------------------------------------------

    async def reviews(self, window: Window) -> AsyncIterator[Page]:
        """Reviews published inside `window`, oldest first, each with its comments if it has any."""
        endpoint = f"POST {REVIEW_LIST}"
        filters = {"published_from": ozon_time(window.start), "published_to": ozon_time(window.end),
                   "order_status": "ALL", "status": "ALL"}
        last_id = ""
        while True:
            body = await self._review_call(REVIEW_LIST, {
                "filters": filters, "last_id": last_id, "limit": self.settings.reviews_page_size,
                "sort_dir": "ASC",
            })
            reviews = _list_field(body, "reviews", endpoint)
            await self._attach_comments(reviews)
            if reviews:
                yield Page(reviews)
            # ozon.md §3.1, spec: "has_next: true, если в ответе вернули не все отзывы"; then the
            # next page starts after `last_id`, "идентификатор последнего отзыва на странице".
            if not _has_next(body):
                return
            last_id = _next_token(body, "last_id", last_id, endpoint)

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
            comments = _list_field(body, "comments", endpoint)
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

    async def create_comment(self, review_id: str, text: str) -> str:
        """Post the seller's comment on a review and mark it processed; return the `comment_id`.

        Sent once: a timeout or 5xx raises, since the comment may exist (see `find_done`).
        """
        body = await self._review_call(COMMENT_CREATE, {
            "review_id": review_id, "text": text, "mark_review_as_processed": True,
        }, idempotent=False)
        comment_id = body.get("comment_id") if isinstance(body, dict) else None
        if not isinstance(comment_id, str | int) or isinstance(comment_id, bool) or comment_id == "":
            raise FatalApiError("response has no 'comment_id'", marketplace=MARKETPLACE,
                                endpoint=f"POST {COMMENT_CREATE}")
        return str(comment_id)

    async def create_voucher(self, body: dict[str, Any]) -> str:
        """Create a promo-code promotion (beta); return its `action_id`. Sent once, like a comment."""
        answer = await self.http.request_json("POST", "api", VOUCHER_CREATE, json=body, idempotent=False)
        action_id = answer.get("action_id") if isinstance(answer, dict) else None
        if not isinstance(action_id, str | int) or isinstance(action_id, bool) or action_id == "":
            raise FatalApiError("response has no 'action_id'", marketplace=MARKETPLACE,
                                endpoint=f"POST {VOUCHER_CREATE}")
        return str(action_id)

    async def seller_actions(self, search: str) -> list[dict[str, Any]]:
        """The seller's own promotions whose title contains `search`, every status, all pages.

        Items are `actions[]{action_id, action_parameters{title, …}, …}` and the answer carries
        `total` ("общее количество акций"), per the spec's `v1SellerActionsListResponse`. The
        title is checked here too in case Ozon's `search` matches loosely.
        """
        endpoint = f"POST {SELLER_ACTIONS}"
        offset, out, seen = 0, [], set()
        while True:
            body = await self.http.request_json("POST", "api", SELLER_ACTIONS, json={
                "search": search, "limit": SELLER_ACTIONS_PAGE, "offset": offset,
            })
            actions = _list_field(body, "actions", endpoint)
            # The end, per the spec: an empty page, or `offset` reaching `total`. Never "fewer than
            # limit": a short page is read past while `total` says more remain.
            if not actions:
                return out
            ids = {str(_action_id(a)) for a in actions}
            if ids <= seen:
                raise FatalApiError("the next page repeats promotions already read (offset ignored?); "
                                    "stopping rather than loop", marketplace=MARKETPLACE, endpoint=endpoint)
            seen |= ids
            out.extend(a for a in actions if isinstance(a, dict) and search in action_title(a))
            offset += len(actions)
            total = body.get("total") if isinstance(body, dict) else None
            if isinstance(total, int) and not isinstance(total, bool) and offset >= total:
                return out

    # -- chats (Premium Plus/Pro) ------------------------------------------------------------

    async def start_chat(self, posting_number: str) -> str:
        """The `chat_id` of a posting's chat, opening it if there is none yet.

        The spec does not say what a second start for the same posting returns. A chat belongs to
        one posting, so it is read as returning the existing chat and creating nothing
        (UNCONFIRMED; the emulator does so). Sent once all the same: it may create a chat.
        A refusal (FBO, window closed, unknown posting) raises FatalApiError.
        """
        body = await self._subscribed(CHAT_START, {"posting_number": posting_number},
                                      _CHAT_SUBSCRIPTION_HINT, idempotent=False)
        result = body.get("result") if isinstance(body, dict) else None
        chat_id = result.get("chat_id") if isinstance(result, dict) else None
        if not isinstance(chat_id, str) or not chat_id.strip():
            raise FatalApiError("response has no 'result.chat_id'", marketplace=MARKETPLACE,
                                endpoint=f"POST {CHAT_START}")
        return chat_id

    async def send_chat_message(self, chat_id: str, text: str) -> None:
        """Send plain `text` (1..1000 characters) into a chat; Ozon answers `{"result": "success"}`.

        Sent once. A 200 without "success" raises RetriableApiError, not a refusal: the message
        may be there, and only reading the chat (the outbox's `find_done`) can tell.
        """
        body = await self._subscribed(CHAT_SEND, {"chat_id": chat_id, "text": text},
                                      _CHAT_SUBSCRIPTION_HINT, idempotent=False)
        if not isinstance(body, dict) or body.get("result") != "success":
            raise RetriableApiError("answer is not {\"result\": \"success\"}; the message may have been "
                                    "sent", marketplace=MARKETPLACE, endpoint=f"POST {CHAT_SEND}")

    async def chat_history(self, chat_id: str) -> list[dict[str, Any]]:
        """Every message of a chat, newest first (`direction: Backward`, Ozon's default).

        Paged by `from_message_id` = the smallest id seen. Whether Ozon repeats that message on
        the next page is undocumented, so repeats are dropped; a page with nothing new while
        `has_next` is true raises rather than loop. A message without a usable `message_id`
        raises too: skipping it could hide the very message a caller is looking for.
        """
        endpoint = f"POST {CHAT_HISTORY}"
        body: dict[str, Any] = {"chat_id": chat_id, "direction": "Backward", "limit": CHAT_HISTORY_PAGE}
        seen: set[int] = set()
        out: list[dict[str, Any]] = []
        while True:
            answer = await self.http.request_json("POST", "api", CHAT_HISTORY, json=body)
            fresh = []
            for message in _list_field(answer, "messages", endpoint):
                message_id = _message_id(message)
                if message_id is None:
                    raise FatalApiError("a message has no usable 'message_id'", marketplace=MARKETPLACE,
                                        endpoint=endpoint)
                if message_id not in seen:
                    seen.add(message_id)
                    fresh.append(message_id)
                    out.append(message)
            # spec, `/v3/chat/history`: "has_next — признак, что в ответе вернули не все сообщения".
            if not _has_next(answer):
                return out
            if not fresh:
                raise FatalApiError("has_next is true but the page brought no new message; stopping "
                                    "rather than loop", marketplace=MARKETPLACE, endpoint=endpoint)
            # A string: uint64 ids pass 2**53, and Ozon's gateway reads 64-bit ints from strings.
            body["from_message_id"] = str(min(fresh))

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
            if exc.status != 403 or _KEY_PROBLEM.search(exc.platform_message):
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


def _action_id(action: Any) -> Any:
    """A seller action's id: `action_id` (uint64) by the spec."""
    return action.get("action_id") if isinstance(action, dict) else None


def action_title(action: Any) -> str:
    """A seller action's title: `action_parameters.title` by the spec."""
    params = action.get("action_parameters") if isinstance(action, dict) else None
    title = params.get("title") if isinstance(params, dict) else None
    return title if isinstance(title, str) else ""


def action_ref(action: Any) -> str | None:
    """A listed seller action's id as the `platform_ref` of the write that created it."""
    value = _action_id(action)
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) and value != "" else None


def _has_comments(review: dict[str, Any]) -> bool:
    amount = review.get("comments_amount")
    has_id = isinstance(review.get("id"), str | int) and review.get("id") not in ("", None)
    return has_id and isinstance(amount, int) and not isinstance(amount, bool) and amount > 0


def _message_id(message: Any) -> int | None:
    """A chat message's id as an int: uint64, sent as a number or a digit string (ozon.md §6)."""
    value = message.get("message_id") if isinstance(message, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else None


def _has_next(body: Any) -> bool:
    # An official chat example sends "true" as a string (ozon.md §7.4); accept both spellings.
    value = body.get("has_next") if isinstance(body, dict) else None
    return value is True or value == "true"


def _next_token(body: dict[str, Any], field: str, current: str, endpoint: str) -> str:
    """The next page's cursor; a missing or unmoved one with has_next=true would loop forever."""
    token = body.get(field)
    if not isinstance(token, str) or not token or token == current:
        raise FatalApiError(f"has_next is true but '{field}' did not advance; stopping so nothing "
                            "is skipped silently, the next run reads this window again",
                            marketplace=MARKETPLACE, endpoint=endpoint)
    return token


def _list_field(body: Any, field: str, endpoint: str) -> list[Any]:
    value = body.get(field) if isinstance(body, dict) else None
    if value is None and isinstance(body, dict) and field in body:
        return []
    if not isinstance(value, list):
        raise FatalApiError(f"response has no '{field}' list", marketplace=MARKETPLACE, endpoint=endpoint)
    return value
