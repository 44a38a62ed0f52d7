"""Ozon writes: review comments and promo-code vouchers, sent once, validated and applied by the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.base import WriteNotSupported, WriteRequest, WriteStatus
from connectors.errors import RetriableApiError, StreamUnavailable
from connectors.ozon import OzonConnector
from connectors.ozon.connector import voucher_body, voucher_mark
from connectors.ozon.emulator import EmulatorConfig, Fault, create_app
from connectors.ozon.emulator_data import US
from connectors.ozon.settings import PRODUCTION_HOSTS, OzonAccountSettings
from connectors.testing import FakeTime
from tests.conftest import load_fixture

pytestmark = pytest.mark.anyio

TOKEN, CLIENT_ID = "ozon-write-sentinel-key", "1943881"
NOW = datetime.now(UTC).replace(microsecond=0)  # vouchers are dated from the real "now"
CREATE = "/v1/review/comment/create"
VOUCHER = "/v1/seller-actions/create/voucher"
TEXT = load_fixture("ozon", "review_comment_create_request.json")["text"]


def make(time: FakeTime, *faults: Fault, **config: Any) -> Any:
    return create_app(EmulatorConfig(seed=9, orders=10, reviews=80, now=NOW, clock=lambda: NOW,
                                     client_id=CLIENT_ID, token=TOKEN, faults=faults,
                                     monotonic=time.monotonic, **config))


def connector(app: Any, time: FakeTime) -> OzonConnector:
    account = OzonAccountSettings(name="main", token_env="X", token=SecretStr(TOKEN), client_id=CLIENT_ID,
                                  base_urls=dict.fromkeys(PRODUCTION_HOSTS, "http://emulator"),
                                  request_timeout_seconds=0.2)
    return OzonConnector(account, transport=httpx.ASGITransport(app=app), clock=time.monotonic, sleep=time.sleep)


def review(app: Any, owner_comment: bool) -> str:
    reviews, now = app.state.data.reviews, int(NOW.timestamp() * US)
    return next(reviews.review_id(i) for i in range(reviews.visible_end(now))
                if any(c["is_owner"] for c in reviews.comments(i, now)) == owner_comment)


def reply(target: str, text: str | None = TEXT) -> WriteRequest:
    return WriteRequest(kind="reply_to_review", key=f"reply:{target}", target=target, text=text)


def promo(key: str = "promo:member-1:2026-08", **params: Any) -> WriteRequest:
    params = {"discount_value": 300, "valid_until": NOW + timedelta(days=30), "customer_id": "12345678",
              **params}
    return WriteRequest(kind="create_promo_code", key=key, target="member-1", params=params)


# --- review comments ------------------------------------------------------------------------

async def test_reply_is_sent_once_marked_processed_and_found_afterwards() -> None:
    time = FakeTime()
    app = make(time)
    target = review(app, owner_comment=False)
    async with connector(app, time) as ozon:
        before = await ozon.find_done(reply(target))
        result = await ozon.perform(reply(target))
        after = await ozon.find_done(reply(target))
    shape = load_fixture("ozon", "review_comment_create_request.json")
    assert before is None
    assert result.status is WriteStatus.DONE and result.platform_ref
    assert after is not None and after.status is WriteStatus.ALREADY_DONE and after.platform_ref == result.platform_ref
    [write] = app.state.writes
    assert write == {"method": "POST", "path": CREATE, "status": 200, "applied": True,
                     "body": {"review_id": target, "text": TEXT, "mark_review_as_processed": True}}
    assert set(write["body"]) <= set(shape)
    reviews = app.state.data.reviews
    assert reviews.status(reviews.index_of(target), int(NOW.timestamp() * US)) == "PROCESSED"


async def test_an_owner_comment_already_there_is_found() -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time) as ozon:
        found = await ozon.find_done(reply(review(app, owner_comment=True)))
    assert found is not None and found.status is WriteStatus.ALREADY_DONE and found.platform_ref


async def test_an_owner_comment_moderation_rejected_is_not_an_answer() -> None:
    """Found by the crash harness: such a review is stored unanswered, so its reply must really go out."""
    time = FakeTime()
    app = make(time)
    reviews, now = app.state.data.reviews, int(NOW.timestamp() * US)
    target = next(reviews.review_id(i) for i in range(reviews.visible_end(now))
                  if [c["is_rejected"] for c in reviews.comments(i, now) if c["is_owner"]] == [True])
    async with connector(app, time) as ozon:
        before = await ozon.find_done(reply(target))
        sent = await ozon.perform(reply(target))
        after = await ozon.find_done(reply(target))
    assert before is None
    assert sent.status is WriteStatus.DONE
    assert after is not None and after.platform_ref == sent.platform_ref


@pytest.mark.parametrize(("target", "text", "detail"), [
    ("00000000-0000-0000-0000-000000000000", TEXT, "NOT_FOUND: review not found"),
    (None, "   ", "INVALID_ARGUMENT: invalid request: text is required"),
    (None, "x" * 3001, "INVALID_ARGUMENT: invalid request: text must be at most 3000 characters"),
])
async def test_refusals_are_rejected_with_ozons_words(target: str | None, text: str, detail: str) -> None:
    time = FakeTime()
    app = make(time)
    target = target or review(app, owner_comment=False)
    async with connector(app, time) as ozon:
        result = await ozon.perform(reply(target, text))
        found = await ozon.find_done(reply(target, text))
    assert result.status is WriteStatus.REJECTED and result.detail == detail
    assert found is None
    assert [(w["status"], w["applied"]) for w in app.state.writes] == [(400 if "INVALID" in detail else 404, False)]


async def test_the_emulator_checks_field_types() -> None:
    time = FakeTime()
    app = make(time)
    headers = {"Client-Id": CLIENT_ID, "Api-Key": TOKEN}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://e", headers=headers) as c:
        no_id = await c.post(CREATE, json={"text": TEXT})
        bad_mark = await c.post(CREATE, json={"review_id": review(app, False), "text": TEXT,
                                              "mark_review_as_processed": "yes"})
        no_key = await c.post(CREATE, json={"review_id": "x", "text": TEXT}, headers={"Api-Key": ""})
    assert no_id.status_code == bad_mark.status_code == 400
    assert no_id.json() == {"code": 3, "message": "invalid request: review_id is required", "details": []}
    assert no_key.status_code == 401
    assert [w["applied"] for w in app.state.writes] == [False, False, False]


@pytest.mark.parametrize("kind", ["apply_then_timeout", "apply_then_500"])
async def test_a_lost_comment_answer_raises_after_one_write_and_is_found(kind: str) -> None:
    time = FakeTime()
    app = make(time, Fault(CREATE, kind, delay=5))
    target = review(app, owner_comment=False)
    async with connector(app, time) as ozon:
        with pytest.raises(RetriableApiError):
            await ozon.perform(reply(target))
        found = await ozon.find_done(reply(target))
    assert len(app.state.writes) == 1 and app.state.comments == [(target, TEXT)]
    assert found is not None and found.status is WriteStatus.ALREADY_DONE


async def test_without_the_subscription_a_reply_raises_unavailable() -> None:
    time = FakeTime()
    app = make(time, reviews_subscription=False)
    async with connector(app, time) as ozon:
        with pytest.raises(StreamUnavailable):
            await ozon.perform(reply("any"))


# --- promo codes ----------------------------------------------------------------------------

def test_the_voucher_body_follows_the_documented_request() -> None:
    request = promo(title="Спасибо, что вы с нами")
    body = voucher_body(request, NOW)
    shape = load_fixture("ozon", "seller_actions_create_voucher_request.json")
    assert set(body) == set(shape)
    assert body["voucher_parameters"] == {"count_codes": 1, "is_private": True, "type": "UNIQUE"}
    assert body["title"] == f"Спасибо, что вы с нами {voucher_mark(request.key)}"
    assert body["discount_type"] == "CURRENCY" and body["discount_value"] == 300 and body["budget"] == 300
    assert body["user_ids"] == ["12345678"] and body["date_end"].endswith("Z")
    long = voucher_body(promo(title="т" * 400), NOW)["title"]
    assert len(long) <= 256 and long.endswith(voucher_mark(request.key))
    assert voucher_body(promo(discount_type="PERCENT", discount_value="12.5", budget=5000), NOW)[
        "discount_value"] == 12.5


@pytest.mark.parametrize(("params", "detail"), [
    ({"discount_value": None}, "params.discount_value must be a positive number"),
    ({"discount_value": -5}, "params.discount_value must be a positive number"),
    ({"valid_until": None}, "params.valid_until must be a timezone-aware date-time"),
    ({"valid_until": "2026-13-01"}, "params.valid_until must be an ISO 8601 date-time"),
    ({"discount_type": "PERCENT"}, "params.discount_value must be at most 100 for PERCENT"),
    ({"discount_type": "PERCENT", "discount_value": 10}, "params.budget is required for a PERCENT voucher"),
    ({"customer_id": "ab12"}, "params.customer_id must be Ozon's numeric buyer id"),
])
async def test_bad_params_are_rejected_without_a_request(params: dict[str, Any], detail: str) -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time) as ozon:
        result = await ozon.perform(promo(**params))
    assert result.status is WriteStatus.REJECTED and result.detail == detail
    assert app.state.writes == []


async def test_promo_code_is_created_once_and_found_by_its_mark() -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time) as ozon:
        before = await ozon.find_done(promo())
        result = await ozon.perform(promo())
        after = await ozon.find_done(promo())
        other = await ozon.find_done(promo(key="promo:member-2:2026-08"))
    response = load_fixture("ozon", "seller_actions_create_voucher_response.json")
    assert before is None and other is None
    assert result.status is WriteStatus.DONE and result.platform_ref and set(response) == {"action_id"}
    assert after is not None and after.status is WriteStatus.ALREADY_DONE and after.platform_ref == result.platform_ref
    [write] = app.state.writes
    assert write["path"] == VOUCHER and write["status"] == 200 and write["body"]["user_ids"] == ["12345678"]
    [voucher] = app.state.vouchers
    assert voucher_mark(promo().key) in voucher["title"] and voucher["voucher_parameters"]["type"] == "UNIQUE"


async def test_ozon_refusals_of_a_voucher_are_rejected() -> None:
    time = FakeTime()
    app = make(time)
    past = promo(valid_from=NOW - timedelta(days=40), valid_until=NOW - timedelta(days=10))
    async with connector(app, time) as ozon:
        result = await ozon.perform(past)
    assert result.status is WriteStatus.REJECTED
    assert result.detail == "INVALID_ARGUMENT: invalid request: date_end must be after date_start and in the future"
    assert app.state.vouchers == [] and [w["status"] for w in app.state.writes] == [400]


async def test_a_lost_voucher_answer_raises_after_one_write_and_is_found() -> None:
    time = FakeTime()
    app = make(time, Fault(VOUCHER, "apply_then_timeout", delay=5))
    async with connector(app, time) as ozon:
        with pytest.raises(RetriableApiError):
            await ozon.perform(promo())
        found = await ozon.find_done(promo())
    assert len(app.state.writes) == 1 and len(app.state.vouchers) == 1
    assert found is not None and found.platform_ref == str(app.state.vouchers[0]["id"])


async def test_a_kind_the_connector_does_not_write_is_refused_before_any_call() -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time) as ozon:
        with pytest.raises(WriteNotSupported):
            await ozon.perform(WriteRequest(kind="ops_task", key="k", target="posting", text="hi"))
    assert app.state.writes == []
