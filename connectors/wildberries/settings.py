"""A Wildberries account's settings: one token, one host per WB API category."""

from __future__ import annotations

from pydantic import Field

from connectors.base import AccountSettings

__all__ = ["PRODUCTION_HOSTS", "WildberriesAccountSettings"]

PRODUCTION_HOSTS = {
    "marketplace": "https://marketplace-api.wildberries.ru",
    "statistics": "https://statistics-api.wildberries.ru",
    "feedbacks": "https://feedbacks-api.wildberries.ru",
}


class WildberriesAccountSettings(AccountSettings):
    """A WB seller account. The token needs the Marketplace, Statistics and Feedbacks categories."""

    base_urls: dict[str, str] = Field(default_factory=lambda: dict(PRODUCTION_HOSTS))
    orders_page_size: int = Field(default=1000, ge=1, le=1000)
    feedbacks_page_size: int = Field(default=5000, ge=1, le=5000)
