"""The Megamarket connector: a seller's shipments over the order service; no reviews, no writes.

Megamarket's merchant API has no review, chat or promo-code endpoint (megamarket.md §3, §5); its
order writes (confirm, pack, close, return) are fulfilment, which loyalsync does not do. What the
loyalty program needs from it, beyond the shipments, is a person's: the storewide seller bonus and
the return report with its next-day deadline (`capabilities`, `programs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from connectors.base import Connector, CursorKind, DemoSetup, RecordType, StreamSettings, StreamSpec
from connectors.ratelimit import Rate
from connectors.responses import ResponseAction
from connectors.streams import Stream, stream_table

from . import mapping
from .capabilities import MEGAMARKET_CAPABILITIES
from .client import ENDPOINT_GROUPS, ERROR_MAPPING, SEARCH_CAP, MegamarketClient
from .settings import PRODUCTION_HOSTS, MegamarketAccountSettings

__all__ = ["STREAMS", "MegamarketConnector"]

DAY = timedelta(days=1)

STREAMS = {
    # Shipments by creation date, the one date order/search takes (§2.1): a status change of an
    # older shipment is seen by reading its window again. Each run re-reads 14 days, where deliveries
    # and most cancellations happen; every 6 hours a re-scan reads 60 days, for returns weeks after
    # delivery. A search that comes back full is split by the client, so the window only bounds one
    # run's work between commits.
    "orders": StreamSpec(
        name="orders", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW,
        window=7 * DAY, lookback=14 * DAY, lag=timedelta(minutes=1),
        start_history=90 * DAY, poll_interval=timedelta(minutes=10),
        rescan_lookback=60 * DAY, rescan_every=6 * timedelta(hours=1),
    ),
}
STREAM_TABLE = stream_table([
    Stream(STREAMS["orders"], fetch=lambda conn, window: conn.client.shipments(window), map=mapping.map_shipment,
           key="shipmentId"),
])


class MegamarketConnector(Connector):
    """Shipments of one Megamarket seller, found by search and read by id (megamarket.md §2)."""

    name: ClassVar[str] = "megamarket"
    display_name: ClassVar[str] = "Megamarket"
    brand_colour: ClassVar[str] = "#8b3ffd"  # Megamarket violet
    error_mapping: ClassVar[Mapping[int, ResponseAction]] = ERROR_MAPPING
    settings_model = MegamarketAccountSettings
    capabilities = MEGAMARKET_CAPABILITIES
    stream_table = STREAM_TABLE
    rate_groups: ClassVar[Mapping[str, Rate]] = {g.name: g.rate for g in ENDPOINT_GROUPS}
    changes_only_by_rescan: ClassVar[Mapping[str, str]] = {
        "orders": "order/search takes dateFrom/dateTo (the creation window) and statuses; nothing dates a "
                  "change (megamarket.md §2.1)",
    }
    # Raw fields that may carry buyer personal data: stripped before a shipment is quarantined (§2.6:
    # "customerFullName / customerAddress exist on both [schemes]; never store them").
    personal_fields = frozenset({"customer", "customerFullName", "customerAddress", "phone", "email", "address",
                                 "comment"})

    def __init__(self, account: MegamarketAccountSettings, **kwargs: Any):
        super().__init__(account, **kwargs)
        # The User-Agent is never a library's: Megamarket blocks those (§1); None is loyalsync/<version>.
        self.client = MegamarketClient(account, transport=self.transport, clock=self.clock, sleep=self.sleep,
                                       user_agent=self.effective_user_agent)

    @classmethod
    def demo(cls, *, seed: int, orders: int, reviews: int, rate_limits: bool = True) -> DemoSetup:
        from pydantic import SecretStr

        from .emulator import EmulatorConfig, create_app

        token = "megamarket-demo-token-not-a-secret"  # the emulator accepts only this value
        # The demo's Megamarket has a busy day three times the search cap (its shipments count in
        # `orders`, where there are enough of them). The wiki's occasional 500 (§4) stays in the tests:
        # its retry would print a warning in the middle of the demo's tables.
        busy = 3 * SEARCH_CAP if orders >= 6 * SEARCH_CAP else 0
        config = EmulatorConfig(seed=seed, orders=orders - busy, token=token, rate_limits=rate_limits,
                                busy_day=busy)
        app = create_app(config)
        # The first sync reads the emulator's history, not the empty months before it.
        history = {"orders": StreamSettings(start_history=timedelta(days=config.history_days + 1))}
        return DemoSetup(app=app, secrets=(token,), account=lambda base_url: MegamarketAccountSettings(
            name="demo", token_env="LOYALSYNC_DEMO_MEGAMARKET_TOKEN", token=SecretStr(token),
            base_urls=dict.fromkeys(PRODUCTION_HOSTS, base_url), streams=history))

    async def aclose(self) -> None:
        await self.client.aclose()
