"""WB review replies: perform sends once, the emulator validates and applies, find_done reads it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.base import MappingContext, Window, WriteNotSupported, WriteRequest, WriteStatus
from connectors.errors import AuthError, RetriableApiError
from connectors.testing import FakeTime
from connectors.wildberries import WildberriesConnector
from connectors.wildberries.emulator import EmulatorConfig, Fault, create_app
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings
from tests.conftest import load_fixture

pytestmark = pytest.mark.anyio

TOKEN = "wb-write-sentinel-token"  # noqa: S105 - a fake token
NOW = datetime(2026, 8, 19, 12, 0, tzinfo=UTC)
ANSWER = "/api/v1/feedbacks/answer"
TEXT = load_fixture("wildberries", "feedback_answer.request.json")["text"]


def make(time: FakeTime, *faults: Fault) -> Any:
    return create_app(EmulatorConfig(seed=5, orders=10, reviews=60, now=NOW, clock=lambda: NOW, token=TOKEN,
                                     faults=faults, monotonic=time.monotonic))


def connector(app: Any, time: FakeTime, token: str = TOKEN) -> WildberriesConnector:
    account = WildberriesAccountSettings(
        name="main", token_env="X", token=SecretStr(token),
        base_urls=dict.fromkeys(PRODUCTION_HOSTS, "http://emulator"), request_timeout_seconds=0.2)
    return WildberriesConnector(account, transport=httpx.ASGITransport(app=app), clock=time.monotonic,
                                sleep=time.sleep)


def feedback(app: Any, answered: bool) -> str:
    reviews, now = app.state.data.reviews, int(NOW.timestamp())
    return next(reviews.review_id(i) for i in range(len(reviews))
                if reviews.created[i] <= now and (reviews.answer_text(i, now) is not None) == answered)


def reply(target: str, text: str | None = TEXT) -> WriteRequest:
    return WriteRequest(kind="reply_to_review", key=f"reply:{target}", target=target, text=text)


async def test_reply_is_sent_once_applied_and_then_found() -> None:
    time = FakeTime()
    app = make(time)
    target = feedback(app, answered=False)
    async with connector(app, time) as wb:
        before = await wb.find_done(reply(target))
        result = await wb.perform(reply(target))
        after = await wb.find_done(reply(target))
        window = Window(NOW - timedelta(days=61), NOW)
        raws = [r for page in [p async for p in wb.fetch("reviews", window)] for r in page.items]
    assert before is None
    assert result.status is WriteStatus.DONE and result.platform_ref == target
    assert after is not None and after.status is WriteStatus.ALREADY_DONE and after.platform_ref == target
    assert app.state.writes == [{"method": "POST", "path": ANSWER, "body": {"id": target, "text": TEXT},
                                 "status": 204, "applied": True}]
    mine = next(r for r in raws if r["id"] == target)
    record = wb.map_record("reviews", mine, MappingContext("wildberries", "main"))
    assert record.answered and record.answer_text == TEXT


async def test_an_answered_feedback_is_never_answered_again() -> None:
    time = FakeTime()
    app = make(time)
    target = feedback(app, answered=True)
    async with connector(app, time) as wb:
        result = await wb.perform(reply(target))
    assert result.status is WriteStatus.ALREADY_DONE and result.platform_ref == target
    assert app.state.writes == []  # a person's answer is never overwritten


async def test_the_emulator_refuses_a_second_answer_like_wb() -> None:
    time = FakeTime()
    app = make(time)
    target = feedback(app, answered=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emulator",
                                 headers={"Authorization": TOKEN}) as c:
        response = await c.post(ANSWER, json={"id": target, "text": TEXT})
    body = response.json()
    assert response.status_code == 400 and body["error"] is True and "already has an answer" in body["errorText"]
    assert app.state.writes[0]["status"] == 400 and app.state.writes[0]["applied"] is False


@pytest.mark.parametrize(("text", "message"), [
    ("x" * 5001, "text must be 2..5000 characters"),
    ("!", "text must be 2..5000 characters"),
])
async def test_text_outside_the_limits_is_rejected_with_wbs_words(text: str, message: str) -> None:
    time = FakeTime()
    app = make(time)
    target = feedback(app, answered=False)
    async with connector(app, time) as wb:
        result = await wb.perform(reply(target, text))
        after = await wb.find_done(reply(target, text))
    assert result.status is WriteStatus.REJECTED and result.detail == message
    assert after is None
    assert [w["status"] for w in app.state.writes] == [400]


async def test_an_unknown_feedback_is_rejected_before_anything_is_sent() -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time) as wb:
        found = await wb.find_done(reply("NoSuchFeedback000000"))
        result = await wb.perform(reply("NoSuchFeedback000000"))
    assert found is None
    assert result.status is WriteStatus.REJECTED and result.detail == "Невозможно получить отзыв по id"
    assert app.state.writes == []  # WB would have accepted (204) an unknown id without a word


async def test_a_reply_without_text_is_rejected_locally() -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time) as wb:
        result = await wb.perform(reply(feedback(app, answered=False), None))
    assert result.status is WriteStatus.REJECTED and app.state.writes == []


@pytest.mark.parametrize("kind", ["apply_then_timeout", "apply_then_500"])
async def test_a_lost_answer_raises_after_one_write_and_find_done_sees_it(kind: str) -> None:
    time = FakeTime()
    app = make(time, Fault(ANSWER, kind, delay=5))
    target = feedback(app, answered=False)
    async with connector(app, time) as wb:
        with pytest.raises(RetriableApiError):
            await wb.perform(reply(target))
        found = await wb.find_done(reply(target))
    assert len(app.state.writes) == 1 and app.state.writes[0]["applied"] is True
    assert app.state.answers == [(target, TEXT)]
    assert found is not None and found.status is WriteStatus.ALREADY_DONE


async def test_a_500_before_applying_leaves_nothing_to_find() -> None:
    time = FakeTime()
    app = make(time, Fault(ANSWER, "http_500"))
    target = feedback(app, answered=False)
    async with connector(app, time) as wb:
        with pytest.raises(RetriableApiError):
            await wb.perform(reply(target))
        assert await wb.find_done(reply(target)) is None
        again = await wb.perform(reply(target))
    assert again.status is WriteStatus.DONE
    assert [(w["status"], w["applied"]) for w in app.state.writes] == [(500, False), (204, True)]


async def test_a_429_on_the_answer_is_waited_out_and_sent_again() -> None:
    time = FakeTime()
    app = make(time, Fault(ANSWER, "rate_limit", retry_after=2))
    target = feedback(app, answered=False)
    async with connector(app, time) as wb:
        result = await wb.perform(reply(target))
    assert result.status is WriteStatus.DONE
    assert [w["status"] for w in app.state.writes] == [429, 204]
    assert time.waited >= 2


async def test_a_wrong_token_raises_instead_of_rejecting() -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time, token="wrong") as wb:
        with pytest.raises(AuthError):
            await wb.perform(reply(feedback(app, answered=False)))


async def test_promo_codes_are_not_supported() -> None:
    time = FakeTime()
    app = make(time)
    request = WriteRequest(kind="create_promo_code", key="k", target="member")
    async with connector(app, time) as wb:
        with pytest.raises(WriteNotSupported):
            await wb.perform(request)
        with pytest.raises(WriteNotSupported):
            await wb.find_done(request)
