"""Every answer the WB emulator serves, and every WB fixture, fits WB's official response schemas.

The schemas (tests/fixtures/specs/wildberries.json) combine WB's 2025-12 RU YAML with the 2026-08
render of its EN docs; see tests/fixtures/specs/README.md for which schema came from where.
Objects are closed: a key WB does not define is an error. WB marks no response key `required`,
so completeness is checked here too: each record carries every key its official schema lists,
except the few the official texts make conditional (`CONDITIONAL`, each with WB's words).

No deviation is kept. Statistics dates are Moscow time without an offset (wildberries.md §6);
the 2026-08 `OrdersItem` types `date`, `lastChangeDate` and `cancelDate` as plain strings (the
2025-12 YAML said date-time while its own example had no offset), so they need no allowance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.wildberries.emulator import EmulatorConfig, Fault, create_app
from tests.conftest import load_fixture
from tests.spec_schemas import SpecSchemas

SCHEMAS = SpecSchemas("wildberries")
NOW = datetime(2026, 8, 19, 12, 0, tzinfo=UTC)
TOKEN = "wb-schema-token"
OPERATIONS = {  # emulator path -> the operation's name in the spec
    "/api/v3/orders": "GET /api/v3/orders",
    "/api/v3/orders/new": "GET /api/v3/orders/new",
    "/api/v3/orders/status": "POST /api/v3/orders/status",
    "/api/v1/supplier/orders": "GET /api/v1/supplier/orders",
    "/api/v1/feedbacks": "GET /api/v1/feedbacks",
    "/api/v1/feedbacks/archive": "GET /api/v1/feedbacks/archive",
    "/api/v1/feedback": "GET /api/v1/feedback",
}
#: (schema, key) -> why the key may be absent, in the official texts' words.
CONDITIONAL = {
    ("OrderNew", "ddate"): "\"The field is displayed for assembly orders with over dimensional items `ODC`, "
                           "`cargoType: 2`\" (spec-2026-08); the emulator's orders are cargoType 1",
    ("OrderNew", "sellerDate"): "same condition as ddate (cargoType 2 only; wildberries.md §2a)",
    ("Error", "data"): "\"Additional data for the error\", nullable; WB's own IncorrectParameter example has none",
    ("POST /api/v3/orders/status", "isCancellable"): "optional: known only from a 3rd-party build of the 2026 "
                                                      "RU spec (wildberries-sdk 0.1.177); absence = unknown",
    ("POST /api/v3/orders/status", "isTransferable"): "as isCancellable",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- completeness: the keys the official schema lists ------------------------------------------

def missing_keys(operation: str, payload: Any, status: int = 200) -> list[str]:
    """Keys the official schema lists that `payload` leaves out (CONDITIONAL ones excepted)."""
    schema = SCHEMAS.doc["operations"][operation][str(status)]
    return sorted(set(_missing(schema, payload, "$", operation)))


def _missing(schema: Any, value: Any, path: str, owner: str) -> Iterator[str]:
    if not isinstance(schema, dict) or value is None:
        return
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        yield from _missing(SCHEMAS.doc["$defs"][name], value, path, name.removesuffix(".open"))
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, ()):
            yield from _missing(part, value, path, owner)
    if isinstance(value, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name not in value:
                if (owner, name) not in CONDITIONAL:
                    yield f"{path}.{name} ({owner})"
            else:
                yield from _missing(sub, value[name], f"{path}.{name}", owner)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _missing(schema["items"], item, f"{path}[{i}]", owner)


def test_the_completeness_check_notices_a_dropped_key():
    order = load_fixture("wildberries", "orders_list.json")
    assert missing_keys("GET /api/v3/orders", order) == []
    del order["orders"][1]["rid"]
    del order["orders"][0]["options"]["isB2B"]
    assert missing_keys("GET /api/v3/orders", order) == ["$.orders[0].options.isB2B (Order)",
                                                         "$.orders[1].rid (Order)"]
    row = load_fixture("wildberries", "statistics_orders.json")
    del row[0]["srid"]
    assert missing_keys("GET /api/v1/supplier/orders", row) == ["$[0].srid (OrdersItem)"]


# --- what the emulator serves ----------------------------------------------------------------

class Recorder:
    """Every answer the emulator gave, by (operation, status)."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, int], list[Any]] = defaultdict(list)

    async def __call__(self, c: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
        response = await c.request(method, path, **kwargs)
        body = response.json() if response.content else None
        self.answers[(OPERATIONS[path], response.status_code)].append(body)
        return body


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def emulator(clock: Clock, **overrides: Any):
    config = {"seed": 21, "orders": 1500, "reviews": 400, "history_days": 60, "now": NOW, "clock": clock,
              "token": TOKEN, "rate_limits": False, "statistics_page_size": 300, **overrides}
    return create_app(EmulatorConfig(**config))


async def serve_everything(record: Recorder) -> None:
    """Page through every listing at 21 moments of 10 days, so every status word shows up."""
    clock = Clock(NOW - timedelta(days=10))
    app = emulator(clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wb",
                                 headers={"Authorization": TOKEN}) as c:
        for step in range(21):
            clock.at = NOW - timedelta(days=10) + timedelta(hours=12 * step)
            now = int(clock.at.timestamp())
            ids: list[int] = []
            for start in (now - 60 * 86400, now - 30 * 86400):
                params = {"limit": 1000, "next": 0, "dateFrom": start, "dateTo": start + 30 * 86400}
                while (body := await record(c, "GET", "/api/v3/orders", params=params))["orders"]:
                    ids += [o["id"] for o in body["orders"]]
                    params["next"] = body["next"]
            for i in range(0, len(ids), 1000):
                await record(c, "POST", "/api/v3/orders/status", json={"orders": ids[i:i + 1000]})
            await record(c, "GET", "/api/v3/orders/new")
        cursor = "2026-01-01"
        while True:
            rows = await record(c, "GET", "/api/v1/supplier/orders", params={"dateFrom": cursor})
            if not rows or rows[-1]["lastChangeDate"] == cursor:
                break
            cursor = rows[-1]["lastChangeDate"]
        await record(c, "GET", "/api/v1/supplier/orders", params={"dateFrom": "2026-08-01", "flag": 1})
        for answered in ("false", "true"):
            await record(c, "GET", "/api/v1/feedbacks", params={"isAnswered": answered, "take": 5000, "skip": 0})
        archive = await record(c, "GET", "/api/v1/feedbacks/archive", params={"take": 5000, "skip": 0})
        unanswered = (await c.get("/api/v1/feedbacks", params={"isAnswered": "false", "take": 20, "skip": 0})).json()
        for review in archive["data"]["feedbacks"][:30] + unanswered["data"]["feedbacks"]:
            await record(c, "GET", "/api/v1/feedback", params={"id": review["id"]})
        await serve_errors(c, record)


async def serve_errors(c: httpx.AsyncClient, record: Recorder) -> None:
    """WB's 400 and 422 bodies as the emulator sends them."""
    await record(c, "GET", "/api/v3/orders", params={"limit": 0, "next": 0})
    await record(c, "POST", "/api/v3/orders/status", json={"orders": "no"})
    await record(c, "GET", "/api/v1/supplier/orders")
    await record(c, "GET", "/api/v1/supplier/orders", params={"dateFrom": "yesterday"})
    await record(c, "GET", "/api/v1/feedbacks", params={"take": 1, "skip": 0})
    await record(c, "GET", "/api/v1/feedbacks/archive", params={"skip": 0})
    await record(c, "GET", "/api/v1/feedback", params={"id": "no-such-feedback"})


async def serve_auth_and_limits(record: Recorder) -> None:
    """401 (a wrong token) and 429 (a rate-limit fault) on every operation."""
    faults = tuple(Fault(path, "rate_limit", times=None) for path in OPERATIONS)
    app = emulator(Clock(NOW), faults=faults)
    requests = [("GET", "/api/v3/orders", {"params": {"limit": 10, "next": 0}}),
                ("GET", "/api/v3/orders/new", {}), ("POST", "/api/v3/orders/status", {"json": {"orders": [1]}}),
                ("GET", "/api/v1/supplier/orders", {"params": {"dateFrom": "2026-08-01"}}),
                ("GET", "/api/v1/feedbacks", {"params": {"isAnswered": "false", "take": 1, "skip": 0}}),
                ("GET", "/api/v1/feedbacks/archive", {"params": {"take": 1, "skip": 0}}),
                ("GET", "/api/v1/feedback", {"params": {"id": "x"}})]
    for token in ("not-the-token", TOKEN):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wb",
                                     headers={"Authorization": token}) as c:
            for method, path, kwargs in requests:
                await record(c, method, path, **kwargs)


@pytest.fixture(scope="module")
def served() -> dict[tuple[str, int], list[Any]]:
    import anyio

    record = Recorder()
    anyio.run(serve_everything, record)
    anyio.run(serve_auth_and_limits, record)
    return record.answers


def records(served, operation: str) -> list[dict[str, Any]]:
    """The records inside every 200 answer of `operation`."""
    out: list[dict[str, Any]] = []
    for body in served[(operation, 200)]:
        if isinstance(body, list):
            out += body
        elif "orders" in body:
            out += body["orders"]
        elif isinstance(body["data"], dict) and "feedbacks" in body["data"]:
            out += body["data"]["feedbacks"]
        else:
            out.append(body["data"])
    return out


def enum(definition: dict[str, Any], field: str) -> set[str]:
    return set(definition["properties"][field]["enum"])


def test_every_answer_fits_the_official_schema_and_lists_every_key(served):
    assert {op for op, _ in served} == set(OPERATIONS.values())
    for (operation, status), bodies in sorted(served.items()):
        for body in bodies:
            assert SCHEMAS.errors(operation, body, status) == [], (operation, status)
            assert missing_keys(operation, body, status) == [], (operation, status)


def test_the_answers_cover_every_status_scheme_and_review_kind(served):
    assert {status for op, status in served if op == "GET /api/v3/orders"} == {200, 400, 401, 429}
    assert all((op, code) in served for op in OPERATIONS.values() for code in (200, 401, 429))
    assert ("GET /api/v1/feedback", 422) in served

    statuses = records(served, "POST /api/v3/orders/status")
    entry = SCHEMAS.doc["operations"]["POST /api/v3/orders/status"]["200"]["properties"]["orders"]["items"]
    assert {s["supplierStatus"] for s in statuses} == enum(entry, "supplierStatus")
    assert {s["wbStatus"] for s in statuses} == enum(entry, "wbStatus")
    assert {(s["isCancellable"], s["isTransferable"]) for s in statuses} >= {(True, False), (False, True),
                                                                             (False, False)}
    orders = records(served, "GET /api/v3/orders")
    assert len({o["id"] for o in orders}) >= 300 and len(records(served, "GET /api/v3/orders/new")) >= 20
    assert {o["crossBorderType"] for o in orders} == {0, 1} and {o["options"]["isB2B"] for o in orders} == {True, False}

    rows = records(served, "GET /api/v1/supplier/orders")
    assert len({r["srid"] for r in rows}) == 1500
    assert {r["warehouseType"] for r in rows} == {"Склад WB", "Склад продавца"}  # FBO and FBS
    assert {r["isCancel"] for r in rows} == {True, False}

    listed = records(served, "GET /api/v1/feedbacks")
    archived = records(served, "GET /api/v1/feedbacks/archive")
    assert len(listed) + len(archived) == 400 and listed and all(r["answer"] is None for r in listed)
    assert any(r["answer"] for r in archived) and any(r["answer"] is None for r in archived)
    assert any(r["photoLinks"] for r in listed + archived)
    one = records(served, "GET /api/v1/feedback")
    assert len(one) == 50 and any(r["answer"] for r in one) and any(r["answer"] is None for r in one)


# --- the fixtures copied from the shared reference ----------------------------------------

FIXTURES = [
    ("orders_list.json", "GET /api/v3/orders", 200),
    ("orders_list_last_page.json", "GET /api/v3/orders", 200),
    ("orders_new.json", "GET /api/v3/orders/new", 200),
    ("orders_status.json", "POST /api/v3/orders/status", 200),
    ("error_marketplace_400.json", "GET /api/v3/orders", 400),
    ("error_401.json", "GET /api/v3/orders", 401),
    ("error_429.json", "GET /api/v3/orders", 429),
    ("statistics_orders.json", "GET /api/v1/supplier/orders", 200),
    ("statistics_orders_empty.json", "GET /api/v1/supplier/orders", 200),
    ("statistics_error_400.json", "GET /api/v1/supplier/orders", 400),
    ("feedbacks_list.json", "GET /api/v1/feedbacks", 200),
    ("feedbacks_list_answered.json", "GET /api/v1/feedbacks", 200),
    ("feedbacks_error_400.json", "GET /api/v1/feedbacks", 400),
]


@pytest.mark.parametrize(("name", "operation", "status"), FIXTURES)
def test_every_wb_fixture_fits_the_official_schema(name, operation, status):
    payload = load_fixture("wildberries", name)
    assert SCHEMAS.errors(operation, payload, status) == []
    assert missing_keys(operation, payload, status) == []
