"""The daemon's Prometheus metrics, in a registry of its own (never the process-global one).

Counted as things happen:

- `loyalsync_platform_requests_total{marketplace, account, status}`: answers from the platforms'
  APIs, one per attempt (retries included); `status` is the HTTP code, or `error` when no answer
  came (timeout, dropped connection).
- `loyalsync_platform_rate_limited_total{marketplace, account}`: the answers among those that say
  "too many requests" (429, or the platform's own status: `Connector.rate_limit_statuses`): a
  counter of its own, so an alert needs no status-code regex.
- `loyalsync_records_synced_total{marketplace, account, stream}`: orders/reviews written.

Read from the store at scrape time (one GROUP BY query each):

- `loyalsync_cursor_lag_seconds{marketplace, account, stream}`: now minus the stream's cursor.
- `loyalsync_last_success_timestamp_seconds{marketplace, account, stream}`: the last ok run.
- `loyalsync_quarantine_records{marketplace, account, stream}`: records that could not be mapped.
- `loyalsync_actions{marketplace, kind, status, reason}`: the actions outbox; `reason` is the
  gate's refusal reason (empty unless refused).
- `loyalsync_webhook_deliveries{endpoint, status}`: the webhook outbox (`pending`, `sent`, `dead`).
- `loyalsync_crm_outbox{sink, kind, status}`: what a CRM sink holds (`customer`, `order`, `credit`,
  `charge`; `pending`, `sent`, `dead`, `skipped`).
- `loyalsync_store_up`: 1 when those reads worked.

Read from the daemon's own record of failures (`app.health`, in process memory, since a broken
store cannot count them):

- `loyalsync_store_write_failures_total{kind}`: runs the store refused; `kind` is `disk_full`,
  `corrupted` or `write_failed`.
- `loyalsync_auth_failures_total{marketplace, account}`: runs whose token the platform rejected.
- `loyalsync_job_failures_total{job}`: runs that ended in an error, per job (`marketplace/account/
  stream`, `loyalty`, `loyalty-members`, `actions`).

And `loyalsync_up`: 1 while the scheduler runs, 0 while it is stopping.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

import httpx
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Table, func, select
from sqlalchemy.exc import SQLAlchemyError

from app.health import Health
from connectors.base import Connector
from connectors.registry import available_connectors
from store import Store
from store.tables import QuarantineRow, StreamCursorRow
from sync.runner import RunResult, utc_now

__all__ = ["CONTENT_TYPE", "Metrics"]

log = logging.getLogger("loyalsync.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_STREAM = ("marketplace", "account", "stream")
CURSORS: Table = StreamCursorRow.__table__  # type: ignore[assignment]
QUARANTINE: Table = QuarantineRow.__table__  # type: ignore[assignment]


class Metrics:
    """One daemon's metrics: counters it is told about, and gauges read from the store on scrape."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utc_now,
                 connectors: Mapping[str, type[Connector]] | None = None):
        """`connectors` (default: the installed ones) say which statuses mean "rate limited" on their platform."""
        self._rate_limit_statuses = {name: cls.rate_limit_statuses()
                                     for name, cls in (connectors or available_connectors()).items()}
        self.registry = CollectorRegistry()
        self.requests = Counter("loyalsync_platform_requests", "HTTP answers from platform APIs, per attempt.",
                                ["marketplace", "account", "status"], registry=self.registry)
        self.rate_limited = Counter("loyalsync_platform_rate_limited", "429/420 answers from platform APIs.",
                                    ["marketplace", "account"], registry=self.registry)
        self.records = Counter("loyalsync_records_synced", "Orders and reviews written to the store.",
                               list(_STREAM), registry=self.registry)
        self.running: Callable[[], bool] = lambda: False
        self.registry.register(_StoreCollector(store, clock))
        self.registry.register(_UpCollector(self))
        self.health: Health | None = None
        self.registry.register(_FailureCollector(self))

    def request_observer(self, marketplace: str, account: str) -> Callable[[httpx.Request, int | None], None]:
        """The `connectors.http.ObservedTransport` observer for one account's requests."""
        limited = self.rate_limited.labels(marketplace, account)  # shows at 0 before the first 429
        rate_limit_statuses = self._rate_limit_statuses.get(marketplace, Connector.rate_limit_statuses())

        def observe(request: httpx.Request, status: int | None) -> None:
            self.requests.labels(marketplace, account, "error" if status is None else str(status)).inc()
            if status in rate_limit_statuses:
                limited.inc()

        return observe

    def watch(self, running: Callable[[], bool]) -> None:
        """Report `running()` (the daemon's scheduler) as `loyalsync_up`."""
        self.running = running

    def watch_health(self, health: Health) -> None:
        """Report the failure counters `health` keeps (store writes, tokens, jobs)."""
        self.health = health

    def observe_run(self, result: RunResult) -> None:
        """Count what one stream run wrote (the Daemon calls this after each run)."""
        key = result.key
        self.records.labels(key.marketplace, key.account, key.stream).inc(result.records)

    def render(self) -> bytes:
        """The exposition text; reads the store, so call it off the event loop."""
        return generate_latest(self.registry)


class _UpCollector(Collector):
    def __init__(self, metrics: Metrics):
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("loyalsync_up", "1 while the daemon's scheduler runs.",
                                value=1 if self._metrics.running() else 0)


class _FailureCollector(Collector):
    """The failure counters of the daemon's `Health`; all zero-less until something failed."""

    def __init__(self, metrics: Metrics):
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        counts = self._metrics.health.snapshot() if self._metrics.health is not None else {}
        store = CounterMetricFamily("loyalsync_store_write_failures", "Runs the store refused, by kind.",
                                    labels=["kind"])
        for kind, n in sorted(counts.get("store_write_failures", {}).items()):
            store.add_metric([kind], n)
        auth = CounterMetricFamily("loyalsync_auth_failures", "Runs whose token the platform rejected.",
                                   labels=["marketplace", "account"])
        for (mp, acct), n in sorted(counts.get("auth_failures", {}).items()):
            auth.add_metric([mp, acct], n)
        jobs = CounterMetricFamily("loyalsync_job_failures", "Runs that ended in an error, per job.",
                                   labels=["job"])
        for job, n in sorted(counts.get("job_failures", {}).items()):
            jobs.add_metric([job], n)
        yield from (store, auth, jobs)


class _StoreCollector(Collector):
    """Gauges read from the store at scrape time; a store that cannot be read sets store_up to 0."""

    def __init__(self, store: Store, clock: Callable[[], datetime]):
        self.store = store
        self.clock = clock

    def describe(self) -> list[Metric]:
        return []  # no store reads at registration

    def collect(self) -> Iterator[Metric]:
        try:
            families = self._read()
        except SQLAlchemyError as exc:
            log.warning("metrics: cannot read the store: %s", type(exc).__name__)
            families = []
        yield GaugeMetricFamily("loyalsync_store_up", "1 when the store could be read for this scrape.",
                                value=1 if families else 0)
        yield from families

    def _read(self) -> list[Metric]:
        from crm.outbox import SINK_TYPES, delivery_counts, type_counts
        from loyalty.outbox import counts

        now = self.clock()
        lag = GaugeMetricFamily("loyalsync_cursor_lag_seconds", "Seconds from the stream's cursor to now.",
                                labels=list(_STREAM))
        success = GaugeMetricFamily("loyalsync_last_success_timestamp_seconds",
                                    "Unix time of the stream's last successful run.", labels=list(_STREAM))
        quarantine = GaugeMetricFamily("loyalsync_quarantine_records", "Records quarantined, per stream.",
                                       labels=list(_STREAM))
        actions = GaugeMetricFamily("loyalsync_actions", "Actions in the outbox by kind, status and refusal.",
                                    labels=["marketplace", "kind", "status", "reason"])
        c, q = CURSORS.c, QUARANTINE.c
        with self.store.engine.connect() as conn:
            cursors = conn.execute(select(c.marketplace, c.account, c.stream, c.cursor_at,
                                          c.last_success_at)).all()
            held = conn.execute(select(q.marketplace, q.account, q.stream, func.count())
                                .group_by(q.marketplace, q.account, q.stream)).all()
        in_quarantine: dict[tuple[str, str, str], int] = defaultdict(int)
        for mp, acct, stream, cursor_at, last_success in cursors:
            in_quarantine[(mp, acct, stream)] = 0  # every known stream shows, at zero too
            if cursor_at is not None:
                lag.add_metric([mp, acct, stream], max(0.0, (now - cursor_at).total_seconds()))
            if last_success is not None:
                success.add_metric([mp, acct, stream], last_success.timestamp())
        for mp, acct, stream, n in held:
            in_quarantine[(mp, acct, stream)] = int(n)
        for labels, n in sorted(in_quarantine.items()):
            quarantine.add_metric(list(labels), n)
        for (mp, kind, status, reason), n in sorted(counts(self.store).items(), key=str):
            actions.add_metric([mp, kind, status, reason or ""], n)
        webhooks = GaugeMetricFamily("loyalsync_webhook_deliveries", "Webhook deliveries by endpoint and status.",
                                     labels=["endpoint", "status"])
        for (endpoint, status), n in sorted(delivery_counts(self.store, sinks=False).items()):
            webhooks.add_metric([endpoint, status], n)
        crm = GaugeMetricFamily("loyalsync_crm_outbox", "What a CRM sink holds, by sink, kind and status.",
                                labels=["sink", "kind", "status"])
        for (sink, kind, status), n in sorted(type_counts(self.store).items()):
            if kind.startswith(SINK_TYPES):
                crm.add_metric([sink, kind.removeprefix(SINK_TYPES), status], n)
        return [lag, success, quarantine, actions, webhooks, crm]
