"""Yandex Market product names by the seller's SKU (`offerId`), for replies to reviews.

A review names its product by `identifiers.offerId` (`GoodsFeedbackDTO`), which the store keeps
as the review's `sku`, as it does an order item's `offerId`. `POST /v2/businesses/{businessId}/
offer-mappings` (`getOfferMappings`, spec `openapi/paths/v2_businesses_businessId_offer-mappings.yaml`
at 1318e9b8, 2026-07-17) answers for a list of them: `offerIds` at most 100
(`GetOfferMappingsRequest`, "такой список возвращается только целиком": with it, send no
`pageToken`, `limit` or filters), the answer `result.offerMappings[].offer` with `offerId`, `name`
and `vendor` (`BaseOfferResponseDTO`). Its budget is 100 requests a minute without the Medium
subscription (`x-resource-limit-config`), paced by `limits.RATES["offer_mappings"]`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from connectors.errors import FatalApiError
from connectors.http import ApiClient
from connectors.records import ProductName

__all__ = ["MAX_OFFER_IDS", "names_from_answer", "offer_mappings_path", "product_names"]

MAX_OFFER_IDS = 100
_SHOP_SKU_MAX = 255  # ShopSku: 1..255 characters, no control characters


def offer_mappings_path(business_id: int) -> str:
    return f"/v2/businesses/{business_id}/offer-mappings"


async def product_names(http: ApiClient, business_id: int, skus: Sequence[str]) -> dict[str, ProductName]:
    """Names (brand from `vendor`) of the offers Market knows, `MAX_OFFER_IDS` a request."""
    # Market trims a ShopSku (`x-transform: trim`); one it would refuse must not sink a batch.
    wanted = list(dict.fromkeys(s for s in skus if s == s.strip() and 0 < len(s) <= _SHOP_SKU_MAX
                                and s.isprintable()))
    path = offer_mappings_path(business_id)
    out: dict[str, ProductName] = {}
    for start in range(0, len(wanted), MAX_OFFER_IDS):
        batch = wanted[start: start + MAX_OFFER_IDS]
        body = await http.request_json("POST", "api", path, json={"offerIds": batch})
        out.update(names_from_answer(body, batch, path))
    return out


def names_from_answer(body: Any, asked: Iterable[str], path: str) -> dict[str, ProductName]:
    """The usable names in one answer, read as untrusted: an offer without a string name or
    whose `offerId` was not asked for is skipped."""
    result = body.get("result") if isinstance(body, dict) else None
    mappings = result.get("offerMappings") if isinstance(result, dict) else None
    if not isinstance(mappings, list):
        raise FatalApiError("response has no 'result.offerMappings' list", marketplace="yandex_market",
                            endpoint=f"POST {path}")
    wanted = set(asked)
    out: dict[str, ProductName] = {}
    for mapping in mappings:
        offer = mapping.get("offer") if isinstance(mapping, dict) else None
        offer_id = offer.get("offerId") if isinstance(offer, dict) else None
        if not isinstance(offer_id, str) or offer_id.strip() not in wanted:
            continue
        name = ProductName.of(offer.get("name"), offer.get("vendor"))  # type: ignore[union-attr]
        if name is not None:
            out.setdefault(offer_id.strip(), name)
    return out
