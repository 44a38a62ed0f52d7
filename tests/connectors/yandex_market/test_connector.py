"""The connector's declarations: settings, streams, rate groups, discovery name."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from connectors.base import CursorKind, RecordType
from connectors.yandex_market import YandexMarketConnector
from connectors.yandex_market.limits import endpoint_groups
from connectors.yandex_market.settings import YandexMarketAccountSettings


def _settings(**over) -> YandexMarketAccountSettings:
    return YandexMarketAccountSettings(**{"name": "main", "token_env": "YM_TOKEN", "business_id": 5, **over})


def test_settings_default_to_the_production_host_and_accept_an_override():
    assert _settings().base_urls == {"api": "https://api.partner.market.yandex.ru"}
    assert _settings(base_urls={"api": "http://localhost:8000/"}).base_urls == {"api": "http://localhost:8000"}


@pytest.mark.parametrize("bad", [{"business_id": 0}, {"base_urls": {"orders": "https://x"}},
                                 {"base_urls": {"api": "ftp://x"}}, {"orders_page_size": 51},
                                 {"parallel_requests": 5}, {"campaign_ids": (0,)}])
def test_settings_refuse_what_market_would(bad):
    with pytest.raises(ValidationError):
        _settings(**bad)


def test_streams_read_orders_by_update_time_in_windows_market_accepts():
    orders, reviews = YandexMarketConnector.streams["orders"], YandexMarketConnector.streams["reviews"]
    assert orders.record_type is RecordType.ORDER and reviews.record_type is RecordType.REVIEW
    assert orders.cursor is CursorKind.WINDOW and reviews.cursor is CursorKind.WINDOW
    # One request covers the window plus the second the client starts early: within 30 days.
    assert orders.window + timedelta(seconds=1) <= timedelta(days=30)
    # Old orders are followed too (creation chunks back to start_history): half a year, like reviews.
    assert orders.start_history == timedelta(days=180)
    assert reviews.window <= timedelta(days=182) and reviews.start_history == timedelta(days=180)


def test_rate_groups_match_the_limiter_groups_with_comments_before_feedbacks():
    names = [g.name for g in endpoint_groups(5)]
    assert names == list(YandexMarketConnector.rate_groups)
    assert names.index("feedback_comments") < names.index("feedbacks")
    by_path = {g.name: g for g in endpoint_groups(5)}
    assert by_path["feedback_comments"].matches("api", "/v2/businesses/5/goods-feedback/comments")
    assert by_path["buyer_info"].matches("api", "/v2/campaigns/1/orders/2/buyer")
    assert YandexMarketConnector.rate_groups["orders"].requests == 10_000
    assert YandexMarketConnector.rate_groups["buyer_info"].requests == 3_000


def test_name_and_record_keys():
    assert YandexMarketConnector.name == "yandex_market"
    connector = YandexMarketConnector.__new__(YandexMarketConnector)
    assert connector.record_key("orders", {"orderId": 7, "id": 1}) == "7"
    assert connector.record_key("reviews", {"feedbackId": 9}) == "9"
    assert connector.record_key("orders", {"id": 1}) is None
