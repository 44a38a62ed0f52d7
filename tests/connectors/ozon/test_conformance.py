"""Ozon passes the shared conformance kit against its emulator."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from connectors.ozon import OzonConnector
from connectors.ozon.connector import STREAMS
from connectors.ozon.emulator import EmulatorConfig, Fault, create_app
from connectors.ozon.emulator_data import FBO, US
from connectors.ozon.settings import PRODUCTION_HOSTS, OzonAccountSettings
from connectors.testing import ConformanceSuite, ConnectorHarness, ExpectedOrder, FaultRequest

STREAM_PATHS = {"orders_fbs": "/v4/posting/fbs/list", "orders_fbo": "/v3/posting/fbo/list",
                "reviews": "/v2/review/list"}
FAULT_KINDS = {"rate_limit": "rate_limit", "server_error": "http_500", "malformed": "malformed"}
CLIENT_ID = "1943881"


def _cut(now: datetime, stream: str) -> int:
    """The newest list time a sync at `now` reads: its upper bound, floored to Ozon's seconds."""
    return int((now - STREAMS[stream].lag).timestamp()) * US


class OzonHarness(ConnectorHarness):
    connector_cls = OzonConnector

    def emulator(self, *, generated_at: datetime, serving_at: datetime, monotonic: Any,
                 faults: Sequence[FaultRequest] = (), token: str | None = None) -> Any:
        return create_app(EmulatorConfig(
            seed=23, orders=500, reviews=150, history_days=35, now=generated_at, clock=lambda: serving_at,
            client_id=CLIENT_ID, token=token, monotonic=monotonic,
            faults=tuple(Fault(STREAM_PATHS[f.stream], FAULT_KINDS[f.kind], times=f.times,
                               retry_after=f.retry_after) for f in faults),
        ))

    def account(self, *, base_url: str = "http://emulator") -> OzonAccountSettings:
        # Small pages so every stream spans several of them, as a real backfill does.
        return OzonAccountSettings(
            name="conformance", token_env="UNUSED", token=SecretStr(self.token), client_id=CLIENT_ID,
            base_urls=dict.fromkeys(PRODUCTION_HOSTS, base_url), postings_page_size=40,
            reviews_page_size=20, comments_page_size=20,
        )

    def expected_order_ids(self, app: Any, now: datetime) -> set[str]:
        table = app.state.data.postings
        return {table.posting_number(i) for i in range(len(table))
                if table.t0[i] <= _cut(now, "orders_fbo" if table.scheme[i] == FBO else "orders_fbs")}

    def expected_review_ids(self, app: Any, now: datetime) -> set[str]:
        reviews = app.state.data.reviews
        return {reviews.review_id(i) for i in range(reviews.visible_end(_cut(now, "reviews")))}

    def expected_order(self, app: Any, order_id: str) -> ExpectedOrder:
        table = app.state.data.postings
        i = table.index_of(order_id)
        # The emulator's own figures: unix microseconds and Decimal unit prices, not mapping.py.
        created = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=table.t0[i])
        return ExpectedOrder(created_at=created, total=table.total(i), currency="RUB")

    def corrupted_ids(self, app: Any) -> set[str]:
        return {record_id for _, record_id in app.state.corrupted}

    def rate_limited_count(self, app: Any) -> int:
        return app.state.stats.total_throttled


class TestOzonConformance(ConformanceSuite):
    harness = OzonHarness()
