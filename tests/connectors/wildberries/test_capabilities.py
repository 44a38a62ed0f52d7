"""WB capabilities as platform_rules.md §1 states them: data the policy gate will read."""

from __future__ import annotations

from datetime import timedelta

from connectors.capabilities import ActionKind, BuyerIdentity, Channel
from connectors.wildberries import WildberriesConnector

CAPS = WildberriesConnector.capabilities


def test_no_buyer_identity_on_wildberries():
    assert CAPS.buyer_identity is BuyerIdentity.NONE


def test_review_replies_go_through_the_api_with_wbs_length_limits_and_no_links_or_promo_codes():
    reply = CAPS.rule(ActionKind.REPLY_TO_REVIEW)
    assert reply.channel is Channel.API
    assert (reply.text.min_chars, reply.text.max_chars) == (2, 5000)
    assert not (reply.text.links_allowed or reply.text.contacts_allowed or reply.text.promo_codes_allowed)
    edit = CAPS.rule(ActionKind.EDIT_REVIEW_REPLY)
    assert edit.edits_allowed == 1 and edit.edit_window == timedelta(days=60)


def test_the_seller_may_not_start_a_chat():
    assert not CAPS.chat.seller_may_start
    assert CAPS.rule(ActionKind.START_CHAT).channel is Channel.NONE
    assert CAPS.chat.marketing_needs_consent


def test_review_points_and_loyalty_discount_are_cabinet_only():
    assert CAPS.rule(ActionKind.REVIEW_POINTS_PROGRAM).channel is Channel.CABINET
    assert CAPS.rule(ActionKind.LOYALTY_DISCOUNT).channel is Channel.CABINET
    assert CAPS.rule(ActionKind.CLUB_DISCOUNT).channel is Channel.API


def test_an_action_the_platform_never_mentions_is_not_offered():
    from connectors.capabilities import Capabilities

    assert Capabilities(marketplace="x", buyer_identity=BuyerIdentity.NONE).rule(
        ActionKind.CREATE_PROMO_CODE).channel is Channel.NONE
