"""Raw TOML tables next to the pydantic models that validate them: walk, convert, explain errors."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from app.durations import parse_duration

__all__ = [
    "convert_durations",
    "deep_merge",
    "dotted",
    "error_loc",
    "field_default",
    "has_path",
    "humane_error",
    "model_at",
    "read_toml",
]

# Values under these keys may hold secrets (a token, a DSN password): never echoed in a problem.
_SECRET_KEYS = frozenset({"token", "token_env", "client_secret", "client_secret_env", "url"})
# pydantic's "should match pattern '^...$'" means nothing to ops: what each pattern we use allows.
_PATTERN_HINTS = {
    r"^[A-Za-z0-9_.-]+$": "may use only letters, digits and _ . - (no spaces)",
    r"^\S+$": "must not contain spaces",
    r"^[!-~](?:[ -~]*[!-~])?$": "may use only printable ASCII on one line, without leading or trailing spaces",
}
# A pydantic location part that stands for a table key rather than its value.
_KEY_PART = "[key]"
# A validator of a whole table may name the sub-key it is about: "approval.ops_task: ...".
_NAMED_KEY = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*): (?P<msg>.+)$", re.S)


# tomllib (3.11-3.13) only puts the position in its message: "Invalid value (at line 2, column 8)".
_TOML_POSITION = re.compile(r"^(?P<msg>.*) \(at (?P<where>line \d+, column \d+|end of document)\)$")


def read_toml(path: Path, problems: list[str], named_by: str = "") -> dict[str, Any] | None:
    """The parsed file, or None after adding a `file: problem` line (with TOML line/column)."""
    label = str(path)
    try:
        with path.open("rb") as fp:
            return tomllib.load(fp)
    except FileNotFoundError:
        hint = f" (named by {named_by})" if named_by else ""
        problems.append(f"{label}: file not found{hint}")
    except OSError as exc:
        problems.append(f"{label}: cannot read the file: {exc.strerror or exc}")
    except UnicodeDecodeError:
        problems.append(f"{label}: is not UTF-8 text")
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION.match(str(exc))
        where, msg = (found["where"], found["msg"]) if found else ("", str(exc))
        msg = msg[:1].lower() + msg[1:]
        problems.append(f"{label}: {where + ': ' if where else ''}invalid TOML: {msg}")
    return None


def _unwrap(tp: Any) -> Any:
    """`X` from `X | None`; anything else unchanged."""
    args = [a for a in get_args(tp) if a is not type(None)]
    return args[0] if get_origin(tp) in (Union, UnionType) and len(args) == 1 else tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def model_at(model: type[BaseModel], loc: tuple[str, ...]) -> type[BaseModel] | None:
    """The model that validates the table at `loc` (walking fields and dict values)."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if _is_model(tp) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) in (dict, Mapping):
            tp = get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if _is_model(tp) else None


def field_default(model: type[BaseModel], name: str) -> Any:
    """The default of field `name` (factories called), or None if the model has no such field."""
    field = model.model_fields.get(name)
    return field.get_default(call_default_factory=True) if field is not None else None


def convert_durations(
    model: type[BaseModel], data: dict[str, Any], loc: tuple[str, ...] = ()
) -> tuple[dict[str, Any], list[tuple[tuple[str, ...], str]]]:
    """`data` with every duration field parsed to a timedelta, and the (loc, message) failures.

    Bad values are dropped so the model does not report them a second time.
    """
    out, bad = dict(data), []
    for name, field in model.model_fields.items():
        value, tp = out.get(name), _unwrap(field.annotation)
        if value is None:
            continue
        if tp is timedelta:
            try:
                out[name] = parse_duration(value)
            except ValueError as exc:
                bad.append(((*loc, name), str(exc)))
                del out[name]
        elif _is_model(tp) and isinstance(value, dict):
            out[name], more = convert_durations(tp, value, (*loc, name))
            bad += more
        elif get_origin(tp) is dict and _is_model(get_args(tp)[1]) and isinstance(value, dict):
            inner, converted = get_args(tp)[1], {}
            for key, item in value.items():
                converted[key], more = (
                    convert_durations(inner, item, (*loc, name, key))
                    if isinstance(item, dict)
                    else (item, [])
                )
                bad += more
            out[name] = converted
    return out, bad


def error_loc(err: Any) -> tuple[str, ...]:
    """Where a pydantic error points, as the key path ops wrote.

    A bad table key (`[key]` in pydantic's location) is reported at that key; a table-wide check
    whose message starts with a sub-key present in the table ("approval.ops_task: ...") at that
    sub-key.
    """
    loc = tuple(str(p) for p in err["loc"] if str(p) != _KEY_PART)
    named = _named_key(err)
    return loc + named[0] if named else loc


def _named_key(err: Any) -> tuple[tuple[str, ...], str] | None:
    """(sub-key, rest of the message) when a table-wide check names a sub-key of its input."""
    found = _NAMED_KEY.match(_plain_message(err)) if err["type"] == "value_error" else None
    if found is None:
        return None
    key = tuple(found["key"].split("."))
    return (key, found["msg"]) if has_path(err.get("input"), key) else None


def _plain_message(err: Any) -> str:
    message = re.sub(r"^Value error, ", "", err["msg"])
    return re.sub(r"^(Input|String|Value|List|Dictionary|Tuple) should", "must", message)


def humane_error(err: Any, model: type[BaseModel]) -> str:
    """A pydantic error as a short sentence for ops: no URL, no input_value dump."""
    kind, loc = err["type"], tuple(str(p) for p in err["loc"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        owner = model_at(model, loc[:-1])
        allowed = [n for n, f in owner.model_fields.items() if not f.exclude] if owner else []
        return "unknown key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        message = "must be a table"
    elif kind in ("list_type", "tuple_type"):
        message = "must be an array"
    elif kind == "string_type":
        message = "must be a string (text in quotes)"
    elif kind == "path_type":
        message = "must be a path in quotes"
    elif kind == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") in _PATTERN_HINTS:
        message = _PATTERN_HINTS[err["ctx"]["pattern"]]
    else:
        named = _named_key(err)
        message = named[1] if named else _plain_message(err)
    if loc and loc[-1] == _KEY_PART:
        message = f"unknown key; {message}"
    value = err.get("input")
    echo = kind != "value_error" and not (_SECRET_KEYS & set(loc))
    if echo and isinstance(value, str | int | float | bool) and len(repr(value)) <= 60:
        message += f" (got {value!r})"
    return message


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`top` over `base`; tables are merged key by key, anything else is replaced."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def has_path(data: Any, loc: tuple[str, ...]) -> bool:
    """Whether nested tables `data` hold a value at `loc`."""
    for part in loc:
        if not isinstance(data, Mapping) or part not in data:
            return False
        data = data[part]
    return True


def dotted(loc: Sequence[str]) -> str:
    """A location as ops read it: `accounts[0].streams.orders.lookback`, `offers[1].ends`."""
    out = ""
    for part in map(str, loc):
        out += f"[{part}]" if part.isdigit() and out else (f".{part}" if out else part)
    return out
