"""The one HTTP client every connector uses: pacing, auth, one response table, retries, redaction.

Every response is classified once (`classify`) into a `ResponseAction`; each action maps to one
branch of `connectors.errors`. Retriable answers are retried with tenacity; what is still failing
when attempts run out, or asks for a wait past the cap, becomes `RetryDeferred` for the scheduler.
Credentials go on through the account's auth hook (`connectors.auth`), inside each attempt.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from types import MappingProxyType
from typing import Any

import httpx
import ijson
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from connectors.auth import Auth
from connectors.errors import (
    TOKEN_REJECTED,
    ApiError,
    AuthError,
    FatalApiError,
    RateLimitedError,
    RetriableApiError,
    RetryDeferred,
)
from connectors.ratelimit import Clock, EndpointGroup, RateLimiter, Sleep
from connectors.redaction import RedactingFilter, redact
from connectors.responses import (
    DEFAULT_ERROR_MAPPING,
    PlatformErrorInfo,
    ResponseAction,
    classify,
    describe_json_error,
    parse_retry_after,
)

_A = ResponseAction

__all__ = [
    "DEFAULT_ERROR_MAPPING",
    "ApiClient",
    "ClientStats",
    "NetworkTransport",
    "ObservedTransport",
    "PlatformErrorInfo",
    "RedactingFilter",
    "ResponseAction",
    "ResponseObserver",
    "RetryPolicy",
    "classify",
    "default_user_agent",
    "describe_json_error",
    "parse_retry_after",
    "redact",
]

log = logging.getLogger("loyalsync.http")

_MESSAGE_LIMIT = 300
_NO_DEFAULT: Any = object()  # "no empty_body given", distinct from None
_ERROR_FIELDS = ("marketplace", "endpoint", "status", "platform_message", "request_id")


@functools.cache
def default_user_agent() -> str:
    """`loyalsync/<version>`: a product User-Agent (Megamarket blocks library defaults, megamarket.md §1)."""
    try:
        return f"loyalsync/{version('loyalsync')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "loyalsync/0"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one call tries before it is deferred to the next scheduler run."""

    max_attempts: int = 6
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    max_hinted_wait: float = 120.0  # a longer server-requested wait defers instead of blocking
    request_deadline: float = 30.0  # send + body read; enforced here (ASGITransport has no timeout)


class _BodyReader:
    """An async file-like view of a streamed body for ijson, noting its first non-blank byte."""

    def __init__(self, chunks: AsyncIterator[bytes]):
        self._chunks = chunks
        self._pending = b""
        self.first_byte = b""

    @property
    def started(self) -> bool:
        return bool(self.first_byte)

    async def read(self, size: int = -1) -> bytes:
        while not self._pending:
            try:
                self._pending = await anext(self._chunks)
            except StopAsyncIteration:
                return b""
            if not self.first_byte and self._pending.strip():
                self.first_byte = self._pending.lstrip()[:1]
        if size < 0 or size >= len(self._pending):
            out, self._pending = self._pending, b""
        else:
            out, self._pending = self._pending[:size], self._pending[size:]
        return out


@dataclass(slots=True)
class ClientStats:
    """Counters of one client, read by benchmarks and /metrics."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)  # (group or "", status)
    transport_errors: int = 0  # timeouts and dropped connections
    rate_limited: int = 0
    retries: int = 0
    deferred: int = 0
    limiter_wait_seconds: float = 0.0


# Told of every answer: the request and its status, or None when no answer came (timeout, reset).
ResponseObserver = Callable[[httpx.Request, int | None], None]


class ObservedTransport(httpx.AsyncBaseTransport):
    """Wraps a transport and reports every answer's status to `observer` (the metrics hook).

    It travels through the `transport` argument every connector already passes on to its client,
    so a daemon can count requests without connectors knowing who counts. `inner=None` is the
    network, with HTTP(S)_PROXY/NO_PROXY honoured as httpx does when given no transport.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport | None, observer: ResponseObserver):
        self.inner = inner if inner is not None else NetworkTransport()
        self.observer = observer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError:
            self._tell(request, None)
            raise
        self._tell(request, response.status_code)
        return response

    def _tell(self, request: httpx.Request, status: int | None) -> None:
        try:
            self.observer(request, status)
        except Exception:  # noqa: BLE001 - a counting bug must never fail a platform call
            log.exception("response observer failed")

    async def aclose(self) -> None:
        await self.inner.aclose()


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context (certifi's roots, SSL_CERT_FILE/DIR honoured) for every account's client.

    httpx builds a context per client otherwise, about 0.8 MB each: 800 MB for 1,000 accounts.
    """
    return httpx.create_ssl_context()


class NetworkTransport(httpx.AsyncBaseTransport):
    """The transport httpx picks by itself, HTTP(S)_PROXY/NO_PROXY included.

    An `httpx.AsyncClient` given an explicit transport ignores the proxy environment, and a seller's
    container may only reach the platforms through a proxy: wrappers use this as their network.
    """

    def __init__(self) -> None:
        self._direct = httpx.AsyncHTTPTransport(verify=shared_ssl_context())
        self._proxied: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        proxies = urllib.request.getproxies()
        proxy = proxies.get(request.url.scheme) or proxies.get("all")
        if not proxy or urllib.request.proxy_bypass(request.url.host):
            return await self._direct.handle_async_request(request)
        if proxy not in self._proxied:
            self._proxied[proxy] = httpx.AsyncHTTPTransport(proxy=proxy, verify=shared_ssl_context())
        return await self._proxied[proxy].handle_async_request(request)

    async def aclose(self) -> None:
        for transport in (self._direct, *self._proxied.values()):
            await transport.aclose()


class ApiClient:
    """One seller account's HTTP client: paced, authorised, classified, retried, never showing secrets.

    `auth` puts the credentials on every request (`connectors.auth`); `headers` and `secrets` are
    the older way of saying `HeaderAuth(headers, secrets=secrets)` and still work alongside it.
    `user_agent` goes on every request (None: `default_user_agent()`).
    """

    def __init__(
        self,
        *,
        marketplace: str,
        base_urls: Mapping[str, str],
        auth: Auth | None = None,
        user_agent: str | None = None,
        headers: Mapping[str, str] | None = None,
        secrets: Sequence[str] = (),
        limiter: RateLimiter | None = None,
        retry: RetryPolicy = RetryPolicy(),
        error_mapping: Mapping[int, ResponseAction] | None = None,
        retry_after_headers: Sequence[str] = ("Retry-After",),
        remaining_header: str | None = None,
        describe_error: Callable[[httpx.Response], PlatformErrorInfo] | None = None,
        token_rejected: Callable[[int, PlatformErrorInfo], bool] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ):
        self.marketplace = marketplace
        self.base_urls = {key: url.rstrip("/") for key, url in base_urls.items()}
        self.limiter = limiter
        self.retry = retry
        self.error_mapping = MappingProxyType({**DEFAULT_ERROR_MAPPING, **(error_mapping or {})})
        self.retry_after_headers = tuple(retry_after_headers)
        self.remaining_header = remaining_header
        self.describe_error = describe_error or describe_json_error
        # A platform that refuses a bad token with a status other than 401/403 (Ozon's
        # "Invalid Api-Key" has been reported as a 404) says so here: (status, body) -> bad token.
        self.token_rejected = token_rejected
        self.stats = ClientStats()
        # A lone string would be split into characters, each too short to mask: nothing redacted.
        self._static_secrets = (secrets,) if isinstance(secrets, str) else tuple(secrets)
        self.auth = auth if auth is not None else Auth()
        self.user_agent = user_agent or default_user_agent()
        self._sleep = sleep or asyncio.sleep  # None: the real clocks (tests pass fakes)
        self._clock = clock or time.monotonic
        # httpx's own timeout covers real sockets; `asyncio.timeout` in `_attempt` covers the rest.
        # Client-level headers are the defaults a call's own `headers=` may replace.
        self._http = httpx.AsyncClient(
            headers={"User-Agent": self.user_agent, **dict(headers or {})}, transport=transport,
            timeout=retry.request_deadline, verify=shared_ssl_context(),
        )

    @property
    def _secrets(self) -> tuple[str, ...]:
        """Every secret to mask now: those given, and those the auth hook has used (tokens fetched
        at runtime join as they arrive)."""
        return self._static_secrets + self.auth.secrets()

    def __repr__(self) -> str:
        return f"ApiClient(marketplace={self.marketplace!r}, hosts={sorted(self.base_urls)})"

    async def request(
        self,
        method: str,
        host: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send `method base_urls[host]+path`; return the 2xx response or raise from errors.py.

        `data` is a form-encoded body (RetailCRM's); `json` a JSON one.
        `idempotent=False` is for writes: the request is sent once. A timeout, a dropped
        connection, a 5xx or a cut-off body raises `RetriableApiError` at once, because the platform
        may have applied it; only a rate-limit refusal (429/420, nothing applied) is waited out and
        sent again, paced by the same buckets as reads.
        """
        return await self._send(method, host, path, None, idempotent=idempotent, params=params, json=json,
                                data=data, headers=headers)

    async def request_json(
        self,
        method: str,
        host: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        empty_body: Any = _NO_DEFAULT,
        idempotent: bool = True,
        check_body: Callable[[Any, dict[str, Any]], None] | None = None,
    ) -> Any:
        """Like `request`, returning the decoded JSON body.

        A body that is cut off or not JSON is retried like a 5xx: it is what a dropped
        connection or an overloaded gateway looks like. `empty_body` is returned for an empty
        body where a platform is known to send one instead of `[]`. `idempotent=False`: see `request`.
        `check_body(body, where)` reads a 2xx body for an error the platform reports inside it
        (Megamarket's `"success": 0`) and raises the typed error (`where`: the error's marketplace
        and endpoint); raised inside the attempt, a `RetriableApiError` is retried like a 5xx.
        """

        def decode(response: httpx.Response, where: dict[str, Any]) -> Any:
            if not response.content.strip() and empty_body is not _NO_DEFAULT:
                return empty_body
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError as exc:
                raise RetriableApiError("the answer is not complete JSON", status=response.status_code,
                                        **where) from exc
            if check_body is not None:
                check_body(body, {**where, "status": response.status_code})
            return body

        return await self._send(method, host, path, decode, idempotent=idempotent, params=params, json=json,
                                data=data, headers=headers)

    async def stream_json_items(
        self,
        method: str,
        host: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        batch: int = 5000,
    ) -> AsyncIterator[list[Any]]:
        """The items of a top-level JSON array, `batch` at a time, parsed as the body arrives.

        For answers too big to hold at once (WB statistics: up to 80,000 rows, ~60 MB). Getting
        the response is retried like `request`; a body that breaks off midway raises
        RetriableApiError after the items before the break were yielded, so a caller that saves
        progress per batch loses nothing. An empty body counts as an empty array. Non-integer
        numbers arrive as exact `Decimal`s.
        """
        response = await self._send(method, host, path, None, True, params=params, json=json)
        where = {"marketplace": self.marketplace, "endpoint": redact(f"{method.upper()} {path}", self._secrets),
                 "status": response.status_code}
        body = _BodyReader(response.aiter_bytes())
        chunk: list[Any] = []
        broken: ApiError | None = None
        try:
            async for item in ijson.items_async(body, "item"):
                chunk.append(item)
                if len(chunk) >= batch:
                    yield chunk
                    chunk = []
        except ijson.JSONError:
            if body.started and body.first_byte == b"[":
                broken = RetriableApiError("the answer broke off mid-body", **where)
        except httpx.TransportError as exc:
            self.stats.transport_errors += 1
            broken = RetriableApiError(f"connection failed mid-body ({type(exc).__name__})", **where)
        finally:
            await response.aclose()
        if body.started and body.first_byte != b"[":
            raise FatalApiError("expected a JSON array", **where)
        if chunk:
            yield chunk  # the whole items before a break are good: hand them on first
        if broken is not None:
            raise broken

    async def _send(
        self,
        method: str,
        host: str,
        path: str,
        decode: Callable[[httpx.Response, dict[str, Any]], Any] | None,
        stream: bool = False,
        *,
        idempotent: bool = True,
        **send: Any,
    ) -> Any:
        if host not in self.base_urls:
            raise ValueError(f"unknown host {host!r}; known: {sorted(self.base_urls)}")
        method = method.upper()
        endpoint = redact(f"{method} {path.split('?', 1)[0]}", self._secrets)
        group = self.limiter.group_for(host, path) if self.limiter is not None else None
        policy = self.retry

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hint = getattr(exc, "retry_after", None)
            if hint is not None:
                # One mechanism per wait: a rate-limit hint paused the group's bucket in `_check`,
                # so the next attempt's acquire does the waiting (and every other caller of the
                # group waits with it); only an unpaced hint is slept here.
                return 0.0 if isinstance(exc, RateLimitedError) and group is not None else hint
            backoff = policy.backoff_initial * 2 ** min(state.attempt_number - 1, 32)
            return min(policy.backoff_max, backoff + random.uniform(0, policy.backoff_initial))

        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts),
            wait=wait,
            # A write is sent again only after a rate-limit refusal, which applied nothing.
            retry=retry_if_exception_type(RetriableApiError if idempotent else RateLimitedError),
            before_sleep=self._log_retry,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return await retrying(self._attempt, method, host, path, group, endpoint, send, decode, stream)
        except RetriableApiError as exc:
            if not idempotent and not isinstance(exc, RateLimitedError):
                raise  # the write may have been applied: the caller checks before sending again
            self.stats.deferred += 1
            raise RetryDeferred(
                f"{exc.args[0]}; gave up after {policy.max_attempts} attempts, try on the next run",
                retry_after=exc.retry_after,
                **{k: getattr(exc, k) for k in _ERROR_FIELDS},
            ) from exc

    async def aclose(self) -> None:
        """Close the underlying connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _attempt(
        self, method: str, host: str, path: str, group: EndpointGroup | None, endpoint: str,
        send: dict[str, Any], decode: Callable[[httpx.Response, dict[str, Any]], Any] | None = None,
        stream: bool = False,
    ) -> Any:
        """One paced send, classified; raises the typed error the retry loop decides on.

        With `stream`, a 2xx response comes back with its body unread (the caller closes it).
        """
        where = {"marketplace": self.marketplace, "endpoint": endpoint}
        if group is not None:
            assert self.limiter is not None
            bucket = self.limiter.bucket(group.name)
            ahead = bucket.wait_time()
            if ahead > self.retry.max_hinted_wait:
                # Blocking for hours inside one call would stall the scheduler's worker.
                self.stats.deferred += 1
                raise RetryDeferred(
                    f"the {group.name!r} budget is spent for {ahead:.0f}s; try on the next run",
                    retry_after=ahead, **where,
                )
            self.stats.limiter_wait_seconds += await bucket.acquire()
        started = self._clock()
        try:
            async with asyncio.timeout(self.retry.request_deadline):
                request = self._http.build_request(method, self.base_urls[host] + path, **send)
                response = await self._send_authorised(request, stream)
                if stream and not response.is_success:
                    await response.aread()  # an error body is small, and describing it needs it
        except (TimeoutError, httpx.TimeoutException) as exc:
            self.stats.transport_errors += 1
            deadline = self.retry.request_deadline
            raise RetriableApiError(f"no answer within {deadline:g}s", **where) from exc
        except httpx.TransportError as exc:
            self.stats.transport_errors += 1
            raise RetriableApiError(f"connection failed ({type(exc).__name__})", **where) from exc
        except httpx.RequestError as exc:  # undecodable body, too many redirects: not transient
            raise FatalApiError(f"unusable answer ({type(exc).__name__})", **where) from exc
        log.debug(
            "%s %s %s -> %d in %.3fs", method, host, endpoint.split(" ", 1)[1],
            response.status_code, self._clock() - started,
        )
        self.stats.requests[(group.name if group else "", response.status_code)] += 1
        try:
            checked = self._check(response, group, where)
        finally:
            if stream and not response.is_success:
                await response.aclose()
        return checked if decode is None else decode(checked, where)

    async def _send_authorised(self, request: httpx.Request, stream: bool) -> httpx.Response:
        """Drive the auth hook's flow, as httpx's `_send_handling_auth` does: send what it yields,
        hand it each answer, until it yields no more; the last answer is the one classified."""
        flow = self.auth.auth_flow(request, self._send_side_request)
        try:
            request = await anext(flow)
            while True:
                response = await self._http.send(request, stream=stream)
                try:
                    request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
                await response.aclose()  # superseded by the request the flow sends instead
        finally:
            await flow.aclose()  # a cancelled attempt must not leave the flow holding a refresh

    async def _send_side_request(self, request: httpx.Request) -> httpx.Response:
        """A request an auth flow makes on its own (a token endpoint), classified like any answer."""
        endpoint = redact(f"{request.method} {request.url.path}", self._secrets)
        where = {"marketplace": self.marketplace, "endpoint": endpoint}
        try:
            request.headers.setdefault("User-Agent", self.user_agent)
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            self.stats.transport_errors += 1
            raise RetriableApiError(f"connection failed ({type(exc).__name__})", **where) from exc
        log.debug("%s -> %d (auth)", endpoint, response.status_code)
        return self._check(response, None, where)

    def _check(
        self, response: httpx.Response, group: EndpointGroup | None, where: dict[str, str]
    ) -> httpx.Response:
        status = response.status_code
        action = classify(status, self.error_mapping)
        hint = self._hint(response) if action in (_A.RETRY, _A.RATE_LIMITED) else None
        cap = self.retry.max_hinted_wait
        if group is not None:
            assert self.limiter is not None
            bucket = self.limiter.bucket(group.name)
            remaining = self._remaining(response)
            if remaining is not None:
                bucket.observe_remaining(remaining)
            if action is _A.RATE_LIMITED and hint is not None and hint <= cap:
                # The hint is the server's own accounting, penalty included: it replaces the charge.
                bucket.pause_for(hint)
            elif 400 <= status < 500 and group.cost_of_4xx > 1:
                bucket.charge(group.cost_of_4xx - 1)
        if action is _A.SUCCESS:
            return response
        info = self._describe(response)
        if action is not _A.AUTH and self.token_rejected is not None and self.token_rejected(status, info):
            action = _A.AUTH
        fields = {**where, "status": status, "platform_message": info.message,
                  "request_id": info.request_id}
        if action is _A.AUTH:
            raise AuthError(
                f"{TOKEN_REJECTED} (missing, wrong, expired or without this API's category); "
                "fix the token", **fields,
            )
        if action is _A.FAIL:
            raise FatalApiError("request rejected; retrying will not help, check the request",
                                **fields)
        if action is _A.RATE_LIMITED:
            self.stats.rate_limited += 1
            error: RetriableApiError = RateLimitedError("rate limited", retry_after=hint, **fields)
        else:
            error = RetriableApiError("temporary failure", retry_after=hint, **fields)
        if hint is not None and hint > cap:
            self.stats.deferred += 1
            raise RetryDeferred(
                f"the platform asks for a {hint:.0f}s wait, past the {cap:g}s cap; try next run",
                retry_after=hint, **fields,
            ) from error
        raise error

    def _hint(self, response: httpx.Response) -> float | None:
        for name in self.retry_after_headers:
            value = response.headers.get(name)
            if value is not None:  # the first header present decides, even when it is unusable
                return parse_retry_after(value, datetime.now(UTC))
        return None

    def _remaining(self, response: httpx.Response) -> int | None:
        value = response.headers.get(self.remaining_header) if self.remaining_header else None
        try:
            return max(0, int(value)) if value is not None else None
        except ValueError:
            return None

    def _describe(self, response: httpx.Response) -> PlatformErrorInfo:
        try:
            info = self.describe_error(response)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return PlatformErrorInfo()
        # Redact before truncating, or the cut could leave a secret's prefix unmasked.
        message = redact(" ".join(str(info.message).split()), self._secrets)
        if len(message) > _MESSAGE_LIMIT:
            message = message[: _MESSAGE_LIMIT - 1] + "…"
        request_id = redact(str(info.request_id), self._secrets)[:_MESSAGE_LIMIT]
        return PlatformErrorInfo(message, request_id)

    def _log_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        hint = getattr(exc, "retry_after", None)
        how = f"in {delay:.2f}s" if delay or hint is None else f"after a {hint:.2f}s limiter pause"
        # str(exc) already names the marketplace, endpoint and status, and is redacted.
        log.warning(
            "attempt %d/%d failed, retrying %s: %s",
            state.attempt_number, self.retry.max_attempts, how, exc,
        )

