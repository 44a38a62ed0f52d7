"""The Yandex Market connector: orders by update time and reviews by creation time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from connectors.base import (
    Connector,
    CursorKind,
    MappingContext,
    Page,
    Record,
    RecordType,
    StreamSpec,
    Window,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from connectors.errors import AuthError, FatalApiError
from connectors.ratelimit import Rate
from connectors.yandex_market import mapping
from connectors.yandex_market.capabilities import YANDEX_MARKET_CAPABILITIES
from connectors.yandex_market.client import YandexMarketClient
from connectors.yandex_market.limits import RATES
from connectors.yandex_market.settings import PRODUCTION_HOSTS, YandexMarketAccountSettings

if TYPE_CHECKING:
    from connectors.base import DemoSetup

__all__ = ["STREAMS", "YandexMarketConnector"]

DAY = timedelta(days=1)

STREAMS = {
    # Orders by their last update (dates.updateDateFrom/To), so one pass over a window sees every
    # order that changed in it, status changes included; no wide re-read is needed to follow them.
    # Market allows 30 days per request and the client starts each request a second early: 29-day
    # windows fit. getBusinessOrders returns "the last 30 days" by default, and finished orders
    # (delivered/cancelled) older than 30 days are not returned (getOrders documents it), so the
    # first sync goes back 30 days; older DBS orders could not give a buyer id anyway. The hour of
    # lookback and a daily 2-day re-scan cover updates that reach the index late.
    "orders": StreamSpec(
        name="orders", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW,
        window=29 * DAY, lookback=timedelta(hours=1), lag=timedelta(minutes=2),
        start_history=30 * DAY, poll_interval=timedelta(minutes=10),
        rescan_lookback=2 * DAY, rescan_every=DAY,
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


class YandexMarketConnector(Connector):
    """Orders of a Yandex Market business (any placement model) and its product reviews.

    Writes: `reply_to_review` only (`target` = the `feedbackId`, digits; `text` = the comment,
    1..4096 characters, no contacts or outside links; no params), through
    `POST /v2/businesses/{businessId}/goods-feedback/comments/update` without `comment.id`;
    `platform_ref` is the new comment's id. `find_done` lists the review's comments and answers
    ALREADY_DONE with the first one the shop wrote (author type BUSINESS, any status but DELETED).
    """

    name: ClassVar[str] = "yandex_market"
    display_name: ClassVar[str] = "Yandex Market"
    settings_model = YandexMarketAccountSettings
    capabilities = YANDEX_MARKET_CAPABILITIES
    streams: ClassVar[Mapping[str, StreamSpec]] = STREAMS
    rate_groups: ClassVar[Mapping[str, Rate]] = RATES
    # Raw fields that may carry a buyer's id, name, phone or address. Top-level keys: `_buyer`
    # (attached by the client), `buyer` (deprecated OrderDTO), `delivery` (DBS address, recipient,
    # courier), `notes` (the buyer's free text), `author` (the reviewer's display name),
    # `_comments` (kept for symmetry: the client keeps only the shop's own comments).
    personal_fields = frozenset({
        "_buyer", "buyer", "delivery", "notes", "author", "_comments",
        "address", "recipient", "courier", "phone", "firstName", "lastName", "middleName",
    })

    def __init__(self, account: YandexMarketAccountSettings, **kwargs: Any):
        super().__init__(account, **kwargs)
        self.client = YandexMarketClient(account, transport=self.transport, clock=self.clock,
                                         sleep=self.sleep)

    def fetch(self, stream: str, window: Window) -> AsyncIterator[Page]:
        if stream == "orders":
            return self.client.orders(window)
        if stream == "reviews":
            return self.client.feedbacks(window)
        raise KeyError(f"unknown yandex_market stream {stream!r}")

    def map_record(self, stream: str, raw: dict[str, Any], ctx: MappingContext) -> Record:
        if stream == "orders":
            return mapping.map_order(raw, ctx)
        return mapping.map_feedback(raw, ctx)

    def record_key(self, stream: str, raw: Any) -> str | None:
        """The natural key: `orderId` for orders, `feedbackId` for reviews."""
        field = "orderId" if stream == "orders" else "feedbackId"
        value = raw.get(field) if isinstance(raw, dict) else None
        return str(value) if value not in (None, "") else None

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
        if request.kind != "reply_to_review":
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
        if request.kind != "reply_to_review":
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

    async def aclose(self) -> None:
        await self.client.aclose()
