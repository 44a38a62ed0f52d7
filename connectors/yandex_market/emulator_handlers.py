"""The Yandex Market emulator's endpoints: filters, page tokens and answers as the spec has them.

Each handler takes (request, now) and returns (status, JSON payload); `emulator._Emulator` wraps
them in auth, both limits, faults and bookkeeping. Every list endpoint pages with Market's
`paging.nextPageToken`, absent on the last page (spec `PackagingForwardScrollingPagerDTO`), and
hands each page to `FaultPlan.shorten` (the `short_page` fault), building the next token from
the records it actually served.

getBusinessOrders filters as `OrderDatesFilterDTO` says, to the letter (yandex_market.md §3):
`creationDateFrom`/`creationDateTo` are Moscow calendar dates `YYYY-MM-DD`, the start included
and the end not, at most 30 days apart (else 400); left out, they default to "30 days before
the current date" and "the current date" by the server's clock, so a client that sends only
update times never sees an order created before that; an interval under a day becomes
`creationDateFrom` + 1 day. `updateDateFrom`/`updateDateTo` are ISO 8601 date-times (here the
start included, the end not; the spec does not say) at most 30 days apart.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterator
from datetime import date, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request

from connectors.yandex_market.emulator_orders import ACTIVE, DAY, MSK_OFFSET

if TYPE_CHECKING:
    from connectors.emulation import FaultPlan
    from connectors.yandex_market.emulator_data import Chats, Dataset

__all__ = ["CHAT_MESSAGE_MAX", "COMMENT_MAX", "Endpoints", "creation_window", "error", "update_window"]

COMMENT_MAX = 4096  # GoodsFeedbackCommentText: 1..4096 characters
CHAT_MESSAGE_MAX = 4096  # SendMessageToChatRequest.message: 1..4096 characters
ORDER_DAYS = 30  # OrderDatesFilterDTO: "не больше 30 дней" between the dates
REVIEW_SPAN = 183 * DAY  # GetGoodsFeedbackRequest: "Максимальный интервал 6 месяцев"
# "must not contain the shop's contacts or links to sites other than Market": the emulator's
# stand-in check refuses any link that is not to market.yandex.ru, and e-mail addresses.
_FOREIGN_LINK = re.compile(r"(https?://|www\.)(?!market\.yandex\.ru)|[\w.+-]+@[\w-]+\.[\w.]+", re.I)
_EPOCH = date(1970, 1, 1)


def error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    """`ApiErrorResponse`: Market's error envelope."""
    return status, {"status": "ERROR", "errors": [{"code": code, "message": message}]}


def _token(offset: int) -> str:
    """Page tokens in Market's look (base64 of "{ nextId: N }")."""
    return base64.b64encode(f"{{ nextId: {offset} }}".encode()).decode()


def _offset(token: str | None) -> int | None:
    if not token:
        return 0
    try:
        text = base64.b64decode(token, validate=True).decode()
        return int(text.strip("{} ").removeprefix("nextId:").strip())
    except ValueError:
        return None


def _page_token(request: Request) -> int | None:
    """The `pageToken` (alias `page_token`) as a number; 0 for the first page, None if broken."""
    return _offset(request.query_params.get("page_token") or request.query_params.get("pageToken"))


def _paging(more: bool, next_at: int) -> dict[str, Any]:
    """`PackagingForwardScrollingPagerDTO`: a token only where another page follows."""
    return {"nextPageToken": _token(next_at)} if more else {}


def _instant(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return int(moment.timestamp()) if moment.tzinfo is not None else None


def _moscow_day(value: object) -> int | None:
    """A `YYYY-MM-DD` date as a day number (days since 1970-01-01), or None if malformed."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        return (date.fromisoformat(value) - _EPOCH).days
    except ValueError:
        return None


def _limit(request: Request, default: int, most: int = 50, *, truncate: bool = True) -> int | None:
    """The page size asked for; above `most` it is cut down (`PageLimit50Truncate`: "values >50
    are truncated"), or refused (None) where the spec only gives a maximum."""
    raw = request.query_params.get("limit")
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return None
    if value < 1 or (value > most and not truncate):
        return None
    return min(value, most)


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def creation_window(dates: dict[str, Any], now: int) -> tuple[int, int] | str:
    """[start, end) in unix seconds of `OrderDatesFilterDTO`'s creation dates, or the 400 message."""
    today = (now + MSK_OFFSET) // DAY
    days = {}
    for name, default in (("creationDateFrom", today - ORDER_DAYS), ("creationDateTo", today)):
        raw = dates.get(name)
        days[name] = default if raw is None else _moscow_day(raw)
        if days[name] is None:
            return f"{name}: expected a date in the format YYYY-MM-DD"
    start, end = days["creationDateFrom"], days["creationDateTo"]
    if end - start > ORDER_DAYS:
        return f"creationDateFrom and creationDateTo must be at most {ORDER_DAYS} days apart"
    if end - start < 1:  # "меньше суток": the spec then reads creationDateTo as creationDateFrom + 1 day
        end = start + 1
    return start * DAY - MSK_OFFSET, end * DAY - MSK_OFFSET


def update_window(dates: dict[str, Any]) -> tuple[float, float] | str:
    """[start, end) of `updateDateFrom`/`updateDateTo` (open where left out), or the 400 message."""
    raw_lo, raw_hi = dates.get("updateDateFrom"), dates.get("updateDateTo")
    lo, hi = _instant(raw_lo), _instant(raw_hi)
    if (raw_lo is not None and lo is None) or (raw_hi is not None and hi is None):
        return "updateDateFrom/updateDateTo must be ISO 8601 date-times with an offset"
    if lo is not None and hi is not None and hi - lo > ORDER_DAYS * DAY:
        return f"The date range must not exceed {ORDER_DAYS} days"
    return (-math.inf if lo is None else lo), (math.inf if hi is None else hi)


class Endpoints:
    """The handlers; `_Emulator` supplies the state they read and write."""

    data: Dataset
    chats: Chats
    faults: FaultPlan
    config: Any
    stats: Any

    async def _body(self, request: Request) -> dict[str, Any] | None:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return body if isinstance(body, dict) else None

    def _business(self, request: Request) -> bool:
        return request.path_params["business_id"] == self.config.business_id

    def _served(self, request: Request, page: list[Any], more: bool) -> tuple[list[Any], bool]:
        """The page as served (maybe cut short by a `short_page` fault) and whether more follow."""
        served = self.faults.shorten(request.url.path, page, more=more)
        return served, more or len(served) < len(page)

    # --- orders -------------------------------------------------------------------------------

    async def orders(self, request: Request, now: int) -> tuple[int, Any]:
        """getBusinessOrders: orders in creation order; the token holds the last orderId served."""
        if not self._business(request):
            return error(403, "FORBIDDEN", "Access denied to the business")
        body, limit, after = await self._body(request), _limit(request, 50), _page_token(request)
        if body is None or limit is None or after is None:
            return error(400, "BAD_REQUEST", "invalid body, limit or page_token")
        dates = body.get("dates") or {}
        if not isinstance(dates, dict):
            return error(400, "BAD_REQUEST", "dates: must be an object")
        created, updated = creation_window(dates, now), update_window(dates)
        for problem in (created, updated):
            if isinstance(problem, str):
                return error(400, "BAD_REQUEST", problem)
        table = self.data.orders
        rows = table.created_between(*created)  # type: ignore[misc]
        start = rows.start
        if after:
            k = table.index_of_id(after)
            if k is None:
                return error(400, "BAD_REQUEST", "page_token: no such page")
            start = max(start, k + 1)
        hits = self._matching_orders(range(start, min(rows.stop, table.visible_end(now))), body, updated, now)
        page = list(islice(hits, limit))
        served, more = self._served(request, page, next(hits, None) is not None)
        return 200, {"orders": [table.record(i, now) for i in served],
                     "paging": _paging(more, table.ids[served[-1]] if served else 0)}

    def _matching_orders(self, rows: range, body: dict[str, Any], updated: Any, now: int) -> Iterator[int]:
        table, campaigns = self.data.orders, body.get("campaignIds")
        lo, hi = updated
        for i in rows:
            if lo <= table.state(i, now).at < hi and (not campaigns or table.campaign_of(i) in campaigns):
                yield i

    async def buyer(self, request: Request, now: int) -> tuple[int, Any]:
        table = self.data.orders
        order_id = request.path_params["order_id"]
        self.stats.buyer_info_calls[order_id] += 1
        i = table.index_of_id(order_id)
        if i is None or table.created[i] > now or table.campaign_of(i) != request.path_params["campaign_id"]:
            return error(404, "NOT_FOUND", f"Order {order_id} not found")
        if table.program_of(i) != "DBS":
            return error(400, "BAD_REQUEST", "Buyer information is available for DBS orders only")
        if table.state(i, now).status not in ACTIVE:
            return error(400, "STATUS_NOT_ALLOWED", "Order status must be PROCESSING, DELIVERY or PICKUP")
        return 200, {"status": "OK", "result": self.data.buyers.info(table.buyer[i])}

    # --- reviews ------------------------------------------------------------------------------

    async def feedbacks(self, request: Request, now: int) -> tuple[int, Any]:
        """getGoodsFeedbacks: in publication order, created strictly between the two bounds."""
        if not self._business(request):
            return error(403, "FORBIDDEN", "Access denied to the business")
        body, limit, at = await self._body(request), _limit(request, 25, truncate=False), _page_token(request)
        if body is None or limit is None or at is None:
            return error(400, "BAD_REQUEST", "invalid body, limit (1..50) or page_token")
        lo, hi = _instant(body.get("dateTimeFrom")), _instant(body.get("dateTimeTo"))
        hi = now + 1 if hi is None else hi  # "используется текущая дата"
        lo = hi - REVIEW_SPAN if lo is None else lo  # "6 месяцев до указанной в dateTimeTo даты"
        if hi - lo > REVIEW_SPAN:
            return error(400, "BAD_REQUEST", "The interval must not exceed 6 months")
        table = self.data.reviews
        hits = [i for i in range(table.visible_end(now)) if lo < table.created[i] < hi]  # both exclusive
        page, more = hits[at: at + limit], at + limit < len(hits)
        served, more = self._served(request, page, more)
        return 200, {"status": "OK", "result": {"feedbacks": [table.record(i, now) for i in served],
                                                "paging": _paging(more, at + len(served))}}

    async def comments(self, request: Request, now: int) -> tuple[int, Any]:
        """getGoodsFeedbackComments of one review, in publication order."""
        body, limit, at = await self._body(request), _limit(request, 25, truncate=False), _page_token(request)
        source = request.query_params.get("sourceType", "SELLER")
        if body is None or limit is None or at is None or source not in ("SELLER", "ADVERTISER"):
            return error(400, "BAD_REQUEST", "invalid body, limit (1..50), page_token or sourceType")
        fid = body.get("feedbackId")
        table = self.data.reviews
        i = table.index_of_id(fid) if _is_id(fid) else None
        if not self._business(request) or i is None or table.published[i] > now:
            return error(400, "BAD_REQUEST", "feedbackId: unknown feedback")
        everything = table.comments(i, now)
        page, more = everything[at: at + limit], at + limit < len(everything)
        served, more = self._served(request, page, more)
        return 200, {"status": "OK", "result": {"comments": served, "paging": _paging(more, at + len(served))}}

    async def update_comment(self, request: Request, now: int) -> tuple[int, Any]:
        """`goods-feedback/comments/update`: create (no `comment.id`), reply (`parentId`) or edit."""
        if not self._business(request):
            return error(403, "FORBIDDEN", "Access denied to the business")
        body = await self._body(request)
        if body is None:
            return error(400, "BAD_REQUEST", "Request body must be a JSON object")
        fid, comment = body.get("feedbackId"), body.get("comment")
        if not isinstance(fid, int) or isinstance(fid, bool):
            return error(400, "BAD_REQUEST", "feedbackId: must be an integer")
        if not isinstance(comment, dict):
            return error(400, "BAD_REQUEST", "comment: must not be null")
        text, comment_id, parent_id = comment.get("text"), comment.get("id"), comment.get("parentId")
        if not isinstance(text, str):
            return error(400, "BAD_REQUEST", "comment.text: must not be null")
        if not 1 <= len(text) <= COMMENT_MAX or not text.strip():
            return error(400, "BAD_REQUEST", f"comment.text: length must be between 1 and {COMMENT_MAX}")
        if _FOREIGN_LINK.search(text):
            return error(400, "BAD_REQUEST", "comment.text: must not contain contacts or links to other sites")
        for name, value in (("comment.id", comment_id), ("comment.parentId", parent_id)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                return error(400, "BAD_REQUEST", f"{name}: must be an integer")
        table = self.data.reviews
        i = table.index_of_id(fid)
        if i is None or table.published[i] > now:
            return error(404, "NOT_FOUND", f"Feedback {fid} not found")
        if parent_id is not None and parent_id not in {c["id"] for c in table.comments(i, now)}:
            return error(404, "NOT_FOUND", f"Comment {parent_id} not found")
        # A second comment is allowed by Market; the connector's find_done keeps it from happening.
        result = table.write_comment(i, now, text, comment_id, parent_id)
        if result is None:
            return error(404, "NOT_FOUND", f"Comment {comment_id} not found")
        return 200, {"status": "OK", "result": result}

    # --- chats --------------------------------------------------------------------------------

    async def create_chat(self, request: Request, now: int) -> tuple[int, Any]:
        """`chats/new`: the chat of an order or a return; an existing one is returned as it is."""
        if not self._business(request):
            return error(403, "FORBIDDEN", "Access denied to the business")
        body = await self._body(request)
        if body is None:
            return error(400, "BAD_REQUEST", "Request body must be a JSON object")
        context = body.get("context")
        if context is None and _is_id(body.get("orderId")):
            context = {"type": "ORDER", "id": body["orderId"]}  # the deprecated form
        if not isinstance(context, dict) or not _is_id(context.get("id")):
            return error(400, "BAD_REQUEST", "context: type and id are required")
        kind, target = context.get("type"), context["id"]
        if kind not in ("ORDER", "RETURN"):  # DIRECT included: only a buyer starts one
            return error(400, "BAD_REQUEST", "context.type: must be one of ORDER, RETURN")
        table = self.data.orders
        if kind == "ORDER":
            i = table.index_of_id(target)
            if i is None or table.created[i] > now:
                return error(404, "NOT_FOUND", f"Order {target} not found")
        else:
            i = table.index_of_return(target, now)
            if i is None or table.program_of(i) == "DBS":  # return chats: FBY, FBS and Express
                return error(404, "NOT_FOUND", f"Return {target} not found")
        chat = self.chats.find(kind, target) or self.chats.open(i, now, kind)
        return 200, {"status": "OK", "result": {"chatId": chat["chatId"]}}

    async def list_chats(self, request: Request, now: int) -> tuple[int, Any]:
        """`chats`: filtered by `orderIds` (deprecated), `contexts`, `contextTypes`, `types`, `statuses`."""
        if not self._business(request):
            return error(403, "FORBIDDEN", "Access denied to the business")
        body, limit, at = await self._body(request), _limit(request, 10, 20, truncate=False), _page_token(request)
        if body is None or limit is None or at is None:
            return error(400, "BAD_REQUEST", "invalid body, limit (1..20) or page_token")
        names = ("orderIds", "contexts", "contextTypes", "types", "statuses")
        filters = {k: body.get(k) for k in names if body.get(k) is not None}
        if any(not isinstance(v, list) or not v for v in filters.values()):
            return error(400, "BAD_REQUEST", "a filter must be a non-empty list")
        hits = [c for _, c in sorted(self.chats.chats.items()) if _chat_matches(c, filters)]
        served, more = self._served(request, hits[at: at + limit], at + limit < len(hits))
        return 200, {"status": "OK", "result": {"chats": [self.chats.info(c) for c in served],
                                                "paging": _paging(more, at + len(served))}}

    def _chat(self, request: Request) -> dict[str, Any] | tuple[int, Any]:
        """The chat named by `?chatId=`, or the (status, error) to answer."""
        if not self._business(request):
            return error(403, "FORBIDDEN", "Access denied to the business")
        raw = request.query_params.get("chatId", "")
        if not raw.isdigit() or int(raw) < 1:
            return error(400, "BAD_REQUEST", "chatId: must be a positive integer")
        chat = self.chats.chats.get(int(raw))
        return chat if chat is not None else error(404, "NOT_FOUND", f"Chat {raw} not found")

    async def send_chat_message(self, request: Request, now: int) -> tuple[int, Any]:
        chat = self._chat(request)
        if isinstance(chat, tuple):
            return chat
        body = await self._body(request)
        text = body.get("message") if body else None
        if not isinstance(text, str):
            return error(400, "BAD_REQUEST", "message: must not be null")
        if not 1 <= len(text) <= CHAT_MESSAGE_MAX:
            return error(400, "BAD_REQUEST", f"message: length must be between 1 and {CHAT_MESSAGE_MAX}")
        self.chats.add_message(chat["chatId"], now, text, sender="PARTNER")
        return 200, {"status": "OK"}

    async def chat_history(self, request: Request, now: int) -> tuple[int, Any]:
        """`chats/history`: oldest first, from `messageIdFrom` on, `chat_history_page` at most per page."""
        chat = self._chat(request)
        if isinstance(chat, tuple):
            return chat
        body, limit, at = await self._body(request), _limit(request, 50, 100, truncate=False), _page_token(request)
        start = body.get("messageIdFrom") if body else None
        if body is None or limit is None or at is None or (start is not None and not _is_id(start)):
            return error(400, "BAD_REQUEST", "invalid body, limit (1..100) or page_token")
        messages = [m for m in chat["messages"] if start is None or m["messageId"] >= start]
        size = min(limit, self.config.chat_history_page)
        served, more = self._served(request, messages[at: at + size], at + size < len(messages))
        result = {"context": chat["context"], "messages": served, "paging": _paging(more, at + len(served))}
        if chat.get("orderId") is not None:  # the deprecated copy, as in getChats; none for DIRECT
            result["orderId"] = chat["orderId"]
        return 200, {"status": "OK", "result": result}


def _chat_matches(chat: dict[str, Any], filters: dict[str, list[Any]]) -> bool:
    ctx = chat["context"]
    own_id = ctx.get("returnId") if ctx["type"] == "RETURN" else ctx.get("orderId")
    contexts = filters.get("contexts")
    return (("orderIds" not in filters or ctx.get("orderId") in filters["orderIds"])
            and (contexts is None or any(isinstance(c, dict) and c.get("type") == ctx["type"]
                                         and c.get("id") == own_id for c in contexts))
            and ("contextTypes" not in filters or ctx["type"] in filters["contextTypes"])
            and ("types" not in filters or chat["type"] in filters["types"])
            and ("statuses" not in filters or chat["status"] in filters["statuses"]))
