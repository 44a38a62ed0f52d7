"""One table decides what a response means: status -> action, and what an error body says.

Each platform overrides a few entries (Yandex Market: 420 means rate limited) through
`ApiClient(error_mapping=...)` and reads its own error envelope through `describe_error=`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from types import MappingProxyType

import httpx

__all__ = [
    "DEFAULT_ERROR_MAPPING",
    "PlatformErrorInfo",
    "ResponseAction",
    "classify",
    "describe_json_error",
    "parse_retry_after",
]


class ResponseAction(StrEnum):
    """What a response means for the caller."""

    SUCCESS = "success"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    FAIL = "fail"


_A = ResponseAction
DEFAULT_ERROR_MAPPING: Mapping[int, ResponseAction] = MappingProxyType(
    {
        **dict.fromkeys((200, 201, 202, 204), _A.SUCCESS),
        **dict.fromkeys((400, 404, 405, 409, 413, 415, 422), _A.FAIL),
        401: _A.AUTH,
        403: _A.AUTH,
        429: _A.RATE_LIMITED,
        **dict.fromkeys((408, 425, 500, 502, 503, 504), _A.RETRY),
    }
)


def classify(
    status: int, mapping: Mapping[int, ResponseAction] = DEFAULT_ERROR_MAPPING
) -> ResponseAction:
    """The action for `status`: the mapping's entry, else 2xx success, 5xx retry, others fail."""
    action = mapping.get(status)
    if action is not None:
        return action
    if 200 <= status < 300:
        return _A.SUCCESS
    return _A.RETRY if 500 <= status < 600 else _A.FAIL


@dataclass(frozen=True, slots=True)
class PlatformErrorInfo:
    """What a platform's error body says, as far as an error message may repeat it."""

    message: str = ""
    request_id: str = ""


def describe_json_error(response: httpx.Response) -> PlatformErrorInfo:
    """Read common error envelopes: WB `detail`/`title`/`requestId`, Yandex `errors[].message`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    keys = (first.get("message"), body.get("detail"), body.get("message"), body.get("title"))
    request_id = body.get("requestId") or response.headers.get("X-Request-Id", "")
    return PlatformErrorInfo(next((str(v) for v in keys if v), ""), str(request_id))


def parse_retry_after(value: str, now: datetime) -> float | None:
    """Seconds to wait from a hint header (seconds or an HTTP date); None if it is no hint."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are always GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return seconds if math.isfinite(seconds) and seconds > 0 else None
