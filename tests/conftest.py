"""Shared fixtures: fixture payloads, fresh stores on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

from store import Store, connect, migrate

# Property tests draw the same examples on every run of the suite, so one commit always gives one
# result; a search for new ones draws fresh (the long-search commands in each property file):
#   LOYALSYNC_PROPERTY_RANDOM=1 LOYALSYNC_PROPERTY_EXAMPLES=5000 ./dev test -n0 tests/loyalty/…
settings.register_profile("suite", derandomize=not os.environ.get("LOYALSYNC_PROPERTY_RANDOM"))
settings.load_profile("suite")

# The conformance kit, enabled as a third-party connector enables it.
pytest_plugins = ["connectors.testing.plugin"]

FIXTURES = Path(__file__).parent / "fixtures"
PG_ADMIN_URL = os.environ.get("LOYALSYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def load_fixture(platform: str, name: str):
    """A payload file from tests/fixtures/<platform>/."""
    return json.loads((FIXTURES / platform / name).read_text(encoding="utf-8"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def live_on_emulator(name: str, tmp: Path, *, orders: int, reviews: int, seed: int = 3) -> tuple:
    """A platform's demo emulator, a migrated SQLite store under `tmp`, and a live-mode config with one
    account on that emulator, our own pacing lifted: (setup, store, config) for an `App` with
    `transports={name: httpx.ASGITransport(setup.app)}`."""
    from app.config import AppConfig, AppSettings, MarketplaceAccount
    from connectors.base import RateOverride
    from connectors.registry import available_connectors

    cls = available_connectors()[name]
    setup = cls.demo(seed=seed, orders=orders, reviews=reviews, rate_limits=False)
    account = setup.account("http://emulator").model_copy(update={"rate_limits": {
        g: RateOverride(requests=1000, period_seconds=1, burst=1000) for g in cls.rate_groups or {}}})
    engine = connect(f"sqlite:///{tmp}/{name}.db")
    migrate(engine)
    config = AppConfig(settings=AppSettings(daemon={"mode": "live"}),
                       accounts=(MarketplaceAccount(name, account),), config_path=None)
    return setup, Store(engine), config


def synced_kaspi(tmp: Path, *, orders: int) -> Path:
    """A SQLite store file under `tmp` after one sync of the Kaspi emulator (`orders` orders, every
    one with a buyer) and one loyalty run: orders, members, lots. Closed, ready to copy or open."""
    import asyncio
    from datetime import UTC, datetime

    import httpx

    from app.wiring import App
    from loyalty.ledger import run_once
    from loyalty.rules import LoyaltySettings

    setup, store, config = live_on_emulator("kaspi", tmp, orders=orders, reviews=0)

    async def sync() -> None:
        async with App(config, store=store, transports={"kaspi": httpx.ASGITransport(setup.app)}) as app:
            assert all(r.ok for r in await app.sync_once(app.jobs()))

    asyncio.run(sync())
    run_once(store, LoyaltySettings(enabled=True), datetime.now(UTC))
    store.engine.dispose()
    return tmp / "kaspi.db"


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    """A migrated SQLite store in a temporary file."""
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(engine)
    yield Store(engine)
    engine.dispose()


@pytest.fixture
def pg_databases() -> Iterator[Callable[[], str]]:
    """A factory of PostgreSQL databases for one test, each fresh, all dropped afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names: list[str] = []

    def new() -> str:
        name = f"loyalsync_test_{uuid.uuid4().hex[:12]}"
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001 - any failure here means "no server to test against"
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not usable: {exc}")
        names.append(name)
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    try:
        yield new
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_databases: Callable[[], str]) -> str:
    """A PostgreSQL database of its own for one test, dropped afterwards."""
    return pg_databases()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    """A migrated store in a fresh PostgreSQL database."""
    engine = connect(pg_url)
    migrate(engine)
    yield Store(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request) -> Store:
    """The same test on both backends."""
    return request.getfixturevalue(f"{'sqlite' if request.param == 'sqlite' else 'pg'}_store")
