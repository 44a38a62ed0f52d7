"""Kaspi.kz passes the conformance kit against its emulator (`connectors.testing`).

The harness reads the emulator's own data and converts it here, independently of `mapping.py`
(Kaspi's (state, status) pairs in the export's words, its exact tenge totals, its ms instants), so
the kit checks the connector against the platform's data, not against itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from importlib.resources import files
from typing import Any

from pydantic import SecretStr

from connectors.kaspi import KaspiConnector
from connectors.kaspi.emulator import EmulatorConfig, Fault, create_app
from connectors.kaspi.settings import PRODUCTION_HOSTS, KaspiAccountSettings
from connectors.testing import ConformanceSuite, ConnectorHarness, ExpectedOrder, FaultRequest, ResponseSchema

ORDERS = "/shop/api/v2/orders"
FAULT_KINDS = {"rate_limit": "rate_limit", "server_error": "http_500", "malformed": "malformed",
               "short_page": "short_page", "late_change": "late_change",
               "truncated": "truncated", "expired_token": "expired_token", "schema_drift": "schema_drift"}
# Kaspi's statuses in the export's words, written out here rather than taken from mapping.py; an
# accepted order is in delivery only in the two delivery states (kaspi.md §3).
EXPORT_STATUS = {"APPROVED_BY_BANK": "created", "ACCEPTED_BY_MERCHANT": "created", "COMPLETED": "delivered",
                 "CANCELLING": "cancelled", "CANCELLED": "cancelled", "RETURNED": "returned",
                 "KASPI_DELIVERY_RETURN_REQUESTED": "returned", "RETURN_ACCEPTED_BY_MERCHANT": "returned"}


def export_status(status: str, state: str | None = None) -> str:
    if status == "ACCEPTED_BY_MERCHANT" and state in ("DELIVERY", "KASPI_DELIVERY"):
        return "in_delivery"
    return EXPORT_STATUS[status]


def emulator_faults(request: FaultRequest) -> list[Fault]:
    """The emulator fault that stages one kit request on the orders endpoint."""
    kind = FAULT_KINDS[request.kind]
    if kind == "late_change":
        return [Fault(ORDERS, kind, times=request.times, age=request.age.total_seconds(),
                      delay=request.change_after.total_seconds())]
    return [Fault(ORDERS, kind, times=request.times, retry_after=request.retry_after,
                  probability=request.probability, after=request.after)]


class KaspiHarness(ConnectorHarness):
    connector_cls = KaspiConnector

    def emulator(self, *, generated_at: datetime, serving_at: datetime, monotonic: Any,
                 faults: Sequence[FaultRequest] = (), token: str | None = None) -> Any:
        return create_app(EmulatorConfig(
            seed=11, orders=400, generated_at=generated_at, serving_at=serving_at,
            token=token or self.token, monotonic=monotonic,
            faults=tuple(fault for request in faults for fault in emulator_faults(request))))

    def account(self, *, base_url: str = "http://emulator") -> KaspiAccountSettings:
        # Small pages, so every state spans several of them as a real backfill does.
        return KaspiAccountSettings(name="conformance", token_env="UNUSED", token=SecretStr(self.token),
                                    base_urls=dict.fromkeys(PRODUCTION_HOSTS, base_url), page_size=25)

    def expected_order_ids(self, app: Any, now: datetime) -> set[str]:
        lag = KaspiConnector.streams["orders"].lag
        return {o.code for o in app.state.orders.values() if o.created_at < now - lag}

    def expected_review_ids(self, app: Any, now: datetime) -> set[str]:
        return set()  # no review API (kaspi.md §4)

    def expected_order(self, app: Any, order_id: str) -> ExpectedOrder:
        order = next(o for o in app.state.orders.values() if o.code == order_id)
        return ExpectedOrder(created_at=order.created_at, total=order.total, currency="KZT")

    def corrupted_ids(self, app: Any) -> set[str]:
        codes = {o.id: o.code for o in app.state.orders.values()}
        return {codes.get(record_id, record_id) for _, record_id in app.state.corrupted}

    def rate_limited_count(self, app: Any) -> int:
        return app.state.stats.total_throttled

    def short_pages_served(self, app: Any) -> int:
        return len(app.state.short_pages)

    def late_changes(self, app: Any) -> dict[str, tuple[str, str]]:
        orders = app.state.orders
        return {orders[k].code: (export_status(a), export_status(b)) for k, (a, b) in app.state.late_changes.items()}

    def response_schemas(self) -> list[ResponseSchema]:
        """The schemas the connector vendors (connectors/kaspi/schemas/), written from kaspi.md §3, §5
        and the doc's example payloads (tests/fixtures/kaspi)."""
        def load(name: str) -> dict[str, Any]:
            return json.loads((files("connectors.kaspi") / "schemas" / name).read_text(encoding="utf-8"))

        return [
            ResponseSchema("GET", ORDERS, True, load("orders_page.json")),
            ResponseSchema("GET", ORDERS + "/[^/]+/entries", True, load("entries_page.json")),
            ResponseSchema("GET", "/shop/api/v2/orderentries/[^/]+/product", True, load("product.json")),
            ResponseSchema("GET", "/shop/api/v2/.*", False, load("error.json")),
        ]


class TestKaspiConformance(ConformanceSuite):
    harness = KaspiHarness()
