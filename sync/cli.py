"""The `loyalsync` command. Each command parses its input, calls one function and prints."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from connectors.errors import ConfigError
from sync.config import AppConfig, format_problems, load_config

if TYPE_CHECKING:
    from sync.store import Store

__all__ = ["app", "main"]

app = typer.Typer(
    name="loyalsync",
    help="Sync marketplace orders and reviews into one store; run a platform-safe loyalty program.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold tokens
    add_completion=False,
)
err = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Global config file "
                      "(default: $LOYALSYNC_CONFIG or config/loyalsync.toml).")]
DatabaseOpt = Annotated[str | None, typer.Option("--database-url", help="Overrides the config "
                        "and $LOYALSYNC_DATABASE_URL, e.g. postgresql://user@host/db.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


def _load(config: Path | None, database_url: str | None, verbose: bool = False, *,
          tokens: bool = True) -> AppConfig:
    """Load the config or exit 2 with every problem, no traceback.

    `tokens=False` for commands that only read the store: they need no API token.
    """
    from sync.logs import setup_logging

    try:
        cfg = load_config(config, database_url=database_url, tokens=tokens)
    except ConfigError as exc:
        # soft_wrap: one problem per line whatever the terminal width, so it can be grepped.
        err.print(format_problems(exc.problems), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    setup_logging([a.settings.token.get_secret_value() for a in cfg.accounts], verbose=verbose)
    return cfg


def _open_store(cfg: AppConfig) -> Store:
    """Open and migrate the store or exit 2 with one line saying why, no traceback."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from sync.app import open_store

    try:
        return open_store(cfg.settings.database.sqlalchemy_url)
    except (SQLAlchemyError, OSError) as exc:
        # The driver's own message: it names host/file and reason, never the password.
        reason = str(exc.orig if isinstance(exc, DBAPIError) else exc).strip().splitlines()[0]
        err.print(f"cannot open the store ({cfg.settings.database.url.partition(':')[0]}): {reason}",
                  markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None


@app.command("check-config")
def check_config_cmd(config: ConfigOpt = None) -> None:
    """Check the config files; print every problem as `file: key: problem`."""
    cfg = _load(config, None)
    err.print(f"config OK: {cfg.config_path}, {len(cfg.accounts)} account(s)")


@app.command()
def demo(
    orders: Annotated[int, typer.Option(help="Orders in the emulator's data set.")] = 2000,
    reviews: Annotated[int, typer.Option(help="Reviews in the emulator's data set.")] = 600,
    follow: Annotated[bool, typer.Option("--follow", help="Keep polling after the first cycle.")] = False,
    database_url: Annotated[str, typer.Option("--database-url")] = "sqlite:///data/demo.db",
    verbose: VerboseOpt = False,
) -> None:
    """Zero-config demo: the built-in emulators, a full sync into SQLite, a summary."""
    from sync.demo import demo_setups, run_demo
    from sync.logs import setup_logging

    setups = demo_setups(orders=orders, reviews=reviews)
    setup_logging([secret for s in setups.values() for secret in s.secrets], verbose=verbose)
    summary = asyncio.run(run_demo(orders=orders, reviews=reviews, follow=follow, database_url=database_url,
                                   console=err, setups=setups))
    raise typer.Exit(code=0 if summary.ok else 1)


@app.command()
def run(config: ConfigOpt = None, database_url: DatabaseOpt = None, verbose: VerboseOpt = False) -> None:
    """Run the daemon: poll every enabled stream on its schedule until SIGTERM/SIGINT."""
    from sync.app import App
    from sync.scheduler import Daemon

    cfg = _load(config, database_url, verbose)
    if not cfg.accounts:
        err.print(f"no accounts configured in {cfg.config_path}: add config/marketplaces/<platform>.toml")
        raise typer.Exit(code=2)
    store = _open_store(cfg)

    async def main() -> None:
        await Daemon(App(cfg, store=store)).run()

    asyncio.run(main())


@app.command()
def sync(
    once: Annotated[bool, typer.Option("--once", help="Run every enabled stream to completion, then exit.")] = False,
    account: Annotated[str | None, typer.Option(help="Only this account (name or platform/name).")] = None,
    stream: Annotated[str | None, typer.Option(help="Only this stream, e.g. orders or reviews.")] = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Sync now. Exits non-zero if any stream failed or had to defer."""
    from sync.app import App

    if not once:
        err.print("sync needs --once (use `loyalsync run` for the daemon)")
        raise typer.Exit(code=2)
    cfg = _load(config, database_url, verbose)
    store = _open_store(cfg)

    async def main() -> list:
        async with App(cfg, store=store) as application:
            jobs = application.jobs(account, stream)
            if not jobs:
                err.print("nothing to sync: no enabled account/stream matches")
                raise typer.Exit(code=2)
            return await application.sync_once(jobs)

    results = asyncio.run(main())
    for r in results:
        colour = "green" if r.ok else "red"
        # escape: platform text such as "[requestId …]" is not markup (it vanished, or crashed rich).
        detail = f" — {escape(r.error)}" if r.error else ""
        err.print(f"[{colour}]{r.state}[/] {r.key}: {r.records} records, {r.quarantined} quarantined{detail}",
                  soft_wrap=True)
    raise typer.Exit(code=0 if all(r.ok for r in results) else 1)


@app.command()
def status(config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Show each account x stream: cursor, last success, last error, records."""
    from sync.status import status_table

    cfg = _load(config, database_url, tokens=False)
    Console().print(status_table(_open_store(cfg)))


@app.command()
def export(
    kind: Annotated[str, typer.Argument(help="orders, reviews, ledger or actions")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl or csv")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default: stdout).")] = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Write stored orders, reviews, loyalty ledger entries or actions in the export schema."""
    from sync.export import export_rows, write

    if kind not in ("orders", "reviews", "ledger", "actions") or fmt not in ("jsonl", "csv"):
        err.print("usage: loyalsync export orders|reviews|ledger|actions --format jsonl|csv")
        raise typer.Exit(code=2)
    cfg = _load(config, database_url, tokens=False)
    store = _open_store(cfg)
    rows = export_rows(store, kind)
    if output is None:
        n = write(rows, kind, fmt, sys.stdout)
    else:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            with output.open("w", encoding="utf-8", newline="") as fh:
                n = write(rows, kind, fmt, fh)
        except OSError as exc:
            err.print(f"cannot write {output}: {exc.strerror or exc}", markup=False)
            raise typer.Exit(code=2) from None
    err.print(f"exported {n} {kind}")


# The loyalty commands (simulate, members, member) live with the program; registered top-level here.
from loyalty.actions_cli import actions_app  # noqa: E402
from loyalty.cli import loyalty_app  # noqa: E402 - after `_load`/`_open_store`, which it uses

app.add_typer(loyalty_app)
app.add_typer(actions_app)


def main() -> None:
    """Console-script entry point."""
    app()
