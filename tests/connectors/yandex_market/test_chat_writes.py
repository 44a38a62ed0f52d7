"""Yandex Market chat messages: perform finds or opens the order's chat and sends once, the emulator
validates and applies, find_done reads the chat's history for the shop's own words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.base import RateOverride, WriteRequest, WriteStatus
from connectors.errors import FatalApiError, RetriableApiError
from connectors.testing import FakeTime
from connectors.yandex_market import YandexMarketConnector
from connectors.yandex_market.emulator import EmulatorConfig, Fault, create_app
from connectors.yandex_market.limits import endpoint_groups
from connectors.yandex_market.settings import PRODUCTION_HOSTS, YandexMarketAccountSettings

pytestmark = pytest.mark.anyio

TOKEN, BUSINESS = "ym-chat-sentinel-token", 12345
NOW = datetime(2026, 8, 19, 12, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
CHATS = f"/v2/businesses/{BUSINESS}/chats"
TEXT = "Спасибо за заказ! Если будут вопросы по товару, пишите сюда."


def make(time: FakeTime, *faults: Fault, history_page: int = 100) -> Any:
    return create_app(EmulatorConfig(seed=4, business_id=BUSINESS, orders=40, reviews=10, now=NOW,
                                     clock=lambda: NOW, token=TOKEN, faults=faults, monotonic=time.monotonic,
                                     chat_history_page=history_page))


def connector(app: Any, time: FakeTime, **settings: Any) -> YandexMarketConnector:
    transport = app if isinstance(app, httpx.AsyncBaseTransport) else httpx.ASGITransport(app=app)
    account = YandexMarketAccountSettings(
        name="main", token_env="X", token=SecretStr(TOKEN), business_id=BUSINESS,
        base_urls=dict.fromkeys(PRODUCTION_HOSTS, "http://emulator"), request_timeout_seconds=0.2, **settings)
    return YandexMarketConnector(account, transport=transport, clock=time.monotonic, sleep=time.sleep)


def an_order(app: Any, k: int = 0) -> int:
    table = app.state.data.orders
    return int(table.ids[k])


def chat(target: int | str, text: str | None = TEXT, **params: Any) -> WriteRequest:
    return WriteRequest(kind="send_chat_message", key=f"chat:{target}:{text}", target=str(target), text=text,
                        params=params)


def paths(app: Any) -> list[str]:
    return [p.removeprefix(CHATS) or "/" for _, p, _, _ in app.state.request_log]


def test_every_chat_call_is_in_the_1000_per_hour_chats_group() -> None:
    groups = endpoint_groups(BUSINESS)
    for suffix in ("", "/new", "/message", "/history"):
        picked = next(g for g in groups if g.matches("api", CHATS + suffix))
        assert (picked.name, picked.rate.requests, picked.rate.period_seconds) == ("chats", 1000, 3600.0)
    assert next(g for g in groups if g.matches("api", f"/v2/businesses/{BUSINESS}/goods-feedback")).name \
        == "feedbacks"


async def test_the_chats_group_paces_the_calls_of_one_message() -> None:
    time = FakeTime()
    app = make(time)
    one_a_minute = {"chats": RateOverride(requests=60, period_seconds=3600, burst=1)}
    async with connector(app, time, rate_limits=one_a_minute) as ym:
        result = await ym.perform(chat(an_order(app)))
        groups = {group for group, _ in ym.client.http.stats.requests}
    assert result.status is WriteStatus.DONE
    assert paths(app) == ["/", "/new", "/message"]
    # getChats takes the one token; chats/new and chats/message each wait a minute for the next.
    assert time.waited == pytest.approx(120, abs=1)
    assert groups == {"chats"}


async def test_perform_opens_the_order_chat_and_sends_once() -> None:
    time = FakeTime()
    app = make(time)
    order = an_order(app)
    async with connector(app, time) as ym:
        before = await ym.find_done(chat(order))
        result = await ym.perform(chat(order))
        after = await ym.find_done(chat(order))
    assert before is None
    assert result.status is WriteStatus.DONE and result.platform_ref
    chat_id = int(result.platform_ref)
    opened = app.state.chats.chats[chat_id]
    assert opened["context"]["type"] == "ORDER" and opened["context"]["orderId"] == order
    assert [(m["sender"], m["message"]) for m in opened["messages"]] == [("PARTNER", TEXT)]
    assert app.state.writes == [
        {"method": "POST", "path": CHATS + "/new", "body": {"context": {"type": "ORDER", "id": order}},
         "status": 200, "applied": True},
        {"method": "POST", "path": CHATS + "/message", "body": {"message": TEXT}, "status": 200, "applied": True},
    ]
    sent = next(q for _, p, q, _ in app.state.request_log if p == CHATS + "/message")
    assert f"chatId={chat_id}" in sent
    assert after is not None and after.status is WriteStatus.ALREADY_DONE and after.platform_ref == str(chat_id)


async def test_a_second_message_reuses_the_chat() -> None:
    time = FakeTime()
    app = make(time)
    order = an_order(app)
    async with connector(app, time) as ym:
        first = await ym.perform(chat(order))
        second = await ym.perform(chat(order, "Посылка уже в пункте выдачи."))
        other = await ym.perform(chat(an_order(app, 1)))
    assert first.status is second.status is other.status is WriteStatus.DONE
    assert second.platform_ref == first.platform_ref and other.platform_ref != first.platform_ref
    assert [w["path"].removeprefix(CHATS) for w in app.state.writes] == ["/new", "/message", "/message",
                                                                          "/new", "/message"]
    assert [m["message"] for m in app.state.chats.chats[int(first.platform_ref)]["messages"]] == [
        TEXT, "Посылка уже в пункте выдачи."]


async def test_a_return_chat_is_opened_for_the_return() -> None:
    time = FakeTime()
    app = make(time)
    table = app.state.data.orders
    i = next(i for i in range(table.visible_end(NOW_TS)) if table.program_of(i) != "DBS"
             and table.state(i, NOW_TS).status in ("RETURNED", "PARTIALLY_RETURNED"))
    request = chat(table.ids[i], context="RETURN", return_id=table.return_id(i))
    async with connector(app, time) as ym:
        result = await ym.perform(request)
        found = await ym.find_done(request)
        as_order = await ym.find_done(chat(table.ids[i]))
    assert result.status is WriteStatus.DONE
    context = app.state.chats.chats[int(result.platform_ref)]["context"]
    assert (context["type"], context["returnId"], context["orderId"]) == ("RETURN", table.return_id(i), table.ids[i])
    assert app.state.writes[0]["body"] == {"context": {"type": "RETURN", "id": table.return_id(i)}}
    assert found is not None and found.platform_ref == result.platform_ref
    assert as_order is None  # the order's own chat is another chat, and it was never opened


@pytest.mark.parametrize(("params", "text", "detail"), [
    ({"context": "DIRECT"}, TEXT, "only the buyer can start a DIRECT chat on Market"),
    ({"context": "RETURN"}, TEXT, "a RETURN chat needs params.return_id, a Market return id (a number)"),
    ({}, "   ", "a chat message needs text"),
    ({}, None, "a chat message needs text"),
])
async def test_what_market_would_refuse_is_rejected_without_a_call(params: dict[str, Any], text: str | None,
                                                                   detail: str) -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time) as ym:
        result = await ym.perform(chat(an_order(app), text, **params))
        not_a_number = await ym.perform(chat("A-123"))
    assert result.status is WriteStatus.REJECTED and result.detail == detail
    assert not_a_number.status is WriteStatus.REJECTED
    assert app.state.request_log == []


async def test_an_unknown_order_is_rejected_with_markets_words() -> None:
    time = FakeTime()
    app = make(time)
    async with connector(app, time) as ym:
        result = await ym.perform(chat(999))
        found = await ym.find_done(chat(999))
    assert result.status is WriteStatus.REJECTED and result.detail == "NOT_FOUND: Order 999 not found"
    assert found is None
    assert [(w["path"], w["status"], w["applied"]) for w in app.state.writes] == [(CHATS + "/new", 404, False)]


async def test_a_message_over_4096_characters_is_rejected_by_market() -> None:
    time = FakeTime()
    app = make(time)
    order = an_order(app)
    async with connector(app, time) as ym:
        longest = await ym.perform(chat(order, "я" * 4096))
        too_long = await ym.perform(chat(order, "я" * 4097))
    assert longest.status is WriteStatus.DONE
    assert too_long.status is WriteStatus.REJECTED
    assert too_long.detail == "BAD_REQUEST: message: length must be between 1 and 4096"
    assert [w["status"] for w in app.state.writes] == [200, 200, 400]
    assert len(app.state.chats.chats[int(longest.platform_ref)]["messages"]) == 1


@pytest.mark.parametrize("kind", ["apply_then_500", "apply_then_timeout"])
async def test_a_lost_answer_is_sent_once_and_then_found(kind: str) -> None:
    time = FakeTime()
    app = make(time, Fault(CHATS + "/message", kind, delay=5))
    order = an_order(app)
    async with connector(app, time) as ym:
        with pytest.raises(RetriableApiError):
            await ym.perform(chat(order))
        found = await ym.find_done(chat(order))
    messages = [w for w in app.state.writes if w["path"] == CHATS + "/message"]
    assert len(messages) == 1 and messages[0]["applied"] is True  # no retry of a non-idempotent write
    [chat_id] = app.state.chats.chats
    assert found is not None and found.status is WriteStatus.ALREADY_DONE and found.platform_ref == str(chat_id)


async def test_a_lost_chat_answer_leaves_nothing_done_and_the_chat_is_reused() -> None:
    time = FakeTime()
    app = make(time, Fault(CHATS + "/new", "apply_then_500"))
    order = an_order(app)
    async with connector(app, time) as ym:
        with pytest.raises(RetriableApiError):
            await ym.perform(chat(order))
        found = await ym.find_done(chat(order))  # the chat is there, the message is not
        result = await ym.perform(chat(order))
    [chat_id] = app.state.chats.chats
    assert found is None and result.status is WriteStatus.DONE and result.platform_ref == str(chat_id)
    assert [w["path"].removeprefix(CHATS) for w in app.state.writes] == ["/new", "/message"]


async def test_find_done_needs_the_shops_own_words() -> None:
    time = FakeTime()
    app = make(time)
    order = an_order(app)
    async with connector(app, time) as ym:
        no_chat = await ym.find_done(chat(order))
        history_calls = paths(app).count("/history")
        await ym.perform(chat(order, "Другое сообщение"))
        chat_id = next(iter(app.state.chats.chats))
        app.state.chats.add_message(chat_id, NOW_TS, TEXT)  # the buyer happens to write the same words
        buyer_said_it = await ym.find_done(chat(order))
        app.state.chats.add_message(chat_id, NOW_TS, f"  {TEXT}\n", sender="PARTNER")
        shop_said_it = await ym.find_done(chat(order))
    assert no_chat is None and history_calls == 0
    assert buyer_said_it is None
    assert shop_said_it is not None and shop_said_it.status is WriteStatus.ALREADY_DONE
    assert app.state.chats.chats[chat_id]["status"] == "WAITING_FOR_CUSTOMER"


async def test_history_pages_are_followed() -> None:
    time = FakeTime()
    app = make(time, history_page=2)
    order = an_order(app)
    async with connector(app, time) as ym:
        await ym.perform(chat(order))
        chat_id = next(iter(app.state.chats.chats))
        for k in range(4):
            app.state.chats.add_message(chat_id, NOW_TS, f"Вопрос {k}")
        app.state.chats.add_message(chat_id, NOW_TS, "Ответ магазина", sender="PARTNER")
        history = await ym.client.chat_history(chat_id)
        app.state.request_log.clear()
        found = await ym.find_done(chat(order, "Ответ магазина"))
    assert [m["message"] for m in history] == [TEXT, "Вопрос 0", "Вопрос 1", "Вопрос 2", "Вопрос 3",
                                               "Ответ магазина"]
    assert [m["sender"] for m in history].count("PARTNER") == 2
    assert found is not None and found.platform_ref == str(chat_id)
    queries = [q for _, p, q, _ in app.state.request_log if p == CHATS + "/history"]
    assert len(queries) == 3 and "page_token" not in queries[0] and all("page_token" in q for q in queries[1:])


async def test_the_emulator_answers_chats_as_market_does() -> None:
    time = FakeTime()
    app = make(time)
    order = an_order(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://e",
                                 headers={"Api-Key": TOKEN}) as c:
        new = (await c.post(CHATS + "/new", json={"context": {"type": "ORDER", "id": order}})).json()
        again = (await c.post(CHATS + "/new", json={"orderId": order})).json()  # the deprecated form
        direct = await c.post(CHATS + "/new", json={"context": {"type": "DIRECT", "id": order}})
        listed = (await c.post(CHATS, json={"orderIds": [order]})).json()
        none = (await c.post(CHATS, json={"contexts": [{"type": "ORDER", "id": order + 1}]})).json()
        too_many = await c.post(CHATS, params={"limit": 21}, json={})
        no_chat = await c.post(CHATS + "/message", params={"chatId": 1}, json={"message": TEXT})
        empty = await c.post(CHATS + "/message", params={"chatId": new["result"]["chatId"]}, json={"message": ""})
    assert new == {"status": "OK", "result": {"chatId": new["result"]["chatId"]}}
    assert again == new  # Market hands back the chat opened before
    assert direct.status_code == 400 and direct.json()["errors"][0]["code"] == "BAD_REQUEST"
    [info] = listed["result"]["chats"]
    assert {"chatId", "context", "type", "status", "createdAt", "updatedAt"} <= set(info) and "messages" not in info
    assert none["result"]["chats"] == []
    assert [r.status_code for r in (too_many, no_chat, empty)] == [400, 404, 400]
    assert no_chat.json() == {"status": "ERROR", "errors": [{"code": "NOT_FOUND", "message": "Chat 1 not found"}]}


def _market(chats: list[dict[str, Any]], seen: list[str]) -> httpx.MockTransport:
    """A Market that lists `chats` whatever the filter, opens chat 77 and accepts any message."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path.removeprefix(CHATS) or "/")
        if request.url.path == CHATS:
            return httpx.Response(200, json={"status": "OK", "result": {"chats": chats, "paging": {}}})
        if request.url.path == CHATS + "/new":
            return httpx.Response(200, json={"status": "OK", "result": {"chatId": 77}})
        return httpx.Response(200, json={"status": "OK"})

    return httpx.MockTransport(answer)


async def test_listed_chats_of_another_order_or_disputes_are_not_written_to() -> None:
    time, seen = FakeTime(), []
    market = _market([{"chatId": 5, "type": "ARBITRAGE", "context": {"type": "ORDER", "orderId": 10}},
                      {"chatId": 6, "type": "CHAT", "context": {"type": "ORDER", "orderId": 11}},
                      {"chatId": 7, "type": "CHAT", "context": {"type": "RETURN", "orderId": 10, "returnId": 3}}],
                     seen)
    async with connector(market, time) as ym:
        result = await ym.perform(chat(10))
    assert result.status is WriteStatus.DONE and result.platform_ref == "77"
    assert seen == ["/", "/new", "/message"]


@pytest.mark.parametrize("chats", [
    [{"type": "CHAT", "context": {"type": "ORDER", "orderId": 10}}],  # no chatId
    [{"chatId": "6", "type": "CHAT", "context": {"type": "ORDER", "orderId": 10}}],
    "not a list",
])
async def test_a_broken_chat_list_raises_instead_of_rejecting(chats: Any) -> None:
    time, seen = FakeTime(), []
    async with connector(_market(chats, seen), time) as ym:
        with pytest.raises(FatalApiError) as caught:
            await ym.perform(chat(10))
    assert caught.value.status is None  # not Market's refusal: the outbox retries after find_done
    assert seen == ["/"]
