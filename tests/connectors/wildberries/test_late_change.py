"""A refusal 45 days after an FBS order was created reaches the store through the whole connector.

Both order streams write the same order (Marketplace `rid` == Statistics `srid`). Marketplace
lists by creation only and re-reads 14 days per poll; Statistics pages by lastChangeDate. So the
change arrives first from Statistics (rank 1), which the store accepts because a cancellation of
an open order is taken from either source; the Marketplace re-scan (rank 2) later confirms it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from connectors.testing import FakeTime, FaultRequest
from connectors.testing.suite import NOW
from store import Store, connect, migrate
from sync.kit_driver import KIT_SALT
from sync.runner import StreamRunner
from tests.connectors.wildberries.test_conformance import WildberriesHarness

pytestmark = pytest.mark.anyio
HARNESS = WildberriesHarness()
LATE = FaultRequest(stream="orders", kind="late_change", times=3, age=timedelta(days=45),
                    change_after=timedelta(hours=1))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def sync(store: Store, at, time: FakeTime):
    app = HARNESS.emulator(generated_at=NOW, serving_at=at, monotonic=time.monotonic, faults=[LATE],
                           token=HARNESS.token)
    runner = StreamRunner(store, clock=lambda: at, write_in_thread=False)
    async with HARNESS.connector_cls(HARNESS.account(), transport=httpx.ASGITransport(app=app),
                                     clock=time.monotonic, sleep=time.sleep) as connector:
        results = [await runner.run(connector, s) for s in connector.enabled_streams()]
    assert all(r.ok for r in results), [r.error for r in results]
    return app


def stored(store: Store, keys) -> dict[str, tuple[str, str]]:
    rows = {r["order_id"]: r for r in store.iter_orders()}
    return {k: (rows[k]["status"], rows[k]["platform_status"]) for k in keys}


async def test_a_refusal_45_days_after_creation_reaches_the_store_and_stays(tmp_path: Path):
    engine = connect(f"sqlite:///{tmp_path / 'late.db'}")
    migrate(engine)
    store, time = Store(engine, salt=KIT_SALT), FakeTime()

    app = await sync(store, NOW, time)
    changes = app.state.late_changes
    assert len(changes) == 3
    assert set(changes.values()) == {("complete/ready_for_pickup", "complete/canceled_by_client")}
    # At NOW the parcels still wait at the pickup point: the Marketplace read wins (rank 2).
    assert set(stored(store, changes).values()) == {("in_delivery", "complete/ready_for_pickup")}

    # Two hours later: too old for the Marketplace poll (14 days back), so Statistics brings the
    # refusal (isCancel, lastChangeDate = the change) and the store takes it for the open order.
    await sync(store, NOW + timedelta(hours=2), time)
    assert set(stored(store, changes).values()) == {("cancelled", "isCancel")}

    # The next day's Marketplace re-scan (60 days back) reads the same orders with WB's own words:
    # the more trusted source now writes, and the status stays cancelled.
    await sync(store, NOW + timedelta(days=1, hours=3), time)
    assert set(stored(store, changes).values()) == {("cancelled", "complete/canceled_by_client")}
