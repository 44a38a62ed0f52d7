"""A Megamarket account's settings: which of the two environments it talks to (each has its own
host and its own token), the User-Agent Megamarket will accept, and the batch sizes."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from connectors.base import AccountSettings

__all__ = ["HOSTS", "PRODUCTION_HOSTS", "MegamarketAccountSettings", "blocked_user_agent"]

# "Prod host https://api.megamarket.tech, test https://api-test.megamarket.tech" (megamarket.md §1).
HOSTS = {"production": "https://api.megamarket.tech", "test": "https://api-test.megamarket.tech"}
PRODUCTION_HOSTS = {"api": HOSTS["production"]}
# «Запросы с User-agent типа 'python-requests/2.26.0' система воспринимает как автоматические, поэтому
# блокирует» (megamarket.md §1): the library defaults an ops person might paste in.
_LIBRARY_AGENTS = re.compile(r"^\s*(python-requests|python-httpx|python-urllib|aiohttp|go-http-client|curl|"
                             r"wget|okhttp|java|axios|node-fetch)\b", re.IGNORECASE)


def blocked_user_agent(value: str) -> bool:
    """Whether Megamarket treats `value` as an automated client's and blocks it (§1)."""
    return bool(_LIBRARY_AGENTS.match(value))


class MegamarketAccountSettings(AccountSettings):
    """A Megamarket seller. The token is the one from the cabinet, «Настройки → Интеграция API →
    Авторизационный токен»; "test and prod need different tokens" (§1): an account talks to one
    environment with that environment's token. A seller who uses both configures two accounts."""

    base_urls: dict[str, str] = Field(default_factory=lambda: dict(PRODUCTION_HOSTS))
    environment: Literal["production", "test"] = Field(
        default="production",
        description="which Megamarket environment this account's token belongs to: production "
                    "(api.megamarket.tech) or test (api-test.megamarket.tech); each has its own token")
    # order/get takes a list of shipment ids; its size limit is not documented (§2.2, §8), and a
    # public client sends them one call per shipment at 5 rps: 50 stays well inside any limit.
    get_batch: int = Field(default=50, ge=1, le=100, description="shipment ids per order/get request")

    @model_validator(mode="before")
    @classmethod
    def _host_of_environment(cls, data: object) -> object:
        """The environment picks the host, so a production token never goes to the test host or the
        reverse (§1); an explicit `base_urls.api` (a proxy, an emulator) still wins, unless it names
        the other environment's host."""
        if not isinstance(data, dict):
            return data
        environment = data.get("environment", "production")
        urls = data.get("base_urls") or {}
        if environment in HOSTS and isinstance(urls, dict):
            given = str(urls.get("api", "")).rstrip("/")
            other = {h for e, h in HOSTS.items() if e != environment}
            if given in other:
                raise ValueError(f"base_urls.api is the {_environment_of(given)} host but environment is "
                                 f"{environment!r}: tokens of one environment are refused by the other's host; "
                                 "set environment to match (and its token)")
            data = {**data, "base_urls": {**urls, "api": given or HOSTS[environment]}}
        return data

    @field_validator("user_agent")
    @classmethod
    def _agent_not_blocked(cls, value: str | None) -> str | None:
        if value is not None and blocked_user_agent(value):
            raise ValueError(f"{value!r} is a library default, which Megamarket blocks as automated "
                             "(megamarket.md §1); leave it unset (loyalsync/<version>) or name your product")
        return value


def _environment_of(host: str) -> str:
    return next(e for e, h in HOSTS.items() if h == host)
