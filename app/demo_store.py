"""The demo's store: the demo writes only into a store it made itself, or into an empty one.

A store the demo made carries the `meta` row `demo`; such a SQLite file is replaced on the next
run so the figures are reproducible. Anything else with data in it is refused: a seller's store
once lost 1,200 orders to `demo --database-url`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Engine, make_url

from store.errors import store_name

__all__ = ["DEMO_MARK", "DemoRefused", "claim_demo_store", "mark_demo_store"]

DEMO_MARK = "demo"
_DATA_TABLES = ("orders", "reviews", "accounts", "loyalty_ledger", "actions")


class DemoRefused(Exception):
    """The demo was pointed at a store that holds data it did not write."""


def claim_demo_store(database_url: str) -> None:
    """Make `database_url` ready for the demo or raise `DemoRefused`; never deletes another's data."""
    from store.db import connect, in_memory

    parsed = make_url(database_url)
    if parsed.get_backend_name() == "sqlite":
        if in_memory(parsed) or not Path(parsed.database).exists():
            return
        path = Path(parsed.database)
    else:
        path = None
    engine = connect(database_url, connections=1)
    try:
        rows, made_by_demo = _contents(engine)
    finally:
        engine.dispose()
    if rows == 0 and not made_by_demo:
        return
    name = store_name(database_url)
    if path is None:
        raise DemoRefused(f"demo: store {name} is not empty ({rows} rows); the demo writes only into an "
                          "empty database: create one for it (createdb loyalsync_demo), or leave out "
                          "--database-url for its own SQLite file")
    if not made_by_demo:
        raise DemoRefused(f"demo: store {name} is not empty ({rows} rows) and was not made by the demo; "
                          "it is left untouched: leave out --database-url (the demo writes data/demo.db) "
                          "or give a path that does not exist yet")
    for suffix in ("", "-wal", "-shm"):  # the demo's own earlier run: start afresh
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def mark_demo_store(engine: Engine) -> None:
    """Mark a store as the demo's, so a later demo run may replace it."""
    from store.identity import META
    from store.upsert import dialect_insert

    with engine.begin() as conn:
        conn.execute(dialect_insert(conn, META).values(key=DEMO_MARK, value="1")
                     .on_conflict_do_nothing(index_elements=["key"]))


def _contents(engine: Engine) -> tuple[int, bool]:
    """(rows in the data tables, whether the demo marked the store)."""
    from store.identity import META

    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        rows = sum(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                   for t in _DATA_TABLES if t in tables)
        marked = "meta" in tables and conn.execute(
            select(META.c.value).where(META.c.key == DEMO_MARK)).first() is not None
    return rows, marked
