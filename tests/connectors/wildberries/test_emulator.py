"""The Wildberries emulator behaves like WB where the connector depends on it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import orjson
import pytest
from starlette.applications import Starlette

from connectors.wildberries import emulator
from connectors.wildberries.emulator import EmulatorConfig, Fault, create_app

NOW = datetime(2026, 8, 19, 12, 0, 0, tzinfo=UTC)
CANCELLED = {"canceled", "canceled_by_client", "declined_by_client", "defect", "canceled_by_carrier"}
FINAL = CANCELLED | {"sold"}
MSK_NAIVE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """A settable wall clock for `EmulatorConfig.clock`."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class Tick:
    """A settable monotonic clock for the token buckets."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def make(**kwargs: Any) -> Starlette:
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("clock", Clock(NOW))
    kwargs.setdefault("rate_limits", False)
    return create_app(EmulatorConfig(**kwargs))


@asynccontextmanager
async def wb(app: Starlette, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wb", headers=headers) as c:
        yield c


async def all_marketplace_orders(c: httpx.AsyncClient, now: datetime, limit: int = 37,
                                 ) -> list[dict]:
    params = {"limit": limit, "next": 0, "dateTo": int(now.timestamp()),
              "dateFrom": int((now - timedelta(days=30)).timestamp())}
    out: list[dict] = []
    while True:
        body = (await c.get("/api/v3/orders", params=params)).json()
        if not body["orders"]:
            assert body["next"] == params["next"]  # the page after the last repeats the cursor
            return out
        out += body["orders"]
        params["next"] = body["next"]


async def statistics(c: httpx.AsyncClient, date_from: str = "2026-01-01", flag: int = 0,
                     ) -> list[dict]:
    response = await c.get("/api/v1/supplier/orders", params={"dateFrom": date_from, "flag": flag})
    assert response.status_code == 200
    return response.json()


async def statuses(c: httpx.AsyncClient, ids: list[int]) -> dict[int, tuple[str, str]]:
    body = (await c.post("/api/v3/orders/status", json={"orders": ids})).json()
    return {o["id"]: (o["supplierStatus"], o["wbStatus"]) for o in body["orders"]}


# --- orders ---

@pytest.mark.anyio
async def test_paging_returns_every_fbs_order_once_and_never_fbo() -> None:
    app = make(orders=500, history_days=25)
    async with wb(app) as c:
        orders = await all_marketplace_orders(c, NOW)
        rows = await statistics(c)
    ids = [o["id"] for o in orders]
    assert ids == sorted(set(ids))
    assert all(o["deliveryType"] == "fbs" and "supplierStatus" not in o for o in orders)
    fbs = {r["srid"] for r in rows if r["warehouseType"] == "Склад продавца"}
    fbo = {r["srid"] for r in rows if r["warehouseType"] == "Склад WB"}
    assert len(rows) == 500 and 0.2 < len(fbo) / 500 < 0.4
    assert {o["rid"] for o in orders} == fbs
    assert all(re.fullmatch(r"[0-9a-f]{32}", o["rid"]) for o in orders)


@pytest.mark.anyio
async def test_statistics_pages_repeat_the_boundary_row_in_moscow_time() -> None:
    app = make(orders=300, statistics_page_size=40)
    async with wb(app) as c:
        by_rid = {o["rid"]: o for o in await all_marketplace_orders(c, NOW)}
        seen: set[str] = set()
        cursor, pages, previous_last = "2026-01-01", 0, None
        while True:
            page = await statistics(c, cursor)
            pages += 1
            assert len(page) <= 40
            if previous_last is not None:  # `>=`: the last row of a page comes back on the next
                assert previous_last in {r["srid"] for r in page}
            seen |= {r["srid"] for r in page}
            previous_last = page[-1]["srid"]
            if page[-1]["lastChangeDate"] == cursor:
                break
            cursor = page[-1]["lastChangeDate"]
    assert seen == {r["srid"] for r in rows_at_now(app)} and len(seen) == 300
    assert pages > 300 // 40
    for row in rows_at_now(app):
        assert MSK_NAIVE.match(row["date"]) and MSK_NAIVE.match(row["lastChangeDate"])
        order = by_rid.get(row["srid"])
        if order:  # the same instant: UTC "Z" in Marketplace, Moscow wall time in Statistics
            created = datetime.fromisoformat(order["createdAt"])
            assert row["date"] == (created + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")


def rows_at_now(app: Starlette) -> list[dict]:
    table, now = app.state.data.orders, int(NOW.timestamp())
    return [table.statistics_row(i, now) for i in range(table.visible_end(now))]


@pytest.mark.anyio
async def test_kopecks_and_rubles_agree_for_the_same_order() -> None:
    app = make(orders=300)
    async with wb(app) as c:
        orders = await all_marketplace_orders(c, NOW)
        rows = {r["srid"]: r for r in await statistics(c)}
    assert orders
    for o in orders:
        row = rows[o["rid"]]
        assert isinstance(o["convertedPrice"], int) and o["convertedCurrencyCode"] == 643
        assert isinstance(row["finishedPrice"], float)
        assert round(row["finishedPrice"] * 100) == o["convertedPrice"] == o["price"]
        assert row["totalPrice"] >= row["priceWithDisc"] >= row["finishedPrice"]
        assert row["nmId"] == o["nmId"] and row["barcode"] == o["skus"][0]


@pytest.mark.anyio
async def test_statuses_and_cancellations_evolve_with_the_clock() -> None:
    clock = Clock(NOW - timedelta(days=5))
    app = make(orders=600, history_days=30, clock=clock)
    async with wb(app) as c:
        before = await all_marketplace_orders(c, clock.at)
        early = await statuses(c, [o["id"] for o in before])
        early_rows = {r["srid"]: r for r in await statistics(c)}
        clock.at = NOW + timedelta(days=12)
        after = await all_marketplace_orders(c, NOW)
        late = await statuses(c, [o["id"] for o in after])
        late_rows = {r["srid"]: r for r in await statistics(c)}
    assert len(after) > len(before)  # orders of the last five days were in the future before
    assert all(datetime.fromisoformat(o["createdAt"]) <= NOW - timedelta(days=5) for o in before)
    changed = [i for i in early if early[i] != late[i]]
    assert len(changed) > 10
    kinds = {wb_status for _, wb_status in late.values()}
    assert {"sold", "canceled_by_client"} <= kinds and kinds <= FINAL
    assert ("new", "waiting") in set(early.values())
    newly_cancelled = [s for s, r in late_rows.items()
                       if r["isCancel"] and s in early_rows and not early_rows[s]["isCancel"]]
    assert newly_cancelled
    for srid in newly_cancelled:
        row = late_rows[srid]
        assert row["lastChangeDate"] == row["cancelDate"] > row["date"]
        assert early_rows[srid]["cancelDate"] == "0001-01-01T00:00:00"
    rid_to_id = {o["rid"]: o["id"] for o in after}
    for srid, row in late_rows.items():  # the two APIs agree on which FBS orders are cancelled
        if srid in rid_to_id:
            sup, wb_status = late[rid_to_id[srid]]
            assert row["isCancel"] == (sup in ("cancel", "cancel_carrier") or wb_status in CANCELLED)


@pytest.mark.anyio
async def test_orders_new_lists_exactly_the_new_fbs_orders() -> None:
    app = make(orders=2000, history_days=10)
    async with wb(app) as c:
        new = (await c.get("/api/v3/orders/new")).json()["orders"]
        state = await statuses(c, [o["id"] for o in new])
    assert new and set(state.values()) == {("new", "waiting")}
    assert all(o["finalPrice"] <= o["price"] <= o["salePrice"] for o in new)
    assert all(o["scanPrice"] is None and "supplyId" not in o for o in new)


@pytest.mark.anyio
async def test_marketplace_rejects_bad_parameters() -> None:
    app = make()
    now = int(NOW.timestamp())
    async with wb(app) as c:
        too_long = await c.get("/api/v3/orders", params={
            "limit": 10, "next": 0, "dateFrom": now - 31 * 86400, "dateTo": now})
        exactly_30 = await c.get("/api/v3/orders", params={
            "limit": 10, "next": 0, "dateFrom": now - 30 * 86400, "dateTo": now})
        no_limit = await c.get("/api/v3/orders", params={"next": 0})
        big_limit = await c.get("/api/v3/orders", params={"limit": 1001, "next": 0})
        too_many = await c.post("/api/v3/orders/status", json={"orders": list(range(1001))})
        unknown = await c.post("/api/v3/orders/status", json={"orders": [1, 2]})
    assert too_long.status_code == 400
    assert too_long.json()["code"] == "IncorrectParameter" and too_long.json()["message"]
    assert exactly_30.status_code == 200
    assert {no_limit.status_code, big_limit.status_code, too_many.status_code} == {400}
    assert unknown.json() == {"orders": []}


@pytest.mark.anyio
async def test_statistics_errors_flag_and_moscow_date_from() -> None:
    app = make(orders=400, history_days=10)
    async with wb(app) as c:
        missing = await c.get("/api/v1/supplier/orders")
        garbage = await c.get("/api/v1/supplier/orders", params={"dateFrom": "yesterday"})
        naive = await statistics(c, "2026-08-15T10:00:00")
        utc = await statistics(c, "2026-08-15T07:00:00Z")
        day = await statistics(c, "2026-08-15T18:30:00", flag=1)
        future = await statistics(c, "2026-09-01")
    assert missing.status_code == garbage.status_code == 400
    assert missing.json() == {"errors": ["dateFrom: field required"]}
    assert garbage.json() == {"errors": "dateFrom: Value not validated"}
    assert naive == utc and all(r["lastChangeDate"] >= "2026-08-15T10:00:00" for r in naive)
    assert day and all(r["date"].startswith("2026-08-15T") for r in day)
    assert future == []


@pytest.mark.anyio
async def test_statistics_page_is_capped() -> None:
    app = make(orders=5000, statistics_page_size=1000)
    async with wb(app) as c:
        rows = await statistics(c)
    assert len(rows) == 1000
    keys = [(r["lastChangeDate"], r["srid"]) for r in rows]
    assert keys == sorted(keys)


@pytest.mark.anyio
async def test_same_seed_same_world() -> None:
    async with wb(make(seed=7)) as a, wb(make(seed=7)) as b, wb(make(seed=8)) as other:
        first, second, third = [await statistics(x) for x in (a, b, other)]
    assert first == second != third


# --- rate limits ---

@pytest.mark.anyio
async def test_statistics_burst_then_429_then_recovery() -> None:
    tick = Tick()
    app = make(rate_limits=True, monotonic=tick)
    async with wb(app) as c:
        remaining = []
        for _ in range(10):
            r = await c.get("/api/v1/supplier/orders", params={"dateFrom": "2026-08-01"})
            remaining.append(int(r.headers["X-Ratelimit-Remaining"]))
        limited = await c.get("/api/v1/supplier/orders", params={"dateFrom": "2026-08-01"})
        tick.value += 59
        still = await c.get("/api/v1/supplier/orders", params={"dateFrom": "2026-08-01"})
        tick.value += 1
        again = await c.get("/api/v1/supplier/orders", params={"dateFrom": "2026-08-01"})
        other_group = await c.get("/api/v1/feedbacks/count-unanswered")
    assert remaining == list(range(9, -1, -1))
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["title"] == "too many requests" and limited.json()["status"] == 429
    assert (limited.headers["X-Ratelimit-Retry"], limited.headers["X-Ratelimit-Limit"],
            limited.headers["X-Ratelimit-Reset"]) == ("60", "10", "600")
    assert "X-Ratelimit-Remaining" not in limited.headers
    assert still.status_code == 429 and still.headers["X-Ratelimit-Retry"] == "1"
    assert again.status_code == 200 and other_group.status_code == 200
    stats = app.state.stats
    assert stats.throttled["statistics"] == 2 and stats.total_throttled == 2
    assert stats.requests["statistics"] == 13 and stats.statuses[429] == 2


@pytest.mark.anyio
async def test_marketplace_4xx_costs_ten_tokens() -> None:
    app = make(rate_limits=True, monotonic=Tick())
    async with wb(app) as c:
        first = await c.get("/api/v3/orders", params={"limit": 0, "next": 0})
        second = await c.get("/api/v3/orders", params={"limit": 0, "next": 0})
        third = await c.get("/api/v3/orders", params={"limit": 1, "next": 0})
    assert first.headers["X-Ratelimit-Remaining"] == "10"
    assert second.headers["X-Ratelimit-Remaining"] == "0"
    assert third.status_code == 429


@pytest.mark.anyio
async def test_wrong_token_gets_401_and_buckets_are_per_token() -> None:
    app = make(token="secret", rate_limits=True, monotonic=Tick())
    async with wb(app) as c:
        none = await c.get("/ping")
        wrong = await c.get("/api/v1/feedbacks/count-unanswered", headers={"Authorization": "x"})
        raw = await c.get("/api/v1/feedbacks/count-unanswered", headers={"Authorization": "secret"})
        bearer = await c.get("/api/v1/feedbacks/count-unanswered",
                             headers={"Authorization": "Bearer secret"})
    assert none.status_code == wrong.status_code == 401
    assert wrong.json()["title"] == "unauthorized" and wrong.json()["status"] == 401
    assert raw.status_code == bearer.status_code == 200
    assert bearer.headers["X-Ratelimit-Remaining"] == "4"  # raw and Bearer share one bucket


# --- faults ---

@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["http_500", "http_503"])
async def test_server_error_fault_applies_times_then_stops(kind: str) -> None:
    app = make(faults=(Fault("/api/v1/feedbacks", kind, times=2),))
    async with wb(app) as c:
        codes = [(await c.get("/api/v1/feedbacks/count-unanswered")).status_code for _ in range(3)]
        broken = app.state.request_log[0]
    assert codes == [int(kind[-3:])] * 2 + [200]
    assert broken == ("GET", "/api/v1/feedbacks/count-unanswered", "", int(kind[-3:]))


@pytest.mark.anyio
async def test_timeout_fault_delays_past_the_client_deadline() -> None:
    app = make(faults=(Fault("/ping", "timeout", delay=5),))
    async with wb(app) as c:
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.05):
                await c.get("/ping")
        with anyio.fail_after(1):
            assert (await c.get("/ping")).status_code == 200


@pytest.mark.anyio
async def test_malformed_fault_corrupts_one_record_per_api() -> None:
    app = make(orders=300, faults=(
        Fault("/api/v3/orders", "malformed"), Fault("/api/v1/supplier", "malformed"),
        Fault("/api/v1/feedbacks", "malformed")))
    async with wb(app) as c:
        empty = await statistics(c, "2026-12-01")  # nothing to corrupt: the fault waits
        table = app.state.data.orders
        fbs_id = next(table.ids[i] for i in range(len(table)) if not table.fbo[i])
        state = await c.post("/api/v3/orders/status", json={"orders": [fbs_id]})  # nor here
        orders = (await c.get("/api/v3/orders", params={"limit": 50, "next": 0})).json()["orders"]
        rows = await statistics(c)
        reviews = (await c.get("/api/v1/feedbacks", params={
            "isAnswered": "false", "take": 50, "skip": 0})).json()["data"]["feedbacks"]
    assert empty == [] and state.json()["orders"][0]["wbStatus"] == "sold"
    bad_orders = [o for o in orders if o["createdAt"] == "not-a-date"]
    bad_rows = [r for r in rows if r["totalPrice"] == "abc"]
    bad_reviews = [r for r in reviews if r["productValuation"] == 9]
    assert len(bad_orders) == len(bad_rows) == len(bad_reviews) == 1
    assert bad_rows[0]["date"] == "not-a-date"
    assert app.state.corrupted == [("/api/v3/orders", bad_orders[0]["id"]),
                                   ("/api/v1/supplier/orders", bad_rows[0]["srid"]),
                                   ("/api/v1/feedbacks", bad_reviews[0]["id"])]


@pytest.mark.anyio
async def test_rate_limit_fault_sends_retry_hint() -> None:
    app = make(rate_limits=True, monotonic=Tick(),
               faults=(Fault("/api/v3/orders", "rate_limit", retry_after=7),))
    async with wb(app) as c:
        limited = await c.get("/api/v3/orders/new")
        fine = await c.get("/api/v3/orders/new")
    assert limited.status_code == 429 and limited.headers["X-Ratelimit-Retry"] == "7"
    assert fine.status_code == 200 and fine.headers["X-Ratelimit-Remaining"] == "19"
    assert app.state.stats.throttled["marketplace"] == 1


@pytest.mark.anyio
async def test_truncated_fault_cuts_the_body_in_half() -> None:
    app = make(faults=(Fault("/api/v1/supplier/orders", "truncated"),))
    async with wb(app) as c:
        cut = await c.get("/api/v1/supplier/orders", params={"dateFrom": "2026-08-01"})
        whole = await c.get("/api/v1/supplier/orders", params={"dateFrom": "2026-08-01"})
    assert cut.status_code == 200 and len(cut.content) == len(whole.content) // 2
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(cut.content)


@pytest.mark.anyio
async def test_probabilistic_fault_is_seeded() -> None:
    async def run() -> list[int]:
        app = make(faults=(Fault("/ping", "http_503", times=None, probability=0.3),))
        async with wb(app) as c:
            return [(await c.get("/ping")).status_code for _ in range(60)]

    first, second = await run(), await run()
    assert first == second and 5 < first.count(503) < 35 and 200 in first


# --- feedbacks ---

@pytest.mark.anyio
async def test_feedbacks_listing_and_validation() -> None:
    app = make(reviews=300)
    async with wb(app) as c:
        base = {"isAnswered": "false", "take": 5000, "skip": 0}
        unanswered = (await c.get("/api/v1/feedbacks", params=base)).json()
        answered = (await c.get("/api/v1/feedbacks", params={**base, "isAnswered": "true"})).json()
        asc = (await c.get("/api/v1/feedbacks", params={**base, "order": "dateAsc"})).json()
        archive = (await c.get("/api/v1/feedbacks/archive", params={"take": 5000, "skip": 0})).json()
        bad = [await c.get("/api/v1/feedbacks", params=p) for p in (
            {"take": 10, "skip": 0}, {**base, "take": 5001}, {**base, "skip": 199_991})]
        bad.append(await c.get("/api/v1/feedbacks/archive", params={"skip": 0}))
    data, archived = unanswered["data"], archive["data"]["feedbacks"]
    assert unanswered["error"] is False and unanswered["errorText"] == ""
    # The emulator's reading of WB's archive rule: the list holds no archived review, so answered
    # ones, those left unanswered for 30 days and those with no text and no photos are archived only.
    assert answered["data"]["feedbacks"] == []
    assert data["countUnanswered"] == len(data["feedbacks"]) > 0 and data["countArchive"] == len(archived)
    assert data["countArchive"] + data["countUnanswered"] == 300
    ids = {f["id"] for f in data["feedbacks"]}
    assert ids.isdisjoint(f["id"] for f in archived)
    assert all(f["answer"] is None and (f["text"] or f["pros"] or f["cons"] or f["photoLinks"])
               for f in data["feedbacks"])
    assert all(datetime.fromisoformat(f["createdDate"]) > NOW - timedelta(days=30) for f in data["feedbacks"])
    assert any(f["answer"] for f in archived) and any(not f["answer"] for f in archived)
    for listing in (data["feedbacks"], archived):  # both newest first by default
        dates = [f["createdDate"] for f in listing]
        assert dates == sorted(dates, reverse=True) and all(d.endswith("+03:00") for d in dates)
    oldest_first = [f["id"] for f in asc["data"]["feedbacks"]]
    assert oldest_first == [f["id"] for f in reversed(data["feedbacks"])]
    assert all(f["answer"]["state"] == "wbRu" and f["state"] == "wbRu" for f in archived if f["answer"])
    for response in bad:
        body = response.json()
        assert response.status_code == 400 and body["data"] is None and body["error"] is True
        assert body["errorText"] and body["requestId"]


@pytest.mark.anyio
async def test_answer_validation_and_effect() -> None:
    app = make(reviews=50)
    params = {"isAnswered": "false", "take": 100, "skip": 0}
    async with wb(app) as c:
        before = (await c.get("/api/v1/feedbacks", params=params)).json()["data"]
        target = before["feedbacks"][0]["id"]
        no_type = await c.post("/api/v1/feedbacks/answer",
                               content=orjson.dumps({"id": target, "text": "Спасибо!"}))
        short = await c.post("/api/v1/feedbacks/answer", json={"id": target, "text": "!"})
        ok = await c.post("/api/v1/feedbacks/answer", json={"id": target, "text": "Спасибо!"})
        unknown = await c.post("/api/v1/feedbacks/answer", json={"id": "nope", "text": "Спасибо!"})
        after = (await c.get("/api/v1/feedbacks", params=params)).json()["data"]
        one = (await c.get("/api/v1/feedback", params={"id": target})).json()["data"]
    assert no_type.status_code == 400
    assert no_type.json()["origin"] == "fbapi" and no_type.json()["title"] == "bad request"
    assert short.status_code == 400 and short.json()["error"] is True
    assert ok.status_code == unknown.status_code == 204
    assert after["countUnanswered"] == before["countUnanswered"] - 1  # answered: archived
    assert after["countArchive"] == before["countArchive"] + 1
    assert target not in {f["id"] for f in after["feedbacks"]}
    assert one["answer"] == {"text": "Спасибо!", "state": "wbRu", "editable": True}
    assert app.state.answers == [(target, "Спасибо!"), ("nope", "Спасибо!")]


@pytest.mark.anyio
async def test_review_products_match_order_products_and_ping() -> None:
    app = make(orders=500, reviews=100)
    async with wb(app) as c:
        rows = await statistics(c)
        reviews = (await c.get("/api/v1/feedbacks", params={
            "isAnswered": "false", "take": 100, "skip": 0})).json()["data"]["feedbacks"]
        ping = (await c.get("/ping")).json()
    order_products = {r["nmId"] for r in rows}
    assert {f["productDetails"]["nmId"] for f in reviews} <= order_products
    assert all(1 <= f["productValuation"] <= 5 and f["answer"] is None for f in reviews)
    assert ping == {"TS": "2026-08-19T15:00:00+03:00", "Status": "OK"}


def test_public_surface() -> None:
    assert sorted(emulator.__all__) == [
        "DEFAULT_LIMITS", "EmulatorConfig", "EmulatorStats", "Fault", "FaultKind", "create_app"]
    assert dict(emulator.DEFAULT_LIMITS) == {
        "marketplace": (300, 60, 20), "statistics": (1, 60, 10), "feedbacks": (3, 1, 6)}


# --- fault harness kinds: expired token, schema drift, wrong type ---

FEEDBACKS = {"isAnswered": "false", "take": 30, "skip": 0}
ARCHIVE = {"take": 30, "skip": 0}


@pytest.mark.anyio
async def test_expired_token_fault_lets_requests_through_then_answers_wbs_expired_401() -> None:
    app = make(token="jwt-1", faults=(Fault("/", "expired_token", times=None, after=2),))
    async with wb(app, Authorization="jwt-1") as c:
        first = [await c.get("/ping"), await c.get("/api/v1/feedbacks", params=FEEDBACKS)]
        later = [await c.get("/ping"), await c.get("/api/v3/orders/new"), await c.get("/ping")]
    assert [r.status_code for r in first] == [200, 200]
    assert [r.status_code for r in later] == [401, 401, 401]  # once expired, it stays expired
    body = later[1].json()
    assert later[1].headers["content-type"] == "application/problem+json"
    assert body["title"] == "unauthorized" and body["status"] == 401 and body["statusText"] == "Unauthorized"
    assert body["detail"] == emulator.EXPIRED_TOKEN_DETAIL and "token is expired" in body["detail"]


@pytest.mark.anyio
async def test_schema_drift_adds_unknown_fields_and_leaves_out_only_optional_ones() -> None:
    from connectors.base import MappingContext
    from connectors.wildberries.mapping import map_feedback, map_statistics_order

    ctx = MappingContext(marketplace="wildberries", account="main")
    plain, drifted = make(seed=5), make(seed=5, faults=(Fault("/", "schema_drift", times=None),))
    pages = []
    for app in (plain, drifted):
        async with wb(app) as c:
            reviews = [r for path, params in (("/api/v1/feedbacks", FEEDBACKS), ("/api/v1/feedbacks/archive", ARCHIVE))
                       for r in (await c.get(path, params=params)).json()["data"]["feedbacks"]]
            pages.append((reviews, await statistics(c)))
    (reviews, rows), (reviews2, rows2) = pages
    assert reviews and rows and len(reviews) == len(reviews2) and len(rows) == len(rows2)
    assert all(any(k.startswith("xDrift") for k in r) for r in reviews2 + rows2)
    assert all("userName" not in r for r in reviews2)
    # `answer` is nullable: left out where it is null, kept where there is one.
    assert [("answer" in r) for r in reviews2] == [r["answer"] is not None for r in reviews]
    assert any("answer" in r for r in reviews2) and any("answer" not in r for r in reviews2)
    assert all("spp" not in r and "incomeID" not in r for r in rows2)
    breakage = drifted.state.breakage
    assert breakage.unknown_fields > len(reviews2) + len(rows2)  # nested objects got some too
    assert breakage.dropped[("/api/v1/feedbacks", reviews2[0]["id"])] >= {"userName", "color"}
    # What the connector reads is untouched: the records map exactly as without drift, but for
    # `cancelDate` (optional in the spec): a cancelled row without it has no status time of its own,
    # so the store stamps when a sync first saw the cancellation.
    assert [map_feedback(r, ctx) for r in reviews2] == [map_feedback(r, ctx) for r in reviews]
    plain_rows, drifted_rows = ([map_statistics_order(r, ctx) for r in rs] for rs in (rows, rows2))
    assert [replace(r, status_changed_at=None) for r in drifted_rows] == [
        replace(r, status_changed_at=None) for r in plain_rows]
    assert any(r.status_changed_at for r in plain_rows)
    assert [r.status_changed_at for r in drifted_rows] == [
        p.status_changed_at if "cancelDate" in raw else None for p, raw in zip(plain_rows, rows2, strict=True)]


@pytest.mark.anyio
async def test_wrong_type_breaks_one_record_of_a_page_and_it_stays_broken() -> None:
    from connectors.base import MappingContext
    from connectors.errors import MalformedRecord
    from connectors.wildberries.mapping import map_feedback

    app = make(faults=(Fault("/api/v1/feedbacks", "wrong_type", times=1),))
    async with wb(app) as c:
        await c.get("/api/v1/feedbacks/count-unanswered")  # not a page of records: the fault waits
        first = (await c.get("/api/v1/feedbacks", params=FEEDBACKS)).json()["data"]["feedbacks"]
        again = (await c.get("/api/v1/feedbacks", params=FEEDBACKS)).json()["data"]["feedbacks"]
    [(path, key)] = app.state.breakage.wrong_type
    assert path == "/api/v1/feedbacks" and app.state.breakage.wrong_type[(path, key)] == "productValuation"
    for page in (first, again):
        [bad] = [r for r in page if not isinstance(r["productValuation"], int)]
        assert bad["id"] == key and bad["productValuation"] == "5"
    with pytest.raises(MalformedRecord, match="productValuation"):
        map_feedback(bad, MappingContext(marketplace="wildberries", account="main"))
