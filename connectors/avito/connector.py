"""The Avito connector: orders (Avito Доставка, B2C), seller reviews and moderated answers.

Auth is the seller's own OAuth client credentials (avito.md §2): the access token is fetched at run
time, refreshed ahead of its 24-hour expiry, shared by replicas through the store's token cache, and
never logged. Writes: `reply_to_review` through `POST /ratings/v1/answers`, which Avito moderates.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from connectors.base import (
    Connector,
    CursorKind,
    DemoSetup,
    RateOverride,
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

from . import mapping
from .capabilities import AVITO_CAPABILITIES
from .client import ENDPOINT_GROUPS, AvitoClient
from .settings import PRODUCTION_HOSTS, AvitoAccountSettings

__all__ = ["STREAMS", "AvitoConnector"]

DAY = timedelta(days=1)

STREAMS = {
    # Orders by creation: `dateFrom` is Avito's only filter, with no end and no updated-since
    # (avito.md §3). One window holds the whole history (each request reads from its start to now);
    # each run re-reads 14 days, a 6-hourly re-scan 60 (a return or a cancel weeks later).
    "orders": StreamSpec(
        name="orders", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW,
        window=180 * DAY, lookback=14 * DAY, lag=timedelta(minutes=1), start_history=180 * DAY,
        poll_interval=timedelta(minutes=10), rescan_lookback=60 * DAY, rescan_every=timedelta(hours=6),
    ),
    # Every order still open, whatever its age, by status ("re-poll open orders by ids or by status
    # to catch transitions", §3). The window only times the run: each run reads the open orders once.
    "orders_open": StreamSpec(
        name="orders_open", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW,
        window=30 * DAY, lookback=timedelta(0), lag=timedelta(0), start_history=timedelta(minutes=10),
        poll_interval=timedelta(minutes=10),
    ),
    # The buyer of each order, from its chat (the Messenger API, «Максимальный» tariff only).
    "order_buyers": StreamSpec(
        name="order_buyers", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW,
        window=180 * DAY, lookback=DAY, lag=timedelta(minutes=1), start_history=180 * DAY,
        poll_interval=timedelta(minutes=30),
    ),
    # Reviews have no date filter and no documented order (§4): every run reads them all, so an
    # answer published or rejected after moderation reaches the store on the next run.
    "reviews": StreamSpec(
        name="reviews", record_type=RecordType.REVIEW, cursor=CursorKind.WINDOW,
        window=3650 * DAY, lookback=3650 * DAY, lag=timedelta(0), start_history=3650 * DAY,
        poll_interval=timedelta(minutes=30),
    ),
}
STREAM_TABLE = stream_table([
    Stream(STREAMS["orders"], fetch=lambda conn, window: conn.client.orders(window), map=mapping.map_order,
           key="id"),
    Stream(STREAMS["orders_open"], fetch=lambda conn, window: conn.client.open_orders(window),
           map=mapping.map_order, key="id"),
    Stream(STREAMS["order_buyers"], fetch=lambda conn, window: conn.client.order_buyers(window),
           map=mapping.map_order, key="id"),
    Stream(STREAMS["reviews"], fetch=lambda conn, window: conn.client.reviews(window), map=mapping.map_review,
           key="id"),
])


class AvitoConnector(Connector):
    """Orders and reviews of one Avito business account."""

    name: ClassVar[str] = "avito"
    display_name: ClassVar[str] = "Avito"
    brand_colour: ClassVar[str] = "#00aaff"  # Avito blue
    settings_model = AvitoAccountSettings
    capabilities = AVITO_CAPABILITIES
    stream_table = STREAM_TABLE
    rate_groups: ClassVar[Mapping[str, Rate]] = {g.name: g.rate for g in ENDPOINT_GROUPS}
    changes_only_by_rescan: ClassVar[Mapping[str, str]] = {
        "orders": "No dateTo, no updatedAt filter → re-poll open orders by ids or by status to catch "
                  "transitions (avito.md §3)",
    }
    # Raw fields that may carry buyer personal data (the client drops buyerInfo and courierInfo).
    personal_fields = frozenset({"buyerInfo", "courierInfo", "sender", "fullName", "phoneNumber"})

    def __init__(self, account: AvitoAccountSettings, **kwargs: Any):
        super().__init__(account, **kwargs)
        self.client = AvitoClient(account, transport=self.transport, clock=self.clock, sleep=self.sleep,
                                  user_agent=self.effective_user_agent, token_cache=self.token_cache)

    @classmethod
    def demo(cls, *, seed: int, orders: int, reviews: int, rate_limits: bool = True) -> DemoSetup:
        from pydantic import SecretStr

        from .emulator import EmulatorConfig, create_app

        client_id, secret = "avito-demo-client", "avito-demo-secret-not-a-secret"
        app = create_app(EmulatorConfig(seed=seed, orders=orders, reviews=reviews, client_id=client_id,
                                        client_secret=secret, rate_limits=rate_limits))
        # The emulator limits no Messenger request: the demo resolves every buyer at once.
        fast = {"messenger": RateOverride(requests=100, period_seconds=1, burst=100)}
        return DemoSetup(app=app, secrets=(secret,), account=lambda base_url: AvitoAccountSettings(
            name="demo", client_id=client_id, client_secret_env="LOYALSYNC_DEMO_AVITO_SECRET",
            client_secret=SecretStr(secret), base_urls=dict.fromkeys(PRODUCTION_HOSTS, base_url), rate_limits=fast))

    async def perform(self, request: WriteRequest) -> WriteResult:
        if request.kind != ActionKind.REPLY_TO_REVIEW:
            return await super().perform(request)
        if not request.text:
            return WriteResult(WriteStatus.REJECTED, detail="the reply has no text")
        try:
            done = await self._answered(request.target)
            if done is not None:
                return done
            posted = await self.client.answer(int(request.target), request.text)
        except ValueError:
            return WriteResult(WriteStatus.REJECTED, detail=f"{request.target!r} is not an Avito review id")
        except AuthError:
            raise
        except FatalApiError as exc:  # a 4xx: no such review, it cannot be answered, the text
            return WriteResult(WriteStatus.REJECTED, detail=exc.platform_message or str(exc))
        answer_id = posted.get("id")
        return WriteResult(WriteStatus.DONE, platform_ref=str(answer_id) if answer_id is not None else None,
                           detail="sent to Avito's moderation")

    async def find_done(self, request: WriteRequest) -> WriteResult | None:
        if request.kind != ActionKind.REPLY_TO_REVIEW:
            return await super().find_done(request)
        try:
            return await self._answered(request.target)
        except ValueError:
            return None

    async def _answered(self, target: str) -> WriteResult | None:
        """The review's answer as Avito shows it: in moderation or published, it is there (never
        answered twice); rejected, the rejection is reported with Avito's reasons and not sent again."""
        review = await self.client.review(int(target))
        answer = review.get("answer") if review is not None else None
        if not isinstance(answer, dict):
            return None
        ref = str(answer.get("id")) if answer.get("id") is not None else None
        status = answer.get("status")
        if status == "rejected":
            reasons = [r.get("title") for r in answer.get("reject_reasons") or () if isinstance(r, dict)]
            return WriteResult(WriteStatus.REJECTED, platform_ref=ref,
                               detail="Avito's moderation rejected the answer: " + ("; ".join(
                                   str(r) for r in reasons if r) or "no reason given"))
        said = "published" if status == "published" else "in Avito's moderation"
        return WriteResult(WriteStatus.ALREADY_DONE, platform_ref=ref, detail=f"the review's answer is {said}")

    async def aclose(self) -> None:
        await self.client.aclose()
