"""The RetailCRM sink's cost on SQLite: what a first backfill stores, what an idle run costs, and how
fast rows go out against the in-process emulator.

Untimed setup: MEMBERS Kaspi members with LOTS_PER earn lots each (one order per lot, delivered, the
lot usable for a year since a day after delivery), written straight into `orders` and
`loyalty_ledger`; a tenth of the members also have a take-back of one lot.

Timed:
  enqueue, first run     `enqueue` on a store the sink has never seen: every customer, order, credit
                         and charge row stored (rows/s);
  enqueue, idle          `enqueue` again with nothing new: what the daemon's crm job pays every
                         `schedule.crm_interval` before sending anything (the anti-joins over the
                         ledger), beside a baseline measured in the same run: one COUNT(*) over the
                         same lots (`available_from <= now`), the least any scan of them costs;
  deliver                `deliver` of everything of --send members (customers, orders, accounts,
                         credits, charges; a store of their own) against the RetailCRM emulator
                         through httpx.ASGITransport, pacing on a fake clock: rows/s and
                         requests/s of the sink itself (a real CRM at max_per_second 5 is the
                         limit there, not this).

Run: .venv/bin/python bench/crm.py [--members 20000] [--lots 5] [--send 300]
No target is set for these (issue 23 sets none); the figures are reported. Writes bench/results/crm.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from bench._common import print_rows, row, write_result  # noqa: E402
from connectors.testing import FakeTime  # noqa: E402
from crm.retailcrm.emulator import EmulatorConfig, create_app  # noqa: E402
from crm.retailcrm.settings import RetailCrmSettings  # noqa: E402
from crm.retailcrm.sink import deliver, enqueue  # noqa: E402
from store import Store, connect, migrate  # noqa: E402
from store.loyalty_tables import LedgerEntryRow  # noqa: E402
from store.tables import OrderRow  # noqa: E402

LEDGER, ORDERS = LedgerEntryRow.__table__, OrderRow.__table__
NOW = datetime.now(UTC).replace(microsecond=0)
KEY = "bench-key"


def generate(store: Store, members: int, lots: int) -> int:
    """Orders and lots written straight into the tables; how many lots."""
    orders, entries = [], []
    for m in range(members):
        buyer = f"{m:064x}"
        for n in range(lots):
            order_id = f"{m}-{n}"
            created = NOW - timedelta(days=60 + n)
            # Written over the weeks the syncs ran, not in one instant (a run re-reads the last
            # minutes of writes: CHANGE_MARGIN).
            written = created + timedelta(days=3, seconds=m)
            orders.append({"marketplace": "kaspi", "account": "main", "order_id": order_id, "created_at": created,
                           "updated_at": created + timedelta(days=3), "status": "delivered",
                           "platform_status": "COMPLETED", "buyer_key": buyer, "currency": "KZT",
                           "total": Decimal(5000), "status_changed_at": created + timedelta(days=3),
                           "changed_at": written})
            avail = created + timedelta(days=17, hours=5)
            entries.append({"marketplace": "kaspi", "account": "main", "buyer_key": buyer, "kind": "earn",
                            "amount": Decimal(50 + n), "idempotency_key": f"earn:kaspi:main:{order_id}:rate",
                            "order_id": order_id, "rule": "rate", "effective_at": created, "available_from": avail,
                            "expires_at": avail + timedelta(days=365)})
            if m % 10 == 0 and n == 0:
                entries.append({"marketplace": "kaspi", "account": "main", "buyer_key": buyer, "kind": "reverse",
                                "amount": Decimal(-50), "idempotency_key": f"reverse:kaspi:main:{order_id}:rate#1",
                                "order_id": order_id, "rule": "rate", "effective_at": NOW - timedelta(days=1),
                                "available_from": None, "expires_at": None})
    with store.engine.begin() as conn:
        for start in range(0, len(orders), 10_000):
            conn.execute(insert(ORDERS), orders[start:start + 10_000])
        for start in range(0, len(entries), 10_000):
            conn.execute(insert(LEDGER), entries[start:start + 10_000])
    return members * lots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=20_000)
    ap.add_argument("--lots", type=int, default=5)
    ap.add_argument("--send", type=int, default=300, help="members whose rows the deliver figure sends")
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(dir=args.dir))
    engine = connect(f"sqlite:///{folder / 'bench.db'}")
    migrate(engine)
    store = Store(engine)
    lots = generate(store, args.members, args.lots)
    sink = RetailCrmSettings(url="http://crm.bench", api_key=SecretStr(KEY), max_per_second=10)

    started = time.perf_counter()
    stored = enqueue(store, sink, NOW)
    first = time.perf_counter() - started

    idle = []
    for _ in range(3):
        started = time.perf_counter()
        assert enqueue(store, sink, NOW) == 0
        idle.append(time.perf_counter() - started)
    baseline = []
    for _ in range(3):
        started = time.perf_counter()
        with store.engine.connect() as conn:
            conn.execute(select(func.count()).select_from(LEDGER).where(LEDGER.c.kind == "earn",
                                                                       LEDGER.c.available_from <= NOW)).scalar()
        baseline.append(time.perf_counter() - started)

    # deliver: a store of its own with --send members, everything due.
    small = Store(connect(f"sqlite:///{folder / 'deliver.db'}"))
    migrate(small.engine)
    generate(small, args.send, args.lots)
    due = enqueue(small, sink, NOW)
    app = create_app(EmulatorConfig(api_key=KEY))
    clock = FakeTime()
    started = time.perf_counter()
    result = asyncio.run(deliver(small, sink, NOW, claimer="bench", transport=httpx.ASGITransport(app),
                                 clock=clock.monotonic, sleep=clock.sleep))
    sending = time.perf_counter() - started
    requests = app.state.crm.requests

    idle_s, base_s = min(idle), min(baseline)
    rows = [
        row(f"enqueue, first run ({stored:,} rows from {lots:,} lots)", stored / first, "rows/s"),
        row("enqueue, idle (nothing new)", idle_s, "s"),
        row("baseline: COUNT(*) of the usable lots", base_s, "s"),
        row("idle enqueue / baseline", idle_s / base_s, "x"),
        row(f"deliver ({result.sent:,} of {due:,} due rows sent)", result.sent / sending, "rows/s"),
        row("deliver, requests to the emulator", requests / sending, "req/s"),
    ]
    print_rows("crm", rows)
    write_result("crm", vars(args) | {"dir": str(folder)}, rows, sent=result.sent, due=due, requests=requests)


if __name__ == "__main__":
    main()
