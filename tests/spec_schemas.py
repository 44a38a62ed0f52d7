"""Validate payloads against the platforms' official response schemas (tests/fixtures/specs/).

The schemas come from each platform's own OpenAPI document (see tests/fixtures/specs/README.md),
so an emulator checked here agrees with the platform, not just with our client. Objects whose
official schema lists their properties are closed: an unknown key is an error. The error lines and
the date formats are the conformance kit's (`connectors.testing.schemas`), which checks every
answer of a conformance run against the same files (`SpecSchemas.response_schemas`).

    SCHEMAS = SpecSchemas("yandex_market")
    assert SCHEMAS.errors("POST /v1/businesses/{businessId}/orders", body) == []
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from connectors.testing import ResponseSchema
from connectors.testing.schemas import error_lines, spec_response_schemas

__all__ = ["SpecSchemas"]

SPECS = Path(__file__).parent / "fixtures" / "specs"


class SpecSchemas:
    """The transcribed official schemas of one platform."""

    def __init__(self, platform: str):
        self.platform = platform
        self.doc = _load(platform)

    @property
    def operations(self) -> list[str]:
        return list(self.doc["operations"])

    def schema(self, operation: str, status: int | str = 200) -> dict[str, Any]:
        """The operation's response schema for `status`, with the `$defs` it reaches."""
        responses = self.doc["operations"].get(operation)
        if responses is None:
            raise KeyError(f"{self.platform}: no transcribed operation {operation!r}")
        if str(status) not in responses:
            raise KeyError(f"{self.platform}: {operation} has no JSON schema for status {status}")
        return _schema(self.platform, operation, str(status))

    def errors(self, operation: str, payload: Any, status: int | str = 200, *,
               allow: Iterable[str] = ()) -> list[str]:
        """Every way `payload` breaks the official schema, as "json.path: message" lines.

        `allow`: regular expressions; an error line matching one is a deviation the caller
        keeps on purpose (with its evidence named where the caller passes it).
        """
        allowed = [re.compile(a) for a in allow]
        return [line for line in error_lines(self.schema(operation, status), payload)
                if not any(a.search(line) for a in allowed)]

    def response_schemas(self, *, allow: Mapping[str, Iterable[str]] | None = None,
                         undocumented_errors_like: str | None = None) -> list[ResponseSchema]:
        """Every operation's schemas for the conformance kit (`ConnectorHarness.response_schemas`;
        the arguments: `connectors.testing.schemas.spec_response_schemas`)."""
        return spec_response_schemas(self.doc, allow=allow, undocumented_errors_like=undocumented_errors_like)


@cache
def _load(platform: str) -> dict[str, Any]:
    return json.loads((SPECS / f"{platform}.json").read_text(encoding="utf-8"))


@cache
def _schema(platform: str, operation: str, status: str) -> dict[str, Any]:
    doc = _load(platform)
    return {"$schema": doc["$schema"], "$defs": doc["$defs"], **doc["operations"][operation][status]}
