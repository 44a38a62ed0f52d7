"""Avito traps end to end: the emulator (built from avito.md), the connector and the real runner.

Each test would fail if its trap were ignored: an answer in moderation is never sent twice and a
rejected one is reported, not re-sent; an order that changes weeks after it was created reaches
the store through the open-orders stream; without Messenger on the tariff the buyer stream says so
and orders go on without buyer keys, with it each buyer is one key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from app.export import export_rows
from connectors.avito import AvitoConnector
from connectors.avito.emulator import EmulatorConfig, create_app
from connectors.avito.settings import AvitoAccountSettings
from connectors.base import WriteRequest, WriteStatus
from connectors.capabilities import ActionKind
from connectors.testing import FakeTime
from store import Store
from sync.runner import StreamRunner

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SECRET = "avito-sync-secret-81a0"
TIME = FakeTime()  # one clock for the emulator's limits and token lifetimes and the client's pacing


def app_at(at: datetime, **config):
    return create_app(EmulatorConfig(seed=5, orders=600, reviews=60, client_id="cid", client_secret=SECRET,
                                     history_days=60, generated_at=NOW, serving_at=at, monotonic=TIME.monotonic,
                                     **config))


def connector(app) -> AvitoConnector:
    account = AvitoAccountSettings(name="shop", client_id="cid", client_secret_env="UNUSED",
                                   client_secret=SecretStr(SECRET), base_urls={"api": "http://emulator"})
    return AvitoConnector(account, transport=httpx.ASGITransport(app=app), clock=TIME.monotonic, sleep=TIME.sleep)


async def run(store: Store, app, at: datetime, stream: str):
    async with connector(app) as conn:
        return await StreamRunner(store, clock=lambda: at, write_in_thread=False).run(conn, stream)


async def test_an_answer_in_moderation_is_never_sent_twice_and_a_rejected_one_is_reported():
    app = app_at(NOW)
    unanswered = [r for r in app.state.reviews.values() if r.active and r.can_answer and r.answer is None
                  and r.created_at <= NOW]
    first, second = unanswered[0], unanswered[1]
    polite = WriteRequest(ActionKind.REPLY_TO_REVIEW, "a", str(first.id), "Спасибо за отзыв! Рады, что понравилось.")
    with_link = WriteRequest(ActionKind.REPLY_TO_REVIEW, "b", str(second.id), "Подробности на https://example.ru")
    async with connector(app) as conn:
        assert (await conn.perform(polite)).status is WriteStatus.DONE
        found = await conn.find_done(polite)
        assert found.status is WriteStatus.ALREADY_DONE and "moderation" in found.detail
        assert (await conn.perform(polite)).status is WriteStatus.ALREADY_DONE  # not posted again
        assert (await conn.perform(with_link)).status is WriteStatus.DONE
        app.state.emulator.advance(2 * 3600)  # moderation (an hour by default) is over
        assert (await conn.find_done(polite)).detail == "the review's answer is published"
        rejected = await conn.find_done(with_link)
        assert rejected.status is WriteStatus.REJECTED and "rejected" in rejected.detail
        assert (await conn.perform(with_link)).status is WriteStatus.REJECTED  # reported, not re-sent
    assert {k: len(v) for k, v in app.state.answers_by_review.items()} == {first.id: 1, second.id: 1}


async def test_an_order_that_changes_weeks_after_it_was_created_is_followed_by_the_open_orders_stream(
        sqlite_store):
    assert (await run(sqlite_store, app_at(NOW), NOW, "orders")).ok
    later_at = NOW + timedelta(days=10)
    later = app_at(later_at)
    words = {"on_return": "returned", "in_dispute": "returned", "closed": "delivered", "delivered": "delivered",
             "canceled": "cancelled", "in_transit": "in_delivery", "ready_to_ship": "created",
             "on_confirmation": "created"}
    # Orders created more than 20 days before a change they make between the two runs, beyond the
    # 14 days the orders stream re-reads: only the open-orders poll (or the 60-day re-scan) sees it.
    moved = {o.id: words[o.at(later_at).status] for o in later.state.orders.values()
             if NOW < o.at(later_at).since < later_at and o.created_at < NOW - timedelta(days=14)
             and o.at(NOW).status in ("on_confirmation", "ready_to_ship", "in_transit", "delivered",
                                      "on_return", "in_dispute")
             and o.at(later_at).status in ("in_transit", "delivered", "on_return", "in_dispute")}
    assert len(moved) >= 3, "the emulator must stage late changes of open orders"
    before = {r["order_id"]: r["status"] for r in export_rows(sqlite_store, "orders")}
    assert any(before[k] != v for k, v in moved.items())
    assert (await run(sqlite_store, later, later_at, "orders_open")).ok
    stored = {r["order_id"]: r["status"] for r in export_rows(sqlite_store, "orders")}
    assert {k: stored[k] for k in moved} == moved


async def test_without_messenger_the_buyer_stream_is_unavailable_and_orders_go_on(sqlite_store):
    app = app_at(NOW, messenger=False)
    assert (await run(sqlite_store, app, NOW, "orders")).ok
    buyers = await run(sqlite_store, app, NOW, "order_buyers")
    assert buyers.state == "unavailable" and "«Максимальный»" in buyers.error
    assert {r["buyer_key"] for r in export_rows(sqlite_store, "orders")} == {None}


async def test_with_messenger_each_buyer_is_one_key(sqlite_store):
    app = app_at(NOW)
    assert (await run(sqlite_store, app, NOW, "order_buyers")).ok
    keys: dict[str, set] = {}
    for row in export_rows(sqlite_store, "orders"):
        keys.setdefault(app.state.orders[row["order_id"]].buyer, set()).add(row["buyer_key"])
    assert len(keys) > 20 and all(len(k) == 1 and None not in k for k in keys.values())
    assert len({next(iter(k)) for k in keys.values()}) == len(keys)
