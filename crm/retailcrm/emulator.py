"""An emulator of the RetailCRM API v5 operations loyalsync uses, with the quirks
../shared/crm/README.md documents (written from that document, for tests and the demo):

- `X-API-KEY`; POST bodies are form-encoded, with JSON-encoded entities (`customer={...}`,
  `loyaltyAccount={...}`) but plain fields for bonus credits (`amount`, `activationDate`, ...);
- dates `Y-m-d H:i:s` without a zone, in the account's zone (`GET settings`); bonus dates kept to the day;
- `customers/create` answers 201, and refuses a second customer with the same `externalId`;
- a new loyalty account is not active (`not_confirmed`): a credit to it is refused until it is activated;
- credits have no idempotency key, and their operations (`credit_manual`) echo neither the comment
  nor the expiry: an operation is type, createdAt, amount (negative for a charge), order,
  bonus.activationDate and loyaltyAccount, as the official PHP client's `Operation` model;
- a loyalty account is created from `customer`, `phoneNumber`, `cardNumber`, `customFields` only;
  a charge is refused when the account's active bonuses (activated, not expired, on the account's
  calendar) do not cover it;
- the operations list answers 20 a page unless `limit` asks for 50, 100 or 250 (`pagination` says how many pages);
- `orders/upload` takes at most 50 orders, and answers HTTP 460 when some were refused (an
  `externalId` it already has, a customer it does not know), naming `uploadedOrders` and `failedOrders`;
- 429 and 503 both mean "slow down" (`throttle` answers); `drop_after_credit` applies the next
  credits and then drops the connection, `drop_every` every k-th credit, so the client never hears
  that they were made. The drop is real on a socket (the answer's head is sent, then the connection
  closes: uvicorn) and an `httpx.ReadError` through `httpx.ASGITransport`.

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
    drop_every: int = 0  # every k-th credit is applied, then the connection is dropped
    check_balance: bool = True  # refuse a charge the active bonuses do not cover


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
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # externalId -> order
    accounts: dict[int, dict[str, Any]] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    throttle: int = 0
    drops: int = 0
    credited: int = 0
    dropped: int = 0
    requests: int = 0

    def credits(self) -> list[Operation]:
        return [o for o in self.operations if o.type == "credit_manual"]

    def charges(self) -> list[Operation]:
        return [o for o in self.operations if o.type == "charge_manual"]

    def active_balance(self, account: int, at: datetime) -> Decimal:
        """What the account can spend at `at`: credits activated and not expired (days on the
        account's calendar; a bonus lasts to the end of its expiry day), less every charge."""
        today = at.astimezone(MOSCOW).date().isoformat()
        total = Decimal(0)
        for o in self.operations:
            if o.account != account:
                continue
            if o.type == "charge_manual":
                total -= o.amount
            elif (o.activation or "") <= today and (o.expire is None or today <= o.expire):
                total += o.amount
        return total

    def should_drop(self) -> bool:
        self.credited += 1
        if self.drops > 0:
            self.drops -= 1
        elif not (self.config.drop_every and self.credited % self.config.drop_every == 0):
            return False
        self.dropped += 1
        return True


def _fail(status: int, message: str) -> JSONResponse:
    return JSONResponse({"success": False, "errorMsg": message}, status_code=status)


class _Dropped(Response):
    """The answer's head, then the connection drops before its body: the client never learns what
    happened. Through httpx.ASGITransport the error raised here is what the client sees; under
    uvicorn, an error after the head makes it close the connection mid-answer."""

    def __init__(self) -> None:
        super().__init__(b'{"success": true}', media_type="application/json")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        raise httpx.ReadError("connection dropped after the credit was applied")


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


def _paging(request: Request) -> tuple[int | None, int]:
    """`limit` (20 unless 50 or 100 is asked for; anything else is refused) and `page` (from 1)."""
    raw = request.query_params.get("limit") or "20"
    limit = int(raw) if raw in ("20", "50", "100", "250") else None
    try:
        page = max(1, int(request.query_params.get("page") or 1))
    except ValueError:
        page = 1
    return limit, page


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
        unknown = set(account or {}) - {"customer", "phoneNumber", "cardNumber", "customFields"}
        if unknown:  # the clients' create entity (SerializedCreateLoyaltyAccount) has these four only
            return _fail(400, f"loyaltyAccount: unknown fields {', '.join(sorted(unknown))}")
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
        now = datetime.now(UTC)
        if kind == "charge" and crm.config.check_balance and crm.active_balance(account["id"], now) < amount:
            return _fail(400, "Not enough bonuses on the account")
        operation = Operation(account["id"], f"{kind}_manual", amount, now,
                              (form.get("activationDate") or None) if kind == "credit" else None,
                              (form.get("expireDate") or None) if kind == "credit" else None,
                              form.get("comment") or "")
        crm.operations.append(operation)
        if kind == "credit" and crm.should_drop():
            return _Dropped()
        return JSONResponse({"success": True, "loyaltyBonus": {"amount": float(amount),
                                                               "activationDate": operation.activation,
                                                               "expiredDate": operation.expire}})

    async def operations(request: Request) -> Response:
        if refused := gate(request):
            return refused
        number = int(request.path_params["id"])
        low, high = (request.query_params.get(f"filter[createdAt{k}]") for k in ("From", "To"))
        limit, page = _paging(request)
        if limit is None:
            return _fail(400, "limit must be 20, 50, 100 or 250")
        shown = []
        for o in crm.operations:
            at = _crm_time(o.created_at)
            if o.account != number or (low and at < low) or (high and at > high):
                continue
            # The PHP client's Operation: type, createdAt, amount, order, bonus.activationDate, event,
            # loyaltyAccount, loyalty. No comment, no expiry; a charge's amount is negative.
            shown.append({"type": o.type, "createdAt": at,
                          "amount": float(-o.amount if o.type == "charge_manual" else o.amount),
                          "order": None, "bonus": {"activationDate": o.activation} if o.activation else None,
                          "loyaltyAccount": {"id": o.account}})
        pages = max(1, -(-len(shown) // limit))
        return JSONResponse({"success": True, "bonusOperations": shown[(page - 1) * limit:page * limit],
                             "pagination": {"limit": limit, "totalCount": len(shown), "currentPage": page,
                                            "totalPageCount": pages}})

    async def orders_upload(request: Request) -> Response:
        if refused := gate(request):
            return refused
        form = await _form(request)
        try:
            orders = json.loads(form.get("orders") or "")
        except ValueError:
            return _fail(400, "Parameter 'orders' is missing or is not JSON")
        if not isinstance(orders, list) or not orders or not all(isinstance(o, dict) for o in orders):
            return _fail(400, "Parameter 'orders' must be a list of orders")
        if len(orders) > 50:
            return _fail(400, "Too many orders in one upload: 50 at most")
        uploaded, failed, errors = [], [], []
        for order in orders:
            external = order.get("externalId")
            customer = (order.get("customer") or {}).get("externalId")
            if not external or external in crm.orders:
                failed.append({"externalId": external})
                errors.append(f"Order with externalId {external} already exists")
            elif customer not in crm.customers:
                failed.append({"externalId": external})
                errors.append(f"Customer with externalId {customer} not found")
            else:
                crm.orders[external] = {**order, "id": len(crm.orders) + 1}
                uploaded.append({"id": crm.orders[external]["id"], "externalId": external})
        if failed:
            return JSONResponse({"success": False, "uploadedOrders": uploaded, "failedOrders": failed,
                                 "errorMsg": "Orders are loaded with errors", "errors": errors}, status_code=460)
        return JSONResponse({"success": True, "uploadedOrders": uploaded}, status_code=201)

    async def order_edit(request: Request) -> Response:
        if refused := gate(request):
            return refused
        form = await _form(request)
        external = request.path_params["external"]
        if (form.get("by") or "externalId") != "externalId" or external not in crm.orders:
            return _fail(404, "Not found")
        crm.orders[external].update(_form_json(form, "order") or {})
        return JSONResponse({"success": True, "id": crm.orders[external]["id"]})

    routes = [
        Route(f"{API}/settings", settings),
        Route(f"{API}/customers/create", customer_create, methods=["POST"]),
        Route(f"{API}/customers/{{external}}/edit", customer_edit, methods=["POST"]),
        Route(f"{API}/loyalty/account/create", account_create, methods=["POST"]),
        Route(f"{API}/loyalty/accounts", account_list),
        Route(f"{API}/loyalty/account/{{id:int}}/activate", account_activate, methods=["POST"]),
        Route(f"{API}/loyalty/account/{{id:int}}/bonus/{{kind:str}}", bonus, methods=["POST"]),
        Route(f"{API}/loyalty/account/{{id:int}}/bonus/operations", operations),
        Route(f"{API}/orders/upload", orders_upload, methods=["POST"]),
        Route(f"{API}/orders/{{external}}/edit", order_edit, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.crm = crm
    return app
