"""Yandex Market review comments: perform sends once, the emulator validates and applies, find_done reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.base import MappingContext, Window, WriteNotSupported, WriteRequest, WriteStatus
from connectors.errors import RetriableApiError
from connectors.testing import FakeTime
from connectors.yandex_market import YandexMarketConnector
from connectors.yandex_market.emulator import EmulatorConfig, Fault, create_app
from connectors.yandex_market.limits import endpoint_groups
from connectors.yandex_market.settings import PRODUCTION_HOSTS, YandexMarketAccountSettings
from tests.conftest import load_fixture

pytestmark = pytest.mark.anyio

TOKEN, BUSINESS = "ym-write-sentinel-token", 12345
NOW = datetime(2026, 8, 19, 12, 0, tzinfo=UTC)
UPDATE = f"/v2/businesses/{BUSINESS}/goods-feedback/comments/update"
TEXT = load_fixture("yandex_market", "updateGoodsFeedbackComment.request.json")["comment"]["text"]


def make(time: FakeTime, *faults: Fault) -> Any:
    return create_app(EmulatorConfig(seed=4, business_id=BUSINESS, orders=40, reviews=60, now=NOW,
                                     clock=lambda: NOW, token=TOKEN, faults=faults, monotonic=time.monotonic))


def connector(app: Any, time: FakeTime) -> YandexMarketConnector:
    account = YandexMarketAccountSettings(
        name="main", token_env="X", token=SecretStr(TOKEN), business_id=BUSINESS,
        base_urls=dict.fromkeys(PRODUCTION_HOSTS, "http://emulator"), request_timeout_seconds=0.2)
    return YandexMarketConnector(account, transport=httpx.ASGITransport(app=app), clock=time.monotonic,
                                 sleep=time.sleep)


def feedback(app: Any, shop_comment: bool) -> str:
    table, now = app.state.data.reviews, int(NOW.timestamp())
    return next(str(table.ids[i]) for i in range(table.visible_end(now))
                if any(c["author"]["type"] == "BUSINESS" for c in table.comments(i, now)) == shop_comment)


def reply(target: str, text: str | None = TEXT) -> WriteRequest:
    return WriteRequest(kind="reply_to_review", key=f"reply:{target}", target=target, text=text)


def test_writing_a_comment_has_its_own_hourly_group() -> None:
    groups = endpoint_groups(BUSINESS)
    picked = next(g for g in groups if g.matches("api", UPDATE))
    listing = next(g for g in groups if g.matches("api", UPDATE.removesuffix("/update")))
    assert (picked.name, picked.rate.requests) == ("feedback_comment_update", 1000)
    assert listing.name == "feedback_comments"


async def test_reply_is_sent_once_applied_and_then_found() -> None:
    time = FakeTime()
    app = make(time)
    target = feedback(app, shop_comment=False)
    async with connector(app, time) as ym:
        before = await ym.find_done(reply(target))
        result = await ym.perform(reply(target))
        after = await ym.find_done(reply(target))
        raws = [r for p in [p async for p in ym.fetch("reviews", Window(NOW - timedelta(days=60), NOW))]
                for r in p.items]
    shape = load_fixture("yandex_market", "updateGoodsFeedbackComment.request.json")
    assert before is None
    assert result.status is WriteStatus.DONE and result.platform_ref
    assert after is not None and after.status is WriteStatus.ALREADY_DONE and after.platform_ref == result.platform_ref
    [write] = app.state.writes
    assert write == {"method": "POST", "path": UPDATE, "status": 200, "applied": True,
                     "body": {"feedbackId": int(target), "comment": {"text": TEXT}}}
    assert set(write["body"]) == set(shape) and set(write["body"]["comment"]) == set(shape["comment"])
    mine = next(r for r in raws if str(r["feedbackId"]) == target)
    assert mine["needReaction"] is False
    record = ym.map_record("reviews", mine, MappingContext("yandex_market", "main", buyer_key=lambda s: "h" + s))
    assert record.answered and record.answer_text == TEXT


async def test_the_created_comment_matches_the_documented_answer() -> None:
    time = FakeTime()
    app = make(time)
    target = int(feedback(app, shop_comment=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://e",
                                 headers={"Api-Key": TOKEN}) as c:
        answer = (await c.post(UPDATE, json={"feedbackId": target, "comment": {"text": TEXT}})).json()
        listed = (await c.post(UPDATE.removesuffix("/update"), json={"feedbackId": target})).json()
    documented = load_fixture("yandex_market", "updateGoodsFeedbackComment.response.json")
    assert set(answer) == set(documented) and set(answer["result"]) == set(documented["result"])
    assert answer["result"]["author"]["type"] == "BUSINESS" and answer["result"]["status"] == "UNMODERATED"
    assert listed["result"]["comments"][-1] == answer["result"]


async def test_a_shop_comment_already_there_is_found() -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time) as ym:
        found = await ym.find_done(reply(feedback(app, shop_comment=True)))
    assert found is not None and found.status is WriteStatus.ALREADY_DONE and found.platform_ref


LENGTH = "BAD_REQUEST: comment.text: length must be between 1 and 4096"
CONTACTS = "BAD_REQUEST: comment.text: must not contain contacts or links to other sites"


@pytest.mark.parametrize(("text", "detail"), [
    ("x" * 4097, LENGTH),
    ("", LENGTH),
    ("Пишите нам: shop@example.com", CONTACTS),
    ("Подробнее на https://example.com", CONTACTS),
])
async def test_text_the_platform_refuses_is_rejected_with_its_words(text: str, detail: str) -> None:
    time = FakeTime()
    app = make(time)
    target = feedback(app, shop_comment=False)
    async with connector(app, time) as ym:
        result = await ym.perform(reply(target, text))
        found = await ym.find_done(reply(target, text))
    assert result.status is WriteStatus.REJECTED and result.detail == detail
    assert found is None
    assert [(w["status"], w["applied"]) for w in app.state.writes] == [(400, False)]


async def test_an_unknown_feedback_is_rejected() -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time) as ym:
        result = await ym.perform(reply("999"))
        found = await ym.find_done(reply("999"))
        not_a_number = await ym.perform(reply("abc"))
    assert result.status is WriteStatus.REJECTED and result.detail == "NOT_FOUND: Feedback 999 not found"
    assert found is None and not_a_number.status is WriteStatus.REJECTED
    assert [w["status"] for w in app.state.writes] == [404]


async def test_the_emulator_checks_field_types() -> None:
    time = FakeTime()
    app = make(time)
    target = int(feedback(app, shop_comment=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://e",
                                 headers={"Api-Key": TOKEN}) as c:
        as_string = await c.post(UPDATE, json={"feedbackId": str(target), "comment": {"text": TEXT}})
        no_comment = await c.post(UPDATE, json={"feedbackId": target})
        bad_id = await c.post(UPDATE, json={"feedbackId": target, "comment": {"id": "1", "text": TEXT}})
        other_business = await c.post(UPDATE.replace(str(BUSINESS), "1"),
                                      json={"feedbackId": target, "comment": {"text": TEXT}})
        no_key = await c.post(UPDATE, json={"feedbackId": target, "comment": {"text": TEXT}},
                              headers={"Api-Key": "nope"})
    assert [r.status_code for r in (as_string, no_comment, bad_id, other_business, no_key)] == [400, 400, 400, 403, 401]
    assert as_string.json() == {"status": "ERROR", "errors": [{"code": "BAD_REQUEST",
                                                              "message": "feedbackId: must be an integer"}]}
    assert not any(w["applied"] for w in app.state.writes) and len(app.state.writes) == 5


@pytest.mark.parametrize("kind", ["apply_then_timeout", "apply_then_500"])
async def test_a_lost_answer_raises_after_one_write_and_find_done_sees_it(kind: str) -> None:
    time = FakeTime()
    app = make(time, Fault(UPDATE, kind, delay=5))
    target = feedback(app, shop_comment=False)
    async with connector(app, time) as ym:
        with pytest.raises(RetriableApiError):
            await ym.perform(reply(target))
        found = await ym.find_done(reply(target))
    assert len(app.state.writes) == 1 and app.state.writes[0]["applied"] is True
    assert found is not None and found.status is WriteStatus.ALREADY_DONE


async def test_a_420_on_the_write_is_waited_out_and_sent_again() -> None:
    time = FakeTime()
    app = make(time, Fault(UPDATE, "rate_limit", retry_after=3))
    target = feedback(app, shop_comment=False)
    async with connector(app, time) as ym:
        result = await ym.perform(reply(target))
    assert result.status is WriteStatus.DONE
    assert [w["status"] for w in app.state.writes] == [420, 200]


async def test_promo_codes_are_not_supported() -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time) as ym:
        with pytest.raises(WriteNotSupported):
            await ym.perform(WriteRequest(kind="create_promo_code", key="k", target="m"))
