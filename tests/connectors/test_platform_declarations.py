"""What a platform is lives on its connector: display name, colour, rate-limit statuses, programs.

The packages above `connectors/` read these (the report, metrics, the loyalty planners); these
tests check each declaration against what the connector itself does.
"""

from __future__ import annotations

import re

import pytest

from connectors.base import Connector
from connectors.capabilities import ActionKind, Channel
from connectors.registry import available_connectors
from connectors.responses import ResponseAction, classify

CONNECTORS = sorted(available_connectors().items())


@pytest.mark.parametrize(("name", "cls"), CONNECTORS)
def test_display_name_and_colour_are_declared(name: str, cls: type[Connector]) -> None:
    assert cls.display_name.strip()
    assert cls.brand_colour is None or re.fullmatch(r"#[0-9a-f]{6}", cls.brand_colour), cls.brand_colour


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "cls"), CONNECTORS)
async def test_declared_rate_limit_statuses_are_the_ones_its_client_waits_out(name: str, cls: type[Connector]) -> None:
    setup = cls.demo(seed=1, orders=1, reviews=1)
    assert setup is not None, f"{name} ships no emulator"
    connector = cls(setup.account("http://127.0.0.1:9"))
    try:
        mapping = connector.client.http.error_mapping  # type: ignore[attr-defined]
        by_client = {s for s in range(400, 600) if classify(s, mapping) is ResponseAction.RATE_LIMITED}
    finally:
        await connector.aclose()
    assert by_client == set(cls.rate_limit_statuses()), name
    assert 429 in cls.rate_limit_statuses()


def test_yandex_market_says_rate_limited_with_420() -> None:
    assert available_connectors()["yandex_market"].rate_limit_statuses() == {420, 429}
    assert available_connectors()["wildberries"].rate_limit_statuses() == {429}


@pytest.mark.parametrize(("name", "cls"), CONNECTORS)
def test_a_described_program_is_one_the_platform_offers(name: str, cls: type[Connector]) -> None:
    caps = cls.capabilities
    if caps.review_program is not None:
        assert caps.rule(ActionKind.REVIEW_POINTS_PROGRAM).channel is not Channel.NONE
        assert caps.review_program.steps and caps.review_program.rules
    if caps.loyalty_discount is not None:
        assert caps.rule(ActionKind.LOYALTY_DISCOUNT).channel is not Channel.NONE
        low, high = caps.loyalty_discount.percent
        assert 0 < low <= high < 100
