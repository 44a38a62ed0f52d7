"""The rate-limited counter counts what each platform's connector declares as "too many requests"."""

from __future__ import annotations

from typing import ClassVar

import httpx

from app.metrics import Metrics
from connectors.base import Connector
from connectors.responses import ResponseAction
from store import Store


class Plain(Connector):
    name: ClassVar[str] = "plain"


class Enhanced(Connector):
    name: ClassVar[str] = "enhanced"
    error_mapping = {420: ResponseAction.RATE_LIMITED}


def test_each_platform_counts_its_own_rate_limit_statuses(sqlite_store: Store) -> None:
    metrics = Metrics(sqlite_store, connectors={"plain": Plain, "enhanced": Enhanced})
    request = httpx.Request("GET", "http://api/")
    for marketplace in ("plain", "enhanced", "unknown"):
        observe = metrics.request_observer(marketplace, "main")
        for status in (200, 420, 429, 503):
            observe(request, status)
    limited = {mp: metrics.registry.get_sample_value("loyalsync_platform_rate_limited_total",
                                                      {"marketplace": mp, "account": "main"})
               for mp in ("plain", "enhanced", "unknown")}
    assert limited == {"plain": 1, "enhanced": 2, "unknown": 1}
