"""Wildberries passes the shared conformance kit against its emulator."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from connectors.testing import ConformanceSuite, ConnectorHarness, ExpectedOrder, FaultRequest
from connectors.wildberries import WildberriesConnector
from connectors.wildberries.emulator import EmulatorConfig, Fault, create_app
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings

STREAM_PATHS = {"orders": "/api/v3/orders", "orders_statistics": "/api/v1/supplier/orders",
                "reviews": "/api/v1/feedbacks"}
FAULT_KINDS = {"rate_limit": "rate_limit", "server_error": "http_500", "malformed": "malformed"}


class WildberriesHarness(ConnectorHarness):
    connector_cls = WildberriesConnector

    def emulator(self, *, generated_at: datetime, serving_at: datetime, monotonic: Any,
                 faults: Sequence[FaultRequest] = (), token: str | None = None) -> Any:
        return create_app(EmulatorConfig(
            seed=11, orders=900, reviews=300, now=generated_at, clock=lambda: serving_at,
            token=token, monotonic=monotonic, statistics_page_size=250,
            faults=tuple(Fault(STREAM_PATHS[f.stream], FAULT_KINDS[f.kind], times=f.times,
                               retry_after=f.retry_after) for f in faults),
        ))

    def account(self, *, base_url: str = "http://emulator") -> WildberriesAccountSettings:
        # Small pages so every stream spans several of them, as a real backfill does.
        return WildberriesAccountSettings(
            name="conformance", token_env="UNUSED", token=SecretStr(self.token),
            base_urls={h: base_url for h in PRODUCTION_HOSTS}, orders_page_size=100,
            feedbacks_page_size=50,
        )

    def expected_order_ids(self, app: Any, now: datetime) -> set[str]:
        orders = app.state.data.orders
        return {orders.rid(i) for i in range(orders.visible_end(int(now.timestamp())))}

    def expected_review_ids(self, app: Any, now: datetime) -> set[str]:
        reviews = app.state.data.reviews
        return {reviews.review_id(i) for i in range(reviews.visible_end(int(now.timestamp())))}

    def expected_order(self, app: Any, order_id: str) -> ExpectedOrder:
        orders = app.state.data.orders
        index = getattr(app.state, "_rid_index", None)
        if index is None:
            index = app.state._rid_index = {orders.rid(i): i for i in range(len(orders))}
        i = index[order_id]
        # WB's own numbers: unix seconds and kopecks, converted here without mapping.py.
        return ExpectedOrder(created_at=datetime.fromtimestamp(orders.created[i], UTC),
                             total=Decimal(orders.prices(i)[2]) / 100, currency="RUB")

    def corrupted_ids(self, app: Any) -> set[str]:
        orders = app.state.data.orders
        out = set()
        for path, record_id in app.state.corrupted:
            if path == "/api/v3/orders":  # WB's order id; loyalsync keys orders by rid
                out.add(orders.rid(orders.index_of_id(record_id)))
            else:
                out.add(str(record_id))
        return out

    def rate_limited_count(self, app: Any) -> int:
        return app.state.stats.total_throttled


class TestWildberriesConformance(ConformanceSuite):
    harness = WildberriesHarness()
