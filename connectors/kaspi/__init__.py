"""Kaspi.kz connector: a shop's orders from the Kaspi Shop API (JSON:API, `X-Auth-Token`).

See shared/marketplaces/kaspi.md: orders by creation window (≤ 14 days) and one state per request,
epoch milliseconds, tenge as floats, the buyer's phone as the member key; no review API.
"""

from .connector import KaspiConnector

__all__ = ["KaspiConnector"]
