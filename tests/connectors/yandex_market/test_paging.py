"""Every Yandex Market paging loop ends only where Market says: `paging.nextPageToken` absent.

The emulator cuts pages short mid-stream (the `short_page` fault: fewer records than `limit`,
yet a next token); each loop of the client must still read every record. One test per loop:
orders, goods-feedback, its comments, chats, chat history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from connectors.base import Window
from connectors.emulation import Fault
from connectors.testing import FakeTime
from connectors.yandex_market.client import YandexMarketClient
from connectors.yandex_market.emulator import EmulatorConfig, create_app
from connectors.yandex_market.settings import YandexMarketAccountSettings

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KEY = "ym-paging-key"
BUSINESS = "/v2/businesses/12345"
ORDERS = "/v1/businesses/12345/orders"
FEEDBACK = f"{BUSINESS}/goods-feedback"
WINDOW = Window(NOW - timedelta(days=29), NOW)
HISTORY = timedelta(days=60)


def _app(*paths: str, **config):
    faults = tuple(Fault(p, "short_page", times=None, probability=0.6) for p in paths)
    return create_app(EmulatorConfig(seed=11, orders=300, reviews=200, history_days=40, now=NOW, clock=lambda: NOW,
                                     token=KEY, faults=faults, **config))


def _client(app, **settings) -> YandexMarketClient:
    account = YandexMarketAccountSettings(name="main", token_env="X", token=SecretStr(KEY), business_id=12345,
                                          base_urls={"api": "http://ym"}, **settings)
    time = FakeTime()
    return YandexMarketClient(account, transport=httpx.ASGITransport(app=app), clock=time.monotonic, sleep=time.sleep)


def _cut(app, path: str) -> int:
    """Pages of `path` the emulator served short while more records followed."""
    return sum(1 for p, _, _ in app.state.short_pages if p == path)


async def _order_ids(app) -> list[int]:
    ym = _client(app, orders_page_size=20)
    ids = [o["orderId"] async for page in ym.orders(WINDOW, history=HISTORY) for o in page.items]
    await ym.aclose()
    return ids


async def test_orders_read_on_after_a_short_page():
    clean, cut = _app(), _app(ORDERS)
    expected = await _order_ids(clean)
    assert len(expected) > 100
    assert await _order_ids(cut) == expected
    assert _cut(cut, ORDERS) > 3


async def _feedback_ids(app) -> list[int]:
    ym = _client(app, feedbacks_page_size=15)
    ids = [f["feedbackId"] async for page in ym.feedbacks(WINDOW) for f in page.items]
    await ym.aclose()
    return ids


async def test_reviews_read_on_after_a_short_page():
    clean, cut = _app(), _app(FEEDBACK)
    expected = await _feedback_ids(clean)
    assert len(expected) > 60
    assert await _feedback_ids(cut) == expected
    assert _cut(cut, FEEDBACK) > 3


async def test_a_reviews_comments_read_on_after_a_short_page():
    app = _app(f"{FEEDBACK}/comments")
    reviews, now = app.state.data.reviews, int(NOW.timestamp())
    i = next(k for k in range(len(reviews)) if reviews.published[k] < now - 86400)
    for n in range(130):  # more than two pages of the client's 50
        reviews.write_comment(i, now - 3600, f"Ответ магазина {n}", None, None)
    ym = _client(app)
    comments = await ym.shop_comments(reviews.ids[i])
    await ym.aclose()
    written = [c["text"] for c in comments if c["text"].startswith("Ответ магазина")]
    assert written == [f"Ответ магазина {n}" for n in range(130)]
    assert _cut(app, f"{FEEDBACK}/comments") > 0


async def test_an_orders_chats_read_on_after_a_short_page():
    app = _app(f"{BUSINESS}/chats")
    orders, now = app.state.data.orders, int(NOW.timestamp())
    i = orders.visible_end(now) - 5
    # Market lists every chat of the context; 45 of one order's make three pages of the client's 20.
    opened = [app.state.chats.open(i, now)["chatId"] for _ in range(45)]
    ym = _client(app)
    chats = await ym.order_chats(orders.ids[i])
    await ym.aclose()
    assert [c["chatId"] for c in chats] == opened
    assert _cut(app, f"{BUSINESS}/chats") > 0


async def test_a_chats_history_reads_on_after_a_short_page():
    app = _app(f"{BUSINESS}/chats/history")
    orders, now = app.state.data.orders, int(NOW.timestamp())
    chat = app.state.chats.open(orders.visible_end(now) - 1, now)
    sent = [app.state.chats.add_message(chat["chatId"], now, f"сообщение {n}")["messageId"] for n in range(260)]
    ym = _client(app)
    history = await ym.chat_history(chat["chatId"])
    await ym.aclose()
    assert [m["messageId"] for m in history] == sent
    assert _cut(app, f"{BUSINESS}/chats/history") > 0
