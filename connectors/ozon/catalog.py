"""Ozon product names by SKU, for replies to reviews (Ozon's reviews carry only `sku`).

`POST /v3/product/info/list` (operationId `ProductAPI_GetProductInfoList`). The shared reference
(ozon.md) does not cover Ozon's product methods; this follows Ozon's official Seller API OpenAPI
(mirror `MissiaL/ozon-api`, `references/ozon-seller-openapi.json` at 4817cd16, changelog to
2026-06-11): the body holds arrays of one kind of identifier, here `sku` (int64, written as
strings in `v3GetProductInfoListRequest`), "не больше 1000 товаров по параметрам offer_id,
product_id и sku в сумме" per request, and the answer is `items[]` whose `name` is the product's
name, `sku` its SKU and `sources[].sku` the SKUs of its selling schemes (an older FBO/FBS SKU a
review may still carry). No brand field: a brand is an attribute (`/v4/product/info/attributes`),
not worth a second call for a reply. No per-method limit is documented: the Client-Id's shared
budget paces it like every other call (client.ENDPOINT_GROUPS).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from connectors.http import ApiClient
from connectors.ozon.client_common import list_field
from connectors.records import ProductName

__all__ = ["MAX_SKUS", "PRODUCT_INFO", "names_from_answer", "product_names"]

PRODUCT_INFO = "/v3/product/info/list"
MAX_SKUS = 1000  # identifiers per request, all kinds together


async def product_names(http: ApiClient, skus: Sequence[str]) -> dict[str, ProductName]:
    """Names of the SKUs Ozon knows, `MAX_SKUS` a request; unknown or unnamed SKUs are left out."""
    # Only digits are Ozon SKUs: one malformed id would make Ozon refuse the whole batch.
    wanted = list(dict.fromkeys(s for s in skus if s.isascii() and s.isdigit()))
    out: dict[str, ProductName] = {}
    for start in range(0, len(wanted), MAX_SKUS):
        batch = wanted[start: start + MAX_SKUS]
        body = await http.request_json("POST", "api", PRODUCT_INFO, json={"sku": batch})
        out.update(names_from_answer(body, batch))
    return out


def names_from_answer(body: Any, asked: Iterable[str]) -> dict[str, ProductName]:
    """The usable names in one answer, keyed by the asked-for SKU each item names.

    The answer is read as untrusted: an item without a string name, or naming no SKU that was
    asked for, is skipped; the first item naming a SKU wins.
    """
    wanted = set(asked)
    out: dict[str, ProductName] = {}
    for item in list_field(body, "items", f"POST {PRODUCT_INFO}"):
        if not isinstance(item, dict):
            continue
        name = ProductName.of(item.get("name"))
        if name is None:
            continue
        for sku in _skus(item):
            if sku in wanted:
                out.setdefault(sku, name)
    return out


def _skus(item: dict[str, Any]) -> list[str]:
    """The item's SKU and its sources' SKUs as text, as the mapping stores them (number or string)."""
    sources = item.get("sources")
    values = [item.get("sku")]
    if isinstance(sources, list):
        values += [s.get("sku") for s in sources if isinstance(s, dict)]
    return [str(v).strip() for v in values if isinstance(v, int | str) and not isinstance(v, bool)]
