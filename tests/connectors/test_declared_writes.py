"""Every connector declares the writes its `perform` carries out (`Capabilities.writes`), and the
declaration is checked on its emulator: each declared write lands there, every other write the
outbox knows is `WriteNotSupported`. The gate refuses what is not declared (`not_supported`), so an
action is never approved only for the executor to fail it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.wiring import App
from connectors.base import WriteNotSupported, WriteRequest, WriteStatus
from connectors.capabilities import ActionKind, Channel
from connectors.registry import available_connectors
from store import Store
from tests.conftest import live_on_emulator

CONNECTORS = sorted(available_connectors())
# The outbox's kinds and the platform action each one is.
OUTBOX_KINDS = {"reply_to_review": ActionKind.REPLY_TO_REVIEW, "send_chat_message": ActionKind.SEND_CHAT_MESSAGE,
                "create_promo_code": ActionKind.CREATE_PROMO_CODE}
TEXT = "Спасибо за заказ! Если появятся вопросы по товару, пишите сюда."


@pytest.mark.parametrize("name", CONNECTORS)
def test_a_connector_declares_only_writes_the_platform_offers_through_its_api(name):
    caps = available_connectors()[name].capabilities
    # A platform may offer no write at all through its API (Kaspi: orders only); whatever is
    # declared must be the platform's API, never a cabinet step.
    for kind in caps.writes:
        assert caps.rule(kind).channel is Channel.API, (name, kind)


def _requests(name: str, store: Store, now: datetime) -> dict[str, list[WriteRequest]]:
    """Candidate requests per outbox kind, aimed at what the sync stored (the emulator's own objects)."""
    reviews = [str(r["review_id"]) for r in store.iter_reviews() if not r["answered"]][:3]
    orders = sorted(store.iter_orders(), key=lambda o: o["created_at"], reverse=True)
    chats = [str(o["order_id"]) for o in orders if o["status"] not in ("cancelled", "returned")][:40]
    promo = {"discount_value": 300, "valid_until": (now + timedelta(days=30)).isoformat(), "customer_id": "12345678",
             "points": "300", "buyer_key": "member-1"}
    return {
        "reply_to_review": [WriteRequest("reply_to_review", f"reply:{r}", r, TEXT) for r in reviews],
        "send_chat_message": [WriteRequest("send_chat_message", f"chat:{o}", o, TEXT) for o in chats],
        "create_promo_code": [WriteRequest("create_promo_code", f"promo:{name}:1", "member-1", params=promo)],
    }


@pytest.mark.parametrize("name", CONNECTORS)
def test_declared_writes_land_on_the_emulator_and_the_rest_are_not_supported(tmp_path, name):
    cls = available_connectors()[name]
    setup, store, config = live_on_emulator(name, tmp_path, orders=60, reviews=12)
    declared = cls.capabilities.writes
    outcomes: dict[str, Any] = {}

    async def scenario() -> None:
        async with App(config, store=store, transports={name: httpx.ASGITransport(setup.app)}) as app:
            await app.sync_once(app.jobs())
            (connector,) = app.write_connectors().values()
            for kind, requests in _requests(name, store, datetime.now(UTC)).items():
                if OUTBOX_KINDS[kind] not in declared:
                    with pytest.raises(WriteNotSupported):
                        await connector.perform(requests[0] if requests else WriteRequest(kind, "k", "t", TEXT))
                    outcomes[kind] = "not supported"
                    continue
                outcomes[kind] = []
                for request in requests:  # the first the platform accepts (a chat may be outside its window)
                    result = await connector.perform(request)
                    outcomes[kind].append(result.status)
                    if result.status is WriteStatus.DONE:
                        break

    asyncio.run(scenario())
    store.engine.dispose()
    for kind, outcome in outcomes.items():
        if OUTBOX_KINDS[kind] in declared:
            assert WriteStatus.DONE in outcome, (name, kind, outcome)
        else:
            assert outcome == "not supported"
    # The emulator saw a write exactly when the connector declares any.
    assert bool(setup.app.state.writes) == bool(declared), setup.app.state.writes
