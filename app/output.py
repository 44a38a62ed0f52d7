"""Where commands print their results: tables for people, `--json` for scripts."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console

__all__ = ["PIPE_WIDTH", "JsonOpt", "print_json", "stdout_console"]

JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="One JSON document on stdout, for scripts.")]
# Piped output is read by scripts and `grep`: rich would cut it to 80 columns and fold ids.
PIPE_WIDTH = 1000


def stdout_console() -> Console:
    """A console on stdout: the terminal's width on a terminal, wide enough for any row when piped."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=PIPE_WIDTH)
    return console


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # money stays exact
    raise TypeError(f"not JSON: {type(value).__name__}")


def print_json(document: Any) -> None:
    """One JSON document on stdout (datetimes ISO 8601, money as decimal strings)."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2, default=_plain) + "\n")
