"""The RetailCRM sink's settings: `[crm.retailcrm]` in loyalsync.toml (the API key from the variable
`api_key_env` names, never from the file)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["DEFAULT_STATUSES", "RetailCrmSettings"]

# loyalsync's order statuses -> RetailCRM status codes. These are the codes a new RetailCRM account
# has; a seller whose CRM uses others maps them in `[crm.retailcrm.statuses]` (Settings → Statuses).
DEFAULT_STATUSES = {"created": "new", "in_delivery": "delivering", "delivered": "complete",
                    "partially_returned": "complete", "returned": "cancel-other", "cancelled": "cancel-other"}

StatusCode = Annotated[str, Field(min_length=1, max_length=64)]


class RetailCrmSettings(BaseModel):
    """One RetailCRM account (and site) that members, orders and points are sent to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="retailcrm", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                      description="this sink's name in status, metrics and the CLI")
    enabled: bool = True
    url: str = Field(description="the account's address, e.g. https://shop.retailcrm.ru")
    api_key_env: str = Field(default="LOYALSYNC_RETAILCRM_API_KEY", min_length=1,
                             description="environment variable that holds the API key (X-API-KEY)")
    api_key: SecretStr = Field(default=SecretStr(""), exclude=True)
    site: str | None = Field(default=None, description="the store's code, needed when the key sees several sites")
    marketplaces: tuple[str, ...] = Field(
        default=(), description="only the members of these marketplaces (empty: all). Leave out a platform whose "
                                "orders already reach RetailCRM through its own module (e.g. the official Yandex "
                                "Market one), or they would be there twice")
    orders: bool = Field(default=True, description="send members' orders (customers are always sent)")
    points: bool = Field(default=True, description="send earned points as bonus credits and take-backs and "
                                                   "spends as charges")
    order_method: str | None = Field(default=None, max_length=64,
                                     description="orderMethod code for orders (must exist in the CRM); unset: none")
    statuses: dict[str, StatusCode] = Field(default_factory=lambda: dict(DEFAULT_STATUSES),
                                            description="loyalsync order status -> RetailCRM status code")
    max_per_second: float = Field(default=5.0, gt=0, le=10, allow_inf_nan=False,
                                  description="requests a second (RetailCRM allows about 10 per key)")
    timeout_seconds: float = Field(default=30.0, gt=0, le=300, allow_inf_nan=False)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("https://", "http://")) or any(ch.isspace() for ch in url):
            raise ValueError(f"{url!r} is not an http(s) URL; give the account's address, e.g. "
                             "https://shop.retailcrm.ru")
        return url.rstrip("/").removesuffix("/api/v5")

    @field_validator("statuses")
    @classmethod
    def _known_statuses(cls, statuses: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(statuses) - set(DEFAULT_STATUSES))
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a loyalsync order status; statuses: "
                             f"{', '.join(DEFAULT_STATUSES)}")
        return {**DEFAULT_STATUSES, **statuses}

    def takes(self, marketplace: str) -> bool:
        return not self.marketplaces or marketplace in self.marketplaces
