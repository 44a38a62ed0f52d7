"""Engines and migrations. SQLite is the embedded default; PostgreSQL when one machine is not enough."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url

__all__ = ["DEFAULT_DATABASE_URL", "SQLITE_PRAGMAS", "connect", "in_memory", "migrate"]

DEFAULT_DATABASE_URL = "sqlite:///data/loyalsync.db"
MIGRATION_LOCK = 0x6C6F79616C  # any constant; "loyal"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def in_memory(url: str | URL) -> bool:
    """Whether `url` is an in-memory SQLite database (one connection per thread, no second process)."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def connect(url: str = DEFAULT_DATABASE_URL, *, connections: int = 5) -> Engine:
    """An engine for `url`; creates the SQLite file's folder and tunes SQLite for a daemon.

    `connections` is how many the caller uses at once (the daemon: its job slots, heartbeat,
    executor): that many stay open between uses. A pool smaller than the daemon's concurrency
    closes a connection after nearly every write and opens a new one for the next, and on
    PostgreSQL each new connection is a new server process (bench/replicas.py counted ~60 in a
    20 s run); on SQLite it is a cold 64 MiB page cache.
    """
    parsed = make_url(url)
    pool = {"pool_size": connections, "max_overflow": connections}
    if parsed.get_backend_name() == "sqlite":
        in_file = not in_memory(parsed)
        if in_file:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # An in-memory database lives in one connection per thread (SingletonThreadPool): no sizes.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               **(pool if in_file else {}))
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True, **pool)


# WAL lets `status`/`export` read while the daemon writes; NORMAL is durable at each WAL commit
# on application crash (kill -9), which is the failure the sync invariants are about.
# Ingest updates index pages at random keys (order ids): a 64 MiB page cache keeps them in memory
# between pages, and checkpointing every ~40 MiB of WAL instead of every 4 MiB saves two fsyncs per
# committed page (bench/ingest.py). Durability is unchanged: each commit is in the WAL.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    "PRAGMA cache_size=-65536",
    "PRAGMA wal_autocheckpoint=10000",
)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    for pragma in SQLITE_PRAGMAS:
        cur.execute(pragma)
    cur.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; safe to call on every start."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait here and then find it done.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
