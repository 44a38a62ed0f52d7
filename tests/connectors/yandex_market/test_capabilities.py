"""Yandex Market capabilities as platform_rules.md §3 states them: data the policy gate will read."""

from __future__ import annotations

from connectors.capabilities import ActionKind, BuyerIdentity, Channel
from connectors.yandex_market import YandexMarketConnector

CAPS = YandexMarketConnector.capabilities


def test_buyer_identity_is_partial():
    assert CAPS.marketplace == "yandex_market" and CAPS.buyer_identity is BuyerIdentity.PARTIAL


def test_review_replies_through_the_api_1_to_4096_chars_without_contacts_links_or_promo_codes():
    for kind in (ActionKind.REPLY_TO_REVIEW, ActionKind.EDIT_REVIEW_REPLY):
        rule = CAPS.rule(kind)
        assert rule.channel is Channel.API
        assert (rule.text.min_chars, rule.text.max_chars) == (1, 4096)
        assert not (rule.text.links_allowed or rule.text.contacts_allowed or rule.text.promo_codes_allowed)
    assert CAPS.rule(ActionKind.EDIT_REVIEW_REPLY).edits_allowed is None  # editable, no count given


def test_the_seller_may_open_order_and_return_chats_but_not_direct_ones():
    assert CAPS.chat.seller_may_start and CAPS.chat.marketing_needs_consent
    start = CAPS.rule(ActionKind.START_CHAT)
    assert start.channel is Channel.API and "ORDER or RETURN" in start.note and "DIRECT" in start.note
    assert CAPS.rule(ActionKind.SEND_CHAT_MESSAGE).text.max_chars == 4096


def test_review_points_and_promo_codes_are_cabinet_only():
    assert CAPS.rule(ActionKind.REVIEW_POINTS_PROGRAM).channel is Channel.CABINET
    assert "Отзывы за баллы Яндекс Плюса" in CAPS.rule(ActionKind.REVIEW_POINTS_PROGRAM).note
    assert CAPS.rule(ActionKind.CREATE_PROMO_CODE).channel is Channel.CABINET
    assert CAPS.rule(ActionKind.SELLER_CASHBACK).channel is Channel.NONE
    assert CAPS.rule(ActionKind.CLUB_DISCOUNT).channel is Channel.NONE
