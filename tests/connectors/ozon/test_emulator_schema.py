"""Every answer the Ozon emulator serves validates against Ozon's official schema.

The schemas are transcribed from Ozon's own OpenAPI document (tests/fixtures/specs/ozon.json), so a
client generated from the spec, with strict models, reads what the emulator serves. The emulator
answers every kind of request the connector and a spec-built client make: a few hundred postings
of every status (FBS, rFBS with a buyer, FBO, cancelled ones), with and without the `with` blocks,
reviews with and without comments, writes, chats, and every error body.

The official schema marks no response key as required, so "a key the platform always sends" is
read from the official examples: every key an official example's record has must be in each of the
emulator's records (`missing_keys`), and a test drops one to prove the check notices.

Deviations from the schema are kept only where an official example shows Ozon itself sending the
same thing; each names that example and the value in it, and a test checks the example says so.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import httpx
import pytest

from connectors.ozon import emulator_reads
from connectors.ozon.emulator import EmulatorConfig, Fault, create_app
from tests.conftest import load_fixture
from tests.connectors.ozon.schema_deviations import (
    ACTIONS,
    CHAT_HISTORY,
    CHAT_SEND,
    CHAT_START,
    COMMENT_CREATE,
    COMMENTS,
    EMULATOR_DEVIATIONS,
    FBO,
    FBS,
    FIXTURE_DEVIATIONS,
    PRODUCT_INFO,
    REVIEWS,
    VOUCHER,
)
from tests.spec_schemas import SpecSchemas

SCHEMAS = SpecSchemas("ozon")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HEADERS = {"Client-Id": "42", "Api-Key": "key-42"}
SINCE, TO = "2026-09-01T00:00:00Z", "2026-11-20T12:00:00Z"

ALL_BLOCKS = {"analytics_data": True, "barcodes": True, "financial_data": True, "legal_info": True}
NO_BLOCKS = {"analytics_data": False, "barcodes": False, "financial_data": False, "legal_info": False}


# Official examples whose record keys every emulator record must have (the schema requires none).
EXAMPLE_RECORDS = {
    FBS: ("fbs_list_response.json", "postings"),
    FBO: ("fbo_list_response.json", "postings"),
    REVIEWS: ("review_list_v2_response_official_example.json", "reviews"),
    COMMENTS: ("review_comment_list_response.json", "comments"),
    CHAT_HISTORY: ("chat_history_v3_response.json", "messages"),
    PRODUCT_INFO: ("product_info_list_response.json", "items"),
}


def allowed(operation: str, deviations=EMULATOR_DEVIATIONS) -> list[str]:
    return [d.error for d in deviations if d.operation == operation]


def missing_keys(record: Any, example: Any, path: str = "$") -> list[str]:
    """Paths of the keys `example` has and `record` lacks, nested objects and list items included
    (each item of a list against the example's first; nothing is compared where either is null)."""
    if isinstance(example, dict) and isinstance(record, dict):
        out = [f"{path}.{key}" for key in example if key not in record]
        for key, value in example.items():
            if key in record:
                out += missing_keys(record[key], value, f"{path}.{key}")
        return out
    if isinstance(example, list) and isinstance(record, list) and example:
        return [miss for k, item in enumerate(record) for miss in missing_keys(item, example[0], f"{path}[{k}]")]
    return []


# -- what the emulator serves -----------------------------------------------------------------------

class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Served:
    """Every answer collected: operation -> [(HTTP status, body)]."""

    answers: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)

    def add(self, operation: str, response: httpx.Response) -> Any:
        body = response.json()
        self.answers.setdefault(operation, []).append((response.status_code, body))
        return body

    def records(self, operation: str, key: str) -> list[dict[str, Any]]:
        return [r for status, body in self.answers.get(operation, ()) if status == 200 for r in body[key]]

    def errors(self) -> list[tuple[str, int, Any]]:
        return [(op, status, body) for op, answers in self.answers.items() for status, body in answers
                if status != 200]


def make(**config: Any):
    config = {"seed": 5, "orders": 700, "reviews": 320, "history_days": 70, "now": NOW, "clock": Clock(NOW),
              "client_id": "42", "token": "key-42", "rate_limits": False, **config}
    return create_app(EmulatorConfig(**config))


def client(app, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://oz",
                             headers=HEADERS if headers is None else headers)


async def page_through(c: httpx.AsyncClient, served: Served, operation: str, body: dict[str, Any],
                       cursor: str, items: str) -> None:
    """Every page of a list, following the cursor field `cursor` while has_next is true."""
    body = dict(body)
    while True:
        answer = served.add(operation, await c.post(operation.split(" ", 1)[1], json=body))
        if not answer.get("has_next"):
            return
        body[cursor] = answer[cursor]
        assert answer[items], "a page with has_next and nothing on it"


async def serve_postings(app, served: Served) -> None:
    clock = app.state.emulator.config.clock
    async with client(app) as c:
        for at in (NOW, NOW - timedelta(days=25)):  # two moments: every status shows up
            clock.at = at
            for blocks in (NO_BLOCKS, ALL_BLOCKS):
                flt = {"since": SINCE, "to": TO}
                await page_through(c, served, FBS, {"filter": flt, "limit": 100, "with": blocks}, "cursor", "postings")
                fbo_blocks = {k: v for k, v in blocks.items() if k != "barcodes"}
                await page_through(c, served, FBO, {"filter": flt, "limit": 100, "with": fbo_blocks},
                                   "cursor", "postings")
            changed = {"from": "2026-11-01T00:00:00Z", "to": TO}
            await page_through(c, served, FBS, {"filter": {"since": SINCE, "to": TO,
                                                           "last_changed_status_date": changed}, "limit": 50},
                               "cursor", "postings")
        clock.at = NOW


async def serve_reviews(app, served: Served) -> None:
    async with client(app) as c:
        await page_through(c, served, REVIEWS, {"limit": 100, "filters": {"status": "ALL", "order_status": "ALL"}},
                           "last_id", "reviews")
        for review in served.records(REVIEWS, "reviews"):
            offset = 0
            while True:  # the comment list ends on an empty page
                answer = served.add(COMMENTS, await c.post("/v1/review/comment/list", json={
                    "review_id": review["id"], "limit": 20, "offset": offset}))
                if not answer["comments"]:
                    break
                offset += len(answer["comments"])
        quiet = next(r for r in served.records(REVIEWS, "reviews") if not r["comments_amount"])
        served.add(COMMENT_CREATE, await c.post("/v1/review/comment/create", json={
            "review_id": quiet["id"], "text": "Спасибо за отзыв!", "mark_review_as_processed": True}))


async def serve_writes(app, served: Served) -> None:
    emu = app.state.emulator
    async with client(app) as c:
        for k in range(3):
            served.add(VOUCHER, await c.post("/v1/seller-actions/create/voucher", json={
                "title": f"Промокод {k} [ls:abc]", "date_start": "2026-11-21T00:00:00Z",
                "date_end": "2026-12-21T00:00:00Z", "budget": 500, "discount_type": "CURRENCY",
                "discount_value": 300, "voucher_parameters": {"count_codes": 1, "is_private": True, "type": "UNIQUE"},
                "user_ids": ["12345678"]}))
        served.add(ACTIONS, await c.post("/v1/seller-actions/list", json={"search": "[ls:", "limit": 2}))
        served.add(ACTIONS, await c.post("/v1/seller-actions/list", json={"search": "[ls:", "limit": 2, "offset": 2}))
        posting = emu.chat_eligible()[0]
        chat = served.add(CHAT_START, await c.post("/v1/chat/start", json={"posting_number": posting}))
        chat_id = chat["result"]["chat_id"]
        served.add(CHAT_SEND, await c.post("/v1/chat/send/message", json={"chat_id": chat_id, "text": "Здравствуйте!"}))
        emu.buyer_message(posting, "Спасибо, жду")
        served.add(CHAT_HISTORY, await c.post("/v3/chat/history", json={"chat_id": chat_id, "limit": 1}))
        served.add(CHAT_HISTORY, await c.post("/v3/chat/history", json={"chat_id": chat_id}))


async def serve_catalog(app, served: Served) -> None:
    """Product info by each kind of identifier, every product, as strings and as numbers."""
    products = app.state.data.products
    async with client(app) as c:
        served.add(PRODUCT_INFO, await c.post("/v3/product/info/list", json={
            "sku": [str(p.sku) for p in products] + ["1"]}))
        served.add(PRODUCT_INFO, await c.post("/v3/product/info/list", json={
            "offer_id": [products[0].offer_id], "sku": [products[1].sku]}))
        served.add(PRODUCT_INFO, await c.post("/v3/product/info/list", json={"product_id": ["1"]}))  # unknown: none


async def serve_errors(served: Served) -> None:
    """Each refusal the emulator has, on the operations where it happens."""
    app = make(orders=50, reviews=20)
    bad = {FBS: {"filter": {"since": SINCE, "to": TO}, "limit": 101}, FBO: {"filter": {"since": SINCE}, "limit": 5},
           REVIEWS: {"limit": 10}, COMMENTS: {"review_id": "nope", "limit": 20}, COMMENT_CREATE: {"review_id": "x"},
           VOUCHER: {"title": ""}, ACTIONS: {"limit": 0}, CHAT_START: {"posting_number": "nope"},
           CHAT_SEND: {"chat_id": "nope", "text": "x"}, CHAT_HISTORY: {"chat_id": "nope"},
           PRODUCT_INFO: {"sku": [str(k) for k in range(1001)]}}
    async with client(app) as c:
        for op, body in bad.items():
            served.add(op, await c.post(op.split(" ", 1)[1], json=body))
    for headers in ({}, {**HEADERS, "Api-Key": "wrong"}, {**HEADERS, "Client-Id": "shop"}):
        async with client(app, headers) as c:
            served.add(FBS, await c.post("/v4/posting/fbs/list", json={}))
    for status in (401, 403):
        async with client(make(orders=10, reviews=0, bad_key_status=status), {**HEADERS, "Api-Key": "x"}) as c:
            served.add(REVIEWS, await c.post("/v2/review/list", json={"limit": 20}))
    async with client(make(orders=10, reviews=5, reviews_subscription=False, premium=False)) as c:
        served.add(REVIEWS, await c.post("/v2/review/list", json={"limit": 20}))
        served.add(CHAT_START, await c.post("/v1/chat/start", json={"posting_number": "x"}))
    faults = tuple(Fault("/v3/posting/fbo/list", kind) for kind in ("rate_limit", "http_500", "http_503"))
    faults += (Fault("/v4/posting/fbs/list", "expired_token"),)
    async with client(make(orders=10, reviews=0, faults=faults)) as c:
        for _ in faults[:3]:
            served.add(FBO, await c.post("/v3/posting/fbo/list", json={"filter": {"since": SINCE, "to": TO},
                                                                      "limit": 5}))
        served.add(FBS, await c.post("/v4/posting/fbs/list", json={"filter": {"since": SINCE, "to": TO}, "limit": 5}))


@cache
def served() -> Served:
    async def run() -> Served:
        out, app = Served(), make()
        await serve_postings(app, out)
        await serve_reviews(app, out)
        await serve_writes(app, out)
        await serve_catalog(app, out)
        await serve_errors(out)
        return out

    return asyncio.run(run())


def error_status(operation: str, status: int) -> str:
    """The schema an error answer is held to: its status's, else `default`, else the 400 one (every
    Ozon error is the same `rpcStatus` object)."""
    responses = SCHEMAS.doc["operations"][operation]
    return next(s for s in (str(status), "default", "400") if s in responses)


# -- the tests --------------------------------------------------------------------------------------

@pytest.mark.parametrize("operation", [FBS, FBO, REVIEWS, COMMENTS, COMMENT_CREATE, VOUCHER, ACTIONS, CHAT_START,
                                       CHAT_SEND, CHAT_HISTORY, PRODUCT_INFO])
def test_every_answer_validates_against_the_official_schema(operation):
    answers = [body for status, body in served().answers[operation] if status == 200]
    assert answers
    errors = {line for body in answers for line in SCHEMAS.errors(operation, body, allow=allowed(operation))}
    assert errors == set()


def test_every_error_body_is_ozons_rpc_status():
    errors = served().errors()
    assert {status for _, status, _ in errors} >= {400, 401, 403, 404, 429, 500, 503}
    for operation, status, body in errors:
        assert SCHEMAS.errors(operation, body, error_status(operation, status)) == [], (operation, status, body)


def test_the_answers_cover_every_status_scheme_and_shape():
    s = served()
    fbs, fbo = s.records(FBS, "postings"), s.records(FBO, "postings")
    reviews, comments = s.records(REVIEWS, "reviews"), s.records(COMMENTS, "comments")
    every = {"awaiting_packaging", "awaiting_deliver", "delivering", "delivered", "cancelled"}
    assert len(fbs) >= 300 and len(fbo) >= 300 and len(reviews) >= 300 and len(comments) >= 200
    assert {p["status"] for p in fbs} == every and {p["status"] for p in fbo} == every
    assert {p["substatus"] for p in fbs} >= {"posting_created", "posting_in_carriage", "posting_on_way_to_city",
                                             "posting_delivered", "posting_canceled", "posting_returned_to_warehouse"}
    assert {p["substatus"] for p in fbo} >= {"posting_created", "posting_received", "posting_canceled"}
    rfbs = [p for p in fbs if p["tpl_integration_type"] != "ozon"]
    plain = [p for p in fbs if p["tpl_integration_type"] == "ozon"]
    assert rfbs and all(p["customer"] is not None for p in rfbs)
    assert any(p["customer"] is None for p in plain) and any(p["customer"] is not None for p in plain)
    assert any(p["cancellation"] for p in fbo) and any(p["cancellation"] is None for p in fbo)
    assert any(p["financial_data"] for p in fbs) and any(p["financial_data"] is None for p in fbs)
    assert any(p["analytics_data"] for p in fbo) and any(p["analytics_data"] is None for p in fbo)
    assert any(r["comments_amount"] for r in reviews) and any(not r["comments_amount"] for r in reviews)
    assert {r["status"] for r in reviews} == {"NEW", "VIEWED", "PROCESSED"}
    assert {r["order_status"] for r in reviews} == {"DELIVERED", "CANCELLED"}


def test_customer_id_is_a_number_and_fbo_cancellation_has_only_its_own_keys():
    s = served()
    customers = [p["customer"] for p in s.records(FBS, "postings") if p["customer"]]
    assert customers and all(type(c["customer_id"]) is int for c in customers)  # int64, as the v4 example
    cancelled = [p for p in s.records(FBO, "postings") if p["status"] == "cancelled"]
    assert cancelled and all(set(p["cancellation"]) == {"cancel_reason", "cancellation_initiator",
                                                        "cancellation_type"} for p in cancelled)
    assert all(p["cancel_reason_id"] > 0 for p in cancelled)  # the reason id is the posting's own


@pytest.mark.parametrize("operation", list(EXAMPLE_RECORDS))
def test_every_record_has_every_key_of_the_official_example(operation):
    example, key = EXAMPLE_RECORDS[operation]
    records = served().records(operation, key)
    assert records
    missing = Counter(m for record in records for m in missing_keys(record, load_fixture("ozon", example)[key][0]))
    assert missing == Counter()


@pytest.mark.parametrize(("operation", "producer", "dropped"),
                         [(FBS, "fbs_posting", "substatus"), (FBO, "fbo_posting", "created_at")])
def test_a_key_dropped_from_the_emulator_is_caught(monkeypatch, operation, producer, dropped):
    original = getattr(emulator_reads, producer)

    def without(*args: Any, **kwargs: Any) -> dict[str, Any]:
        record = original(*args, **kwargs)
        del record[dropped]
        return record

    monkeypatch.setattr(emulator_reads, producer, without)
    out = Served()

    async def one_page() -> None:
        async with client(make(orders=40, reviews=0)) as c:
            out.add(operation, await c.post(operation.split(" ", 1)[1], json={
                "filter": {"since": SINCE, "to": TO}, "limit": 20}))

    asyncio.run(one_page())
    example, key = EXAMPLE_RECORDS[operation]
    [record, *_] = out.records(operation, key)
    assert missing_keys(record, load_fixture("ozon", example)[key][0]) == [f"$.{dropped}"]


@pytest.mark.parametrize("deviation", EMULATOR_DEVIATIONS + FIXTURE_DEVIATIONS, ids=lambda d: d.error[:60])
def test_each_kept_deviation_is_what_its_official_example_shows(deviation):
    value: Any = load_fixture("ozon", deviation.example)
    for step in deviation.where:
        value = value[step]
    assert isinstance(value, deviation.value)


FIXTURES = [
    ("fbs_list_response.json", FBS), ("fbo_list_response.json", FBO), ("review_list_response.json", REVIEWS),
    ("review_list_v2_response_official_example.json", REVIEWS), ("review_comment_list_response.json", COMMENTS),
    ("review_comment_create_response.json", COMMENT_CREATE), ("seller_actions_create_voucher_response.json", VOUCHER),
    ("chat_history_v3_response.json", CHAT_HISTORY), ("product_info_list_response.json", PRODUCT_INFO),
]
ERROR_FIXTURES = ["error_429.json", "error_generic_schema.json", "error_429_product_import_official_example.json"]


@pytest.mark.parametrize(("name", "operation"), FIXTURES)
def test_the_ozon_fixtures_validate_with_only_their_own_quirks(name, operation):
    quirks = [d.error for d in EMULATOR_DEVIATIONS + FIXTURE_DEVIATIONS if d.operation == operation
              and d.example == name]
    assert SCHEMAS.errors(operation, load_fixture("ozon", name), allow=quirks) == []


@pytest.mark.parametrize("name", ERROR_FIXTURES)
def test_the_ozon_error_fixtures_are_rpc_status_bodies(name):
    quirks = [d.error for d in FIXTURE_DEVIATIONS if d.operation == "errors" and d.example == name]
    assert SCHEMAS.errors(COMMENTS, load_fixture("ozon", name), "default", allow=quirks) == []


NULL_SCALARS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/review/comment/list", {"review_id": None, "limit": 20, "offset": None, "sort_dir": None}),
    ("/v2/review/list", {"limit": 20, "last_id": None, "sort_dir": None, "filters": None}),
    ("/v4/posting/fbs/list", {"filter": {"since": SINCE, "to": TO, "statuses": None}, "limit": 5, "cursor": None,
                              "sort_dir": None, "with": None}),
    ("/v1/seller-actions/list", {"limit": 5, "offset": None, "search": None}),
]


@pytest.mark.parametrize(("path", "body"), NULL_SCALARS, ids=[p for p, _ in NULL_SCALARS])
def test_null_scalars_are_read_as_their_defaults_never_refused(path, body):
    """ozon.md §6: Ozon's grpc-gateway reads `null` for a scalar as its default (`"offset": null`
    is offset 0, as a public client sends it), so an emulator must never answer 400 for one."""
    app = make(orders=40, reviews=30)
    if path == "/v1/review/comment/list":
        reviews = app.state.data.reviews
        body = {**body, "review_id": reviews.review_id(0)}

    async def ask() -> httpx.Response:
        async with client(app) as c:
            return await c.post(path, json=body)

    response = asyncio.run(ask())
    assert response.status_code == 200, response.json()


def test_the_allow_lists_name_real_operations():
    known: set[str] = set(SCHEMAS.operations) | {"errors"}
    assert {d.operation for d in EMULATOR_DEVIATIONS + FIXTURE_DEVIATIONS} <= known
    assert all(re.compile(d.error) for d in EMULATOR_DEVIATIONS + FIXTURE_DEVIATIONS)
