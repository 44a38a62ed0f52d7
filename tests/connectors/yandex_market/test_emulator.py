"""The Yandex Market emulator speaks Market's shapes, pages, limits (420) and errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime

import httpx
import orjson
import pytest

from connectors.base import MappingContext
from connectors.testing import FakeTime
from connectors.yandex_market.client import market_time
from connectors.yandex_market.emulator import EmulatorConfig, Fault, create_app
from connectors.yandex_market.emulator_data import ACTIVE
from connectors.yandex_market.mapping import map_order

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KEY = "emulator-key"
ORDERS = "/v1/businesses/12345/orders"
FEEDBACK = "/v2/businesses/12345/goods-feedback"


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ym", headers={"Api-Key": KEY})


def _app(at: datetime = NOW, **config):
    config = {"seed": 2, "orders": 300, "reviews": 80, "now": NOW, "clock": lambda: at, "token": KEY, **config}
    return create_app(EmulatorConfig(**config))


def _dates(start: datetime, end: datetime) -> dict:
    return {"dates": {"updateDateFrom": market_time(start), "updateDateTo": market_time(end)}}


async def _all_orders(app, at: datetime = NOW) -> list[dict]:
    out, token = [], None
    async with _client(app) as http:
        while True:
            params = {"limit": 50, **({"page_token": token} if token else {})}
            body = (await http.post(ORDERS, params=params, json=_dates(at - timedelta(days=30), at))).json()
            out += body["orders"]
            token = body["paging"].get("nextPageToken")
            if not token:
                return out


async def test_auth_wants_the_bare_api_key():
    app = _app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ym") as http:
        missing = await http.post(ORDERS, json={})
        bearer = await http.post(ORDERS, json={}, headers={"Api-Key": f"Bearer {KEY}"})
    assert missing.status_code == 401
    assert missing.json() == {"status": "ERROR", "errors": [{"code": "UNAUTHORIZED",
                                                              "message": "Api-Key token is invalid"}]}
    assert bearer.json()["errors"][0]["message"] == "Api-Key token prefix invalid"


async def test_orders_page_by_token_within_the_update_window_and_refuse_more_than_30_days():
    app = _app()
    orders = await _all_orders(app)
    assert len(orders) == len({o["orderId"] for o in orders}) > 250
    assert {o["programType"] for o in orders} == {"FBS", "FBY", "DBS", "EXPRESS"}
    assert all(o["creationDate"].endswith("+03:00") and o["prices"]["payment"]["currencyId"] == "RUR" for o in orders)
    assert not any("buyer" in o for o in orders)  # the business order DTO carries no buyer
    async with _client(app) as http:
        day = await http.post(ORDERS, json=_dates(NOW - timedelta(days=1), NOW))
        too_long = await http.post(ORDERS, json=_dates(NOW - timedelta(days=31), NOW))
    lo = NOW - timedelta(days=1)
    assert all(lo <= datetime.fromisoformat(o["updateDate"]) < NOW for o in day.json()["orders"])
    assert too_long.status_code == 400 and too_long.json()["status"] == "ERROR"


async def test_orders_move_on_over_time_and_some_are_cancelled_late():
    before = {o["orderId"]: o for o in await _all_orders(_app())}
    later = NOW + timedelta(days=6)
    after = {o["orderId"]: o for o in await _all_orders(_app(later), later)}
    moved = [i for i in before if i in after and after[i]["status"] != before[i]["status"]]
    assert len(moved) > 20
    assert all(after[i]["updateDate"] > before[i]["updateDate"] for i in moved)
    assert any(before[i]["status"] in ("DELIVERY", "PICKUP") and after[i]["status"] == "CANCELLED" for i in moved)


async def test_returns_say_which_units_came_back_and_map_to_the_emulators_own_figure():
    app = _app()
    orders, now = app.state.data.orders, int(NOW.timestamp())
    ctx = MappingContext(marketplace="yandex_market", account="main", buyer_key=str)
    seen = {"RETURNED": 0, "PARTIALLY_RETURNED": 0}
    for raw in await _all_orders(app):
        status = raw["status"]
        back = {k: sum(s["count"] for s in item.get("itemStatuses", ()) if s["status"] in ("RETURNED", "REJECTED"))
                for k, item in enumerate(raw["items"])}
        units = sum(item["count"] for item in raw["items"])
        if status not in seen:
            assert not any("itemStatuses" in item for item in raw["items"]), raw["orderId"]  # returns only
            continue
        seen[status] += 1
        # Every unit of a returned order is accounted for: back with the seller, or kept by the buyer.
        assert all(s["status"] in ("RETURNED", "REJECTED", "DELIVERED_TO_BUYER") for item in raw["items"]
                   for s in item["itemStatuses"])
        assert all(sum(s["count"] for s in item["itemStatuses"]) == item["count"] for item in raw["items"])
        assert all(back[k] <= item["count"] for k, item in enumerate(raw["items"]))
        if status == "RETURNED":
            assert sum(back.values()) == units
        else:
            assert 1 <= sum(back.values()) < units
        i = orders.index_of_id(raw["orderId"])
        rec = map_order(raw, ctx)
        assert rec.returned_total == Decimal(orders.returned_kop(i, now)) / 100, raw["orderId"]
        assert (rec.returned_total == rec.total) == (status == "RETURNED")
    assert seen["RETURNED"] and seen["PARTIALLY_RETURNED"], seen


async def test_buyer_info_only_for_active_dbs_orders_with_a_stable_id_per_buyer():
    app = _app(buyers=20, dbs_share=0.6)
    table, ts = app.state.data.orders, int(NOW.timestamp())
    dbs = [i for i in range(table.visible_end(ts)) if table.program_of(i) == "DBS"]
    active = [i for i in dbs if table.state(i, ts).status in ACTIVE]
    done = [i for i in dbs if table.state(i, ts).status not in ACTIVE]
    fbs = next(i for i in range(len(table)) if table.program_of(i) == "FBS")

    def path(i: int) -> str:
        return f"/v2/campaigns/{table.campaign_of(i)}/orders/{table.ids[i]}/buyer"

    async with _client(app) as http:
        infos = [(await http.get(path(i))).json()["result"] for i in active]
        finished = await http.get(path(done[0]))
        not_dbs = await http.get(path(fbs))
        unknown = await http.get("/v2/campaigns/21500003/orders/1/buyer")
    assert all(set(info) == {"id", "lastName", "firstName", "middleName", "type", "phone", "trusted"}
               for info in infos)
    by_buyer = {}
    for i, info in zip(active, infos, strict=True):
        assert by_buyer.setdefault(table.buyer[i], info["id"]) == info["id"]
    assert len(set(by_buyer.values())) == len(by_buyer)
    assert (finished.status_code, not_dbs.status_code, unknown.status_code) == (400, 400, 404)


async def test_an_hourly_budget_runs_out_with_a_420_that_names_the_refill():
    time = FakeTime()
    app = _app(limits={"orders": 2}, monotonic=time.monotonic)
    async with _client(app) as http:
        ok = [await http.post(ORDERS, json={}) for _ in range(2)]
        spent = await http.post(ORDERS, json={})
        time.now += 3600
        refilled = await http.post(ORDERS, json={})
    assert [r.status_code for r in ok] == [200, 200] and ok[1].headers["X-RateLimit-Resource-Remaining"] == "0"
    assert spent.status_code == 420 and "'2' requests per 'hour'" in spent.json()["errors"][0]["message"]
    wait = parsedate_to_datetime(spent.headers["X-RateLimit-Resource-Until"]) - parsedate_to_datetime(
        spent.headers["Date"])
    assert wait == timedelta(hours=1)
    assert refilled.status_code == 200 and app.state.stats.throttled["orders"] == 1


async def test_a_fifth_request_in_flight_gets_the_parallel_420():
    app = _app(latency=0.05)
    async with _client(app) as http:
        answers = await asyncio.gather(*(http.post(ORDERS, json={}) for _ in range(6)))
    refused = [a for a in answers if a.status_code == 420]
    assert len(refused) == 2 and app.state.stats.parallel_refused == 2 and app.state.stats.max_in_flight == 4
    assert refused[0].json()["errors"][0]["message"] == "Hit rate limit of 4 parallel requests for businessId 12345"
    assert int(refused[0].headers["X-RateLimit-Resource-Remaining"]) > 0  # the budget is not the problem


async def test_faults():
    faults = (Fault(ORDERS, "rate_limit", retry_after=3), Fault(ORDERS, "http_503"), Fault(ORDERS, "truncated"),
              Fault(ORDERS, "malformed"))
    app = _app(faults=faults)
    async with _client(app) as http:
        limited, unavailable, truncated, malformed, fine = [await http.post(ORDERS, json={}) for _ in range(5)]
    until = parsedate_to_datetime(limited.headers["X-RateLimit-Resource-Until"])
    assert limited.status_code == 420 and limited.headers["X-RateLimit-Resource-Remaining"] == "0"
    assert until - parsedate_to_datetime(limited.headers["Date"]) == timedelta(seconds=3)
    assert unavailable.status_code == 503 and unavailable.json()["status"] == "ERROR"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(truncated.content)
    (path, order_id), = app.state.corrupted
    bad = next(o for o in malformed.json()["orders"] if o["orderId"] == order_id)
    assert path == ORDERS and bad["creationDate"] == "not-a-date"
    assert fine.status_code == 200


async def test_reviews_bounds_are_exclusive_and_comments_come_from_their_own_endpoint():
    app = _app()
    table = app.state.data.reviews
    ts = int(NOW.timestamp())
    i = next(k for k in range(table.visible_end(ts)) if table.comments(k, ts))
    at = datetime.fromtimestamp(table.created[i], UTC)
    async with _client(app) as http:
        exact = await http.post(FEEDBACK, json={"dateTimeFrom": market_time(at), "dateTimeTo": market_time(NOW)})
        early = await http.post(FEEDBACK, params={"limit": 50}, json={
            "dateTimeFrom": market_time(at - timedelta(seconds=1)), "dateTimeTo": market_time(NOW)})
        thread = await http.post(FEEDBACK + "/comments", json={"feedbackId": table.ids[i]})
    ids = lambda r: {f["feedbackId"] for f in r.json()["result"]["feedbacks"]}  # noqa: E731
    assert table.ids[i] not in ids(exact) and table.ids[i] in ids(early)
    feedback = next(f for f in early.json()["result"]["feedbacks"] if f["feedbackId"] == table.ids[i])
    comments = thread.json()["result"]["comments"]
    assert feedback["statistics"]["commentsCount"] == len(comments) and comments[0]["author"]["type"] == "BUSINESS"


# --- fault harness kinds: 420 storms, expired token, schema drift, wrong type ---

async def test_a_rate_limit_storm_is_consecutive_420s_never_429():
    app = _app(faults=(Fault(ORDERS, "rate_limit", times=3, retry_after=2),))
    async with _client(app) as http:
        answers = [await http.post(ORDERS, json={}) for _ in range(4)]
    assert [a.status_code for a in answers] == [420, 420, 420, 200]
    assert app.state.stats.throttled["orders"] == 3 and app.state.stats.statuses[429] == 0


async def test_an_expired_token_gets_markets_401_from_then_on():
    from connectors.yandex_market.emulator import EXPIRED_TOKEN_BODY

    app = _app(faults=(Fault("/", "expired_token", times=None, after=2),))
    async with _client(app) as http:
        answers = [await http.post(path, json={}) for path in (ORDERS, FEEDBACK, ORDERS, FEEDBACK)]
    assert [a.status_code for a in answers] == [200, 200, 401, 401]
    # The docs' verbatim 401 (error_401.response.json).
    assert answers[3].json() == EXPIRED_TOKEN_BODY == {
        "errors": [{"code": "UNAUTHORIZED", "message": "Api-Key token is invalid"}], "status": "ERROR"}


async def test_schema_drift_and_a_wrong_type_in_one_order_of_the_page():
    from connectors.errors import MalformedRecord

    ctx = MappingContext(marketplace="yandex_market", account="main", buyer_key=str)
    plain = _app(seed=6)
    drifted = _app(seed=6, faults=(Fault("/", "schema_drift", times=None), Fault(ORDERS, "wrong_type")))
    async with _client(plain) as http:
        before = (await http.post(ORDERS, json={})).json()["orders"]
    async with _client(drifted) as http:
        after = (await http.post(ORDERS, json={})).json()["orders"]
        again = (await http.post(ORDERS, json={})).json()["orders"]
    [(path, key)] = drifted.state.breakage.wrong_type
    assert path == ORDERS
    for page in (after, again):
        assert [str(o["orderId"]) for o in page if not isinstance(o["items"], list)] == [key]
    # Only what BusinessOrderDTO does not require is left out: `delivery` is required and stays.
    assert all("notes" not in o and "sourcePlatform" not in o and "delivery" in o for o in after)
    assert all(any(k.startswith("xDrift") for k in o["prices"]["payment"]) for o in after)  # nested too
    with pytest.raises(MalformedRecord, match="items") as broken:
        map_order(next(o for o in after if str(o["orderId"]) == key), ctx)
    assert broken.value.record_key == key
    good = [(a, b) for a, b in zip(after, before, strict=True) if str(a["orderId"]) != key]
    assert len(good) == len(before) - 1 and all(map_order(a, ctx) == map_order(b, ctx) for a, b in good)
