"""Avito connector: orders (Avito Доставка), seller reviews and moderated answers, over the
seller's own OAuth client credentials (see shared/marketplaces/avito.md)."""

from .connector import AvitoConnector

__all__ = ["AvitoConnector"]
