"""A full sync against the emulator on SQLite and PostgreSQL: DBS buyers keyed, no personal data stored."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import MetaData, select

from connectors.testing import FakeTime
from connectors.yandex_market import YandexMarketConnector
from connectors.yandex_market.emulator import EmulatorConfig, Fault, create_app
from connectors.yandex_market.emulator_data import ACTIVE
from connectors.yandex_market.settings import YandexMarketAccountSettings
from store import Store
from store.identity import buyer_key_hasher, installation_salt
from sync.runner import StreamRunner

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOKEN = "ym-e2e-token-3c1f"


def _app(at: datetime, faults=()):
    # Few buyers for many orders, and many DBS orders: buyers come back, some while active.
    return create_app(EmulatorConfig(seed=3, business_id=4242, orders=700, reviews=250, buyers=25, dbs_share=0.5,
                                     now=NOW, clock=lambda: at, token=TOKEN, faults=faults))


async def _sync(store: Store, app, at: datetime) -> list:
    time = FakeTime()
    account = YandexMarketAccountSettings(name="shop", token_env="UNUSED", token=SecretStr(TOKEN), business_id=4242,
                                          base_urls={"api": "http://emulator"}, orders_page_size=40)
    runner = StreamRunner(store, clock=lambda: at, write_in_thread=False)
    async with YandexMarketConnector(account, transport=httpx.ASGITransport(app=app), clock=time.monotonic,
                                     sleep=time.sleep) as connector:
        return [await runner.run(connector, s) for s in connector.enabled_streams()]


def _personal_values(app) -> set[str]:
    """Every raw buyer id, name part and phone the emulator made up."""
    buyers, values = app.state.data.buyers, set()
    for b in range(len(buyers)):
        last, first, middle = buyers.name(b)
        phone = buyers.phone(b)
        values |= {buyers.buyer_id(b), phone, phone.lstrip("+"), last, first, middle, f"{first} {last}"}
    return values


def _every_stored_text(store: Store) -> list[tuple[str, str, str]]:
    meta = MetaData()
    meta.reflect(store.engine)
    out = []
    with store.engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                out.extend((table.name, column, str(value)) for column, value in row.items() if value is not None)
    return out


@pytest.mark.parametrize("store_fixture", ["sqlite_store", "pg_store"])
async def test_full_sync_keys_dbs_buyers_and_stores_no_personal_data(request, store_fixture):
    store: Store = request.getfixturevalue(store_fixture)
    # Some records arrive broken: their quarantined payloads must be clean too.
    faults = (Fault("/v1/businesses/4242/orders", "malformed", times=3),
              Fault("/v2/businesses/4242/goods-feedback", "malformed", times=2))
    app = _app(NOW, faults)
    results = await _sync(store, app, NOW)
    assert all(r.ok for r in results), [r.error for r in results]
    assert len(store.quarantine()) == 5

    # Not one raw id, name or phone in any column of any table (quarantine and meta included).
    needles = _personal_values(app)
    leaks = [(t, c) for t, c, text in _every_stored_text(store) for n in needles if n in text]
    assert not leaks, sorted(set(leaks))

    hasher = buyer_key_hasher(installation_salt(store.engine), "yandex_market")
    table, buyers = app.state.data.orders, app.state.data.buyers
    ts = int(NOW.timestamp())
    keys_by_buyer: dict[int, set[str]] = defaultdict(set)
    orders = list(store.iter_orders())
    assert len(orders) > 500
    keyed = 0
    for row in orders:
        i = table.index_of_id(int(row["order_id"]))
        active_dbs = table.program_of(i) == "DBS" and table.state(i, ts).status in ACTIVE
        if active_dbs:
            assert row["buyer_key"] == hasher(buyers.buyer_id(table.buyer[i])), row["order_id"]
            keys_by_buyer[table.buyer[i]].add(row["buyer_key"])
            keyed += 1
        else:
            assert row["buyer_key"] is None, row["order_id"]  # FBS/FBY/Express, or DBS no longer active
    # The same buyer has one key on every order; different buyers have different keys.
    assert all(len(keys) == 1 for keys in keys_by_buyer.values())
    assert len({next(iter(k)) for k in keys_by_buyer.values()}) == len(keys_by_buyer)
    assert keyed >= 10 and any(
        sum(1 for row in orders if row["buyer_key"] == next(iter(k))) > 1 for k in keys_by_buyer.values())
    # Buyer info was asked for active DBS orders only.
    asked = app.state.stats.buyer_info_calls
    assert asked and all(table.program_of(table.index_of_id(o)) == "DBS" for o in asked)
    assert app.state.stats.statuses.get(400, 0) == 0 and app.state.stats.total_throttled == 0

    reviews = list(store.iter_reviews())
    assert reviews and all(r["buyer_key"] is None for r in reviews)
    assert sum(1 for r in reviews if r["order_id"]) > len(reviews) // 2
    assert any(r["answered"] for r in reviews) and any(not r["answered"] for r in reviews)


async def test_a_dbs_buyer_key_survives_the_orders_delivery(sqlite_store):
    await _sync(sqlite_store, _app(NOW), NOW)
    first = {r["order_id"]: r["buyer_key"] for r in sqlite_store.iter_orders() if r["buyer_key"]}
    later = NOW + timedelta(days=12)  # every order active at NOW is finished by now
    await _sync(sqlite_store, _app(later), later)
    after = {r["order_id"]: r["buyer_key"] for r in sqlite_store.iter_orders()}
    assert first and all(after[o] == key for o, key in first.items())
