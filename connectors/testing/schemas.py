"""Checking an emulator's answers against the platform's own response schemas.

A connector vendors the platform's schemas (its official OpenAPI document, transcribed to JSON
Schema 2020-12) and its harness lists them as `ResponseSchema`s; the kit validates every answer its
emulator gives. The errors are "json.path: message" lines, so a harness can keep, on purpose and
with its evidence, a deviation the platform itself shows (`ResponseSchema.allow`).

A transcribed spec has one shape, `{"$schema", "$defs", "operations": {"METHOD /path/{param}":
{"200": schema, "404": schema, "default": schema}}}`; `spec_response_schemas` turns it into the
harness's list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from connectors.testing.harness import ResponseSchema

__all__ = ["FORMATS", "error_lines", "schema_problem", "spec_response_schemas"]

# RFC 3339 as the specs mean it: a date, a time and an offset (Z or ±hh:mm), fraction optional.
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    # Python reads at most 6 fraction digits; the shape is checked above, the values here.
    try:
        datetime.fromisoformat(re.sub(r"\.(\d{6})\d+", r".\1", value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is None:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _format_checker() -> Any:
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_date_time)
    checker.checks("date")(_is_date)
    return checker


#: The formats the platforms' specs use, checked as they mean them (`jsonschema.FormatChecker`).
FORMATS = _format_checker()


def error_lines(schema: Mapping[str, Any], document: Any) -> list[str]:
    """Every way `document` breaks `schema`, as sorted, distinct "json.path: message" lines."""
    return sorted({f"{error.json_path}: {_message(error)}" for error in _validator(schema).iter_errors(document)})


_VALIDATORS: dict[int, tuple[Mapping[str, Any], Any]] = {}


def _validator(schema: Mapping[str, Any]) -> Any:
    """One compiled validator per schema object (a sync's answers reuse a few schemas hundreds of times)."""
    from jsonschema import Draft202012Validator

    kept = _VALIDATORS.get(id(schema))
    if kept is None or kept[0] is not schema:
        Draft202012Validator.check_schema(schema)
        kept = _VALIDATORS[id(schema)] = (schema, Draft202012Validator(schema, format_checker=FORMATS))
    return kept[1]


def _message(error: Any) -> str:
    """The error's own message, or its deepest cause's for anyOf/oneOf failures."""
    if error.context:
        best = max(error.context, key=lambda e: len(e.absolute_path))
        return f"{error.message[:120]} ({best.json_path}: {best.message[:200]})"
    return error.message[:300]


def spec_response_schemas(spec: Mapping[str, Any], *, allow: Mapping[str, Iterable[str]] | None = None,
                          undocumented_errors_like: str | None = None) -> list[ResponseSchema]:
    """The `ResponseSchema`s of a transcribed spec: one per operation and status.

    `allow`: operation -> regular expressions of error lines the platform itself shows (keep the
    evidence beside them). `undocumented_errors_like`: a status whose schema an error of a status
    the operation does not list follows too (a platform that documents a few statuses and answers
    every error in one shape); without it, and without a `default`, such an answer is reported.
    """
    defs = {"$schema": spec["$schema"], "$defs": spec["$defs"]}
    out = []
    for operation, responses in spec["operations"].items():
        method, template = operation.split(" ", 1)
        path = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        kept = tuple((allow or {}).get(operation, ()))
        for status, schema in responses.items():
            code = int(status) if status.isdigit() else None  # "default": any status of its kind
            ok = code is not None and 200 <= code < 300
            out.append(ResponseSchema(method, path, ok, {**defs, **schema}, status=code, allow=kept))
        like = responses.get(undocumented_errors_like or "")
        if like is not None and "default" not in responses:
            out.append(ResponseSchema(method, path, False, {**defs, **like}, allow=kept))
    return out


def schema_problem(method: str, path: str, status: int, body: bytes, schemas: Sequence[ResponseSchema]) -> str:
    """Why one answer fits none of `schemas` ("" when it fits one).

    The schemas for the answer's method and path that name its status are tried; where none does,
    those for any status of its kind (success or error)."""
    if status == 204 and not body:
        return ""  # No Content: nothing to check
    ok = 200 <= status < 300
    candidates = [s for s in schemas if s.method == method and re.fullmatch(s.path, path)]
    fitting = [s for s in candidates if s.status == status] or \
        [s for s in candidates if s.status is None and s.ok == ok]
    if not fitting:
        return f"{method} {path} {status}: no schema vendored for it"
    try:
        document = json.loads(body)
    except ValueError:
        return f"{method} {path} {status}: the body is not JSON"
    problems = []
    for schema in fitting:
        allowed = [re.compile(a) for a in schema.allow]
        errors = [line for line in error_lines(schema.schema, document) if not any(a.search(line) for a in allowed)]
        if not errors:
            return ""
        problems.append(errors[0])
    return f"{method} {path} {status}: {problems[0]}"
