"""Where Ozon's own answers leave its official schema, each shown by an official example.

Shared by the emulator's schema test (`test_emulator_schema.py`, which also checks each example
says what its deviation claims) and the conformance harness (`test_conformance.py`), so the kit
checks every answer of a conformance run against the same schema with the same allowances.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACTIONS", "CHAT_HISTORY", "CHAT_SEND", "CHAT_START", "COMMENTS", "COMMENT_CREATE", "EMULATOR_DEVIATIONS",
           "FBO", "FBS", "FIXTURE_DEVIATIONS", "NONE", "PRODUCT_INFO", "REVIEWS", "VOUCHER", "Deviation",
           "allowed_by_operation"]

FBS = "POST /v4/posting/fbs/list"
FBO = "POST /v3/posting/fbo/list"
REVIEWS = "POST /v2/review/list"
COMMENTS = "POST /v1/review/comment/list"
COMMENT_CREATE = "POST /v1/review/comment/create"
VOUCHER = "POST /v1/seller-actions/create/voucher"
ACTIONS = "POST /v1/seller-actions/list"
CHAT_START = "POST /v1/chat/start"
CHAT_SEND = "POST /v1/chat/send/message"
CHAT_HISTORY = "POST /v3/chat/history"
PRODUCT_INFO = "POST /v3/product/info/list"


@dataclass(frozen=True)
class Deviation:
    """A schema error kept because Ozon's official `example` holds the same kind of value at `where`."""

    operation: str
    error: str  # a regular expression for the validator's "json.path: message" line
    example: str  # a file of tests/fixtures/ozon that is a verbatim official example
    where: tuple[str | int, ...]  # the deviating value's path inside that example
    value: type  # what the example has there (NoneType for null)


NONE = type(None)
_P = r"^\$\.postings\[\d+\]\."
_UNFULFILLED = "fbs_unfulfilled_list_v4_response.json"  # official `/v4/posting/fbs/unfulfilled/list` example
#: What the emulator sends beyond the schema, each shown by an official example (ozon.md §10):
#: Ozon's gateway writes an unset block or timestamp as null where the spec says object/string.
EMULATOR_DEVIATIONS = (
    Deviation(FBS, _P + r"pickup_code_verified_at: None is not of type 'string'$",
              "fbs_list_response.json", ("postings", 0, "pickup_code_verified_at"), NONE),
    Deviation(FBS, _P + r"delivering_date: None is not of type 'string'$",
              _UNFULFILLED, ("postings", 0, "delivering_date"), NONE),
    Deviation(FBS, _P + r"customer: None is not of type 'object'$", _UNFULFILLED, ("postings", 0, "customer"), NONE),
    Deviation(FBS, _P + r"addressee: None is not of type 'object'$", _UNFULFILLED, ("postings", 0, "addressee"), NONE),
    Deviation(FBS, _P + r"container: None is not of type 'object'$", _UNFULFILLED, ("postings", 0, "container"), NONE),
    Deviation(FBS, _P + r"tariffication\.next_tariff_charge: None is not of type 'object'$",
              _UNFULFILLED, ("postings", 0, "tariffication", "next_tariff_charge"), NONE),
    Deviation(FBS, _P + r"tariffication\.next_tariff_min_charge: None is not of type 'object'$",
              _UNFULFILLED, ("postings", 0, "tariffication", "next_tariff_min_charge"), NONE),
    Deviation(FBS, _P + r"tariffication\.next_tariff_starts_at: None is not of type 'string'$",
              _UNFULFILLED, ("postings", 0, "tariffication", "next_tariff_starts_at"), NONE),
    # A block the request's `with` did not ask for: the official `/v3/posting/fbs/get` example
    # answers these three null, the official FBO list example its legal_info.
    *(Deviation(op, _P + rf"{block}: None is not of type 'object'$", "fbs_get_response.json",
                ("result", block), NONE)
      for op in (FBS, FBO) for block in ("analytics_data", "financial_data"))
    ,
    Deviation(FBS, _P + r"barcodes: None is not of type 'object'$", "fbs_get_response.json",
              ("result", "barcodes"), NONE),
    *(Deviation(op, _P + r"legal_info: None is not of type 'object'$", "fbo_list_response.json",
                ("postings", 0, "legal_info"), NONE) for op in (FBS, FBO)),
    Deviation(FBO, _P + r"cancellation: None is not of type 'object'$", "fbo_list_response.json",
              ("postings", 0, "cancellation"), NONE),
    Deviation(REVIEWS, r"^\$\.reviews\[\d+\]\.sku: '\d+' is not of type 'integer'$",
              "review_list_v2_response_official_example.json", ("reviews", 0, "sku"), str),
    Deviation(CHAT_HISTORY, r"^\$\.messages\[\d+\]\.message_id: '\d+' is not of type 'integer'$",
              "chat_history_v3_response.json", ("messages", 0, "message_id"), str),
)
#: Quirks of official examples the emulator does not copy; allowed when validating those files only.
FIXTURE_DEVIATIONS = (
    # The spec's `pattern` here is prose; the example's value is the RFC 3339 its `format` asks for.
    Deviation(FBS, _P + r"tariffication\.next_tariff_starts_at: '[^']+' does not match ' YYYY-MM-DDThh:mm:ss\.mcsZ'$",
              "fbs_list_response.json", ("postings", 0, "tariffication", "next_tariff_starts_at"), str),
    Deviation(FBO, _P + r"analytics_data\.client_delivery_date_(begin|end): None is not of type 'string'$",
              "fbo_list_response.json", ("postings", 0, "analytics_data", "client_delivery_date_begin"), NONE),
    Deviation(REVIEWS, r"^\$\.reviews\[\d+\]\.status: 'UNPROCESSED' is not one of",  # v1's word (ozon.md §7.1)
              "review_list_v2_response_official_example.json", ("reviews", 0, "status"), str),
    Deviation("errors", r"^\$\.code: 'RESOURCE_EXHAUSTED' is not of type 'integer'$",  # ozon.md §7.5
              "error_429_product_import_official_example.json", ("code",), str),
    # The official /v3/product/info/list example writes four enums without the schema's prefixes.
    *(Deviation(PRODUCT_INFO, rf"^\$\.items\[0\]\.{where}: '{value}' is not one of", "product_info_list_response.json",
                ("items", 0, *path), str)
      for where, value, path in (
          (r"errors\[0\]\.level", "ERROR", ("errors", 0, "level")),
          (r"price_indexes\.color_index", "RED", ("price_indexes", "color_index")),
          (r"promotions\[0\]\.type", "DISCOUNT", ("promotions", 0, "type")),
          (r"sources\[0\]\.shipment_type", "EXPRESS", ("sources", 0, "shipment_type")))),
)


def allowed_by_operation(deviations: tuple[Deviation, ...] = EMULATOR_DEVIATIONS) -> dict[str, list[str]]:
    """operation -> the error lines its `deviations` keep."""
    out: dict[str, list[str]] = {}
    for d in deviations:
        out.setdefault(d.operation, []).append(d.error)
    return out
