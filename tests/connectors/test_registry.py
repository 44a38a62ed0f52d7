"""One discovery path: the built-in connector is found through the entry-point group."""

from __future__ import annotations

import pytest

from connectors.errors import ConfigError
from connectors.registry import ENTRY_POINT_GROUP, available_connectors, get_connector
from connectors.wildberries import WildberriesConnector


def test_built_in_connectors_are_registered_through_the_entry_point_group():
    from connectors.ozon import OzonConnector
    from connectors.yandex_market import YandexMarketConnector

    assert ENTRY_POINT_GROUP == "loyalsync.connectors"
    built_in = {"ozon": OzonConnector, "wildberries": WildberriesConnector, "yandex_market": YandexMarketConnector}
    # A connector `new-connector` added (or a third party's) registers beside them.
    assert built_in.items() <= available_connectors().items()


def test_an_unknown_platform_names_the_known_ones():
    with pytest.raises(ConfigError) as info:
        get_connector("aliexpress")
    known = sorted(available_connectors())
    assert {"ozon", "wildberries", "yandex_market"} <= set(known)
    assert info.value.problems == [f"unknown marketplace 'aliexpress'; known: {', '.join(known)}"]
