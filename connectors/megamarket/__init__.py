"""Megamarket connector: a seller's shipments from the merchant API's order service.

See shared/marketplaces/megamarket.md: the token in the body and the header, order/search (ids,
capped, no cursor) then order/get, one item per unit plus a delivery pseudo-item, integer roubles,
ISO times with an offset, 5 requests a second; no review API.
"""

from .connector import MegamarketConnector

__all__ = ["MegamarketConnector"]
