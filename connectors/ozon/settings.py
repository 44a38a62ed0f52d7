"""An Ozon account's settings: a Client-Id, an Api-Key (the token) and one Seller API host."""

from __future__ import annotations

from pydantic import Field

from connectors.base import AccountSettings

__all__ = ["PRODUCTION_HOSTS", "OzonAccountSettings"]

# Ozon documents production only; the old cb-api.ozonru.me sandbox is gone (ozon.md §1).
PRODUCTION_HOSTS = {"api": "https://api-seller.ozon.ru"}


class OzonAccountSettings(AccountSettings):
    """An Ozon seller account: `client_id` goes in the Client-Id header, the token in Api-Key.

    The Client-Id is not a secret (it is shown next to the key in the cabinet); the Api-Key is read
    from `token_env` like every other token. The key needs the posting roles, and reviews need the
    «Управление отзывами» or Premium Pro subscription (without it the `reviews` stream is marked
    unavailable and the others go on).
    """

    client_id: str = Field(min_length=1, max_length=32, pattern=r"^\S+$",
                           description="the seller's Client-Id from Settings → Seller API")
    base_urls: dict[str, str] = Field(default_factory=lambda: dict(PRODUCTION_HOSTS))
    # Ozon's caps: 1..100 postings per v4 FBS / v3 FBO page, 20..100 reviews and comments.
    postings_page_size: int = Field(default=100, ge=1, le=100)
    reviews_page_size: int = Field(default=100, ge=20, le=100)
    comments_page_size: int = Field(default=100, ge=20, le=100)
