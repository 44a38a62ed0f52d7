"""Megamarket's order service: shipment ids by search, then the shipments by id (megamarket.md §2).

Yields raw shipments, maps nothing. Every call is a POST of `{"meta": {}, "data": {...}}` with the
token in `data.token` and in `X-Merchant-Token` (`connectors.auth.BodyTokenAuth`, §1), paced to the
"up to 5 requests per second per seller" the wiki sets (§4), retried on the 500s it warns of (§4).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.auth import BodyTokenAuth
from connectors.base import Page, Window
from connectors.convert import MOSCOW
from connectors.errors import TOKEN_REJECTED, AuthError, FatalApiError, RateLimitedError, RetriableApiError
from connectors.http import ApiClient, RetryPolicy
from connectors.ratelimit import EndpointGroup, Rate, RateLimiter
from connectors.responses import PlatformErrorInfo, ResponseAction

from .settings import MegamarketAccountSettings

__all__ = ["ENDPOINT_GROUPS", "ERROR_MAPPING", "GET", "MARKETPLACE", "REFUSED", "SEARCH", "SEARCH_CAP", "STATUSES",
           "MegamarketClient", "megamarket_time"]

log = logging.getLogger("loyalsync.connectors.megamarket")

MARKETPLACE = "megamarket"
SEARCH = "/api/market/v1/orderService/order/search"
GET = "/api/market/v1/orderService/order/get"
# «Ограничение на отправку запросов — до 5 запросов в секунду для одного продавца» (§4). One request
# every 210 ms, no burst: a server that counts any 1-second span strictly still sees at most 5, with
# 50 ms to spare for requests that leave or arrive a little late (exactly 200 ms drew 429s in the demo).
ENDPOINT_GROUPS = (EndpointGroup("orders", Rate(5, 1.05, 1), host="api"),)
# "a PHP client stops with 'Too many orders' when exactly 100 IDs come back; a Python model defaults
# count=1000" (§2.1): we ask for 100, the smallest cap seen, and treat 100 ids as "there may be more".
SEARCH_CAP = 100
# Every shipment status a source names: §2.2's eight and a public client's five more. They are used
# only when a window still holds SEARCH_CAP shipments within one second (see `_split_by_status`).
STATUSES = ("NEW", "PENDING", "PENDING_CONFIRMATION", "CONFIRMED", "PENDING_PACKING", "PACKED", "PACKING_EXPIRED",
            "PENDING_SHIPPING", "SHIPPED", "SHIPPING_EXPIRED", "DELIVERED", "MERCHANT_CANCELED", "CUSTOMER_CANCELED")
# The eight the doc's example search sends (payloads/megamarket/order_search.request.json).
DOC_STATUSES = ("NEW", "CONFIRMED", "PACKED", "PACKING_EXPIRED", "SHIPPED", "DELIVERED", "MERCHANT_CANCELED",
                "CUSTOMER_CANCELED")
# What a search filters by, in order of preference: nothing (every status, undocumented ones too);
# if a server refuses a search without `statuses`, every status a source names; if it refuses
# names it does not know, the doc's eight. The first one a server takes is kept (`_search`).
STATUS_FILTERS: tuple[tuple[str, ...] | None, ...] = (None, STATUSES, DOC_STATUSES)
# order/get may leave out a shipment it was asked for (not yet visible, or a cut answer): those ids
# are asked again until this many answers in a row bring none of them.
GET_RETRIES = 2
# The key of the record that stands for a shipment order/get refused to return (`_get_or_halve`).
REFUSED = "_refused_by_order_get"
# A 403 is a refused token, or a blocked User-Agent (§1: "show 'request blocked — check User-Agent'
# when calls fail with a fresh valid token"). A block page is no API answer (HTML, not the JSON
# envelope): that one stops the stream naming the User-Agent; a JSON 403 is a token error.
ERROR_MAPPING = {403: ResponseAction.FAIL}
BLOCKED = "request blocked — check User-Agent"


def megamarket_time(value: datetime) -> str:
    """A search bound in Moscow time with its offset, whole seconds: `2026-07-10T14:30:30+03:00`.

    §2.1: "always send an explicit offset"; how the server reads a naive time is unknown ("assume
    MSK"). Moscow wall-clock time with +03:00 means the same instant under either reading."""
    return value.astimezone(MOSCOW).replace(microsecond=0).isoformat()


class MegamarketClient:
    """Finds and reads one seller's shipments."""

    def __init__(self, settings: MegamarketAccountSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None, user_agent: str | None = None):
        self.settings = settings
        self._filters = list(STATUS_FILTERS)  # the first is the one in use
        self._get_batch = settings.get_batch  # smaller once a server refused a batch this size
        token = settings.token.get_secret_value()
        self.http = ApiClient(
            marketplace=MARKETPLACE,
            base_urls=settings.base_urls,
            auth=BodyTokenAuth(token),
            user_agent=user_agent,
            limiter=RateLimiter(ENDPOINT_GROUPS, overrides=settings.rate_limits, clock=clock, sleep=sleep),
            transport=transport,
            retry=RetryPolicy(request_deadline=settings.request_timeout_seconds),
            error_mapping=ERROR_MAPPING,
            describe_error=lambda response: describe_megamarket_error(response, self.http.user_agent),
            token_rejected=lambda status, info: status == 403 and not info.message.startswith(BLOCKED),
            clock=clock,
            sleep=sleep,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def shipments(self, window: Window) -> AsyncIterator[Page]:
        """Every shipment created in `window`, as order/get returns it, each once.

        The search filters by creation date (§2.1: `dateFrom`/`dateTo`; the only dates it takes) and
        by `statuses` only when asked: we never ask, so a shipment in a status no document names is
        listed too (and quarantined by the mapping, not lost). Its answer is capped with no cursor
        (§2.1): a window whose search comes back full is halved until none does (`_ids`).
        """
        seen: set[str] = set()
        async for ids in self._ids(window.start, window.end):
            pending = [i for i in dict.fromkeys(ids) if i not in seen]
            seen.update(pending)
            while pending:
                batch, pending = pending[:self._get_batch], pending[self._get_batch:]
                shipments = await self._get_all(batch)
                if shipments:
                    yield Page(shipments)

    async def _ids(self, start: datetime, end: datetime) -> AsyncIterator[list[str]]:
        """The ids of every shipment created in [start, end], window by window, oldest first.

        A search answering SEARCH_CAP ids may have left some out, and says nothing of it: that
        window is split in two at a whole second and each half searched again (bounds count in both
        halves: a shipment on the seam is found twice and kept once). Only a one-second window that
        is still full is split by status instead (`_split_by_status`).
        """
        pending = [(_floor_second(start), _ceil_second(end))]
        while pending:
            low, high = pending.pop()
            ids = await self._search(low, high)
            if len(ids) < SEARCH_CAP:
                yield ids
                continue
            if high - low <= timedelta(seconds=1):
                yield await self._split_by_status(low, high)
                continue
            middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
            pending += [(middle, high), (low, middle)]  # the older half is searched first

    async def _split_by_status(self, low: datetime, high: datetime) -> list[str]:
        """A second with SEARCH_CAP shipments or more: searched once per known status (§2.1 statuses[])."""
        ids: list[str] = []
        for status in STATUSES:
            found = await self._search(low, high, statuses=[status])
            if len(found) >= SEARCH_CAP:
                raise FatalApiError(
                    f"{len(found)}+ shipments in status {status} created within one second ({megamarket_time(low)}): "
                    "order/search cannot list them all (capped, no cursor, §2.1); report this to Megamarket",
                    marketplace=MARKETPLACE, endpoint=f"POST {SEARCH}")
            ids += found
        return ids

    async def _search(self, low: datetime, high: datetime, statuses: list[str] | None = None) -> list[str]:
        """One search; without `statuses`, by the filter this server takes (STATUS_FILTERS)."""
        while True:
            chosen = statuses or self._filters[0]
            data: dict[str, Any] = {"dateFrom": megamarket_time(low), "dateTo": megamarket_time(high),
                                    "count": SEARCH_CAP}
            if chosen:
                data["statuses"] = list(chosen)
            try:
                body = await self._post(SEARCH, data)
                break
            except AuthError:
                raise
            except FatalApiError as refused:
                if statuses or len(self._filters) == 1 or not _refuses_the_request(refused):
                    raise
                self._filters.pop(0)
                log.warning("megamarket %s: order/search refused %s (%s); searching by the statuses %s instead: a "
                            "shipment in a status no document names would not be listed", self.settings.name,
                            "a search without statuses" if chosen is None else "those status names",
                            refused.platform_message or refused.status, ", ".join(self._filters[0] or ()))
        ids = _data(body, SEARCH).get("shipments")
        if ids is None:  # an empty result written as null or left out
            return []
        if not isinstance(ids, list):
            raise FatalApiError("the search answer's data.shipments is not a list", marketplace=MARKETPLACE,
                                endpoint=f"POST {SEARCH}")
        # "IDs only" as strings (§2.1, order_search.response.json); a number is the same id.
        return [str(i) for i in ids if isinstance(i, str | int) and not isinstance(i, bool) and str(i)]

    async def _get_all(self, ids: list[str]) -> list[dict[str, Any]]:
        """The shipments of `ids`. Ids the answer left out are asked for again while answers bring
        some of them; after GET_RETRIES answers that bring none, the rest are logged and left to the
        next run's re-read of their window."""
        found: list[dict[str, Any]] = []
        missing, fruitless = ids, 0
        while missing and fruitless <= GET_RETRIES:
            got = await self._get_or_halve(missing)
            returned = {str(s.get("shipmentId")) for s in got}
            found += [s for s in got if str(s.get("shipmentId")) in missing]
            fruitless = 0 if returned & set(missing) else fruitless + 1
            missing = [i for i in missing if i not in returned]
        if missing:
            log.warning("megamarket %s: order/get did not return %d of the shipments its search listed; the "
                        "next run reads them again", self.settings.name, len(missing))
        return found

    async def _get_or_halve(self, ids: list[str]) -> list[dict[str, Any]]:
        """order/get of `ids`; a batch the server refuses is asked in halves (its size limit is not
        documented, §2.2), and later batches start at the size it took. A single shipment it refuses
        comes back as a record saying so, which the mapping quarantines with Megamarket's words:
        visible in `status`, read again on the next run, never silently skipped."""
        try:
            return await self.get(ids)
        except AuthError:
            raise
        except FatalApiError as refused:
            if not _refuses_the_request(refused):
                raise
            if len(ids) == 1:
                return [{"shipmentId": ids[0], REFUSED: refused.platform_message or str(refused)}]
            self._get_batch = min(self._get_batch, len(ids) // 2)
            found: list[dict[str, Any]] = []
            for start in range(0, len(ids), self._get_batch):  # the size learnt so far, smaller if refused again
                found += await self._get_or_halve(ids[start:start + self._get_batch])
            return found

    async def get(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """order/get of these shipment ids (§2.2): `data.shipments[]`."""
        body = await self._post(GET, {"shipments": list(ids)})
        shipments = _data(body, GET).get("shipments")
        if shipments is None:
            return []
        if not isinstance(shipments, list):
            raise FatalApiError("the order/get answer has no data.shipments list", marketplace=MARKETPLACE,
                                endpoint=f"POST {GET}")
        return [s if isinstance(s, dict) else {"_not_an_object": s} for s in shipments]

    async def _post(self, path: str, data: dict[str, Any]) -> Any:
        # BodyTokenAuth adds data.token (and the header) to this envelope (§1).
        return await self.http.request_json("POST", "api", path, json={"meta": {}, "data": data},
                                            check_body=check_success)


def check_success(body: Any, where: dict[str, Any]) -> None:
    """A 2xx answer whose `success` is not 1 is an error told in the body (§4: "`success: 0` with an
    `error` object, reportedly with HTTP 200"): a token error is an AuthError, too many requests and
    internal errors are retried after a pause, anything else stops the stream with Megamarket's words."""
    if isinstance(body, dict) and body.get("success") == 1:
        return
    message, code = _error_of(body)
    fields = {**where, "platform_message": message or code}
    said = f"{code} {message}".lower()
    if "token" in said or "auth" in said:
        raise AuthError(f"{TOKEN_REJECTED} (missing, wrong, or the other environment's: test and production "
                        "tokens differ); fix the token", **fields)
    if "too_many" in said or "too many" in said or "limit" in said:
        raise RateLimitedError("rate limited", **fields)
    if "internal" in said or "unavailable" in said or "timeout" in said:
        # §4: "not fail-safe; may answer 500 — retry": the same failure told in a 200's body.
        raise RetriableApiError("temporary failure (success: 0)", **fields)
    if not isinstance(body, dict) or "success" not in body:
        raise FatalApiError("the answer has no 'success' flag: not Megamarket's envelope", **fields)
    raise FatalApiError("Megamarket refused the request (success: 0)", **fields)


def describe_megamarket_error(response: httpx.Response, user_agent: str) -> PlatformErrorInfo:
    """Megamarket's error envelope (`error.message`, error.response.json); a 403 that is not the API's
    JSON is a block page, which §1 says a library-like User-Agent gets."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if body is None and response.status_code == 403:
        return PlatformErrorInfo(f"{BLOCKED}: the answer is a block page, not the API's; Megamarket blocks "
                                 f"automated-looking User-Agents (sent: {user_agent}; set the account's user_agent)")
    message, code = _error_of(body)
    return PlatformErrorInfo(message or code)


def _error_of(body: Any) -> tuple[str, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    message, code = error.get("message"), error.get("code")
    return (str(message) if message else ""), (str(code) if code else "")


def _refuses_the_request(error: FatalApiError) -> bool:
    """A refusal of what was asked (a 400/413/422, or `success: 0` in a 200), not of who asked (a
    403 block page, a 404): only that is worth asking differently."""
    return error.status in (200, 400, 413, 422)


def _data(body: Any, path: str) -> dict[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise FatalApiError("the answer has no data object", marketplace=MARKETPLACE, endpoint=f"POST {path}")
    return data


def _floor_second(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def _ceil_second(value: datetime) -> datetime:
    floor = _floor_second(value)
    return floor if floor == value else floor + timedelta(seconds=1)
