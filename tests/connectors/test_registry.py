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
    assert available_connectors() == {"ozon": OzonConnector, "wildberries": WildberriesConnector,
                                      "yandex_market": YandexMarketConnector}


def test_an_unknown_platform_names_the_known_ones():
    with pytest.raises(ConfigError) as info:
        get_connector("aliexpress")
    assert info.value.problems == ["unknown marketplace 'aliexpress'; known: ozon, wildberries, yandex_market"]
