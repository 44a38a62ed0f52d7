"""The Wildberries connector: three streams over three WB API hosts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from connectors.base import (
    Connector,
    CursorKind,
    DemoSetup,
    RecordType,
    StreamSpec,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from connectors.capabilities import ActionKind
from connectors.errors import AuthError, FatalApiError
from connectors.ratelimit import Rate
from connectors.streams import Stream, stream_table
from connectors.wildberries import mapping
from connectors.wildberries.capabilities import WILDBERRIES_CAPABILITIES
from connectors.wildberries.client import ENDPOINT_GROUPS, WildberriesClient
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings

__all__ = ["WildberriesConnector"]

DAY = timedelta(days=1)

STREAMS = {
    # FBS orders by creation time. WB allows 30 days per request and 3 months back; statuses move
    # for about two weeks, so each run re-reads 14 days and a daily re-scan covers 60.
    "orders": StreamSpec(
        name="orders", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW,
        window=timedelta(days=30), lookback=14 * DAY, lag=timedelta(minutes=2),
        start_history=89 * DAY, poll_interval=timedelta(minutes=10),
        rescan_lookback=60 * DAY, rescan_every=DAY,
        # GET /api/v3/orders: "Max 30 calendar days per request" (shared/marketplaces/wildberries.md
        # §2a, the FBS orders table); a longer window fails every poll.
        max_window=30 * DAY,
    ),
    # Every scheme incl. FBO, by WB's own change mark. Data lands in 30-minute batches, so rows
    # can appear with a change time slightly behind what was already read: look back 2 hours.
    "orders_statistics": StreamSpec(
        name="orders_statistics", record_type=RecordType.ORDER, cursor=CursorKind.HIGH_WATER,
        window=89 * DAY, lookback=timedelta(hours=2), lag=timedelta(0),
        start_history=89 * DAY, poll_interval=timedelta(minutes=30),
        rescan_lookback=7 * DAY, rescan_every=DAY,
    ),
    # Reviews by creation time, from the two lists and the archive (a review is archived once
    # answered, after 30 days unanswered, or with no text and no photos; wildberries.md §3). The
    # answered state changes, so each run re-reads 14 days and a daily re-scan covers 45.
    "reviews": StreamSpec(
        name="reviews", record_type=RecordType.REVIEW, cursor=CursorKind.WINDOW,
        window=30 * DAY, lookback=14 * DAY, lag=timedelta(minutes=1),
        start_history=180 * DAY, poll_interval=timedelta(minutes=15),
        rescan_lookback=45 * DAY, rescan_every=DAY,
    ),
}
# Orders are keyed as stored: `rid` (Marketplace API) and `srid` (Statistics API) name the same order.
STREAM_TABLE = stream_table([
    Stream(STREAMS["orders"], fetch=lambda conn, window: conn.client.marketplace_orders(window),
           map=mapping.map_marketplace_order, key="rid"),
    Stream(STREAMS["orders_statistics"], fetch=lambda conn, window: conn.client.statistics_orders(window),
           map=mapping.map_statistics_order, key="srid"),
    Stream(STREAMS["reviews"], fetch=lambda conn, window: conn.client.feedbacks(window),
           map=mapping.map_feedback, key="id"),
])


class WildberriesConnector(Connector):
    """Orders from the Marketplace and Statistics APIs (one order = one `rid`/`srid`), and reviews.

    Writes: `reply_to_review` only (`target` = the feedback id, `text` = the answer, no params),
    through `POST /api/v1/feedbacks/answer`. WB does not validate the id there (an unknown one is
    accepted and changes nothing), so `perform` first reads the feedback: unknown → REJECTED,
    already answered by anyone → ALREADY_DONE (a person's answer is never overwritten). The
    answer has no id of its own; `platform_ref` is the feedback id.
    """

    name: ClassVar[str] = "wildberries"
    display_name: ClassVar[str] = "Wildberries"
    brand_colour: ClassVar[str] = "#9b2ccf"
    settings_model = WildberriesAccountSettings
    capabilities = WILDBERRIES_CAPABILITIES
    stream_table = STREAM_TABLE
    rate_groups: ClassVar[Mapping[str, Rate]] = {g.name: g.rate for g in ENDPOINT_GROUPS}
    #: GET /api/v3/orders filters by creation only: "The method's response will contain assembly
    #: orders created during the specified period" (spec-2026-08, wildberries.md §2a). A late change
    #: to an old FBS order reaches this stream with its daily re-scan; `orders_statistics` follows
    #: lastChangeDate and brings it on its next poll.
    changes_only_by_rescan: ClassVar[Mapping[str, str]] = {
        "orders": "GET /api/v3/orders: \"The method's response will contain assembly orders created during "
                  "the specified period\" (by creation time only)",
    }
    personal_fields = frozenset({
        "address", "comment", "userName", "clientName", "firstName", "fullName", "phone",
        "replacementPhone", "orderUid", "gNumber",
    })

    def __init__(self, account: WildberriesAccountSettings, **kwargs: Any):
        super().__init__(account, **kwargs)
        self.client = WildberriesClient(account, transport=self.transport, clock=self.clock,
                                        sleep=self.sleep)

    @classmethod
    def demo(cls, *, seed: int, orders: int, reviews: int, rate_limits: bool = True) -> DemoSetup:
        from pydantic import SecretStr

        from connectors.wildberries.emulator import EmulatorConfig, create_app

        token = "wb-demo-token-not-a-secret"  # the emulator accepts only this value
        app = create_app(EmulatorConfig(seed=seed, orders=orders, reviews=reviews, token=token,
                                        rate_limits=rate_limits))
        return DemoSetup(app=app, secrets=(token,), account=lambda base_url: WildberriesAccountSettings(
            name="demo", token_env="LOYALSYNC_DEMO_WB_TOKEN", token=SecretStr(token),
            base_urls=dict.fromkeys(PRODUCTION_HOSTS, base_url)))

    async def perform(self, request: WriteRequest) -> WriteResult:
        if request.kind is not ActionKind.REPLY_TO_REVIEW:
            return await super().perform(request)
        if not request.text:
            return WriteResult(WriteStatus.REJECTED, detail="the reply has no text")
        try:
            done = await self._answered(request.target)
            if done is not None:
                return done
            await self.client.answer_feedback(request.target, request.text)
        except AuthError:
            raise
        except FatalApiError as exc:  # WB's 4xx: the text's length, an unknown feedback
            return WriteResult(WriteStatus.REJECTED, detail=exc.platform_message or str(exc))
        return WriteResult(WriteStatus.DONE, platform_ref=request.target)

    async def find_done(self, request: WriteRequest) -> WriteResult | None:
        if request.kind is not ActionKind.REPLY_TO_REVIEW:
            return await super().find_done(request)
        try:
            return await self._answered(request.target)
        except AuthError:
            raise
        except FatalApiError as exc:
            # No such feedback (WB documents 422 for it): nothing was answered; perform rejects it.
            if exc.status in (400, 404, 422):
                return None
            raise

    async def _answered(self, feedback_id: str) -> WriteResult | None:
        """ALREADY_DONE if the feedback has any answer (ours or a person's), else None."""
        feedback = await self.client.feedback(feedback_id)
        if feedback.get("answer"):
            return WriteResult(WriteStatus.ALREADY_DONE, platform_ref=feedback_id,
                               detail="the feedback already has an answer")
        return None

    async def aclose(self) -> None:
        await self.client.aclose()
