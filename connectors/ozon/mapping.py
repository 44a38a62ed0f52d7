"""Ozon payloads -> normalised records. Pure functions; each raises MalformedRecord naming the field.

One posting (отправление) is one order record, keyed by `posting_number`: a posting has its own
status, products and cancellation, while one Ozon order (`order_number`) can split into several.
Ozon writes every time in UTC with `Z`; 64-bit ids arrive as JSON numbers or strings; money is
`{amount: "<decimal string>", currency}` in v4 FBS and v3 FBO, a decimal string next to
`currency_code` in the deprecated v3 lists, and JSON numbers in `financial_data` (ozon.md §6).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors.base import MappingContext
from connectors.convert import number_to_decimal, parse_aware
from connectors.errors import MalformedRecord
from connectors.records import OrderLine, OrderRecord, OrderStatus, ReviewRecord

__all__ = [
    "buyer_key",
    "fulfilment",
    "map_fbo_posting",
    "map_fbs_posting",
    "map_review",
    "posting_status",
]

_S = OrderStatus
# ozon.md §2.5. Still with the seller (or at Ozon's warehouse for FBO) until handed to delivery.
_STATUSES = {
    "awaiting_registration": _S.CREATED, "acceptance_in_progress": _S.CREATED,
    "awaiting_approve": _S.CREATED, "awaiting_packaging": _S.CREATED,
    "awaiting_verification": _S.CREATED, "awaiting_deliver": _S.CREATED,
    # Handed over: on the way, with a driver, sent by an rFBS seller, refused by a sorting centre,
    # or in a delivery dispute. None of these is final.
    "delivering": _S.IN_DELIVERY, "driver_pickup": _S.IN_DELIVERY, "sent_by_seller": _S.IN_DELIVERY,
    "not_accepted": _S.IN_DELIVERY, "arbitration": _S.IN_DELIVERY,
    "client_arbitration": _S.IN_DELIVERY,
    "delivered": _S.DELIVERED,
    "cancelled": _S.CANCELLED, "cancelled_from_split_pending": _S.CANCELLED,
}
# A posting whose goods came back to the warehouse after shipping (not collected, refused): the
# sale did not happen although the parcel travelled. Returns after delivery live in Ozon's returns
# API, which this connector does not read.
_RETURNED_SUBSTATUS = "posting_returned_to_warehouse"
# rFBS = the seller or a third party delivers (ozon.md §2): every integration type but Ozon's own.
_OZON_DELIVERS = "ozon"
# The store's column sizes (store.tables): PostgreSQL rejects a longer value, and one such
# value would fail its whole page instead of going to quarantine.
_MAX_ID, _MAX_OFFER_ID, _MAX_STATUS = 128, 256, 60
# FBS and FBO list the postings under one source; a posting is in exactly one of them.
SOURCE_FBS, SOURCE_FBO = "fbs_list", "fbo_list"


def posting_status(status: str, substatus: str | None = None) -> OrderStatus:
    """Ozon's posting status (and substatus) -> the normalised lifecycle.

    A status Ozon adds later maps to `created` with the raw value kept in `platform_status`, so
    the order is stored rather than quarantined and can be re-mapped once it is known.
    """
    if substatus == _RETURNED_SUBSTATUS:
        return _S.RETURNED
    return _STATUSES.get(status, _S.CREATED)


def fulfilment(raw: dict[str, Any]) -> str:
    """`rfbs` or `fbs` for a posting of the FBS list."""
    schema = raw.get("delivery_schema")
    if isinstance(schema, str) and schema.lower() == "rfbs":
        return "rfbs"
    tpl = raw.get("tpl_integration_type")
    # `3pl_tracking`, `non_integrated`, `aggregator`, `hybryd` (sic): not delivered by Ozon.
    return "rfbs" if isinstance(tpl, str) and tpl and tpl != _OZON_DELIVERS else "fbs"


def buyer_key(raw: dict[str, Any], ctx: MappingContext) -> str | None:
    """The salted key of `customer.customer_id`; None without a customer block or with id 0/"".

    `customer_id` is an int64 JSON number in the schema and the official v4 example (ozon.md
    §2.1); a digit string is accepted too, as Ozon serialises other 64-bit ids that way (§6), and
    both spellings of one id give one key. Only the hash leaves this function: name, phone,
    e-mail and address are never read.
    """
    customer = raw.get("customer")
    if customer is None:
        return None
    if not isinstance(customer, dict):
        raise MalformedRecord(f"customer: expected an object or null, got {type(customer).__name__}")
    value = customer.get("customer_id")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MalformedRecord(f"customer.customer_id: expected an id, got {type(value).__name__}")
    text = str(value).strip()
    if not text.isdigit():
        raise MalformedRecord("customer.customer_id: expected a numeric id")  # never echo the value
    if int(text) == 0:
        return None
    return ctx.buyer_key(str(int(text)))  # 123 and "0123" are one buyer, as 123 and "123" are


def map_fbs_posting(raw: dict[str, Any], ctx: MappingContext) -> OrderRecord:
    """A posting of `POST /v4/posting/fbs/list` (or v3/get shapes): FBS or rFBS."""
    return _map_posting(raw, ctx, fulfilment(raw), "in_process_at", SOURCE_FBS)


def map_fbo_posting(raw: dict[str, Any], ctx: MappingContext) -> OrderRecord:
    """A posting of `POST /v3/posting/fbo/list` (or the deprecated v2); FBO has no customer."""
    return _map_posting(raw, ctx, "fbo", "created_at" if raw.get("created_at") else "in_process_at",
                        SOURCE_FBO)


def _map_posting(raw: dict[str, Any], ctx: MappingContext, scheme: str, time_field: str,
                 source: str) -> OrderRecord:
    posting = _id(raw.get("posting_number"), "posting_number")
    try:
        status = raw.get("status")
        if not isinstance(status, str) or not 0 < len(status) <= _MAX_STATUS:
            raise MalformedRecord(f"status: expected a status name, got {status!r:.80}")
        substatus = raw.get("substatus")
        if substatus is not None and not (isinstance(substatus, str) and len(substatus) <= _MAX_STATUS):
            raise MalformedRecord(f"substatus: expected a status name, got {substatus!r:.80}")
        # `in_process_at` is when processing started: Ozon's order date (ozon.md §2.1).
        created = parse_aware(raw.get(time_field), time_field)
        lines, currency = _lines(raw.get("products"))
        total = sum((line.price * line.quantity for line in lines), Decimal("0.00"))
        return OrderRecord(
            marketplace=ctx.marketplace, account=ctx.account, order_id=posting,
            # The lists carry no status-change time, so the one instant known is the order date.
            # `status_changed_at` stays None (the store stamps when a sync first saw the status):
            # no field of a v4 FBS or v3 FBO posting is the time of its current status (ozon.md
            # §2.1, §2.4). `delivering_date` is "Дата передачи отправления в доставку" (hand-over to
            # delivery), and the official v4 example fills it on an `awaiting_packaging` posting, so
            # it can be a planned date; `pickup_code_verified_at` is when a courier's code was checked;
            # `cancellation{…}` has reasons and initiator but no time; FBO has only `created_at` and
            # `in_process_at`. `fact_delivery_date` exists only in `/v3/posting/fbs/get`, which the
            # connector does not call.
            created_at=created, updated_at=created,
            status=posting_status(status, substatus),
            platform_status=f"{status}/{substatus}" if substatus else status,
            fulfilment=scheme, currency=currency, total=total, lines=lines,
            buyer_key=buyer_key(raw, ctx), source=source,
        )
    except MalformedRecord as exc:
        raise MalformedRecord(exc.reason, record_key=posting) from None


def _lines(products: Any) -> tuple[tuple[OrderLine, ...], str]:
    """Order lines at `products[].price` per unit, and their one currency.

    Why `products[].price`: it is in every scheme and API version from the posting's creation on,
    and is the seller's price for the line. `financial_data` is a separate opt-in block whose
    amounts are partly 0 until delivery and whose `customer_price` (what the buyer paid, after
    Ozon-funded discounts) is missing on FBO (ozon.md §6): a total built from it would change
    under an order's feet and differ between schemes.
    """
    if not isinstance(products, list) or not products:
        raise MalformedRecord("products: expected a non-empty list")
    lines, currencies = [], set()
    for k, product in enumerate(products):
        where = f"products[{k}]"
        if not isinstance(product, dict):
            raise MalformedRecord(f"{where}: expected an object")
        quantity = product.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise MalformedRecord(f"{where}.quantity: expected a positive integer, got {quantity!r}")
        price, currency = _money(product, where)
        currencies.add(currency)
        lines.append(OrderLine(
            sku=_id(product.get("sku"), f"{where}.sku"),
            offer_id=_opt_str(product.get("offer_id"), f"{where}.offer_id"),
            name=_opt_str(product.get("name"), f"{where}.name", None), quantity=quantity, price=price,
        ))
    if len(currencies) > 1:
        raise MalformedRecord(f"products: lines in several currencies {sorted(currencies)}")
    return tuple(lines), currencies.pop()


def _money(product: dict[str, Any], where: str) -> tuple[Decimal, str]:
    """`price` as `{amount, currency}` (v4/v3 FBO) or a string/number beside `currency_code` (v3)."""
    price = product.get("price")
    if isinstance(price, dict):
        return (number_to_decimal(price.get("amount"), f"{where}.price.amount"),
                _currency(price.get("currency"), f"{where}.price.currency"))
    return (number_to_decimal(price, f"{where}.price"),
            _currency(product.get("currency_code"), f"{where}.currency_code"))


def _currency(value: object, field: str) -> str:
    if not (isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha()):
        raise MalformedRecord(f"{field}: expected an ISO 4217 code, got {value!r}")
    return value.upper()


def map_review(raw: dict[str, Any], ctx: MappingContext) -> ReviewRecord:
    """A review of `POST /v2/review/list`, with the client's `_comments` if it fetched them.

    Ozon links no order and no buyer to a review (only `sku`), and no longer returns pros/cons.
    The seller has answered when one of its own comments (`is_owner`) was not rejected by
    moderation; the newest such comment is the answer.
    """
    review_id = _id(raw.get("id"), "id")
    try:
        rating = raw.get("rating")
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise MalformedRecord(f"rating: expected 1..5, got {rating!r}")
        text = raw.get("text")
        if text is not None and not isinstance(text, str):
            raise MalformedRecord(f"text: expected a string, got {type(text).__name__}")
        answer = _seller_answer(raw.get("_comments"))
        return ReviewRecord(
            marketplace=ctx.marketplace, account=ctx.account, review_id=review_id,
            sku=_id(raw.get("sku"), "sku"), rating=rating, text=text or "", pros="", cons="",
            created_at=parse_aware(raw.get("published_at"), "published_at"),
            answered=answer is not None, answer_text=answer or None,
        )
    except MalformedRecord as exc:
        raise MalformedRecord(exc.reason, record_key=review_id) from None


def _seller_answer(comments: Any) -> str | None:
    """The text of the seller's newest comment that moderation did not reject, or None if there is
    none ('' if that comment has no text)."""
    if comments is None:
        return None  # the review has no comments, so the client fetched none
    if not isinstance(comments, list):
        raise MalformedRecord("_comments: expected a list")
    answer = None
    for k, comment in enumerate(comments):  # fetched with sort_dir=ASC: the last one is newest
        if not isinstance(comment, dict):
            raise MalformedRecord(f"_comments[{k}]: expected an object")
        if comment.get("is_owner") is True and comment.get("is_rejected") is not True:
            text = comment.get("text")
            answer = text if isinstance(text, str) else ""
    return answer


def _id(value: object, field: str) -> str:
    """A platform id that may be a JSON number or a string, as a string; 0 and "" are missing."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**40:
        return str(value)
    if isinstance(value, str) and value.strip() and value.strip() != "0" and len(value) <= _MAX_ID:
        return value.strip()
    raise MalformedRecord(f"{field}: missing or not an id: {value!r:.80}")


def _opt_str(value: object, field: str, limit: int | None = _MAX_OFFER_ID) -> str | None:
    """An optional text; longer than the store's column it is malformed, not silently cut."""
    if not isinstance(value, str) or not value:
        return None
    if limit is not None and len(value) > limit:
        raise MalformedRecord(f"{field}: longer than {limit} characters")
    return value
