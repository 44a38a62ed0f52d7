"""Megamarket passes the conformance kit against its emulator (`connectors.testing`).

The harness reads the emulator's own data and converts it here, independently of `mapping.py`:
each shipment's goods units (the delivery pseudo-unit is never goods, megamarket.md §2.3), which of
them were dropped before delivery, which came back after it, in the export's words.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from typing import Any

from pydantic import SecretStr

from connectors.megamarket import MegamarketConnector
from connectors.megamarket.emulator import GET, SEARCH, EmulatorConfig, Fault, create_app
from connectors.megamarket.settings import PRODUCTION_HOSTS, MegamarketAccountSettings
from connectors.testing import ConformanceSuite, ConnectorHarness, ExpectedOrder, FaultRequest, ResponseSchema

FAULT_KINDS = {"rate_limit": "rate_limit", "server_error": "http_500", "malformed": "malformed",
               "short_page": "short_page", "late_change": "late_change",
               "truncated": "truncated", "expired_token": "expired_token", "schema_drift": "schema_drift"}
# Shipment statuses in the export's words, written out here rather than taken from mapping.py.
EXPORT_STATUS = {"NEW": "created", "PENDING": "created", "PENDING_CONFIRMATION": "created", "CONFIRMED": "created",
                 "PENDING_PACKING": "created", "PACKED": "created", "PACKING_EXPIRED": "created",
                 "SHIPPING_EXPIRED": "created", "PENDING_SHIPPING": "in_delivery", "SHIPPED": "in_delivery",
                 "DELIVERED": "delivered", "MERCHANT_CANCELED": "cancelled", "CUSTOMER_CANCELED": "cancelled"}
CANCELLED = ("MERCHANT_CANCELED", "CUSTOMER_CANCELED")


def emulator_faults(request: FaultRequest) -> list[Fault]:
    """The emulator fault that stages one kit request. Search has no pages: a short answer is
    order/get's (some asked-for shipments left out); everything else hits both endpoints' prefix."""
    kind = FAULT_KINDS[request.kind]
    if kind == "late_change":
        return [Fault(GET, kind, times=request.times, age=request.age.total_seconds(),
                      delay=request.change_after.total_seconds())]
    if kind in ("short_page", "malformed", "schema_drift"):  # what order/get's answers carry
        return [Fault(GET, kind, times=request.times, probability=request.probability, after=request.after)]
    prefix = "/api/market/v1/orderService/order/"
    return [Fault(prefix, kind, times=request.times, retry_after=request.retry_after,
                  probability=request.probability, after=request.after)]


def _units(shipment: Any, now: datetime) -> tuple[list[Any], list[Any]]:
    """(units the order counts, units that came back) at `now`: a goods unit cancelled with no
    delivery was never bought, unless every unit was (a cancelled order keeps what was ordered)."""
    goods = shipment.goods
    cancelled = [u for u in goods if shipment.unit_status_at(u, now) in CANCELLED]
    returned = [u for u in cancelled if shipment.delivered_at(u, now) is not None]
    counted = [u for u in goods if u not in cancelled or u in returned] or goods
    return counted, returned


def export_status(shipment: Any, now: datetime) -> str:
    counted, returned = _units(shipment, now)
    if returned:
        return "returned" if len(returned) == len(counted) else "partially_returned"
    return EXPORT_STATUS[shipment.status_at(now)]


class MegamarketHarness(ConnectorHarness):
    connector_cls = MegamarketConnector

    def emulator(self, *, generated_at: datetime, serving_at: datetime, monotonic: Any,
                 faults: Sequence[FaultRequest] = (), token: str | None = None) -> Any:
        # A busy day of two and a half times the search cap: every sync of the kit has to split windows.
        return create_app(EmulatorConfig(
            seed=11, orders=120, busy_day=250, generated_at=generated_at, serving_at=serving_at,
            token=token or self.token, monotonic=monotonic,
            faults=tuple(fault for request in faults for fault in emulator_faults(request))))

    def account(self, *, base_url: str = "http://emulator") -> MegamarketAccountSettings:
        return MegamarketAccountSettings(name="conformance", token_env="UNUSED", token=SecretStr(self.token),
                                         base_urls=dict.fromkeys(PRODUCTION_HOSTS, base_url), get_batch=20)

    def expected_order_ids(self, app: Any, now: datetime) -> set[str]:
        lag = MegamarketConnector.streams["orders"].lag
        return {s.shipment_id for s in app.state.shipments.values() if s.created_at < now - lag}

    def expected_review_ids(self, app: Any, now: datetime) -> set[str]:
        return set()  # no review API (megamarket.md §3)

    def expected_order(self, app: Any, order_id: str) -> ExpectedOrder:
        shipment = app.state.shipments[order_id]
        now = app.state.emulator.now()
        counted, returned = _units(shipment, now)
        return ExpectedOrder(created_at=shipment.created_at, currency="RUB",
                             total=Decimal(sum(u.final_price for u in counted)),
                             returned_total=Decimal(sum(u.final_price for u in returned)))

    def corrupted_ids(self, app: Any) -> set[str]:
        return {record_id for _, record_id in app.state.corrupted}

    def rate_limited_count(self, app: Any) -> int:
        return app.state.stats.total_throttled

    def short_pages_served(self, app: Any) -> int:
        return len(app.state.short_pages)

    def late_changes(self, app: Any) -> dict[str, tuple[str, str]]:
        # Before: as generated; after: once the change has happened, whenever the app serves (the
        # change is the shipment's last stage).
        shipments, generated = app.state.shipments, app.state.data.generated_at
        settled = generated + timedelta(days=3650)
        return {k: (export_status(shipments[k], generated), export_status(shipments[k], settled))
                for k in app.state.late_changes}

    def response_schemas(self) -> list[ResponseSchema]:
        """The schemas the connector vendors (connectors/megamarket/schemas/), written from
        megamarket.md §2 and its example payloads (tests/fixtures/megamarket)."""
        def load(name: str) -> dict[str, Any]:
            return json.loads((files("connectors.megamarket") / "schemas" / name).read_text(encoding="utf-8"))

        def or_error(name: str) -> dict[str, Any]:
            # §4: an error "reportedly with HTTP 200" and `success: 0` (a wrong token): a 200 is
            # either. The answer's `$defs` move to the root, where its `#/$defs/…` refs look.
            answer = load(name)
            return {"$defs": answer.pop("$defs", {}), "oneOf": [answer, error]}

        error = load("error.json")
        return [
            ResponseSchema("POST", SEARCH, True, or_error("search_response.json")),
            ResponseSchema("POST", GET, True, or_error("get_response.json")),
            ResponseSchema("POST", SEARCH, False, error),
            ResponseSchema("POST", GET, False, error),
        ]


class TestMegamarketConformance(ConformanceSuite):
    harness = MegamarketHarness()


def test_the_kit_s_emulator_holds_a_day_of_several_times_the_cap() -> None:
    """The kit's syncs above pass only by splitting: a search of the busy day alone answers the cap."""
    now = datetime(2026, 7, 1, 12, 0).astimezone()
    app = MegamarketHarness().emulator(generated_at=now, serving_at=now, monotonic=lambda: 0.0)
    day = app.state.data.busy_day
    assert day is not None and len(app.state.data.busy) >= 2 * 100
    assert now - timedelta(days=5) < min(app.state.shipments[i].created_at for i in app.state.data.busy)
