"""Backups of the store. SQLite: a consistent online copy, verified by reading it back.
PostgreSQL: the exact pg_dump/pg_restore commands for the configured database.

The store holds the points liability sellers owe their buyers; a backup that was never read back
is a hope, so every copy here is checked (integrity_check and the row counts of the main tables).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from store.errors import mask_url

__all__ = ["BackupRefused", "PgCommands", "data_rows", "pg_commands", "sqlite_backup", "sqlite_restore"]

MAIN_TABLES = ("orders", "order_lines", "reviews", "stream_cursors", "loyalty_ledger", "loyalty_members",
               "actions")


class BackupRefused(Exception):
    """A backup or restore that would lose data, or a copy that did not read back the same."""


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows of each main table the database has."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in MAIN_TABLES if t in present}


def data_rows(path: Path) -> int:
    """Rows in the main tables of a SQLite store (0: empty or absent)."""
    if not path.exists():
        return 0
    with closing(sqlite3.connect(path)) as conn:
        return sum(table_counts(conn).values())


def _verified(path: Path, expected: dict[str, int] | None) -> dict[str, int]:
    """Read `path` back: integrity_check ok, a loyalsync store, counts as expected."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupRefused(f"{path} is damaged (integrity_check: {check})")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "alembic_version" not in tables:
            raise BackupRefused(f"{path} is not a loyalsync store (no alembic_version table)")
        counts = table_counts(conn)
    if expected is not None and counts != expected:
        raise BackupRefused(f"{path} does not read back as written: {counts} instead of {expected}")
    return counts


def _copy(src: Path, dest: Path) -> dict[str, int]:
    """Copy with SQLite's online backup inside one read transaction; verify; move into place."""
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(f"file:{src}?mode=ro", uri=True)) as source, \
            closing(sqlite3.connect(partial)) as target:
        source.execute("BEGIN")  # the counts and the copy see the same snapshot while a daemon writes
        expected = table_counts(source)
        source.backup(target)
        source.rollback()
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    try:
        counts = _verified(partial, expected)
    except BackupRefused:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, dest)
    return counts


def sqlite_backup(store: Path, dest: Path, *, force: bool = False) -> dict[str, int]:
    """Copy the store at `store` to `dest`; the row counts of the verified copy."""
    if dest.exists() and not force:
        raise BackupRefused(f"{dest} exists; choose another name or pass --force to overwrite it")
    return _copy(store, dest)


def sqlite_restore(backup: Path, store: Path, *, force: bool = False) -> tuple[dict[str, int], Path | None]:
    """Replace the store with `backup`; (row counts restored, where the previous store was kept)."""
    if not backup.is_file():
        raise BackupRefused(f"no backup at {backup}; check the path")
    try:
        _verified(backup, None)
    except sqlite3.DatabaseError as exc:  # the backup, not the store, is what is wrong
        raise BackupRefused(f"{backup} is not a loyalsync backup ({exc}); check the path") from None
    rows = data_rows(store)
    if rows and not force:
        raise BackupRefused(f"store {store} holds {rows} rows; pass --force to replace it (it is kept as "
                            f"{store.name}.before-restore)")
    kept = None
    if store.exists():
        with closing(sqlite3.connect(store)) as conn:  # fold the WAL in, so the kept file is whole
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        kept = store.with_name(store.name + ".before-restore")
        os.replace(store, kept)
        for suffix in ("-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
    return _copy(backup, store), kept


@dataclass(frozen=True)
class PgCommands:
    """What to run for a PostgreSQL store, and what to say about it."""

    commands: list[str]
    notes: list[str]
    version_problem: str | None = None


def pg_commands(url: str, path: Path, *, restore: bool, force: bool, server_major: int | None) -> PgCommands:
    """pg_dump (backup) or pg_restore (restore) for `url`, the password left out of the command."""
    parsed = make_url(url)
    target = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    file = str(path.absolute())
    if restore:
        cmd = ["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction",
               *(["--clean", "--if-exists"] if force else []), "--dbname", target, file]
    else:
        cmd = ["pg_dump", "--format=custom", "--no-owner", "--file", file, target]
    notes = [f"PostgreSQL store {mask_url(url)}: loyalsync does not run {cmd[0]} itself; run:"]
    if parsed.password:
        notes.append("the password is not shown: export PGPASSWORD (or use ~/.pgpass) before running it")
    tool = shutil.which(cmd[0])
    local = _tool_major(tool) if tool else None
    problem = None
    if tool is None:
        notes.append(f"{cmd[0]} is not installed here: install the PostgreSQL client of the server's version")
    elif server_major is not None and local is not None and local != server_major:
        problem = (f"{cmd[0]} here is version {local}, the server is {server_major}: install "
                   f"postgresql-client-{server_major} and run its {cmd[0]}")
    return PgCommands([shlex.join(cmd)], notes, problem)


def _tool_major(tool: str) -> int | None:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=10).stdout
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(found.group(1)) if found else None
