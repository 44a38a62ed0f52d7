"""Whole syncs of the Ozon connector against its emulator, through the real runner and store."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import inspect, text

from app.export import export_rows
from connectors.ozon import OzonConnector
from connectors.ozon.emulator import EmulatorConfig, Fault, create_app
from connectors.ozon.emulator_data import FBO, US
from connectors.ozon.emulator_records import fbs_posting
from connectors.ozon.settings import OzonAccountSettings
from connectors.testing import FakeTime
from store import Store
from store.store import StreamKey
from sync.runner import StreamRunner

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
API_KEY, CLIENT_ID = "ozon-sync-test-api-key", "700123"


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def emulator(time: FakeTime, *faults: Fault, clock: Clock | None = None, **config):
    config.setdefault("orders", 400)
    config.setdefault("reviews", 90)
    return create_app(EmulatorConfig(seed=9, now=NOW, clock=clock or Clock(NOW), client_id=CLIENT_ID,
                                     token=API_KEY, monotonic=time.monotonic, faults=faults, **config))


def connector(app, time: FakeTime) -> OzonConnector:
    account = OzonAccountSettings(name="main", token_env="X", token=SecretStr(API_KEY), client_id=CLIENT_ID,
                                  base_urls={"api": "http://ozon"}, postings_page_size=30, reviews_page_size=20)
    return OzonConnector(account, transport=httpx.ASGITransport(app=app), clock=time.monotonic, sleep=time.sleep)


async def sync_all(store: Store, app, time: FakeTime, at: datetime = NOW):
    runner = StreamRunner(store, clock=lambda: at, write_in_thread=False)
    async with connector(app, time) as conn:
        return {s: await runner.run(conn, s) for s in conn.enabled_streams()}


def personal_data(app) -> tuple[set[str], set[str]]:
    """(customer ids, other personal strings) of every posting the emulator served with a buyer."""
    table, now = app.state.data.postings, int(NOW.timestamp() * US)
    ids, strings = set(), set()
    for i in range(len(table)):
        if table.has_customer(i) and table.t0[i] <= now:
            k = table.buyer[i]
            ids.add(str(table.customer_id(k)))
            phone = table.phone(i)
            strings |= {table.buyer_name(k), phone, phone.lstrip("+"), table.buyer_email(k)}
    return ids, strings


def every_cell(store: Store):
    """(table, column, text) of every value of every column of every table in the store."""
    engine = store.engine
    tables = inspect(engine).get_table_names()
    assert {"orders", "order_lines", "reviews", "quarantine", "stream_cursors", "meta"} <= set(tables)
    with engine.connect() as conn:
        for table in tables:
            result = conn.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row, strict=True):
                    if value is not None:
                        yield table, column, str(value)


async def test_a_full_sync_keeps_no_buyer_personal_data_in_any_column(store: Store):
    """Runs on SQLite and on PostgreSQL (the `store` fixture is both)."""
    time = FakeTime()
    # Corrupt half the FBS pages, preferring postings with a buyer: quarantine must strip them too.
    app = emulator(time, Fault("/v4/posting/fbs/list", "malformed", times=None, probability=0.5))
    results = await sync_all(store, app, time)
    assert all(r.ok for r in results.values()), [r.error for r in results.values()]

    table = app.state.data.postings
    ids, strings = personal_data(app)
    assert len(ids) > 20 and strings
    sample = next(i for i in range(len(table)) if table.has_customer(i))
    served = fbs_posting(table, sample, int(NOW.timestamp() * US), "RUB")
    assert served["customer"]["name"] == table.buyer_name(table.buyer[sample])  # it was there to leak
    quarantined = store.quarantine()
    assert any(table.has_customer(table.index_of(q["record_key"])) for q in quarantined)

    id_pattern = re.compile(r"(?<!\d)(?:" + "|".join(sorted(ids)) + r")(?!\d)")
    text_pattern = re.compile("|".join(re.escape(s) for s in sorted(strings, key=len, reverse=True)))
    leaks = [(t, c, v[:80]) for t, c, v in every_cell(store) if id_pattern.search(v) or text_pattern.search(v)]
    assert not leaks

    keys_by_buyer: dict[int, set[str]] = defaultdict(set)
    for order in export_rows(store, "orders"):
        i = table.index_of(order["order_id"])
        if table.has_customer(i):
            assert order["buyer_key"] and re.fullmatch(r"[0-9a-f]{32}", order["buyer_key"])
            keys_by_buyer[table.buyer[i]].add(order["buyer_key"])
        else:
            assert order["buyer_key"] is None, order["order_id"]
        assert order["fulfilment"] == ("fbo" if table.scheme[i] == FBO else order["fulfilment"])
    # One key per buyer across all their orders, none shared.
    assert all(len(keys) == 1 for keys in keys_by_buyer.values())
    assert any(len([o for o in range(len(table)) if table.has_customer(o) and table.buyer[o] == b]) > 1
               for b in keys_by_buyer), "no buyer came back: repeat purchases were not exercised"
    flat = [next(iter(keys)) for keys in keys_by_buyer.values()]
    assert len(flat) == len(set(flat))


async def test_reviews_without_the_subscription_are_unavailable_while_orders_sync(sqlite_store: Store):
    time = FakeTime()
    app = emulator(time, reviews_subscription=False)
    results = await sync_all(sqlite_store, app, time)
    reviews = results["reviews"]
    assert reviews.state == "unavailable" and reviews.records == 0
    assert "«Управление отзывами»" in reviews.error and "Premium Pro" in reviews.error
    assert "POST /v2/review/list" in reviews.error and "HTTP 403" in reviews.error
    assert results["orders_fbs"].ok and results["orders_fbo"].ok
    state = sqlite_store.get_cursor(StreamKey("ozon", "main", "reviews"))
    assert state.state == "unavailable" and "subscription" in (state.last_error or "")
    assert sqlite_store.get_cursor(StreamKey("ozon", "main", "orders_fbs")).state == "ok"
    assert list(export_rows(sqlite_store, "orders")) and not list(export_rows(sqlite_store, "reviews"))


async def test_status_changes_of_old_fbs_postings_arrive_on_the_next_poll(sqlite_store: Store):
    time, clock = FakeTime(), Clock(NOW)
    app = emulator(time, clock=clock)
    await sync_all(sqlite_store, app, time, at=NOW)
    later = NOW + timedelta(hours=8)  # no daily re-scan yet: only lookback and the change pass
    clock.at = later
    results = await sync_all(sqlite_store, app, time, at=later)
    assert all(r.ok for r in results.values())

    table, now_us = app.state.data.postings, int(later.timestamp() * US)
    stored = {o["order_id"]: o["platform_status"] for o in export_rows(sqlite_store, "orders")}
    old_fbs = [i for i in range(len(table)) if table.scheme[i] != FBO and now_us - table.t0[i] > 2 * 86400 * US
               and table.state(i, int(NOW.timestamp() * US))[:2] != table.state(i, now_us - 3 * 60 * US)[:2]]
    assert old_fbs, "no FBS posting older than the lookback changed status: nothing was tested"
    for i in old_fbs:  # beyond the 1-day lookback, so only the last_changed_status_date pass saw them
        status, substatus, _ = table.state(i, now_us)
        assert stored[table.posting_number(i)] == f"{status}/{substatus}"


async def test_a_buyer_key_survives_ozon_hiding_the_customer_after_delivery(sqlite_store: Store):
    time, clock = FakeTime(), Clock(NOW)
    app = emulator(time, clock=clock, customer_visible_days=2)
    await sync_all(sqlite_store, app, time, at=NOW)
    before = {o["order_id"]: o["buyer_key"] for o in export_rows(sqlite_store, "orders") if o["buyer_key"]}
    later = NOW + timedelta(days=3)  # the daily re-scan re-reads postings whose customer is now null
    clock.at = later
    await sync_all(sqlite_store, app, time, at=later)
    after = {o["order_id"]: o["buyer_key"] for o in export_rows(sqlite_store, "orders")}
    assert before and all(after[order_id] == key for order_id, key in before.items())


@pytest.mark.parametrize(("status", "headers"), [
    (404, {}),  # Ozon's "Invalid Api-Key" as live probes report it: 404, gRPC code 5
    (403, {}),
    (401, {}),
    (400, {"client_id": "shop-7"}),  # "Client-Id header value should be positive integer"
])
async def test_a_refused_key_stops_every_stream_naming_the_token_variable(sqlite_store: Store, status, headers):
    time = FakeTime()
    app = emulator(time, bad_key_status=status if status != 400 else 404)
    account = OzonAccountSettings(
        name="main", token_env="OZON_SHOP_API_KEY", token=SecretStr("wrong-sentinel-key-5c1d"),
        client_id=headers.get("client_id", CLIENT_ID), base_urls={"api": "http://ozon"})
    runner = StreamRunner(sqlite_store, clock=lambda: NOW, write_in_thread=False)
    async with OzonConnector(account, transport=httpx.ASGITransport(app=app), clock=time.monotonic,
                             sleep=time.sleep) as conn:
        results = [await runner.run(conn, s) for s in conn.enabled_streams()]
    assert len(results) == 3 and all(r.state == "error" for r in results)
    for result in results:
        assert "the token was rejected" in result.error and "$OZON_SHOP_API_KEY" in result.error
        assert f"HTTP {status}" in result.error and "wrong-sentinel-key-5c1d" not in result.error
        assert ("Invalid Api-Key" if status != 400 else "Client-Id header value") in result.error
