"""One exception tree for everything a connector or the sync engine can raise, grouped by what the
caller does next.

    LoyalsyncError
     ├── ConfigError                  fix the config file; nothing runs
     ├── ApiError                     a platform answered (or failed to); carries marketplace + endpoint
     │    ├── FatalApiError            a 4xx that retrying will not fix; stop this stream, report
     │    │    ├── AuthError            401/403: the token is wrong, expired or lacks a category
     │    │    └── StreamUnavailable    the platform withholds this stream from this seller (e.g. an
     │    │                             Ozon subscription is missing): mark it, keep the others
     │    ├── RetriableApiError        429/420, 5xx, timeouts; carries retry_after (seconds) if hinted
     │    │    └── RateLimitedError
     │    └── RetryDeferred            retries ran out or the hinted wait is past the cap: save state,
     │                                 yield to the scheduler, try on the next run
     └── MalformedRecord              one record cannot be mapped: quarantine it, keep the rest

Messages never contain tokens or response bodies; they name the endpoint, the status and the next step.
"""

from __future__ import annotations

__all__ = [
    "TOKEN_REJECTED",
    "ApiError",
    "AuthError",
    "ConfigError",
    "FatalApiError",
    "LoyalsyncError",
    "MalformedRecord",
    "RateLimitedError",
    "RetriableApiError",
    "RetryDeferred",
    "StreamUnavailable",
]


#: How every AuthError's message starts: `loyalsync status` looks for it in a stream's last error.
TOKEN_REJECTED = "the token was rejected"


class LoyalsyncError(Exception):
    """Root of every error loyalsync raises on purpose."""


class ConfigError(LoyalsyncError):
    """Raised when config files are invalid; `problems` holds every `file: key: problem` line."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ApiError(LoyalsyncError):
    """Raised when a platform call did not give a usable answer."""

    def __init__(
        self,
        message: str,
        *,
        marketplace: str = "",
        endpoint: str = "",
        status: int | None = None,
        platform_message: str = "",
        request_id: str = "",
    ):
        self.marketplace = marketplace
        self.endpoint = endpoint
        self.status = status
        self.platform_message = platform_message
        self.request_id = request_id
        super().__init__(message)

    def __str__(self) -> str:
        parts = [p for p in (self.marketplace, self.endpoint) if p]
        where = " ".join(parts)
        status = f" HTTP {self.status}" if self.status is not None else ""
        platform = f" (platform says: {self.platform_message})" if self.platform_message else ""
        rid = f" [requestId {self.request_id}]" if self.request_id else ""
        head = f"{where}{status}: " if (where or status) else ""
        return f"{head}{self.args[0]}{platform}{rid}"


class FatalApiError(ApiError):
    """Raised for a platform answer that retrying will not change (most 4xx)."""


class AuthError(FatalApiError):
    """Raised when the platform rejects the token (missing, wrong, expired or without the category)."""


class StreamUnavailable(FatalApiError):
    """Raised when the platform withholds a stream from this seller, e.g. for want of a subscription."""


class RetriableApiError(ApiError):
    """Raised for an answer worth retrying: rate limited, 5xx, timeout or a dropped connection."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class RateLimitedError(RetriableApiError):
    """Raised when the platform says we sent too much (429; Yandex Market's 420)."""


class RetryDeferred(ApiError):
    """Raised when retries are used up or the platform asks for a wait past the cap: try next run."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class MalformedRecord(LoyalsyncError):
    """Raised by a mapping function when one platform record cannot be normalised."""

    def __init__(self, reason: str, *, record_key: str | None = None):
        self.reason = reason
        self.record_key = record_key
        super().__init__(reason)
