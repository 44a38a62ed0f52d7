"""Avito endpoints, paging and OAuth: yields raw pages, maps nothing (avito.md).

Every request carries the account's own client-credentials token (avito.md §2), fetched from
`POST /token`, refreshed ahead of its 24-hour expiry and once more when Avito answers 403 ("after
expiry all requests return 403"), kept where the daemon's replicas share it (`token_cache`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.auth import ClientCredentials, TokenCache
from connectors.base import Page, Window
from connectors.errors import AuthError, FatalApiError, StreamUnavailable
from connectors.http import ApiClient, RetryPolicy
from connectors.ratelimit import EndpointGroup, Rate, RateLimiter
from connectors.responses import PlatformErrorInfo, describe_json_error

from .settings import AvitoAccountSettings

__all__ = ["ENDPOINT_GROUPS", "MARKETPLACE", "OPEN_STATUSES", "ORDERS", "REVIEWS", "AvitoClient"]

MARKETPLACE = "avito"
# "getOrders: max 500 requests per minute" (x-rate-limiter, avito.md §5). The ratings and Messenger
# APIs declare no limit (UNCONFIRMED): loyalsync keeps to 60/min on ratings (a run reads a few
# pages) and 300/min on Messenger (one request per new chat); an account may set others.
ENDPOINT_GROUPS = (
    EndpointGroup("orders", Rate(500, 60.0, 20), host="api", path_prefixes=("/order-management/",)),
    EndpointGroup("ratings", Rate(60, 60.0, 10), host="api", path_prefixes=("/ratings/",)),
    EndpointGroup("messenger", Rate(300, 60.0, 20), host="api", path_prefixes=("/messenger/",)),
    EndpointGroup("account", Rate(60, 60.0, 5), host="api"),
)
ORDERS = "/order-management/1/orders"
REVIEWS = "/ratings/v1/reviews"
ANSWERS = "/ratings/v1/answers"
SELF = "/core/v1/accounts/self"
# The statuses an order still moves from (avito.md §3): on_confirmation, ready_to_ship, in_transit,
# delivered (may yet go on_return or into a dispute), on_return, in_dispute. Final: canceled, closed.
OPEN_STATUSES = ("on_confirmation", "ready_to_ship", "in_transit", "delivered", "on_return", "in_dispute")


class AvitoToken(ClientCredentials):
    """Client credentials at `POST /token`, or at `/token/` where that is the one served: "docs show
    `/token/`, the spec paths `/token`; clients use both" (avito.md §9). A 404 on the one is asked
    once at the other, and the one that answered is kept."""

    async def _fetch(self, send):  # type: ignore[no-untyped-def]
        try:
            return await super()._fetch(send)
        except FatalApiError as exc:
            if exc.status != 404:
                raise
            self.token_url = self.token_url[:-1] if self.token_url.endswith("/") else self.token_url + "/"
            return await super()._fetch(send)


class AvitoClient:
    """Reads an Avito account's orders and reviews, and answers reviews."""

    def __init__(self, settings: AvitoAccountSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None, user_agent: str | None = None,
                 token_cache: TokenCache | None = None):
        self.settings = settings
        token_url = settings.base_urls["api"] + "/token"
        self.auth = AvitoToken(
            token_url=token_url, client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(), cache=token_cache,
            # "After expiry all requests return 403" (avito.md §2): refresh once on it, then it is
            # Avito's answer (the API not enabled for the account, or a missing scope).
            refresh_on=frozenset({401, 403}),
        )
        self._account_id: int | None = None
        self._chat_buyers: dict[str, int | str | None] = {}  # chat id -> the buyer's user id (one per chat)
        self.http = ApiClient(
            marketplace=MARKETPLACE, base_urls=settings.base_urls, auth=self.auth, user_agent=user_agent,
            limiter=RateLimiter(ENDPOINT_GROUPS, overrides=settings.rate_limits, clock=clock, sleep=sleep),
            transport=transport, retry=RetryPolicy(request_deadline=settings.request_timeout_seconds),
            describe_error=describe_avito_error, clock=clock, sleep=sleep,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def orders(self, window: Window) -> AsyncIterator[Page]:
        """Orders created in `window`. Avito filters by `dateFrom` (creation, unix seconds) only:
        no dateTo, no updated-since (avito.md §3). So `dateFrom` is the window's start, the pages
        run until `hasMore` is false, and orders created after the window's end are left to the
        window that holds them. Status changes of older orders come with the re-read of their
        creation window (the stream's lookback and re-scan)."""
        # What Avito filters without being asked: "Order management is available only for B2C
        # sellers" — Avito Доставка orders; a deal without delivery is never in this list (§3).
        params = {"dateFrom": int(window.start.timestamp()), "limit": self.settings.orders_page_size}
        async for items in self._order_pages(params):
            kept = [o for o in items if _created_before(o, window.end)]
            if kept:
                yield Page(kept)

    async def open_orders(self, window: Window) -> AsyncIterator[Page]:
        """Every order still in an open status, whatever its age, by repeated `statuses` keys
        (avito.md §3: "re-poll open orders by ids or by status to catch transitions")."""
        params = {"statuses": list(OPEN_STATUSES), "limit": self.settings.orders_page_size}
        async for items in self._order_pages(params):
            yield Page(items)

    async def _order_pages(self, params: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages 1, 2, … ("page … example 1": 1-based, avito.md §3) until `hasMore` is false; a
        short page is not the end. Array parameters go as repeated keys (`statuses=a&statuses=b`)."""
        page = 1
        while True:
            data = await self.http.request_json("GET", "api", ORDERS, params={**params, "page": page})
            info = data if isinstance(data, dict) else {}
            items = info.get("orders")
            if not isinstance(items, list):
                raise FatalApiError("the answer has no 'orders' list", marketplace=MARKETPLACE,
                                    endpoint=f"GET {ORDERS}")
            yield [_without_buyer_data(i) if isinstance(i, dict) else {"_not_an_object": i} for i in items]
            if info.get("hasMore") is not True:
                return
            page += 1

    async def order_buyers(self, window: Window) -> AsyncIterator[Page]:
        """Orders created in `window`, each with its buyer's Messenger user id as `_buyer_user_id`.

        Orders name no buyer; each item's `chatId` leads to the chat, whose `users[].id` ("note the
        hashing") is the one stable buyer handle (avito.md §3), read once per chat. The Messenger API
        needs the «Максимальный» tariff: refused with a token that orders just accepted, the stream is
        unavailable, saying so, and orders go on without buyer keys."""
        me = await self.account_id()
        async for page in self.orders(window):
            for order in page.items:
                chat = _chat_of(order)
                if chat is not None:
                    buyer = await self._chat_buyer(me, chat)
                    if buyer is not None:
                        order["_buyer_user_id"] = buyer
            yield page

    async def account_id(self) -> int:
        """The account's own id, for Messenger paths (`GET /core/v1/accounts/self`, §2); asked once."""
        if self._account_id is None:
            data = await self.http.request_json("GET", "api", SELF)
            value = data.get("id") if isinstance(data, dict) else None
            if not isinstance(value, int) or isinstance(value, bool):
                raise FatalApiError("the account's answer has no integer id", marketplace=MARKETPLACE,
                                    endpoint=f"GET {SELF}")
            self._account_id = value
        return self._account_id

    async def _chat_buyer(self, me: int, chat_id: str) -> int | str | None:
        if chat_id not in self._chat_buyers:
            path = f"/messenger/v2/accounts/{me}/chats/{chat_id}"
            try:
                data = await self.http.request_json("GET", "api", path)
            except AuthError as exc:
                raise StreamUnavailable(
                    "Avito refused the Messenger API with a token it accepts for orders: the account's tariff "
                    "lacks Messenger («Максимальный» is needed for goods). Orders are stored without buyer keys, "
                    "and loyalty on Avito is counted, not per buyer", marketplace=MARKETPLACE,
                    endpoint="GET /messenger/v2/accounts/{user_id}/chats/{chat_id}", status=exc.status) from exc
            users = data.get("users") if isinstance(data, dict) else None
            others = [u.get("id") for u in users or () if isinstance(u, dict) and u.get("id") not in (None, me)]
            self._chat_buyers[chat_id] = others[0] if len(others) == 1 else None
        return self._chat_buyers[chat_id]

    async def reviews(self, window: Window) -> AsyncIterator[Page]:
        """Reviews created in `window`: Avito has no date filter and documents no order (§4), so
        every page is read, `offset` advanced by what each page held, up to `total`. What Avito
        filters without being asked: "Only 'active' reviews are listed" (§4) — a review Avito
        hides leaves the list, and the store keeps what it last saw."""
        offset, seen = 0, set()
        while True:
            params = {"offset": offset, "limit": self.settings.reviews_page_size}
            data = await self.http.request_json("GET", "api", REVIEWS, params=params)
            items = data.get("reviews") if isinstance(data, dict) else None
            total = data.get("total") if isinstance(data, dict) else None
            if not isinstance(items, list) or not isinstance(total, int):
                raise FatalApiError("the answer has no 'reviews' list and 'total'", marketplace=MARKETPLACE,
                                    endpoint=f"GET {REVIEWS}")
            fresh = [r for r in items if isinstance(r, dict) and r.get("id") not in seen]
            seen.update(r.get("id") for r in fresh)
            kept = [r for r in fresh if _in_window(r, window)]
            if kept:
                yield Page(kept)
            offset += len(items)
            if not items or offset >= total:
                return

    async def review(self, review_id: int) -> dict[str, Any] | None:
        """One review as Avito shows it now (its answer included), or None: found by reading the
        list (there is no single-review endpoint, §4)."""
        async for page in self.reviews(Window(datetime.fromtimestamp(0, UTC), datetime.now(UTC))):
            for review in page.items:
                if review.get("id") == review_id:
                    return review
        return None

    async def answer(self, review_id: int, message: str) -> dict[str, Any]:
        """Post the seller's answer (moderated); sent once (a lost answer is checked with `review`)."""
        data = await self.http.request_json("POST", "api", ANSWERS, json={"reviewId": review_id, "message": message},
                                            idempotent=False)
        return data if isinstance(data, dict) else {}


def describe_avito_error(response: httpx.Response) -> PlatformErrorInfo:
    """Avito's bodies: order-management `{code, message}`, ratings `{"error": {code, message}}` (§4, §5)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    inner = body.get("error") if isinstance(body, dict) else None
    # OAuth's token endpoint: {"error": "invalid_client"} (a short code, RFC 6749 §5.2).
    message = inner.get("message") if isinstance(inner, dict) else inner if isinstance(inner, str) else None
    if message is None and isinstance(body, dict):
        message = body.get("message") or body.get("error_description")
    return PlatformErrorInfo(str(message)) if message else describe_json_error(response)


def _without_buyer_data(order: dict[str, Any]) -> dict[str, Any]:
    """The order without `delivery.buyerInfo` (the buyer's name and phone, DBS/RDBS after payment)
    and `courierInfo` (the buyer's address): dropped as they arrive, so no store, log or quarantine
    row ever holds them (avito.md §3)."""
    delivery = order.get("delivery")
    if isinstance(delivery, dict):
        order["delivery"] = {k: v for k, v in delivery.items() if k not in ("buyerInfo", "courierInfo")}
    return order


def _chat_of(order: dict[str, Any]) -> str | None:
    """The chat of the order's first item with one (every item of an order has the same buyer)."""
    for item in order.get("items") or ():
        chat = item.get("chatId") if isinstance(item, dict) else None
        if isinstance(chat, str) and chat:
            return chat
    return None


def _created_before(order: dict[str, Any], end: datetime) -> bool:
    created = order.get("createdAt")
    try:
        moment = datetime.fromisoformat(created) if isinstance(created, str) else None
    except ValueError:
        moment = None
    # Unreadable: kept, so the mapping quarantines it with the reason rather than losing it here.
    return moment is None or moment.tzinfo is None or moment < end


def _in_window(review: dict[str, Any], window: Window) -> bool:
    created = review.get("createdAt")
    if not isinstance(created, int) or isinstance(created, bool):
        return True  # unreadable: the mapping quarantines it
    return window.start.timestamp() <= created < window.end.timestamp()
