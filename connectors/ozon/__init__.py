"""Ozon connector: FBS/rFBS and FBO postings from the Seller API, and reviews (with a subscription)."""

from connectors.ozon.connector import OzonConnector

__all__ = ["OzonConnector"]
