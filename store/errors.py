"""What a store error means to the operator: one line naming the store and the next step.

The CLI's entry point hands every exception a command raises to `describe_store_error`; a store
error becomes that line (exit 2), anything else keeps its traceback. Messages never hold a password:
the store is named by its file (SQLite) or its URL with the password masked.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from pathlib import Path

__all__ = ["StoreMissing", "describe_store_error", "mask_url", "store_name"]

_PASSWORD = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")
_RESTORE = "run `loyalsync check-store`, then restore the last backup with `loyalsync restore BACKUP`"
_DEBUG = "run again with --debug for the traceback"


class StoreMissing(Exception):
    """A command that only reads was pointed at a SQLite file that does not exist."""

    def __init__(self, path: Path):
        super().__init__(f"no store at {path}")
        self.path = path


def mask_url(url: str) -> str:
    """`url` with any password replaced by ***; works on URLs SQLAlchemy cannot parse too."""
    return _PASSWORD.sub(r"\1:***@", url)


def _sqlite_path(url: str) -> Path | None:
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            database = url[len(prefix):].partition("?")[0]
            return None if database in ("", ":memory:") else Path(database).absolute()
    return None


def store_name(url: str) -> str:
    """How messages name the store: the SQLite file's absolute path, else the masked URL."""
    path = _sqlite_path(url)
    return str(path) if path is not None else mask_url(url)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, the driver error SQLAlchemy wraps, and their causes."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]


def _first_line(exc: BaseException, url: str) -> str:
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    text = lines[0]
    password = re.search(r"://[^:/@]*:([^@/]*)@", url)
    return text.replace(password.group(1), "***") if password and password.group(1) else text


# (fragment of the driver's message, lower case) -> (problem, next step); first match wins.
_BY_MESSAGE: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("file is not a database",), "not a loyalsync store (the file is not a SQLite database)",
     "check the path; if it is the store, it is damaged: " + _RESTORE),
    (("database disk image is malformed", "malformed database schema"), "the file is damaged", _RESTORE),
    (("database or disk is full", "no space left on device", "could not extend file", "disk quota"),
     "the disk is full", "free space on the disk that holds it (df -h), then run the command again"),
    (("readonly database", "read-only file system", "permission denied"), "the store is read-only",
     "give the user running loyalsync write access to the file and its folder"),
    (("database is locked",), "locked by another process for over 30 s",
     "stop the other writer (another `loyalsync run` or sync?) and run the command again"),
    (("unable to open database file",), "cannot open the file",
     "check the path, and that its folder exists and is writable"),
    (("password authentication failed", "no password supplied"), "the server refused the user",
     "check the user in the URL and the password (PGPASSWORD or ~/.pgpass)"),
    (("does not exist",), "", "create it (createdb) or fix the URL"),
    (("connection refused", "could not translate host", "failed to resolve host", "timeout expired",
      "could not connect", "connection failed", "server closed the connection", "no route to host"),
     "cannot reach the server", "check that PostgreSQL is running and the URL's host and port"),
    (("can't locate revision",), "the store was migrated by a newer loyalsync",
     "upgrade loyalsync, or restore a backup made by this version"),
)
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def describe_store_error(exc: BaseException, url: str) -> str | None:
    """One line for a store error: `store NAME: problem: detail; next step`. None: not a store error."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    name = store_name(url)
    chain = list(_chain(exc))
    for current in chain:
        if isinstance(current, StoreMissing):
            return (f"store {name}: no store at {current.path}; check the path (--database-url or "
                    "[database] url), or sync first with `loyalsync sync --once`")
    driver = [c for c in chain if _is_driver_error(c)]
    store_error = driver or [c for c in chain if isinstance(c, SQLAlchemyError | _alembic_errors())]
    for current in store_error:
        message = str(current).lower()
        for fragments, problem, step in _BY_MESSAGE:
            if any(f in message for f in fragments):
                detail = _first_line(current, url)
                return f"store {name}: {problem + ': ' if problem else ''}{detail}; {step}"
    if store_error:
        return f"store {name}: {_first_line(store_error[0], url)}; {_DEBUG}"
    for current in chain:
        if isinstance(current, OSError) and _is_store_os_error(current, url):
            what = "the disk is full" if current.errno in _DISK_FULL else "cannot use the file"
            step = ("free space on the disk that holds it (df -h), then run the command again"
                    if current.errno in _DISK_FULL else "check the path, and that its folder is writable")
            where = f" ({current.filename})" if current.filename else ""
            return f"store {name}: {what}: {current.strerror or current}{where}; {step}"
        if isinstance(current, ArgumentError | ValueError) and not _parses(url):
            return (f"store {name}: not a valid database URL ({_first_line(current, url)}); fix "
                    "--database-url or [database] url, e.g. postgresql://user@host:5432/db")
    return None


def _is_driver_error(exc: BaseException) -> bool:
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        return True
    module = type(exc).__module__ or ""
    return module.startswith("psycopg")


def _alembic_errors() -> type[Exception]:
    from alembic.util.exc import CommandError

    return CommandError


def _is_store_os_error(exc: OSError, url: str) -> bool:
    """Disk full or read-only anywhere, or any failure on the store's own file or folders."""
    if exc.errno in _DISK_FULL or exc.errno == errno.EROFS:
        return True
    path = _sqlite_path(url)
    if path is None or not exc.filename:
        return False
    failed = Path(str(exc.filename)).absolute()
    return failed == path or failed in path.parents or path in failed.parents or \
        str(failed).startswith(str(path))  # the -wal/-shm files beside it


def _parses(url: str) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ValueError, ArgumentError):
        return False
    return True
