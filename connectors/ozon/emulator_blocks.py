"""The opt-in blocks of an Ozon posting: what a posting list adds when the request's `with` asks.

`with {analytics_data, barcodes, financial_data, legal_info}` (FBS v4; FBO v3 has no barcodes):
"`true`, чтобы добавить в ответ …" for each. A block not asked for stays `null`, as Ozon's gateway
writes an unset block (see `emulator_records`). The figures follow the official examples: a
posting's payout and commission stay 0 until it is delivered; no buyer is a company here.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from connectors.ozon.emulator_data import DAY, FBO, RFBS, Fate, PostingTable, iso, mix

__all__ = ["BLOCKS", "requested_blocks", "with_blocks"]

#: Every block a `with` may ask for; FBO has no `barcodes`.
BLOCKS = ("analytics_data", "barcodes", "financial_data", "legal_info")
_CLUSTERS = ("Москва, МО и Дальние регионы", "Казань", "Екатеринбург", "Новосибирск")
_CITIES = (("Москва", "Москва"), ("Казань", "Республика Татарстан"), ("Омск", "Омская область"))
_FBS_WAREHOUSE = (1_020_005_003_107_121, "Склад продавца Ногинск")
_FBO_WAREHOUSE = (1_020_001_835_658_000, "ОМСК_РФЦ")
_COMMISSION_PERCENT = 12


def requested_blocks(body: dict[str, Any]) -> frozenset[str]:
    """The blocks a posting list request asks for (`with`; a null `with` or flag asks for none)."""
    flags = body.get("with")
    if not isinstance(flags, dict):
        return frozenset()
    return frozenset(name for name in BLOCKS if flags.get(name) is True)


def with_blocks(table: PostingTable, i: int, now: int, currency: str, asked: Collection[str]) -> dict[str, Any]:
    """Posting i's blocks for its list: filled where `asked`, `null` elsewhere."""
    fbo = table.scheme[i] == FBO
    makers = {"analytics_data": _fbo_analytics if fbo else _fbs_analytics,
              "financial_data": _financial, "legal_info": _legal_info}
    if not fbo:
        makers["barcodes"] = _barcodes
    return {name: (make(table, i, now, currency) if name in asked else None) for name, make in makers.items()}


def _delivery_window(table: PostingTable, i: int) -> tuple[str, str]:
    """The delivery dates promised to the buyer: a day's span three days after payment."""
    paid = table.paid_at(i)
    return iso(paid + 3 * DAY), iso(paid + 4 * DAY)


def _fbs_analytics(table: PostingTable, i: int, now: int, currency: str) -> dict[str, Any]:
    # City and region are filled for rFBS only (ozon.md §2.6).
    city, region = _CITIES[table.buyer[i] % len(_CITIES)] if table.scheme[i] == RFBS else ("", "")
    begin, end = _delivery_window(table, i)
    return {"city": city, "region": region, "delivery_type": "PVZ", "is_premium": mix(i) % 5 == 0,
            "is_legal": False, "payment_type_group_name": "Банковская карта",
            "tpl_provider": "Доставка Ozon", "tpl_provider_id": 24,
            "warehouse": _FBS_WAREHOUSE[1], "warehouse_id": _FBS_WAREHOUSE[0],
            "delivery_date_begin": begin, "delivery_date_end": end,
            "client_delivery_date_begin": begin, "client_delivery_date_end": end}


def _fbo_analytics(table: PostingTable, i: int, now: int, currency: str) -> dict[str, Any]:
    begin, end = _delivery_window(table, i)
    return {"city": "", "delivery_type": "PVZ", "is_premium": mix(i) % 5 == 0, "is_legal": False,
            "payment_type_group_name": "Система Быстрых Платежей",
            "warehouse_id": _FBO_WAREHOUSE[0], "warehouse_name": _FBO_WAREHOUSE[1],
            "client_delivery_date_begin": begin, "client_delivery_date_end": end}


def _financial(table: PostingTable, i: int, now: int, currency: str) -> dict[str, Any]:
    fbo = table.scheme[i] == FBO
    settled = table.fate[i] == Fate.DELIVERED and now >= table.final_at(i)
    products = []
    for product, qty, price in table.lines(i):
        paid = float(price * qty)
        commission = round(paid * _COMMISSION_PERCENT / 100, 2) if settled else 0
        item: dict[str, Any] = {
            "product_id": product.sku, "price": float(price), "old_price": float(product.price),
            "payout": round(paid - commission, 2) if settled else 0,
            "total_discount_value": float(product.price - price),
            "total_discount_percent": round(float((product.price - price) / product.price * 100), 2),
            "actions": [], "commission": {"amount": commission, "currency": currency,
                                          "percent": _COMMISSION_PERCENT if settled else 0},
        }
        if not fbo:  # FBO's financial products have no quantity and no customer_price
            item.update(quantity=qty, customer_price={"amount": f"{price:.2f}", "currency": currency})
        products.append(item)
    h = mix(i * 3 + 1)
    return {"cluster_from": _CLUSTERS[h % len(_CLUSTERS)], "cluster_to": _CLUSTERS[(h >> 8) % len(_CLUSTERS)],
            "products": products}


def _legal_info(table: PostingTable, i: int, now: int, currency: str) -> dict[str, Any]:
    return {"company_name": "", "inn": "", "kpp": ""}  # a private buyer, as in the official v4 unfulfilled example


def _barcodes(table: PostingTable, i: int, now: int, currency: str) -> dict[str, Any]:
    code = f"{6013 * 10**11 + mix(i) % 10**11:015d}"
    return {"upper_barcode": code, "lower_barcode": code}
