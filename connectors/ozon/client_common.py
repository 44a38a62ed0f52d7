"""What the Ozon client's reading and writing halves share: the paths, Ozon's error body, the
test for a refused key, the filter time format and the checks on an answer's paging fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.errors import FatalApiError
from connectors.http import PlatformErrorInfo

__all__ = ["CHAT_HISTORY", "CHAT_SEND", "CHAT_START", "COMMENT_CREATE", "FBO_LIST", "FBS_LIST", "KEY_PROBLEM",
           "MARKETPLACE", "REVIEW_COMMENTS", "REVIEW_LIST", "SELLER_ACTIONS", "VOUCHER_CREATE",
           "describe_ozon_error", "has_next", "list_field", "next_token", "ozon_time", "token_rejected"]

MARKETPLACE = "ozon"
FBS_LIST = "/v4/posting/fbs/list"
FBO_LIST = "/v3/posting/fbo/list"
REVIEW_LIST = "/v2/review/list"
REVIEW_COMMENTS = "/v1/review/comment/list"
COMMENT_CREATE = "/v1/review/comment/create"
VOUCHER_CREATE = "/v1/seller-actions/create/voucher"
SELLER_ACTIONS = "/v1/seller-actions/list"
CHAT_START = "/v1/chat/start"
CHAT_SEND = "/v1/chat/send/message"
CHAT_HISTORY = "/v3/chat/history"

# gRPC status codes Ozon's gateway puts in `code` (ozon.md §4.3).
_GRPC_CODES = {
    1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
    6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
    10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
    16: "UNAUTHENTICATED",
}
# Ozon's words for credentials it refuses (official error table, ozon.md §1/§4.3): "Invalid Api-Key,
# please check the key and try again", "Api-key is deactivated, …", "Api-Key is missing a required
# role for a method", "Api-Key is restricted to specific IP addresses", "403 Offer not signed", and a
# bad Client-Id ("Client-Id header value should be positive integer", [3p]); gRPC code 16 reads as
# "UNAUTHENTICATED: …". A 403 on a review method without these words is the missing subscription.
KEY_PROBLEM = re.compile(r"api[- _]?key|client[- _]?id|offer not signed|unauthenticated", re.I)


def describe_ozon_error(response: httpx.Response) -> PlatformErrorInfo:
    """Ozon's `{code, message, details}` error body as "CODE_NAME: message"."""
    try:
        body = response.json()
    except ValueError:
        return PlatformErrorInfo()
    if not isinstance(body, dict):
        return PlatformErrorInfo()
    code, message = body.get("code"), body.get("message")
    # `code` is an int32 by the schema but a string in some official examples (ozon.md §7.5).
    if isinstance(code, int) and not isinstance(code, bool):
        name = _GRPC_CODES.get(code, f"code {code}")
    else:
        name = code if isinstance(code, str) else ""
    parts = [p for p in (name, message if isinstance(message, str) else "") if p]
    return PlatformErrorInfo(": ".join(parts), response.headers.get("X-Request-Id", ""))


def token_rejected(status: int, info: PlatformErrorInfo) -> bool:
    """Whether an error answer says the Api-Key or Client-Id is refused, whatever its status.

    The status is not documented (ozon.md §4.3, §8); live probes ([3p]) saw "Invalid Api-Key" as a
    404 with gRPC code 5 and a malformed Client-Id as a 400, so the words decide, on any 4xx but
    a 429 (a rate limit is never the key's fault).
    """
    return 400 <= status < 500 and status != 429 and KEY_PROBLEM.search(info.message) is not None


def ozon_time(moment: datetime) -> str:
    """A filter bound in Ozon's `YYYY-MM-DDThh:mm:ssZ` pattern (UTC, whole seconds, floored).

    Flooring both ends keeps consecutive windows contiguous whether Ozon reads `to` as inclusive
    or not; an instant exactly on a boundary may be read twice, which the upserts absorb.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def has_next(body: Any) -> bool:
    """An answer's `has_next`: true when Ozon says more pages follow."""
    # An official chat example sends "true" as a string (ozon.md §7.4); accept both spellings.
    value = body.get("has_next") if isinstance(body, dict) else None
    return value is True or value == "true"


def next_token(body: dict[str, Any], field: str, current: str, endpoint: str) -> str:
    """The next page's cursor; a missing or unmoved one with has_next=true would loop forever."""
    token = body.get(field)
    if not isinstance(token, str) or not token or token == current:
        raise FatalApiError(f"has_next is true but '{field}' did not advance; stopping so nothing "
                            "is skipped silently, the next run reads this window again",
                            marketplace=MARKETPLACE, endpoint=endpoint)
    return token


def list_field(body: Any, field: str, endpoint: str) -> list[Any]:
    """The list `field` of an answer ([] when it is null); FatalApiError when it is missing."""
    value = body.get(field) if isinstance(body, dict) else None
    if value is None and isinstance(body, dict) and field in body:
        return []
    if not isinstance(value, list):
        raise FatalApiError(f"response has no '{field}' list", marketplace=MARKETPLACE, endpoint=endpoint)
    return value
