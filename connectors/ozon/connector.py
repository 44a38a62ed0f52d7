"""The Ozon connector: FBS/rFBS postings, FBO postings and reviews over one Seller API host."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any, ClassVar

from connectors.base import (
    Connector,
    CursorKind,
    DemoSetup,
    MappingContext,
    Page,
    RateOverride,
    Record,
    RecordType,
    StreamSettings,
    StreamSpec,
    Window,
)
from connectors.ozon import mapping
from connectors.ozon.capabilities import OZON_CAPABILITIES
from connectors.ozon.client import ENDPOINT_GROUPS, OzonClient
from connectors.ozon.settings import PRODUCTION_HOSTS, OzonAccountSettings
from connectors.ratelimit import Rate

__all__ = ["STREAMS", "OzonConnector"]

DAY = timedelta(days=1)

STREAMS = {
    # FBS and rFBS postings (/v4/posting/fbs/list). Each window is read twice: by processing start
    # and by `last_changed_status_date`, which catches status changes of postings up to a year old
    # on every poll. So the lookback only covers postings that surface late (awaiting_registration,
    # awaiting_verification); a daily 30-day re-scan repairs anything else (a posting's life, up to
    # the return of an uncollected parcel, is under three weeks). Ozon allows a year per request
    # and documents no retention limit: a year of history feeds repeat-purchase loyalty. Weekly
    # windows keep a crashed backfill's re-read short.
    "orders_fbs": StreamSpec(
        name="orders_fbs", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW,
        window=7 * DAY, lookback=DAY, lag=timedelta(minutes=2),
        start_history=365 * DAY, poll_interval=timedelta(minutes=10),
        rescan_lookback=30 * DAY, rescan_every=DAY,
    ),
    # FBO postings (/v3/posting/fbo/list) can only be filtered by creation time, so following
    # their statuses means re-reading: most move within a week (packing, shipping, delivery), so
    # each run re-reads 7 days and a daily re-scan covers 45 (remote regions plus pickup-point
    # storage). FBO carries no buyer, so polling every 30 minutes is enough.
    "orders_fbo": StreamSpec(
        name="orders_fbo", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW,
        window=7 * DAY, lookback=7 * DAY, lag=timedelta(minutes=2),
        start_history=365 * DAY, poll_interval=timedelta(minutes=30),
        rescan_lookback=45 * DAY, rescan_every=DAY,
    ),
    # Reviews by publication time (/v2/review/list). What changes is whether the seller answered
    # (a comment, usually within days): each run re-reads 14 days, a daily re-scan 60. Half a
    # year of history is what the reply workflow and reports use; reviews feed no ledger.
    "reviews": StreamSpec(
        name="reviews", record_type=RecordType.REVIEW, cursor=CursorKind.WINDOW,
        window=30 * DAY, lookback=14 * DAY, lag=timedelta(minutes=1),
        start_history=180 * DAY, poll_interval=timedelta(minutes=15),
        rescan_lookback=60 * DAY, rescan_every=DAY,
    ),
}
_MAPPERS = {"orders_fbs": mapping.map_fbs_posting, "orders_fbo": mapping.map_fbo_posting,
            "reviews": mapping.map_review}


class OzonConnector(Connector):
    """Postings (one order record per posting) from the FBS and FBO lists, and reviews."""

    name: ClassVar[str] = "ozon"
    display_name: ClassVar[str] = "Ozon"
    settings_model = OzonAccountSettings
    capabilities = OZON_CAPABILITIES
    streams: ClassVar[Mapping[str, StreamSpec]] = STREAMS
    rate_groups: ClassVar[Mapping[str, Rate]] = {g.name: g.rate for g in ENDPOINT_GROUPS}
    # Top-level raw fields that can carry a buyer's personal data, stripped before quarantine:
    # `customer` (customer_id, name, phone, customer_email, address) and `addressee` on FBS/rFBS;
    # `courier` (fbs/get); `legal_info` (a company buyer, often a sole trader's own name);
    # `analytics_data` (delivery city and region); `additional_data` (FBO v2 courier names);
    # `tracking_number` (carrier sites show the recipient); `_comments` (buyers' own words).
    personal_fields = frozenset({
        "customer", "addressee", "courier", "legal_info", "analytics_data", "additional_data",
        "tracking_number", "_comments",
    })

    def __init__(self, account: OzonAccountSettings, **kwargs: Any):
        super().__init__(account, **kwargs)
        self.client = OzonClient(account, transport=self.transport, clock=self.clock, sleep=self.sleep)

    def fetch(self, stream: str, window: Window) -> AsyncIterator[Page]:
        if stream == "orders_fbs":
            return self.client.fbs_postings(window)
        if stream == "orders_fbo":
            return self.client.fbo_postings(window)
        if stream == "reviews":
            return self.client.reviews(window)
        raise KeyError(f"unknown ozon stream {stream!r}")

    def map_record(self, stream: str, raw: dict[str, Any], ctx: MappingContext) -> Record:
        return _MAPPERS[stream](raw, ctx)

    def record_key(self, stream: str, raw: Any) -> str | None:
        """The natural key: `posting_number` for orders, `id` for reviews."""
        value = raw.get("id" if stream == "reviews" else "posting_number") if isinstance(raw, dict) else None
        return str(value) if value not in (None, "") else None

    @classmethod
    def demo(cls, *, seed: int, orders: int, reviews: int, rate_limits: bool = True) -> DemoSetup:
        from pydantic import SecretStr

        from connectors.ozon.emulator import EmulatorConfig, create_app

        token, client_id = "ozon-demo-api-key-not-a-secret", "100500"  # the emulator accepts only these
        history = 40
        app = create_app(EmulatorConfig(seed=seed, orders=orders, reviews=reviews, history_days=history,
                                        client_id=client_id, token=token, rate_limits=rate_limits))
        # The demo's data is 40 days old: start there instead of a year of empty weekly windows.
        short = StreamSettings(start_history=timedelta(days=history + 1))
        # Nothing else shares the demo's Client-Id, so it may use most of the 50/s (≤ 45 a second).
        budget = {"seller_api": RateOverride(requests=40, period_seconds=1.0, burst=5)}
        return DemoSetup(app=app, secrets=(token,), account=lambda base_url: OzonAccountSettings(
            name="demo", token_env="LOYALSYNC_DEMO_OZON_TOKEN", token=SecretStr(token), client_id=client_id,
            base_urls=dict.fromkeys(PRODUCTION_HOSTS, base_url), streams=dict.fromkeys(STREAMS, short),
            rate_limits=budget))

    async def aclose(self) -> None:
        await self.client.aclose()
