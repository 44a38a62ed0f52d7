"""Ozon buyer chat writes: `/v1/chat/start` + `/v1/chat/send/message`, sent once, found again in
`/v3/chat/history`; the emulator enforces Premium, the FBO rule and the 72 h / 48 h windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import respx
from pydantic import SecretStr

from connectors.base import WriteRequest, WriteStatus
from connectors.errors import FatalApiError, RetriableApiError, StreamUnavailable
from connectors.ozon import OzonConnector
from connectors.ozon.client import OzonClient
from connectors.ozon.emulator import EmulatorConfig, Fault, create_app
from connectors.ozon.emulator_data import DAY, FBO, HOUR, US
from connectors.ozon.settings import PRODUCTION_HOSTS, OzonAccountSettings
from connectors.testing import FakeTime
from tests.conftest import load_fixture

pytestmark = pytest.mark.anyio

TOKEN, CLIENT_ID = "ozon-chat-sentinel-key", "1943881"
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
START, SEND, HISTORY = "/v1/chat/start", "/v1/chat/send/message", "/v3/chat/history"
TEXT = "Здравствуйте! Ваш заказ передан в доставку, ожидайте его завтра."


class Clock:
    """The emulator's "now", movable by a test."""

    def __init__(self) -> None:
        self.at = NOW

    def __call__(self) -> datetime:
        return self.at

    def set_us(self, us: int) -> None:
        self.at = datetime.fromtimestamp(us / US, UTC)


def make(time: FakeTime, *faults: Fault, clock: Clock | None = None, **config: Any) -> Any:
    return create_app(EmulatorConfig(seed=5, orders=300, reviews=20, now=NOW, clock=clock or (lambda: NOW),
                                     client_id=CLIENT_ID, token=TOKEN, faults=faults,
                                     monotonic=time.monotonic, **config))


def connector(app: Any, time: FakeTime) -> OzonConnector:
    account = OzonAccountSettings(name="main", token_env="X", token=SecretStr(TOKEN), client_id=CLIENT_ID,
                                  base_urls=dict.fromkeys(PRODUCTION_HOSTS, "http://emulator"),
                                  request_timeout_seconds=0.2)
    return OzonConnector(account, transport=httpx.ASGITransport(app=app), clock=time.monotonic, sleep=time.sleep)


def chat(posting: str, text: str | None = TEXT) -> WriteRequest:
    return WriteRequest(kind="send_chat_message", key=f"chat:{posting}", target=posting, text=text)


def posting_where(app: Any, test: Any) -> str:
    table, now = app.state.data.postings, int(NOW.timestamp() * US)
    return next(table.posting_number(i) for i in range(len(table)) if table.t0[i] <= now and test(table, i, now))


def seller_texts(app: Any, chat_id: str) -> list[list[str]]:
    return [m["data"] for m in app.state.chats[chat_id]["messages"] if m["user"]["type"] == "seller"]


def writes(app: Any) -> list[tuple[str, int, bool]]:
    return [(w["path"], w["status"], w["applied"]) for w in app.state.writes]


# --- sending ------------------------------------------------------------------------------------

async def test_a_message_is_sent_once_into_the_postings_chat_and_found_afterwards() -> None:
    time = FakeTime()
    app = make(time)
    posting = app.state.emulator.chat_eligible()[0]
    async with connector(app, time) as ozon:
        before = await ozon.find_done(chat(posting))
        result = await ozon.perform(chat(posting))
        after = await ozon.find_done(chat(posting))
    assert before is None
    assert result.status is WriteStatus.DONE and result.platform_ref
    chat_id = result.platform_ref
    assert list(app.state.chats) == [chat_id]  # three starts, one chat
    assert app.state.chats[chat_id]["posting_number"] == posting
    assert seller_texts(app, chat_id) == [[TEXT]]
    assert after is not None and after.status is WriteStatus.ALREADY_DONE and after.platform_ref == chat_id
    assert writes(app) == [(START, 200, True), (START, 200, True), (SEND, 200, True), (START, 200, True)]
    start_body, send_body = app.state.writes[1]["body"], app.state.writes[2]["body"]
    assert start_body == {"posting_number": posting}
    assert set(start_body) == set(load_fixture("ozon", "chat_start_request.json"))
    assert send_body == {"chat_id": chat_id, "text": TEXT}
    assert set(send_body) == set(load_fixture("ozon", "chat_send_message_request.json"))


async def test_an_empty_text_is_rejected_without_a_request() -> None:
    time = FakeTime()
    app = make(time)
    posting = app.state.emulator.chat_eligible()[0]
    async with connector(app, time) as ozon:
        result = await ozon.perform(chat(posting, "  \n "))
    assert result.status is WriteStatus.REJECTED and result.detail == "the message has no text"
    assert app.state.writes == []


@pytest.mark.parametrize(("length", "status"), [(1000, WriteStatus.DONE), (1001, WriteStatus.REJECTED)])
async def test_ozon_takes_at_most_1000_characters(length: int, status: WriteStatus) -> None:
    time = FakeTime()
    app = make(time)
    posting = app.state.emulator.chat_eligible()[0]
    async with connector(app, time) as ozon:
        result = await ozon.perform(chat(posting, "ж" * length))
    assert result.status is status
    [chat_id] = app.state.chats
    if status is WriteStatus.REJECTED:
        assert result.detail == "INVALID_ARGUMENT: invalid request: text must be 1..1000 characters"
        assert seller_texts(app, chat_id) == [] and writes(app)[-1] == (SEND, 400, False)
    else:
        assert seller_texts(app, chat_id) == [["ж" * 1000]]


# --- who may write when -------------------------------------------------------------------------

async def test_an_fbo_posting_is_refused_until_the_buyer_writes_then_for_48_hours() -> None:
    time, clock = FakeTime(), Clock()
    app = make(time, clock=clock)
    posting = posting_where(app, lambda t, i, now: t.scheme[i] == FBO)
    async with connector(app, time) as ozon:
        refused = await ozon.perform(chat(posting))
        found = await ozon.find_done(chat(posting))
        assert app.state.chats == {}
        chat_id = app.state.emulator.buyer_message(posting, "Когда привезут?")
        reply = await ozon.perform(chat(posting))
        clock.at = NOW + timedelta(hours=49)
        late = await ozon.perform(chat(posting, "Спасибо за ожидание"))
    assert refused.status is WriteStatus.REJECTED
    assert refused.detail == "FAILED_PRECONDITION: only the buyer can start a chat for an FBO posting"
    assert found is None
    assert reply.status is WriteStatus.DONE and reply.platform_ref == chat_id
    assert late.status is WriteStatus.REJECTED and "48 hours" in late.detail
    assert seller_texts(app, chat_id) == [[TEXT]]


async def test_a_chat_cannot_be_opened_outside_72_hours_of_payment_or_delivery() -> None:
    time = FakeTime()
    app = make(time)

    def closed(t: Any, i: int, now: int) -> bool:
        return t.scheme[i] != FBO and now - t.paid_at(i) > 3 * DAY and not t.chat_start_open(i, now)

    posting = posting_where(app, closed)
    assert posting not in app.state.emulator.chat_eligible()
    async with connector(app, time) as ozon:
        result = await ozon.perform(chat(posting))
        found = await ozon.find_done(chat(posting))
    assert result.status is WriteStatus.REJECTED and "72 hours after payment or delivery" in result.detail
    assert found is None and app.state.chats == {}
    assert writes(app) == [(START, 400, False), (START, 400, False)]


async def test_sending_closes_72_hours_after_delivery_and_a_buyer_message_reopens_it() -> None:
    time, clock = FakeTime(), Clock()
    app = make(time, clock=clock)
    table = app.state.data.postings
    posting = next(p for p in app.state.emulator.chat_eligible()
                   if table.delivered_at(table.index_of(p)) is not None)
    delivered = table.delivered_at(table.index_of(posting))
    async with connector(app, time) as ozon:
        first = await ozon.perform(chat(posting))
        clock.set_us(delivered + 3 * DAY + HOUR)
        closed = await ozon.perform(chat(posting, "Как вам покупка?"))
        app.state.emulator.buyer_message(posting, "Подскажите, как ухаживать?")
        clock.set_us(delivered + 3 * DAY + 2 * HOUR)
        answer = await ozon.perform(chat(posting, "Протирайте влажной тканью."))
    assert first.status is WriteStatus.DONE
    assert closed.status is WriteStatus.REJECTED and "72 hours after delivery" in closed.detail
    assert answer.status is WriteStatus.DONE and answer.platform_ref == first.platform_ref
    assert seller_texts(app, first.platform_ref) == [[TEXT], ["Протирайте влажной тканью."]]


async def test_an_unknown_posting_is_rejected() -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time) as ozon:
        result = await ozon.perform(chat("0000000000-0000-1"))
        found = await ozon.find_done(chat("0000000000-0000-1"))
    assert result.status is WriteStatus.REJECTED and result.detail == "NOT_FOUND: posting not found"
    assert found is None


async def test_without_premium_both_calls_raise_unavailable_and_nothing_is_written() -> None:
    time = FakeTime()
    app = make(time, premium=False)
    posting = app.state.emulator.chat_eligible()[0]
    async with connector(app, time) as ozon:
        with pytest.raises(StreamUnavailable) as checked:
            await ozon.find_done(chat(posting))
        with pytest.raises(StreamUnavailable) as sent:
            await ozon.perform(chat(posting))
    # Not REJECTED: the message is fine, the account lacks the plan; the outbox keeps it waiting.
    assert "Premium Plus or Premium Pro" in str(sent.value) and checked.value.status == 403
    assert app.state.chats == {} and writes(app) == [(START, 403, False), (START, 403, False)]


# --- lost answers -------------------------------------------------------------------------------

async def test_a_lost_send_answer_raises_and_find_done_sees_the_message() -> None:
    time = FakeTime()
    app = make(time, Fault(SEND, "apply_then_500"))
    posting = app.state.emulator.chat_eligible()[0]
    async with connector(app, time) as ozon:
        with pytest.raises(RetriableApiError):
            await ozon.perform(chat(posting))
        found = await ozon.find_done(chat(posting))
        other = await ozon.find_done(chat(posting, "Другой текст"))
    [chat_id] = app.state.chats
    assert found is not None and found.status is WriteStatus.ALREADY_DONE and found.platform_ref == chat_id
    assert other is None
    assert seller_texts(app, chat_id) == [[TEXT]]  # sent once: no retry after the 500
    assert [w for w in writes(app) if w[0] == SEND] == [(SEND, 500, True)]


async def test_a_lost_start_answer_is_not_retried_and_the_same_chat_is_used_later() -> None:
    time = FakeTime()
    app = make(time, Fault(START, "apply_then_500"))
    posting = app.state.emulator.chat_eligible()[0]
    async with connector(app, time) as ozon:
        with pytest.raises(RetriableApiError):
            await ozon.perform(chat(posting))
        assert writes(app) == [(START, 500, True)]  # once, and no message without a chat id
        found = await ozon.find_done(chat(posting))
        result = await ozon.perform(chat(posting))
    [chat_id] = app.state.chats
    assert found is None and result.status is WriteStatus.DONE and result.platform_ref == chat_id
    assert seller_texts(app, chat_id) == [[TEXT]]


async def test_the_buyers_own_words_do_not_count_as_sent() -> None:
    time = FakeTime()
    app = make(time)
    posting = app.state.emulator.chat_eligible()[0]
    app.state.emulator.buyer_message(posting, f"  {TEXT}  ")
    async with connector(app, time) as ozon:
        assert await ozon.find_done(chat(posting)) is None


async def test_find_done_follows_history_pages_to_an_older_message() -> None:
    time = FakeTime()
    app = make(time, requests_per_second=10_000)
    posting = app.state.emulator.chat_eligible()[0]
    async with connector(app, time) as ozon:
        sent = await ozon.perform(chat(posting))
        for k in range(1100):  # newer buyer messages push ours past the first 1000-message page
            app.state.emulator.buyer_message(posting, f"вопрос {k}")
        found = await ozon.find_done(chat(posting))
    pages = [body for _, path, body, _ in app.state.request_log if path == HISTORY]
    assert found is not None and found.status is WriteStatus.ALREADY_DONE and found.platform_ref == sent.platform_ref
    assert len(pages) == 2 and "from_message_id" not in pages[0]
    assert pages[1]["direction"] == "Backward" and int(pages[1]["from_message_id"]) > 0


# --- the client against Ozon's own example shapes (respx) ----------------------------------------

BASE = "https://ozon.test"


def client(time: FakeTime) -> OzonClient:
    account = OzonAccountSettings(name="main", token_env="X", token=SecretStr(TOKEN), client_id=CLIENT_ID,
                                  base_urls={"api": BASE})
    return OzonClient(account, clock=time.monotonic, sleep=time.sleep)


async def test_history_pages_with_string_and_number_ids_and_drops_repeats() -> None:
    first = load_fixture("ozon", "chat_history_v3_response.json")  # has_next true, string id
    repeat = dict(first["messages"][0])
    mine = {**repeat, "message_id": 3000000000817031941, "user": {"id": CLIENT_ID, "type": "seller"},
            "data": ["Добрый день!"]}
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(HISTORY).mock(side_effect=[
            httpx.Response(200, json=first),
            httpx.Response(200, json={"messages": [repeat, mine], "has_next": False}),
        ])
        ozon = client(FakeTime())
        messages = await ozon.chat_history("chat-1")
        await ozon.aclose()
    assert [m["message_id"] for m in messages] == ["3000000000817031942", 3000000000817031941]
    bodies = [orjson.loads(c.request.content) for c in route.calls]
    assert bodies[0] == {"chat_id": "chat-1", "direction": "Backward", "limit": 1000}
    assert bodies[1]["from_message_id"] == "3000000000817031942"


@pytest.mark.parametrize("page", [
    {"messages": [{"message_id": "3000000000817031942", "data": ["x"]}], "has_next": True},  # no progress
    {"messages": [{"message_id": "-1", "data": ["x"]}], "has_next": False},  # unusable id
    {"messages": "nope", "has_next": False},
])
async def test_unreadable_history_raises_rather_than_say_not_sent(page: dict[str, Any]) -> None:
    with respx.mock(base_url=BASE) as router:
        router.post(HISTORY).mock(return_value=httpx.Response(200, json=page))
        ozon = client(FakeTime())
        with pytest.raises(FatalApiError):
            # The first page of the no-progress case is new; the second repeats it.
            await ozon.chat_history("chat-1")
        await ozon.aclose()


async def test_a_send_answer_without_success_is_a_lost_answer_not_a_refusal() -> None:
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(SEND).mock(return_value=httpx.Response(200, json={"result": "queued"}))
        router.post(START).mock(return_value=httpx.Response(200, json={"result": {}}))
        ozon = client(FakeTime())
        with pytest.raises(RetriableApiError):
            await ozon.send_chat_message("chat-1", TEXT)
        with pytest.raises(FatalApiError):
            await ozon.start_chat("0132112277-0101-1")
        await ozon.aclose()
