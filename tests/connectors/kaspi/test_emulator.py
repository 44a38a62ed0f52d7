"""The Kaspi emulator serves what shared/marketplaces/kaspi.md documents, quirks included.

Each test is one rule of the document (section cited) that would fail without it; the emulator is
checked against the doc and the official examples (tests/fixtures/kaspi/), never against a client.
"""

from __future__ import annotations

import json
import math
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

from connectors.kaspi.emulator import ORDERS, EmulatorConfig, Fault, create_app
from connectors.kaspi.emulator_data import ALMATY, CLIENT_STATUSES, DOC_STATUSES, STATES, b64, ms

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 5, 20, 9, 30, tzinfo=UTC)
TOKEN = "kaspi-test-token"
HEADERS = {"X-Auth-Token": TOKEN, "Accept": "application/vnd.api+json"}
DAY_MS = 86_400_000
F = "filter[orders]"
SCHEMAS = {name: json.loads((files("connectors.kaspi") / "schemas" / f"{name}.json").read_text(encoding="utf-8"))
           for name in ("orders_page", "entries_page", "product", "error")}
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kaspi"
KNOWN = set(DOC_STATUSES) | set(CLIENT_STATUSES)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make(**kwargs: Any) -> Starlette:
    kwargs.setdefault("generated_at", NOW)
    kwargs.setdefault("serving_at", kwargs["generated_at"])
    kwargs.setdefault("rate_limits", False)
    return create_app(EmulatorConfig(**kwargs))


@asynccontextmanager
async def kaspi(app: Starlette, headers: dict[str, str] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kaspi",
                                 headers=HEADERS if headers is None else headers) as client:
        yield client


def window(state: str, ge: int, le: int | None = None, number: int = 0, size: int = 100,
           **extra: str) -> dict[str, Any]:
    params: dict[str, Any] = {"page[number]": number, "page[size]": size, f"{F}[state]": state,
                              f"{F}[creationDate][$ge]": ge}
    if le is not None:
        params[f"{F}[creationDate][$le]"] = le
    return {**params, **extra}


async def every_page(client: httpx.AsyncClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Pages 0.. until pageCount says the last was read."""
    out, number = [], 0
    while True:
        body = (await client.get(ORDERS, params={**params, "page[number]": number})).json()
        out += body["data"]
        number += 1
        if number >= body["meta"]["pageCount"]:
            return out


def valid(schema: str, document: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in Draft202012Validator(SCHEMAS[schema]).iter_errors(document)]


def is_error(response: httpx.Response, status: int) -> bool:
    return (response.status_code == status and response.headers["content-type"] == "application/vnd.api+json"
            and not valid("error", response.json()))


LAST_14 = ms(NOW) - 14 * DAY_MS


# --- schemas and fixtures -----------------------------------------------------------------------

@pytest.mark.parametrize(("fixture", "schema"), [
    ("orders_list.response.json", "orders_page"), ("order_by_code_kaspi_delivery.response.json", "orders_page"),
    ("order_entries.response.json", "entries_page"), ("orderentry_product.response.json", "product"),
    ("error_complete_order.response.json", "error")])
def test_every_doc_example_fits_its_schema(fixture: str, schema: str) -> None:
    Draft202012Validator.check_schema(SCHEMAS[schema])
    assert valid(schema, json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))) == []


async def test_every_answer_fits_the_schemas() -> None:
    app = make()
    async with kaspi(app) as c:
        pages = [(await c.get(ORDERS, params=window(s, LAST_14, ms(NOW), **inc))).json()
                 for s in STATES for inc in ({}, {"include[orders]": "entries"})]
        order = next(o for o in app.state.orders.values() if len(o.entries) > 1)
        entries = (await c.get(f"{ORDERS}/{order.id}/entries")).json()
        product = (await c.get(f"/shop/api/v2/orderentries/{order.entries[0].id}/product")).json()
    assert all(valid("orders_page", p) == [] for p in pages) and sum(len(p["data"]) for p in pages) > 50
    assert valid("entries_page", entries) == [] and len(entries["data"]) == len(order.entries)
    assert valid("product", product) == []


# --- auth and errors (§2, §5, §5.1) ---------------------------------------------------------------

async def test_a_wrong_or_missing_token_gets_401_with_a_json_api_body() -> None:
    app = make()
    async with kaspi(app, {"X-Auth-Token": "wrong"}) as c:
        wrong = await c.get(ORDERS, params=window("NEW", LAST_14))
    async with kaspi(app, {}) as c:
        missing = await c.get(ORDERS, params=window("NEW", LAST_14))
    async with kaspi(app) as c:
        right = await c.get(ORDERS, params=window("NEW", LAST_14))
    assert is_error(wrong, 401) and is_error(missing, 401)
    assert right.status_code == 200 and right.headers["content-type"] == "application/vnd.api+json"


async def test_unknown_ids_get_404_and_there_is_no_review_api() -> None:
    app = make(reviews=40)  # accepted and ignored (§4)
    async with kaspi(app) as c:
        entries = await c.get(f"{ORDERS}/bm9wZQ/entries")
        product = await c.get("/shop/api/v2/orderentries/bm9wZQ/product")
        reviews = await c.get("/shop/api/v2/reviews")
    assert is_error(entries, 404) and is_error(product, 404) and reviews.status_code == 404


# --- the orders query (§3) -------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "params"), [
    ("no state", {"page[number]": 0, "page[size]": 20, f"{F}[creationDate][$ge]": LAST_14}),
    ("two states comma-joined", window("NEW,PICKUP", LAST_14)),
    ("an unknown state", window("COMPLETED", LAST_14)),
    ("no $ge", {"page[number]": 0, "page[size]": 20, f"{F}[state]": "NEW"}),
    ("14 days + 1 ms", window("NEW", LAST_14, LAST_14 + 14 * DAY_MS + 1)),
    ("14 days + 1 ms with $lt", {**window("NEW", LAST_14), f"{F}[creationDate][$lt]": LAST_14 + 14 * DAY_MS + 1}),
    ("open window older than 14 days", window("NEW", ms(NOW) - 14 * DAY_MS - 60_000)),
    ("reversed bounds", window("NEW", LAST_14, LAST_14 - 1)),
    ("an ISO date", window("NEW", "2026-05-10T00:00:00+05:00")),  # type: ignore[arg-type]
    ("a negative page", window("NEW", LAST_14, number=-1)),
    ("page size 101", window("NEW", LAST_14, size=101)),
    ("page size 0", window("NEW", LAST_14, size=0)),
    ("no page number", {k: v for k, v in window("NEW", LAST_14).items() if k != "page[number]"}),
    ("no page size", {k: v for k, v in window("NEW", LAST_14).items() if k != "page[size]"}),
    ("an unknown include", window("NEW", LAST_14, **{"include[orders]": "products"})),
])
async def test_what_the_doc_does_not_allow_is_refused_with_400(name: str, params: dict[str, Any]) -> None:
    async with kaspi(make(orders=20)) as c:
        assert is_error(await c.get(ORDERS, params=params), 400), name


async def test_a_state_given_twice_is_refused() -> None:
    query = httpx.QueryParams(window("NEW", LAST_14)).add(f"{F}[state]", "PICKUP")
    async with kaspi(make(orders=20)) as c:
        assert is_error(await c.get(ORDERS, params=query), 400)


@pytest.mark.parametrize(("name", "params"), [
    ("exactly 14 days", window("ARCHIVE", LAST_14, LAST_14 + 14 * DAY_MS)),
    ("$gt instead of $ge", {**window("ARCHIVE", 0), f"{F}[creationDate][$gt]": LAST_14,
                             f"{F}[creationDate][$ge]": None}),
    ("open window within 14 days", window("ARCHIVE", LAST_14 + 60_000)),
    ("seconds-looking integers", window("ARCHIVE", 1_747_000_000, 1_747_000_000 + 1000)),
    ("deliveryType PICKUP", window("ARCHIVE", LAST_14, ms(NOW), **{f"{F}[deliveryType]": "PICKUP"})),
    ("deliveryType DELIVERY_PICKUP", window("ARCHIVE", LAST_14, ms(NOW), **{f"{F}[deliveryType]": "DELIVERY_PICKUP"})),
])
async def test_what_the_doc_allows_is_answered(name: str, params: dict[str, Any]) -> None:
    params = {k: v for k, v in params.items() if v is not None}
    async with kaspi(make(orders=60)) as c:
        response = await c.get(ORDERS, params=params)
    assert response.status_code == 200, (name, response.text)


async def test_the_delivery_type_filter_is_accepted_and_not_applied() -> None:
    async with kaspi(make()) as c:
        plain = (await c.get(ORDERS, params=window("ARCHIVE", LAST_14, ms(NOW)))).json()
        for spelling in ("PICKUP", "DELIVERY_LOCAL"):
            filtered = await c.get(ORDERS, params=window("ARCHIVE", LAST_14, ms(NOW),
                                                         **{f"{F}[deliveryType]": spelling}))
            assert filtered.json()["meta"] == plain["meta"]


async def test_zero_based_pages_cover_every_order_of_a_window_exactly_once() -> None:
    app = make()
    low, high = ms(NOW) - 14 * DAY_MS, ms(NOW)
    async with kaspi(app) as c:
        seen: list[str] = []
        for state in STATES:
            first = (await c.get(ORDERS, params=window(state, low, high, size=7))).json()
            assert first["meta"]["pageCount"] == math.ceil(first["meta"]["totalCount"] / 7)
            orders = await every_page(c, window(state, low, high, size=7))
            assert len(orders) == first["meta"]["totalCount"]
            assert all(o["attributes"]["state"] == state for o in orders)
            assert [o["attributes"]["creationDate"] for o in orders] == sorted(o["attributes"]["creationDate"]
                                                                              for o in orders)
            seen += [o["id"] for o in orders]
        past = (await c.get(ORDERS, params=window("ARCHIVE", low, high, number=99, size=7))).json()
    expected = {o.id for o in app.state.orders.values() if low <= ms(o.created_at) <= high}
    assert len(seen) == len(set(seen)) and set(seen) == expected and len(expected) > 40
    assert past["data"] == [] and past["meta"]["totalCount"] > 0


async def test_an_empty_window_has_no_pages() -> None:
    async with kaspi(make()) as c:
        body = (await c.get(ORDERS, params=window("NEW", 1_000_000, 2_000_000))).json()
    assert body == {"data": [], "included": [], "meta": {"pageCount": 0, "totalCount": 0}}


async def test_an_order_40_days_old_is_found_by_its_code_alone() -> None:
    """§3.1: `filter[orders][code]` needs no state and no dates, whatever the order's age."""
    app = make()
    order = min(app.state.orders.values(), key=lambda o: abs(NOW - o.created_at - timedelta(days=40)))
    async with kaspi(app) as c:
        by_code = (await c.get(ORDERS, params={f"{F}[code]": order.code})).json()
        recent = await every_page(c, window(order.at(NOW).state, LAST_14, ms(NOW)))
        unknown = (await c.get(ORDERS, params={f"{F}[code]": "1"})).json()
    assert [o["id"] for o in by_code["data"]] == [order.id]
    assert by_code["data"][0]["attributes"]["status"] == order.at(NOW).status
    assert by_code["meta"] == {"pageCount": 1, "totalCount": 1}
    assert order.id not in {o["id"] for o in recent}
    assert unknown["data"] == [] and unknown["meta"]["totalCount"] == 0


async def test_include_entries_fills_included_and_the_linkage() -> None:
    app = make()
    async with kaspi(app) as c:
        bare = (await c.get(ORDERS, params=window("ARCHIVE", LAST_14, ms(NOW)))).json()
        full = (await c.get(ORDERS, params=window("ARCHIVE", LAST_14, ms(NOW), **{"include[orders]": "entries"})))
    full_body = full.json()
    assert bare["included"] == [] and all("data" not in o["relationships"]["entries"] for o in bare["data"])
    linked = [e["id"] for o in full_body["data"] for e in o["relationships"]["entries"]["data"]]
    assert linked == [e["id"] for e in full_body["included"]] and linked
    assert {e["type"] for e in full_body["included"]} == {"orderentries"}
    for served in full_body["data"]:
        order = app.state.orders[served["id"]]
        assert [e["id"] for e in served["relationships"]["entries"]["data"]] == [e.id for e in order.entries]


async def test_entries_and_products_are_served_for_any_order() -> None:
    app = make()
    order = min(app.state.orders.values(), key=lambda o: o.created_at)  # older than any window
    async with kaspi(app) as c:
        entries = (await c.get(f"{ORDERS}/{order.id}/entries")).json()["data"]
        products = [(await c.get(f"/shop/api/v2/orderentries/{e['id']}/product")).json()["data"] for e in entries]
    assert [e["attributes"]["offer"]["code"] for e in entries] == [e.offer_code for e in order.entries]
    assert [p["attributes"]["name"] for p in products] == [e.product.name for e in order.entries]
    assert [e["relationships"]["product"]["data"]["id"] for e in entries] == [p["id"] for p in products]


# --- the lifecycle (§3, §3.1) ------------------------------------------------------------------------

ACTIVE = ("PICKUP", "DELIVERY", "KASPI_DELIVERY")
PAIRS = {("SIGN_REQUIRED", "APPROVED_BY_BANK"), ("NEW", "APPROVED_BY_BANK"), ("NEW", "CANCELLING"),
         *((s, t) for s in ACTIVE for t in ("ACCEPTED_BY_MERCHANT", "CANCELLING")),
         *(("ARCHIVE", t) for t in ("COMPLETED", "CANCELLED", "RETURNED", *CLIENT_STATUSES))}


def test_every_order_follows_the_documented_lifecycle() -> None:
    app = make(unknown_statuses=3)
    orders = list(app.state.orders.values())
    for o in orders:
        assert o.created_at.tzinfo is not None and o.created_at.microsecond % 1000 == 0
        assert o.stages[0].since == o.created_at
        assert [s.since for s in o.stages] == sorted(s.since for s in o.stages)
        assert all((s.state, s.status) in PAIRS or s.status not in KNOWN for s in o.stages), o.stages
        if any(s.status == "CANCELLED" for s in o.stages):
            assert o.cancellation_reason
    statuses = Counter(s.status for o in orders for s in o.stages)
    assert any(o.stages[0].state == "SIGN_REQUIRED" for o in orders)  # credit orders awaiting a signature
    assert all(statuses[s] for s in (*DOC_STATUSES, *CLIENT_STATUSES))
    # Stale orders: still active, they change state more than 14 days after creation.
    stale = [o for o in orders if any(a.state in ACTIVE and b.since - o.created_at > timedelta(days=14)
                                      for a, b in zip(o.stages, o.stages[1:], strict=False))]
    late_returns = [o for o in orders if any(s.status == "RETURNED" and s.since - o.created_at >= timedelta(days=20)
                                             for s in o.stages)]
    assert len(stale) >= 10 and len(late_returns) >= 5


async def test_a_later_serving_at_shows_the_same_orders_with_newer_statuses() -> None:
    early = make()
    later = make(serving_at=NOW + timedelta(days=20))
    moving = [o for o in early.state.orders.values() if o.at(NOW) != o.at(NOW + timedelta(days=20))]
    stale = next(o for o in moving if o.at(NOW).state in ACTIVE and NOW - o.created_at > timedelta(days=14))
    assert set(early.state.orders) == set(later.state.orders) and moving
    for app, moment in ((early, NOW), (later, NOW + timedelta(days=20))):
        async with kaspi(app) as c:
            for order in (moving[0], stale):
                served = (await c.get(ORDERS, params={f"{F}[code]": order.code})).json()["data"][0]["attributes"]
                assert (served["state"], served["status"]) == order.at(moment)[:2]


async def test_unknown_statuses_are_served() -> None:
    app = make(unknown_statuses=4)
    async with kaspi(app) as c:
        served = [o for s in STATES for start in range(ms(NOW) - 60 * DAY_MS, ms(NOW), 14 * DAY_MS)
                  for o in await every_page(c, {**window(s, start), f"{F}[creationDate][$lt]": start + 14 * DAY_MS})]
    assert len(served) == len(app.state.orders)
    assert len([o for o in served if o["attributes"]["status"] not in KNOWN]) == 4


# --- traps: time, money, phones (§3, §7) ---------------------------------------------------------------

def test_orders_are_created_around_almaty_midnight() -> None:
    """§7 "all dates in the Almaty timezone": orders minutes either side of 00:00 Almaty (19:00 UTC)."""
    app = make()
    local = [o.created_at.astimezone(ALMATY) for o in app.state.orders.values()]
    before = [t for t in local if (t.hour, t.minute) >= (23, 55)]
    after = [t for t in local if (t.hour, t.minute) < (0, 5)]
    assert len(before) >= 5 and len(after) >= 5
    assert {t.astimezone(UTC).hour for t in before + after} == {18, 19}  # Almaty is UTC+5


async def test_creation_dates_are_epoch_milliseconds_of_the_true_instant() -> None:
    app = make()
    async with kaspi(app) as c:
        served = await every_page(c, window("ARCHIVE", LAST_14, ms(NOW)))
    for s in served:
        created = app.state.orders[s["id"]].created_at
        assert s["attributes"]["creationDate"] == int(created.timestamp() * 1000 + 0.5)
        assert s["attributes"]["creationDate"] > 10**12  # ms, not seconds


async def test_money_floats_equal_the_exact_totals_to_the_tiyn() -> None:
    app = make()
    async with kaspi(app) as c:
        served = [o for s in STATES for o in await every_page(
            c, window(s, LAST_14, ms(NOW), **{"include[orders]": "entries"}))]
    for s in served:
        order, price = app.state.orders[s["id"]], s["attributes"]["totalPrice"]
        assert isinstance(price, float) and Decimal(repr(price)) == order.total
        assert order.total == sum((e.total_price for e in order.entries), Decimal(0))
    totals = [app.state.orders[s["id"]].total for s in served]
    assert any(t != t.to_integral_value() for t in totals)  # tiyn
    assert any(Decimal(float(t)) != t for t in totals)  # the float is not the exact value


async def test_one_buyer_appears_with_both_phone_forms_and_one_customer_id() -> None:
    app = make()
    buyer, forms = next((b, f) for b, f in app.state.customer_forms.items() if len(f) == 2)
    orders = [o for o in app.state.orders.values() if o.buyer == buyer]
    ten = min(forms, key=len)
    assert sorted(map(len, forms)) == [10, 11] and max(forms, key=len) == "7" + ten
    assert {o.phone_e164 for o in orders} == {"+7" + ten} and {o.customer_id for o in orders} == {b64(ten)}
    async with kaspi(app) as c:
        served = [(await c.get(ORDERS, params={f"{F}[code]": o.code})).json()["data"][0] for o in orders]
    assert {s["attributes"]["customer"]["cellPhone"] for s in served} == forms
    assert {s["attributes"]["customer"]["id"] for s in served} == {b64(ten)}
    assert {s["relationships"]["user"]["data"]["id"] for s in served} == {b64(ten)}
    assert len({o.buyer for o in app.state.orders.values()}) <= len(app.state.orders) // 2  # repeat buyers


# --- limits and faults (§5, connectors.emulation) -------------------------------------------------------

async def test_over_six_requests_a_second_gets_429_without_a_hint() -> None:
    app = make(orders=10, rate_limits=True, monotonic=lambda: 1000.0)
    async with kaspi(app) as c:
        answers = [await c.get(ORDERS, params=window("NEW", LAST_14)) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 6 + [429]
    assert is_error(answers[-1], 429) and "retry-after" not in answers[-1].headers


async def test_a_rate_limit_fault_with_a_wait_says_it() -> None:
    app = make(orders=10, faults=(Fault(ORDERS, "rate_limit", retry_after=3),))
    async with kaspi(app) as c:
        refused = await c.get(ORDERS, params=window("NEW", LAST_14))
    assert is_error(refused, 429) and refused.headers["retry-after"] == "3"


async def test_server_errors_have_a_json_api_body() -> None:
    app = make(orders=10, faults=(Fault(ORDERS, "http_500"), Fault(ORDERS, "http_503")))
    async with kaspi(app) as c:
        first, second = [await c.get(ORDERS, params=window("NEW", LAST_14)) for _ in range(2)]
    assert is_error(first, 500) and is_error(second, 503)


async def test_a_malformed_fault_breaks_one_total_price() -> None:
    app = make(faults=(Fault(ORDERS, "malformed"),))
    async with kaspi(app) as c:
        body = (await c.get(ORDERS, params=window("ARCHIVE", LAST_14, ms(NOW)))).json()
    broken = [o["id"] for o in body["data"] if o["attributes"]["totalPrice"] == "not-a-number"]
    assert broken and app.state.corrupted == [(ORDERS, broken[0])] and broken[0] in app.state.orders


async def test_a_short_page_holds_records_back_for_the_next_page_and_page_count_grows() -> None:
    """A page shorter than the size that is not the last: a client that stops there loses the
    records it held back; one that reads up to pageCount (kaspi.md §3) gets each exactly once."""
    clean, cut = make(), make(faults=(Fault(ORDERS, "short_page"),))
    params = window("ARCHIVE", LAST_14, ms(NOW), size=10)

    async def walk(app) -> tuple[list[dict], list[dict]]:
        pages, number, count = [], 0, 1
        async with kaspi(app) as c:
            while number < count:
                pages.append((await c.get(ORDERS, params={**params, "page[number]": number})).json())
                count, number = pages[-1]["meta"]["pageCount"], number + 1
        return pages, [o for p in pages for o in p["data"]]

    clean_pages, clean_orders = await walk(clean)
    cut_pages, cut_orders = await walk(cut)
    assert len(cut_pages[0]["data"]) < 10 and cut.state.short_pages
    assert cut_pages[0]["meta"]["totalCount"] == clean_pages[0]["meta"]["totalCount"]
    held = 10 - len(cut_pages[0]["data"])
    assert cut_pages[0]["meta"]["pageCount"] == -(-(cut_pages[0]["meta"]["totalCount"] + held) // 10)
    assert cut_pages[1]["data"][0] == clean_orders[len(cut_pages[0]["data"])]  # held back, served next
    assert [o["id"] for o in cut_orders] == [o["id"] for o in clean_orders]


async def test_a_late_change_returns_an_old_completed_order_after_generated_at() -> None:
    fault = Fault(ORDERS, "late_change", times=2, age=45 * 86400.0, delay=3600.0)
    early = make(faults=(fault,))
    later = make(faults=(fault,), serving_at=NOW + timedelta(hours=2))
    assert len(early.state.late_changes) == 2 and set(early.state.late_changes) == set(later.state.late_changes)
    for oid, (before, after) in early.state.late_changes.items():
        order = early.state.orders[oid]
        assert (before, after) == ("COMPLETED", "RETURNED")
        assert order.stages[-1].since - order.created_at >= timedelta(days=44)
        for app, status in ((early, before), (later, after)):
            async with kaspi(app) as c:
                served = (await c.get(ORDERS, params={f"{F}[code]": order.code})).json()["data"][0]
            assert served["attributes"]["status"] == status


async def test_schema_drift_keeps_answers_within_the_schema() -> None:
    app = make(faults=(Fault(ORDERS, "schema_drift", times=None),))
    async with kaspi(app) as c:
        body = (await c.get(ORDERS, params=window("ARCHIVE", LAST_14, ms(NOW)))).json()
    assert valid("orders_page", body) == []
    assert app.state.breakage.dropped and app.state.breakage.unknown_fields > 0
    assert all(key in app.state.orders or key.startswith("customer:") for _, key in app.state.breakage.dropped)


async def test_a_wrong_type_stays_on_its_order() -> None:
    app = make(faults=(Fault(ORDERS, "wrong_type"),))
    params = window("ARCHIVE", LAST_14, ms(NOW))
    async with kaspi(app) as c:
        first, again = [(await c.get(ORDERS, params=params)).json() for _ in range(2)]
    [(path, oid)] = app.state.breakage.wrong_type
    for body in (first, again):
        served = next(o for o in body["data"] if o["id"] == oid)
        assert served["attributes"]["totalPrice"] == "2000.0"
