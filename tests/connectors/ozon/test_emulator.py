"""The Ozon emulator behaves like Ozon where the connector depends on it."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from connectors.ozon.emulator import EmulatorConfig, Fault, create_app
from connectors.ozon.emulator_data import FBO, FBS, RFBS, US

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HEADERS = {"Client-Id": "42", "Api-Key": "key-42"}
SINCE, TO = "2026-10-01T00:00:00Z", "2026-11-20T12:00:00Z"


class Tick:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def make(**kwargs: Any) -> Starlette:
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("clock", Clock(NOW))
    kwargs.setdefault("rate_limits", False)
    kwargs.setdefault("client_id", "42")
    kwargs.setdefault("token", "key-42")
    return create_app(EmulatorConfig(**kwargs))


@asynccontextmanager
async def ozon(app: Starlette, headers: dict[str, str] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://oz",
                                 headers=HEADERS if headers is None else headers) as c:
        yield c


async def all_postings(c: httpx.AsyncClient, path: str, flt: dict, limit: int = 37) -> list[dict]:
    cursor, out = "", []
    while True:
        body = (await c.post(path, json={"cursor": cursor, "filter": flt, "limit": limit})).json()
        out += body["postings"]
        if not body["has_next"]:
            return out
        cursor = body["cursor"]


async def test_auth_needs_both_headers_and_the_right_key():
    app = make()
    async with ozon(app, {}) as c:
        missing = await c.post("/v3/posting/fbo/list", json={})
    async with ozon(app, {**HEADERS, "Api-Key": "wrong"}) as c:
        wrong = await c.post("/v3/posting/fbo/list", json={})
    async with ozon(app, {**HEADERS, "Client-Id": "43"}) as c:
        other = await c.post("/v3/posting/fbo/list", json={})
    async with ozon(app, {**HEADERS, "Client-Id": "my-shop"}) as c:
        not_a_number = await c.post("/v3/posting/fbo/list", json={})
    assert missing.status_code == 401 and missing.json()["code"] == 16
    # As live probes report it ([3p]): 404, gRPC code 5 (NOT_FOUND), Ozon's own words.
    assert wrong.status_code == 404 and wrong.json() == {
        "code": 5, "message": "Invalid Api-Key, please check the key and try again", "details": []}
    assert other.status_code == 404 and other.json() == wrong.json()
    assert not_a_number.status_code == 400 and not_a_number.json() == {
        "code": 3, "message": "Client-Id header value should be positive integer", "details": []}


@pytest.mark.parametrize(("status", "code"), [(401, 16), (403, 7)])
async def test_the_invalid_key_answer_can_take_the_other_reported_statuses(status, code):
    async with ozon(make(bad_key_status=status), {**HEADERS, "Api-Key": "wrong"}) as c:
        wrong = await c.post("/v3/posting/fbo/list", json={})
    assert wrong.status_code == status and wrong.json()["code"] == code
    assert wrong.json()["message"] == "Invalid Api-Key, please check the key and try again"


async def test_fbs_cursor_paging_returns_each_posting_once_in_list_order():
    app = make(orders=300)
    async with ozon(app) as c:
        got = await all_postings(c, "/v4/posting/fbs/list", {"since": SINCE, "to": TO})
    table = app.state.data.postings
    assert [p["posting_number"] for p in got] == [table.posting_number(i) for i in table.fbs]
    assert all("customer" in p and p["financial_data"] is None for p in got)


async def test_buyers_repeat_with_stable_customer_ids_only_on_rfbs_and_some_fbs():
    app = make(orders=400)
    async with ozon(app) as c:
        fbs = await all_postings(c, "/v4/posting/fbs/list", {"since": SINCE, "to": TO}, limit=100)
        fbo = await all_postings(c, "/v3/posting/fbo/list", {"since": SINCE, "to": TO}, limit=100)
    table = app.state.data.postings
    by_scheme: Counter[tuple[int, bool]] = Counter()
    ids_by_buyer: dict[int, set[str]] = {}
    for p in fbs:
        i = table.index_of(p["posting_number"])
        by_scheme[(table.scheme[i], p["customer"] is not None)] += 1
        if p["customer"]:
            assert p["customer"]["name"] and p["customer"]["phone"].startswith("+79") and p["addressee"]
            ids_by_buyer.setdefault(table.buyer[i], set()).add(str(p["customer"]["customer_id"]))
            assert p["tpl_integration_type"] != "ozon" or table.scheme[i] == FBS
    assert by_scheme[(RFBS, False)] == 0 and by_scheme[(RFBS, True)] > 0
    assert by_scheme[(FBS, False)] > 5 * by_scheme[(FBS, True)] > 0  # FBS: mostly customer null
    assert all(len(ids) == 1 for ids in ids_by_buyer.values())
    assert any(sum(1 for p in fbs if p["customer"] and table.buyer[table.index_of(p["posting_number"])] == b) > 1
               for b in ids_by_buyer)
    assert fbo and all("customer" not in p and "addressee" not in p for p in fbo)
    assert all(table.scheme[table.index_of(p["posting_number"])] == FBO for p in fbo)


async def test_statuses_move_with_time_and_some_postings_are_cancelled_after_shipping():
    clock = Clock(NOW - timedelta(days=20))
    app = make(orders=300, clock=clock)
    flt = {"since": SINCE, "to": TO}
    async with ozon(app) as c:
        early = {p["posting_number"]: p for p in await all_postings(c, "/v4/posting/fbs/list", flt)}
        clock.at = NOW
        late = {p["posting_number"]: p for p in await all_postings(c, "/v4/posting/fbs/list", flt)}
    moved = Counter((early[n]["status"], late[n]["status"]) for n in early if early[n]["status"] != late[n]["status"])
    assert moved[("awaiting_packaging", "delivered")] + moved[("delivering", "delivered")] > 0
    assert any(after == "cancelled" and before != "awaiting_packaging" for before, after in moved)
    assert set(late) > set(early)  # postings created since then appear
    shipped_back = [p for p in late.values() if p["cancellation"]["cancelled_after_ship"]]
    assert any(p["substatus"] == "posting_returned_to_warehouse" for p in shipped_back)


async def test_the_status_change_filter_returns_postings_whose_last_change_is_in_range():
    app = make(orders=300)
    frm, till = NOW - timedelta(days=2), NOW - timedelta(days=1)
    flt = {"since": "2025-11-21T00:00:00Z", "to": TO,
           "last_changed_status_date": {"from": frm.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                        "to": till.strftime("%Y-%m-%dT%H:%M:%SZ")}}
    async with ozon(app) as c:
        got = await all_postings(c, "/v4/posting/fbs/list", flt, limit=5)
    table, now = app.state.data.postings, int(NOW.timestamp() * US)
    expected = {table.posting_number(i) for i in table.fbs
                if frm.timestamp() * US <= table.state(i, now)[2] <= till.timestamp() * US}
    assert expected and {p["posting_number"] for p in got} == expected and len(got) == len(expected)


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v4/posting/fbs/list", {"filter": {"since": SINCE, "to": TO}, "limit": 101}, "limit must be in [1, 100]"),
        ("/v4/posting/fbs/list", {"filter": {"since": "2024-01-01T00:00:00Z", "to": TO}, "limit": 10},
         "PERIOD_IS_TOO_LONG"),
        ("/v3/posting/fbo/list", {"filter": {"since": SINCE}, "limit": 10}, "filter.since and filter.to"),
        ("/v3/posting/fbo/list", {"filter": {"since": SINCE, "to": TO}, "limit": 10, "cursor": "??"}, "cursor"),
        ("/v2/review/list", {"limit": 10}, "limit must be in [20, 100]"),
        ("/v2/review/list", {"limit": 20, "last_id": "nope"}, "last_id"),
    ],
)
async def test_bad_requests_get_ozons_error_body(path, body, message):
    async with ozon(make()) as c:
        response = await c.post(path, json=body)
    assert response.status_code == 400
    assert response.json()["code"] == 3 and message in response.json()["message"]


async def test_the_rate_limit_is_per_client_id_with_a_retry_hint():
    tick = Tick()
    app = make(rate_limits=True, client_id=None, token=None, monotonic=tick)
    body = {"filter": {"since": SINCE, "to": TO}, "limit": 1}
    async with ozon(app) as c:
        statuses = [(await c.post("/v3/posting/fbo/list", json=body)).status_code for _ in range(50)]
        throttled = await c.post("/v3/posting/fbo/list", json=body)
    async with ozon(app, {"Client-Id": "43", "Api-Key": "k"}) as c:
        other = await c.post("/v3/posting/fbo/list", json=body)
    tick.value += 1.0
    async with ozon(app) as c:
        again = await c.post("/v3/posting/fbo/list", json=body)
    assert statuses == [200] * 50 and other.status_code == 200 and again.status_code == 200
    assert throttled.status_code == 429 and throttled.json() == {
        "code": 8, "message": "You have reached request rate limit per second"}
    assert throttled.headers["retry-after"] == "1" and throttled.headers["ratelimit-remaining"] == "0"
    assert app.state.stats.total_throttled == 1


async def test_reviews_page_by_last_id_and_answers_appear_as_owner_comments():
    app = make(reviews=130)
    ids, last_id = [], ""
    async with ozon(app) as c:
        while True:
            body = (await c.post("/v2/review/list", json={"limit": 20, "last_id": last_id})).json()
            ids += [r["id"] for r in body["reviews"]]
            if not body["has_next"]:
                break
            last_id = body["last_id"]
        reviews, now = app.state.data.reviews, int(NOW.timestamp() * US)
        commented = next(i for i in range(len(reviews)) if reviews.record(i, now)["comments_amount"])
        comments = (await c.post("/v1/review/comment/list",
                                 json={"review_id": reviews.review_id(commented), "limit": 20})).json()
        quiet = next(i for i in range(len(reviews)) if not reviews.comments(i, now))
        created = await c.post("/v1/review/comment/create", json={"review_id": reviews.review_id(quiet),
                                                                   "text": "Спасибо за отзыв!"})
        after = (await c.post("/v1/review/comment/list",
                              json={"review_id": reviews.review_id(quiet), "limit": 20})).json()
    assert ids == [reviews.review_id(i) for i in range(len(reviews))]
    assert comments["comments"] and comments["offset"] == len(comments["comments"])
    assert created.status_code == 200 and created.json()["comment_id"]
    assert after["comments"][-1]["is_owner"] and after["comments"][-1]["text"] == "Спасибо за отзыв!"
    assert app.state.comments == [(reviews.review_id(quiet), "Спасибо за отзыв!")]


@pytest.mark.parametrize("path", ["/v2/review/list", "/v1/review/comment/list", "/v1/review/comment/create"])
async def test_without_the_subscription_review_methods_answer_403(path):
    async with ozon(make(reviews_subscription=False)) as c:
        refused = await c.post(path, json={"limit": 20})
        orders = await c.post("/v3/posting/fbo/list", json={"filter": {"since": SINCE, "to": TO}, "limit": 5})
    assert refused.status_code == 403 and "Premium Pro" in refused.json()["message"]
    assert orders.status_code == 200


async def test_faults_fire_as_configured():
    faults = (Fault("/v3/posting/fbo/list", "http_503"), Fault("/v3/posting/fbo/list", "truncated"),
              Fault("/v3/posting/fbo/list", "rate_limit", retry_after=4), Fault("/v3/posting/fbo/list", "malformed"))
    app = make(faults=faults)
    body = {"filter": {"since": SINCE, "to": TO}, "limit": 10}
    async with ozon(app) as c:
        answers = [await c.post("/v3/posting/fbo/list", json=body) for _ in range(5)]
    assert [a.status_code for a in answers] == [503, 200, 429, 200, 200]
    assert answers[0].json()["code"] == 14
    with pytest.raises(ValueError):
        answers[1].json()  # cut in half
    assert answers[2].headers["retry-after"] == "4"
    [(path, posting)] = app.state.corrupted
    broken = next(p for p in answers[3].json()["postings"] if p["posting_number"] == posting)
    assert broken["created_at"] == "not-a-date" and path == "/v3/posting/fbo/list"
    assert all(p["created_at"] != "not-a-date" for p in answers[4].json()["postings"])
    assert [entry[3] for entry in app.state.request_log] == [503, 200, 429, 200, 200]


# --- fault harness kinds: expired key, schema drift, wrong type ---

FBS_LIST = "/v4/posting/fbs/list"
FBS_BODY = {"filter": {"since": SINCE, "to": TO}, "limit": 40}


async def test_an_expired_key_gets_ozons_deactivated_key_error_from_then_on():
    from connectors.ozon.emulator import EXPIRED_KEY_MESSAGE

    app = make(faults=(Fault("/", "expired_token", times=None, after=1),))
    async with ozon(app) as c:
        answers = [await c.post(path, json=FBS_BODY if "posting" in path else {"limit": 20})
                   for path in (FBS_LIST, FBS_LIST, "/v2/review/list", FBS_LIST)]
    assert [a.status_code for a in answers] == [200, 401, 401, 401]
    assert answers[2].json() == {"code": 16, "message": EXPIRED_KEY_MESSAGE, "details": []}
    assert EXPIRED_KEY_MESSAGE == "Api-key is deactivated, use another one or generate a new one"  # ozon.md §4.3


async def test_schema_drift_keeps_what_the_mapping_reads_and_wrong_type_breaks_one_posting_for_good():
    from connectors.base import MappingContext
    from connectors.errors import MalformedRecord
    from connectors.ozon.mapping import map_fbs_posting

    ctx = MappingContext(marketplace="ozon", account="main", buyer_key=lambda raw: f"key-{raw}")
    plain = make(seed=4)
    drifted = make(seed=4, faults=(Fault("/", "schema_drift", times=None), Fault(FBS_LIST, "wrong_type")))
    async with ozon(plain) as c:
        before = (await c.post(FBS_LIST, json=FBS_BODY)).json()["postings"]
    async with ozon(drifted) as c:
        await c.post("/v2/review/list", json={"limit": 20})  # another path: the wrong_type fault waits
        after = (await c.post(FBS_LIST, json=FBS_BODY)).json()
        again = (await c.post(FBS_LIST, json=FBS_BODY)).json()["postings"]
    assert any(k.startswith("xDrift") for k in after)  # the envelope too
    postings = after["postings"]
    [(path, key)] = drifted.state.breakage.wrong_type
    assert path == FBS_LIST and drifted.state.breakage.wrong_type[(path, key)] == "products"
    for page in (postings, again):
        assert [p["posting_number"] for p in page if isinstance(p["products"], dict)] == [key]
    assert all("financial_data" not in p and "analytics_data" not in p for p in postings)
    assert any("customer" not in p for p in postings) and any("customer" in p for p in postings)  # null only
    with pytest.raises(MalformedRecord, match="products") as broken:
        map_fbs_posting(next(p for p in postings if p["posting_number"] == key), ctx)
    assert broken.value.record_key == key
    # Every other posting maps exactly as it does without drift, buyer key included.
    good = [(a, b) for a, b in zip(postings, before, strict=True) if a["posting_number"] != key]
    assert len(good) == len(before) - 1
    assert all(map_fbs_posting(a, ctx) == map_fbs_posting(b, ctx) for a, b in good)


# --- the kit's traps: short pages and late changes ---

async def test_a_short_page_keeps_has_next_and_the_cursor_follows_what_was_served():
    app = make(orders=300, faults=(Fault("/v4/posting/fbs/list", "short_page", times=None),))
    async with ozon(app) as c:
        first = (await c.post(FBS_LIST, json=FBS_BODY)).json()
        second = (await c.post(FBS_LIST, json={**FBS_BODY, "cursor": first["cursor"]})).json()
    [(path, served, full)] = app.state.faults.short_pages[:1]
    assert path == FBS_LIST and full == 40 and served == len(first["postings"]) < 40 and first["has_next"]
    table = app.state.data.postings
    numbers = [table.posting_number(i) for i in table.fbs]
    got = [p["posting_number"] for p in first["postings"] + second["postings"]]
    assert got == numbers[:len(got)]  # nothing skipped after the cut


@pytest.mark.parametrize(("path", "fbo"), [("/v4/posting/fbs/list", False), ("/v3/posting/fbo/list", True)])
async def test_a_late_change_moves_old_postings_from_delivering_an_hour_after_now(path, fbo):
    clock = Clock(NOW)
    age = timedelta(days=45)
    app = make(orders=400, history_days=60, clock=clock,
               faults=(Fault(path, "late_change", times=3, delay=3600, age=age.total_seconds()),))
    table, changes = app.state.data.postings, app.state.late_changes
    assert len(changes) == 3 and {after for _, after in changes.values()} == {"delivered", "cancelled"}
    change_at = int((NOW + timedelta(hours=1)).timestamp() * US)
    for number, (before, after) in changes.items():
        i = table.index_of(number)
        assert (table.scheme[i] == FBO) == fbo
        assert abs(change_at - age.total_seconds() * US - table.t0[i]) <= 2 * 86_400 * US
        assert table.state(i, change_at - 1)[0] == before == "delivering"
        assert table.state(i, change_at)[:1] == (after,) and table.state(i, change_at)[2] == change_at
    if not fbo:  # the FBS status-change filter finds them once they changed
        clock.at = NOW + timedelta(hours=2)
        flt = {"since": "2026-01-01T00:00:00Z", "to": "2026-11-20T14:00:00Z",
               "last_changed_status_date": {"from": "2026-11-20T12:30:00Z", "to": "2026-11-20T14:00:00Z"}}
        async with ozon(app) as c:
            got = await all_postings(c, FBS_LIST, flt)
        assert {p["posting_number"]: p["status"] for p in got if p["posting_number"] in changes} == \
            {n: after for n, (_, after) in changes.items()}


def test_a_late_change_older_than_the_history_is_refused_not_faked():
    with pytest.raises(ValueError, match="longer history"):
        make(orders=100, history_days=20,
             faults=(Fault("/v4/posting/fbs/list", "late_change", times=3, age=45 * 86_400.0),))
