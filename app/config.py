"""Loads and checks the files ops edit: `config/loyalsync.toml` and `config/marketplaces/*.toml`.

Every problem is collected, not only the first, as a `file: key: problem` line; they are raised
together as one `ConfigError` before anything runs. Settings are read once here and passed down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from app.marketplace_files import load_marketplaces
from app.toml_tables import (
    convert_durations,
    dotted,
    error_loc,
    has_path,
    humane_error,
    read_toml,
)
from connectors import registry as _registry
from connectors.base import AccountSettings, Connector
from connectors.errors import ConfigError
from crm.settings import CrmSettings
from loyalty.action_settings import PLACEHOLDER_STORE_NAME, ActionSettings
from loyalty.rules import LoyaltySettings

__all__ = [
    "CONFIG_PATH_ENV",
    "DEFAULT_CONFIG_PATH",
    "ENV_OVERRIDES",
    "AppConfig",
    "AppSettings",
    "ClusterSettings",
    "DaemonSettings",
    "DatabaseSettings",
    "MarketplaceAccount",
    "ScheduleSettings",
    "ServiceSettings",
    "check_config",
    "format_problems",
    "load_config",
    "runtime_problems",
]

DEFAULT_CONFIG_PATH = Path("config/loyalsync.toml")
CONFIG_PATH_ENV = "LOYALSYNC_CONFIG"
# Environment variables that override one key of the global file (and lose to the CLI).
ENV_OVERRIDES: Mapping[str, tuple[str, str]] = {
    "LOYALSYNC_DATABASE_URL": ("database", "url"),
    "LOYALSYNC_MODE": ("daemon", "mode"),
    "LOYALSYNC_SERVICE_HOST": ("service", "host"),
    "LOYALSYNC_SERVICE_PORT": ("service", "port"),
    "LOYALSYNC_REPLICA": ("cluster", "replica"),
}
_DB_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
_DB_HINT = "use sqlite:///path/to/file.db or postgresql+psycopg://user@host/dbname"
_FROZEN = ConfigDict(frozen=True, extra="forbid")


class DatabaseSettings(BaseModel):
    """Where the store lives; relative sqlite paths are relative to the working directory."""

    model_config = _FROZEN

    # Kept out of repr: a PostgreSQL URL may carry a password.
    url: str = Field(default="sqlite:///data/loyalsync.db", repr=False)

    @field_validator("url")
    @classmethod
    def _supported_scheme(cls, url: str) -> str:
        scheme, sep, _ = url.partition("://")
        if not sep:
            raise ValueError(f"is not a database URL; {_DB_HINT}")
        if scheme not in _DB_SCHEMES:
            raise ValueError(f"unsupported database URL scheme {scheme!r}; {_DB_HINT}")
        _check_parses(url)
        return url

    @property
    def sqlalchemy_url(self) -> str:
        """The URL for SQLAlchemy: plain `postgresql://` pinned to psycopg 3, the driver we ship."""
        if self.url.startswith("postgresql://"):
            return "postgresql+psycopg://" + self.url.removeprefix("postgresql://")
        return self.url


def _check_parses(url: str) -> None:
    """Refuse a URL SQLAlchemy would misread at start. Messages never quote the URL: it may hold a password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ValueError as exc:  # int() of the port; ArgumentError is a ValueError too
        what = "the URL" if isinstance(exc, ArgumentError) else "the port is not a number"
        raise ValueError(f"cannot be parsed: {what}; {_DB_HINT}:port (a password with @ : / must be "
                         "percent-encoded, e.g. @ as %40)") from None
    # An unencoded "@" in the password splits it: its tail would be taken for the host name.
    if parsed.host and "@" in parsed.host:
        raise ValueError("the password or user name contains '@'; percent-encode it as %40")


class DaemonSettings(BaseModel):
    """How the daemon runs: dry-run computes and stores actions, live also sends them."""

    model_config = _FROZEN

    mode: Literal["dry-run", "live"] = "dry-run"
    marketplaces_dir: Path = Path("marketplaces")  # relative to the global config file


class ScheduleSettings(BaseModel):
    """Scheduler defaults shared by every account and stream."""

    model_config = _FROZEN

    default_poll_interval: timedelta = timedelta(minutes=5)
    max_concurrent_jobs: int = Field(default=8, gt=0)
    jitter_seconds: float = Field(default=10.0, ge=0, allow_inf_nan=False)
    # The store-wide jobs. Loyalty and actions are idempotent, so any cadence is safe; members is
    # daily because under `one_down` each evaluation may lower a tier by one step.
    loyalty_interval: timedelta = timedelta(minutes=10)
    members_interval: timedelta = timedelta(days=1)
    actions_interval: timedelta = timedelta(minutes=5)
    # Webhooks: new events are read and due deliveries sent this often (only with [[crm.webhooks]]).
    webhooks_interval: timedelta = timedelta(minutes=1)
    # The RetailCRM sink: new members, orders and points found and sent this often ([crm.retailcrm]).
    crm_interval: timedelta = timedelta(minutes=2)
    # `/healthz` answers 503 once no stream has succeeded within this many of its poll intervals.
    unhealthy_after_intervals: int = Field(default=3, gt=0)

    @field_validator("default_poll_interval", "loyalty_interval", "members_interval", "actions_interval",
                     "webhooks_interval", "crm_interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value


class ServiceSettings(BaseModel):
    """The daemon's HTTP endpoint (`/healthz`, `/metrics`); loopback only unless ops open it."""

    model_config = _FROZEN

    enabled: bool = True
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8787, ge=1, le=65535)


class ConsoleUser(BaseModel):
    """One person who may log in to the console; the password's hash is read from `password_hash_env`."""

    model_config = _FROZEN

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password_hash_env: str = Field(min_length=1, description="variable holding the hash `loyalsync console-password` "
                                                             "prints")
    password_hash: SecretStr = Field(default=SecretStr(""), exclude=True)


class ConsoleSettings(BaseModel):
    """The ops console in the browser, under `/console` on the daemon's endpoint ([service]); off
    until configured. It answers loopback clients only unless `allow_remote` (behind a TLS proxy)."""

    model_config = _FROZEN

    enabled: bool = False
    users: tuple[ConsoleUser, ...] = ()
    session_secret_env: str = Field(default="LOYALSYNC_CONSOLE_SECRET",
                                    description="variable holding the key that signs session cookies (unset: a new "
                                                "key at each start, which logs everyone out on a restart)")
    session_secret: SecretStr = Field(default=SecretStr(""), exclude=True)
    allow_remote: bool = Field(default=False, description="answer clients other than this machine (only behind a "
                                                          "TLS-terminating proxy)")
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30, allow_inf_nan=False)

    @field_validator("users")
    @classmethod
    def _unique_names(cls, users: tuple[ConsoleUser, ...]) -> tuple[ConsoleUser, ...]:
        names = [u.name for u in users]
        if len(names) != len(set(names)):
            raise ValueError("two console users share a name; each needs its own")
        return users


class ClusterSettings(BaseModel):
    """Replicas sharing one PostgreSQL store: who works what is decided by leases in the store.

    Each account (its streams and its outbox) and each store-wide job is held by one replica at a
    time. A replica renews its leases every third of `lease_seconds`; one that stops renewing
    (killed, frozen, cut off) loses them after `lease_seconds` and another replica takes over.
    """

    model_config = _FROZEN

    lease_seconds: float = Field(default=30.0, ge=2, le=3600)
    # Names this process in the leases table and logs; default: host name and process id.
    replica: str | None = Field(default=None, min_length=1, max_length=200)


class _DictSource(PydanticBaseSettingsSource):
    """A settings source over values already read (the parsed TOML file)."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]):
        super().__init__(settings_cls)
        self._values = values

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns the nested values whole

    def __call__(self) -> dict[str, Any]:
        return self._values


class _EnvOverrides(_DictSource):
    """The `ENV_OVERRIDES` variables of an environment mapping, as nested settings values."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]):
        values: dict[str, Any] = {}
        for var, (section, key) in ENV_OVERRIDES.items():
            if env.get(var):  # an empty variable counts as unset
                values.setdefault(section, {})[key] = env[var]
        super().__init__(settings_cls, values)


# What load_config hands AppSettings' sources for one call: the env mapping and the parsed file.
# A context variable because pydantic-settings builds sources in a classmethod; outside
# load_config a bare AppSettings() reads os.environ and no file.
_INPUTS: ContextVar[tuple[Mapping[str, str], dict[str, Any]] | None] = ContextVar(
    "loyalsync_settings_inputs", default=None
)


class AppSettings(BaseSettings):
    """The global settings: built-in defaults < config file < environment < command line."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    loyalty: LoyaltySettings = Field(default_factory=LoyaltySettings)
    actions: ActionSettings = Field(default_factory=ActionSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    crm: CrmSettings = Field(default_factory=CrmSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        env, file_values = _INPUTS.get() or (os.environ, {})
        # Earlier sources win: command-line values (init kwargs), then env, then the file.
        return (
            init_settings,
            _EnvOverrides(settings_cls, env),
            _DictSource(settings_cls, file_values),
        )


@dataclass(frozen=True, slots=True)
class MarketplaceAccount:
    """One seller account of one platform, with its validated connector settings."""

    marketplace: str
    settings: AccountSettings

    @property
    def name(self) -> str:
        return self.settings.name


@dataclass(frozen=True, slots=True)
class AppConfig:
    """Everything loaded from the config files; `config_path` may not exist (built-in defaults)."""

    settings: AppSettings
    accounts: tuple[MarketplaceAccount, ...]
    config_path: Path


def load_config(
    path: Path | None = None,
    *,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
    connectors: Mapping[str, type[Connector]] | None = None,
    tokens: bool = True,
) -> AppConfig:
    """Load and check every config file; raise ConfigError listing all problems found.

    `tokens=False` skips reading tokens, for commands that only read the store (status, export).
    """
    env = os.environ if env is None else env
    named_by = "" if path is not None or not env.get(CONFIG_PATH_ENV) else CONFIG_PATH_ENV
    explicit = path is not None or bool(named_by)
    path = Path(path if path is not None else env.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH)
    problems: list[str] = []

    # Without an explicit path and without the default file, run on built-in defaults.
    have_file = explicit or path.exists()
    file_data = read_toml(path, problems, named_by) if have_file else {}
    overrides = {"database": {"url": database_url}} if database_url is not None else {}
    settings = _load_settings(str(path), file_data or {}, env, overrides, problems)

    if settings is not None:
        known = connectors if connectors is not None else _registry.available_connectors()
        _check_marketplace_names(str(path), settings, known, problems)
        _check_live_store_name(str(path), settings, problems)
        _check_crm_marketplaces(str(path), settings, known, problems)
        if tokens:
            settings = _with_crm_secrets(str(path), settings, env, problems)
            settings = _with_console_secrets(str(path), settings, env, problems)
    accounts: list[MarketplaceAccount] = []
    if have_file:
        directory = _marketplaces_dir(path, file_data or {}, problems)
        if directory is not None:
            found = load_marketplaces(directory, env, connectors, problems, tokens)
            accounts = [MarketplaceAccount(platform, account) for platform, account in found]

    problems = list(dict.fromkeys(problems))  # a bad [defaults] value is found once per account
    if problems or settings is None:
        raise ConfigError(problems)
    return AppConfig(settings=settings, accounts=tuple(accounts), config_path=path)


def check_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    connectors: Mapping[str, type[Connector]] | None = None,
) -> list[str]:
    """Every problem in the config as `file: key: problem` lines; an empty list means it is fine."""
    try:
        cfg = load_config(path, env=env, connectors=connectors)
    except ConfigError as exc:
        return exc.problems
    return runtime_problems(cfg)


def runtime_problems(cfg: AppConfig) -> list[str]:
    """What loads fine but fails once the daemon runs: no account, a service host that does not resolve."""
    import socket

    label = str(cfg.config_path)
    problems: list[str] = []
    if not cfg.accounts:
        directory = cfg.config_path.parent / cfg.settings.daemon.marketplaces_dir
        problems.append(f"{directory}: accounts: no account in any <platform>.toml; copy "
                        "config/marketplaces/examples/<platform>.toml there and fill in one [[accounts]] "
                        "block (name, token_env)")
    service = cfg.settings.service
    if service.enabled:
        try:
            socket.getaddrinfo(service.host, service.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            problems.append(f"{label}: service.host: {service.host!r} does not resolve; set [service] host "
                            "(or LOYALSYNC_SERVICE_HOST) to 127.0.0.1, 0.0.0.0 (every interface) or a name "
                            "this machine resolves, or set [service] enabled = false")
    return problems


def format_problems(problems: Sequence[str]) -> str:
    """The problems as one block for a terminal: a count, then one indented line each."""
    count = len(problems)
    head = f"{count} config problem{'' if count == 1 else 's'}:"
    return "\n".join([head, *(f"  {line}" for line in problems)])


def _load_settings(
    label: str,
    file_data: dict[str, Any],
    env: Mapping[str, str],
    overrides: dict[str, Any],
    problems: list[str],
) -> AppSettings | None:
    file_data, bad = convert_durations(AppSettings, file_data)
    problems.extend(f"{label}: {dotted(loc)}: {msg}" for loc, msg in bad)
    env_layer = _EnvOverrides(AppSettings, env)()
    inputs = _INPUTS.set((env, file_data))
    try:
        settings = AppSettings(**overrides)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = error_loc(err)
            if has_path(overrides, loc):
                where = "command line: --database-url"
            elif has_path(env_layer, loc):
                var = next(v for v, key in ENV_OVERRIDES.items() if key == loc)
                where = f"environment: {var}"
            else:
                where = f"{label}: {dotted(loc)}"
            problems.append(f"{where}: {humane_error(err, AppSettings)}")
        return None
    finally:
        _INPUTS.reset(inputs)
    return None if bad else settings


def _check_live_store_name(label: str, settings: AppSettings, problems: list[str]) -> None:
    """Live replies must not be signed with the placeholder store name buyers would read."""
    replies = settings.actions.replies
    if (settings.daemon.mode == "live" and replies.enabled
            and replies.store_name.strip().casefold() == PLACEHOLDER_STORE_NAME):
        problems.append(f"{label}: actions.replies.store_name: still the placeholder «{PLACEHOLDER_STORE_NAME}», "
                        "and daemon.mode is \"live\": every reply would be signed with it. Set the store's name "
                        "as buyers see it on the platform, or switch replies off (actions.replies.enabled = false)")


def _with_console_secrets(label: str, settings: AppSettings, env: Mapping[str, str],
                           problems: list[str]) -> AppSettings:
    """The console users' password hashes and the session key, from the variables they name."""
    from app.console.auth import is_hash

    console = settings.console
    if not console.enabled:
        return settings
    if not console.users:
        problems.append(f"{label}: console.users: the console is enabled but names nobody; add a [[console.users]] "
                        "entry (name, password_hash_env) or set console.enabled = false")
    users = []
    for index, user in enumerate(console.users):
        value = env.get(user.password_hash_env, "").strip()
        if not value:
            problems.append(f"{label}: console.users[{index}].password_hash_env: {user.password_hash_env} is not set; "
                            "export the hash `loyalsync console-password` prints in it")
        elif not is_hash(value):
            problems.append(f"{label}: console.users[{index}].password_hash_env: {user.password_hash_env} does not "
                            "hold a password hash; put the line `loyalsync console-password` prints in it, never "
                            "the password itself")
        users.append(user.model_copy(update={"password_hash": SecretStr(value)}))
    secret = SecretStr(env.get(console.session_secret_env, "").strip())
    return settings.model_copy(update={"console": console.model_copy(update={"users": tuple(users),
                                                                            "session_secret": secret})})


def _check_crm_marketplaces(label: str, settings: AppSettings, known: Mapping[str, type[Connector]],
                            problems: list[str]) -> None:
    sink = settings.crm.retailcrm
    unknown = sorted(set(sink.marketplaces) - set(known)) if sink is not None else []
    if unknown:
        problems.append(f"{label}: crm.retailcrm.marketplaces: {', '.join(unknown)} is not an installed platform; "
                        f"installed: {', '.join(sorted(known)) or 'none'}")


def _with_crm_secrets(label: str, settings: AppSettings, env: Mapping[str, str], problems: list[str]) -> AppSettings:
    """Each enabled webhook's signing secret and the RetailCRM API key, read from the variables they
    name (never from the file)."""
    endpoints = []
    for index, endpoint in enumerate(settings.crm.webhooks):
        secret = env.get(endpoint.secret_env, "")
        if endpoint.enabled and not secret:
            problems.append(f"{label}: crm.webhooks[{index}].secret_env: {endpoint.secret_env} is not set; export the "
                            f"signing secret the receiver {endpoint.name!r} checks (e.g. `openssl rand -hex 32`)")
        endpoints.append(endpoint.model_copy(update={"secret": SecretStr(secret)}))
    crm: dict[str, Any] = {"webhooks": tuple(endpoints)}
    if (sink := settings.crm.retailcrm) is not None:
        key = env.get(sink.api_key_env, "").strip()
        if sink.enabled and not key:
            problems.append(f"{label}: crm.retailcrm.api_key_env: {sink.api_key_env} is not set; export the API key "
                            "from RetailCRM (Settings → Integration → API access keys) in it")
        crm["retailcrm"] = sink.model_copy(update={"api_key": SecretStr(key)})
    return settings.model_copy(update={"crm": settings.crm.model_copy(update=crm)})


def _check_marketplace_names(
    label: str, settings: AppSettings, known: Mapping[str, type[Connector]], problems: list[str]
) -> None:
    """Marketplace names in the global file must be installed platforms: a typo there would
    silently leave the override or template unused."""
    names = ", ".join(sorted(known)) or "none installed"
    for name in settings.loyalty.marketplaces:
        if name not in known:
            problems.append(f"{label}: loyalty.marketplaces.{name}: unknown marketplace {name!r}; known: {names}")
    for index, template in enumerate(settings.actions.replies.templates):
        for name in template.marketplaces:
            if name not in known:
                problems.append(
                    f"{label}: actions.replies.templates[{index}].marketplaces: "
                    f"unknown marketplace {name!r}; known: {names}"
                )


def _marketplaces_dir(path: Path, file_data: dict[str, Any], problems: list[str]) -> Path | None:
    daemon = file_data.get("daemon")
    raw = daemon.get("marketplaces_dir") if isinstance(daemon, dict) else None
    if not isinstance(raw, str):
        return path.parent / "marketplaces"  # a wrong type is reported by the settings model
    directory = path.parent / raw
    if directory.exists() and not directory.is_dir():
        problems.append(
            f"{path}: daemon.marketplaces_dir: {directory} is a file, not a directory; name the "
            "folder that holds <platform>.toml files (relative to this file)"
        )
        return None
    if not directory.is_dir():
        problems.append(f"{path}: daemon.marketplaces_dir: directory {directory} does not exist")
        return None
    return directory
