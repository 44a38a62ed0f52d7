"""What every `loyalsync` command shares: the common options, the config and the store, each
loaded or opened with one clear line and exit 2 on failure (no traceback)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from app.cli_group import close_at_exit, use_store
from app.config import AppConfig, format_problems, load_config
from app.logs import setup_logging
from app.wiring import open_store, store_connections
from connectors.errors import ConfigError
from store import Store
from store.db import in_memory
from store.errors import StoreMissing

__all__ = ["ConfigOpt", "DatabaseOpt", "NowOpt", "VerboseOpt", "err", "load_or_exit", "open_store_or_exit"]

err = Console(stderr=True)

NowOpt = Annotated[str | None, typer.Option("--now", help="As of this time, ISO 8601 (default: now).")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Global config file "
                      "(default: $LOYALSYNC_CONFIG or config/loyalsync.toml).")]
DatabaseOpt = Annotated[str | None, typer.Option("--database-url", help="Overrides the config "
                        "and $LOYALSYNC_DATABASE_URL, e.g. postgresql://user@host/db.")]
# Flags get metavar="": they take no value, and typer would show `--once <bool>`, inviting `--once true`.
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", metavar="", help="Debug logging.")]


def load_or_exit(config: Path | None, database_url: str | None, verbose: bool = False, *,
                 tokens: bool = True) -> AppConfig:
    """Load the config or exit 2 with every problem, no traceback.

    `tokens=False` for commands that only read the store: they need no API token.
    """
    try:
        cfg = load_config(config, database_url=database_url, tokens=tokens)
    except ConfigError as exc:
        # soft_wrap: one problem per line whatever the terminal width, so it can be grepped.
        err.print(format_problems(exc.problems), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    setup_logging([a.settings.token.get_secret_value() for a in cfg.accounts] + crm_secrets(cfg), verbose=verbose)
    return cfg


def crm_secrets(cfg: AppConfig) -> list[str]:
    """The webhook signing secrets and the CRM API key: never in a log line."""
    crm = cfg.settings.crm
    found = [e.secret.get_secret_value() for e in crm.webhooks]
    if crm.retailcrm is not None:
        found.append(crm.retailcrm.api_key.get_secret_value())
    return [s for s in found if s]


def open_store_or_exit(cfg: AppConfig, *, read_only: bool = False) -> Store:
    """Open and migrate the store; a failure is one line from the group (`app.cli_group`), exit 2.

    `read_only`: a command that only reads (status, export, report, members, simulate, actions,
    tasks) refuses a SQLite file that does not exist instead of creating an empty store.
    """
    url = cfg.settings.database.sqlalchemy_url
    use_store(cfg.settings.database.url)
    if read_only:
        missing = _missing_sqlite_file(url)
        if missing is not None:
            raise StoreMissing(missing.absolute())
    store = open_store(url, connections=store_connections(cfg))
    close_at_exit(store.engine)
    return store


def _missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL when it does not exist (None: it exists, in memory, or not SQLite)."""
    parsed = make_url(url)
    if not parsed.get_backend_name().startswith("sqlite") or in_memory(parsed):
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


# The outbox commands' dead-letter options (`loyalsync webhooks`, `loyalsync crm`).
ResendOpt = Annotated[list[int] | None, typer.Option("--resend", help="Send these dead letters again (ids).")]
ResendDeadOpt = Annotated[bool, typer.Option("--resend-dead", metavar="", help="Send every dead letter again.")]
