"""Crash harness for the RetailCRM sink (issue 23): `loyalsync crm --backfill` killed with SIGKILL
at random moments, against a RetailCRM emulator served on a real socket that applies every third
credit and then drops the connection. Afterwards the emulator holds exactly one credit per usable
earn lot of the store (the reference worked from the ledger in tests/crm/test_retailcrm_sink.py),
one customer per member and one order per member's order: none twice, none missing.

The emulator runs in a thread of this test process, so its state outlives every killed backfill.
After the kills, one last delivery in this process, its business clock moved past the backoffs,
finishes what the killed runs left waiting.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from random import Random

from sqlalchemy import select

from connectors.testing.serving import served_all
from crm.outbox import DELIVERIES
from crm.retailcrm.emulator import EmulatorConfig, create_app
from crm.retailcrm.sink import deliver, enqueue
from store import Store, connect
from tests.acceptance.crash_harness import LOYALSYNC, default_kills
from tests.conftest import synced_kaspi
from tests.crm.test_retailcrm_sink import KEY, ORDERS, credits_in, expected_credits, sink


def test_sigkill_during_a_crm_backfill_leaves_each_lot_credited_exactly_once(tmp_path):
    database = f"sqlite:///{synced_kaspi(tmp_path, orders=60)}"
    crm_app = create_app(EmulatorConfig(api_key=KEY, drop_every=3))
    crm = crm_app.state.crm
    rng = Random(23)
    killed = 0
    with served_all([crm_app], quiet_disconnects=True) as [url]:
        toml = tmp_path / "loyalsync.toml"
        toml.write_text(f'[database]\nurl = "{database}"\n[crm.retailcrm]\nurl = "{url}"\nmax_per_second = 10\n')
        env = {**os.environ, "LOYALSYNC_RETAILCRM_API_KEY": KEY}
        for _ in range(default_kills()):
            proc = subprocess.Popen([str(LOYALSYNC), "crm", "--backfill", "--config", str(toml)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                _, stderr = proc.communicate(timeout=rng.uniform(0.5, 3.0))
                assert proc.returncode == 0, stderr.decode()[-2000:]
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                killed += 1
        store = Store(connect(database))
        now = datetime.now(UTC)
        for _ in range(20):  # what the killed runs left waiting (backoffs), sent by a later run
            enqueue(store, sink(url=url), now)
            # Under the backfill's own name, as the next backfill on this host: the killed ones' claims are its own.
            asyncio.run(deliver(store, sink(url=url), now, claimer=f"{socket.gethostname()}/crm-backfill"))
            with store.engine.connect() as conn:
                if not conn.execute(select(DELIVERIES.c.id).where(DELIVERIES.c.status == "pending")).first():
                    break
            now += timedelta(hours=7)
        else:
            raise AssertionError("rows still pending after the kills")

    assert killed >= 2, "the kills must land mid-backfill to test anything"
    assert crm.dropped >= 3
    assert credits_in(crm_app) == expected_credits(store, datetime.now(UTC))
    with store.engine.connect() as conn:
        members = {f"ls:{r.marketplace}:{r.account}:{r.buyer_key}" for r in conn.execute(
            select(ORDERS.c.marketplace, ORDERS.c.account, ORDERS.c.buyer_key).distinct()
            .where(ORDERS.c.buyer_key.is_not(None)))}
        orders = conn.execute(select(ORDERS.c.order_id).where(ORDERS.c.buyer_key.is_not(None))).scalars().all()
    # The emulator refuses a second customer or order with the same externalId: once each, or an error.
    assert set(crm.customers) == members
    assert sorted(o["number"] for o in crm.orders.values()) == sorted(orders)
    assert len(crm.accounts) == len({o.account for o in crm.credits()})  # one loyalty account per member
