"""Wildberries connector: Marketplace (FBS) and Statistics orders joined on rid == srid, and reviews."""

from connectors.wildberries.connector import WildberriesConnector

__all__ = ["WildberriesConnector"]
