"""The demo's CRM step: the store's members, orders and points sent to the built-in RetailCRM
emulator through the same sink the daemon runs (`crm.retailcrm.sink`), and a table of what the CRM
then holds, read from the emulator itself.

The emulator drops the connection after every 25th credit it applied, so the table shows lost
answers found in the CRM's operations rather than sent twice. The sink's pacing (10 requests a
second against a real CRM) is counted on a fake clock here: the demo shows the sending, not the wait.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import SecretStr
from rich.table import Table

from connectors.testing import FakeTime
from crm.retailcrm.emulator import EmulatorConfig, create_app
from crm.retailcrm.settings import RetailCrmSettings
from crm.retailcrm.sink import SinkResult, deliver, enqueue
from store import Store

__all__ = ["CrmFigures", "crm_demo", "crm_table"]

DEMO_KEY = "demo-retailcrm-key"
DROP_EVERY = 25


@dataclass(frozen=True, slots=True)
class CrmFigures:
    marketplaces: tuple[str, ...]
    customers: int
    orders: int
    accounts: int
    credits: int
    charges: int
    found: int  # credits whose answers were lost, found in the CRM's operations
    skipped: int
    dead: int


async def crm_demo(store: Store, marketplaces: tuple[str, ...]) -> CrmFigures:
    """Send these marketplaces' members, orders and points to a fresh RetailCRM emulator, as
    `loyalsync crm --backfill` would."""
    app = create_app(EmulatorConfig(api_key=DEMO_KEY, drop_every=DROP_EVERY))
    sink = RetailCrmSettings(name="retailcrm-demo", url="http://retailcrm.emulator", api_key=SecretStr(DEMO_KEY),
                             max_per_second=10, marketplaces=marketplaces)
    clock, total = FakeTime(), SinkResult()
    now = datetime.now(UTC)
    await asyncio.to_thread(enqueue, store, sink, now)
    for run in range(3):
        # A lost answer's row is due again after its backoff: the later runs stand past it, as the
        # daemon's runs would, and find it in the CRM's operations instead of sending it again.
        result = await deliver(store, sink, now + run * timedelta(hours=1), claimer="demo",
                               transport=httpx.ASGITransport(app), clock=clock.monotonic, sleep=clock.sleep)
        total.found += result.found
        total.skipped += result.skipped
        total.dead += result.dead
    crm = app.state.crm
    return CrmFigures(marketplaces, len(crm.customers), len(crm.orders), len(crm.accounts), len(crm.credits()),
                      len(crm.charges()), total.found, total.skipped, total.dead)


def crm_table(figures: CrmFigures) -> Table:
    table = Table(title=f"RetailCRM (the built-in emulator: what it holds after one backfill of "
                        f"{', '.join(figures.marketplaces)} members)", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("customers", f"{figures.customers:,} (one per member, by keyed externalId: no names or phones)")
    table.add_row("orders", f"{figures.orders:,} (members' orders; uploaded 50 a call)")
    table.add_row("loyalty accounts", f"{figures.accounts:,} (created and activated before the first credit)")
    table.add_row("bonus credits", f"{figures.credits:,} (one per usable lot, days rounded inward)")
    table.add_row("", f"{figures.found} lost answers found in the CRM's operations, none sent twice")
    table.add_row("charges", f"{figures.charges:,} (take-backs of credited lots and spends)")
    if figures.skipped or figures.dead:
        table.add_row("not sent", f"{figures.skipped} (taken back before credited, or shorter than a day); "
                                  f"{figures.dead} dead letters")
    return table
