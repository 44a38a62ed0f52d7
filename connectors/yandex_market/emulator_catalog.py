"""The Yandex Market emulator's catalog: `POST /v2/businesses/{businessId}/offer-mappings`.

It answers from the offers the orders and reviews reference (`emulator_orders.OFFERS`), so a name
found here is the `offerName` of the order items. The request is read as `GetOfferMappingsRequest`
has it: `offerIds` (1..100 distinct SKUs) come back whole, and with them the spec says to send no
`pageToken`, `limit` or filters (answered 400 here); without them every offer is listed, paged
by `limit` (default 50, at most 100, larger values truncated) and `page_token`. An unknown
`offerId` is left out. Every request's query and body are kept in `offer_mapping_requests`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from connectors.yandex_market.emulator_handlers import _limit, _page_token, _paging, error
from connectors.yandex_market.emulator_orders import CAMPAIGNS, OFFERS, market_iso

if TYPE_CHECKING:
    from connectors.emulation import FaultPlan

__all__ = ["MAX_OFFER_IDS", "VENDORS", "CatalogEndpoints", "offer_mapping"]

MAX_OFFER_IDS = 100
# Each offer's brand, in OFFERS order (`vendor` is optional: the towel has none).
VENDORS = ("Люмен", "Теплодом", None, "Гончар", "Связь+", "Кухмастер", "Хлопок", "Люмен")
_FILTERS = ("cardStatuses", "categoryIds", "vendorNames", "tags", "archived")
_SHOP_SKU = re.compile(r"^(?=.*\S.*)[^\x00-\x08\x0A-\x1f\x7f]{1,255}$")
_MARKET_SKU_BASE = 101_077_000_000


def offer_mapping(k: int, now: int) -> dict[str, Any]:
    """`GetOfferMappingDTO` of offer `k`."""
    stem, name, price = OFFERS[k]
    offer: dict[str, Any] = {
        "offerId": f"SKU-{stem}", "name": name, "vendorCode": stem,
        "pictures": [f"https://avatars.mds.yandex.net/get-mpic/{5_000_000 + k}/orig"],
        "basicPrice": {"value": price, "currencyId": "RUR", "updatedAt": market_iso(now - 86_400 * (k + 1))},
        "cardStatus": "HAS_CARD_CAN_UPDATE",
        "campaigns": [{"campaignId": c, "status": "PUBLISHED"} for c in CAMPAIGNS.values()],
        "sellingPrograms": [{"sellingProgram": p, "status": "FINE"} for p in CAMPAIGNS],
        "archived": False,
    }
    if VENDORS[k] is not None:
        offer["vendor"] = VENDORS[k]
    sku = _MARKET_SKU_BASE + 7 * k
    return {"offer": offer,
            "mapping": {"marketSku": sku, "marketSkuName": name, "marketModelName": name,
                        "marketCategoryId": 90_000 + k, "marketCategoryName": "Товары для дома"},
            "showcaseUrls": [{"showcaseType": "B2C", "showcaseUrl": f"https://market.yandex.ru/card/{sku}"}]}


class CatalogEndpoints:
    """The handler, a mixin next to `Endpoints`, whose `_business` and `_body` it uses."""

    faults: FaultPlan
    offer_mapping_requests: list[tuple[dict[str, str], Any]]
    _business: Callable[[Request], bool]
    _body: Callable[[Request], Awaitable[dict[str, Any] | None]]

    async def offer_mappings(self, request: Request, now: int) -> tuple[int, Any]:
        if not self._business(request):
            return error(403, "FORBIDDEN", "Access denied to the business")
        body = await self._body(request)
        self.offer_mapping_requests.append((dict(request.query_params), body))
        if body is None:
            return error(400, "BAD_REQUEST", "Request body must be a JSON object")
        ids = body.get("offerIds")
        if ids is not None:
            if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_OFFER_IDS or len(set(map(str, ids))) != len(ids):
                return error(400, "BAD_REQUEST", f"offerIds: 1..{MAX_OFFER_IDS} distinct SKUs")
            if not all(isinstance(i, str) and _SHOP_SKU.match(i) for i in ids):
                return error(400, "BAD_REQUEST", "offerIds: each must be a SKU of 1..255 characters")
            if any(body.get(f) is not None for f in _FILTERS) or {"limit", "page_token", "pageToken"} & set(
                    request.query_params):
                return error(400, "BAD_REQUEST", "offerIds cannot be combined with paging or filters")
            wanted = {i.strip() for i in ids}
            hits = [k for k, (stem, _, _) in enumerate(OFFERS) if f"SKU-{stem}" in wanted]
            return 200, {"status": "OK", "result": {"offerMappings": [offer_mapping(k, now) for k in hits]}}
        limit, at = _limit(request, 50, MAX_OFFER_IDS), _page_token(request)
        if limit is None or at is None:
            return error(400, "BAD_REQUEST", "invalid limit or page_token")
        everything = list(range(len(OFFERS)))
        page = self.faults.shorten(request.url.path, everything[at: at + limit], more=at + limit < len(everything))
        more = at + len(page) < len(everything)
        return 200, {"status": "OK", "result": {"offerMappings": [offer_mapping(k, now) for k in page],
                                                "paging": _paging(more, at + len(page))}}
