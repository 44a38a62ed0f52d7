"""Kaspi.kz traps end to end: the emulator (built from kaspi.md), the connector and the real runner.

Each test would fail if its trap were ignored: a change more than 20 days after the order reaches
the store only through the re-scan (shown by a run without it), one buyer's two phone forms are one
buyer key, and a status no document names quarantines that order alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from app.export import export_rows
from app.wiring import App
from connectors.base import StreamSettings
from connectors.capabilities import ActionKind, ActionRule, Channel
from connectors.kaspi import KaspiConnector
from connectors.kaspi.emulator import EmulatorConfig, create_app
from connectors.kaspi.settings import KaspiAccountSettings
from connectors.testing import FakeTime
from loyalty.action_job import plan_actions
from loyalty.action_settings import ActionSettings
from loyalty.ledger import entries_of, run_once
from loyalty.rules import LoyaltySettings
from store import Store, connect, migrate
from sync.runner import StreamRunner
from tests.conftest import live_on_emulator

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOKEN = "kaspi-sync-token-5b20"
LATER = NOW + timedelta(days=10)
# Kaspi's statuses in the export's words, written out here (not taken from mapping.py).
EXPORT = {"APPROVED_BY_BANK": "created", "COMPLETED": "delivered", "CANCELLING": "cancelled", "CANCELLED": "cancelled",
          "RETURNED": "returned", "KASPI_DELIVERY_RETURN_REQUESTED": "returned",
          "RETURN_ACCEPTED_BY_MERCHANT": "returned"}


def exported(stage) -> str:
    if stage.status == "ACCEPTED_BY_MERCHANT":
        return "in_delivery" if stage.state in ("DELIVERY", "KASPI_DELIVERY") else "created"
    return EXPORT[stage.status]


# One clock for the emulator's limit and the client's pacing: waits cost no time, and the
# emulator's 6 requests a second are kept as they would be in real time.
TIME = FakeTime()


def app_at(at: datetime, **config):
    return create_app(EmulatorConfig(seed=21, orders=600, history_days=60, generated_at=NOW, serving_at=at,
                                     token=TOKEN, monotonic=TIME.monotonic, **config))


async def sync(store: Store, app, at: datetime, **account) -> None:
    time = TIME
    settings = KaspiAccountSettings(name="shop", token_env="UNUSED", token=SecretStr(TOKEN),
                                    base_urls={"api": "http://emulator"}, **account)
    runner = StreamRunner(store, clock=lambda: at, write_in_thread=False)
    async with KaspiConnector(settings, transport=httpx.ASGITransport(app=app), clock=time.monotonic,
                              sleep=time.sleep) as connector:
        result = await runner.run(connector, "orders")
    assert result.ok, result.error


def statuses(store: Store) -> dict[str, str]:
    return {o["order_id"]: o["status"] for o in export_rows(store, "orders")}


async def test_a_change_weeks_after_the_order_reaches_the_store_with_the_rescan(sqlite_store, tmp_path):
    await sync(sqlite_store, app_at(NOW), NOW)
    later = app_at(LATER)
    orders = list(later.state.orders.values())
    # Orders that changed between the two syncs more than 20 days after they were created, and
    # created before the 14 days the second run re-reads (from the first run's end): only the
    # 60-day re-scan can see them.
    late = {o.code: exported(o.at(LATER)) for o in orders
            if NOW < o.at(LATER).since < LATER - timedelta(minutes=1)
            and o.at(LATER).since - o.created_at > timedelta(days=20)
            and o.created_at < NOW - timedelta(days=14, minutes=1)}
    assert len(late) >= 5, "the emulator must stage changes weeks after the order"
    assert all(statuses(sqlite_store)[code] != status for code, status in late.items())

    await sync(sqlite_store, later, LATER)
    stored = statuses(sqlite_store)
    assert {code: stored[code] for code in late} == late
    settled = {o.code: exported(o.at(LATER)) for o in orders if o.created_at < LATER - timedelta(minutes=1)}
    assert stored == settled  # and every other order is as Kaspi shows it now

    # The same two syncs without the re-scan leave those orders as they were: the trap is real.
    engine = connect(f"sqlite:///{tmp_path / 'no-rescan.db'}")
    migrate(engine)
    without = Store(engine)
    no_rescan = {"orders": StreamSettings(rescan_every=timedelta(days=3650))}
    await sync(without, app_at(NOW), NOW, streams=no_rescan)
    await sync(without, app_at(LATER), LATER, streams=no_rescan)
    assert all(statuses(without)[code] != status for code, status in late.items())


async def test_one_buyer_with_two_phone_forms_is_one_buyer_key(sqlite_store):
    app = app_at(NOW)
    await sync(sqlite_store, app, NOW)
    keys: dict[str, set[str]] = {}
    buyer_of = {o.code: o.buyer for o in app.state.orders.values()}
    for row in export_rows(sqlite_store, "orders"):
        keys.setdefault(buyer_of[row["order_id"]], set()).add(row["buyer_key"])
    both = [b for b, forms in app.state.customer_forms.items() if {len(f) for f in forms} == {10, 11}]
    assert both, "the emulator must serve some buyer's phone in both forms"
    assert all(len(keys[b]) == 1 and None not in keys[b] for b in keys)
    assert len({next(iter(k)) for k in keys.values()}) == len(keys)  # and two buyers never share one


async def test_a_status_no_document_names_quarantines_that_order_and_stores_the_rest(sqlite_store):
    app = app_at(NOW, unknown_statuses=3)
    await sync(sqlite_store, app, NOW)
    unknown = {o.code for o in app.state.orders.values()
               if o.at(NOW).status not in (*EXPORT, "ACCEPTED_BY_MERCHANT")}
    assert len(unknown) == 3
    quarantined = sqlite_store.quarantine()
    assert {q["record_key"] for q in quarantined} == unknown
    assert all("unknown Kaspi status" in q["reason"] for q in quarantined)
    # The record is kept for a person to look at, without the buyer nested in `attributes.customer`.
    kept = repr([q["payload"] for q in quarantined])
    buyers = [o for o in app.state.orders.values() if o.code in unknown]
    assert "attributes" in kept and "totalPrice" in kept
    for order in buyers:
        for value in (order.cell_phone, order.first_name, order.last_name, order.customer_id):
            assert value not in kept, value
    expected = {o.code for o in app.state.orders.values() if o.created_at < NOW - timedelta(minutes=1)}
    assert set(statuses(sqlite_store)) == expected - unknown


def test_kaspi_members_earn_points_and_get_the_seller_bonus_task_not_promo_codes_or_chats(tmp_path):
    """Kaspi buyers become members and earn points, but Kaspi has no promo-code API and no seller
    chat (kaspi.md §8): nothing is planned that the gate would refuse for every member. Offered
    through an API, the same members would get promo codes: the capability is what stops them.
    What Kaspi has, «Бонус от продавца» in the Kaspi Pay app, is one ops task with the numbers."""


    setup, store, config = live_on_emulator("kaspi", tmp_path, orders=400, reviews=0)
    now = datetime.now(UTC)

    async def synced() -> dict:
        async with App(config, store=store, transports={"kaspi": httpx.ASGITransport(setup.app)}) as app:
            assert all(r.ok for r in await app.sync_once(app.jobs()))
            return app.capabilities()

    capabilities = asyncio.run(synced())
    run_once(store, LoyaltySettings(enabled=True), now)
    settings = ActionSettings.model_validate({"promo": {"enabled": True, "redeem_at": 100},
                                              "chat": {"points_notice": True}})
    planned = [a for a in plan_actions(store, settings, capabilities, now) if a.marketplace == "kaspi"]
    members = {e["buyer_key"] for e in entries_of(store) if e["marketplace"] == "kaspi"}
    held = sum((e["amount"] for e in entries_of(store) if e["marketplace"] == "kaspi"), Decimal(0))
    assert len(members) > 50 and held > 0
    [task] = planned
    assert task.kind is ActionKind.OPS_TASK and task.key == "seller-bonus:kaspi:demo:5"
    assert (task.params["members"], Decimal(task.params["points_held"])) == (len(members), held)
    assert "«Бонус от продавца»" in task.title and any("5%" in step for step in task.params["steps"])
    kaspi = capabilities["kaspi"]
    offered = replace(kaspi, actions={**kaspi.actions, ActionKind.CREATE_PROMO_CODE: ActionRule(channel=Channel.API)})
    promo = [a for a in plan_actions(store, settings, {**capabilities, "kaspi": offered}, now)
             if a.kind is ActionKind.CREATE_PROMO_CODE]
    assert len(promo) > 10
    store.engine.dispose()
