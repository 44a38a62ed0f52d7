"""Masking secrets in text and log records: tokens never reach a message, a log line or a repr."""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["RedactingFilter", "redact"]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret of 4+ characters replaced by `***`."""
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in log records.

    Add it to handlers (`handler.addFilter`): a filter on a logger sees only records logged to
    that very logger, not those propagated from its children.
    """

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self._secrets: set[str] = set()
        self.add(*([secrets] if isinstance(secrets, str) else secrets))

    def add(self, *secrets: str) -> None:
        """Mask these secrets too (tokens are read after logging is set up)."""
        self._secrets.update(s for s in secrets if len(s) >= 4)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            # Format first: a secret may hide in any argument's str(), not only in strings.
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact(message, self._secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        return True
