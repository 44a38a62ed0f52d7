"""Reads `config/marketplaces/<platform>.toml` files into validated per-account settings.

Problems are appended as `file: key: problem` lines; a bad value inherited from `[defaults]` is
reported under `defaults.`, not under each account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr, TypeAdapter, ValidationError

from app.toml_tables import (
    convert_durations,
    deep_merge,
    dotted,
    error_loc,
    field_default,
    has_path,
    humane_error,
    read_toml,
)
from connectors import registry as _registry
from connectors.base import AccountSettings, Connector

__all__ = ["load_marketplaces"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BOOL = TypeAdapter(bool)
# Secrets an account reads from the environment: the field -> the key naming its variable. The
# client secret only for settings that have it (`connectors.base.OAuthAccountSettings`).
_SECRETS_FROM_ENV = {"token": "token_env", "client_secret": "client_secret_env"}


def load_marketplaces(
    directory: Path,
    env: Mapping[str, str],
    connectors: Mapping[str, type[Connector]] | None,
    problems: list[str],
    tokens: bool = True,
) -> list[tuple[str, AccountSettings]]:
    """(platform, account settings) for every account in `directory`/*.toml; problems appended."""
    files = sorted(directory.glob("*.toml")) if directory.is_dir() else []
    if not files:
        return []
    known = connectors if connectors is not None else _registry.available_connectors()
    accounts: list[tuple[str, AccountSettings]] = []
    for file in files:
        connector = known.get(file.stem)
        if connector is None:
            names = ", ".join(sorted(known)) or "none installed"
            problems.append(f"{file}: unknown marketplace {file.stem!r}; known: {names}")
            continue
        data = read_toml(file, problems)
        if data is not None:
            found = _load_accounts(str(file), connector, data, env, problems, tokens)
            accounts.extend((file.stem, settings) for settings in found)
    return accounts


def _load_accounts(
    label: str,
    connector: type[Connector],
    data: dict[str, Any],
    env: Mapping[str, str],
    problems: list[str],
    tokens: bool,
) -> list[AccountSettings]:
    unknown = sorted(data.keys() - {"defaults", "accounts"})
    for key in unknown:
        problems.append(f"{label}: {key}: unknown key; allowed: accounts, defaults")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append(f"{label}: defaults: must be a table")
        defaults = {}
    raw_accounts = data.get("accounts", [])
    if not isinstance(raw_accounts, list) or not all(isinstance(a, dict) for a in raw_accounts):
        problems.append(f"{label}: accounts: must be an array of tables, written [[accounts]]")
        return []
    if not raw_accounts and not unknown:  # a misspelt [[account]] is reported above, once
        what = "the file is empty" if not data else "no [[accounts]] block"
        problems.append(
            f"{label}: accounts: {what}; add one [[accounts]] block (name, token_env) per seller "
            "account, or remove the file"
        )
        return []

    result: list[AccountSettings] = []
    first_use: dict[str, int] = {}
    for index, raw in enumerate(raw_accounts):
        settings = _load_account(label, index, connector, defaults, raw, env, problems, tokens)
        name = deep_merge(defaults, raw).get("name")
        if isinstance(name, str) and name in first_use:
            problems.append(
                f"{label}: accounts[{index}].name: duplicate account name {name!r}; "
                f"accounts[{first_use[name]}] already uses it"
            )
        elif isinstance(name, str):
            first_use[name] = index
        if settings is not None:
            result.append(settings)
    return result


def _load_account(
    label: str,
    index: int,
    connector: type[Connector],
    defaults: dict[str, Any],
    raw: dict[str, Any],
    env: Mapping[str, str],
    problems: list[str],
    tokens: bool,
) -> AccountSettings | None:
    model = connector.settings_model
    merged = deep_merge(defaults, raw)
    reported: set[tuple[str, ...]] = set()

    def where(loc: tuple[str, ...]) -> str:
        # A bad value inherited from [defaults] is reported there, not under each account.
        if not has_path(raw, loc) and has_path(defaults, loc):
            return dotted(("defaults", *loc))
        return dotted((f"accounts[{index}]", *loc))

    def report(loc: tuple[str, ...], message: str) -> None:
        problems.append(f"{label}: {where(loc)}: {message}")
        reported.add(loc)

    for key, env_key in _SECRETS_FROM_ENV.items():
        if key in merged:
            report((key,), f"{key.replace('_', ' ')}s do not belong in config files; "
                           f"put it in an environment variable and name that variable in {env_key}")
            del merged[key]
    _check_names(merged, "streams", "stream", connector.streams, report)
    # `Connector.rate_groups`: None when the connector names no groups; then any name is accepted.
    groups = connector.rate_groups
    _check_names(merged, "rate_limits", "rate-limit group", groups, report)
    # Overriding one host keeps the model's defaults for the others, instead of dropping them.
    if isinstance(merged.get("base_urls"), dict):
        _check_urls(merged, report)
        default_urls = field_default(model, "base_urls")
        if default_urls:
            _check_names(merged, "base_urls", "host", default_urls, report)
            merged["base_urls"] = {**default_urls, **merged["base_urls"]}
    merged, bad = convert_durations(model, merged)
    for loc, message in bad:
        report(loc, message)
    streams = merged.get("streams")
    for stream, over in streams.items() if isinstance(streams, dict) else ():
        for key in ("poll_interval", "window"):
            if isinstance(over, dict) and over.get(key) == timedelta(0):
                report(("streams", stream, key), "must be longer than zero")
    if tokens:
        for key, env_key in _SECRETS_FROM_ENV.items():
            if key == "token" or env_key in model.model_fields:
                _read_token(merged, env, report, key=key, env_key=env_key)

    try:
        settings = model.model_validate(merged)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = error_loc(err)
            if loc not in reported:
                report(loc, humane_error(err, model))
        return None
    if not reported:
        _check_windows(connector, settings, report)
    return None if reported else settings


def _check_windows(connector: type[Connector], settings: AccountSettings, report: Any) -> None:
    """A stream window beyond what the platform serves in one request would fail every poll."""
    for name, spec in connector.streams.items():
        limit = spec.max_window
        window = settings.stream_spec(spec).window
        if limit is not None and window > limit:
            report(("streams", name, "window"),
                   f"{_days(window)} is longer than {connector.name} allows in one request "
                   f"({_days(limit)}); set {limit.days}d or less")


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g} day{'' if days == 1 else 's'}"


def _check_names(merged: dict[str, Any], key: str, what: str, known: Any, report: Any) -> None:
    """Report names in table `key` that are not in `known`, and drop them so nothing else trips."""
    table = merged.get(key)
    if known is None or not isinstance(table, dict):
        return
    for name in table:
        if name not in known:
            report((key, name), f"unknown {what} {name!r}; known: {', '.join(known) or 'none'}")
    merged[key] = {name: value for name, value in table.items() if name in known}


def _check_urls(merged: dict[str, Any], report: Any) -> None:
    """Report base URLs that are not http(s), each under its own host key, and drop them."""
    good = {}
    for host, url in merged["base_urls"].items():
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            good[host] = url
        else:
            report(("base_urls", host), "must be an http:// or https:// URL")
    merged["base_urls"] = good


def _read_token(merged: dict[str, Any], env: Mapping[str, str], report: Any, *, key: str = "token",
                env_key: str = "token_env") -> None:
    """Put the secret from the variable named in `env_key` into `merged[key]`, if enabled."""
    try:
        enabled = _BOOL.validate_python(merged.get("enabled", True))
    except ValidationError:
        return  # the model reports the bad `enabled`
    var = merged.get(env_key)
    if not enabled or not isinstance(var, str) or not var:
        return
    what = "API token" if key == "token" else key.replace("_", " ")
    if not _ENV_NAME.fullmatch(var):
        # Never echo it: a value that is not a variable name is often the secret pasted in.
        report(
            (env_key,),
            "must be the name of an environment variable "
            f"(letters, digits and _), not the {'token' if key == 'token' else what} itself",
        )
        return
    value = env.get(var)
    if value is None:
        report(
            (env_key,),
            f"environment variable {var} is not set; export it with the account's {what}",
        )
    elif not value.strip():
        report(
            (env_key,),
            f"environment variable {var} is empty; export it with the account's {what}",
        )
    else:
        merged[key] = SecretStr(value.strip())
