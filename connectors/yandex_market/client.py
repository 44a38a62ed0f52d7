"""Yandex Market endpoints, pagination and auth; yields raw pages, maps nothing.

Orders: `POST /v1/businesses/{businessId}/orders` filtered by update time, so one window holds
every order that changed in it, whatever its age: Market also filters by creation date, by
default "the last 30 days" (`OrderDatesFilterDTO`), so each update window is read in creation
chunks of at most 30 days back to the account's history start (see `creation_chunks`). DBS
orders that are still active get their buyer id from
`GET /v2/campaigns/{campaignId}/orders/{orderId}/buyer`, attached as `_buyer` (id only; names
and the substitute phone are dropped at once). Reviews: `POST /v2/businesses/{businessId}/
goods-feedback` by creation time, each commented one with the shop's own comments attached as
`_comments` from `…/goods-feedback/comments`. Chats (for `send_chat_message`): `…/chats` lists an
order's or a return's chat, `…/chats/new` opens one, `…/chats/message` writes to it and
`…/chats/history` reads it back; buyer names are never kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from connectors.auth import HeaderAuth
from connectors.base import Page, Window
from connectors.convert import MOSCOW
from connectors.errors import AuthError, FatalApiError
from connectors.http import ApiClient, PlatformErrorInfo, ResponseAction, RetryPolicy
from connectors.ratelimit import RateLimiter
from connectors.yandex_market.limits import (
    REMAINING_HEADER,
    RETRY_HINT_HEADER,
    ParallelLimitTransport,
    endpoint_groups,
)
from connectors.yandex_market.settings import YandexMarketAccountSettings

__all__ = [
    "ACTIVE_STATUSES",
    "CHATS_PAGE_LIMIT",
    "HISTORY_PAGE_LIMIT",
    "ORDERS_CREATION_SPAN",
    "ORDERS_MAX_SPAN",
    "REVIEWS_MAX_SPAN",
    "YandexMarketClient",
    "creation_chunks",
    "describe_ym_error",
    "market_time",
]

MARKETPLACE = "yandex_market"
log = logging.getLogger("loyalsync.yandex_market")

# getOrderBuyerInfo answers only while an order is in one of these (yandex_market.md §3).
ACTIVE_STATUSES = frozenset({"PROCESSING", "DELIVERY", "PICKUP"})
ORDERS_MAX_SPAN = timedelta(days=30)  # "max date range 30 days per request"
# OrderDatesFilterDTO: creationDateFrom..creationDateTo "не больше 30 дней", dates YYYY-MM-DD,
# the end excluded: a chunk [from, from + 30 days) names 30 whole Moscow dates.
ORDERS_CREATION_SPAN = timedelta(days=30)
_DAY = timedelta(days=1)
REVIEWS_MAX_SPAN = timedelta(days=182)  # dateTimeFrom..dateTimeTo: at most 6 months
# Both review bounds are exclusive, and whether the order update bounds are is not documented:
# every request starts one second early (times have whole seconds), so a record stamped exactly
# at the window start is never lost; reading it twice is harmless (natural-key upserts).
_EARLY = timedelta(seconds=1)
CHATS_PAGE_LIMIT = 20  # getChats: "do not pass a limit above 20"
HISTORY_PAGE_LIMIT = 100  # getChatHistory: PageLimit100


def describe_ym_error(response: httpx.Response) -> PlatformErrorInfo:
    """`{"status": "ERROR", "errors": [{"code", "message"}]}` -> "CODE: message; …"."""
    try:
        body = response.json()
    except ValueError:
        return PlatformErrorInfo()
    errors = body.get("errors") if isinstance(body, dict) else None
    parts = []
    for error in errors if isinstance(errors, list) else ():
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
            parts.append(": ".join(str(p) for p in (code, message) if isinstance(p, str) and p))
    return PlatformErrorInfo(message="; ".join(p for p in parts if p),
                             request_id=response.headers.get("X-Request-Id", ""))


def market_time(value: datetime) -> str:
    """An aware time as Market writes it: ISO 8601 in Moscow time with its +03:00 offset."""
    return value.astimezone(MOSCOW).isoformat(timespec="seconds")


class YandexMarketClient:
    """Reads one Yandex Market business's orders and reviews page by page."""

    def __init__(self, settings: YandexMarketAccountSettings, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None,
                 user_agent: str | None = None):
        """`user_agent`: the connector's; else the account's `user_agent`, else `loyalsync/<version>`."""
        self.settings = settings
        token = settings.token.get_secret_value()
        self.transport = ParallelLimitTransport(transport, limit=settings.parallel_requests)
        self.http = ApiClient(
            marketplace=MARKETPLACE,
            base_urls=settings.base_urls,
            auth=HeaderAuth({"Api-Key": token}, secrets=[token]),  # no "Bearer": Market rejects a prefixed key
            user_agent=user_agent or settings.user_agent,
            limiter=RateLimiter(endpoint_groups(settings.business_id), overrides=settings.rate_limits,
                                clock=clock, sleep=sleep),
            error_mapping={420: ResponseAction.RATE_LIMITED},  # Market's 429
            retry_after_headers=(RETRY_HINT_HEADER, "Retry-After"),
            remaining_header=REMAINING_HEADER,
            describe_error=describe_ym_error,
            transport=self.transport,
            retry=RetryPolicy(request_deadline=settings.request_timeout_seconds),
            clock=clock,
            sleep=sleep,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- orders ----------------------------------------------------------------------------------

    async def orders(self, window: Window, *, history: timedelta) -> AsyncIterator[Page]:
        """Orders whose last update falls in `window` and that were created at most `history`
        before its end (the stream's `start_history`), DBS buyers of active ones attached.

        Without creation dates Market answers only orders created in the last 30 days
        (`OrderDatesFilterDTO` defaults), so a late return of an older order would never be seen:
        each update span is asked once per creation chunk (`creation_chunks`), both filters in
        every request. The chunks are disjoint, so an order comes once per span. The other
        filters of GetBusinessOrdersRequest apply only when sent; `fake: false` leaves Market's
        test orders out on purpose.
        """
        path = f"/v1/businesses/{self.settings.business_id}/orders"
        for start, end in _spans(window, ORDERS_MAX_SPAN):
            for created_from, created_to in creation_chunks(end - history, end):
                body: dict[str, Any] = {
                    "dates": {"creationDateFrom": created_from.isoformat(), "creationDateTo": created_to.isoformat(),
                              "updateDateFrom": market_time(start), "updateDateTo": market_time(end)},
                    "fake": False,
                }
                if self.settings.campaign_ids:
                    body["campaignIds"] = list(self.settings.campaign_ids)
                async for data in self._pages(path, body, self.settings.orders_page_size, None):
                    orders = _list_field(data, "orders", path)
                    await _all(self._attach_buyer(o) for o in orders if _wants_buyer(o))
                    if orders:
                        yield Page(orders)

    async def _attach_buyer(self, order: dict[str, Any]) -> None:
        path = f"/v2/campaigns/{order['campaignId']}/orders/{order['orderId']}/buyer"
        try:
            data = await self.http.request_json("GET", "api", path)
        except AuthError:
            raise
        except FatalApiError as exc:
            # The order left PROCESSING/DELIVERY/PICKUP between the list and this call.
            log.debug("no buyer info for order %s: %s", order["orderId"], exc)
            return
        result = data.get("result") if isinstance(data, dict) else None
        buyer_id = result.get("id") if isinstance(result, dict) else None
        if isinstance(buyer_id, str) and buyer_id:
            order["_buyer"] = {"id": buyer_id}  # nothing else: names and phone never leave here

    # -- reviews ---------------------------------------------------------------------------------

    async def feedbacks(self, window: Window) -> AsyncIterator[Page]:
        """Reviews created in `window`, each commented one with the shop's comments attached.

        What Market filters unasked (GetGoodsFeedbackRequest, yandex_market.md §4): without
        `dateTimeFrom` only the 6 months before `dateTimeTo` (both bounds are always sent here);
        `reactionStatus` "by default all reviews" and `paid`, `ratingValues`, `offerIds` filter
        only when sent, so nothing else is left out. Reviews deleted by their author or by
        Market are never listed: one deleted after it was stored stays in the store as it was.
        """
        path = f"/v2/businesses/{self.settings.business_id}/goods-feedback"
        for start, end in _spans(window, REVIEWS_MAX_SPAN):
            body = {"dateTimeFrom": market_time(start), "dateTimeTo": market_time(end)}
            async for data in self._pages(path, body, self.settings.feedbacks_page_size, "result"):
                feedbacks = _list_field(data, "feedbacks", path)
                await _all(self._attach_comments(f) for f in feedbacks if _commented(f))
                if feedbacks:
                    yield Page(feedbacks)

    async def _attach_comments(self, feedback: dict[str, Any]) -> None:
        # The shop's own words only: buyers' comments and every author name stay out.
        feedback["_comments"] = await self.shop_comments(feedback["feedbackId"])

    async def shop_comments(self, feedback_id: int) -> list[dict[str, Any]]:
        """The shop's comments (author type BUSINESS) on one review: id, text, parentId, status.

        Market leaves out comments deleted by users or by Market (getGoodsFeedbackComments);
        `sourceType` defaults to SELLER, the shop itself, so it is not sent.
        """
        path = f"/v2/businesses/{self.settings.business_id}/goods-feedback/comments"
        comments: list[dict[str, Any]] = []
        async for data in self._pages(path, {"feedbackId": feedback_id}, 50, "result"):
            for comment in _list_field(data, "comments", path):
                author = comment.get("author") if isinstance(comment, dict) else None
                if isinstance(author, dict) and author.get("type") == "BUSINESS":
                    comments.append({k: comment.get(k) for k in ("id", "text", "parentId", "status")})
        return comments

    async def create_comment(self, feedback_id: int, text: str) -> str:
        """Publish the shop's comment on a review (`comments/update` without `comment.id`).

        Returns the new comment's id. Sent once: a timeout or 5xx raises, as the comment may exist.
        """
        path = f"/v2/businesses/{self.settings.business_id}/goods-feedback/comments/update"
        body = await self.http.request_json("POST", "api", path, idempotent=False,
                                            json={"feedbackId": feedback_id, "comment": {"text": text}})
        result = body.get("result") if isinstance(body, dict) else None
        comment_id = result.get("id") if isinstance(result, dict) else None
        if not isinstance(comment_id, int) or isinstance(comment_id, bool):
            raise FatalApiError("response has no 'result.id'", marketplace=MARKETPLACE, endpoint=f"POST {path}")
        return str(comment_id)

    # -- chats -----------------------------------------------------------------------------------
    # A chat's context is the order (ORDER, id = orderId) or, when `return_id` is given, one of its
    # returns (RETURN, id = returnId). The deprecated `orderId` fields (off on 2026-10-19) are not
    # sent; `context` / `contexts` replace them.

    async def order_chats(self, order_id: int, *, return_id: int | None = None) -> list[dict[str, Any]]:
        """The order's (or return's) buyer chats, not disputes: `{chatId, type, status, context}`.

        Chats whose context is not the one asked for are dropped, so a filter Market ignored can
        never send a message to another buyer. The buyer's name and public id are not kept.
        """
        path = f"/v2/businesses/{self.settings.business_id}/chats"
        # GetChatsRequest filters only by what is sent: every status of the context's CHATs.
        context = _chat_context(order_id, return_id)
        chats: list[dict[str, Any]] = []
        body = {"contexts": [context], "types": ["CHAT"]}
        async for data in self._pages(path, body, CHATS_PAGE_LIMIT, "result"):
            for chat in _list_field(data, "chats", path):
                chat_id = _positive_id(chat.get("chatId") if isinstance(chat, dict) else None, path)
                ctx = chat.get("context")
                ctx = ctx if isinstance(ctx, dict) else {}
                if chat.get("type") == "CHAT" and _same_context(chat, ctx, context):
                    chats.append({"chatId": chat_id, "type": chat["type"], "status": chat.get("status"),
                                  "context": {k: ctx.get(k) for k in ("type", "orderId", "returnId")}})
        return chats

    async def create_chat(self, order_id: int, *, return_id: int | None = None) -> int:
        """Open the seller's chat about an order (or a return); Market answers with an earlier
        one of the same context if there is one. Returns its `chatId`. Sent once, as every write.
        """
        path = f"/v2/businesses/{self.settings.business_id}/chats/new"
        body = await self.http.request_json("POST", "api", path, idempotent=False,
                                            json={"context": _chat_context(order_id, return_id)})
        result = body.get("result") if isinstance(body, dict) else None
        return _positive_id(result.get("chatId") if isinstance(result, dict) else None, path)

    async def send_chat_message(self, chat_id: int, text: str) -> None:
        """Write `text` to the chat. Sent once: a timeout or 5xx raises, as the message may be there.

        The answer is an empty `{"status": "OK"}`: the 2xx itself says the message was sent, so
        its body is not checked (failing on it would hide a message the buyer has already got).
        """
        path = f"/v2/businesses/{self.settings.business_id}/chats/message"
        await self.http.request_json("POST", "api", path, idempotent=False, empty_body={},
                                     params={"chatId": chat_id}, json={"message": text})

    async def chat_history(self, chat_id: int) -> list[dict[str, Any]]:
        """Every message of the chat, page by page: `{messageId, createdAt, sender, message}`
        (`message` is None for a message of files only; the files are not kept)."""
        path = f"/v2/businesses/{self.settings.business_id}/chats/history"
        # No `messageIdFrom` (GetChatHistoryRequest): the whole history, from the first message.
        messages: list[dict[str, Any]] = []
        async for data in self._pages(path, {}, HISTORY_PAGE_LIMIT, "result", query={"chatId": chat_id}):
            for message in _list_field(data, "messages", path):
                if not isinstance(message, dict) or not isinstance(message.get("sender"), str):
                    raise FatalApiError("a chat message has no 'sender'", marketplace=MARKETPLACE,
                                        endpoint=f"POST {path}")
                text = message.get("message")
                messages.append({"messageId": _positive_id(message.get("messageId"), path),
                                 "createdAt": message.get("createdAt"), "sender": message["sender"],
                                 "message": text if isinstance(text, str) else None})
        return messages

    # -- paging ----------------------------------------------------------------------------------

    async def _pages(self, path: str, body: dict[str, Any], limit: int,
                     envelope: str | None, query: Mapping[str, Any] | None = None,
                     ) -> AsyncIterator[dict[str, Any]]:
        """Each page's object (`envelope` unwrapped), following `paging.nextPageToken`.

        Every Market list the client reads (orders, goods-feedback, its comments, chats, chat
        history) pages this way: `pageToken` "if absent, the first page is returned; pass the
        `nextPageToken` of the last answer" (spec `AliasedPageToken`), and the token is absent on
        the last page (yandex_market.md §3, `PackagingForwardScrollingPagerDTO`). Nothing says a
        short or empty page is the last, so neither ends the loop.
        """
        token: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {**(query or {}), "limit": limit}
            if token:
                params["page_token"] = token
            data = await self.http.request_json("POST", "api", path, params=params, json=body)
            if envelope is not None:
                data = data.get(envelope) if isinstance(data, dict) else None
            if not isinstance(data, dict):
                raise FatalApiError(f"response has no '{envelope or 'orders'}' object",
                                    marketplace=MARKETPLACE, endpoint=f"POST {path}")
            yield data
            paging = data.get("paging")
            token = paging.get("nextPageToken") if isinstance(paging, dict) else None
            if not isinstance(token, str) or not token:
                return  # yandex_market.md §3: nextPageToken absent on the last page
            if token in seen:
                raise FatalApiError("the platform handed out a page token twice; stopping so that "
                                    "nothing is skipped", marketplace=MARKETPLACE,
                                    endpoint=f"POST {path}")
            seen.add(token)


def _spans(window: Window, longest: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """Request bounds covering `window`, each widened one second early and within `longest`."""
    start = window.start
    while start < window.end:
        end = min(start - _EARLY + longest, window.end)
        yield start - _EARLY, end
        start = end


def creation_chunks(floor: datetime, end: datetime) -> Iterator[tuple[date, date]]:
    """[creationDateFrom, creationDateTo) pairs of at most 30 days covering every order created
    from `floor` to `end`.

    Market's creation filter is a Moscow calendar date (`YYYY-MM-DD`, yandex_market.md §8), the
    start included and the end not (`OrderDatesFilterDTO`). Both ends are widened by a day: a
    date boundary read in another time zone, or a clock a little off, can then only make a
    chunk read more, never miss an order. With the orders stream's 180-day history that is
    7 chunks per update window, so a 10-minute poll costs 7 requests (42 an hour, plus pages)
    of getBusinessOrders' 10,000 an hour.
    """
    first = floor.astimezone(MOSCOW).date() - _DAY
    stop = end.astimezone(MOSCOW).date() + 2 * _DAY  # end's own date, then the widening day
    while first < stop:
        last = min(first + ORDERS_CREATION_SPAN, stop)
        yield first, last
        first = last


def _wants_buyer(order: Any) -> bool:
    if not isinstance(order, dict) or order.get("programType") != "DBS":
        return False
    if order.get("status") not in ACTIVE_STATUSES:
        return False
    return all(isinstance(order.get(k), int) and not isinstance(order.get(k), bool)
               for k in ("orderId", "campaignId"))


def _commented(feedback: Any) -> bool:
    if not isinstance(feedback, dict) or not isinstance(feedback.get("feedbackId"), int):
        return False
    stats = feedback.get("statistics")
    count = stats.get("commentsCount") if isinstance(stats, dict) else None
    return isinstance(count, int) and count > 0


async def _all(calls: Iterator[Coroutine[Any, Any, None]]) -> None:
    """Run the calls concurrently (the transport keeps at most 4 in flight); first error wins."""
    tasks = [asyncio.ensure_future(c) for c in calls]
    if not tasks:
        return
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _list_field(body: dict[str, Any], field: str, path: str) -> list[Any]:
    value = body.get(field)
    if value is None and field in body:
        return []
    if not isinstance(value, list):
        raise FatalApiError(f"response has no '{field}' list", marketplace=MARKETPLACE,
                            endpoint=f"POST {path}")
    return value


def _chat_context(order_id: int, return_id: int | None) -> dict[str, Any]:
    """`ChatContextDTO`: the order's chat, or the chat of one of its returns."""
    return {"type": "ORDER", "id": order_id} if return_id is None else {"type": "RETURN", "id": return_id}


def _same_context(chat: dict[str, Any], ctx: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether a listed chat is about the asked-for order or return (`GetChatInfoDTO.context`)."""
    if ctx.get("type") != wanted["type"]:
        return False
    if wanted["type"] == "RETURN":
        return ctx.get("returnId") == wanted["id"]
    return wanted["id"] in (ctx.get("orderId"), chat.get("orderId"))  # the latter is deprecated


def _positive_id(value: Any, path: str) -> int:
    """A Market int64 id (chatId, messageId); anything else is a broken answer."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise FatalApiError("response has no usable id (chatId or messageId)", marketplace=MARKETPLACE,
                        endpoint=f"POST {path}")
