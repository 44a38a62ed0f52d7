"""Each paging loop of the Ozon client reads past a short page to the end its document names.

The emulator cuts pages short at random (`short_page`: fewer records than the limit, more to come)
and pages on from what it served; every loop must still return exactly what a clean run returns.
The comment list and the seller-actions list used to stop on "fewer than limit" and lost the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.base import Window
from connectors.ozon import client_writes
from connectors.ozon.client import OzonClient
from connectors.ozon.emulator import EmulatorConfig, Fault, create_app
from connectors.ozon.emulator_data import US
from connectors.ozon.settings import OzonAccountSettings
from connectors.testing import FakeTime

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOKEN, CLIENT_ID = "ozon-paging-sentinel-key", "1943881"
WINDOW = Window(NOW - timedelta(days=40), NOW)


def emulator(*paths: str, **config: Any) -> Any:
    """An emulator cutting about every other page of `paths` short (none without paths)."""
    faults = tuple(Fault(path, "short_page", times=None, probability=0.5) for path in paths)
    config = {"seed": 11, "orders": 400, "reviews": 400, "history_days": 40, **config}
    return create_app(EmulatorConfig(now=NOW, clock=lambda: NOW, client_id=CLIENT_ID, token=TOKEN,
                                     rate_limits=False, faults=faults, **config))


def client(app: Any, time: FakeTime) -> OzonClient:
    account = OzonAccountSettings(name="main", token_env="X", token=SecretStr(TOKEN), client_id=CLIENT_ID,
                                  base_urls={"api": "http://ozon"}, postings_page_size=25,
                                  reviews_page_size=20, comments_page_size=20)
    return OzonClient(account, transport=httpx.ASGITransport(app=app), clock=time.monotonic, sleep=time.sleep)


async def read(app: Any, what) -> Any:
    time = FakeTime()
    oz = client(app, time)
    try:
        return await what(oz)
    finally:
        await oz.aclose()


async def items(pages) -> list[Any]:
    return [item async for page in pages for item in page.items]


def cut(app: Any, path: str) -> int:
    return sum(1 for p, _, _ in app.state.faults.short_pages if p == path)


@pytest.mark.parametrize(("path", "read_stream"), [
    ("/v4/posting/fbs/list", lambda oz: items(oz.fbs_postings(WINDOW))),  # by start, then by status change
    ("/v3/posting/fbo/list", lambda oz: items(oz.fbo_postings(WINDOW))),
])
async def test_postings_follow_has_next_past_short_pages(path, read_stream):
    clean = await read(emulator(), read_stream)
    app = emulator(path)
    got = await read(app, read_stream)
    assert cut(app, path) > 3
    assert [p["posting_number"] for p in got] == [p["posting_number"] for p in clean] and clean


async def test_reviews_follow_has_next_and_last_id_past_short_pages():
    clean = await read(emulator(), lambda oz: items(oz.reviews(WINDOW)))
    app = emulator("/v2/review/list")
    got = await read(app, lambda oz: items(oz.reviews(WINDOW)))
    assert cut(app, "/v2/review/list") > 3
    assert got == clean and len(clean) == 400


async def test_the_comment_list_reads_past_a_short_page_to_the_empty_one():
    """Fails on the old loop, which took a page of fewer than `limit` comments for the last."""
    app = emulator("/v1/review/comment/list")
    reviews, now = app.state.data.reviews, int(NOW.timestamp() * US)
    threads = [i for i in range(len(reviews)) if len(reviews.comments(i, now)) > 20]
    assert threads  # discussions longer than a page exist in the emulator's data
    for i in threads:
        got = await read(app, lambda oz, i=i: oz.review_comments(reviews.review_id(i)))
        assert [c["id"] for c in got] == [c["id"] for c in reviews.comments(i, now)]
    assert cut(app, "/v1/review/comment/list") > 0


async def test_the_seller_actions_list_reads_past_a_short_page(monkeypatch):
    """Fails on the old loop (fewer than `limit` ended it), which also read `id`/`title` where the
    spec puts `action_id` and `action_parameters.title`."""
    monkeypatch.setattr(client_writes, "SELLER_ACTIONS_PAGE", 5)
    app = emulator("/v1/seller-actions/list", orders=10, reviews=0)
    for k in range(13):
        app.state.vouchers.append({
            "id": 5_000_000 + k, "title": f"Промокод {k} [ls:shared]", "action_type": "VOUCHER_DISCOUNT",
            "status": "ACTIVE",
            "date_start": "2026-11-21T00:00:00Z", "date_end": "2026-12-21T00:00:00Z", "budget": 500,
            "discount_type": "CURRENCY", "discount_value": 300,
            "voucher_parameters": {"count_codes": 1, "is_private": True, "type": "UNIQUE"}, "user_ids": []})
    got = await read(app, lambda oz: oz.seller_actions("[ls:shared]"))
    assert cut(app, "/v1/seller-actions/list") > 0
    assert sorted(a["action_id"] for a in got) == [5_000_000 + k for k in range(13)]


async def test_chat_history_follows_has_next_past_short_pages(monkeypatch):
    monkeypatch.setattr(client_writes, "CHAT_HISTORY_PAGE", 4)
    app = emulator("/v3/chat/history", orders=60, reviews=0)
    emu = app.state.emulator
    posting = emu.chat_eligible()[0]
    chat_id = ""
    for k in range(19):
        chat_id = emu.buyer_message(posting, f"вопрос {k}", at=NOW - timedelta(minutes=30 - k))
    got = await read(app, lambda oz: oz.chat_history(chat_id))
    assert cut(app, "/v3/chat/history") > 0
    assert [m["data"] for m in got] == [[f"вопрос {k}"] for k in reversed(range(19))]
