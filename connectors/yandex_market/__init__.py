"""Yandex Market connector: business orders (DBS buyers while active) and product reviews."""

from connectors.yandex_market.connector import YandexMarketConnector

__all__ = ["YandexMarketConnector"]
