"""JSON Schemas of the two config files, for editors (`loyalsync config-schema`).

- `loyalsync.toml`: the global settings (`app.config.AppSettings`).
- `marketplaces/<platform>.toml`: `[defaults]` plus `[[accounts]]`, from each connector's own
  `settings_model`, so a third-party connector gets its schema for free.

The schemas describe the files as ops write them, not the models after loading: durations are text
such as "5m" or whole seconds (the loader parses them), and the token has no place in a file
(it is read from the variable `token_env` names).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from app.durations import DURATION_EXAMPLES
from connectors.base import Connector

__all__ = ["SCHEMA_DIALECT", "global_schema", "marketplace_schema", "schema_files"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# "90s", "1h30m", "14d" (largest unit first) or ISO 8601 "PT5M"; `app.durations` has the exact rules.
_DURATION_PATTERN = (r"^\s*(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?\s*$"
                     r"|^\s*P(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?\s*$")


class _FileSchema(GenerateJsonSchema):
    """Pydantic's schema with durations as the loader accepts them."""

    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> JsonSchemaValue:
        # `pattern` applies to strings only and `minimum` to numbers only: one plain message either way.
        return {"type": ["string", "integer"], "pattern": _DURATION_PATTERN, "minimum": 0,
                "description": f"a duration: {DURATION_EXAMPLES}"}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="validation", schema_generator=_FileSchema)


def _without(schema: dict[str, Any], name: str) -> dict[str, Any]:
    props = {k: v for k, v in schema.get("properties", {}).items() if k != name}
    out = {**schema, "properties": props}
    if "required" in schema:
        out["required"] = [r for r in schema["required"] if r != name]
    return out


def global_schema() -> dict[str, Any]:
    """The schema of `loyalsync.toml`."""
    from app.config import AppSettings

    schema = _schema(AppSettings)
    return {"$schema": SCHEMA_DIALECT, "$id": "loyalsync.schema.json", **schema,
            "title": "loyalsync.toml", "description": "loyalsync global settings (config/loyalsync.toml)."}


def _name_keys(account: dict[str, Any], table: str, names: Mapping[str, Any] | None) -> None:
    """Let editors flag a stream, rate-limit group or host the connector does not have."""
    if names and table in account["properties"]:
        account["properties"][table] = {**account["properties"][table], "propertyNames": {"enum": sorted(names)}}


def marketplace_schema(name: str, connector: type[Connector]) -> dict[str, Any]:
    """The schema of `marketplaces/<name>.toml`: `[defaults]` and `[[accounts]]` of `connector`."""
    account = _without(_without(_schema(connector.settings_model), "token"), "client_secret")
    defs = account.pop("$defs", {})
    _name_keys(account, "streams", connector.streams)
    _name_keys(account, "rate_limits", connector.rate_groups)
    hosts = connector.settings_model.model_fields["base_urls"].default_factory
    _name_keys(account, "base_urls", hosts() if hosts is not None else None)  # type: ignore[call-arg]
    defaults = {**account, "required": [], "title": "defaults",
                "description": "Values every account below inherits unless it sets them itself."}
    defaults["properties"] = {k: v for k, v in account["properties"].items() if k != "name"}
    return {
        "$schema": SCHEMA_DIALECT, "$id": f"{name}.schema.json", "title": f"marketplaces/{name}.toml",
        "description": f"{getattr(connector, 'display_name', name)} seller accounts. Tokens live in the "
                       "environment variable each account names in token_env, never in this file.",
        "type": "object", "additionalProperties": False,
        "properties": {"defaults": defaults, "accounts": {"type": "array", "items": account}},
        **({"$defs": defs} if defs else {}),
    }


def schema_files(connectors: Mapping[str, type[Connector]]) -> dict[str, dict[str, Any]]:
    """File name -> schema, for the global file and every installed connector."""
    files = {"loyalsync.schema.json": global_schema()}
    for name in sorted(connectors):
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            continue  # a connector name that cannot be a file name has no file of its own either
        files[f"{name}.schema.json"] = marketplace_schema(name, connectors[name])
    return files
