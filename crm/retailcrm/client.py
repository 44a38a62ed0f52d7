"""RetailCRM API v5: customers, loyalty accounts and bonus credits, as ../shared/crm/README.md
describes them (section "RetailCRM details checked against the official PHP, Go and Python clients").

Requests carry `X-API-KEY`; bodies are form-encoded, entities JSON-encoded inside (`customer=`,
`loyaltyAccount=`), credits plain fields. 429 and 503 both mean "slow down": retried with backoff
by `connectors.http.ApiClient`. A credit is sent once (`idempotent=False`); whether one whose
answer was lost was applied is read back with `credit_landed` before it is ever sent again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from connectors.auth import HeaderAuth
from connectors.errors import FatalApiError
from connectors.http import ApiClient, RetryPolicy
from connectors.responses import PlatformErrorInfo

from .dates import crm_time

__all__ = ["CREDIT", "RetailCrmClient", "credit_landed"]

CREDIT = "credit_manual"  # "Credits made through the API have type credit_manual" (README)
_FIXED_ZONES = {"Europe/Moscow": timezone(timedelta(hours=3), "MSK")}  # no tz database needed for the usual one


class RetailCrmClient:
    """One RetailCRM account (`https://{sub}.retailcrm.ru`), optionally one site of it."""

    def __init__(self, base_url: str, api_key: str, *, site: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None):
        self.site = site
        self.http = ApiClient(marketplace="retailcrm", base_urls={"api": base_url},
                              auth=HeaderAuth({"X-API-KEY": api_key}, secrets=[api_key]),
                              transport=transport, retry=RetryPolicy(), describe_error=describe_retailcrm_error,
                              clock=clock, sleep=sleep)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def zone(self) -> tzinfo:
        """The account's time zone (`GET settings`): every date RetailCRM reads or writes is in it."""
        body = await self.http.request_json("GET", "api", "/api/v5/settings")
        name = (((body or {}).get("settings") or {}).get("timezone") or {}).get("value")
        if not isinstance(name, str) or not name:
            raise FatalApiError("GET settings names no time zone", marketplace="retailcrm", endpoint="GET /settings")
        try:
            return _FIXED_ZONES.get(name) or ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise FatalApiError(f"unknown time zone {name!r} in GET settings", marketplace="retailcrm",
                                endpoint="GET /settings") from None

    async def upsert_customer(self, external_id: str, fields: dict[str, Any]) -> None:
        """Create the customer, or edit it by `externalId` when it exists (`externalId` is the key)."""
        customer = json.dumps({**fields, "externalId": external_id}, ensure_ascii=False)
        try:
            await self._post("/api/v5/customers/create", {"customer": customer})
        except FatalApiError as exc:
            if "already exists" not in (exc.platform_message or "").lower():
                raise
            await self._post(f"/api/v5/customers/{external_id}/edit", {"customer": customer, "by": "externalId"})

    async def account_of(self, external_id: str) -> dict[str, Any] | None:
        """The member's loyalty account (found by the customer's `externalId`), or None."""
        body = await self.http.request_json("GET", "api", "/api/v5/loyalty/accounts",
                                            params={"filter[customerExternalId]": external_id})
        found = (body or {}).get("loyaltyAccounts") or []
        return found[0] if found else None

    async def ensure_account(self, external_id: str, loyalty_id: int | None = None) -> int:
        """The member's account id: found or created, and activated ("new accounts start inactive")."""
        account = await self.account_of(external_id)
        if account is None:
            entity: dict[str, Any] = {"customer": {"externalId": external_id}}
            if loyalty_id is not None:
                entity["loyalty"] = {"id": loyalty_id}
            body = await self._post("/api/v5/loyalty/account/create",
                                    {"loyaltyAccount": json.dumps(entity, ensure_ascii=False)})
            account = body["loyaltyAccount"]
        if not account.get("active"):
            await self._post(f"/api/v5/loyalty/account/{account['id']}/activate", {})
        return int(account["id"])

    async def credit(self, account: int, amount: Decimal, activation: date, expire: date, comment: str) -> None:
        """One bonus credit; sent once: a lost answer raises, and `credit_landed` decides what next."""
        await self._post(f"/api/v5/loyalty/account/{account}/bonus/credit", {
            "amount": f"{amount:f}", "activationDate": activation.isoformat(), "expireDate": expire.isoformat(),
            "comment": comment}, idempotent=False)

    async def operations(self, account: int, since: datetime, until: datetime, zone: tzinfo) -> list[dict[str, Any]]:
        """The account's bonus operations created in [since, until] (times in the account's zone)."""
        body = await self.http.request_json("GET", "api", f"/api/v5/loyalty/account/{account}/bonus/operations",
                                            params={"filter[createdAtFrom]": crm_time(since, zone),
                                                    "filter[createdAtTo]": crm_time(until, zone)})
        return list((body or {}).get("bonusOperations") or [])

    async def _post(self, path: str, form: dict[str, str], *, idempotent: bool = True) -> Any:
        if self.site:
            form = {**form, "site": self.site}
        return await self.http.request_json("POST", "api", path, data=form, idempotent=idempotent)


def describe_retailcrm_error(response: httpx.Response) -> PlatformErrorInfo:
    """RetailCRM's error body: `{"success": false, "errorMsg": "...", "errors": {...}}`."""
    try:
        body = response.json()
    except ValueError:
        return PlatformErrorInfo("")
    if not isinstance(body, dict):
        return PlatformErrorInfo("")
    errors = body.get("errors")
    detail = "; ".join(f"{k}: {v}" for k, v in errors.items()) if isinstance(errors, dict) else ""
    return PlatformErrorInfo(" — ".join(str(t) for t in (body.get("errorMsg"), detail) if t))


def credit_landed(operations: Sequence[dict[str, Any]], amount: Decimal, activation: date, expire: date,
                  confirmed: int) -> bool:
    """Whether the account shows more credits of this amount and these dates than the `confirmed`
    ones we know of: then the credit whose answer was lost was applied, and is not sent again.

    Operations may not echo a comment (README), so a credit is recognised by what it is: type
    `credit_manual`, its amount and its two dates; `confirmed` counts our credits of the same
    signature in the window whose answers did arrive."""
    def same(op: dict[str, Any]) -> bool:
        try:
            op_amount = Decimal(str(op.get("amount")))
        except InvalidOperation:
            return False
        expiry = op.get("expiredDate") or op.get("expireDate")  # the Go client reads `expiredDate`
        return (op.get("type") == CREDIT and op_amount == amount
                and str(op.get("activationDate"))[:10] == activation.isoformat()
                and str(expiry)[:10] == expire.isoformat())

    return sum(1 for op in operations if same(op)) > confirmed
