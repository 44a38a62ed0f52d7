"""Points notices end to end: sync orders from the emulator, credit points, plan and gate the notices,
send them live through the real connector while the executor is killed between send and record and
the emulator loses answers. Each notice lands in its order's chat exactly once; nothing the gate
refused reaches the platform.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest

from app.config import AppConfig, AppSettings, MarketplaceAccount
from app.wiring import App
from connectors.base import RateOverride
from connectors.emulation import Fault, FaultPlan
from connectors.registry import available_connectors
from loyalty.action_job import propose_actions
from loyalty.action_settings import ActionSettings
from loyalty.ledger import run_once
from loyalty.outbox import action_rows, execute
from loyalty.rules import LoyaltySettings
from store import Store

SEND_PATH = {"ozon": "/v1/chat/send/message",
             "yandex_market": "/v2/businesses/{business_id}/chats/message"}
PROGRAM = LoyaltySettings.model_validate({"enabled": True, "earn_rate": "0.05"})
# Notices go out on their own here; the shipped default waits for a person's approval.
AUTO = ActionSettings(approval={"send_chat_message": "auto"}, replies={"enabled": False},
                      review_incentives={"enabled": False})


def messages_by_order(app, name: str) -> dict[str, list[str]]:
    """What the seller wrote into each order's chat on the emulator."""
    chats = app.state.chats if name == "ozon" else app.state.chats.chats
    out: dict[str, list[str]] = {}
    for chat in chats.values():
        order = str(chat["posting_number"] if name == "ozon" else chat["context"]["orderId"])
        texts = [m for m in chat["messages"] if _by_seller(m, name)]
        out.setdefault(order, []).extend(_text(m) for m in texts)
    return out


def _by_seller(message: dict, name: str) -> bool:
    if name == "ozon":
        return str(message["user"]["type"]).lower() == "seller"
    return message["sender"] == "PARTNER"


def _text(message: dict) -> str:
    return "".join(message["data"]) if "data" in message else message["message"]


@pytest.mark.parametrize("name", ["ozon", "yandex_market"])
def test_each_notice_lands_once_despite_kills_and_lost_answers(name: str, sqlite_store: Store, killer):
    cls = available_connectors()[name]
    setup = cls.demo(seed=21, orders=10000, reviews=10, rate_limits=False)
    fast = {g: RateOverride(requests=1000, period_seconds=1, burst=1000) for g in getattr(cls, "rate_groups", {})}
    account = setup.account("http://emulator").model_copy(update={"rate_limits": fast})
    emu = setup.app.state.emulator
    path = SEND_PATH[name].format(business_id=getattr(account, "business_id", ""))
    faults = (Fault(path, "apply_then_500", times=None, probability=0.2),)
    emu.config = replace(emu.config, faults=faults)
    emu.faults = FaultPlan(faults, 5)
    config = AppConfig(settings=AppSettings(daemon={"mode": "live"}), accounts=(MarketplaceAccount(name, account),),
                       config_path=None)
    now = datetime.now(UTC)
    killer.arm(name, 0.9)

    async def scenario() -> None:
        async with App(config, store=sqlite_store, transports={name: httpx.ASGITransport(setup.app)}) as app:
            results = await app.sync_once([j for j in app.jobs() if j.stream.startswith("orders")])
            assert all(r.ok for r in results), results
            run_once(sqlite_store, PROGRAM, now)
            propose_actions(sqlite_store, AUTO, app.capabilities(), mode="live", now=now)
            await killer.restart_until_settled(
                lambda: execute(sqlite_store, app.write_connectors(), settings=AUTO, mode="live", now=now),
                lambda: bool(action_rows(sqlite_store, status="approved")))

    asyncio.run(scenario())
    rows = [r for r in action_rows(sqlite_store) if r["kind"] == "send_chat_message"]
    by_status = {s: {r["target"]: r for r in rows if r["status"] == s} for s in {r["status"] for r in rows}}
    sent, refused = by_status.get("sent", {}), by_status.get("refused", {})
    assert len(sent) >= 5, {s: len(v) for s, v in by_status.items()}
    assert not by_status.get("approved") and not by_status.get("failed"), "every approved notice lands"
    assert killer.kills >= 30, killer.kills
    written = messages_by_order(setup.app, name)
    for order, row in sent.items():
        assert written.get(order) == [row["text"]], f"order {order}: {written.get(order)}"
    assert not set(written) - set(sent), "no message went anywhere else"
    assert not set(written) & set(refused), "a refused notice never reaches the platform"
    lost = [w for w in setup.app.state.writes if w["applied"] and w["status"] == 500]
    assert lost, "the emulator lost some answers, so the check-before-send path ran"
