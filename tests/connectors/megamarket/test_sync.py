"""Megamarket traps end to end: the emulator (built from megamarket.md by a second reader), the
connector and the real runner. Each test would fail if its trap were ignored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from app.export import export_rows
from app.wiring import App
from connectors.base import Window
from connectors.capabilities import ActionKind
from connectors.errors import AuthError, FatalApiError
from connectors.megamarket import MegamarketConnector
from connectors.megamarket.client import MegamarketClient, megamarket_time
from connectors.megamarket.emulator import SEARCH, EmulatorConfig, create_app
from connectors.megamarket.settings import MegamarketAccountSettings
from connectors.testing import FakeTime
from loyalty.action_job import plan_actions
from loyalty.action_settings import ActionSettings
from loyalty.ledger import entries_of, run_once
from loyalty.rules import LoyaltySettings
from store import Store
from sync.runner import StreamRunner
from tests.conftest import live_on_emulator

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOKEN = "megamarket-sync-token-77c1"
TIME = FakeTime()  # one clock for the emulator's limit and the client's pacing: waits cost nothing
CANCELLED = ("MERCHANT_CANCELED", "CUSTOMER_CANCELED")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def emulator(**config):
    config.setdefault("orders", 300)
    return create_app(EmulatorConfig(seed=31, history_days=60, generated_at=NOW, serving_at=NOW, token=TOKEN,
                                     monotonic=TIME.monotonic, **config))


def settings(**extra) -> MegamarketAccountSettings:
    return MegamarketAccountSettings(name="shop", token_env="UNUSED", token=SecretStr(TOKEN),
                                     base_urls={"api": "http://emulator"}, **extra)


async def sync(store: Store, app) -> None:
    runner = StreamRunner(store, clock=lambda: NOW, write_in_thread=False)
    async with MegamarketConnector(settings(), transport=httpx.ASGITransport(app=app), clock=TIME.monotonic,
                                   sleep=TIME.sleep) as connector:
        result = await runner.run(connector, "orders")
    assert result.ok, result.error


def listed(app) -> set[str]:
    return {s.shipment_id for s in app.state.shipments.values() if s.created_at < NOW - timedelta(minutes=1)}


async def test_a_day_of_five_times_the_search_cap_is_stored_whole(sqlite_store):
    app = emulator(orders=150, busy_day=500)
    busy = app.state.data.busy
    assert len(busy) == 500
    day = min(app.state.shipments[i].created_at for i in busy)
    # The trap: one search of that day answers exactly the cap, and says nothing of the rest.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emulator",
                                 headers={"User-Agent": "loyalsync/1.0", "X-Merchant-Token": TOKEN}) as raw:
        answer = (await raw.post(SEARCH, json={"meta": {}, "data": {
            "token": TOKEN, "dateFrom": megamarket_time(day - timedelta(hours=1)),
            "dateTo": megamarket_time(day + timedelta(days=1)), "count": 100}})).json()
    assert len(answer["data"]["shipments"]) == 100
    await sync(sqlite_store, app)
    stored = {o["order_id"] for o in export_rows(sqlite_store, "orders")}
    assert stored == listed(app) and busy <= stored


async def test_dbs_buyers_are_members_whatever_form_their_phone_takes(sqlite_store):
    app = emulator()
    await sync(sqlite_store, app)
    keys: dict[str, set] = {}
    for row in export_rows(sqlite_store, "orders"):
        shipment = app.state.shipments[row["order_id"]]
        keys.setdefault(shipment.buyer or f"fbs:{shipment.shipment_id}", set()).add(row["buyer_key"])
    several = [b for b, forms in app.state.data.customer_forms.items() if len(forms) > 1]
    assert several, "the emulator must serve some buyer's phone in several forms"
    dbs = {b: k for b, k in keys.items() if not b.startswith("fbs:")}
    assert all(len(k) == 1 and None not in k for k in dbs.values())  # one buyer, one member
    assert len({next(iter(k)) for k in dbs.values()}) == len(dbs)  # and two buyers never share one
    assert any(len(app.state.data.customer_forms[b]) > 1 for b in dbs)
    assert all(k == {None} for b, k in keys.items() if b.startswith("fbs:"))  # FBS names no buyer here


async def test_a_status_no_document_names_quarantines_that_shipment_without_the_buyer(sqlite_store):
    app = emulator(unknown_statuses=3)
    await sync(sqlite_store, app)
    known = {"NEW", "PENDING", "PENDING_CONFIRMATION", "CONFIRMED", "PENDING_PACKING", "PACKED", "PACKING_EXPIRED",
             "PENDING_SHIPPING", "SHIPPED", "SHIPPING_EXPIRED", "DELIVERED", *CANCELLED}
    unknown = {s.shipment_id for s in app.state.shipments.values() if s.status_at(NOW) not in known}
    assert len(unknown) == 3
    quarantined = sqlite_store.quarantine()
    assert {q["record_key"] for q in quarantined} == unknown
    kept = repr([q["payload"] for q in quarantined])
    assert "items" in kept and "finalPrice" in kept
    for shipment in (app.state.shipments[i] for i in unknown):
        for value in (shipment.phone, shipment.customer_full_name, shipment.customer_address, shipment.email):
            assert not value or value not in kept, value
    assert {o["order_id"] for o in export_rows(sqlite_store, "orders")} == listed(app) - unknown


async def test_every_recent_return_is_a_report_task_with_its_deadline(sqlite_store):
    app = emulator(orders=600)
    await sync(sqlite_store, app)
    returns = {}
    for s in app.state.shipments.values():
        back = [u for u in s.goods if s.unit_status_at(u, NOW) in CANCELLED and s.delivered_at(u, NOW)]
        if back:
            returns[s.shipment_id] = max(u.stage_at(NOW).since for u in back)
    recent = {i for i, at in returns.items() if at >= NOW - timedelta(days=7)}
    assert recent and recent != set(returns), "the emulator must stage both recent and old returns"
    caps = {"megamarket": MegamarketConnector.capabilities}
    tasks = [a for a in plan_actions(sqlite_store, ActionSettings(), caps, NOW) if a.key.startswith("return-report:")]
    assert {t.target for t in tasks} == recent
    for task in tasks:
        # The end of the day after the return, Moscow time (UTC+3).
        seen = returns[task.target].astimezone(datetime.now().astimezone().tzinfo)
        due = datetime.fromisoformat(task.params["deadline"])
        assert due.utcoffset() == timedelta(hours=3)
        assert due.date() == (returns[task.target] + timedelta(hours=3)).date() + timedelta(days=1)
        assert due > seen and task.kind is ActionKind.OPS_TASK


async def test_a_library_user_agent_is_blocked_and_the_error_says_so():
    app = emulator(orders=20)
    client = MegamarketClient(settings(), transport=httpx.ASGITransport(app=app), clock=TIME.monotonic,
                              sleep=TIME.sleep, user_agent="python-httpx/0.28.1")
    with pytest.raises(FatalApiError) as caught:
        async for _ in client.shipments(Window(NOW - timedelta(days=1), NOW)):
            pass
    await client.aclose()
    assert not isinstance(caught.value, AuthError) and "check User-Agent" in str(caught.value)
    assert app.state.blocked_agents == ["python-httpx/0.28.1"]


async def test_the_500_the_wiki_warns_of_costs_nothing(sqlite_store, tmp_path):
    app = emulator(server_errors=2)
    await sync(sqlite_store, app)
    assert app.state.stats.statuses[500] == 2
    assert {o["order_id"] for o in export_rows(sqlite_store, "orders")} == listed(app)


def test_megamarket_members_earn_points_and_get_the_seller_bonus_task_not_promo_codes_or_chats(tmp_path):
    """DBS buyers become members and earn points; Megamarket has no promo-code or chat API
    (megamarket.md §5), so what is planned for them is the storewide seller bonus, an ops task."""
    setup, store, config = live_on_emulator("megamarket", tmp_path, orders=400, reviews=0)
    now = datetime.now(UTC)

    async def synced() -> dict:
        async with App(config, store=store, transports={"megamarket": httpx.ASGITransport(setup.app)}) as app:
            assert all(r.ok for r in await app.sync_once(app.jobs()))
            return app.capabilities()

    capabilities = asyncio.run(synced())
    run_once(store, LoyaltySettings(enabled=True), now)
    settings_ = ActionSettings.model_validate({"promo": {"enabled": True, "redeem_at": 100},
                                               "chat": {"points_notice": True}})
    planned = [a for a in plan_actions(store, settings_, capabilities, now) if a.marketplace == "megamarket"]
    members = {e["buyer_key"] for e in entries_of(store) if e["marketplace"] == "megamarket"}
    held = sum((e["amount"] for e in entries_of(store) if e["marketplace"] == "megamarket"), Decimal(0))
    assert len(members) > 20 and held > 0
    assert {a.kind for a in planned} == {ActionKind.OPS_TASK}
    [bonus] = [a for a in planned if a.key.startswith("seller-bonus:")]
    assert bonus.key == "seller-bonus:megamarket:demo:5" and bonus.params["members"] == len(members)
    store.engine.dispose()
