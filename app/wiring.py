"""The one object a command builds: config, store, runner and connectors hang off it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from app.config import AppConfig, MarketplaceAccount
from app.logs import log_context
from connectors.base import Connector
from connectors.http import ObservedTransport, ResponseObserver
from connectors.redaction import RUNTIME_SECRETS
from connectors.registry import available_connectors
from store import Store, connect, migrate
from store.tokens import StoreTokenCache
from sync.cluster import account_lease
from sync.leases import Fence
from sync.runner import RunResult, StreamRunner, utc_now

__all__ = ["App", "JobSpec", "open_store", "store_connections"]


def open_store(database_url: str, *, connections: int = 5) -> Store:
    """Connect, apply migrations, and hand back the store (`connections`: see `store.connect`)."""
    engine: Engine = connect(database_url, connections=connections)
    migrate(engine)
    return Store(engine)


def store_connections(config: AppConfig) -> int:
    """Store connections the daemon uses at once: one per job slot (its writer), plus the
    heartbeat, the actions executor, the store-wide jobs and the status endpoint."""
    return config.settings.schedule.max_concurrent_jobs + 4


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One scheduled unit of work: a stream of an account."""

    account: MarketplaceAccount
    stream: str

    @property
    def id(self) -> str:
        return f"{self.account.marketplace}/{self.account.settings.name}/{self.stream}"

    @property
    def lease(self) -> str:
        """The lease that lets a replica run this job: its account's (`sync.cluster`)."""
        return account_lease(self.account.marketplace, self.account.settings.name)

    @property
    def log_fields(self) -> dict[str, str]:
        """What `app.logs.log_context` tags this job's log lines with."""
        return {"marketplace": self.account.marketplace, "account": self.account.settings.name,
                "stream": self.stream}


class App:
    """Builds connectors for the configured accounts and syncs them into the store."""

    def __init__(
        self,
        config: AppConfig,
        *,
        store: Store | None = None,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        connectors: Mapping[str, type[Connector]] | None = None,
        clock: Callable[[], datetime] = utc_now,
        request_observer: Callable[[str, str], ResponseObserver] | None = None,
    ):
        """`request_observer(marketplace, account)` gives the observer of that account's HTTP answers."""
        self.config = config
        self.store = store or open_store(config.settings.database.sqlalchemy_url,
                                         connections=store_connections(config))
        # Tests and the demo plug emulators in per marketplace, through httpx's transport seam.
        self.transports = dict(transports or {})
        self.request_observer = request_observer
        self.connector_classes = dict(connectors or available_connectors())
        self.runner = StreamRunner(self.store, clock=clock)
        # Runtime tokens (OAuth) live in the store, so replicas on one database share one per account.
        self.token_cache = StoreTokenCache(self.store.engine)
        # One connector (so one HTTP client and one rate budget) per account for the App's life:
        # a fresh budget per run would let frequent polls overspend the platform's limits.
        self._connectors: dict[str, Connector] = {}
        for acct in self.accounts():
            self.store.ensure_account(acct.marketplace, acct.settings.name)

    def accounts(self, name: str | None = None) -> list[MarketplaceAccount]:
        """Enabled accounts, optionally only the one called `name` (or `marketplace/name`)."""
        found = [a for a in self.config.accounts if a.settings.enabled]
        if name is not None:
            found = [a for a in found if name in (a.settings.name, f"{a.marketplace}/{a.settings.name}")]
        return found

    def capabilities(self) -> dict[str, Any]:
        """What each known platform allows (`connectors.capabilities.Capabilities`), by marketplace."""
        return {name: cls.capabilities for name, cls in self.connector_classes.items()}

    def write_connectors(self) -> dict[tuple[str, str], Connector]:
        """The enabled accounts' connectors by (marketplace, account), for the actions executor."""
        return {(a.marketplace, a.settings.name): self.connector(a) for a in self.accounts()}

    def secrets(self) -> list[str]:
        """The accounts' tokens and client secrets, and the tokens fetched so far, to redact from
        anything recorded."""
        configured = [s.get_secret_value() for a in self.accounts()
                      for s in (a.settings.token, getattr(a.settings, "client_secret", None)) if s is not None]
        crm = self.config.settings.crm
        configured += [e.secret.get_secret_value() for e in crm.webhooks]
        if crm.retailcrm is not None:
            configured.append(crm.retailcrm.api_key.get_secret_value())
        return [s for s in (*configured, *RUNTIME_SECRETS) if s]

    def connector(self, account: MarketplaceAccount) -> Connector:
        """The account's long-lived connector."""
        key = f"{account.marketplace}/{account.settings.name}"
        if key not in self._connectors:
            cls = self.connector_classes[account.marketplace]
            transport = self.transports.get(account.marketplace)
            if self.request_observer is not None:
                # Through the transport every connector passes on: connectors never know who counts.
                observer = self.request_observer(account.marketplace, account.settings.name)
                transport = ObservedTransport(transport, observer)
            self._connectors[key] = cls(account.settings, transport=transport, token_cache=self.token_cache)
        return self._connectors[key]

    async def aclose(self) -> None:
        """Close every connector's HTTP client."""
        connectors, self._connectors = list(self._connectors.values()), {}
        for c in connectors:
            await c.aclose()

    async def __aenter__(self) -> App:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def jobs(self, account: str | None = None, stream: str | None = None) -> list[JobSpec]:
        """Every (account, stream) to run, filtered like `sync --account/--stream`."""
        jobs = []
        for acct in self.accounts(account):
            cls = self.connector_classes[acct.marketplace]
            enabled = [s for s in cls.streams
                       if acct.settings.streams.get(s) is None or acct.settings.streams[s].enabled]
            jobs.extend(JobSpec(acct, s) for s in enabled if stream in (None, s))
        return jobs

    async def run_job(self, job: JobSpec, on_page: Callable[[RunResult], None] | None = None,
                      fence: Fence | None = None) -> RunResult:
        """Run one stream of one account to completion; its log lines name the account and stream."""
        with log_context(**job.log_fields):
            return await self.runner.run(self.connector(job.account), job.stream, on_page=on_page, fence=fence)

    async def sync_once(self, jobs: Iterable[JobSpec],
                        on_page: Callable[[JobSpec, RunResult], None] | None = None,
                        ) -> list[RunResult]:
        """Run every job once, accounts in parallel, each account's streams one after another.

        Streams of one account share that account's rate budget anyway; accounts do not.
        """
        by_account: dict[str, list[JobSpec]] = {}
        for job in jobs:
            by_account.setdefault(f"{job.account.marketplace}/{job.account.settings.name}", []).append(job)

        async def account_jobs(batch: list[JobSpec]) -> list[RunResult]:
            out = []
            for job in batch:
                cb = (lambda r, j=job: on_page(j, r)) if on_page else None
                out.append(await self.run_job(job, on_page=cb))
            return out

        results = await asyncio.gather(*(account_jobs(b) for b in by_account.values()))
        return [r for batch in results for r in batch]
