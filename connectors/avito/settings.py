"""An Avito account's settings: the seller's own OAuth client credentials (orders accept no other
flow, avito.md §2), the one API host, and the page sizes Avito allows."""

from __future__ import annotations

from pydantic import Field

from connectors.base import OAuthAccountSettings

__all__ = ["PRODUCTION_HOSTS", "AvitoAccountSettings"]

# "Base URL https://api.avito.ru/" (avito.md §1); /token lives there too (§2).
PRODUCTION_HOSTS = {"api": "https://api.avito.ru"}


class AvitoAccountSettings(OAuthAccountSettings):
    """An Avito business account. `client_id` (in the file) and the secret (in `client_secret_env`)
    come from https://www.avito.ru/professionals/api: "every order-management operation declares
    only ClientCredentials" (§2), so each seller gives their own."""

    base_urls: dict[str, str] = Field(default_factory=lambda: dict(PRODUCTION_HOSTS))
    # GET /order-management/1/orders: "limit (0..20, max orders per page)" (§3).
    orders_page_size: int = Field(default=20, ge=1, le=20)
    # GET /ratings/v1/reviews: "limit 1..50" (§4).
    reviews_page_size: int = Field(default=50, ge=1, le=50)
