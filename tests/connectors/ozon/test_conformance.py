"""Ozon passes the shared conformance kit against its emulator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from connectors.ozon import OzonConnector
from connectors.ozon.connector import STREAMS
from connectors.ozon.emulator import EmulatorConfig, Fault, create_app
from connectors.ozon.emulator_data import FBO, US
from connectors.ozon.settings import PRODUCTION_HOSTS, OzonAccountSettings
from connectors.testing import ConformanceSuite, ConnectorHarness, ExpectedOrder, FaultRequest, ResponseSchema
from tests.connectors.ozon.schema_deviations import allowed_by_operation
from tests.spec_schemas import SpecSchemas

# Every paging endpoint a stream reads; the first is its list, where the request faults go.
STREAM_PATHS = {"orders_fbs": ("/v4/posting/fbs/list",), "orders_fbo": ("/v3/posting/fbo/list",),
                "reviews": ("/v2/review/list", "/v1/review/comment/list")}
FAULT_KINDS = {"rate_limit": "rate_limit", "server_error": "http_500", "malformed": "malformed",
               "short_page": "short_page", "late_change": "late_change",
               "truncated": "truncated", "expired_token": "expired_token", "schema_drift": "schema_drift"}
CLIENT_ID = "1943881"
# Deep enough for the kit's late changes: 45 days on FBS, and just inside the FBO re-scan's 60.
HISTORY_DAYS = 70
# The platform's words for the statuses a late change moves between, in the export's words: Ozon's
# FBS and FBO status lists (ozon.md §2.5), not mapping.py.
EXPORT_STATUS = {"delivering": "in_delivery", "delivered": "delivered", "cancelled": "cancelled"}


def _cut(now: datetime, stream: str) -> int:
    """The newest list time a sync at `now` reads: its upper bound, floored to Ozon's seconds."""
    return int((now - STREAMS[stream].lag).timestamp()) * US


class OzonHarness(ConnectorHarness):
    connector_cls = OzonConnector

    def emulator(self, *, generated_at: datetime, serving_at: datetime, monotonic: Any,
                 faults: Sequence[FaultRequest] = (), token: str | None = None) -> Any:
        return create_app(EmulatorConfig(
            seed=23, orders=300, reviews=100, history_days=HISTORY_DAYS, now=generated_at,
            clock=lambda: serving_at, client_id=CLIENT_ID, token=token, monotonic=monotonic,
            faults=tuple(fault for f in faults for fault in _faults(f)),
        ))

    def account(self, *, base_url: str = "http://emulator") -> OzonAccountSettings:
        # Small pages so every stream spans several of them, as a real backfill does.
        return OzonAccountSettings(
            name="conformance", token_env="UNUSED", token=SecretStr(self.token), client_id=CLIENT_ID,
            base_urls=dict.fromkeys(PRODUCTION_HOSTS, base_url), postings_page_size=10,
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

    def short_pages_served(self, app: Any) -> int:
        return len(app.state.faults.short_pages)

    def response_schemas(self) -> list[ResponseSchema]:
        # Ozon's official schemas (tests/fixtures/specs/ozon.json), with the deviations an official
        # example shows Ozon itself making (schema_deviations.py). Every Ozon error is one rpcStatus
        # body (ozon.md §4.3), and the document lists 429 and 401 on almost no method (§4.2), so a
        # status an operation does not list is checked against its 400 body.
        return SpecSchemas("ozon").response_schemas(allow=allowed_by_operation(), undocumented_errors_like="400")

    def late_changes(self, app: Any) -> Mapping[str, tuple[str, str]]:
        return {posting: (EXPORT_STATUS[before], EXPORT_STATUS[after])
                for posting, (before, after) in app.state.late_changes.items()}


def _faults(request: FaultRequest) -> list[Fault]:
    """The emulator faults for one kit request: short pages on every paging endpoint of the
    stream (the review list and each review's comment list), the rest on its list."""
    kind, paths = FAULT_KINDS[request.kind], STREAM_PATHS[request.stream]
    if kind in ("short_page", "schema_drift"):
        return [Fault(path, kind, times=request.times, probability=request.probability) for path in paths]
    if kind == "late_change":
        return [Fault(paths[0], kind, times=request.times, delay=request.change_after.total_seconds(),
                      age=request.age.total_seconds())]
    return [Fault(paths[0], kind, times=request.times, retry_after=request.retry_after, after=request.after)]


class TestOzonConformance(ConformanceSuite):
    harness = OzonHarness()
