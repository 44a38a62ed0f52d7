"""The Yandex Market connector: orders by update time and reviews by creation time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from connectors.base import (
    Connector,
    CursorKind,
    RecordType,
    StreamSpec,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from connectors.capabilities import ActionKind
from connectors.errors import AuthError, FatalApiError, StreamUnavailable
from connectors.ratelimit import Rate
from connectors.records import ProductName
from connectors.streams import Stream, stream_table
from connectors.yandex_market import catalog, mapping
from connectors.yandex_market.capabilities import YANDEX_MARKET_CAPABILITIES
from connectors.yandex_market.client import YandexMarketClient
from connectors.yandex_market.limits import ERROR_MAPPING, RATES
from connectors.yandex_market.settings import PRODUCTION_HOSTS, YandexMarketAccountSettings

if TYPE_CHECKING:
    from connectors.base import DemoSetup

__all__ = ["STREAMS", "YandexMarketConnector"]

DAY = timedelta(days=1)

STREAMS = {
    # Orders by their last update (dates.updateDateFrom/To), so one pass over a window sees every
    # order that changed in it, status changes included; no wide re-read is needed to follow them.
    # Market allows 30 days per request and the client starts each request a second early: 29-day
    # windows fit. Market also filters by creation date and, unless told otherwise, reads only the
    # last 30 days (OrderDatesFilterDTO's defaults; getBusinessOrders documents no other limit on
    # age), which would hide a late return of an older order for good. So each window is also
    # walked in 30-day creation chunks back to `start_history` before its end: that history is
    # both how far back the first sync reads and how old an order may be and still be followed.
    # 180 days covers late returns and long deliveries; each chunk is a request, 7 per poll at
    # this default (see client.creation_chunks), against Market's 10,000 an hour. The hour of
    # lookback and a daily 2-day re-scan cover updates that reach the index late.
    "orders": StreamSpec(
        name="orders", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW,
        window=29 * DAY, lookback=timedelta(hours=1), lag=timedelta(minutes=2),
        start_history=180 * DAY, poll_interval=timedelta(minutes=10),
        rescan_lookback=2 * DAY, rescan_every=DAY,
        # ≤ 30 days a request (shared/marketplaces/yandex_market.md, orders: "Max date range 30 days
        # per request"), and each request starts a second early: 29 days is the longest that fits.
        max_window=29 * DAY,
    ),
    # Reviews by creation time (dateTimeFrom/To, both exclusive, at most 6 months apart; the API's
    # default depth is 6 months, so the first sync reads 180 days). A review is listed only after
    # moderation, and its answers and the buyer's edits come later, so each run re-reads 14 days
    # and a daily re-scan covers 60.
    "reviews": StreamSpec(
        name="reviews", record_type=RecordType.REVIEW, cursor=CursorKind.WINDOW,
        window=30 * DAY, lookback=14 * DAY, lag=timedelta(minutes=5),
        start_history=180 * DAY, poll_interval=timedelta(minutes=15),
        rescan_lookback=60 * DAY, rescan_every=DAY,
    ),
}
STREAM_TABLE = stream_table([
    # The creation chunks reach back as far as the account's effective `start_history`.
    Stream(STREAMS["orders"], map=mapping.map_order, key="orderId",
           fetch=lambda conn, window: conn.client.orders(window, history=conn.stream_spec("orders").start_history)),
    Stream(STREAMS["reviews"], fetch=lambda conn, window: conn.client.feedbacks(window),
           map=mapping.map_feedback, key="feedbackId"),
])


class YandexMarketConnector(Connector):
    """Orders of a Yandex Market business (any placement model) and its product reviews.

    Writes:

    - `reply_to_review` (`target` = the `feedbackId`, digits; `text` = the comment, 1..4096
      characters, no contacts or outside links; no params), through
      `POST /v2/businesses/{businessId}/goods-feedback/comments/update` without `comment.id`;
      `platform_ref` is the new comment's id. `find_done` lists the review's comments and answers
      ALREADY_DONE with the first one the shop wrote (author type BUSINESS, any status but DELETED).
    - `send_chat_message` (`target` = the `orderId`, digits; `text` = the message, 1..4096
      characters; `params["context"]` "ORDER" (default) or "RETURN" with `params["return_id"]`;
      DIRECT chats are the buyer's to start and are refused). The order's (or return's) chat is
      looked up with `POST …/chats`, opened with `POST …/chats/new` if there is none, and written
      to with `POST …/chats/message?chatId=`; `platform_ref` is the `chatId`. `find_done` reads the
      chat's history (`POST …/chats/history`) and answers ALREADY_DONE if the shop (sender
      PARTNER) already wrote the same text there, so the same words sent twice on purpose to one
      order count as one.
    """

    name: ClassVar[str] = "yandex_market"
    display_name: ClassVar[str] = "Yandex Market"
    brand_colour: ClassVar[str] = "#e8a400"
    error_mapping = ERROR_MAPPING
    settings_model = YandexMarketAccountSettings
    capabilities = YANDEX_MARKET_CAPABILITIES
    stream_table = STREAM_TABLE
    rate_groups: ClassVar[Mapping[str, Rate]] = RATES
    # Raw fields that may carry a buyer's id, name, phone or address. Top-level keys: `_buyer`
    # (attached by the client), `buyer` (deprecated OrderDTO), `delivery` (a DBS buyer's address
    # under `courier.address`; the deprecated OrderDTO's `address` with recipient and phone),
    # `notes` (the buyer's free text), `author` (the reviewer's display name),
    # `_comments` (kept for symmetry: the client keeps only the shop's own comments).
    personal_fields = frozenset({
        "_buyer", "buyer", "delivery", "notes", "author", "_comments",
        "address", "recipient", "courier", "phone", "firstName", "lastName", "middleName",
    })

    def __init__(self, account: YandexMarketAccountSettings, **kwargs: Any):
        super().__init__(account, **kwargs)
        self.client = YandexMarketClient(account, transport=self.transport, clock=self.clock,
                                         sleep=self.sleep)

    @classmethod
    def demo(cls, *, seed: int, orders: int, reviews: int, rate_limits: bool = True) -> DemoSetup:
        from pydantic import SecretStr

        from connectors.base import DemoSetup
        from connectors.yandex_market.emulator import EmulatorConfig, create_app

        token = "ym-demo-token-not-a-secret"  # the emulator accepts only this value
        config = EmulatorConfig(seed=seed, orders=orders, reviews=reviews, token=token, rate_limits=rate_limits)
        return DemoSetup(app=create_app(config), secrets=(token,), account=lambda base_url: (
            YandexMarketAccountSettings(
                name="demo", token_env="LOYALSYNC_DEMO_YM_TOKEN", token=SecretStr(token),
                business_id=config.business_id, base_urls=dict.fromkeys(PRODUCTION_HOSTS, base_url))))

    async def perform(self, request: WriteRequest) -> WriteResult:
        if request.kind is ActionKind.SEND_CHAT_MESSAGE:
            return await self._send_chat_message(request)
        if request.kind is not ActionKind.REPLY_TO_REVIEW:
            return await super().perform(request)
        if not request.target.isdigit():
            return WriteResult(WriteStatus.REJECTED, detail="a Market feedbackId is a number")
        try:
            ref = await self.client.create_comment(int(request.target), request.text or "")
        except AuthError:
            raise
        except FatalApiError as exc:  # Market's 4xx: text length or content, unknown feedback
            return WriteResult(WriteStatus.REJECTED, detail=exc.platform_message or str(exc))
        return WriteResult(WriteStatus.DONE, platform_ref=ref)

    async def find_done(self, request: WriteRequest) -> WriteResult | None:
        if request.kind is ActionKind.SEND_CHAT_MESSAGE:
            return await self._find_chat_message(request)
        if request.kind is not ActionKind.REPLY_TO_REVIEW:
            return await super().find_done(request)
        if not request.target.isdigit():
            return None
        try:
            comments = await self.client.shop_comments(int(request.target))
        except AuthError:
            raise
        except FatalApiError as exc:
            if exc.status in (400, 404):  # no such feedback: nothing was written; perform rejects it
                return None
            raise
        # DELETED: the shop took it back, so it is no answer; BANNED still counts (moderation
        # refused our words, sending them again would not help).
        live = [c for c in comments if c.get("status") != "DELETED"]
        if live:
            return WriteResult(WriteStatus.ALREADY_DONE, platform_ref=str(live[0].get("id")),
                               detail="the feedback already has the shop's comment")
        return None

    async def _send_chat_message(self, request: WriteRequest) -> WriteResult:
        where = _chat_target(request)
        if isinstance(where, str):
            return WriteResult(WriteStatus.REJECTED, detail=where)
        order_id, return_id = where
        text = request.text or ""
        if not text.strip():
            return WriteResult(WriteStatus.REJECTED, detail="a chat message needs text")
        try:
            # createChat would hand back an existing chat too, but it spends the scarcer write budget.
            chats = await self.client.order_chats(order_id, return_id=return_id)
            chat_id = chats[0]["chatId"] if chats else await self.client.create_chat(order_id, return_id=return_id)
            await self.client.send_chat_message(chat_id, text)
        except (AuthError, StreamUnavailable):
            raise
        except FatalApiError as exc:
            if exc.status is None:  # a broken answer, not a refusal: the outbox checks before resending
                raise
            # Market's 4xx: unknown order or return, text length, a chat it will not open
            return WriteResult(WriteStatus.REJECTED, detail=exc.platform_message or str(exc))
        return WriteResult(WriteStatus.DONE, platform_ref=str(chat_id))

    async def _find_chat_message(self, request: WriteRequest) -> WriteResult | None:
        where = _chat_target(request)
        wanted = (request.text or "").strip()
        if isinstance(where, str) or not wanted:
            return None  # perform rejects it without a call
        order_id, return_id = where
        try:
            chats = await self.client.order_chats(order_id, return_id=return_id)
        except AuthError:
            raise
        except FatalApiError as exc:
            if exc.status in (400, 404):  # no such order or return: nothing was written
                return None
            raise
        for chat in chats:
            for message in await self.client.chat_history(chat["chatId"]):
                if message["sender"] == "PARTNER" and (message["message"] or "").strip() == wanted:
                    return WriteResult(WriteStatus.ALREADY_DONE, platform_ref=str(chat["chatId"]),
                                       detail="the chat already has this message from the shop")
        return None

    async def product_names(self, skus: Sequence[str]) -> dict[str, ProductName]:
        """`POST …/offer-mappings` by `offerIds`, 100 a request (`connectors.yandex_market.catalog`)."""
        return await catalog.product_names(self.client.http, self.client.settings.business_id, skus)

    async def aclose(self) -> None:
        await self.client.aclose()


def _chat_target(request: WriteRequest) -> tuple[int, int | None] | str:
    """(orderId, returnId or None) of a `send_chat_message`, or why Market would refuse it."""
    if not _is_number(request.target):
        return "a Market orderId is a number"
    context = request.params.get("context", "ORDER")
    if context == "ORDER":
        return int(request.target), None
    if context == "RETURN":
        return_id = str(request.params.get("return_id", ""))
        if not _is_number(return_id):
            return "a RETURN chat needs params.return_id, a Market return id (a number)"
        return int(request.target), int(return_id)
    if context == "DIRECT":
        return "only the buyer can start a DIRECT chat on Market"
    return f"unknown chat context {context!r}: ORDER or RETURN"


def _is_number(value: str) -> bool:
    return value.isascii() and value.isdigit()  # str.isdigit alone lets "²" through to int()
