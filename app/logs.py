"""Logging: JSON lines for machines, readable lines for people, secrets masked in both.

The format follows where stderr goes: a terminal gets text, anything else (a container's log
collector, a file) gets one JSON object per line. `LOYALSYNC_LOG_FORMAT=json|text` forces either.
While a job runs, `log_context` tags every line it logs with its marketplace, account and stream.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO

from app.log_repeats import RepeatFilter
from connectors.redaction import RedactingFilter

__all__ = ["LOG_FORMAT_ENV", "JsonFormatter", "TextFormatter", "log_context", "setup_logging"]

LOG_FORMAT_ENV = "LOYALSYNC_LOG_FORMAT"
LogFormat = Literal["json", "text"]
# The fields a record may carry about what it concerns, in the order lines show them.
CONTEXT_FIELDS = ("marketplace", "account", "stream")
_CONTEXT: ContextVar[Mapping[str, str] | None] = ContextVar("loyalsync_log_context", default=None)


@contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Tag every record logged inside (tasks and threads started inside too) with `fields`."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class _ContextFilter(logging.Filter):
    """Copies the current `log_context` onto a record; an explicit `extra=` value wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_CONTEXT.get() or {}).items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


def _context_of(record: logging.LogRecord) -> dict[str, str]:
    return {f: str(v) for f in CONTEXT_FIELDS if (v := getattr(record, f, None)) is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context_of(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # already redacted when the handler's RedactingFilter set it
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [marketplace/account/stream]: message`, for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(where)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        where = "/".join(_context_of(record).values())
        record.where = f" [{where}]" if where else ""
        return super().formatMessage(record)


def _pick_format(fmt: str | None, stream: TextIO) -> LogFormat:
    choice = (fmt or os.environ.get(LOG_FORMAT_ENV) or "").strip().lower()
    if choice in ("json", "text"):
        return choice  # type: ignore[return-value]
    isatty = getattr(stream, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


def setup_logging(secrets: Iterable[str] = (), *, verbose: bool = False, fmt: LogFormat | None = None,
                  stream: TextIO | None = None) -> None:
    """Send logs to `stream` (stderr) as JSON or text (`fmt`, else $LOYALSYNC_LOG_FORMAT, else by TTY).

    Every known secret is masked, in the message and in exception text alike.
    """
    stream = stream if stream is not None else sys.stderr
    chosen = _pick_format(fmt, stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    # On the handler, not a logger: it then covers records from every library that logs.
    # Context first, so the redaction sees the finished record.
    handler.addFilter(_ContextFilter())
    handler.addFilter(RepeatFilter())  # APScheduler's "maximum number of running instances": once, counted
    handler.addFilter(RedactingFilter(list(secrets)))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_loyalsync", False):
            root.removeHandler(old)
    handler._loyalsync = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("loyalsync").setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore", "apscheduler", "uvicorn", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    requested = fmt or os.environ.get(LOG_FORMAT_ENV)
    if requested and requested.strip().lower() not in ("json", "text"):
        logging.getLogger("loyalsync").warning("%s=%r is not json or text; using %s", LOG_FORMAT_ENV,
                                               requested, chosen)
