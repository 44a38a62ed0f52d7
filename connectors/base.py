"""The connector contract: what a platform package declares and implements.

A connector is built per account. It declares its streams (`connectors.streams.Stream`: each with a
cursor kind and window size, how it reads a window page by page, the pure mapping of its records and
their key) and what the platform is (display name, colour, rate-limit answers, programs through its
`Capabilities`). The sync runner owns everything else: windows, cursors, transactions, quarantine.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.auth import TokenCache
from connectors.capabilities import ActionKind, Capabilities
from connectors.ratelimit import Rate
from connectors.records import ProductName
from connectors.responses import DEFAULT_ERROR_MAPPING, ResponseAction
from connectors.streams import (
    CursorKind,
    MappingContext,
    Page,
    Record,
    RecordType,
    Stream,
    StreamSpec,
    Window,
)

__all__ = [
    "AccountSettings",
    "Connector",
    "CursorKind",
    "DemoSetup",
    "MappingContext",
    "OAuthAccountSettings",
    "Page",
    "RateOverride",
    "Record",
    "RecordType",
    "StreamSettings",
    "StreamSpec",
    "Window",
    "WriteNotSupported",
    "WriteRequest",
    "WriteResult",
    "WriteStatus",
]

class RateOverride(BaseModel):
    """An ops override of one endpoint group's request budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(gt=0, description="requests allowed per period")
    period_seconds: float = Field(gt=0)
    burst: int = Field(gt=0, description="requests that may be sent at once")


class StreamSettings(BaseModel):
    """Per-account overrides of a stream's timing; unset fields keep the connector's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    poll_interval: timedelta | None = Field(default=None, description="how often the stream is polled")
    lookback: timedelta | None = Field(
        default=None, description="re-read this much before the saved position on every run")
    lag: timedelta | None = Field(
        default=None, description="the newest time a run reads stays this far behind now, for records the "
                                  "platform lists late")
    window: timedelta | None = Field(default=None, description="largest time span one request covers")
    start_history: timedelta | None = Field(
        default=None, description="how far back the first sync starts (and how old a record may be and still be read)")
    rescan_lookback: timedelta | None = Field(
        default=None, description="how far back the periodic wider re-scan reads")
    rescan_every: timedelta | None = Field(default=None, description="how often the wider re-scan runs")

    @field_validator("lag", "lookback", "rescan_lookback")
    @classmethod
    def _not_negative(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(0):
            raise ValueError("must not be negative")
        return value

    @field_validator("poll_interval", "window", "start_history", "rescan_every")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value


class AccountSettings(BaseModel):
    """One seller account of a platform. Connectors subclass it to name their hosts and extras."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    enabled: bool = True
    token_env: str = Field(min_length=1, description="environment variable that holds the token")
    token: SecretStr = Field(default=SecretStr(""), exclude=True)
    # Subclasses give the default factory their production hosts; the keys are then the only ones.
    base_urls: dict[str, str] = Field(default_factory=dict)
    rate_limits: dict[str, RateOverride] = Field(default_factory=dict)
    streams: dict[str, StreamSettings] = Field(default_factory=dict)
    request_timeout_seconds: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    # Printable ASCII on one line (RFC 9110 §10.1.5); None keeps the connector's own.
    user_agent: str | None = Field(
        default=None, min_length=1, max_length=256, pattern=r"^[!-~](?:[ -~]*[!-~])?$",
        description="User-Agent sent on every request to this account's platform (default: the connector's, "
                    "loyalsync/<version>)")

    @field_validator("base_urls")
    @classmethod
    def _known_hosts(cls, value: dict[str, str]) -> dict[str, str]:
        """Only the connector's host keys; overriding one (e.g. a sandbox) keeps the others."""
        factory = cls.model_fields["base_urls"].default_factory
        production: dict[str, str] = factory() if factory is not None else {}  # type: ignore[call-arg]
        unknown = sorted(set(value) - set(production)) if production else []
        if unknown:
            raise ValueError(f"unknown host key(s) {', '.join(unknown)}; known: {', '.join(production)}")
        bad = [k for k, v in value.items() if not v.startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"base URL for {', '.join(bad)} must start with http:// or https://")
        return {**production, **{k: v.rstrip("/") for k, v in value.items()}}

    def stream_spec(self, spec: StreamSpec) -> StreamSpec:
        """The connector's stream spec with this account's overrides applied."""
        over = self.streams.get(spec.name)
        if over is None:
            return spec
        changes = {
            k: v
            for k, v in over.model_dump(exclude={"enabled"}).items()
            if v is not None
        }
        return _replace(spec, **changes)


class OAuthAccountSettings(AccountSettings):
    """An account that signs in with OAuth2 client credentials (e.g. Avito) instead of a pasted token.

    The client secret is read from the variable `client_secret_env` names, like a token; the access
    token is fetched at runtime (`connectors.auth.ClientCredentials`), so `token_env` is optional.
    """

    token_env: str | None = Field(  # type: ignore[assignment]
        default=None, min_length=1, description="environment variable that holds a token (unused by OAuth)")
    client_id: str = Field(min_length=1, max_length=128, pattern=r"^\S+$",
                           description="the OAuth client_id the platform issued to the seller")
    client_secret_env: str = Field(min_length=1, description="environment variable that holds the client secret")
    client_secret: SecretStr = Field(default=SecretStr(""), exclude=True)


def _replace(spec: StreamSpec, **changes: Any) -> StreamSpec:
    from dataclasses import replace

    return replace(spec, **changes)


@dataclass(frozen=True, slots=True)
class DemoSetup:
    """What `loyalsync demo` needs from a connector: its emulator and an account pointed at it."""

    app: Any  # an ASGI app, served on loopback by the demo
    account: Callable[[str], AccountSettings]  # base URL of the served app -> account settings
    secrets: tuple[str, ...] = ()  # demo credentials, kept out of logs like real ones


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """One write the outbox asks a connector to carry out (see `loyalty.actions.Action`).

    `kind` is what to do (`ActionKind.REPLY_TO_REVIEW`, `CREATE_PROMO_CODE`, `SEND_CHAT_MESSAGE`); `key` the
    action's idempotency key, which a connector may put where the platform lets it (e.g. a voucher's
    name) so `find_done` can recognise its own earlier write.
    """

    kind: ActionKind
    key: str
    target: str
    text: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The outbox stores kinds as text: a stored "reply_to_review" is ActionKind.REPLY_TO_REVIEW here.
        object.__setattr__(self, "kind", ActionKind(self.kind))


class WriteStatus(StrEnum):
    DONE = "done"  # the platform accepted it now
    ALREADY_DONE = "already_done"  # the platform's state shows it was done before (not sent again)
    REJECTED = "rejected"  # the platform refused it for good (validation, moderation rules)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The platform's answer to a write: `platform_ref` is what it created (comment id, voucher id)."""

    status: WriteStatus
    platform_ref: str | None = None
    detail: str = ""  # the platform's words, short, never a secret or buyer data


class WriteNotSupported(Exception):
    """This connector cannot carry out this kind of write (the gate should have refused it)."""


class Connector(ABC):
    """Base class of every platform connector, built once per account.

    Subclasses set the class attributes, `stream_table` above all: `streams`, `fetch`, `map_record`
    and `record_key` follow from it. (A connector may instead set `streams` and override `fetch`
    and `map_record` itself.)
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    #: The colour reports draw the platform in (close to its brand, readable on white); None: a
    #: palette colour.
    brand_colour: ClassVar[str | None] = None
    #: How the platform's answers differ from `connectors.responses.DEFAULT_ERROR_MAPPING`
    #: (status -> action), e.g. a status of its own for "rate limited". Its client classifies
    #: answers by it; metrics count its rate-limit statuses (`rate_limit_statuses`).
    error_mapping: ClassVar[Mapping[int, ResponseAction]] = MappingProxyType({})
    settings_model: ClassVar[type[AccountSettings]]
    capabilities: ClassVar[Capabilities]
    #: The streams this connector reads, by name (`connectors.streams.stream_table`).
    stream_table: ClassVar[Mapping[str, Stream]] = MappingProxyType({})
    #: Each stream's spec, by name: derived from `stream_table` when a class declares one.
    streams: ClassVar[Mapping[str, StreamSpec]]
    # Raw fields that may carry buyer personal data; stripped before a record is quarantined.
    personal_fields: ClassVar[frozenset[str]] = frozenset()
    #: Paging endpoints whose platform documents that a page shorter than the requested limit is
    #: the last one: path -> the document's words. Every other paging loop ends only on what the
    #: platform names as the end (an empty page, `has_next: false`, no next token); the
    #: conformance kit serves short pages mid-stream to all of them.
    short_page_is_last: ClassVar[Mapping[str, str]] = {}
    #: Streams the platform lets a client read only by creation time, so a change to an old
    #: record reaches the store with the stream's periodic re-scan rather than on the next poll:
    #: stream -> the document's words. The kit checks those on a re-scan, the others on a poll.
    changes_only_by_rescan: ClassVar[Mapping[str, str]] = {}
    #: The platform's rate-limit groups: name -> the documented rate its client paces to, which an
    #: account's `[accounts.rate_limits.<group>]` may override (checked against these names). None:
    #: the connector paces no groups, and any name is accepted.
    rate_groups: ClassVar[Mapping[str, Rate] | None] = None
    #: The User-Agent its client sends (an account's `user_agent` overrides it); None is
    #: `connectors.http.default_user_agent()`, `loyalsync/<version>`. Some platforms block library
    #: defaults such as `python-httpx/*` (Megamarket, megamarket.md §1).
    user_agent: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "stream_table" in cls.__dict__ and "streams" not in cls.__dict__:
            cls.streams = MappingProxyType({name: s.spec for name, s in cls.stream_table.items()})

    def __init__(
        self,
        account: AccountSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        token_cache: TokenCache | None = None,
    ):
        """`transport` plugs in an emulator; `clock`/`sleep` (monotonic) let tests skip real waits;
        `token_cache` is where runtime tokens (OAuth) are kept, shared by replicas when the daemon
        passes the store's (None: this connector's own memory)."""
        self.account = account
        self.transport = transport
        self.clock = clock
        self.sleep = sleep
        self.token_cache = token_cache

    @property
    def effective_user_agent(self) -> str | None:
        """The account's User-Agent, else the connector's; None: the HTTP layer's default."""
        return self.account.user_agent or type(self).user_agent

    @classmethod
    def rate_limit_statuses(cls) -> frozenset[int]:
        """The HTTP statuses by which the platform says "too many requests" (429, or its own)."""
        mapping = {**DEFAULT_ERROR_MAPPING, **cls.error_mapping}
        return frozenset(status for status, action in mapping.items() if action is ResponseAction.RATE_LIMITED)

    def context(self, buyer_key: Callable[[str], str]) -> MappingContext:
        """The mapping context for this account, hashing buyer ids with `buyer_key`."""
        return MappingContext(marketplace=self.name, account=self.account.name, buyer_key=buyer_key)

    def stream_spec(self, stream: str) -> StreamSpec:
        """The effective spec of `stream` for this account."""
        return self.account.stream_spec(self.streams[stream])

    def enabled_streams(self) -> list[str]:
        return [
            s for s in self.streams
            if self.account.streams.get(s, StreamSettings()).enabled
        ]

    def fetch(self, stream: str, window: Window) -> AsyncIterator[Page]:
        """Yield the raw pages of `stream` inside `window`, one response at a time."""
        return self._declared(stream).fetch(self, window)

    def map_record(self, stream: str, raw: dict[str, Any], ctx: MappingContext) -> Record:
        """Map one raw record; raise `MalformedRecord` when it cannot be normalised."""
        return self._declared(stream).map(raw, ctx)

    def _declared(self, stream: str) -> Stream:
        try:
            return self.stream_table[stream]
        except KeyError:
            raise KeyError(f"unknown {self.name} stream {stream!r}") from None

    @classmethod
    def demo(cls, *, seed: int, orders: int, reviews: int, rate_limits: bool = True) -> DemoSetup | None:
        """An emulator with seeded data and a matching account (demo, benchmarks); None if none ships.

        `rate_limits=False` lifts the emulator's limits, for benchmarks that measure our own code.
        """
        return None

    def record_key(self, stream: str, raw: Any) -> str | None:
        """The platform id of a raw record, for quarantine rows: the field its stream declares as
        its key; None if the record has none or the stream declares none."""
        declared = self.stream_table.get(stream)
        return declared.record_key(raw) if declared is not None else None

    async def perform(self, request: WriteRequest) -> WriteResult:
        """Carry out one write on the platform; once, without retrying after a timeout or 5xx.

        Transient failures raise (`RetriableApiError`, `RetryDeferred`, network errors): the outbox
        then reads the platform's state with `find_done` before it ever sends again, so a write
        whose answer was lost is never made twice. Permanent refusals return `REJECTED`.
        """
        raise WriteNotSupported(f"{self.name} cannot {request.kind}")

    async def find_done(self, request: WriteRequest) -> WriteResult | None:
        """Read the platform: is the effect of `request` already there? `ALREADY_DONE` or None.

        Raises when the platform cannot be read; the outbox then waits rather than risk sending twice.
        """
        raise WriteNotSupported(f"{self.name} cannot check {request.kind}")

    async def product_names(self, skus: Sequence[str]) -> dict[str, ProductName]:
        """Names from the platform's catalog for SKUs (as records carry them) that no synced record named.

        Only SKUs the platform answered with a usable name are in the result; the others stay
        unknown (replies then name the article). Batches, pacing and retries are the connector's;
        a failure raises as any read does (`ApiError`), and the caller tries again later. The
        default, for platforms whose records name their products (Wildberries), asks nothing.
        """
        return {}

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op for HTTP-less connectors
        """Release the connector's HTTP client."""

    async def __aenter__(self) -> Connector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
