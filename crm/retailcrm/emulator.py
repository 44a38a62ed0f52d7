"""An emulator of the RetailCRM API v5 operations loyalsync uses, with the quirks
../shared/crm/README.md documents (written from that document, for tests and the demo):

- `X-API-KEY`; POST bodies are form-encoded, with JSON-encoded entities (`customer={...}`,
  `loyaltyAccount={...}`) but plain fields for bonus credits (`amount`, `activationDate`, ...);
- dates `Y-m-d H:i:s` without a zone, in the account's zone (`GET settings`); bonus dates kept to the day;
- `customers/create` answers 201, and refuses a second customer with the same `externalId`;
- a new loyalty account is not active (`not_confirmed`): a credit to it is refused until it is activated;
- credits have no idempotency key, and their operations (`credit_manual`) do not echo the comment;
- 429 and 503 both mean "slow down" (`throttle` answers); `drop_after_credit` applies the next
  credits and then drops the connection, so the client never hears that they were made.

`create_app(EmulatorConfig(...))`; `app.state.crm` is the `Crm` (customers, accounts, operations).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["API", "Crm", "EmulatorConfig", "Operation", "create_app"]

API = "/api/v5"
MOSCOW = timezone(timedelta(hours=3))


@dataclass(frozen=True)
class EmulatorConfig:
    api_key: str = "retailcrm-test-key"
    timezone: str = "Europe/Moscow"  # what GET settings tells; the emulator reads dates in MOSCOW
    throttle: int = 0  # the next N requests answer 429 or 503, alternately
    drop_after_credit: int = 0  # the next N credits are applied, then the connection is dropped


@dataclass
class Operation:
    account: int
    type: str  # credit_manual | charge_manual
    amount: Decimal
    created_at: datetime
    activation: str | None = None  # Y-m-d
    expire: str | None = None  # Y-m-d
    comment: str = ""  # kept, never shown: operations do not echo comments (README)


@dataclass
class Crm:
    config: EmulatorConfig
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)  # externalId -> customer
    accounts: dict[int, dict[str, Any]] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    throttle: int = 0
    drops: int = 0
    requests: int = 0

    def credits(self) -> list[Operation]:
        return [o for o in self.operations if o.type == "credit_manual"]


def _fail(status: int, message: str) -> JSONResponse:
    return JSONResponse({"success": False, "errorMsg": message}, status_code=status)


async def _form(request: Request) -> dict[str, str]:
    """The form-encoded body's fields (first value of each), read with the standard library."""
    fields = parse_qs((await request.body()).decode(), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _form_json(form: Any, name: str) -> dict[str, Any] | None:
    try:
        value = json.loads(form.get(name) or "")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _crm_time(value: datetime) -> str:
    return value.astimezone(MOSCOW).strftime("%Y-%m-%d %H:%M:%S")


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    crm = Crm(config or EmulatorConfig())
    crm.throttle, crm.drops = crm.config.throttle, crm.config.drop_after_credit

    def gate(request: Request) -> Response | None:
        crm.requests += 1
        if request.headers.get("x-api-key") != crm.config.api_key:
            return _fail(401, "Wrong \"apiKey\" value.")
        if crm.throttle > 0:
            crm.throttle -= 1
            return _fail(429 if crm.throttle % 2 else 503, "Too many requests")
        if request.method == "POST" and request.headers.get("content-length", "0") != "0" and \
                "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return _fail(400, "Request body must be application/x-www-form-urlencoded")
        return None

    async def settings(request: Request) -> Response:
        zone = {"timezone": {"value": crm.config.timezone}}
        return gate(request) or JSONResponse({"success": True, "settings": zone})

    async def customer_create(request: Request) -> Response:
        if refused := gate(request):
            return refused
        customer = _form_json(await _form(request), "customer")
        external = customer.get("externalId") if customer else None
        if not external:
            return _fail(400, "Parameter 'customer' is missing or has no externalId")
        if external in crm.customers:
            return _fail(400, "Customer with externalId already exists.")
        crm.customers[external] = {**customer, "id": len(crm.customers) + 1}
        return JSONResponse({"success": True, "id": crm.customers[external]["id"]}, status_code=201)

    async def customer_edit(request: Request) -> Response:
        if refused := gate(request):
            return refused
        form = await _form(request)
        external = request.path_params["external"]
        if (form.get("by") or "externalId") != "externalId" or external not in crm.customers:
            return _fail(404, "Not found")
        crm.customers[external].update(_form_json(form, "customer") or {})
        return JSONResponse({"success": True, "id": crm.customers[external]["id"]})

    async def account_create(request: Request) -> Response:
        if refused := gate(request):
            return refused
        account = _form_json(await _form(request), "loyaltyAccount")
        external = ((account or {}).get("customer") or {}).get("externalId")
        if external not in crm.customers:
            return _fail(400, "Customer not found")
        if any(a["customer"] == external for a in crm.accounts.values()):
            return _fail(400, "The customer already has a loyalty account")
        number = len(crm.accounts) + 1
        crm.accounts[number] = {"id": number, "customer": external, "active": False, "status": "not_confirmed"}
        return JSONResponse({"success": True, "loyaltyAccount": dict(crm.accounts[number])}, status_code=201)

    async def account_list(request: Request) -> Response:
        if refused := gate(request):
            return refused
        external = request.query_params.get("filter[customerExternalId]")
        found = [dict(a) for a in crm.accounts.values() if external is None or a["customer"] == external]
        return JSONResponse({"success": True, "loyaltyAccounts": found})

    async def account_activate(request: Request) -> Response:
        if refused := gate(request):
            return refused
        account = crm.accounts.get(int(request.path_params["id"]))
        if account is None:
            return _fail(404, "Not found")
        account.update(active=True, status="activated")
        return JSONResponse({"success": True, "loyaltyAccount": dict(account)})

    async def bonus(request: Request) -> Response:
        if refused := gate(request):
            return refused
        account = crm.accounts.get(int(request.path_params["id"]))
        kind = request.path_params["kind"]
        if account is None or kind not in ("credit", "charge"):
            return _fail(404, "Not found")
        if not account["active"]:
            return _fail(400, "Loyalty account is not activated")
        form = await _form(request)
        try:
            amount = Decimal(str(form.get("amount")))
        except InvalidOperation:
            return _fail(400, "amount is not a number")
        if not amount.is_finite() or amount <= 0:
            return _fail(400, "amount must be positive")
        operation = Operation(account["id"], f"{kind}_manual", amount, datetime.now(UTC),
                              (form.get("activationDate") or None), (form.get("expireDate") or None),
                              form.get("comment") or "")
        crm.operations.append(operation)
        if kind == "credit" and crm.drops > 0:
            crm.drops -= 1
            # Through httpx.ASGITransport the client sees exactly this: a dropped connection.
            raise httpx.ReadError("connection dropped after the credit was applied")
        return JSONResponse({"success": True, "loyaltyBonus": {"amount": float(amount),
                                                               "activationDate": operation.activation,
                                                               "expiredDate": operation.expire}})

    async def operations(request: Request) -> Response:
        if refused := gate(request):
            return refused
        number = int(request.path_params["id"])
        low, high = (request.query_params.get(f"filter[createdAt{k}]") for k in ("From", "To"))
        shown = []
        for o in crm.operations:
            at = _crm_time(o.created_at)
            if o.account != number or (low and at < low) or (high and at > high):
                continue
            # The operation model: type, createdAt, amount, activation and expiry dates; no comment.
            shown.append({"type": o.type, "createdAt": at, "amount": float(o.amount),
                          "activationDate": o.activation, "expiredDate": o.expire})
        return JSONResponse({"success": True, "bonusOperations": shown})

    routes = [
        Route(f"{API}/settings", settings),
        Route(f"{API}/customers/create", customer_create, methods=["POST"]),
        Route(f"{API}/customers/{{external}}/edit", customer_edit, methods=["POST"]),
        Route(f"{API}/loyalty/account/create", account_create, methods=["POST"]),
        Route(f"{API}/loyalty/accounts", account_list),
        Route(f"{API}/loyalty/account/{{id:int}}/activate", account_activate, methods=["POST"]),
        Route(f"{API}/loyalty/account/{{id:int}}/bonus/{{kind:str}}", bonus, methods=["POST"]),
        Route(f"{API}/loyalty/account/{{id:int}}/bonus/operations", operations),
    ]
    app = Starlette(routes=routes)
    app.state.crm = crm
    return app
