"""`loyalsync backup`, `restore` and `check-store`: the store's safety commands (registered top-level)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from app.cli_common import ConfigOpt, DatabaseOpt, err, load_or_exit
from app.cli_group import use_store

__all__ = ["store_app"]

store_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False)

ForceOpt = Annotated[bool, typer.Option("--force", metavar="", help="Overwrite an existing file (backup) or replace a "
                     "non-empty store (restore).")]


def _say(line: str, code: int | None = None) -> None:
    err.print(line, markup=False, highlight=False, soft_wrap=True)
    if code is not None:
        raise typer.Exit(code=code)


def _store(config: Path | None, database_url: str | None) -> tuple[str, Path | None]:
    """The configured store's URL, named for store errors; its file when SQLite."""
    from store.db import in_memory

    url = load_or_exit(config, database_url, tokens=False).settings.database.url
    use_store(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url, None
    if in_memory(parsed):
        _say("an in-memory store has nothing to back up; point --database-url at the store's file", 2)
    return url, Path(parsed.database).absolute()


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {t}" for t, n in counts.items())


def _server_major(url: str) -> int:
    from sqlalchemy import text

    from store.db import connect

    engine = connect(url, connections=1)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SHOW server_version_num")).scalar()) // 10000
    finally:
        engine.dispose()


def _postgresql(url: str, path: Path, *, restore: bool, force: bool) -> None:
    """Print the command (stdout, runnable as is) and the notes (stderr)."""
    from store.backup import pg_commands
    from store.errors import mask_url

    if restore:
        if not path.is_file():
            _say(f"no backup at {path.absolute()}; check the path", 2)
        rows = _pg_rows(url)
        if rows and not force:
            _say(f"store {mask_url(url)} holds {rows} rows; pass --force to get a pg_restore that drops and "
                 "replaces its tables (back it up first)", 2)
    elif path.exists() and not force:
        _say(f"{path.absolute()} exists; choose another name or pass --force to overwrite it", 2)
    plan = pg_commands(url, path, restore=restore, force=force, server_major=_server_major(url))
    for note in plan.notes:
        _say(note)
    for command in plan.commands:
        sys.stdout.write(command + "\n")
    if plan.version_problem:
        _say(plan.version_problem, 2)


def _pg_rows(url: str) -> int:
    from app.demo_store import _contents
    from store.db import connect

    engine = connect(url, connections=1)
    try:
        return _contents(engine)[0]
    finally:
        engine.dispose()


@store_app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write (SQLite: a copy of the store; "
                                         "PostgreSQL: where pg_dump writes).")],
    force: ForceOpt = False,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Back up the store: SQLite copied online and verified; PostgreSQL: the pg_dump command to run."""
    from store.backup import BackupRefused, sqlite_backup
    from store.errors import StoreMissing

    url, store = _store(config, database_url)
    if store is None:
        _postgresql(url, path, restore=False, force=force)
        return
    if not store.exists():
        raise StoreMissing(store)
    try:
        counts = sqlite_backup(store, path.absolute(), force=force)
    except BackupRefused as exc:
        _say(str(exc), 2)
    _say(f"backup of {store} written to {path.absolute()} and verified (integrity_check ok; {_counts(counts)})")


@store_app.command()
def restore(
    path: Annotated[Path, typer.Argument(help="A backup made by `loyalsync backup` (PostgreSQL: by pg_dump).")],
    force: ForceOpt = False,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Restore the store from a backup; stop the daemon first. The replaced file is kept as <name>.before-restore."""
    from store.backup import BackupRefused, sqlite_restore

    url, store = _store(config, database_url)
    if store is None:
        _postgresql(url, path, restore=True, force=force)
        return
    try:
        counts, kept = sqlite_restore(path.absolute(), store, force=force)
    except BackupRefused as exc:
        _say(str(exc), 2)
    where = f"; the previous store is kept as {kept}" if kept else ""
    _say(f"store {store} restored from {path.absolute()} and verified ({_counts(counts)}){where}")


@store_app.command("check-store")
def check_store(config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Check the store without changing it: SQLite integrity_check, tables and schema revision; exit 0 or 2."""
    from store.check import check_postgresql, check_sqlite
    from store.errors import StoreMissing, store_name

    url, store = _store(config, database_url)
    if store is not None and not store.exists():
        raise StoreMissing(store)
    result = check_sqlite(store, str(store)) if store is not None else check_postgresql(url, store_name(url))
    _say(result.line, 0 if result.ok else 2)
