"""Yandex Market passes the shared conformance kit against its emulator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from connectors.testing import ConformanceSuite, ConnectorHarness, ExpectedOrder, FaultRequest, ResponseSchema
from connectors.yandex_market import YandexMarketConnector
from connectors.yandex_market.connector import STREAMS
from connectors.yandex_market.emulator import EmulatorConfig, Fault, create_app
from connectors.yandex_market.settings import PRODUCTION_HOSTS, YandexMarketAccountSettings
from tests.spec_schemas import SpecSchemas

BUSINESS = 12345
STREAM_PATHS = {"orders": f"/v1/businesses/{BUSINESS}/orders",
                "reviews": f"/v2/businesses/{BUSINESS}/goods-feedback"}
# Every list a stream pages through: faults match by path prefix, so `…/goods-feedback` also
# covers `…/goods-feedback/comments` (the shop's comments the reviews stream attaches).
PAGING_PATHS = {"orders": (STREAM_PATHS["orders"],), "reviews": (STREAM_PATHS["reviews"],)}
FAULT_KINDS = {"rate_limit": "rate_limit", "server_error": "http_500", "malformed": "malformed",
               "truncated": "truncated", "expired_token": "expired_token", "schema_drift": "schema_drift"}
LAG = int(STREAMS["orders"].lag.total_seconds())
HISTORY = int(STREAMS["orders"].start_history.total_seconds())
# Market's order statuses in the export's words, written out here rather than taken from mapping.py.
EXPORT_STATUS = {"PLACING": "created", "RESERVED": "created", "UNPAID": "created", "PENDING": "created",
                 "PROCESSING": "created", "DELIVERY": "in_delivery", "PICKUP": "in_delivery",
                 "DELIVERED": "delivered", "CANCELLED": "cancelled", "PARTIALLY_RETURNED": "partially_returned",
                 "RETURNED": "returned"}


def emulator_faults(requests: Sequence[FaultRequest]) -> tuple[Fault, ...]:
    """The kit's fault requests as the emulator's faults."""
    faults: list[Fault] = []
    for f in requests:
        if f.kind in ("short_page", "schema_drift"):
            faults += [Fault(path, f.kind, times=f.times, probability=f.probability)
                       for path in PAGING_PATHS[f.stream]]
        elif f.kind == "late_change":
            faults.append(Fault(STREAM_PATHS[f.stream], "late_change", times=f.times,
                                delay=f.change_after.total_seconds(), age=f.age.total_seconds()))
        else:
            faults.append(Fault(STREAM_PATHS[f.stream], FAULT_KINDS[f.kind], times=f.times,
                                retry_after=f.retry_after, after=f.after))
    return tuple(faults)


class YandexMarketHarness(ConnectorHarness):
    connector_cls = YandexMarketConnector

    def emulator(self, *, generated_at: datetime, serving_at: datetime, monotonic: Any,
                 faults: Sequence[FaultRequest] = (), token: str | None = None) -> Any:
        # 60 days of history: older than Market's default 30-day creation window (a client that
        # relies on it misses orders), old enough for the kit's 45-day-old late changes, and well
        # inside the orders stream's 180-day start, also for the kit's run three days later.
        return create_app(EmulatorConfig(
            seed=5, business_id=BUSINESS, orders=400, reviews=150, buyers=60, history_days=60,
            now=generated_at, clock=lambda: serving_at, token=token, monotonic=monotonic,
            faults=emulator_faults(faults),
        ))

    def account(self, *, base_url: str = "http://emulator") -> YandexMarketAccountSettings:
        # Small pages so every stream spans several of them, as a real backfill does.
        return YandexMarketAccountSettings(
            name="conformance", token_env="UNUSED", token=SecretStr(self.token), business_id=BUSINESS,
            base_urls={h: base_url for h in PRODUCTION_HOSTS}, orders_page_size=20, feedbacks_page_size=15,
        )

    def expected_order_ids(self, app: Any, now: datetime) -> set[str]:
        # The orders stream reads by update time up to `now - lag`: an order whose last change
        # is younger than that is not listed yet. Every generated order is younger than the
        # stream's history, so its creation date never keeps it out.
        orders, ts = app.state.data.orders, int(now.timestamp())
        return {str(orders.ids[i]) for i in range(orders.visible_end(ts))
                if ts - HISTORY <= orders.state(i, ts).at < ts - LAG and orders.created[i] >= ts - HISTORY}

    def expected_review_ids(self, app: Any, now: datetime) -> set[str]:
        reviews = app.state.data.reviews
        return {str(reviews.ids[i]) for i in range(reviews.visible_end(int(now.timestamp())))}

    def expected_order(self, app: Any, order_id: str) -> ExpectedOrder:
        orders = app.state.data.orders
        i = orders.index_of_id(int(order_id))
        now = int(app.state.emulator.now())
        # Market's own figures, from the generator's kopecks and unix seconds, without mapping.py.
        return ExpectedOrder(created_at=datetime.fromtimestamp(orders.created[i], UTC),
                             total=Decimal(orders.total_kop(i)) / 100, currency="RUB",
                             returned_total=Decimal(orders.returned_kop(i, now)) / 100)

    def corrupted_ids(self, app: Any) -> set[str]:
        return {str(record_id) for _, record_id in app.state.corrupted}

    def rate_limited_count(self, app: Any) -> int:
        return app.state.stats.total_throttled

    def short_pages_served(self, app: Any) -> int:
        return len(app.state.short_pages)

    def response_schemas(self) -> list[ResponseSchema]:
        # Market's official schemas (tests/fixtures/specs/yandex_market.json, transcribed from its
        # own OpenAPI repository); they list every status Market answers, 420 included.
        return SpecSchemas("yandex_market").response_schemas()

    def late_changes(self, app: Any) -> Mapping[str, tuple[str, str]]:
        return {order_id: (EXPORT_STATUS[before], EXPORT_STATUS[after])
                for order_id, (before, after) in app.state.late_changes.items()}


class TestYandexMarketConformance(ConformanceSuite):
    harness = YandexMarketHarness()
