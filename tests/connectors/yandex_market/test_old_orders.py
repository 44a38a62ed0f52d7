"""Orders found whatever their age: Market's creation-date filter, and the client that walks it.

getBusinessOrders filters by creation date too, by default "the last 30 days" (OrderDatesFilterDTO).
The emulator applies those semantics to the letter, so a client that sends only update times
loses every order created earlier, such as one returned 45 days after it was placed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from app.export import export_rows
from connectors.emulation import Fault
from connectors.testing import FakeTime
from connectors.yandex_market import YandexMarketConnector
from connectors.yandex_market.client import market_time
from connectors.yandex_market.emulator import EmulatorConfig, create_app
from connectors.yandex_market.emulator_orders import msk_date
from connectors.yandex_market.settings import YandexMarketAccountSettings
from store import Store
from sync.runner import StreamRunner

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # 15:00 in Moscow, 2026-11-20
KEY = "ym-old-orders-key"
ORDERS = "/v1/businesses/12345/orders"
CHANGE = timedelta(hours=1)  # the late return comes an hour after NOW


def _app(at: datetime = NOW, faults: tuple[Fault, ...] = ()):
    return create_app(EmulatorConfig(seed=8, orders=500, reviews=10, history_days=60, now=NOW, clock=lambda: at,
                                     token=KEY, faults=faults))


def _late_return(times: int = 1) -> Fault:
    return Fault(ORDERS, "late_change", times=times, age=45 * 86400, delay=CHANGE.total_seconds())


async def _orders(app, body: dict, *, limit: int = 50) -> tuple[int, list[dict]]:
    """Every order of the query (all pages), or the first error status and no orders."""
    out, token = [], None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ym",
                                 headers={"Api-Key": KEY}) as http:
        while True:
            answer = await http.post(ORDERS, params={"limit": limit, **({"page_token": token} if token else {})},
                                     json=body)
            if answer.status_code != 200:
                return answer.status_code, []
            out += answer.json()["orders"]
            token = answer.json()["paging"].get("nextPageToken")
            if not token:
                return 200, out


def _created_on(app, day: str) -> set[int]:
    table = app.state.data.orders
    return {table.ids[i] for i in range(len(table)) if msk_date(table.created[i]) == day}


async def test_without_creation_dates_only_the_30_days_before_today_are_read():
    app = _app()
    status, orders = await _orders(app, {})
    assert status == 200
    days = {o["creationDate"][:10] for o in orders}
    # "30 дней назад от текущей даты" up to "текущая дата", the end excluded: Moscow dates.
    assert min(days) == "2026-10-21" and max(days) == "2026-11-19"
    table = app.state.data.orders
    assert any(msk_date(c) < "2026-10-21" for c in table.created), "the data must hold older orders"
    assert _created_on(app, "2026-11-20"), "and orders of today"


async def test_creation_dates_are_whole_moscow_days_the_end_left_out():
    app = _app()
    _, one_day = await _orders(app, {"dates": {"creationDateFrom": "2026-11-01", "creationDateTo": "2026-11-02"}})
    assert {o["orderId"] for o in one_day} == _created_on(app, "2026-11-01") != set()
    # "less than a day apart: creationDateTo is creationDateFrom + 1 day"
    _, same = await _orders(app, {"dates": {"creationDateFrom": "2026-11-01", "creationDateTo": "2026-11-01"}})
    assert same == one_day


@pytest.mark.parametrize(("dates", "status"), [
    ({"creationDateFrom": "2026-10-01", "creationDateTo": "2026-10-31"}, 200),  # 30 days: allowed
    ({"creationDateFrom": "2026-10-01", "creationDateTo": "2026-11-01"}, 400),  # 31 days
    ({"creationDateFrom": "2026-10-01"}, 400),  # up to today by default: 50 days
    ({"creationDateFrom": "2026-11-01T00:00:00+03:00"}, 400),  # a date-time, not a date
    ({"creationDateTo": "01-11-2026"}, 400),  # the deprecated API's format
])
async def test_the_creation_filter_is_checked_as_market_documents(dates, status):
    got, _ = await _orders(_app(), {"dates": dates})
    assert got == status


async def test_update_times_alone_miss_an_order_created_45_days_before_its_change():
    later = NOW + 2 * CHANGE
    app = _app(later, faults=(_late_return(),))
    [(order_id, (before, after))] = app.state.late_changes.items()
    assert (before, after) in {("DELIVERED", "RETURNED"), ("DELIVERED", "PARTIALLY_RETURNED")}
    update = {"updateDateFrom": market_time(NOW), "updateDateTo": market_time(later)}
    _, by_update_only = await _orders(app, {"dates": update})
    assert order_id not in {str(o["orderId"]) for o in by_update_only}
    created = datetime.fromisoformat(app.state.data.orders.record(
        app.state.data.orders.index_of_id(int(order_id)), int(later.timestamp()))["creationDate"]).date()
    chunk = {"creationDateFrom": str(created), "creationDateTo": str(created + timedelta(days=1))}
    _, with_creation = await _orders(app, {"dates": {**update, **chunk}})
    assert [(str(o["orderId"]), o["status"]) for o in with_creation] == [(order_id, after)]
    assert (later.date() - created) >= timedelta(days=44)


async def _sync(store: Store, app, at: datetime) -> None:
    time = FakeTime()
    account = YandexMarketAccountSettings(name="shop", token_env="UNUSED", token=SecretStr(KEY), business_id=12345,
                                          base_urls={"api": "http://emulator"})
    runner = StreamRunner(store, clock=lambda: at, write_in_thread=False)
    async with YandexMarketConnector(account, transport=httpx.ASGITransport(app=app), clock=time.monotonic,
                                     sleep=time.sleep) as connector:
        result = await runner.run(connector, "orders")
    assert result.ok, result.error


async def test_an_order_created_45_days_before_its_last_change_is_stored_after_that_change(sqlite_store):
    """The acceptance case of issue 15: the late return reaches the store on the next poll."""
    faults = (_late_return(times=3),)
    await _sync(sqlite_store, _app(NOW, faults), NOW)
    app = _app(NOW + 2 * CHANGE, faults)
    changed = app.state.late_changes
    words = {"RETURNED": "returned", "PARTIALLY_RETURNED": "partially_returned"}
    stored = {o["order_id"]: o["status"] for o in export_rows(sqlite_store, "orders")}
    assert {k: stored[k] for k in changed} == dict.fromkeys(changed, "delivered")
    table = app.state.data.orders
    ages = [NOW + CHANGE - datetime.fromtimestamp(table.created[table.index_of_id(int(k))], UTC) for k in changed]
    assert all(timedelta(days=44) < age < timedelta(days=46) for age in ages)

    await _sync(sqlite_store, app, NOW + 2 * CHANGE)
    stored = {o["order_id"]: o["status"] for o in export_rows(sqlite_store, "orders")}
    assert {k: stored[k] for k in changed} == {k: words[after] for k, (_, after) in changed.items()}


def test_msk_dates_of_the_emulator_are_moscow_calendar_days():
    assert msk_date(int(datetime(2026, 11, 19, 21, 30, tzinfo=UTC).timestamp())) == "2026-11-20"
    assert date.fromisoformat(msk_date(int(NOW.timestamp()))) == date(2026, 11, 20)
