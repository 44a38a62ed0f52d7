"""JSON postings of the Ozon emulator: `/v4/posting/fbs/list` and `/v3/posting/fbo/list` items.

Every key of the official examples is sent (tests/connectors/ozon/test_emulator_schema.py checks
them against the official schema). `analytics_data`, `financial_data`, `legal_info` and `barcodes`
are filled only when the request's `with` asks for them (`emulator_blocks`), and are `null`
otherwise, as Ozon's gateway writes an unset block: the official `/v3/posting/fbs/get` example
answers the first three `null`, the FBO list example its `legal_info`. The connector asks for none.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from connectors.ozon.emulator_blocks import with_blocks
from connectors.ozon.emulator_data import DAY, FBO, HOUR, RFBS, US, Fate, PostingTable, iso, mix

__all__ = ["fbo_posting", "fbs_posting"]

_CANCEL = {  # fate -> (cancel_reason_id, cancel_reason, cancellation_type, initiator, after_ship)
    Fate.BUYER_CANCEL: (402, "Покупатель передумал", "client", "Покупатель", False),
    Fate.SELLER_CANCEL: (352, "Товар закончился на складе продавца", "seller", "Продавец", False),
    Fate.OZON_CANCEL: (400, "Отправление утеряно при доставке", "ozon", "Ozon", True),
    Fate.NOT_COLLECTED: (505, "Покупатель не забрал отправление", "client", "Покупатель", True),
}
_CITIES = (("Москва", "Москва", "101000"), ("Казань", "Республика Татарстан", "420000"),
           ("Екатеринбург", "Свердловская область", "620000"), ("Омск", "Омская область", "644000"))
_RFBS_TPL = ("3pl_tracking", "non_integrated", "aggregator")
_NO_CANCELLATION = {"cancel_reason_id": 0, "cancel_reason": "", "cancellation_type": "",
                    "cancelled_after_ship": False, "affect_cancellation_rating": False,
                    "cancellation_initiator": ""}
_WAREHOUSE = (1_020_005_003_107_121, "Склад продавца Ногинск")
_COLORS = ("белый", "чёрный", "серый", "синий", "")
# Every list of `requirements` (posting.v4 ...Postings.Requirements): nothing is required here.
_REQUIREMENTS = ("products_requiring_change_country", "products_requiring_country", "products_requiring_gtd",
                 "products_requiring_imei", "products_requiring_jw_uin", "products_requiring_mandatory_mark",
                 "products_requiring_rnpt", "products_requiring_weight")


def _cancellation(table: PostingTable, i: int, status: str) -> dict[str, Any]:
    """The FBS/rFBS `cancellation` block (all six keys, empty while not cancelled)."""
    if status != "cancelled":
        return dict(_NO_CANCELLATION)
    reason_id, reason, kind, initiator, after_ship = _CANCEL[table.fate[i]]
    return {"cancel_reason_id": reason_id, "cancel_reason": reason, "cancellation_type": kind,
            "cancelled_after_ship": after_ship, "affect_cancellation_rating": kind == "seller",
            "cancellation_initiator": initiator}


def _fbo_cancellation(table: PostingTable, i: int, status: str) -> tuple[int, dict[str, Any] | None]:
    """FBO's posting-level `cancel_reason_id` and its smaller `cancellation` block.

    `posting.v3.PostingFboListResponse.Postings.Cancellation` has only `cancel_reason`,
    `cancellation_initiator` and `cancellation_type` (ozon.md §2.4); the reason id is the posting's
    own `cancel_reason_id`. The official example answers `0` and `"cancellation": null` for a
    posting that is not cancelled.
    """
    if status != "cancelled":
        return 0, None
    reason_id, reason, kind, initiator, _ = _CANCEL[table.fate[i]]
    return reason_id, {"cancel_reason": reason, "cancellation_initiator": initiator, "cancellation_type": kind}


def _money(amount: str, currency: str) -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def _tariffication(currency: str) -> dict[str, Any]:
    """A flat tariff with no next step, as in the official v4 unfulfilled example (`next_*` null)."""
    return {"current_tariff_rate": 0, "current_tariff_type": "", "current_tariff_charge": _money("0", currency),
            "current_tariff_min_charge": _money("0", currency), "next_tariff_rate": 0, "next_tariff_type": "",
            "next_tariff_charge": None, "next_tariff_min_charge": None, "next_tariff_starts_at": None}


def _products(table: PostingTable, i: int, currency: str, fbo: bool) -> list[dict[str, Any]]:
    out = []
    for product, qty, price in table.lines(i):
        # Ozon's amount strings come with and without decimals ("300", "12990.00").
        amount = f"{price:.2f}" if price != price.to_integral() or mix(i) % 2 else f"{price:.0f}"
        item: dict[str, Any] = {"sku": product.sku, "offer_id": product.offer_id, "name": product.name,
                                "quantity": qty, "price": {"amount": amount, "currency": currency},
                                "is_marketplace_buyout": False}
        if fbo:
            item["digital_codes"] = []
        else:
            item.update(imei=[], is_blr_traceable=False, weight=0.4,
                        product_color=_COLORS[product.sku % len(_COLORS)])
        out.append(item)
    return out


def _customer(table: PostingTable, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `customer` and `addressee` blocks of an rFBS posting: everything loyalsync must not keep."""
    k = table.buyer[i]
    city, region, zip_code = _CITIES[k % len(_CITIES)]
    h = mix(i * 13 + 5)
    name = table.buyer_name(k)
    return {
        # int64, a JSON number in the schema and the official v4 example (ozon.md §2.1, §6).
        "customer_id": table.customer_id(k),
        "name": name, "phone": table.phone(i), "customer_email": table.buyer_email(k),
        "address": {"address_tail": f"ул. Садовая, д. {k % 90 + 1}, кв. {h % 200 + 1}", "city": city,
                    "comment": "Позвонить за час", "country": "Россия", "district": "",
                    "latitude": 55.75 + k % 7 / 100, "longitude": 37.61 + k % 5 / 100,
                    "provider_pvz_code": "", "pvz_code": 0, "region": region, "zip_code": zip_code},
    }, {"name": name}


def fbs_posting(table: PostingTable, i: int, now: int, currency: str,
                customer_visible_days: int | None = None, blocks: Collection[str] = ()) -> dict[str, Any]:
    """An item of `postings[]` in `/v4/posting/fbs/list` as seen at `now`, with the `blocks` asked for."""
    status, substatus, _ = table.state(i, now)
    t0, (t1, t2, _, _) = table.t0[i], table.offsets(i)
    rfbs = table.scheme[i] == RFBS
    customer, addressee = _customer(table, i) if table.has_customer(i) else (None, None)
    if customer is not None and customer_visible_days is not None \
            and now >= table.final_at(i) + customer_visible_days * DAY:
        customer = addressee = None  # kept only while the order needs it (ozon.md §2.6)
    digits = 0 if t0 % US == 0 else 3
    return {
        "posting_number": table.posting_number(i), "order_id": table.order_ids[i],
        "order_number": table.order_number(i), "parent_posting_number": "",
        "status": status, "substatus": substatus,
        "delivery_method": {"id": _WAREHOUSE[0], "name": f"Доставка, {_WAREHOUSE[1]}",
                            "tpl_provider": "Доставка Ozon", "tpl_provider_id": 24,
                            "warehouse": _WAREHOUSE[1], "warehouse_id": _WAREHOUSE[0]},
        "delivery_schema": "fbs",
        "tpl_integration_type": _RFBS_TPL[i % len(_RFBS_TPL)] if rfbs else "ozon",
        "tracking_number": f"RP{mix(i) % 10**9:09d}RU" if rfbs and now - t0 >= t2 else "",
        "in_process_at": iso(t0, digits), "shipment_date": iso(t0 + t1 + 2 * HOUR, digits),
        "shipment_date_without_delay": iso(t0 + t1 + 2 * HOUR, digits),
        "delivering_date": iso(t0 + t2, digits) if now - t0 >= t2 and status != "awaiting_deliver" else None,
        "pickup_code_verified_at": None,
        "cancellation": _cancellation(table, i, status),
        "customer": customer, "addressee": addressee,
        "products": _products(table, i, currency, fbo=False),
        **with_blocks(table, i, now, currency, blocks),
        "available_actions": ["can_create_chat"] if table.chat_start_open(i, now) else [],
        "is_express": False, "is_multibox": False, "multi_box_qty": 1, "is_presortable": False,
        "is_click_and_collect": False, "prr_option": "", "quantum_id": 0,
        "destination_place_id": 0, "destination_place_name": "", "require_blr_traceable_attrs": False,
        "external_order": {"is_external": False, "platform_name": ""},
        # Not a multi-box shipment in a container: `null`, as the official v4 unfulfilled example.
        "container": None, "container_sort_type": "",
        "optional": {"products_with_possible_mandatory_mark": []},
        "requirements": {name: [] for name in _REQUIREMENTS},
        "tariffication": _tariffication(currency), "tariffication_steps": [],
        "volume_weight": round(0.4 * sum(qty for _, qty, _ in table.lines(i)), 3),
    }


def fbo_posting(table: PostingTable, i: int, now: int, currency: str, blocks: Collection[str] = ()) -> dict[str, Any]:
    """An item of `postings[]` in `/v3/posting/fbo/list` as seen at `now` (no buyer block)."""
    assert table.scheme[i] == FBO
    status, substatus, _ = table.state(i, now)
    t0 = table.t0[i]
    reason_id, cancellation = _fbo_cancellation(table, i, status)
    return {
        "posting_number": table.posting_number(i), "order_id": table.order_ids[i],
        "order_number": table.order_number(i), "status": status,
        "substatus": "posting_received" if status == "delivered" else substatus,
        "cancel_reason_id": reason_id, "cancellation": cancellation,
        "created_at": iso(t0, 6), "in_process_at": iso(table.paid_at(i), 6),
        "products": _products(table, i, currency, fbo=True),
        **with_blocks(table, i, now, currency, blocks),
        "external_order": {"is_external": False, "platform_name": ""}, "additional_data": [],
    }
