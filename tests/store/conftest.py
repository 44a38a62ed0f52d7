"""Store-test fixtures: a bare database of either backend, and migrations run step by step."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config

from store import connect
from store.db import MIGRATIONS_DIR


@pytest.fixture(params=["sqlite", "postgres"])
def bare_engine(request, tmp_path):
    """An engine on an empty database of either backend, for migrations run step by step."""
    url = f"sqlite:///{tmp_path / 'bare.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = connect(url)
    yield engine
    engine.dispose()


def migrate_to(engine, revision: str, *, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
