"""The Kaspi.kz connector: a shop's orders over the Shop API; no reviews, no loyalty writes.

Kaspi's Shop API covers orders and product import only (kaspi.md §4, §8): there is no review API,
no seller chat and no promo-code API, so the connector reads and never writes. The order-status
writes Kaspi has (accept, complete, cancel) are fulfilment, not loyalty: loyalsync does not send them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from connectors.base import Connector, CursorKind, DemoSetup, RecordType, StreamSettings, StreamSpec
from connectors.http import shared_ssl_context
from connectors.ratelimit import Rate
from connectors.streams import Stream, stream_table

from . import mapping
from .capabilities import KASPI_CAPABILITIES
from .client import BROWSER_USER_AGENT, ENDPOINT_GROUPS, KaspiClient
from .settings import PRODUCTION_HOSTS, KaspiAccountSettings

__all__ = ["STREAMS", "KaspiConnector"]

DAY = timedelta(days=1)

STREAMS = {
    # Orders by creation time, the only filter Kaspi has ("max search period 14 days", "No 'updated
    # since' filter → status changes must be detected by re-polling states", kaspi.md §3). Each run
    # re-reads the last 13 days, where most orders still change; every 6 hours a re-scan reads 60
    # days, which brings the late changes of older orders (a return 20 days after the order, an
    # order still in delivery after two weeks, §3.1) without asking for each order by code. A window
    # stays a minute under the 14 days, so a server that counts the span strictly still takes it,
    # and 13 days plus a poll interval fit in one window (one request per state and page).
    "orders": StreamSpec(
        name="orders", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW,
        window=14 * DAY - timedelta(minutes=1), lookback=13 * DAY, lag=timedelta(minutes=1),
        start_history=90 * DAY, poll_interval=timedelta(minutes=10),
        rescan_lookback=60 * DAY, rescan_every=6 * timedelta(hours=1), max_window=14 * DAY,
    ),
}
STREAM_TABLE = stream_table([
    Stream(STREAMS["orders"], fetch=lambda conn, window: conn.client.orders(window), map=mapping.map_order,
           key="id"),
])


class KaspiConnector(Connector):
    """Orders of one Kaspi.kz shop, state by state (kaspi.md §3)."""

    name: ClassVar[str] = "kaspi"
    display_name: ClassVar[str] = "Kaspi.kz"
    brand_colour: ClassVar[str] = "#f14635"  # Kaspi red
    # "requests time out without a browser User-Agent" (kaspi.md §5.1); an account may set its own.
    user_agent: ClassVar[str | None] = BROWSER_USER_AGENT
    settings_model = KaspiAccountSettings
    capabilities = KASPI_CAPABILITIES
    stream_table = STREAM_TABLE
    rate_groups: ClassVar[Mapping[str, Rate]] = {g.name: g.rate for g in ENDPOINT_GROUPS}
    changes_only_by_rescan: ClassVar[Mapping[str, str]] = {
        "orders": "No \"updated since\" filter → status changes must be detected by re-polling states "
                  "within the 14-day creation window (kaspi.md §3)",
    }
    # Raw fields that may carry buyer personal data: stripped before a record is quarantined.
    # (`relationships.user` carries the customer id, the phone in base64: kaspi.md §3.)
    personal_fields = frozenset({"customer", "user", "deliveryAddress", "cellPhone", "firstName", "lastName",
                                 "name"})

    def __init__(self, account: KaspiAccountSettings, **kwargs: Any):
        super().__init__(account, **kwargs)
        transport = self.transport
        if transport is None and account.proxy:
            # "the API answers only from Kazakhstan IPs" (kaspi.md §5.1): this account's own proxy.
            transport = httpx.AsyncHTTPTransport(proxy=account.proxy, verify=shared_ssl_context())
        self.client = KaspiClient(account, transport=transport, clock=self.clock, sleep=self.sleep,
                                  user_agent=self.effective_user_agent, secrets=_proxy_secrets(account.proxy))

    @classmethod
    def demo(cls, *, seed: int, orders: int, reviews: int, rate_limits: bool = True) -> DemoSetup:
        from pydantic import SecretStr

        from .emulator import EmulatorConfig, create_app

        token = "kaspi-demo-token-not-a-secret"  # the emulator accepts only this value
        config = EmulatorConfig(seed=seed, orders=orders, token=token, rate_limits=rate_limits)
        app = create_app(config)
        # The first sync reads the emulator's history, not the empty months before it: every 14-day
        # window costs six requests (one per state) at Kaspi's 5 a second.
        history = {"orders": StreamSettings(start_history=timedelta(days=config.history_days + 1))}
        return DemoSetup(app=app, secrets=(token,), account=lambda base_url: KaspiAccountSettings(
            name="demo", token_env="LOYALSYNC_DEMO_KASPI_TOKEN", token=SecretStr(token),
            base_urls=dict.fromkeys(PRODUCTION_HOSTS, base_url), streams=history))

    async def aclose(self) -> None:
        await self.client.aclose()


def _proxy_secrets(proxy: str | None) -> tuple[str, ...]:
    """The proxy's password, masked wherever an error might repeat the proxy URL."""
    password = urlsplit(proxy).password if proxy else None
    return (password,) if password else ()
