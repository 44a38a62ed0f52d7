"""The Megamarket emulator serves what shared/marketplaces/megamarket.md documents, quirks included.

Each test is one rule of the document (section cited) that would fail without it; the emulator is
checked against the doc and the example payloads (tests/fixtures/megamarket/), never against a client.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from starlette.applications import Starlette

from connectors.megamarket.emulator import GET, SEARCH, EmulatorConfig, Fault, create_app
from connectors.megamarket.emulator_data import CLIENT_STATUSES, DOC_STATUSES, MSK

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 7, 18, 9, 30, tzinfo=UTC)
TOKEN = "megamarket-test-token"
AGENT = {"User-Agent": "loyalsync/0.1 (+https://example.org/loyalsync)"}  # §1: a product User-Agent
SCHEMAS = {name: json.loads((files("connectors.megamarket") / "schemas" / f"{name}.json").read_text(encoding="utf-8"))
           for name in ("search_response", "get_response", "error", "push_new_request")}
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "megamarket"
KNOWN = set(DOC_STATUSES) | set(CLIENT_STATUSES)
#: The lifecycle's order as this test reads §2.2 (expired statuses sit where the step they missed was).
PROGRESS = ("NEW", "PENDING_CONFIRMATION", "CONFIRMED", "PACKING_EXPIRED", "PACKED", "SHIPPING_EXPIRED", "SHIPPED",
            "DELIVERED")
CANCELLED = {"MERCHANT_CANCELED", "CUSTOMER_CANCELED"}
DATE_FIELDS = ("confirmedTimeLimit", "packingTimeLimit", "shippingTimeLimit", "shipmentDateFrom", "shipmentDateTo",
               "packingDate", "creationDate", "deliveryDate", "deliveryDateFrom", "deliveryDateTo")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make(**kwargs: Any) -> Starlette:
    kwargs.setdefault("generated_at", NOW)
    kwargs.setdefault("serving_at", kwargs["generated_at"])
    kwargs.setdefault("rate_limits", False)
    return create_app(EmulatorConfig(**kwargs))


@asynccontextmanager
async def megamarket(app: Starlette, headers: dict[str, str] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://megamarket",
                                 headers=AGENT if headers is None else headers) as client:
        yield client


def envelope(token: str | None = TOKEN, **data: Any) -> dict[str, Any]:
    """§1: `{"meta": {}, "data": {"token": ..., ...}}`."""
    return {"meta": {}, "data": ({"token": token} if token is not None else {}) | data}


def msk(moment: datetime) -> str:
    return moment.astimezone(MSK).isoformat(timespec="seconds")


async def search(c: httpx.AsyncClient, **data: Any) -> httpx.Response:
    return await c.post(SEARCH, json=envelope(**data))


async def ids_of(c: httpx.AsyncClient, **data: Any) -> list[str]:
    response = await search(c, **data)
    assert response.status_code == 200, response.text
    return response.json()["data"]["shipments"]


async def get_all(c: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
    """order/get in batches of 100 (§2.2)."""
    out = []
    for k in range(0, len(ids), 100):
        response = await c.post(GET, json=envelope(shipments=ids[k:k + 100]))
        assert response.status_code == 200, response.text
        out += response.json()["data"]["shipments"]
    return out


def valid(schema: str, document: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in Draft202012Validator(SCHEMAS[schema]).iter_errors(document)]


def is_error(response: httpx.Response, status: int, code: str) -> bool:
    return (response.status_code == status and response.headers["content-type"] == "application/json"
            and not valid("error", response.json()) and response.json()["error"]["code"] == code)


def e164(phone: str) -> str:
    """This test's own normalisation (§2.6): digits only, a leading 8 read as 7."""
    digits = re.sub(r"\D", "", phone)
    return "+7" + digits[1:] if len(digits) == 11 and digits[0] in "78" else "+" + digits


def furthest(statuses: list[str]) -> str:
    """The shipment status as this test reads the rule: the furthest goods unit, cancelled only if all are."""
    kept = [s for s in statuses if s not in CANCELLED]
    return max(kept, key=PROGRESS.index) if kept else statuses[-1]


# --- schemas and fixtures ------------------------------------------------------------------------

@pytest.mark.parametrize(("fixture", "schema"), [
    ("order_search.response.json", "search_response"), ("order_get.response.json", "get_response"),
    ("order_get_dbs.response.json", "get_response"), ("error.response.json", "error"),
    ("order_new_dbs.push.request.json", "push_new_request")])
def test_every_example_fits_its_schema(fixture: str, schema: str) -> None:
    Draft202012Validator.check_schema(SCHEMAS[schema])
    assert valid(schema, json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))) == []


def test_the_schemas_refuse_what_section_6_rules_out() -> None:
    """§6: dates with an offset, integer roubles; §2.2: ids are strings."""
    example = json.loads((FIXTURES / "order_get.response.json").read_text(encoding="utf-8"))
    shipment = example["data"]["shipments"][0]
    for name, value in (("creationDate", "2026-07-10 14:30:30"), ("depositedAmount", 2990.5),
                        ("shipmentId", 955233218)):
        assert valid("get_response", {**example, "data": {"shipments": [{**shipment, name: value}]}}), name


async def test_the_example_requests_are_answered() -> None:
    """order_search.request.json and order_get.request.json, with a real token, are valid requests."""
    requests = {name: json.loads((FIXTURES / f"{name}.request.json").read_text(encoding="utf-8"))
                for name in ("order_search", "order_get")}
    for body in requests.values():
        body["data"]["token"] = TOKEN
    async with megamarket(make()) as c:
        found = (await c.post(SEARCH, json=requests["order_search"])).json()
        got = (await c.post(GET, json=requests["order_get"])).json()
    assert valid("search_response", found) == [] and found["data"]["shipments"]
    assert valid("get_response", got) == [] and got["data"]["shipments"] == []  # 955233218 is not ours


async def test_every_answer_fits_the_schemas() -> None:
    app = make(unknown_statuses=3)
    async with megamarket(app) as c:
        listed = [(await search(c, dateFrom=msk(NOW - timedelta(days=d + 5)), dateTo=msk(NOW - timedelta(days=d))))
                  for d in range(0, 60, 5)]
        got = [(await c.post(GET, json=envelope(shipments=list(app.state.shipments)[k:k + 100]))).json()
               for k in range(0, len(app.state.shipments), 100)]
        errors = [await c.post(SEARCH, json=envelope("wrong", dateFrom=msk(NOW))),
                  await search(c, dateFrom="yesterday")]
    async with megamarket(make(server_errors=1)) as c:
        errors.append(await search(c, dateFrom=msk(NOW)))
    async with megamarket(make(rate_limits=True, monotonic=lambda: 5.0)) as c:
        errors.append([await search(c, dateFrom=msk(NOW)) for _ in range(6)][-1])
    assert all(valid("search_response", r.json()) == [] for r in listed)
    assert all(valid("get_response", body) == [] for body in got)
    assert sum(len(body["data"]["shipments"]) for body in got) == len(app.state.shipments) == 300
    assert [r.status_code for r in errors] == [200, 400, 500, 429]
    assert all(valid("error", r.json()) == [] for r in errors)


# --- auth (§1, §4) -------------------------------------------------------------------------------

async def test_the_token_in_the_body_alone_or_in_the_header_alone_is_accepted() -> None:
    """§1: send both; "an emulator should accept either"."""
    async with megamarket(make(orders=20)) as c:
        body_only = await c.post(SEARCH, json=envelope(dateFrom=msk(NOW - timedelta(days=60))))
        header_only = await c.post(SEARCH, json=envelope(None, dateFrom=msk(NOW - timedelta(days=60))),
                                   headers={"X-Merchant-Token": TOKEN})
        both = await c.post(SEARCH, json=envelope(dateFrom=msk(NOW - timedelta(days=60))),
                            headers={"X-Merchant-Token": TOKEN})
    for response in (body_only, header_only, both):
        assert response.status_code == 200 and response.json()["success"] == 1
        assert len(response.json()["data"]["shipments"]) == 20


@pytest.mark.parametrize(("body_token", "header_token"), [
    ("wrong", None), (None, "wrong"), (None, None), (TOKEN, "other"), ("other", TOKEN), ("", None)])
async def test_a_wrong_missing_or_disagreeing_token_gets_success_0_on_http_200(
        body_token: str | None, header_token: str | None) -> None:
    """§4: business errors are `success: 0` with HTTP 200 (error.response.json: VALIDATION, "invalid token")."""
    headers = {**AGENT, **({"X-Merchant-Token": header_token} if header_token is not None else {})}
    async with megamarket(make(orders=20)) as c:
        response = await c.post(SEARCH, json=envelope(body_token, dateFrom=msk(NOW)), headers=headers)
    assert is_error(response, 200, "VALIDATION") and response.json()["error"]["message"] == "invalid token"
    assert response.json() == json.loads((FIXTURES / "error.response.json").read_text(encoding="utf-8"))


async def test_an_expired_token_is_refused_like_a_wrong_one() -> None:
    app = make(orders=20, faults=(Fault(SEARCH, "expired_token", after=1),))
    async with megamarket(app) as c:
        answers = [await search(c, dateFrom=msk(NOW - timedelta(days=60))) for _ in range(3)]
    assert answers[0].json()["success"] == 1
    assert all(is_error(r, 200, "VALIDATION") for r in answers[1:])


# --- User-Agent (§1) ------------------------------------------------------------------------------

@pytest.mark.parametrize("agent", ["python-requests/2.26.0", "python-httpx/0.28.1", "aiohttp/3.9.5",
                                   "Python-urllib/3.11", "Go-http-client/1.1", "curl/8.5.0", "okhttp/4.12.0",
                                   None, ""])
async def test_a_default_library_user_agent_is_blocked_before_the_token_is_read(agent: str | None) -> None:
    """§1: «User-agent типа python-requests/2.26.0 … блокирует»; the block's look is UNCONFIRMED (an HTML 403)."""
    app = make(orders=20)
    async with megamarket(app, {}) as c:
        if agent is None:
            del c.headers["user-agent"]
        else:
            c.headers["user-agent"] = agent
        good = await search(c, dateFrom=msk(NOW))
        bad_token = await c.post(SEARCH, json=envelope("wrong", dateFrom=msk(NOW)))
    for response in (good, bad_token):
        assert response.status_code == 403 and response.headers["content-type"].startswith("text/html")
        assert "<html" in response.text
    assert app.state.blocked_agents == [agent or ""] * 2


async def test_a_product_user_agent_passes() -> None:
    app = make(orders=20)
    async with megamarket(app) as c:
        response = await search(c, dateFrom=msk(NOW - timedelta(days=60)))
    assert response.status_code == 200 and app.state.blocked_agents == []


# --- the rate limit (§4) --------------------------------------------------------------------------

async def test_a_sixth_request_within_one_second_gets_429_without_a_hint_and_a_second_later_passes() -> None:
    """§4 "up to 5 requests per second per seller", as a sliding window: a token bucket would let
    requests through half a second after a full burst."""
    clock = [1000.0]
    app = make(orders=20, rate_limits=True, monotonic=lambda: clock[0])
    async with megamarket(app) as c:
        burst = [(await search(c, dateFrom=msk(NOW))).status_code for _ in range(5)]
        clock[0] = 1000.5
        refused = await search(c, dateFrom=msk(NOW))
        clock[0] = 1000.999
        still = await search(c, dateFrom=msk(NOW))
        clock[0] = 1001.0
        again = [(await search(c, dateFrom=msk(NOW))).status_code for _ in range(6)]
    assert burst == [200] * 5
    assert is_error(refused, 429, "TOO_MANY_REQUESTS") and "retry-after" not in refused.headers
    assert not any(h.startswith(("x-ratelimit", "ratelimit")) for h in refused.headers)
    assert still.status_code == 429 and again == [200] * 5 + [429]


async def test_both_endpoints_share_one_window_and_refused_tokens_do_not_count() -> None:
    app = make(orders=20, rate_limits=True, monotonic=lambda: 7.0)
    async with megamarket(app) as c:
        refused = [await c.post(SEARCH, json=envelope("wrong", dateFrom=msk(NOW))) for _ in range(3)]
        mixed = [(await search(c, dateFrom=msk(NOW))).status_code for _ in range(3)]
        mixed += [(await c.post(GET, json=envelope(shipments=["1"]))).status_code for _ in range(3)]
    assert all(is_error(r, 200, "VALIDATION") for r in refused)
    assert mixed == [200] * 5 + [429]


@pytest.mark.parametrize(("retry_after", "header"), [(3, "3"), (None, None)])
async def test_a_rate_limit_fault_says_its_wait_only_when_it_has_one(retry_after: int | None,
                                                                     header: str | None) -> None:
    app = make(orders=20, faults=(Fault(SEARCH, "rate_limit", retry_after=retry_after),))
    async with megamarket(app) as c:
        refused = await search(c, dateFrom=msk(NOW))
    assert is_error(refused, 429, "TOO_MANY_REQUESTS") and refused.headers.get("retry-after") == header


# --- order/search (§2.1) ----------------------------------------------------------------------------

async def test_the_window_is_inclusive_at_both_ends_to_the_second() -> None:
    app = make()
    shipment = sorted(app.state.shipments.values(), key=lambda s: s.created_at)[150]
    at, second = shipment.created_at, timedelta(seconds=1)
    async with megamarket(app) as c:
        exact = await ids_of(c, dateFrom=msk(at), dateTo=msk(at))
        after = await ids_of(c, dateFrom=msk(at + second), dateTo=msk(at + timedelta(hours=1)))
        before = await ids_of(c, dateFrom=msk(at - timedelta(hours=1)), dateTo=msk(at - second))
    assert shipment.shipment_id in exact
    assert shipment.shipment_id not in after and shipment.shipment_id not in before


async def test_an_offset_or_z_name_the_same_instants() -> None:
    """§2.1, §6: dates with an explicit offset; +03:00, Z and +05:00 for one instant give one answer."""
    low, high = NOW - timedelta(days=9, hours=5, seconds=17), NOW - timedelta(days=4, minutes=3)
    async with megamarket(make()) as c:
        answers = [await ids_of(c, dateFrom=low.astimezone(zone).isoformat(), dateTo=high.astimezone(zone).isoformat())
                   for zone in (MSK, UTC, MSK)]
        answers.append(await ids_of(c, dateFrom=low.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                    dateTo=high.strftime("%Y-%m-%dT%H:%M:%SZ")))
    assert 5 < len(answers[0]) < 100 and all(a == answers[0] for a in answers)


@pytest.mark.parametrize("separator", ["T", " "])
async def test_a_naive_date_is_read_as_moscow_time_and_recorded(separator: str) -> None:
    """§2.1: how the server reads `Y-m-d H:i:s` is UNCONFIRMED; the emulator reads Moscow time and flags it."""
    app = make()
    shipment = sorted(app.state.shipments.values(), key=lambda s: s.created_at)[100]
    local = shipment.created_at.astimezone(MSK).strftime(f"%Y-%m-%d{separator}%H:%M:%S")
    async with megamarket(app) as c:
        found = await ids_of(c, dateFrom=local, dateTo=local)
        utc_wall = shipment.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        as_utc = await ids_of(c, dateFrom=msk(shipment.created_at - timedelta(days=1)), dateTo=utc_wall)
    assert shipment.shipment_id in found and shipment.shipment_id not in as_utc  # read as MSK: 3 h earlier
    assert app.state.naive_dates[:2] == [local, local] and len(app.state.naive_dates) == 3


@pytest.mark.parametrize(("name", "data"), [
    ("no dateFrom", {"dateTo": "2026-07-18T00:00:00+03:00"}),
    ("a date without a time", {"dateFrom": "2026-07-10"}),
    ("a Russian date", {"dateFrom": "10.07.2026 14:30:30"}),
    ("epoch seconds", {"dateFrom": 1783000000}),
    ("no seconds", {"dateFrom": "2026-07-10T14:30+03:00"}),
    ("month 13", {"dateFrom": "2026-13-10T14:30:30Z"}),
    ("dateFrom after dateTo", {"dateFrom": "2026-07-10T14:30:31+03:00", "dateTo": "2026-07-10T14:30:30+03:00"}),
    ("dateTo null", {"dateFrom": "2026-07-10T14:30:30+03:00", "dateTo": None}),
    ("statuses not a list", {"dateFrom": "2026-07-10T14:30:30+03:00", "statuses": "NEW"}),
])
async def test_dates_and_filters_the_doc_does_not_allow_are_refused_with_400(name: str, data: dict) -> None:
    async with megamarket(make(orders=20)) as c:
        assert is_error(await search(c, **data), 400, "VALIDATION"), name


async def test_date_to_defaults_to_now_and_shipments_after_now_are_never_listed() -> None:
    """§2.1: dateTo optional; the platform knows nothing created after its own "now"."""
    serving = NOW - timedelta(days=2)
    app = make(serving_at=serving)
    later = [s.shipment_id for s in app.state.shipments.values() if s.created_at > serving]
    async with megamarket(app) as c:
        open_ended = await ids_of(c, dateFrom=msk(serving - timedelta(days=1)))
        closed = await ids_of(c, dateFrom=msk(serving - timedelta(days=1)), dateTo=msk(serving))
        beyond = await ids_of(c, dateFrom=msk(serving - timedelta(days=1)), dateTo=msk(NOW))
        got = await get_all(c, later)
    assert later and open_ended == closed == beyond and open_ended
    assert got == []


async def test_the_statuses_filter_is_the_current_status_and_absent_or_empty_means_every_status() -> None:
    app = make()
    window = {"dateFrom": msk(NOW - timedelta(days=12)), "dateTo": msk(NOW - timedelta(days=2))}
    async with megamarket(app) as c:
        every = await ids_of(c, **window)
        empty = await ids_of(c, **window, statuses=[])
        by_status = {s: await ids_of(c, **window, statuses=[s]) for s in DOC_STATUSES}
        two = await ids_of(c, **window, statuses=["DELIVERED", "SHIPPED"])
    assert 10 < len(every) < 100 and set(every) == set(empty) == {i for ids in by_status.values() for i in ids}
    for status, ids in by_status.items():
        assert all(app.state.shipments[i].status_at(NOW) == status for i in ids)
    assert set(two) == set(by_status["DELIVERED"]) | set(by_status["SHIPPED"]) and by_status["DELIVERED"]


async def test_the_eight_documented_statuses_do_not_find_shipments_in_other_statuses() -> None:
    """§2.2 "accept unknown values": a filter of the documented words (as order_search.request.json sends)
    misses a shipment in a client-only or unknown status; only a search without statuses finds every one."""
    app = make(unknown_statuses=5, search_cap=1000)
    window = {"dateFrom": msk(NOW - timedelta(days=61)), "count": 1000}
    async with megamarket(app) as c:
        every = await ids_of(c, **window)
        documented = await ids_of(c, **window, statuses=list(DOC_STATUSES))
    others = {i for i in every if app.state.shipments[i].status_at(NOW) not in DOC_STATUSES}
    assert len(every) == 300 and set(documented) == set(every) - others
    assert len(others) >= 5 + 2  # the unknown ones and some in PENDING_CONFIRMATION or SHIPPING_EXPIRED


@pytest.mark.parametrize(("statuses", "status"), [(["NEW", "COMPLETED"], 400), (["new"], 400),
                                                  (list(CLIENT_STATUSES), 200), (list(DOC_STATUSES), 200)])
async def test_only_known_status_words_are_accepted_in_the_filter(statuses: list[str], status: int) -> None:
    """§2.1: statuses[] takes §2.2's words (client-known ones accepted too); anything else is refused."""
    async with megamarket(make(orders=20)) as c:
        response = await search(c, dateFrom=msk(NOW - timedelta(days=60)), statuses=statuses)
    assert response.status_code == status and (status == 200 or is_error(response, 400, "VALIDATION"))


@pytest.mark.parametrize(("count", "status"), [("100", 200), (100, 200), (1, 200), (1000, 200), ("7", 200),
                                               (0, 400), (1001, 400), ("abc", 400), (1.5, 400), (True, 400),
                                               (-1, 400), (None, 400), ("１２", 400)])
async def test_count_is_an_integer_or_a_numeric_string_from_1_to_1000(count: Any, status: int) -> None:
    async with megamarket(make(orders=20)) as c:
        response = await search(c, dateFrom=msk(NOW - timedelta(days=60)), count=count)
    assert response.status_code == status
    if status == 200:
        assert len(response.json()["data"]["shipments"]) == min(int(count), 20)


async def test_more_matches_than_the_cap_give_exactly_the_cap_with_no_marker_and_not_by_date() -> None:
    """§2.1 "capped, no cursor": the answer says nothing of what it left out, and its cut is not by date."""
    app = make()
    by_date = [s.shipment_id for s in sorted(app.state.shipments.values(), key=lambda s: s.created_at)]
    async with megamarket(app) as c:
        answer = (await search(c, dateFrom=msk(NOW - timedelta(days=61)), count=1000)).json()
        again = await ids_of(c, dateFrom=msk(NOW - timedelta(days=61)))
        few = await ids_of(c, dateFrom=msk(NOW - timedelta(days=61)), count=10)
    ids = answer["data"]["shipments"]
    assert answer.keys() == {"success", "meta", "data"} and answer["meta"] == {} and answer["data"].keys() == {
        "shipments"}
    assert len(ids) == len(set(ids)) == 100 and all(isinstance(i, str) and i.isdigit() for i in ids)
    assert set(ids) != set(by_date[:100]) and set(ids) != set(by_date[-100:])
    assert again == ids and len(few) == 10


async def test_a_busy_day_holds_several_times_the_cap_and_only_splitting_the_window_finds_them() -> None:
    """§2.1: "bisect the date window when the result count equals the cap"."""
    app = make(search_cap=20, busy_day=100)
    day = app.state.data.busy_day
    start = datetime(day.year, day.month, day.day, tzinfo=MSK)
    on_day = {s.shipment_id for s in app.state.shipments.values() if start <= s.created_at < start + timedelta(days=1)}

    async def every(c: httpx.AsyncClient, low: datetime, high: datetime) -> set[str]:
        ids = await ids_of(c, dateFrom=msk(low), dateTo=msk(high))
        if len(ids) < 20:
            return set(ids)
        middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
        return await every(c, low, middle) | await every(c, middle + timedelta(seconds=1), high)

    async with megamarket(app) as c:
        whole_day = await ids_of(c, dateFrom=msk(start), dateTo=msk(start + timedelta(days=1, seconds=-1)))
        split = await every(c, start, start + timedelta(days=1, seconds=-1))
    assert len(app.state.data.busy) == 100 and app.state.data.busy <= on_day and len(on_day) >= 5 * 20
    assert len(whole_day) == 20 and split == on_day


# --- order/get (§2.2, §2.3, §2.6, §6) ----------------------------------------------------------------

async def test_lines_are_per_unit_and_only_dbs_shipments_end_with_the_delivery_line() -> None:
    """§2.3: one line per unit (quantity 1, itemIndex "1".."n", same offerId/goodsId) plus, on DBS, the
    `offerId: "delivery"` pseudo-line."""
    app = make()
    async with megamarket(app) as c:
        shipments = await get_all(c, list(app.state.shipments))
    for s in shipments:
        items = s["items"]
        assert [i["itemIndex"] for i in items] == [str(k) for k in range(1, len(items) + 1)]
        assert all(i["quantity"] == 1 for i in items)
        offers = [i["offerId"] for i in items]
        delivery = [i for i in items if i["offerId"] == "delivery"]
        if s["serviceScheme"] == "DELIVERY_BY_MERCHANT":
            assert len(delivery) == 1 and items[-1] is delivery[0]
            assert delivery[0]["goodsData"]["name"] == "Доставка" and delivery[0]["goodsData"]["isDelivery"] is True
            assert delivery[0]["price"] == delivery[0]["finalPrice"]
        else:
            assert s["serviceScheme"] == "FBS" and delivery == []
        goods = [o for o in offers if o != "delivery"]
        assert goods and goods == sorted(goods, key=goods.index)  # a product's units are consecutive
        assert all(len({i["goodsId"] for i in items if i["offerId"] == o}) == 1 for o in goods)
    units = Counter((s["shipmentId"], i["offerId"]) for s in shipments for i in s["items"])
    assert any(n >= 3 for (_, offer), n in units.items() if offer != "delivery")  # bought ×3: three lines
    assert any(len({o for (sid, o) in units if sid == s["shipmentId"] and o != "delivery"}) >= 3 for s in shipments)
    fees = [i["price"] for s in shipments for i in s["items"] if i["offerId"] == "delivery"]
    assert 0 in fees and any(300 <= f <= 800 for f in fees)  # a free delivery is still a line


async def test_money_is_integer_roubles_and_deposited_amount_is_every_line_or_zero() -> None:
    """§6: integer roubles; §2.2: depositedAmount includes the delivery line, 0 on DBS = pay on delivery."""
    app = make()
    async with megamarket(app) as c:
        shipments = await get_all(c, list(app.state.shipments))
    zero = 0
    for s in shipments:
        lines = s["items"]
        assert all(type(i[k]) is int for i in lines for k in ("price", "finalPrice"))
        assert type(s["depositedAmount"]) is int
        for line in lines:
            assert line["price"] - line["finalPrice"] == sum(d["discountAmount"] for d in line["discounts"])
            assert all(type(d["discountAmount"]) is int and d["discountAmount"] > 0 for d in line["discounts"])
        if s["depositedAmount"] == 0:
            assert s["serviceScheme"] == "DELIVERY_BY_MERCHANT"
            zero += 1
        else:
            assert s["depositedAmount"] == sum(i["finalPrice"] for i in lines)
    dbs = sum(s["serviceScheme"] == "DELIVERY_BY_MERCHANT" for s in shipments)
    assert 0.1 * dbs < zero < 0.3 * dbs
    discounted = [i for s in shipments for i in s["items"] if i["discounts"]]
    assert len(discounted) > 50 and {d["discountType"] for i in discounted for d in i["discounts"]} >= {"PROMO"}


async def test_dates_carry_the_moscow_offset_and_the_true_instant() -> None:
    """§6: `yyyy-MM-dd'T'HH:mm:sszzz`, e.g. 2024-05-10T12:00:00+03:00."""
    app = make()
    async with megamarket(app) as c:
        shipments = await get_all(c, list(app.state.shipments))
    pattern = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+03:00")
    for s in shipments:
        dates = [s[f] for f in DATE_FIELDS] + [e["eventDate"] for i in s["items"] for e in i["events"]]
        dates += [s["reserveExpirationDate"]] if s["reserveExpirationDate"] is not None else []
        assert all(pattern.fullmatch(d) for d in dates), s["shipmentId"]
        assert datetime.fromisoformat(s["creationDate"]) == app.state.shipments[s["shipmentId"]].created_at


@pytest.mark.parametrize(("ids", "status"), [([], 400), ([str(n) for n in range(101)], 400), ("955233218", 400),
                                             ([None], 400), ([str(n) for n in range(100)], 200)])
async def test_an_empty_or_oversized_batch_is_refused(ids: Any, status: int) -> None:
    """§2.2: the batch limit is UNCONFIRMED; the strict guess is 100 ids."""
    async with megamarket(make(orders=20)) as c:
        response = await c.post(GET, json=envelope(shipments=ids))
    assert response.status_code == status and (status == 200 or is_error(response, 400, "VALIDATION"))


async def test_unknown_ids_are_left_out_and_numbers_are_read_as_ids() -> None:
    app = make(orders=20)
    first, second = list(app.state.shipments)[:2]
    async with megamarket(app) as c:
        body = (await c.post(GET, json=envelope(shipments=[first, "1", int(second), first]))).json()
    assert [s["shipmentId"] for s in body["data"]["shipments"]] == [first, second]


async def test_dbs_carries_the_buyer_fbs_carries_no_identity_and_both_carry_a_name() -> None:
    """§2.6: DBS `customer{phone, email, comment}`; FBS `customer` null or empty; the name and address on both."""
    app = make()
    async with megamarket(app) as c:
        shipments = await get_all(c, list(app.state.shipments))
    dbs = [s for s in shipments if s["serviceScheme"] == "DELIVERY_BY_MERCHANT"]
    fbs = [s for s in shipments if s["serviceScheme"] == "FBS"]
    assert len(dbs) > 100 and len(fbs) > 100
    assert all(s["customerFullName"] and s["customerAddress"] for s in shipments)
    assert all(s["customer"]["phone"] and set(s["customer"]) == {"phone", "email", "comment"} for s in dbs)
    emails = {s["customer"]["email"] for s in dbs}
    assert "" in emails and any("@" in e for e in emails)
    empty = [s for s in fbs if s["customer"] is not None]
    assert all(s["customer"] == {"phone": "", "email": "", "comment": ""} for s in empty)
    assert 0 < len(empty) < len(fbs) // 3
    assert all(e164(s["customer"]["phone"]).startswith("+7999") for s in dbs)  # obviously fake numbers


async def test_one_buyer_shows_its_phone_in_several_forms() -> None:
    """§2.6: mostly `7XXXXXXXXXX`; the same buyer also in other forms, so a client must normalise to E.164."""
    app = make()
    shipments = list(app.state.shipments.values())
    buyer = next(b for b, forms in app.state.data.customer_forms.items() if len(forms) >= 2)
    mine = [s.shipment_id for s in shipments if s.buyer == buyer]
    async with megamarket(app) as c:
        phones = {s["customer"]["phone"] for s in await get_all(c, mine)}
    assert len(phones) >= 2 and len({e164(p) for p in phones}) == 1
    assert sum(len(forms) >= 2 for forms in app.state.data.customer_forms.values()) >= 5
    canonical = [s.phone for s in shipments if s.phone is not None and re.fullmatch(r"7\d{10}", s.phone)]
    assert len(canonical) > 0.75 * sum(s.phone is not None for s in shipments)
    buyers = Counter(s.buyer for s in shipments if s.buyer is not None)
    assert sum(n >= 2 for n in buyers.values()) > 20  # repeat buyers


# --- the lifecycle (§2.2) ------------------------------------------------------------------------------

async def test_a_later_serving_at_shows_the_same_shipments_with_later_statuses() -> None:
    later = NOW + timedelta(days=3)
    early_app, later_app = make(), make(serving_at=later)
    ids = [s.shipment_id for s in early_app.state.shipments.values() if s.created_at > NOW - timedelta(days=2)]
    async with megamarket(early_app) as c:
        before = {s["shipmentId"]: s for s in await get_all(c, ids)}
    async with megamarket(later_app) as c:
        after = {s["shipmentId"]: s for s in await get_all(c, ids)}
    assert set(before) == set(after) == set(ids)
    moved = [i for i in ids if before[i]["status"] != after[i]["status"]]
    assert len(moved) >= 3
    for i in moved:
        assert after[i]["status"] in CANCELLED or (
            before[i]["status"] not in CANCELLED and PROGRESS.index(after[i]["status"]) > PROGRESS.index(
                before[i]["status"]))
        assert sum(len(x["events"]) for x in after[i]["items"]) > sum(len(x["events"]) for x in before[i]["items"])


async def test_the_shipment_status_is_its_furthest_goods_unit_and_events_follow_each_change() -> None:
    """§2.2 statuses per shipment and per item; one event per item status change after NEW (UNCONFIRMED)."""
    app = make()
    async with megamarket(app) as c:
        shipments = await get_all(c, list(app.state.shipments))
    for s in shipments:
        goods = [i for i in s["items"] if i["offerId"] != "delivery"]
        assert s["status"] == furthest([i["status"] for i in goods]) or all(
            i["status"] in CANCELLED for i in goods), s["shipmentId"]
        for item in s["items"]:
            names = [e["eventName"] for e in item["events"]]
            assert (names[-1] if names else "NEW") == item["status"]
            assert [e["eventDate"] for e in item["events"]] == sorted(e["eventDate"] for e in item["events"])
            assert len(names) == len(set(names)) and "NEW" not in names
    statuses = Counter(s["status"] for s in shipments)
    assert 0.04 < (statuses["MERCHANT_CANCELED"] + statuses["CUSTOMER_CANCELED"]) / len(shipments) < 0.16
    assert statuses["PACKING_EXPIRED"] and statuses["SHIPPING_EXPIRED"]
    assert any(e["eventName"] == "PENDING_CONFIRMATION" for s in shipments for i in s["items"] for e in i["events"])


async def test_a_partial_cancellation_takes_out_one_unit_before_shipping() -> None:
    app = make()
    async with megamarket(app) as c:
        shipments = await get_all(c, list(app.state.shipments))
    partial = []
    for s in shipments:
        goods = [i for i in s["items"] if i["offerId"] != "delivery"]
        cut = [i for i in goods if i["status"] == "MERCHANT_CANCELED"]
        if len(cut) == 1 and s["status"] == "DELIVERED":
            partial.append(s)
            assert all(e["eventName"] not in ("PACKED", "SHIPPED", "DELIVERED") for e in cut[0]["events"])
            assert all(i["status"] == "DELIVERED" for i in goods if i is not cut[0])
    assert len(partial) >= 5


async def test_returns_show_as_customer_canceled_items_after_delivery() -> None:
    """How a return shows in order/get is UNCONFIRMED: the item turns CUSTOMER_CANCELED and keeps its
    DELIVERED event; the shipment stays DELIVERED unless every goods unit came back."""
    app = make(orders=600, serving_at=NOW + timedelta(days=30))  # every return has happened by then
    async with megamarket(app) as c:
        shipments = await get_all(c, list(app.state.shipments))
    kinds: Counter[str] = Counter()
    for s in shipments:
        goods = [i for i in s["items"] if i["offerId"] != "delivery"]
        back = [i for i in goods if [e["eventName"] for e in i["events"]][-2:] == ["DELIVERED", "CUSTOMER_CANCELED"]]
        if not back:
            continue
        assert all(i["status"] == "CUSTOMER_CANCELED" for i in back)
        full = len(back) == len(goods)
        assert s["status"] == ("CUSTOMER_CANCELED" if full else "DELIVERED")
        kinds["full" if full else "partial"] += 1
    delivered = sum(any(e["eventName"] == "DELIVERED" for i in s["items"] for e in i["events"]) for s in shipments)
    assert kinds["full"] >= 3 and kinds["partial"] >= 3
    assert 0.02 < (kinds["full"] + kinds["partial"]) / delivered < 0.09


async def test_recent_shipments_are_mostly_not_yet_shipped() -> None:
    app = make(orders=2000, history_days=10)
    recent = [s for s in app.state.shipments.values() if s.created_at > NOW - timedelta(days=1)]
    early = [s for s in recent if s.status_at(NOW) in ("NEW", "PENDING_CONFIRMATION", "CONFIRMED", "PACKED")]
    assert len(recent) > 100 and len(early) > 0.6 * len(recent)


async def test_unknown_statuses_are_served_on_the_shipment_and_its_items() -> None:
    """§2.2 "accept unknown values (quarantine, don't crash)"."""
    app = make(unknown_statuses=4)
    async with megamarket(app) as c:
        shipments = await get_all(c, list(app.state.shipments))
    odd = [s for s in shipments if s["status"] not in KNOWN]
    assert len(odd) == 4
    assert all(i["status"] == s["status"] for s in odd for i in s["items"])


# --- failures and faults (§4, connectors.emulation) ---------------------------------------------------

async def test_the_first_requests_may_answer_500_then_the_server_works() -> None:
    """§4: "not fail-safe; may answer 500 — merchants should implement retries"."""
    app = make(orders=20, server_errors=2)
    async with megamarket(app) as c:
        answers = [await search(c, dateFrom=msk(NOW - timedelta(days=60))) for _ in range(3)]
    assert all(is_error(r, 500, "INTERNAL_ERROR") for r in answers[:2])
    assert answers[2].status_code == 200 and len(answers[2].json()["data"]["shipments"]) == 20


async def test_an_http_500_fault_uses_the_error_envelope() -> None:
    app = make(orders=20, faults=(Fault(GET, "http_500"), Fault(GET, "http_503")))
    async with megamarket(app) as c:
        first, second, third = [await c.post(GET, json=envelope(shipments=["1"])) for _ in range(3)]
    assert is_error(first, 500, "INTERNAL_ERROR") and is_error(second, 503, "SERVICE_UNAVAILABLE")
    assert third.status_code == 200


async def test_a_short_page_on_get_leaves_existing_ids_out_until_asked_again() -> None:
    app = make(faults=(Fault(GET, "short_page"),))
    ids = list(app.state.shipments)[:30]
    async with megamarket(app) as c:
        first = [s["shipmentId"] for s in await get_all(c, ids)]
        rest = [s["shipmentId"] for s in await get_all(c, [i for i in ids if i not in first])]
    assert 1 <= len(first) < 30 and first == ids[:len(first)]
    assert app.state.short_pages == [(GET, len(first), 30)] and sorted(first + rest) == sorted(ids)


async def test_a_malformed_fault_breaks_one_shipment_of_a_get_answer_and_records_it() -> None:
    app = make(faults=(Fault("/api/market/v1/orderService/order/", "malformed", times=2),))
    ids = list(app.state.shipments)[:10]
    async with megamarket(app) as c:
        listed = (await search(c, dateFrom=msk(NOW - timedelta(days=60)))).json()  # no shipment to break
        bodies = [(await c.post(GET, json=envelope(shipments=ids))).json() for _ in range(2)]
    assert valid("search_response", listed) == []
    broken = [(s["shipmentId"], k) for k, body in enumerate(bodies) for s in body["data"]["shipments"]
              if s["creationDate"] == "not-a-date" or any(isinstance(i["finalPrice"], str) for i in s["items"])]
    assert [(GET, sid) for sid, _ in broken] == app.state.corrupted and [k for _, k in broken] == [0, 1]
    assert all(valid("get_response", body) for body in bodies)


async def test_a_late_change_returns_an_old_delivered_shipment_after_generated_at() -> None:
    fault = Fault(GET, "late_change", times=2, age=45 * 86400.0, delay=3600.0)
    early, later = make(faults=(fault,)), make(faults=(fault,), serving_at=NOW + timedelta(hours=2))
    assert len(early.state.late_changes) == 2 and early.state.late_changes == later.state.late_changes
    for sid, change in early.state.late_changes.items():
        assert change == ("DELIVERED", "CUSTOMER_CANCELED")
        assert NOW - early.state.shipments[sid].created_at >= timedelta(days=44)
        for app, status in ((early, "DELIVERED"), (later, "CUSTOMER_CANCELED")):
            async with megamarket(app) as c:
                [served] = await get_all(c, [sid])
            assert served["status"] == status
            assert all(i["status"] == status for i in served["items"] if i["offerId"] != "delivery")


async def test_schema_drift_stays_within_the_schema() -> None:
    app = make(faults=(Fault(GET, "schema_drift", times=None),))
    async with megamarket(app) as c:
        body = (await c.post(GET, json=envelope(shipments=list(app.state.shipments)[:40]))).json()
    assert valid("get_response", body) == []
    dropped = app.state.breakage.dropped
    assert dropped and app.state.breakage.unknown_fields > 0
    assert all(key.split(":")[0] in app.state.shipments for _, key in dropped)
    assert {f for fields in dropped.values() for f in fields} >= {"subStatus", "boxIndex", "isDelivery"}


async def test_only_post_is_served_and_there_is_no_review_api() -> None:
    """§2: POST endpoints; §3: no reviews endpoint (`reviews` is accepted and ignored)."""
    async with megamarket(make(orders=20, reviews=40)) as c:
        as_get = await c.get(SEARCH)
        reviews = await c.post("/api/market/v1/reviewService/review/search", json=envelope())
    assert as_get.status_code == 405 and reviews.status_code == 404
