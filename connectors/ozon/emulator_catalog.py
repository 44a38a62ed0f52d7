"""The Ozon emulator's product catalog method, a mixin of `_Emulator`: `/v3/product/info/list`.

It answers from the same products the postings and reviews reference (`Dataset.products`), so a
name found here is the name the posting lines carry. The request is read as the official schema
has it (`v3GetProductInfoListRequest`: arrays of `offer_id`, `product_id`, `sku`, int64 ids as
strings or numbers, "не больше 1000 товаров ... в сумме"); unknown ids are left out of `items`.
Each item carries every key of the official example (tests/fixtures/ozon/product_info_list_response.json),
with the schema's own enum values where the example strays from them.
"""

from __future__ import annotations

from typing import Any

from connectors.ozon.emulator_data import DAY, Dataset, Product, iso
from connectors.ozon.emulator_protocol import bad_request, scalar

__all__ = ["MAX_IDS", "PRODUCT_INFO", "CatalogMethods", "product_info"]

PRODUCT_INFO = "/v3/product/info/list"
MAX_IDS = 1000
_PRODUCT_ID_BASE = 400_000_000  # product_id = this + the product's position in the catalogue
_FIELDS = ("offer_id", "product_id", "sku")


class CatalogMethods:
    """`/v3/product/info/list` over the emulator's products."""

    data: Dataset

    async def product_info_list(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        asked: dict[str, set[str]] = {}
        for field in _FIELDS:
            values = scalar(body, field, [])
            if not isinstance(values, list):
                raise bad_request(f"{field} must be an array")
            if field != "offer_id" and not all(_is_int64(v) for v in values):
                raise bad_request(f"{field} must hold int64 values")
            if field == "offer_id" and not all(isinstance(v, str) for v in values):
                raise bad_request("offer_id must hold strings")
            asked[field] = {str(v).strip() for v in values}
        if sum(len(v) for v in asked.values()) > MAX_IDS:
            raise bad_request(f"at most {MAX_IDS} products per request (offer_id, product_id and sku together)")
        items = [product_info(p, k, now) for k, p in enumerate(self.data.products)
                 if p.offer_id in asked["offer_id"] or str(_PRODUCT_ID_BASE + k) in asked["product_id"]
                 or str(p.sku) in asked["sku"]]
        return 200, {"items": items}


def _is_int64(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value < 2**63
    return isinstance(value, str) and value.strip().isascii() and value.strip().isdigit()


def product_info(product: Product, k: int, now: int) -> dict[str, Any]:
    """One `v3GetProductInfoListResponseItem`."""
    created = now - (300 + k) * DAY
    price = f"{product.price:.2f}"
    image = f"https://cdn1.ozone.ru/s3/multimedia-{product.sku % 10}/{product.sku}.jpg"
    in_stock = k % 7 != 3
    return {
        "availabilities": [{"availability": "in_stock" if in_stock else "out_of_stock",
                            "reasons": [], "sku": product.sku, "source": "sds"}],
        "barcodes": [f"46{product.sku:011d}"[:13]],
        "color_image": [],
        "commissions": [{"delivery_amount": 0, "percent": 15, "return_amount": 0, "sale_schema": "FBS",
                         "value": float(round(product.price * 15 / 100, 2))},
                        {"delivery_amount": 0, "percent": 17, "return_amount": 0, "sale_schema": "FBO",
                         "value": float(round(product.price * 17 / 100, 2))}],
        "created_at": iso(created, 0),
        "currency_code": "RUB",
        "description_category_id": 17_028_000 + k % 5,
        "discounted_fbo_stocks": 0,
        "errors": [],
        "has_discounted_fbo_item": False,
        "id": _PRODUCT_ID_BASE + k,
        "images": [image],
        "images360": [],
        "is_archived": False,
        "is_autoarchived": False,
        "is_discounted": False,
        "is_kgt": False,
        "is_prepayment_allowed": True,
        "is_super": False,
        "min_price": price,
        "model_info": {"count": 1, "model_id": 900_000_000 + k},
        "name": product.name,
        "offer_id": product.offer_id,
        "old_price": "0",
        "price": price,
        "price_indexes": {
            "color_index": "COLOR_INDEX_WITHOUT_INDEX",
            "external_index_data": {"minimal_price": "", "minimal_price_currency": "RUB", "price_index_value": 0},
            "ozon_index_data": {"minimal_price": "", "minimal_price_currency": "RUB", "price_index_value": 0},
            "self_marketplaces_index_data": {"minimal_price": "", "minimal_price_currency": "RUB",
                                             "price_index_value": 0},
        },
        "primary_image": [image],
        "promotions": [],
        "sku": product.sku,
        # One SKU for FBO and FBS since the SDS scheme (official text: "С 1 июля 2023 года ... SDS").
        "sources": [{"created_at": iso(created, 0), "quant_code": "", "shipment_type": "SHIPMENT_TYPE_GENERAL",
                     "sku": product.sku, "source": "sds"}],
        "statuses": {"is_created": True, "moderate_status": "approved", "status": "price_sent",
                     "status_description": "", "status_failed": "", "status_name": "Продается",
                     "status_tooltip": "", "status_updated_at": iso(created + DAY, 0),
                     "validation_status": "success"},
        "stocks": {"has_stock": in_stock,
                   "stocks": [{"present": 12 + k if in_stock else 0, "reserved": 0, "sku": product.sku,
                               "source": "fbs"}]},
        "type_id": 93_000 + k % 5,
        "updated_at": iso(now - (k + 1) * DAY, 0),
        "vat": "0.2",
        "visibility_details": {"has_price": True, "has_stock": in_stock},
        "volume_weight": 0.5 + k % 4 / 2,
    }
