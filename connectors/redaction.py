"""Masking secrets in text and log records: tokens never reach a message, a log line or a repr."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator

__all__ = ["RUNTIME_SECRETS", "RedactingFilter", "SecretSet", "redact"]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret of 4+ characters replaced by `***`."""
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class SecretSet:
    """Secrets learnt while running (OAuth tokens fetched at runtime), masked by every log filter.

    A log handler sees records from every account's client, and tokens arrive long after logging
    was set up, so the one process-wide instance, `RUNTIME_SECRETS`, is what auth kinds add to and
    `RedactingFilter` reads; tests pass their own.
    """

    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()  # log records are filtered on whatever thread logs them

    def __repr__(self) -> str:
        return f"SecretSet({len(self._secrets)} secrets)"

    def add(self, *secrets: str) -> None:
        """Mask these too; too short ones (under 4 characters) would mask ordinary text."""
        new = {s for s in secrets if len(s) >= 4} - self._secrets
        if new:
            with self._lock:
                self._secrets = self._secrets | new

    def __iter__(self) -> Iterator[str]:
        return iter(self._secrets)  # a frozen snapshot: safe while another thread adds

    def __len__(self) -> int:
        return len(self._secrets)


#: The process's secrets learnt at runtime (see `SecretSet`).
RUNTIME_SECRETS = SecretSet()


class RedactingFilter(logging.Filter):
    """Masks secrets in log records: those given, those `add`ed, and those of `runtime`.

    Add it to handlers (`handler.addFilter`): a filter on a logger sees only records logged to
    that very logger, not those propagated from its children.
    """

    def __init__(self, secrets: Iterable[str] = (), *, runtime: SecretSet | None = RUNTIME_SECRETS):
        super().__init__()
        self._secrets: set[str] = set()
        self._runtime = runtime
        self.add(*([secrets] if isinstance(secrets, str) else secrets))

    def add(self, *secrets: str) -> None:
        """Mask these secrets too (tokens are read after logging is set up)."""
        self._secrets.update(s for s in secrets if len(s) >= 4)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets.union(self._runtime) if self._runtime else self._secrets
        if not secrets:
            return True
        try:
            # Format first: a secret may hide in any argument's str(), not only in strings.
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact(message, secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True
