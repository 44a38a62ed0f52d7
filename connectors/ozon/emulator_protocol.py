"""The request side of the Ozon emulator shared by its handlers: paths, error bodies, and reading
a request the way Ozon's grpc-gateway does (a null scalar is its default, ozon.md §6)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson

from connectors.ozon.emulator_data import US, iso

__all__ = ["CHAT_HISTORY", "COMMENT_LIST", "FBO_LIST", "FBS_LIST", "REVIEW_LIST", "SELLER_ACTIONS", "Refused",
           "bad_request", "error_answer", "limit_of", "offset_of", "parse_time", "posting_cursor", "read_cursor",
           "scalar"]

FBS_LIST, FBO_LIST = "/v4/posting/fbs/list", "/v3/posting/fbo/list"
REVIEW_LIST, COMMENT_LIST = "/v2/review/list", "/v1/review/comment/list"
SELLER_ACTIONS, CHAT_HISTORY = "/v1/seller-actions/list", "/v3/chat/history"


def error_answer(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    """(status, Ozon's `rpcStatus` body `{code, message, details}`)."""
    return status, {"code": code, "message": message, "details": []}


class Refused(Exception):
    """Raised by a method handler to answer with Ozon's error body instead of data."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.answer = error_answer(status, code, message)


def bad_request(message: str) -> Refused:
    """Ozon's 400 INVALID_ARGUMENT."""
    return Refused(400, 3, f"invalid request: {message}")


def parse_time(value: Any) -> int | None:
    """A filter date-time as unix microseconds, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if moment.tzinfo is None else int(moment.timestamp() * US)


def posting_cursor(t0: int, i: int) -> str:
    """Ozon's keyset cursor shape: base64 JSON naming the sort fields (treated as opaque)."""
    doc = {"fields": [{"name": "osp.in_process_at", "dir": "asc", "val": iso(t0, 6)},
                      {"name": "osp.id", "dir": "asc", "val": str(i)}]}
    return base64.b64encode(orjson.dumps(doc)).decode()


def read_cursor(text: str) -> tuple[int, int] | None:
    """(t0, index) of a cursor `posting_cursor` made, or None."""
    try:
        fields = orjson.loads(base64.b64decode(text, validate=True))["fields"]
        return parse_time(fields[0]["val"]) or 0, int(fields[1]["val"])
    except (ValueError, KeyError, IndexError, TypeError, orjson.JSONDecodeError):
        return None


def scalar(body: dict[str, Any], name: str, default: Any) -> Any:
    """A request field, `default` when absent or null: Ozon's grpc-gateway reads a null scalar as
    its default (ozon.md §6), so `{"offset": null}` is offset 0, never a 400."""
    value = body.get(name)
    return default if value is None else value


def limit_of(body: dict[str, Any], lo: int, hi: int, default: int = 0) -> int | None:
    """`limit` if it is an integer in [lo, hi], else None (the caller refuses it)."""
    value = scalar(body, "limit", default)
    return value if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi else None


def offset_of(body: dict[str, Any]) -> int:
    """`offset` (null or absent: 0), or a 400."""
    offset = scalar(body, "offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise bad_request("offset must be a non-negative integer")
    return offset
