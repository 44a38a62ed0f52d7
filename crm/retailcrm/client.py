"""RetailCRM API v5: customers, orders, loyalty accounts, bonus credits and charges, as
../shared/crm/README.md describes them (section "RetailCRM details checked against the official
PHP, Go and Python clients").

Requests carry `X-API-KEY`; bodies are form-encoded, entities JSON-encoded inside (`customer=`,
`orders=`, `loyaltyAccount=`), credits and charges plain fields. 429 and 503 both mean "slow down"
(nothing applied): waited out and sent again, writes too. HTTP 460 is a batch upload that partly
failed: an answer to read, not an error. A credit or charge is otherwise sent once
(`idempotent=False`); whether one whose answer was lost was applied is read back with `landed`
before it is ever sent again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from connectors.auth import HeaderAuth
from connectors.errors import FatalApiError
from connectors.http import ApiClient, RetryPolicy
from connectors.ratelimit import EndpointGroup, Rate, RateLimiter
from connectors.responses import PlatformErrorInfo, ResponseAction

from .dates import crm_time

__all__ = ["CHARGE", "CREDIT", "Operation", "RetailCrmClient", "Upload", "credit_landed", "landed"]

CREDIT, CHARGE = "credit_manual", "charge_manual"  # "Credits made through the API have type credit_manual"
_FIXED_ZONES = {"Europe/Moscow": timezone(timedelta(hours=3), "MSK")}  # no tz database needed for the usual one
PAGE = 100  # list endpoints answer 20 a page unless asked for more (20, 50 or 100)
UPLOAD_MAX = 50  # orders/upload takes at most 50 orders a call


@dataclass(frozen=True, slots=True)
class Operation:
    """A credit or charge: type, amount and, for credits, the two days it is usable between."""

    type: str
    amount: Decimal
    activation: date | None = None
    expire: date | None = None

    def visible(self) -> str:
        """What the CRM's operations list shows of it: type, amount and activation day. An
        operation there carries no expiry (`Operation` of the PHP client: type, createdAt, amount,
        order, bonus.activationDate, event, loyaltyAccount, loyalty), so none is compared."""
        # normalize(): 64, 64.0 and 64.00 are one amount (the CRM answers floats, the ledger has cents)
        return f"{self.type}|{self.amount.normalize():f}|{self.activation.isoformat() if self.activation else ''}"

    def to_json(self) -> dict[str, str | None]:
        return {"type": self.type, "amount": f"{self.amount:f}",
                "activation": self.activation.isoformat() if self.activation else None,
                "expire": self.expire.isoformat() if self.expire else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operation:
        return cls(data["type"], Decimal(data["amount"]), _day(data.get("activation")), _day(data.get("expire")))


@dataclass(frozen=True, slots=True)
class Upload:
    """What `orders/upload` answered: the externalIds it took, and those it refused with why."""

    uploaded: frozenset[str]
    failed: dict[str, str]


class RetailCrmClient:
    """One RetailCRM account (`https://{sub}.retailcrm.ru`), optionally one site of it."""

    def __init__(self, base_url: str, api_key: str, *, site: str | None = None, max_per_second: float | None = None,
                 timeout_seconds: float = 30.0, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] | None = None, sleep: Callable[[float], Awaitable[None]] | None = None):
        self.site = site
        limiter = None
        if max_per_second is not None:
            # One request at a time, evenly spaced: the CRM's limit is per key (about 10 a second).
            limiter = RateLimiter([EndpointGroup("api", Rate(1, 1.0 / max_per_second, 1))], clock=clock, sleep=sleep)
        self.http = ApiClient(marketplace="retailcrm", base_urls={"api": base_url},
                              auth=HeaderAuth({"X-API-KEY": api_key}, secrets=[api_key]), limiter=limiter,
                              transport=transport, retry=RetryPolicy(request_deadline=timeout_seconds),
                              error_mapping={460: ResponseAction.SUCCESS, 503: ResponseAction.RATE_LIMITED},
                              describe_error=describe_retailcrm_error, clock=clock, sleep=sleep)

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
            await self._post(f"/api/v5/customers/{quote(external_id, safe='')}/edit",
                             {"customer": customer, "by": "externalId"})

    async def upload_orders(self, orders: Sequence[dict[str, Any]]) -> Upload:
        """Create up to 50 orders in one call. HTTP 460 ("Orders are loaded with errors") names
        those taken (`uploadedOrders`) and those refused (`failedOrders`, `errors`)."""
        if len(orders) > UPLOAD_MAX:
            raise ValueError(f"orders/upload takes at most {UPLOAD_MAX} orders, got {len(orders)}")
        body = await self._post("/api/v5/orders/upload", {"orders": json.dumps(list(orders), ensure_ascii=False)})
        body = body if isinstance(body, dict) else {}
        uploaded = frozenset(str(o.get("externalId")) for o in body.get("uploadedOrders") or []
                             if isinstance(o, dict) and o.get("externalId") is not None)
        why = describe_retailcrm_body(body) or "refused"
        failed = {str(o.get("externalId")): why for o in body.get("failedOrders") or []
                  if isinstance(o, dict) and o.get("externalId") is not None}
        # An order neither taken nor named as refused was not taken: tried again, never assumed.
        failed.update({str(o["externalId"]): why for o in orders
                       if str(o["externalId"]) not in uploaded and str(o["externalId"]) not in failed})
        return Upload(uploaded, failed)

    async def edit_order(self, order: dict[str, Any]) -> None:
        """Replace an existing order's fields, found by its `externalId`."""
        await self._post(f"/api/v5/orders/{quote(str(order['externalId']), safe='')}/edit",
                         {"order": json.dumps(order, ensure_ascii=False), "by": "externalId"})

    async def account_of(self, external_id: str) -> dict[str, Any] | None:
        """The member's loyalty account (found by the customer's `externalId`), or None."""
        body = await self.http.request_json("GET", "api", "/api/v5/loyalty/accounts",
                                            params={"filter[customerExternalId]": external_id})
        found = (body or {}).get("loyaltyAccounts") or []
        return found[0] if found else None

    async def ensure_account(self, external_id: str, card_number: str | None = None) -> int:
        """The member's account id: found or created, and activated ("new accounts start inactive").

        The account joins the site's loyalty program (`site` is a form field of its own); the
        clients' create entity has `customer`, `phoneNumber`, `cardNumber` and `customFields` only.
        We keep no phone: `card_number` gives the account an identifier of its own."""
        account = await self.account_of(external_id)
        if account is None:
            entity: dict[str, Any] = {"customer": {"externalId": external_id}}
            if card_number is not None:
                entity["cardNumber"] = card_number
            body = await self._post("/api/v5/loyalty/account/create",
                                    {"loyaltyAccount": json.dumps(entity, ensure_ascii=False)})
            account = body["loyaltyAccount"]
        if not account.get("active"):
            await self._post(f"/api/v5/loyalty/account/{int(account['id'])}/activate", {})
        return int(account["id"])

    async def credit(self, account: int, amount: Decimal, activation: date, expire: date | None,
                     comment: str) -> None:
        """One bonus credit; sent once: a lost answer raises, and `landed` decides what next."""
        form = {"amount": f"{amount:f}", "activationDate": activation.isoformat(), "comment": comment}
        if expire is not None:
            form["expireDate"] = expire.isoformat()
        await self._post(f"/api/v5/loyalty/account/{account}/bonus/credit", form, idempotent=False)

    async def charge(self, account: int, amount: Decimal, comment: str) -> None:
        """One bonus charge; sent once, like a credit."""
        await self._post(f"/api/v5/loyalty/account/{account}/bonus/charge",
                         {"amount": f"{amount:f}", "comment": comment}, idempotent=False)

    async def operations(self, account: int, since: datetime, until: datetime, zone: tzinfo) -> list[dict[str, Any]]:
        """The account's bonus operations created in [since, until] (times in the account's zone),
        every page of them. Where it ends: `pagination.totalPageCount` (the PHP client's
        LoyaltyBonusOperationsResponse is an AbstractPaginatedResponse; its test answer is
        tests/fixtures/retailcrm/bonus_operations.json). What it filters unasked: 20 a page
        (PaginationLimit allows 20/50/100/250; we ask 100), and no other filter than the dates we send,
        so every operation type comes back and `landed` picks ours."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self.http.request_json(
                "GET", "api", f"/api/v5/loyalty/account/{account}/bonus/operations",
                params={"filter[createdAtFrom]": crm_time(since, zone), "filter[createdAtTo]": crm_time(until, zone),
                        "limit": PAGE, "page": page})
            body = body if isinstance(body, dict) else {}
            found += [op for op in body.get("bonusOperations") or [] if isinstance(op, dict)]
            pages = (body.get("pagination") or {}).get("totalPageCount") or 1
            if not isinstance(pages, int) or page >= pages:
                return found
            page += 1

    async def _post(self, path: str, form: dict[str, str], *, idempotent: bool = True) -> Any:
        if self.site:
            form = {**form, "site": self.site}
        return await self.http.request_json("POST", "api", path, data=form, idempotent=idempotent)


def describe_retailcrm_body(body: Any) -> str:
    """RetailCRM's error words: `errorMsg` and the `errors` it lists (an object or a list)."""
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors")
    if isinstance(errors, dict):
        detail = "; ".join(f"{k}: {v}" for k, v in errors.items())
    elif isinstance(errors, list):
        detail = "; ".join(str(e) for e in errors)
    else:
        detail = ""
    return " — ".join(str(t) for t in (body.get("errorMsg"), detail) if t)


def describe_retailcrm_error(response: httpx.Response) -> PlatformErrorInfo:
    """RetailCRM's error body: `{"success": false, "errorMsg": "...", "errors": {...}}`."""
    try:
        return PlatformErrorInfo(describe_retailcrm_body(response.json()))
    except ValueError:
        return PlatformErrorInfo("")


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def shown(op: dict[str, Any]) -> Operation | None:
    """An operation as the CRM lists it, or None when it is not one we could have made. The
    activation day is `bonus.activationDate` (PHP client); a charge's amount may be negative."""
    try:
        amount = Decimal(str(op.get("amount")))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    bonus = op.get("bonus") if isinstance(op.get("bonus"), dict) else {}
    return Operation(str(op.get("type")), abs(amount), _day(bonus.get("activationDate") or op.get("activationDate")))


def landed(operations: Sequence[dict[str, Any]], wanted: Operation, confirmed: int) -> bool:
    """Whether the account shows more operations looking like `wanted` than the `confirmed` ones
    we know of: then the one whose answer was lost was applied, and is not sent again.

    Operations may not echo a comment (README) and show no expiry, so an operation is recognised
    by what they do show: type, amount and (credits) activation day. `confirmed` counts our
    operations that look the same (same `visible()`) in the window whose answers did arrive."""
    look = wanted.visible()
    return sum(1 for op in operations if (seen := shown(op)) is not None and seen.visible() == look) > confirmed


def credit_landed(operations: Sequence[dict[str, Any]], amount: Decimal, activation: date, expire: date | None,
                  confirmed: int) -> bool:
    """`landed` for a credit of `amount` usable from `activation` (to `expire`)."""
    return landed(operations, Operation(CREDIT, amount, activation, expire), confirmed)
