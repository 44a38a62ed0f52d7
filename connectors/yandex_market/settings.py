"""A Yandex Market account's settings: one Api-Key token, one business, one API host."""

from __future__ import annotations

from pydantic import Field, field_validator

from connectors.base import AccountSettings

__all__ = ["PRODUCTION_HOSTS", "YandexMarketAccountSettings"]

PRODUCTION_HOSTS = {"api": "https://api.partner.market.yandex.ru"}


class YandexMarketAccountSettings(AccountSettings):
    """A Yandex Market cabinet (business). The Api-Key needs order read and `communication` scopes.

    Orders and reviews live under the business (`businessId`, from `GET /v2/campaigns`); the
    campaign (shop) of each order comes with the order, so the buyer-info call needs no campaign
    ids here. `campaign_ids` only narrows the orders read to some of the cabinet's shops.
    """

    base_urls: dict[str, str] = Field(default_factory=lambda: dict(PRODUCTION_HOSTS))
    business_id: int = Field(gt=0)
    campaign_ids: tuple[int, ...] = Field(default=(), max_length=50)
    orders_page_size: int = Field(default=50, ge=1, le=50)
    feedbacks_page_size: int = Field(default=50, ge=1, le=50)
    # Market answers 420 past 4 requests in flight per business (and per campaign).
    parallel_requests: int = Field(default=4, ge=1, le=4)

    @field_validator("campaign_ids")
    @classmethod
    def _positive_campaigns(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(c <= 0 for c in value):
            raise ValueError("campaign ids must be positive")
        return value
