"""A Wildberries account's settings: one token, one host per WB API category."""

from __future__ import annotations

from pydantic import Field, field_validator

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

    @field_validator("base_urls")
    @classmethod
    def _known_hosts(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(PRODUCTION_HOSTS))
        if unknown:
            raise ValueError(
                f"unknown host key(s) {', '.join(unknown)}; known: {', '.join(PRODUCTION_HOSTS)}"
            )
        bad = [k for k, v in value.items() if not v.startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"base URL for {', '.join(bad)} must start with http:// or https://")
        # Overriding one host (e.g. the statistics sandbox) keeps the production default of the rest.
        return {**PRODUCTION_HOSTS, **{k: v.rstrip("/") for k, v in value.items()}}
