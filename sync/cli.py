"""The `loyalsync` command. Each command parses its input, calls one function and prints."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from connectors.errors import ConfigError
from sync.config import AppConfig, format_problems, load_config

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


def _load(config: Path | None, database_url: str | None, verbose: bool = False) -> AppConfig:
    """Load the config or exit 2 with every problem, no traceback."""
    from sync.logs import setup_logging

    try:
        cfg = load_config(config, database_url=database_url)
    except ConfigError as exc:
        err.print(format_problems(exc.problems), markup=False, highlight=False)
        raise typer.Exit(code=2) from None
    setup_logging([a.settings.token.get_secret_value() for a in cfg.accounts], verbose=verbose)
    return cfg


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
    from sync.demo import DEMO_TOKEN, run_demo
    from sync.logs import setup_logging

    setup_logging([DEMO_TOKEN], verbose=verbose)
    summary = asyncio.run(run_demo(orders=orders, reviews=reviews, follow=follow,
                                   database_url=database_url, console=err))
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

    async def main() -> None:
        await Daemon(App(cfg)).run()

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

    async def main() -> list:
        async with App(cfg) as application:
            jobs = application.jobs(account, stream)
            if not jobs:
                err.print("nothing to sync: no enabled account/stream matches")
                raise typer.Exit(code=2)
            return await application.sync_once(jobs)

    results = asyncio.run(main())
    for r in results:
        colour = "green" if r.ok else "red"
        detail = f" — {r.error}" if r.error else ""
        err.print(f"[{colour}]{r.state}[/] {r.key}: {r.records} records, {r.quarantined} quarantined{detail}")
    raise typer.Exit(code=0 if all(r.ok for r in results) else 1)


@app.command()
def status(config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Show each account x stream: cursor, last success, last error, records."""
    from sync.app import open_store
    from sync.status import status_table

    cfg = _load(config, database_url)
    Console().print(status_table(open_store(cfg.settings.database.sqlalchemy_url)))


@app.command()
def export(
    kind: Annotated[str, typer.Argument(help="orders or reviews")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl or csv")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default: stdout).")] = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Write stored orders or reviews in the export schema."""
    from sync.app import open_store
    from sync.export import export_rows, write

    if kind not in ("orders", "reviews") or fmt not in ("jsonl", "csv"):
        err.print("usage: loyalsync export orders|reviews --format jsonl|csv")
        raise typer.Exit(code=2)
    cfg = _load(config, database_url)
    store = open_store(cfg.settings.database.sqlalchemy_url)
    rows = export_rows(store, kind)
    if output is None:
        n = write(rows, kind, fmt, sys.stdout)
    else:
        with output.open("w", encoding="utf-8", newline="") as fh:
            n = write(rows, kind, fmt, fh)
    err.print(f"exported {n} {kind}")


def main() -> None:
    """Console-script entry point."""
    app()
