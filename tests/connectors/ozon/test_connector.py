"""Ozon's settings, capabilities and connector declarations, and its demo hook."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from connectors.base import CursorKind, RecordType
from connectors.capabilities import ActionKind, BuyerIdentity, Channel
from connectors.ozon import OzonConnector
from connectors.ozon.capabilities import CHAT_SUBSCRIPTION, OZON_CAPABILITIES, REVIEWS_SUBSCRIPTION
from connectors.ozon.settings import PRODUCTION_HOSTS, OzonAccountSettings
from store import Store
from sync.runner import StreamRunner


def account(**kwargs) -> OzonAccountSettings:
    return OzonAccountSettings(name="main", token_env="OZON_KEY", token=SecretStr("k" * 36), **kwargs)


def test_settings_need_a_client_id_and_keep_the_production_host():
    settings = account(client_id="836412")
    assert settings.base_urls == {"api": "https://api-seller.ozon.ru"} == PRODUCTION_HOSTS
    assert "k" * 36 not in repr(settings) and "836412" in repr(settings)  # the Client-Id is no secret
    with pytest.raises(ValidationError, match="client_id"):
        account()
    with pytest.raises(ValidationError, match="client_id"):
        account(client_id="83 64")


def test_settings_hosts_and_page_sizes_are_checked():
    assert account(client_id="1", base_urls={"api": "http://localhost:9/"}).base_urls == {"api": "http://localhost:9"}
    with pytest.raises(ValidationError, match="unknown host key"):
        account(client_id="1", base_urls={"performance": "https://api-performance.ozon.ru"})
    with pytest.raises(ValidationError, match="http"):
        account(client_id="1", base_urls={"api": "api-seller.ozon.ru"})
    with pytest.raises(ValidationError):
        account(client_id="1", reviews_page_size=10)  # Ozon's minimum is 20
    with pytest.raises(ValidationError):
        account(client_id="1", postings_page_size=1000)  # v4 allows 100, not v3's 1000


def test_streams_rate_groups_and_personal_fields():
    specs = OzonConnector.streams
    assert set(specs) == {"orders_fbs", "orders_fbo", "reviews"}
    assert all(s.cursor is CursorKind.WINDOW for s in specs.values())
    assert specs["reviews"].record_type is RecordType.REVIEW
    for spec in specs.values():
        assert spec.window <= timedelta(days=364)  # Ozon: a filter may span at most a year
        assert spec.rescan_lookback >= spec.lookback and spec.lag > timedelta(0)
    assert set(OzonConnector.rate_groups) == {"seller_api"}
    rate = OzonConnector.rate_groups["seller_api"]
    assert rate.per_second + rate.burst <= 50  # never more than Ozon's 50 in any one second
    assert {"customer", "addressee", "courier", "legal_info"} <= OzonConnector.personal_fields
    conn = OzonConnector(account(client_id="1"))
    assert conn.record_key("orders_fbs", {"posting_number": "1-2-3"}) == "1-2-3"
    assert conn.record_key("reviews", {"id": "r-1"}) == "r-1"
    assert conn.record_key("orders_fbo", {"id": "x"}) is None


def test_capabilities_follow_ozons_rules():
    caps = OZON_CAPABILITIES
    assert caps.marketplace == "ozon" and caps.buyer_identity is BuyerIdentity.PARTIAL
    reply = caps.rule(ActionKind.REPLY_TO_REVIEW)
    assert reply.channel is Channel.API and REVIEWS_SUBSCRIPTION in reply.note
    assert reply.text and not (reply.text.links_allowed or reply.text.contacts_allowed
                               or reply.text.promo_codes_allowed)
    assert caps.rule(ActionKind.EDIT_REVIEW_REPLY).channel is Channel.NONE
    chat = caps.rule(ActionKind.SEND_CHAT_MESSAGE)
    assert chat.text.max_chars == 1000 and CHAT_SUBSCRIPTION in chat.note
    assert CHAT_SUBSCRIPTION in caps.rule(ActionKind.START_CHAT).note and "FBO" in caps.rule(ActionKind.START_CHAT).note
    assert caps.chat.start_window == timedelta(hours=72) and caps.chat.reply_window == timedelta(hours=48)
    promo = caps.rule(ActionKind.CREATE_PROMO_CODE)
    assert promo.channel is Channel.API and "/v1/seller-actions/create/voucher" in promo.note
    assert caps.rule(ActionKind.REVIEW_POINTS_PROGRAM).channel is Channel.CABINET
    assert caps.rule(ActionKind.CLUB_DISCOUNT).channel is Channel.NONE  # a WB instrument


@pytest.mark.anyio
async def test_the_demo_setup_syncs_every_stream(sqlite_store: Store):
    # Real time on both sides, as in `loyalsync demo`: the emulator paces on its own clock.
    setup = OzonConnector.demo(seed=3, orders=60, reviews=20)
    settings = setup.account("http://demo")
    assert setup.secrets == (settings.token.get_secret_value(),)
    runner = StreamRunner(sqlite_store, write_in_thread=False)
    async with OzonConnector(settings, transport=httpx.ASGITransport(app=setup.app)) as conn:
        results = [await runner.run(conn, s) for s in conn.enabled_streams()]
    assert all(r.ok for r in results), [r.error for r in results]
    assert sum(r.records for r in results if r.key.stream != "reviews") >= 60
    assert setup.app.state.stats.total_throttled == 0
