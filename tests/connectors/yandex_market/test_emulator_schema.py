"""Every answer the Yandex Market emulator serves validates against Market's own OpenAPI schemas.

`tests/fixtures/specs/yandex_market.json` is transcribed from `yandex-market/yandex-market-partner-api`
(see its README); objects that list their properties are closed, so an unknown key fails too.
Hundreds of generated orders are checked at every step of their lives (every status and
substatus the emulator produces, every placement model), and the pages, reviews, comments,
chats and error bodies it serves, as served. No deviation from the schema is allowed: none is
needed (no official example shows Market itself deviating from these schemas).

The last tests prove the check has teeth: an emulator that drops a required key fails it.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.emulation import Fault
from connectors.yandex_market.client import market_time
from connectors.yandex_market.emulator import EmulatorConfig, create_app
from connectors.yandex_market.emulator_data import ACTIVE, ReviewTable
from connectors.yandex_market.emulator_orders import OFFERS, OrderTable
from tests.spec_schemas import SpecSchemas

pytestmark = pytest.mark.anyio
SCHEMAS = SpecSchemas("yandex_market")
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "yandex_market"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KEY = "ym-schema-key"
BUSINESS = 12345
ORDERS_OP = "POST /v1/businesses/{businessId}/orders"
BUYER_OP = "GET /v2/campaigns/{campaignId}/orders/{orderId}/buyer"
FEEDBACK_OP = "POST /v2/businesses/{businessId}/goods-feedback"
COMMENTS_OP = "POST /v2/businesses/{businessId}/goods-feedback/comments"
UPDATE_OP = "POST /v2/businesses/{businessId}/goods-feedback/comments/update"
CHATS_OP = "POST /v2/businesses/{businessId}/chats"
CHAT_NEW_OP = "POST /v2/businesses/{businessId}/chats/new"
CHAT_MESSAGE_OP = "POST /v2/businesses/{businessId}/chats/message"
CHAT_HISTORY_OP = "POST /v2/businesses/{businessId}/chats/history"
MAPPINGS_OP = "POST /v2/businesses/{businessId}/offer-mappings"
ORDERS, FEEDBACK, CHATS = f"/v1/businesses/{BUSINESS}/orders", f"/v2/businesses/{BUSINESS}/goods-feedback", \
    f"/v2/businesses/{BUSINESS}/chats"
# The same data seen as it moves on: early (most orders in progress), late (most finished).
MOMENTS = (NOW - timedelta(days=40), NOW - timedelta(days=20), NOW, NOW + timedelta(days=20))


def _app(at: datetime = NOW, **config: Any):
    settings = {"seed": 9, "business_id": BUSINESS, "orders": 600, "reviews": 300, "history_days": 60,
                "dbs_share": 0.35, "now": NOW, "clock": lambda: at, "token": KEY, "rate_limits": False, **config}
    return create_app(EmulatorConfig(**settings))


class Served:
    """Sends requests to an emulator and keeps every answer with the operation it answers."""

    def __init__(self, app: Any):
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ym",
                                      headers={"Api-Key": KEY})
        self.answers: list[tuple[str, int, Any]] = []

    async def __call__(self, op: str, path: str, *, method: str = "POST", **kwargs: Any) -> tuple[int, Any]:
        answer = await self.http.request(method, path, **kwargs)
        body = answer.json()
        self.answers.append((op, answer.status_code, body))
        return answer.status_code, body

    def errors(self) -> list[str]:
        return [f"{op} {status}: {e}" for op, status, body in self.answers
                for e in SCHEMAS.errors(op, body, status)]

    def count(self, op: str, status: int = 200) -> int:
        return sum(1 for o, s, _ in self.answers if (o, s) == (op, status))

    async def aclose(self) -> None:
        await self.http.aclose()


def _lifetime_errors(table: OrderTable) -> tuple[list[str], Counter[str]]:
    """Every order at every step of its life, 50 to a page (the schema's `maxItems`)."""
    records, seen = [], Counter()
    for i in range(len(table)):
        for step in table.history(i):
            record = table.record(i, step.at)
            records.append(record)
            delivery = record["delivery"]
            seen.update([f"status:{record.get('status')}", f"substatus:{record.get('substatus')}",
                         f"program:{record.get('programType')}", f"type:{delivery.get('type')}",
                         f"partner:{delivery.get('deliveryPartnerType')}", f"payment:{record.get('paymentType')}",
                         *(f"has:{k}" for k in ("courier", "pickup", "shipment") if k in delivery)])
            seen.update(f"item:{s['status']}" for item in record["items"] for s in item.get("itemStatuses", ()))
    errors = [e for k in range(0, len(records), 50)
              for e in SCHEMAS.errors(ORDERS_OP, {"orders": records[k: k + 50], "paging": {}})]
    return errors, seen


def test_every_order_at_every_step_of_its_life_is_a_business_order_dto():
    table = _app().state.data.orders
    errors, seen = _lifetime_errors(table)
    assert errors == []
    assert seen["status:DELIVERED"] > 300  # a few thousand records in all
    for status in ("UNPAID", "PENDING", "PROCESSING", "DELIVERY", "PICKUP", "DELIVERED", "CANCELLED", "RETURNED",
                   "PARTIALLY_RETURNED"):
        assert seen[f"status:{status}"], status
    for substatus in ("AWAIT_PAYMENT", "AWAIT_CONFIRMATION", "STARTED", "READY_TO_SHIP", "DELIVERY_SERVICE_RECEIVED",
                      "PICKUP_SERVICE_RECEIVED", "DELIVERY_SERVICE_DELIVERED", "USER_NOT_PAID", "USER_CHANGED_MIND",
                      "SHOP_FAILED", "USER_REFUSED_DELIVERY", "PICKUP_EXPIRED", "UNKNOWN"):
        assert seen[f"substatus:{substatus}"], substatus
    assert all(seen[f"program:{p}"] for p in ("FBS", "FBY", "DBS", "EXPRESS"))
    assert all(seen[k] for k in ("type:DELIVERY", "type:PICKUP", "partner:SHOP", "partner:YANDEX_MARKET",
                                 "payment:PREPAID", "payment:POSTPAID", "has:courier", "has:pickup", "has:shipment",
                                 "item:RETURNED", "item:REJECTED"))


def test_a_dbs_address_is_the_couriers_and_carries_no_recipient_or_phone():
    table = _app().state.data.orders
    dbs = [table.record(i, int(NOW.timestamp())) for i in range(len(table)) if table.program_of(i) == "DBS"]
    couriers = [o["delivery"]["courier"] for o in dbs if "courier" in o["delivery"]]
    assert couriers and all(set(c) == {"address", "region"} for c in couriers)
    assert not any("address" in o["delivery"] for o in dbs)
    assert not any({"recipient", "phone"} & set(c["address"]) for c in couriers)


async def _all_orders(served: Served, at: datetime, *, short: bool = False) -> int:
    """Page through every creation chunk of the history; the number of orders served."""
    total, day = 0, (at - timedelta(days=90)).date()
    while day <= at.date():
        body = {"dates": {"creationDateFrom": str(day), "creationDateTo": str(day + timedelta(days=30))}}
        token = None
        while True:
            params = {"limit": 50 if not short else 20, **({"page_token": token} if token else {})}
            status, page = await served(ORDERS_OP, ORDERS, params=params, json=body)
            assert status == 200, page
            total += len(page["orders"])
            token = page["paging"].get("nextPageToken")
            if not token:
                break
        day += timedelta(days=30)
    return total


async def _buyers(served: Served, app: Any, at: datetime) -> int:
    table, now = app.state.data.orders, int(at.timestamp())
    rows = range(table.visible_end(now))
    active = [i for i in rows if table.program_of(i) == "DBS" and table.state(i, now).status in ACTIVE][:40]
    refused = [i for i in rows if table.program_of(i) != "DBS"][:3]  # 400: DBS only
    for i in active + refused:
        await served(BUYER_OP, f"/v2/campaigns/{table.campaign_of(i)}/orders/{table.ids[i]}/buyer", method="GET")
    return len(active)


async def test_orders_and_buyers_served_at_every_moment_match_the_schema():
    buyers = 0
    for at in MOMENTS:
        app = _app(at, faults=(Fault(ORDERS, "short_page", times=None, probability=0.3),))
        served = Served(app)
        assert await _all_orders(served, at, short=True) == app.state.data.orders.visible_end(int(at.timestamp()))
        active = await _buyers(served, app, at)
        await served.aclose()
        assert served.errors() == []
        assert served.count(ORDERS_OP) > 10 and served.count(BUYER_OP) == active and served.count(BUYER_OP, 400) == 3
        buyers += active
    assert buyers > 50


async def _reviews(served: Served, at: datetime) -> list[dict[str, Any]]:
    out, token = [], None
    body = {"dateTimeFrom": market_time(at - timedelta(days=180)), "dateTimeTo": market_time(at + timedelta(days=1))}
    while True:
        status, page = await served(FEEDBACK_OP, FEEDBACK, params={"limit": 50, **({"page_token": token} if token
                                                                                  else {})}, json=body)
        assert status == 200, page
        out += page["result"]["feedbacks"]
        token = page["result"]["paging"].get("nextPageToken")
        if not token:
            return out


async def test_reviews_and_their_comments_match_the_schema():
    seen: Counter[str] = Counter()
    for at in MOMENTS[1:]:
        served = Served(_app(at))
        reviews = await _reviews(served, at)
        for review in reviews:
            seen.update(k for k in ("author", "media", "description") if k not in review)
            seen.update(f"media:{k}" for k in review.get("media", ()))
            seen["order"] += "orderId" in review["identifiers"]
            if review["statistics"]["commentsCount"]:
                await served(COMMENTS_OP, f"{FEEDBACK}/comments", json={"feedbackId": review["feedbackId"]})
        await served.aclose()
        assert served.errors() == []
        assert len(reviews) > 100 and served.count(COMMENTS_OP) > 30
    assert all(seen[k] for k in ("author", "media", "description", "media:photos", "media:videos", "order"))


async def test_comment_writes_and_the_comments_they_make_match_the_schema():
    app = _app()
    served = Served(app)
    reviews = app.state.data.reviews
    fid = reviews.ids[reviews.visible_end(int(NOW.timestamp())) - 1]
    url = f"{FEEDBACK}/comments/update"
    _, made = await served(UPDATE_OP, url, json={"feedbackId": fid, "comment": {"text": "Спасибо за отзыв!"}})
    comment_id = made["result"]["id"]
    await served(UPDATE_OP, url, json={"feedbackId": fid, "comment": {"text": "Ответ", "parentId": comment_id}})
    await served(UPDATE_OP, url, json={"feedbackId": fid, "comment": {"id": comment_id, "text": "Правка"}})
    status, listed = await served(COMMENTS_OP, f"{FEEDBACK}/comments", json={"feedbackId": fid})
    await served(UPDATE_OP, url, json={"feedbackId": fid, "comment": {"text": "x" * 4097}})  # 400
    await served(UPDATE_OP, url, json={"feedbackId": 1, "comment": {"text": "Спасибо"}})  # 404
    await served.aclose()
    assert served.errors() == []
    assert status == 200 and {c.get("parentId") for c in listed["result"]["comments"]} >= {None, comment_id}
    assert served.count(UPDATE_OP) == 3 and served.count(UPDATE_OP, 400) == served.count(UPDATE_OP, 404) == 1


async def test_chats_and_their_history_match_the_schema():
    app = _app()
    served = Served(app)
    table, now = app.state.data.orders, int(NOW.timestamp())
    order = table.ids[table.visible_end(now) - 1]
    returned = next(i for i in range(table.visible_end(now)) if table.index_of_return(table.return_id(i), now) == i
                    and table.program_of(i) != "DBS")
    for context in ({"type": "ORDER", "id": order}, {"type": "RETURN", "id": table.return_id(returned)}):
        _, made = await served(CHAT_NEW_OP, f"{CHATS}/new", json={"context": context})
        chat_id = made["result"]["chatId"]
        await served(CHAT_MESSAGE_OP, f"{CHATS}/message", params={"chatId": chat_id}, json={"message": "Здравствуйте!"})
        app.state.chats.add_message(chat_id, now + 60, "Спасибо")
        await served(CHAT_HISTORY_OP, f"{CHATS}/history", params={"chatId": chat_id, "limit": 1}, json={})
        await served(CHATS_OP, CHATS, params={"limit": 20}, json={"contexts": [context], "types": ["CHAT"]})
    app.state.chats.open(0, now, "DIRECT")  # a buyer's own chat: no order in its context
    await served(CHATS_OP, CHATS, params={"limit": 1}, json={})
    await served(CHAT_HISTORY_OP, f"{CHATS}/history", params={"chatId": 1}, json={})  # 404
    await served(CHAT_NEW_OP, f"{CHATS}/new", json={"context": {"type": "DIRECT", "id": order}})  # 400
    await served.aclose()
    assert served.errors() == []
    assert {(op, s) for op, s, _ in served.answers} == {
        (CHAT_NEW_OP, 200), (CHAT_MESSAGE_OP, 200), (CHAT_HISTORY_OP, 200), (CHATS_OP, 200),
        (CHAT_HISTORY_OP, 404), (CHAT_NEW_OP, 400)}


async def test_offer_mappings_by_offer_ids_and_paged_match_the_schema():
    app = _app()
    served = Served(app)
    url = f"/v2/businesses/{BUSINESS}/offer-mappings"
    reviewed = {r["identifiers"]["offerId"] for r in await _reviews(served, NOW)}
    _, by_ids = await served(MAPPINGS_OP, url, json={"offerIds": sorted(reviewed | {"SKU-NOT-SOLD"})})
    token, paged = None, []
    while True:
        _, page = await served(MAPPINGS_OP, url, params={"limit": 3, **({"page_token": token} if token else {})},
                               json={})
        paged += page["result"]["offerMappings"]
        token = page["result"].get("paging", {}).get("nextPageToken")
        if not token:
            break
    await served(MAPPINGS_OP, url, json={"offerIds": []})  # 400: 1..100
    await served(MAPPINGS_OP, url, params={"limit": 5}, json={"offerIds": ["SKU-MUG-350"]})  # 400: no paging with ids
    await served.aclose()
    assert served.errors() == []
    assert {m["offer"]["offerId"] for m in by_ids["result"]["offerMappings"]} == reviewed  # every reviewed offer
    assert len(paged) == len({m["offer"]["offerId"] for m in paged}) == len(OFFERS)  # each once
    assert served.count(MAPPINGS_OP) == 4 and served.count(MAPPINGS_OP, 400) == 2


async def test_error_bodies_match_each_operations_error_schemas():
    app = _app(limits={"orders": 1}, rate_limits=True)
    served = Served(app)
    bad_dates = {"dates": {"creationDateFrom": "2026-01-01", "creationDateTo": "2026-03-01"}}
    await served(ORDERS_OP, ORDERS, json=bad_dates)  # 400 (and the hour's only request)
    await served(ORDERS_OP, ORDERS, json={})  # 420: the budget is spent
    served.http.headers["Api-Key"] = "wrong"
    for op, path in ((ORDERS_OP, ORDERS), (FEEDBACK_OP, FEEDBACK), (COMMENTS_OP, f"{FEEDBACK}/comments"),
                     (UPDATE_OP, f"{FEEDBACK}/comments/update"), (CHATS_OP, CHATS), (CHAT_NEW_OP, f"{CHATS}/new"),
                     (CHAT_MESSAGE_OP, f"{CHATS}/message"), (CHAT_HISTORY_OP, f"{CHATS}/history"),
                     (MAPPINGS_OP, f"/v2/businesses/{BUSINESS}/offer-mappings")):
        await served(op, path, json={})  # 401
    await served(BUYER_OP, "/v2/campaigns/1/orders/1/buyer", method="GET")  # 401
    served.http.headers["Api-Key"] = KEY
    await served(FEEDBACK_OP, "/v2/businesses/999/goods-feedback", json={})  # 403
    await served(BUYER_OP, "/v2/campaigns/1/orders/1/buyer", method="GET")  # 404
    await served.aclose()
    assert served.errors() == []
    statuses = Counter(s for _, s, _ in served.answers)
    assert statuses[401] == 10 and statuses[400] == statuses[403] == statuses[404] == 1 and statuses[420] >= 1


@pytest.mark.parametrize(("name", "op", "status"), [
    ("getBusinessOrders.response.json", ORDERS_OP, 200),
    ("getBusinessOrders.partially_returned.response.json", ORDERS_OP, 200),
    ("getOrderBuyerInfo.response.json", BUYER_OP, 200),
    ("getGoodsFeedbacks.response.json", FEEDBACK_OP, 200),
    ("getGoodsFeedbackComments.response.json", COMMENTS_OP, 200),
    ("updateGoodsFeedbackComment.response.json", UPDATE_OP, 200),
    ("error_401.response.json", ORDERS_OP, 401),
    ("error_420.response.json", ORDERS_OP, 420),
])
def test_the_fixtures_match_the_schema(name, op, status):
    assert SCHEMAS.errors(op, json.loads((FIXTURES / name).read_text(encoding="utf-8")), status) == []


def test_every_response_fixture_is_checked():
    checked = {"getBusinessOrders.response.json", "getBusinessOrders.partially_returned.response.json",
               "getOrderBuyerInfo.response.json", "getGoodsFeedbacks.response.json",
               "getGoodsFeedbackComments.response.json", "updateGoodsFeedbackComment.response.json",
               "error_401.response.json", "error_420.response.json",
               "getOrders_deprecated.response.json"}  # the deprecated getOrders: not a transcribed operation
    assert {p.name for p in FIXTURES.glob("*.response.json")} == checked


# -- the check has teeth: an emulator that drops a required key fails it ------------------------------

def _dropping(original, *path: str):
    def record(self, i: int, now: int) -> dict[str, Any]:
        out = original(self, i, now)
        target = out
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return out
    return record


@pytest.mark.parametrize(("path", "message"), [
    (("substatus",), "'substatus' is a required property"),
    (("delivery", "deliveryServiceId"), "'deliveryServiceId' is a required property"),
    (("delivery", "deliveryPartnerType"), "'deliveryPartnerType' is a required property"),
    (("paymentMethod",), "'paymentMethod' is a required property"),
])
def test_an_order_without_a_required_key_fails(monkeypatch, path, message):
    monkeypatch.setattr(OrderTable, "record", _dropping(OrderTable.record, *path))
    errors, _ = _lifetime_errors(_app(orders=40).state.data.orders)
    assert errors and all(message in e for e in errors)


async def test_a_review_without_a_required_key_fails(monkeypatch):
    monkeypatch.setattr(ReviewTable, "record", _dropping(ReviewTable.record, "needReaction"))
    served = Served(_app())
    reviews = await _reviews(served, NOW)
    await served.aclose()
    # Each review is named once; the envelope's allOf then also reports `result` as unevaluated.
    assert sum("'needReaction' is a required property" in e for e in served.errors()) == len(reviews) > 100
