"""How an `ApiClient` puts an account's credentials on its requests: the auth hook and its kinds.

The hook has the shape of httpx's `Auth.auth_flow` (encode/httpx:httpx/_auth.py): a generator that
yields the request to send, is handed its response, and may yield once more (a refresh after a
401). It runs inside `ApiClient`'s attempt, so a token endpoint's 429/5xx is retried and paced like
any answer, and every secret it knows (`secrets()`) is masked in errors and logs.

    Auth                      no credentials
     ├── HeaderAuth           fixed headers: Wildberries, Ozon, Yandex Market, Kaspi
     ├── BodyTokenAuth        the token inside the JSON body envelope (+ a header): Megamarket
     └── ClientCredentials    OAuth2 client_credentials, cached, refreshed ahead of expiry: Avito

Tokens fetched at runtime are shared through a `TokenCache` (in memory by default; the store's
`store.tokens.StoreTokenCache` lets replicas share one token instead of each asking the platform).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import httpx
import orjson

from connectors.errors import AuthError, FatalApiError
from connectors.redaction import RUNTIME_SECRETS, SecretSet

__all__ = [
    "Auth",
    "BodyTokenAuth",
    "CachedToken",
    "ClientCredentials",
    "HeaderAuth",
    "MemoryTokenCache",
    "SendRaw",
    "TokenCache",
]

#: How an auth flow sends a side request (a token endpoint): through the client's transport and
#: response table; returns the 2xx response or raises the typed error (`connectors.errors`).
SendRaw = Callable[[httpx.Request], Awaitable[httpx.Response]]

# A flow that has a response of this status in hand refreshes its credentials once and sends again.
_REFRESH_ON = frozenset({401})


class Auth:
    """Puts credentials on a request; this base sends requests as they are (no credentials)."""

    def secrets(self) -> tuple[str, ...]:
        """Every secret this auth has used or may send: masked in errors and log lines."""
        return ()

    async def auth_flow(self, request: httpx.Request, send: SendRaw) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Yield `request` with credentials on; a kind that refreshes may yield once more."""
        yield request


class HeaderAuth(Auth):
    """Fixed headers on every request (a token the seller pastes in: WB, Ozon, Market, Kaspi)."""

    def __init__(self, headers: Mapping[str, str], *, secrets: tuple[str, ...] | list[str] = ()):
        self._headers = dict(headers)
        self._secrets = tuple(s for s in secrets if s)

    def __repr__(self) -> str:
        return f"HeaderAuth(headers={sorted(self._headers)})"

    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    async def auth_flow(self, request: httpx.Request, send: SendRaw) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # A header the caller set on this one request wins, as it did over the client's defaults.
        for name, value in self._headers.items():
            request.headers.setdefault(name, value)
        yield request


class BodyTokenAuth(Auth):
    """The token inside the JSON body envelope, and in a header too (Megamarket).

    Megamarket's bodies are `{"meta": {}, "data": {"token": "<MERCHANT_TOKEN>", ...}}`
    (megamarket.md §1, payloads/megamarket/order_search.request.json); a public client also sends
    `X-Merchant-Token` on every call, and which one the server reads is not documented: both go.
    A request without a JSON object body (a GET) gets the header only.
    """

    def __init__(self, token: str, *, header: str | None = "X-Merchant-Token",
                 path: tuple[str, ...] = ("data", "token"), envelope: Mapping[str, Any] | None = None):
        if not path:
            raise ValueError("path names at least the token's own key")
        self._token = token
        self._header = header
        self._path = path
        # Keys every body carries even when the caller left them out (Megamarket: "meta": {}).
        self._envelope = dict(envelope if envelope is not None else {"meta": {}})

    def __repr__(self) -> str:
        return f"BodyTokenAuth(path={'.'.join(self._path)!r}, header={self._header!r})"

    def secrets(self) -> tuple[str, ...]:
        return (self._token,) if self._token else ()

    async def auth_flow(self, request: httpx.Request, send: SendRaw) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._header:
            request.headers.setdefault(self._header, self._token)
        yield self._with_token(request)

    def _with_token(self, request: httpx.Request) -> httpx.Request:
        if "json" not in request.headers.get("Content-Type", ""):
            return request
        body = orjson.loads(request.content) if request.content.strip() else {}
        if not isinstance(body, dict):
            return request
        body = {**{k: v for k, v in self._envelope.items() if k not in body}, **body}
        node = body
        for key in self._path[:-1]:
            child = node.get(key)
            node[key] = child = dict(child) if isinstance(child, dict) else {}
            node = child
        node[self._path[-1]] = self._token
        headers = request.headers.copy()
        headers.pop("Content-Length", None)  # the new body has its own length
        return httpx.Request(request.method, request.url, headers=headers, content=orjson.dumps(body),
                             extensions=request.extensions)


@dataclass(frozen=True, slots=True)
class CachedToken:
    """An access token and its lifetime in aware UTC: what replicas share through a `TokenCache`."""

    value: str = field(repr=False)
    issued_at: datetime
    expires_at: datetime

    def __post_init__(self) -> None:
        if self.issued_at.tzinfo is None or self.expires_at.tzinfo is None:
            raise ValueError("token times must be timezone-aware")

    @property
    def lifetime(self) -> timedelta:
        return self.expires_at - self.issued_at


@runtime_checkable
class TokenCache(Protocol):
    """Where fetched tokens live between requests, by key; shared by replicas when store-backed."""

    async def get(self, key: str) -> CachedToken | None:
        """The token saved under `key`, or None."""
        ...

    async def put(self, key: str, token: CachedToken) -> None:
        """Save `token` under `key`, replacing the one there."""
        ...

    def refreshing(self, key: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Held by the one caller that fetches a new token for `key`; the others wait for it."""
        ...


class MemoryTokenCache:
    """The default cache: this process only, one refresh at a time per key."""

    def __init__(self) -> None:
        self._tokens: dict[str, CachedToken] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"MemoryTokenCache(keys={sorted(self._tokens)})"

    async def get(self, key: str) -> CachedToken | None:
        return self._tokens.get(key)

    async def put(self, key: str, token: CachedToken) -> None:
        self._tokens[key] = token

    @contextlib.asynccontextmanager
    async def refreshing(self, key: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(key, asyncio.Lock()):
            yield


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ClientCredentials(Auth):
    """OAuth2 client_credentials (RFC 6749 §4.4): `Authorization: Bearer <access_token>`.

    The token is fetched by a form POST of `grant_type=client_credentials&client_id=…&client_secret=…`
    to `token_url` (Avito: `POST https://api.avito.ru/token`, answer
    `{"access_token", "expires_in": 86400, "token_type": "Bearer"}`; avito.md §2,
    payloads/avito/token.response.json), kept in `cache` and refreshed ahead of expiry: when less
    than `refresh_fraction` of its lifetime, or `refresh_before`, is left (whichever is more, at most
    half the lifetime). A request answered 401 refreshes once and is sent once more; while one caller
    fetches, the others wait on `cache.refreshing` and then use its token. Every token seen (fetched
    here or by another replica) joins `secrets()` and `runtime_secrets`, which log filters mask.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        cache: TokenCache | None = None,
        cache_key: str | None = None,
        refresh_fraction: float = 0.1,
        refresh_before: timedelta = timedelta(minutes=5),
        refresh_on: frozenset[int] = _REFRESH_ON,
        default_lifetime: timedelta = timedelta(hours=1),
        now: Callable[[], datetime] = _utc_now,
        runtime_secrets: SecretSet = RUNTIME_SECRETS,
    ):
        if not 0 <= refresh_fraction < 1:
            raise ValueError("refresh_fraction is a share of the lifetime, in [0, 1)")
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.cache: TokenCache = cache if cache is not None else MemoryTokenCache()
        # The client id in the key: a changed credential never picks up the old one's token.
        self.cache_key = cache_key or f"oauth2:{token_url}:{client_id}"
        self.refresh_fraction = refresh_fraction
        self.refresh_before = refresh_before
        self.refresh_on = refresh_on
        self.default_lifetime = default_lifetime  # when the answer carries no usable expires_in
        self._now = now
        self._runtime = runtime_secrets
        self._seen: set[str] = set()
        self.fetches = 0  # tokens this instance asked the platform for (tests, metrics)
        self._runtime.add(client_secret)

    def __repr__(self) -> str:
        return f"ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._client_secret, *self._seen) if s)

    def needs_refresh(self, token: CachedToken) -> bool:
        """Whether `token` is too close to its expiry to be sent."""
        lifetime = max(token.lifetime, timedelta(0))
        margin = min(max(lifetime * self.refresh_fraction, self.refresh_before), lifetime / 2)
        return self._now() >= token.expires_at - margin

    async def auth_flow(self, request: httpx.Request, send: SendRaw) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.token(send)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code in self.refresh_on:
            token = await self.token(send, rejected=token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request  # once: a second refusal is the platform's answer (AuthError)

    async def token(self, send: SendRaw, *, rejected: str | None = None) -> str:
        """A token fit to send: the cached one, or a new one fetched by exactly one caller.

        `rejected` is a token the platform refused: it is replaced even if it looks fresh, unless
        someone has already replaced it.
        """
        cached = await self.cache.get(self.cache_key)
        if self._usable(cached, rejected):
            return self._remember(cached.value)  # type: ignore[union-attr]
        async with self.cache.refreshing(self.cache_key):
            # Whoever held the refresh before us may have done the work already.
            cached = await self.cache.get(self.cache_key)
            if self._usable(cached, rejected):
                return self._remember(cached.value)  # type: ignore[union-attr]
            fresh = await self._fetch(send)
            await self.cache.put(self.cache_key, fresh)
            return fresh.value

    def _usable(self, cached: CachedToken | None, rejected: str | None) -> bool:
        return cached is not None and cached.value != rejected and not self.needs_refresh(cached)

    def _remember(self, value: str) -> str:
        if value not in self._seen:
            self._seen.add(value)
            self._runtime.add(value)
        return value

    async def _fetch(self, send: SendRaw) -> CachedToken:
        # RFC 6749 §2.3.1 also allows HTTP Basic; Avito documents the form fields (avito.md §2).
        request = httpx.Request("POST", self.token_url, data={
            "grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._client_secret,
        })
        issued = self._now()
        self.fetches += 1
        endpoint = f"POST {request.url.path}"
        try:
            response = await send(request)
        except FatalApiError as exc:
            if exc.status not in (400, 401, 403):
                raise
            # RFC 6749 §5.2: a refused client answers 400 or 401 {"error": "invalid_client", …}.
            raise AuthError("the token endpoint refused the client credentials: check client_id and the client "
                            "secret's variable", endpoint=endpoint, status=exc.status,
                            platform_message=exc.platform_message, marketplace=exc.marketplace) from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise FatalApiError("the token endpoint's answer is not JSON", endpoint=endpoint,
                                status=response.status_code) from exc
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise FatalApiError("the token endpoint's answer has no access_token", endpoint=endpoint,
                                status=response.status_code)
        self._remember(value)
        kind = body.get("token_type")
        if isinstance(kind, str) and kind.lower() != "bearer":
            raise FatalApiError(f"the token endpoint issued a {kind!r} token, not a Bearer one",
                                endpoint=endpoint, status=response.status_code)
        expires_in = body.get("expires_in")
        usable = isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0
        lifetime = timedelta(seconds=expires_in) if usable else self.default_lifetime
        return CachedToken(value=value, issued_at=issued, expires_at=issued + lifetime)

