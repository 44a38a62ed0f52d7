"""Wildberries passes the shared conformance kit against its emulator."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from connectors.testing import ConformanceSuite, ConnectorHarness, ExpectedOrder, FaultRequest, ResponseSchema
from connectors.wildberries import WildberriesConnector
from connectors.wildberries.emulator import EmulatorConfig, Fault, create_app
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings
from tests.spec_schemas import SpecSchemas

STREAM_PATHS = {"orders": "/api/v3/orders", "orders_statistics": "/api/v1/supplier/orders",
                "reviews": "/api/v1/feedbacks"}
# Every endpoint a stream pages through (a short page may come on any of them).
PAGING_PATHS = {"orders": ("/api/v3/orders",), "orders_statistics": ("/api/v1/supplier/orders",),
                "reviews": ("/api/v1/feedbacks", "/api/v1/feedbacks/archive")}
FAULT_KINDS = {"rate_limit": "rate_limit", "server_error": "http_500", "malformed": "malformed",
               "short_page": "short_page", "late_change": "late_change",
               "truncated": "truncated", "expired_token": "expired_token", "schema_drift": "schema_drift"}
# WB's status words -> the export's, written out here so the kit does not check mapping.py against itself.
CANCELLED_WB = {"canceled", "canceled_by_client", "declined_by_client", "defect", "canceled_by_carrier"}
IN_DELIVERY_WB = {"sorted", "ready_for_pickup", "postponed_delivery", "accepted_by_carrier", "sent_to_carrier"}


def export_status(platform_status: str) -> str:
    """"supplierStatus/wbStatus" -> created / in_delivery / delivered / cancelled."""
    supplier, wb = platform_status.split("/")
    if wb in CANCELLED_WB or supplier in ("cancel", "cancel_carrier"):
        return "cancelled"
    if wb == "sold":
        return "delivered"
    return "in_delivery" if supplier == "complete" or wb in IN_DELIVERY_WB else "created"


def emulator_faults(request: FaultRequest) -> list[Fault]:
    """The emulator faults that stage one kit request on the stream's endpoints."""
    kind = FAULT_KINDS[request.kind]
    if kind == "late_change":  # a data fault: the path only names the stream
        return [Fault(STREAM_PATHS[request.stream], kind, times=request.times, age=request.age.total_seconds(),
                      delay=request.change_after.total_seconds())]
    paths = PAGING_PATHS[request.stream] if kind in ("short_page", "schema_drift") else (STREAM_PATHS[request.stream],)
    return [Fault(path, kind, times=request.times, retry_after=request.retry_after,
                  probability=request.probability, after=request.after) for path in paths]


class WildberriesHarness(ConnectorHarness):
    connector_cls = WildberriesConnector

    def emulator(self, *, generated_at: datetime, serving_at: datetime, monotonic: Any,
                 faults: Sequence[FaultRequest] = (), token: str | None = None) -> Any:
        return create_app(EmulatorConfig(
            seed=11, orders=450, reviews=150, now=generated_at, clock=lambda: serving_at,
            token=token, monotonic=monotonic, statistics_page_size=250,
            faults=tuple(fault for request in faults for fault in emulator_faults(request)),
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

    def short_pages_served(self, app: Any) -> int:
        return len(app.state.short_pages)

    def response_schemas(self) -> list[ResponseSchema]:
        # WB's official schemas (tests/fixtures/specs/wildberries.json). Every WB error has the
        # one problem+json body (wildberries.md "Error body"), so a status an operation does not
        # list (a 5xx) is checked against the operation's 429 body.
        return SpecSchemas("wildberries").response_schemas(undocumented_errors_like="429")

    def late_changes(self, app: Any) -> dict[str, tuple[str, str]]:
        # The emulator lists them in WB's Marketplace words; every one is an FBS order, so both
        # order streams see it (Statistics as isCancel, which the export also calls cancelled).
        return {rid: (export_status(before), export_status(after))
                for rid, (before, after) in app.state.late_changes.items()}


class TestWildberriesConformance(ConformanceSuite):
    harness = WildberriesHarness()
