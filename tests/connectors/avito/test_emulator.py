"""The Avito emulator serves what shared/marketplaces/avito.md documents, traps included.

Each test is one rule of the document (section cited) that would fail without it; the emulator is
checked against the doc and its official examples (tests/fixtures/avito/), never against a client.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from starlette.applications import Starlette

from connectors.avito.emulator import ANSWERS, INFO, ORDERS, REVIEWS, SELF, EmulatorConfig, Fault, create_app
from connectors.avito.emulator_data import DELIVERY_DATE_MAX, REJECT_CONTACTS, REJECT_LINK, STATUSES, TRANSITIONS, iso
from connectors.testing.harness import WRITE_TEXT

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CREDENTIALS = {"grant_type": "client_credentials", "client_id": "avito-client-id",
               "client_secret": "avito-client-secret"}
SCHEMAS = {p.name[:-5]: json.loads(p.read_text(encoding="utf-8"))
           for p in (files("connectors.avito") / "schemas").iterdir() if p.name.endswith(".json")}
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "avito"
LATIN_MAX = "deliveryDateMax"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """A monotonic clock a test moves by hand."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


def make(**kwargs: Any) -> Starlette:
    kwargs.setdefault("generated_at", NOW)
    kwargs.setdefault("serving_at", kwargs["generated_at"])
    kwargs.setdefault("rate_limits", False)
    return create_app(EmulatorConfig(**kwargs))


async def new_token(client: httpx.AsyncClient, path: str = "/token") -> str:
    response = await client.post(path, data=CREDENTIALS)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@asynccontextmanager
async def avito(app: Starlette, authorized: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://avito") as client:
        if authorized:
            client.headers["Authorization"] = f"Bearer {await new_token(client)}"
        yield client


async def walk_orders(client: httpx.AsyncClient, **params: Any) -> tuple[list[dict], list[dict]]:
    """Pages 1.. until hasMore is false (§3)."""
    pages, page = [], 1
    while True:
        pages.append((await client.get(ORDERS, params={"limit": 20, **params, "page": page})).json())
        if not pages[-1]["hasMore"]:
            return pages, [o for p in pages for o in p["orders"]]
        page += 1


async def walk_reviews(client: httpx.AsyncClient, limit: int = 50) -> list[dict]:
    """Offset paging (§4), advancing by what each page served, up to `total`."""
    out: list[dict] = []
    while True:
        body = (await client.get(REVIEWS, params={"offset": len(out), "limit": limit})).json()
        out += body["reviews"]
        if len(out) >= body["total"] or not body["reviews"]:
            return out


def valid(schema: str, document: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in Draft202012Validator(SCHEMAS[schema]).iter_errors(document)]


def is_error(response: httpx.Response, status: int, schema: str) -> bool:
    return response.status_code == status and valid(schema, response.json()) == []


def answerable(app: Starlette) -> int:
    return next(r.id for r in sorted(app.state.reviews.values(), key=lambda r: r.id)
                if r.active and r.can_answer and r.answer is None)


# --- schemas and fixtures -----------------------------------------------------------------------------

@pytest.mark.parametrize(("fixture", "schema"), [
    ("token.response.json", "token"), ("orders.response.json", "orders_page"),
    ("orders_error.response.json", "orders_error"), ("reviews.response.json", "reviews_page"),
    ("reviews_error_400.response.json", "reviews_error"), ("answer.response.json", "answer"),
    ("ratings_info.response.json", "ratings_info")])
def test_every_doc_example_fits_its_schema(fixture: str, schema: str) -> None:
    Draft202012Validator.check_schema(SCHEMAS[schema])
    assert valid(schema, json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))) == []


def test_the_rdbs_fragment_fits_the_delivery_schema_and_every_schema_is_valid() -> None:
    fragment = json.loads((FIXTURES / "orders_rdbs_buyerInfo.fragment.json").read_text(encoding="utf-8"))
    delivery = {"$defs": SCHEMAS["orders_page"]["$defs"], "$ref": "#/$defs/delivery"}
    assert list(Draft202012Validator(delivery).iter_errors(fragment["delivery"])) == []
    for schema in SCHEMAS.values():
        Draft202012Validator.check_schema(schema)


async def test_every_answer_fits_the_schemas() -> None:
    app = make(faults=(Fault(ORDERS, "rate_limit", after=3), Fault(REVIEWS, "http_500", after=2)))
    order = next(iter(app.state.orders.values()))
    async with avito(app) as c:
        token = (await c.post("/token/", data=CREDENTIALS)).json()
        orders = [(await c.get(ORDERS, params={"statuses": s, "limit": 20})).json() for s in STATUSES[:3]]
        throttled = await c.get(ORDERS)
        bad_orders = await c.get(ORDERS, params={"page": 0})
        reviews = [(await c.get(REVIEWS, params={"offset": k * 50, "limit": 50})).json() for k in range(2)]
        failed = await c.get(REVIEWS, params={"offset": 0, "limit": 50})
        bad_reviews = await c.get(REVIEWS, params={"offset": 0})
        info = (await c.get(INFO)).json()
        me = (await c.get(SELF)).json()
        chat = (await c.get(f"/messenger/v2/accounts/{app.state.user_id}/chats/{order.items[0].chat_id}")).json()
        posted = (await c.post(ANSWERS, json={"reviewId": answerable(app), "message": WRITE_TEXT})).json()
        deleted = (await c.delete(f"{ANSWERS}/{posted['id']}")).json()
        gone = await c.delete(f"{ANSWERS}/{posted['id']}")
        refused_token = await c.post("/token", data={**CREDENTIALS, "client_secret": "wrong"})
    assert valid("token", token) == [] and valid("ratings_info", info) == [] and valid("account_self", me) == []
    assert all(valid("orders_page", p) == [] for p in orders) and sum(len(p["orders"]) for p in orders) > 20
    assert all(valid("reviews_page", p) == [] for p in reviews)
    assert valid("chat", chat) == [] and valid("answer", posted) == [] and valid("answer_deleted", deleted) == []
    assert is_error(throttled, 429, "orders_error") and is_error(bad_orders, 400, "orders_error")
    assert is_error(failed, 500, "reviews_error") and is_error(bad_reviews, 400, "reviews_error")
    assert is_error(gone, 404, "reviews_error") and is_error(refused_token, 400, "token_error")


# --- auth (§2) ------------------------------------------------------------------------------------------

async def test_a_token_comes_from_a_form_on_both_paths() -> None:
    app = make()
    async with avito(app, authorized=False) as c:
        answers = [await c.post(path, data=CREDENTIALS) for path in ("/token", "/token/")]
    assert [a.status_code for a in answers] == [200, 200]
    assert all(a.json()["expires_in"] == 86400 and a.json()["token_type"] == "Bearer" for a in answers)
    assert answers[0].json()["access_token"] != answers[1].json()["access_token"]
    assert app.state.tokens_issued == 2


@pytest.mark.parametrize(("name", "kwargs", "error"), [
    ("wrong secret", {"data": {**CREDENTIALS, "client_secret": "nope"}}, "invalid_client"),
    ("wrong client", {"data": {**CREDENTIALS, "client_id": "someone-else"}}, "invalid_client"),
    ("authorization_code", {"data": {**CREDENTIALS, "grant_type": "authorization_code"}}, "unsupported_grant_type"),
    ("no secret", {"data": {"grant_type": "client_credentials", "client_id": "avito-client-id"}}, "invalid_request"),
    ("a JSON body", {"json": CREDENTIALS}, "invalid_request"),
    ("a parameter twice", {"content": "grant_type=client_credentials&client_id=avito-client-id&client_secret="
                                      "avito-client-secret&client_id=avito-client-id",
                           "headers": {"content-type": "application/x-www-form-urlencoded"}}, "invalid_request"),
])
async def test_a_token_request_the_doc_does_not_describe_is_refused(name: str, kwargs: dict, error: str) -> None:
    app = make(orders=5, reviews=0)
    async with avito(app, authorized=False) as c:
        response = await c.post("/token", **kwargs)
    assert is_error(response, 400, "token_error") and response.json()["error"] == error, name
    assert app.state.tokens_issued == 0


async def test_no_token_is_401_and_a_token_never_issued_is_403() -> None:
    app = make(orders=5, reviews=5)
    async with avito(app, authorized=False) as c:
        missing = [await c.get(ORDERS), await c.get(REVIEWS, params={"offset": 0, "limit": 5})]
        c.headers["Authorization"] = "Bearer made-up"
        invented = [await c.get(ORDERS), await c.get(REVIEWS, params={"offset": 0, "limit": 5})]
    assert is_error(missing[0], 401, "orders_error") and is_error(missing[1], 401, "reviews_error")
    assert is_error(invented[0], 403, "orders_error") and is_error(invented[1], 403, "reviews_error")


async def test_a_token_expires_after_24_hours_with_403_everywhere_and_a_new_one_works() -> None:
    clock = Clock()
    app = make(orders=5, reviews=5, monotonic=clock)
    async with avito(app) as c:
        clock.now += 86399
        alive = await c.get(ORDERS)
        clock.now += 1
        dead = [await c.get(ORDERS), await c.get(REVIEWS, params={"offset": 0, "limit": 5}), await c.get(SELF)]
        c.headers["Authorization"] = f"Bearer {await new_token(c)}"
        again = await c.get(ORDERS)
    assert alive.status_code == 200 and again.status_code == 200
    assert [d.status_code for d in dead] == [403, 403, 403] and is_error(dead[0], 403, "orders_error")
    assert app.state.requests_with_expired_token == 3 and app.state.tokens_issued == 2


@pytest.mark.parametrize("revoke", [False, True])
async def test_a_new_token_revokes_the_old_one_only_when_configured(revoke: bool) -> None:
    """§2: whether a new token revokes the previous one is UNCONFIRMED; both are modelled."""
    app = make(orders=5, reviews=0, revoke_previous=revoke)
    async with avito(app, authorized=False) as c:
        first, second = await new_token(c), await new_token(c)
        old = await c.get(ORDERS, headers={"Authorization": f"Bearer {first}"})
        new = await c.get(ORDERS, headers={"Authorization": f"Bearer {second}"})
    assert new.status_code == 200 and old.status_code == (403 if revoke else 200)
    assert app.state.requests_with_expired_token == int(revoke)


async def test_an_expired_token_fault_expires_the_token_for_good_and_a_new_token_works() -> None:
    app = make(orders=5, reviews=0, faults=(Fault(ORDERS, "expired_token", after=1),))
    async with avito(app) as c:
        statuses = [(await c.get(ORDERS)).status_code for _ in range(3)]
        c.headers["Authorization"] = f"Bearer {await new_token(c)}"
        fresh = await c.get(ORDERS)
    assert statuses == [200, 403, 403] and fresh.status_code == 200
    assert app.state.requests_with_expired_token == 2


async def test_the_account_says_who_it_is() -> None:
    app = make(orders=5, reviews=0)
    async with avito(app) as c:
        me = (await c.get(SELF)).json()
    assert me["id"] == app.state.user_id and set(me) == {"id", "name", "email", "phone", "phones", "profile_url"}
    assert me["phone"] in me["phones"]


# --- the orders query (§3) ----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "params"), [
    ("an unknown status", {"statuses": "confirming"}),
    ("two statuses comma-joined", {"statuses": "delivered,closed"}),
    ("an unknown status in statuses[]", {"statuses[]": "shipped"}),
    ("page 0", {"page": 0}),
    ("a negative page", {"page": -1}),
    ("a page that is no number", {"page": "first"}),
    ("limit 21", {"limit": 21}),
    ("a negative limit", {"limit": -1}),
    ("dateFrom as an ISO date", {"dateFrom": "2026-11-01T00:00:00Z"}),
    ("dateFrom with a fraction", {"dateFrom": "1790000000.5"}),
    ("dateFrom twice", [("dateFrom", 1), ("dateFrom", 2)]),
])
async def test_what_the_doc_does_not_allow_is_refused_with_400(name: str, params: Any) -> None:
    async with avito(make(orders=20, reviews=0)) as c:
        response = await c.get(ORDERS, params=params)
    assert is_error(response, 400, "orders_error") and response.json()["code"] == 400, name


async def test_repeated_keys_select_several_statuses() -> None:
    app = make()
    wanted = {"delivered", "on_return"}
    expected = {o.id for o in app.state.orders.values() if o.at(NOW).status in wanted}
    async with avito(app) as c:
        _, repeated = await walk_orders(c, statuses=sorted(wanted))
        _, brackets = await walk_orders(c, **{"statuses[]": sorted(wanted)})
        _, one = await walk_orders(c, statuses="delivered")
    assert {o["id"] for o in repeated} == expected == {o["id"] for o in brackets}
    assert {o["status"] for o in repeated} == wanted and {o["status"] for o in one} == {"delivered"}
    assert "statuses=delivered&statuses=on_return" in app.state.request_log[1][2]


async def test_ids_are_repeated_keys_too() -> None:
    app = make()
    chosen = sorted(app.state.orders)[:3]
    async with avito(app) as c:
        _, served = await walk_orders(c, ids=chosen + ["1"])
    assert sorted(o["id"] for o in served) == chosen


async def test_pages_from_1_cover_every_order_once_newest_first_until_has_more_is_false() -> None:
    app = make()
    async with avito(app) as c:
        pages, served = await walk_orders(c)
        past = (await c.get(ORDERS, params={"limit": 20, "page": len(pages) + 1})).json()
    ids = [o["id"] for o in served]
    assert len(ids) == len(set(ids)) and set(ids) == set(app.state.orders) and len(pages) == 15
    assert [p["hasMore"] for p in pages] == [True] * 14 + [False] and all(len(p["orders"]) == 20 for p in pages)
    created = [app.state.orders[i].created_at for i in ids]
    assert created == sorted(created, reverse=True)
    assert past == {"hasMore": False, "orders": []}


async def test_limit_0_serves_no_orders_and_no_limit_serves_ten() -> None:
    async with avito(make()) as c:
        zero = (await c.get(ORDERS, params={"limit": 0})).json()
        default = (await c.get(ORDERS)).json()
    assert zero == {"hasMore": True, "orders": []}
    assert len(default["orders"]) == 10 and default["hasMore"]


async def test_date_from_filters_by_creation_in_unix_seconds_and_date_to_does_not_exist() -> None:
    app = make()
    order = sorted(app.state.orders.values(), key=lambda o: o.created_at)[200]
    since = int(order.created_at.timestamp())
    expected = {o.id for o in app.state.orders.values() if o.created_at >= order.created_at}
    async with avito(app) as c:
        _, served = await walk_orders(c, dateFrom=since)
        _, after = await walk_orders(c, dateFrom=since + 1)
        _, bounded = await walk_orders(c, dateFrom=since, dateTo=since + 1)
        _, millis = await walk_orders(c, dateFrom=since * 1000)
    assert {o["id"] for o in served} == expected and order.id not in {o["id"] for o in after}
    assert len(after) == len(served) - 1 and {o["id"] for o in bounded} == expected and millis == []


async def test_the_max_delivery_date_key_is_spelt_with_a_cyrillic_kha() -> None:
    async with avito(make()) as c:
        response = await c.get(ORDERS, params={"limit": 20})
    assert DELIVERY_DATE_MAX == "deliveryDateMa\u0445" != LATIN_MAX
    assert "deliveryDateMa\u0445".encode() in response.content and LATIN_MAX.encode() not in response.content
    assert all(DELIVERY_DATE_MAX in o["schedules"] for o in response.json()["orders"])


async def test_buyer_info_is_on_dbs_and_rdbs_orders_after_payment_only() -> None:
    app = make()
    async with avito(app) as c:
        _, served = await walk_orders(c)
    orders = app.state.orders
    for s in served:
        order, delivery = orders[s["id"]], s["delivery"]
        paid = order.paid_at is not None and order.paid_at <= NOW
        assert ("buyerInfo" in delivery) == (order.service_type in ("dbs", "rdbs") and paid), s["id"]
        assert ("courierInfo" in delivery) == (order.service_type == "rdbs")
        assert ("dispatchNumber" in delivery) == (order.service_type != "rdbs")  # "absent for RDBS"
        if "buyerInfo" in delivery:
            assert delivery["buyerInfo"] == {"fullName": order.buyer_name, "phoneNumber": order.buyer_phone}
    assert {o.service_type for o in orders.values()} == {"pvz", "dbs", "rdbs"}
    assert any(o.service_type != "pvz" and o.paid_at is None for o in orders.values())  # never paid: never shown
    # Before its payment an order shows no buyer.
    order = next(o for o in orders.values() if o.service_type == "rdbs" and o.paid_at is not None)
    early = make(serving_at=order.paid_at - timedelta(seconds=1))
    async with avito(early) as c:
        [before] = (await c.get(ORDERS, params={"ids": order.id})).json()["orders"]
    assert "buyerInfo" not in before["delivery"]


async def test_money_is_plain_numbers_and_total_is_the_payout_not_what_the_buyer_paid() -> None:
    app = make()
    async with avito(app) as c:
        _, served = await walk_orders(c)
    amounts = []
    for s in served:
        order, prices = app.state.orders[s["id"]], s["prices"]
        numbers = [*prices.values(), *(v for i in s["items"] for v in i["prices"].values())]
        assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)
        price = sum(Decimal(repr(i["prices"]["price"])) * i["count"] for i in s["items"])
        discount = sum(Decimal(repr(i["prices"]["discountSum"])) for i in s["items"])
        assert Decimal(repr(prices["price"])) == price and Decimal(repr(prices["discount"])) == discount
        assert order.goods_total == price - discount == sum(i.price * i.count - i.discount_sum for i in order.items)
        assert Decimal(repr(prices["total"])) == price - discount - Decimal(repr(prices["commission"]))
        amounts.append(order.goods_total)
    assert any(a != a.to_integral_value() for a in amounts)  # kopecks
    assert any(i["discounts"] for s in served for i in s["items"])  # promo codes
    assert any(s["prices"]["commission"] > 0 for s in served)  # so prices.total is not the goods total


# --- the lifecycle (§3) -------------------------------------------------------------------------------

def test_every_order_follows_the_lifecycle_and_some_change_weeks_later() -> None:
    orders = list(make().state.orders.values())
    for o in orders:
        assert o.created_at.tzinfo is not None and o.created_at.microsecond == 0
        assert o.stages[0] == ("on_confirmation", o.created_at)
        assert [s.since for s in o.stages] == sorted(s.since for s in o.stages)
        assert all(b.status in TRANSITIONS[a.status] for a, b in zip(o.stages, o.stages[1:], strict=False)), o.stages
        assert o.buyer.startswith("buyer-") and isinstance(o.buyer_user_id, int)
    shown = Counter(o.at(NOW).status for o in orders)
    assert set(shown) == set(STATUSES), shown
    canceled_from = {o.stages[-2].status for o in orders if o.stages[-1].status == "canceled"}
    assert canceled_from == {"on_confirmation", "ready_to_ship", "in_transit"}
    late = [o for o in orders if (o.since("on_return") or o.created_at) - o.created_at >= timedelta(days=20)]
    assert len(late) >= 5
    buyers = Counter(o.buyer for o in orders)
    assert max(buyers.values()) > 1 and len({o.buyer_user_id for o in orders}) == len(buyers)  # stable per buyer


async def test_a_later_serving_at_shows_newer_statuses_and_updated_at_is_the_stage_start() -> None:
    later = NOW + timedelta(days=20)
    apps = {NOW: make(), later: make(serving_at=later)}
    moved = [o for o in apps[NOW].state.orders.values() if o.at(NOW) != o.at(later)]
    assert moved and set(apps[NOW].state.orders) == set(apps[later].state.orders)
    for moment, app in apps.items():
        async with avito(app) as c:
            _, served = await walk_orders(c, ids=[o.id for o in moved[:20]])
        for s in served:
            stage = app.state.orders[s["id"]].at(moment)
            assert (s["status"], s["updatedAt"]) == (stage.status, iso(stage.since))


async def test_a_late_change_returns_an_old_delivered_order_after_generated_at() -> None:
    fault = Fault(ORDERS, "late_change", times=3, age=45 * 86400.0, delay=3600.0)
    early, later = make(faults=(fault,)), make(faults=(fault,), serving_at=NOW + timedelta(hours=2))
    assert len(early.state.late_changes) == 3 and set(early.state.late_changes) == set(later.state.late_changes)
    ids = sorted(early.state.late_changes)
    for app, status in ((early, "delivered"), (later, "on_return")):
        async with avito(app) as c:
            _, served = await walk_orders(c, ids=ids)
        assert {s["status"] for s in served} == {status} and len(served) == 3
    for oid, change in early.state.late_changes.items():
        order = early.state.orders[oid]
        assert change == ("delivered", "on_return") and order.stages[-1].since - order.created_at >= timedelta(days=44)


# --- limits and errors (§5) -----------------------------------------------------------------------------

async def test_get_orders_allows_500_a_minute_then_429_with_a_body_and_no_headers() -> None:
    clock = Clock()
    app = make(orders=5, reviews=0, rate_limits=True, monotonic=clock)
    async with avito(app) as c:
        answers = [await c.get(ORDERS, params={"ids": "1"}) for _ in range(501)]
        clock.now += 0.12  # a 500/min bucket refills one request in 0.12 s
        after = await c.get(ORDERS, params={"ids": "1"})
    assert Counter(a.status_code for a in answers[:500]) == {200: 500} and after.status_code == 200
    refused = answers[-1]
    assert is_error(refused, 429, "orders_error") and refused.json() == {"code": 429, "message": "Too Many Requests"}
    assert not [h for h in refused.headers if h.startswith("x-ratelimit") or h == "retry-after"]
    assert not [h for h in answers[0].headers if h.startswith("x-ratelimit")]


async def test_a_rate_limit_fault_that_names_a_wait_says_it() -> None:
    app = make(orders=5, reviews=0, faults=(Fault(ORDERS, "rate_limit", retry_after=3),))
    async with avito(app) as c:
        refused = await c.get(ORDERS)
    assert is_error(refused, 429, "orders_error") and refused.headers["retry-after"] == "3"


async def test_ratings_answers_carry_rate_limit_headers_and_so_does_their_429() -> None:
    app = make(orders=0, reviews=5, rate_limits=True, monotonic=Clock())
    async with avito(app) as c:
        answers = [await c.get(REVIEWS, params={"offset": 0, "limit": 5}) for _ in range(61)]
    assert [a.headers["x-ratelimit-remaining"] for a in answers[:3]] == ["59", "58", "57"]
    assert all(a.headers["x-ratelimit-limit"] == "60" for a in answers)
    refused = answers[-1]
    assert is_error(refused, 429, "reviews_error") and refused.headers["x-ratelimit-remaining"] == "0"
    assert "retry-after" not in refused.headers and app.state.stats.throttled["ratings"] == 1


async def test_server_errors_have_each_api_s_body() -> None:
    app = make(orders=5, reviews=5, faults=(Fault(ORDERS, "http_500"), Fault(REVIEWS, "http_503")))
    async with avito(app) as c:
        orders, reviews = await c.get(ORDERS), await c.get(REVIEWS, params={"offset": 0, "limit": 5})
    assert is_error(orders, 500, "orders_error") and orders.json()["code"] == 500
    assert is_error(reviews, 503, "reviews_error") and reviews.json()["error"]["code"] == 503


# --- reviews (§4) -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "params"), [
    ("no offset", {"limit": 10}), ("no limit", {"offset": 0}), ("offset -1", {"offset": -1, "limit": 10}),
    ("limit 0", {"offset": 0, "limit": 0}), ("limit 51", {"offset": 0, "limit": 51}),
    ("limit is no number", {"offset": 0, "limit": "all"}),
])
async def test_offset_and_limit_are_required_within_their_bounds(name: str, params: dict) -> None:
    async with avito(make(orders=0, reviews=10)) as c:
        response = await c.get(REVIEWS, params=params)
    assert is_error(response, 400, "reviews_error") and response.json()["error"]["code"] == "validation", name


async def test_an_offset_that_is_no_integer_gets_the_doc_s_verbatim_error() -> None:
    async with avito(make(orders=0, reviews=10)) as c:
        response = await c.get(REVIEWS, params={"offset": "ten", "limit": 10})
    assert response.status_code == 400
    assert response.json() == json.loads((FIXTURES / "reviews_error_400.response.json").read_text(encoding="utf-8"))


async def test_reviews_are_active_ones_newest_first_with_total() -> None:
    app = make()
    async with avito(app) as c:
        served = await walk_reviews(c, limit=7)
        first = (await c.get(REVIEWS, params={"offset": 0, "limit": 7})).json()
    active = sorted((r for r in app.state.reviews.values() if r.active), key=lambda r: r.created_at, reverse=True)
    assert [s["id"] for s in served] == [r.id for r in active] and first["total"] == len(active)
    assert len(active) < len(app.state.reviews)  # inactive reviews exist and are not listed


async def test_a_review_has_no_order_and_no_buyer_id_and_unix_seconds() -> None:
    app = make()
    async with avito(app) as c:
        served = await walk_reviews(c)
    documented = {"id", "score", "stage", "text", "usedInScore", "canAnswer", "createdAt", "item", "sender",
                  "images", "extraParams", "answer"}
    for s in served:
        assert set(s) <= documented and set(s["sender"]) == {"name"}
        assert s["createdAt"] == int(app.state.reviews[s["id"]].created_at.timestamp())
    assert any(s["item"] is None for s in served) and any(s["item"] for s in served)
    assert {s["answer"]["status"] for s in served if s["answer"]} >= {"published", "rejected"}


async def test_ratings_info_counts_the_active_reviews() -> None:
    app = make()
    async with avito(app) as c:
        info = (await c.get(INFO)).json()
    active = [r for r in app.state.reviews.values() if r.active]
    scored = [r.score for r in active if r.used_in_score]
    assert info == {"isEnabled": True, "rating": {"score": round(sum(scored) / len(scored), 1),
                                                  "reviewsCount": len(active), "reviewsWithScoreCount": len(scored)}}


# --- answers (§4) -------------------------------------------------------------------------------------

async def test_an_answer_is_moderated_then_published_after_moderation_seconds() -> None:
    app = make(moderation_seconds=3600)
    review_id = answerable(app)

    async def shown(c: httpx.AsyncClient) -> dict:
        return next(s for s in await walk_reviews(c) if s["id"] == review_id)["answer"]

    async with avito(app) as c:
        posted = await c.post(ANSWERS, json={"reviewId": review_id, "message": WRITE_TEXT})
        during = await shown(c)
        app.state.emulator.advance(3599)
        still = await shown(c)
        app.state.emulator.advance(1)
        after = await shown(c)
    assert posted.status_code == 200 and posted.json()["createdAt"] == int(NOW.timestamp())
    assert (during["status"], still["status"], after["status"]) == ("moderation", "moderation", "published")
    assert during["id"] == posted.json()["id"] and "reject_reasons" not in after
    assert [a.id for a in app.state.answers_by_review[review_id]] == [posted.json()["id"]]
    assert app.state.writes[-1]["body"] == {"reviewId": review_id, "message": WRITE_TEXT}
    assert app.state.writes[-1]["applied"] and app.state.reviews[review_id].answer.status == "published"


async def test_an_answer_with_a_phone_or_a_link_is_rejected_with_reasons_and_may_be_replaced() -> None:
    app = make(moderation_seconds=60)
    review_id = answerable(app)
    async with avito(app) as c:
        await c.post(ANSWERS, json={"reviewId": review_id, "message": "Пишите: +7 (999) 123-45-67, avito-shop.ru"})
        app.state.emulator.advance(60)
        rejected = app.state.reviews[review_id].answer
        body = next(s for s in await walk_reviews(c) if s["id"] == review_id)["answer"]
        replaced = await c.post(ANSWERS, json={"reviewId": review_id, "message": "Спасибо за отзыв!"})
    assert rejected.status == "rejected" and set(rejected.reject_reasons) == {REJECT_LINK, REJECT_CONTACTS}
    assert body["status"] == "rejected" and {r["id"] for r in body["reject_reasons"]} == {101, 102}
    assert replaced.status_code == 200 and len(app.state.answers_by_review[review_id]) == 2


async def test_a_second_answer_is_refused_while_the_first_stands() -> None:
    app = make()
    review_id = answerable(app)
    async with avito(app) as c:
        first = await c.post(ANSWERS, json={"reviewId": review_id, "message": "Спасибо!"})
        second = await c.post(ANSWERS, json={"reviewId": review_id, "message": "Спасибо ещё раз!"})
    assert first.status_code == 200 and is_error(second, 400, "reviews_error")
    assert len(app.state.answers_by_review[review_id]) == 1
    assert [w["applied"] for w in app.state.writes] == [True, False]


async def test_answers_the_review_does_not_take_are_refused() -> None:
    app = make()
    closed = next(r.id for r in app.state.reviews.values() if r.active and not r.can_answer)
    inactive = next(r.id for r in app.state.reviews.values() if not r.active)
    async with avito(app) as c:
        cannot = await c.post(ANSWERS, json={"reviewId": closed, "message": "Спасибо!"})
        unknown = await c.post(ANSWERS, json={"reviewId": 1, "message": "Спасибо!"})
        hidden = await c.post(ANSWERS, json={"reviewId": inactive, "message": "Спасибо!"})
        as_string = await c.post(ANSWERS, json={"reviewId": str(closed), "message": "Спасибо!"})
        empty = await c.post(ANSWERS, json={"reviewId": closed, "message": " "})
    assert is_error(cannot, 400, "reviews_error") and is_error(as_string, 400, "reviews_error")
    assert is_error(unknown, 404, "reviews_error") and is_error(hidden, 404, "reviews_error")
    assert is_error(empty, 400, "reviews_error") and app.state.answers_by_review == {}


async def test_a_deleted_answer_is_gone_and_the_review_may_be_answered_again() -> None:
    app = make()
    review_id = answerable(app)
    async with avito(app) as c:
        posted = (await c.post(ANSWERS, json={"reviewId": review_id, "message": "Спасибо!"})).json()
        deleted = await c.delete(f"{ANSWERS}/{posted['id']}")
        again = await c.delete(f"{ANSWERS}/{posted['id']}")
        reposted = await c.post(ANSWERS, json={"reviewId": review_id, "message": "Спасибо за отзыв!"})
    assert deleted.json() == {"success": True} and is_error(again, 404, "reviews_error")
    assert reposted.status_code == 200 and app.state.reviews[review_id].answer.id == reposted.json()["id"]
    assert [w["method"] for w in app.state.writes] == ["POST", "DELETE", "DELETE", "POST"]


# --- Messenger (§3) -----------------------------------------------------------------------------------

async def test_a_chat_names_the_seller_and_the_buyer_s_hashed_id_stable_across_orders() -> None:
    app = make()
    orders = [o for o in app.state.orders.values() if o.buyer == "buyer-1"]
    async with avito(app) as c:
        chats = [(await c.get(f"/messenger/v2/accounts/{app.state.user_id}/chats/{i.chat_id}")).json()
                 for o in orders for i in o.items]
    assert len(orders) > 1 and all(valid("chat", chat) == [] for chat in chats)
    assert {frozenset(u["id"] for u in chat["users"]) for chat in chats} == {
        frozenset({app.state.user_id, orders[0].buyer_user_id})}


@pytest.mark.parametrize(("name", "messenger", "user", "chat", "status"), [
    ("tariff without Messenger", False, "me", "known", 403), ("another account", True, "1", "known", 403),
    ("user id is no number", True, "abc", "known", 400), ("unknown chat", True, "me", "u2i-nope", 404),
])
async def test_chats_outside_reach_are_refused(name: str, messenger: bool, user: str, chat: str, status: int) -> None:
    app = make(messenger=messenger)
    user_id = {"me": str(app.state.user_id), "1": "1"}.get(user, "abc")
    chat_id = next(iter(app.state.chats)) if chat == "known" else chat
    async with avito(app) as c:
        response = await c.get(f"/messenger/v2/accounts/{user_id}/chats/{chat_id}")
    assert is_error(response, status, "reviews_error"), name
    if not messenger:
        assert "Максимальный" in response.json()["error"]["message"]


# --- faults: malformed, short pages, drift, wrong types (connectors.emulation) -------------------------

async def test_a_malformed_fault_breaks_one_order_and_one_review_and_names_them() -> None:
    app = make(faults=(Fault(ORDERS, "malformed"), Fault(REVIEWS, "malformed")))
    async with avito(app) as c:
        orders = (await c.get(ORDERS, params={"limit": 20})).json()["orders"]
        reviews = (await c.get(REVIEWS, params={"offset": 0, "limit": 20})).json()["reviews"]
    broken_order = [o["id"] for o in orders if o["createdAt"] == "not-a-date"]
    broken_review = [str(r["id"]) for r in reviews if r["createdAt"] == "not-a-timestamp"]
    assert app.state.corrupted == [(ORDERS, broken_order[0]), (REVIEWS, broken_review[0])]
    assert broken_order[0] in app.state.orders and int(broken_review[0]) in app.state.reviews


async def test_a_short_order_page_holds_its_orders_back_for_the_next_page() -> None:
    clean, cut = make(), make(faults=(Fault(ORDERS, "short_page", times=None, probability=0.5),))
    async with avito(clean) as c:
        _, clean_orders = await walk_orders(c)
    async with avito(cut) as c:
        pages, cut_orders = await walk_orders(c)
    assert cut.state.short_pages and any(len(p["orders"]) < 20 and p["hasMore"] for p in pages)
    assert [o["id"] for o in cut_orders] == [o["id"] for o in clean_orders]


async def test_a_short_review_page_loses_nothing_when_the_offset_follows_what_was_served() -> None:
    clean, cut = make(), make(faults=(Fault(REVIEWS, "short_page", times=None, probability=0.5),))
    async with avito(clean) as c:
        clean_reviews = await walk_reviews(c, limit=10)
    async with avito(cut) as c:
        cut_reviews = await walk_reviews(c, limit=10)
    assert cut.state.short_pages and [r["id"] for r in cut_reviews] == [r["id"] for r in clean_reviews]


async def test_schema_drift_keeps_answers_within_the_schemas() -> None:
    app = make(faults=(Fault("/", "schema_drift", times=None),))
    async with avito(app) as c:
        _, orders = await walk_orders(c)
        reviews = await walk_reviews(c)
    assert valid("orders_page", {"hasMore": False, "orders": orders}) == []
    assert valid("reviews_page", {"total": len(reviews), "reviews": reviews}) == []
    assert app.state.breakage.dropped and app.state.breakage.unknown_fields > 0


async def test_a_wrong_type_stays_on_its_record() -> None:
    app = make(faults=(Fault(ORDERS, "wrong_type"), Fault(REVIEWS, "wrong_type")))
    async with avito(app) as c:
        orders = [(await c.get(ORDERS, params={"limit": 20})).json()["orders"] for _ in range(2)]
        reviews = [(await c.get(REVIEWS, params={"offset": 0, "limit": 20})).json()["reviews"] for _ in range(2)]
    assert set(app.state.breakage.wrong_type.values()) == {"createdAt"}
    keys = {path: key for path, key in app.state.breakage.wrong_type}  # one broken record per endpoint
    for page in orders:
        assert next(o for o in page if o["id"] == keys[ORDERS])["createdAt"] == 1783684479
    for page in reviews:
        assert next(r for r in page if str(r["id"]) == keys[REVIEWS])["createdAt"] == "2026-07-10T11:44:39Z"
