"""Avito passes the conformance kit against its emulator (`connectors.testing`).

The harness reads the emulator's own data and converts it here, independently of `mapping.py`
(Avito's statuses in the export's words, the goods' total after discounts, ISO and unix times).
The account signs in with OAuth client credentials, so the kit's secret is the client secret and a
token that expires mid-sync must be refreshed, not reported (`refreshes_token`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from importlib.resources import files
from typing import Any

from pydantic import SecretStr

from connectors.avito import AvitoConnector
from connectors.avito.emulator import EmulatorConfig, Fault, create_app
from connectors.avito.settings import PRODUCTION_HOSTS, AvitoAccountSettings
from connectors.base import AccountSettings
from connectors.testing import ConformanceSuite, ConnectorHarness, ExpectedOrder, FaultRequest, ResponseSchema

ORDERS = "/order-management/1/orders"
REVIEWS = "/ratings/v1/reviews"
STREAM_PATHS = {"orders": ORDERS, "orders_open": ORDERS, "order_buyers": ORDERS, "reviews": REVIEWS}
FAULT_KINDS = {"rate_limit": "rate_limit", "server_error": "http_500", "malformed": "malformed",
               "short_page": "short_page", "late_change": "late_change",
               "truncated": "truncated", "expired_token": "expired_token", "schema_drift": "schema_drift"}
CLIENT_ID = "conformance-client"
# Avito's statuses in the export's words, written out here (not taken from mapping.py).
EXPORT_STATUS = {"on_confirmation": "created", "ready_to_ship": "created", "in_transit": "in_delivery",
                 "delivered": "delivered", "closed": "delivered", "canceled": "cancelled", "on_return": "returned",
                 "in_dispute": "returned"}


def emulator_faults(request: FaultRequest) -> list[Fault]:
    kind = FAULT_KINDS[request.kind]
    path = STREAM_PATHS[request.stream]
    if kind == "late_change":
        return [Fault(path, kind, times=request.times, age=request.age.total_seconds(),
                      delay=request.change_after.total_seconds())]
    return [Fault(path, kind, times=request.times, retry_after=request.retry_after,
                  probability=request.probability, after=request.after)]


class AvitoHarness(ConnectorHarness):
    connector_cls = AvitoConnector
    token = "conformance-client-secret-5e1d"  # the client secret: never in a log or the store
    refreshes_token = True
    # The three order streams read one list (GET /order-management/1/orders).
    shares_endpoint = {"orders_open": "orders", "order_buyers": "orders"}

    def emulator(self, *, generated_at: datetime, serving_at: datetime, monotonic: Any,
                 faults: Sequence[FaultRequest] = (), token: str | None = None) -> Any:
        return create_app(EmulatorConfig(
            seed=11, orders=200, reviews=80, client_id=CLIENT_ID, client_secret=token or self.token,
            generated_at=generated_at, serving_at=serving_at, monotonic=monotonic,
            faults=tuple(fault for request in faults for fault in emulator_faults(request))))

    def account(self, *, base_url: str = "http://emulator") -> AvitoAccountSettings:
        # Small pages, so every stream spans several of them.
        return AvitoAccountSettings(name="conformance", client_id=CLIENT_ID, client_secret_env="UNUSED",
                                    client_secret=SecretStr(self.token),
                                    base_urls=dict.fromkeys(PRODUCTION_HOSTS, base_url), orders_page_size=15,
                                    reviews_page_size=25)

    def with_secret(self, account: AccountSettings, secret: str) -> AccountSettings:
        return account.model_copy(update={"client_secret": SecretStr(secret)})

    def expected_order_ids(self, app: Any, now: datetime) -> set[str]:
        lag = AvitoConnector.streams["orders"].lag
        return {o.id for o in app.state.orders.values() if o.created_at < now - lag}

    def expected_review_ids(self, app: Any, now: datetime) -> set[str]:
        return {str(r.id) for r in app.state.reviews.values() if r.active and r.created_at <= now}

    def expected_order(self, app: Any, order_id: str) -> ExpectedOrder:
        order = app.state.orders[order_id]
        return ExpectedOrder(created_at=order.created_at, total=order.goods_total, currency="RUB")

    def corrupted_ids(self, app: Any) -> set[str]:
        return {str(record_id) for _, record_id in app.state.corrupted}

    def rate_limited_count(self, app: Any) -> int:
        return app.state.stats.total_throttled

    def short_pages_served(self, app: Any) -> int:
        return len(app.state.short_pages)

    def late_changes(self, app: Any) -> dict[str, tuple[str, str]]:
        return {k: (EXPORT_STATUS[a], EXPORT_STATUS[b]) for k, (a, b) in app.state.late_changes.items()}

    def response_schemas(self) -> list[ResponseSchema]:
        """The schemas the connector vendors (connectors/avito/schemas/), from avito.md and the
        official spec examples (tests/fixtures/avito)."""
        def load(name: str) -> dict[str, Any]:
            return json.loads((files("connectors.avito") / "schemas" / name).read_text(encoding="utf-8"))

        return [
            ResponseSchema("POST", "/token/?", True, load("token.json")),
            ResponseSchema("POST", "/token/?", False, load("token_error.json")),
            ResponseSchema("GET", "/core/v1/accounts/self", True, load("account_self.json")),
            ResponseSchema("GET", ORDERS, True, load("orders_page.json")),
            ResponseSchema("GET", ORDERS, False, load("orders_error.json")),
            ResponseSchema("GET", REVIEWS, True, load("reviews_page.json")),
            ResponseSchema("GET", "/ratings/v1/.*", False, load("reviews_error.json")),
            ResponseSchema("POST", "/ratings/v1/answers", True, load("answer.json")),
            ResponseSchema("POST", "/ratings/v1/answers", False, load("reviews_error.json")),
            ResponseSchema("GET", "/messenger/v2/accounts/[^/]+/chats/[^/]+", True, load("chat.json")),
        ]


class TestAvitoConformance(ConformanceSuite):
    harness = AvitoHarness()
