"""Logging for the CLI: readable lines, and secrets redacted from every record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from connectors.redaction import RedactingFilter

__all__ = ["setup_logging"]


def setup_logging(secrets: Iterable[str] = (), *, verbose: bool = False) -> None:
    """Send loyalsync's logs to stderr with every known secret masked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # On the handler, not a logger: it then covers records from every library that logs.
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
