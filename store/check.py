"""`check-store`: is the store whole, and at the schema revision this loyalsync writes?

It only reads: nothing is migrated or created, so a check of a damaged or mistyped store changes
nothing.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from store.db import MIGRATIONS_DIR, connect

__all__ = ["StoreCheck", "check_postgresql", "check_sqlite", "head_revision"]


@dataclass(frozen=True)
class StoreCheck:
    """The outcome: ok, and the one line that says so or says what to do."""

    ok: bool
    line: str


def head_revision() -> str:
    """The newest migration this loyalsync ships."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def _verdict(name: str, revision: str | None, detail: str) -> StoreCheck:
    head = head_revision()
    if revision is None:
        return StoreCheck(False, f"store {name}: not a loyalsync store (no schema revision); check the path")
    if revision != head:
        return StoreCheck(False, f"store {name}: {detail}, schema revision {revision} but this loyalsync "
                                 f"writes {head}; back it up, then any `loyalsync sync --once` or "
                                 "`loyalsync run` migrates it (or upgrade loyalsync if it is newer)")
    return StoreCheck(True, f"store {name}: ok ({detail}, schema revision {revision} = head)")


def check_sqlite(path: Path, name: str) -> StoreCheck:
    """PRAGMA integrity_check and the schema revision of a SQLite file (which must exist)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            return StoreCheck(False, f"store {name}: the file is damaged (integrity_check: {problems[0]}, "
                                     f"{len(problems)} problem(s)); restore the last backup with "
                                     "`loyalsync restore BACKUP`")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        revision = (conn.execute("SELECT version_num FROM alembic_version").fetchone() or [None])[0] \
            if "alembic_version" in tables else None
    return _verdict(name, revision, "integrity_check ok")


def check_postgresql(url: str, name: str) -> StoreCheck:
    """The catalog holds every table this loyalsync expects, and the schema revision."""
    from sqlmodel import SQLModel

    import store.crm_tables  # noqa: F401 - registers the webhook outbox in SQLModel.metadata
    import store.loyalty_tables  # noqa: F401 - registers the loyalty tables in SQLModel.metadata
    import store.tables  # noqa: F401

    engine = connect(url, connections=1)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
                if "alembic_version" in tables else None
    finally:
        engine.dispose()
    missing = sorted(set(SQLModel.metadata.tables) - tables)
    if revision is not None and missing:
        return StoreCheck(False, f"store {name}: tables missing from the catalog: {', '.join(missing)}; "
                                 "restore the last backup (pg_restore)")
    return _verdict(name, revision, f"{len(tables)} tables in the catalog")
