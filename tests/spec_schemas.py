"""Validate payloads against the platforms' official response schemas (tests/fixtures/specs/).

The schemas come from each platform's own OpenAPI document (see tests/fixtures/specs/README.md),
so an emulator checked here agrees with the platform, not just with our client. Objects whose
official schema lists their properties are closed: an unknown key is an error.

    SCHEMAS = SpecSchemas("yandex_market")
    assert SCHEMAS.errors("POST /v1/businesses/{businessId}/orders", body) == []
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

__all__ = ["SpecSchemas"]

SPECS = Path(__file__).parent / "fixtures" / "specs"

_FORMATS = FormatChecker(formats=())
# RFC 3339 as the specs mean it: a date, a time and an offset (Z or ±hh:mm), fraction optional.
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    # Python reads at most 6 fraction digits; the shape is checked above, the values here.
    datetime.fromisoformat(re.sub(r"\.(\d{6})\d+", r".\1", value).replace("Z", "+00:00"))
    return True


@_FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None and date.fromisoformat(value) is not None


class SpecSchemas:
    """The transcribed official schemas of one platform."""

    def __init__(self, platform: str):
        self.platform = platform
        self.doc = _load(platform)

    @property
    def operations(self) -> list[str]:
        return list(self.doc["operations"])

    def validator(self, operation: str, status: int | str = 200) -> Draft202012Validator:
        responses = self.doc["operations"].get(operation)
        if responses is None:
            raise KeyError(f"{self.platform}: no transcribed operation {operation!r}")
        schema = responses.get(str(status))
        if schema is None:
            raise KeyError(f"{self.platform}: {operation} has no JSON schema for status {status}")
        return _validator(self.platform, operation, str(status))

    def errors(self, operation: str, payload: Any, status: int | str = 200, *,
               allow: Iterable[str] = ()) -> list[str]:
        """Every way `payload` breaks the official schema, as "json.path: message" lines.

        `allow`: regular expressions; an error line matching one is a deviation the caller
        keeps on purpose (with its evidence named where the caller passes it).
        """
        allowed = [re.compile(a) for a in allow]
        out = []
        for error in self.validator(operation, status).iter_errors(payload):
            line = f"{error.json_path}: {_message(error)}"
            if not any(a.search(line) for a in allowed):
                out.append(line)
        return sorted(set(out))


def _message(error: Any) -> str:
    """The error's own message, or its deepest cause's for anyOf/oneOf failures."""
    if error.context:
        best = max(error.context, key=lambda e: len(e.absolute_path))
        return f"{error.message[:120]} ({best.json_path}: {best.message[:200]})"
    return error.message[:300]


@cache
def _load(platform: str) -> dict[str, Any]:
    return json.loads((SPECS / f"{platform}.json").read_text(encoding="utf-8"))


@cache
def _validator(platform: str, operation: str, status: str) -> Draft202012Validator:
    doc = _load(platform)
    schema = {"$schema": doc["$schema"], "$defs": doc["$defs"], **doc["operations"][operation][status]}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_FORMATS)
