"""A Kaspi.kz account's settings: the shop's token, the one API host, the page size, and the
transport Kaspi is reported to need (a browser-like User-Agent, a Kazakhstan network)."""

from __future__ import annotations

from pydantic import Field

from connectors.base import AccountSettings

__all__ = ["PRODUCTION_HOSTS", "KaspiAccountSettings"]

# "Base https://kaspi.kz/shop/api/v2/" (kaspi.md §1); paths carry the /shop/api/v2 prefix.
PRODUCTION_HOSTS = {"api": "https://kaspi.kz"}


class KaspiAccountSettings(AccountSettings):
    """A Kaspi.kz shop. The token is the one the company head generates in the seller cabinet
    (Settings → API token); it does not change (kaspi.md §2)."""

    base_urls: dict[str, str] = Field(default_factory=lambda: dict(PRODUCTION_HOSTS))
    # GET /orders: "page[size] — max 100" (kaspi.md §3).
    page_size: int = Field(default=100, ge=1, le=100)
    # "the API answers only from Kazakhstan IPs" (two clients, kaspi.md §5.1): an HTTP(S) proxy in
    # Kazakhstan for this account, e.g. "http://user:pass@10.0.0.5:3128" (the password is masked).
    proxy: str | None = Field(default=None, pattern=r"^https?://\S+$",
                              description="HTTP(S) proxy for this account's requests (Kaspi is reported to "
                                          "answer only from Kazakhstan IP addresses)")
