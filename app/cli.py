"""The `loyalsync` command. Each command parses its input, calls one function and prints."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from app.cli_common import ConfigOpt, DatabaseOpt, VerboseOpt, err, load_or_exit, open_store_or_exit
from app.cli_group import StoreErrorGroup, set_debug, use_store
from app.config import format_problems, runtime_problems
from app.output import JsonOpt
from connectors.errors import ConfigError

if TYPE_CHECKING:
    pass

__all__ = ["app", "main"]

app = typer.Typer(
    name="loyalsync",
    help="Sync marketplace orders and reviews into one store; run a platform-safe loyalty program.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold tokens
    add_completion=False,
    cls=StoreErrorGroup,  # a store error in any command: one line naming the store, exit 2
)
@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", envvar="LOYALSYNC_DEBUG", metavar="", help="Show the traceback of a "
                     "store error instead of its one-line explanation.")] = False,
) -> None:
    set_debug(debug)


@app.command("check-config")
def check_config_cmd(config: ConfigOpt = None) -> None:
    """Check the config files; print every problem as `file: key: problem`."""
    cfg = load_or_exit(config, None)
    problems = runtime_problems(cfg)
    if problems:
        err.print(format_problems(problems), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2)
    err.print(f"config OK: {cfg.config_path}, {len(cfg.accounts)} account(s)")


@app.command("config-schema")
def config_schema_cmd(
    file: Annotated[str, typer.Argument(help="loyalsync (the global file) or a marketplace, named as its file "
                                             "under config/marketplaces/ is.")] = "loyalsync",
    output_dir: Annotated[Path | None, typer.Option("--output-dir", "-o", help="Write every schema as "
                          "<name>.schema.json into this directory instead.")] = None,
) -> None:
    """Print the JSON Schema of a config file, for editors that validate TOML (e.g. Taplo)."""
    import json

    from app.config_schema import schema_files
    from connectors.registry import available_connectors

    files = schema_files(available_connectors())
    if output_dir is None:
        schema = files.get(f"{file}.schema.json")
        if schema is None:
            names = ", ".join(n.removesuffix(".schema.json") for n in files)
            err.print(f"no config file called {file!r}; choose one of: {names}", markup=False, soft_wrap=True)
            raise typer.Exit(code=2)
        sys.stdout.write(json.dumps(schema, ensure_ascii=False, indent=2) + "\n")
        return
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        for name, schema in files.items():
            (output_dir / name).write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        err.print(f"cannot write to {output_dir}: {exc.strerror or exc}", markup=False)
        raise typer.Exit(code=2) from None
    err.print(f"wrote {len(files)} schemas to {output_dir}: {', '.join(files)}", markup=False, soft_wrap=True)


@app.command("new-connector")
def new_connector_cmd(
    name: Annotated[str, typer.Argument(help="The platform's connector name, e.g. acme (lowercase, digits, _).")],
    into: Annotated[Path, typer.Option("--into", help="A loyalsync checkout (the package goes to connectors/NAME) "
                                       "or a folder for a package of its own.")] = Path("."),
    package: Annotated[str | None, typer.Option(
        "--package", help="The package's module path (default: connectors.NAME in a checkout, "
                          "loyalsync_NAME elsewhere).")] = None,
) -> None:
    """Write a connector package, its emulator, schemas, conformance test and config example."""
    from app.new_connector import ScaffoldError, plan, write
    from connectors.registry import available_connectors

    try:
        new = plan(name, into.absolute(), module=package, known=set(available_connectors()))
    except ScaffoldError as exc:
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    written = write(new)
    for path in written:
        err.print(f"wrote {path.relative_to(new.root)}", markup=False, highlight=False)
    tests = new.tests_dir.relative_to(new.root)
    err.print(f"next: ./dev test {tests} (the kit against the emulator); then read docs/connectors.md"
              if new.in_checkout else
              f"next: pip install -e {new.root}[dev], then pytest {tests}; docs/connectors.md in loyalsync",
              markup=False, highlight=False, soft_wrap=True)


@app.command()
def health(config: ConfigOpt = None) -> None:
    """Ask the running daemon's /healthz (the container HEALTHCHECK); exit 0 when healthy."""
    from app.healthcheck import probe

    cfg = load_or_exit(config, None, tokens=False)
    service = cfg.settings.service
    if not service.enabled:
        err.print("the service endpoint is off ([service] enabled = false): nothing to ask")
        raise typer.Exit(code=2)
    ok, line = probe(service.host, service.port)
    err.print(line, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=0 if ok else 1)


@app.command()
def demo(
    orders: Annotated[int, typer.Option(help="Orders in the emulator's data set.")] = 2000,
    reviews: Annotated[int, typer.Option(help="Reviews in the emulator's data set.")] = 600,
    follow: Annotated[bool, typer.Option("--follow", metavar="", help="Keep polling after the first cycle.")] = False,
    database_url: Annotated[str, typer.Option("--database-url", help="Where the demo writes its store "
                            "(relative to the current folder). It refuses a store that holds data it did "
                            "not write; its own earlier demo file is replaced.")] = "sqlite:///data/demo.db",
    verbose: VerboseOpt = False,
) -> None:
    """Zero-config demo: the built-in emulators, a full sync into SQLite, a summary."""
    from app.demo import demo_setups, run_demo
    from app.demo_store import DemoRefused
    from app.logs import setup_logging

    use_store(database_url)
    setups = demo_setups(orders=orders, reviews=reviews)
    setup_logging([secret for s in setups.values() for secret in s.secrets], verbose=verbose)
    try:
        summary = asyncio.run(run_demo(orders=orders, reviews=reviews, follow=follow, database_url=database_url,
                                       console=err, setups=setups))
    except DemoRefused as exc:
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    raise typer.Exit(code=0 if summary.ok else 1)


@app.command()
def run(config: ConfigOpt = None, database_url: DatabaseOpt = None, verbose: VerboseOpt = False) -> None:
    """Run the daemon: poll every enabled stream on its schedule until SIGTERM/SIGINT.

    Serves GET /healthz and GET /metrics on [service] host:port (127.0.0.1:8787) meanwhile.
    """
    from app.service import CannotListen, build_daemon

    cfg = load_or_exit(config, database_url, verbose)
    if not cfg.accounts:
        err.print(f"no accounts configured in {cfg.config_path}: add config/marketplaces/<platform>.toml")
        raise typer.Exit(code=2)
    store = open_store_or_exit(cfg)

    async def main() -> None:
        daemon, service = build_daemon(cfg, store)
        await daemon.run(service)

    try:
        asyncio.run(main())
    except CannotListen as exc:
        err.print(f"{exc}; change [service] port in {cfg.config_path} or set LOYALSYNC_SERVICE_PORT",
                  markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None


@app.command()
def sync(
    once: Annotated[bool, typer.Option("--once", metavar="",
                                      help="Run every enabled stream to completion, then exit.")] = False,
    account: Annotated[str | None, typer.Option(help="Only this account (name or platform/name).")] = None,
    stream: Annotated[str | None, typer.Option(help="Only this stream, e.g. orders or reviews.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="",
                                        help="No progress bars, only the result lines.")] = False,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Sync now: every enabled stream (or the chosen ones) to completion, then exit.

    Exit codes:

    0  every stream finished, or its platform withholds it from this account
       (unavailable: the reason is printed; e.g. Ozon reviews need a subscription)

    1  a stream failed (bad token, platform error), or stopped early to respect
       a rate limit (deferred: the next run resumes where it stopped)

    2  the config or the command line is wrong
    """
    from app.wiring import App

    if not once:
        err.print("sync needs --once (use `loyalsync run` for the daemon)")
        raise typer.Exit(code=2)
    cfg = load_or_exit(config, database_url, verbose)
    store = open_store_or_exit(cfg)

    async def main() -> list:
        async with App(cfg, store=store) as application:
            jobs = application.jobs(account, stream)
            if not jobs:
                err.print("nothing to sync: no enabled account/stream matches")
                raise typer.Exit(code=2)
            if quiet:
                return await application.sync_once(jobs)
            from app.progress import sync_with_progress

            return await sync_with_progress(application, jobs, err)

    results = asyncio.run(main())
    for r in results:
        colour = {"ok": "green", "unavailable": "magenta", "deferred": "yellow"}.get(r.state, "red")
        # escape: platform text such as "[requestId …]" is not markup (it vanished, or crashed rich).
        detail = f" — {escape(r.error)}" if r.error else ""
        err.print(f"[{colour}]{r.state}[/] {r.key}: {r.records} records, {r.quarantined} quarantined{detail}",
                  soft_wrap=True)
    raise typer.Exit(code=sync_exit_code(results))


def sync_exit_code(results: list) -> int:
    """0 when every stream is done or withheld by its platform (`unavailable`), else 1."""
    return 0 if all(r.state in ("ok", "unavailable") for r in results) else 1


@app.command()
def status(config: ConfigOpt = None, database_url: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """Show each account x stream: cursor, last success, last error, records read and stored."""
    from app.output import print_json, stdout_console
    from app.status import status_rows, status_table

    cfg = load_or_exit(config, database_url, tokens=False)
    store = open_store_or_exit(cfg, read_only=True)
    if as_json:
        print_json({"streams": status_rows(store)})
        return
    stdout_console().print(status_table(store))


@app.command()
def export(
    kind: Annotated[str, typer.Argument(help="orders, reviews, ledger or actions")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl or csv")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default: stdout).")] = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Write stored orders, reviews, loyalty ledger entries or actions in the export schema."""
    from app.export import export_rows, write

    if kind not in ("orders", "reviews", "ledger", "actions") or fmt not in ("jsonl", "csv"):
        err.print("usage: loyalsync export orders|reviews|ledger|actions --format jsonl|csv")
        raise typer.Exit(code=2)
    cfg = load_or_exit(config, database_url, tokens=False)
    store = open_store_or_exit(cfg, read_only=True)
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


@app.command()
def report(
    html: Annotated[Path, typer.Option("--html", help="The HTML file to write (self-contained, no network).")],
    date_from: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (UTC); "
                                                  "default: 90 days up to --to.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (UTC), included; "
                                                "default: today.")] = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Write one HTML report with charts: orders, repeat buyers, reviews, points, actions, sync health."""
    import re
    from datetime import UTC, date, datetime, timedelta

    from app.report import Period, write_report

    usage = "usage: loyalsync report --html PATH [--from YYYY-MM-DD] [--to YYYY-MM-DD]"

    def day(option: str, value: str) -> date:
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                return date.fromisoformat(value)
        except ValueError:
            pass
        err.print(f"{option} {value!r} is not a date (YYYY-MM-DD); {usage}", markup=False, soft_wrap=True)
        raise typer.Exit(code=2)

    now = datetime.now(UTC)
    end = day("--to", date_to) if date_to is not None else now.date()
    start = day("--from", date_from) if date_from is not None else end - timedelta(days=89)
    if start > end:
        err.print(f"--from {start} is after --to {end}; {usage}", markup=False, soft_wrap=True)
        raise typer.Exit(code=2)
    cfg = load_or_exit(config, database_url, tokens=False)
    store = open_store_or_exit(cfg, read_only=True)
    try:
        html.parent.mkdir(parents=True, exist_ok=True)
        write_report(store, html, loyalty=cfg.settings.loyalty, actions=cfg.settings.actions,
                     period=Period(start, end), now=now)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(html) else ""
        err.print(f"cannot write {html}: {exc.strerror or exc}{where}", markup=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    err.print(f"report written to {html} ({start} – {end})", markup=False, soft_wrap=True)


# The loyalty commands (simulate, members, member) live with the program; registered top-level here.
from app.actions_cli import actions_app  # noqa: E402
from app.console_cli import console_app  # noqa: E402
from app.crm_cli import crm_app  # noqa: E402
from app.loyalty_cli import loyalty_app  # noqa: E402 - after `_load`/`_open_store`, which it uses
from app.store_cli import store_app  # noqa: E402
from app.webhooks_cli import webhooks_app  # noqa: E402

app.add_typer(loyalty_app)
app.add_typer(actions_app)
app.add_typer(store_app)
app.add_typer(webhooks_app)
app.add_typer(crm_app)
app.add_typer(console_app)


def main() -> None:
    """Console-script entry point.

    Exit codes: 0 done, 1 a stream or check failed, 2 the config (or the command line) is wrong.
    A config problem found after `_load` (e.g. while the daemon builds its connectors) still
    exits 2 with `file: key: problem` lines, never a traceback.
    """
    try:
        app()
    except ConfigError as exc:
        err.print(format_problems(exc.problems), markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
