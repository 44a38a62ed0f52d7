"""The daemon's `crm` job over real HTTP against the RetailCRM emulator served on loopback: scheduled
only with `[crm.retailcrm]`, one status line and the `/metrics` gauge; a wrong key logs one line
and loses nothing."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr

from app.config import AppConfig, AppSettings
from app.metrics import Metrics
from app.scheduler import CRM_JOB, Daemon
from app.status import status_table
from app.wiring import App
from connectors.serve import serve_emulator
from crm.outbox import deliveries
from crm.retailcrm.emulator import EmulatorConfig, create_app
from crm.retailcrm.settings import RetailCrmSettings
from crm.settings import CrmSettings
from store import Store
from tests.crm.test_retailcrm_sink import KEY, _member_with_lots


def config(tmp_path: Path, url: str | None, key: str = KEY) -> AppConfig:
    sink = None if url is None else RetailCrmSettings(url=url, api_key=SecretStr(key), max_per_second=10)
    return AppConfig(settings=AppSettings(crm=CrmSettings(retailcrm=sink)), accounts=(),
                     config_path=tmp_path / "loyalsync.toml")


def test_the_daemon_job_sends_to_retailcrm_and_shows_it(sqlite_store: Store, tmp_path: Path) -> None:
    _member_with_lots(sqlite_store, datetime.now(UTC))
    crm_app = create_app(EmulatorConfig(api_key=KEY))

    async def run() -> None:
        async with serve_emulator(crm_app) as base:
            daemon = Daemon(App(config(tmp_path, base), store=sqlite_store))
            assert daemon.schedule().get_job(CRM_JOB) is not None
            await daemon._crm_run()
            await daemon._crm_run()  # nothing new, nothing sent twice

    asyncio.run(run())
    crm = crm_app.state.crm
    assert len(crm.customers) == 1 and len(crm.orders) == 1
    assert [o.amount for o in crm.credits()] == [Decimal(100)] and [o.amount for o in crm.charges()] == [Decimal(30)]
    assert {d["status"] for d in deliveries(sqlite_store)} == {"sent", "skipped"}
    scraped = Metrics(sqlite_store).render().decode()
    assert 'loyalsync_crm_outbox{kind="credit",sink="retailcrm",status="sent"} 1.0' in scraped
    assert 'loyalsync_crm_outbox{kind="credit",sink="retailcrm",status="skipped"} 2.0' in scraped
    assert "loyalsync_webhook_deliveries{" not in scraped  # the sink's rows are not a webhook's
    caption = str(status_table(sqlite_store).caption)
    assert "RetailCRM retailcrm: 4 sent, 0 waiting, 0 dead, 3 not sent" in caption


def test_a_wrong_key_is_one_log_line_and_nothing_is_lost(sqlite_store: Store, tmp_path: Path, caplog) -> None:
    _member_with_lots(sqlite_store, datetime.now(UTC))
    crm_app = create_app(EmulatorConfig(api_key=KEY))

    async def run() -> None:
        async with serve_emulator(crm_app) as base:
            await Daemon(App(config(tmp_path, base, key="not-the-key-0042"), store=sqlite_store))._crm_run()

    with caplog.at_level(logging.INFO, logger="loyalsync"):
        asyncio.run(run())
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "token was rejected" in errors[0] and "LOYALSYNC_RETAILCRM_API_KEY" in errors[0]
    assert "not-the-key-0042" not in caplog.text
    assert {d["status"] for d in deliveries(sqlite_store)} == {"pending", "skipped"}
    assert crm_app.state.crm.customers == {}
    # `loyalsync status` says why they wait, and names the variable; a run that gets through clears it.
    caption = str(status_table(sqlite_store).caption)
    assert "RetailCRM retailcrm: 0 sent, 5 waiting, 0 dead, 2 not sent (see `loyalsync crm --status skipped`) " \
           "(last run: " in caption
    assert "token was rejected" in caption and "LOYALSYNC_RETAILCRM_API_KEY" in caption
    assert "not-the-key-0042" not in caption

    async def again() -> None:
        async with serve_emulator(crm_app) as base:
            await Daemon(App(config(tmp_path, base), store=sqlite_store))._crm_run()

    asyncio.run(again())
    assert "last run" not in str(status_table(sqlite_store).caption)


def test_no_retailcrm_no_job(sqlite_store: Store, tmp_path: Path) -> None:
    assert Daemon(App(config(tmp_path, None), store=sqlite_store)).schedule().get_job(CRM_JOB) is None
