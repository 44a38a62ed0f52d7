"""The store as an operator meets it: damaged, full, mistyped or missing stores are one line naming
the store and the next step (exit 2, no traceback); the demo never touches a store it did not
create; backup, restore and check-store; relative paths resolve where the user typed the command."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from app.cli import app
from connectors.testing.serving import served
from connectors.wildberries.emulator import EmulatorConfig, create_app

REPO = Path(__file__).resolve().parents[2]
TOKEN_ENV = "LOYALSYNC_TEST_WB_TOKEN"
SENTINEL = "SENTINEL-TOKEN-3b9c41d7e2a8"
READ_ONLY = (["status"], ["export", "orders"], ["simulate"], ["members"], ["member", "x"], ["actions"],
             ["tasks"], ["report", "--html", "r.html"])
_LOGGERS = ("", "loyalsync", "httpx", "httpcore", "alembic", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty working folder, no config from the environment, logging restored afterwards."""
    monkeypatch.chdir(tmp_path)
    for var in ("LOYALSYNC_CONFIG", "LOYALSYNC_DATABASE_URL", "LOYALSYNC_MODE", "LOYALSYNC_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    saved = [(lg, lg.level, list(lg.handlers), lg.propagate) for lg in map(logging.getLogger, _LOGGERS)]
    yield
    for lg, level, handlers, propagate in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate


def invoke(*args: object) -> Result:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def one_line(result: Result) -> str:
    """The single line a store error prints; exit 2."""
    assert result.exit_code == 2, (result.output, result.exc_info)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo store, made once; tests copy it."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path.parent)
        result = CliRunner().invoke(app, ["demo", "--database-url", f"sqlite:///{path}", "--orders", "60",
                                          "--reviews", "20"])
    assert result.exit_code == 0, (result.output, result.exc_info)
    with sqlite3.connect(path) as conn:  # everything into the one file the tests copy
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def store_copy(demo_file: Path, tmp_path: Path) -> Path:
    path = tmp_path / "real" / "store.db"
    path.parent.mkdir()
    shutil.copy(demo_file, path)
    return path


def counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("orders", "reviews", "loyalty_ledger", "actions")}


def exported(url: str) -> list[str]:
    rows = []
    for kind in ("orders", "reviews", "ledger", "actions"):
        result = invoke("export", kind, "--database-url", url)
        assert result.exit_code == 0, result.output
        rows += [f"{kind}:{line}" for line in result.stdout.splitlines()]
    return rows


# -- one storage-error path ---------------------------------------------------------------------


@pytest.mark.parametrize("command", [["status"], ["export", "orders"], ["check-store"]])
@pytest.mark.parametrize("damage", ["not-a-database", "malformed"])
def test_a_damaged_store_is_one_line_naming_the_file(store_copy: Path, command: list[str], damage: str) -> None:
    data = bytearray(store_copy.read_bytes())
    if damage == "not-a-database":
        data[:100] = b"x" * 100  # the header
    else:
        data[4096:] = b"\xa5" * (len(data) - 4096)  # every page after the first (the schema)
    store_copy.write_bytes(bytes(data))
    line = one_line(invoke(*command, "--database-url", f"sqlite:///{store_copy}"))
    assert str(store_copy) in line and ("damaged" in line or "not a loyalsync store" in line), line
    assert "restore" in line, line


def test_sync_into_a_damaged_store_is_one_line(store_copy: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store_copy.write_bytes(b"not a database at all" * 300)
    monkeypatch.setenv(TOKEN_ENV, SENTINEL)
    with served(create_app(EmulatorConfig(seed=5, orders=30, reviews=5, token=SENTINEL, rate_limits=False))) as url:
        cfg = write_config(tmp_path / "conf", url)
        line = one_line(invoke("sync", "--once", "-q", "--config", cfg, "--database-url", f"sqlite:///{store_copy}"))
    assert str(store_copy) in line, line


def test_a_full_disk_during_sync_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite reports a full disk as SQLITE_FULL; a page cap on every connection produces exactly that."""
    import store.db as db

    monkeypatch.setattr(db, "SQLITE_PRAGMAS", (*db.SQLITE_PRAGMAS, "PRAGMA max_page_count=120"))
    monkeypatch.setenv(TOKEN_ENV, SENTINEL)
    path = tmp_path / "full.db"
    emulator = create_app(EmulatorConfig(seed=5, orders=3000, reviews=400, token=SENTINEL, rate_limits=False))
    with served(emulator) as url:
        cfg = write_config(tmp_path / "conf", url)
        line = one_line(invoke("sync", "--once", "-q", "--config", cfg, "--database-url", f"sqlite:///{path}"))
    assert str(path) in line and "full" in line and "free" in line, line


def test_a_bad_url_never_shows_the_password() -> None:
    # Caught when the config loads (app.config), before any store is opened: one problem, exit 2.
    result = invoke("status", "--database-url", "postgresql://u:secret@host:notaport/db")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "secret" not in result.output
    assert "--database-url: cannot be parsed: the port is not a number" in result.output


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    result = invoke("export", "orders", "--database-url", "postgresql://u:pw-5ecret@127.0.0.1:1/db")
    line = one_line(result)
    assert "pw-5ecret" not in result.output and "127.0.0.1:1" in line and "running" in line, line


def test_debug_shows_the_traceback(store_copy: Path) -> None:
    store_copy.write_bytes(b"garbage" * 1000)
    result = CliRunner().invoke(app, ["--debug", "status", "--database-url", f"sqlite:///{store_copy}"])
    assert result.exit_code != 0 and result.exception is not None
    assert not isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: c[0])
def test_reading_commands_never_create_a_missing_store(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "stor.db"
    line = one_line(invoke(*command, "--database-url", f"sqlite:///{path}"))
    assert f"no store at {path}" in line and "check the path" in line, line
    assert not path.exists()


# -- demo -----------------------------------------------------------------------------------------


def test_demo_refuses_a_store_it_did_not_create(store_copy: Path) -> None:
    with sqlite3.connect(store_copy) as conn:  # a real store: no demo mark
        conn.execute("DELETE FROM meta WHERE key = 'demo'")
    before = counts(store_copy)
    line = one_line(invoke("demo", "--database-url", f"sqlite:///{store_copy}", "--orders", "10", "--reviews", "5"))
    assert str(store_copy) in line and "demo" in line, line
    assert counts(store_copy) == before


def test_demo_refuses_a_non_empty_postgresql_store(pg_url: str) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id int)"))
        conn.execute(text("INSERT INTO orders VALUES (1)"))
    line = one_line(invoke("demo", "--database-url", pg_url.replace("+psycopg", ""), "--orders", "10"))
    assert "not empty" in line, line
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM orders")).scalar() == 1
    engine.dispose()


def test_demo_reruns_over_its_own_store(demo_file: Path, tmp_path: Path, demo_platforms: list[str]) -> None:
    path = tmp_path / "again.db"
    shutil.copy(demo_file, path)
    result = invoke("demo", "--database-url", f"sqlite:///{path}", "--orders", "10", "--reviews", "5")
    assert result.exit_code == 0, result.output
    assert counts(path)["orders"] == 10 * len(demo_platforms)  # 10 per marketplace, the earlier ones gone


def test_demo_database_url_has_help() -> None:
    assert "--database-url" in invoke("demo", "--help").stdout
    assert "refuses" in " ".join(invoke("demo", "--help").stdout.split())


# -- backup, restore, check-store -----------------------------------------------------------------


def test_sqlite_backup_delete_restore_gives_the_same_export(store_copy: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{store_copy}"
    before = exported(url)
    backup = tmp_path / "backups" / "store.bak"
    result = invoke("backup", backup, "--database-url", url)
    assert result.exit_code == 0, result.output
    assert "verified" in result.stderr and backup.exists()
    assert invoke("backup", backup, "--database-url", url).exit_code == 2  # no overwrite without --force
    store_copy.unlink()
    result = invoke("restore", backup, "--database-url", url)
    assert result.exit_code == 0, result.output
    assert exported(url) == before
    # Restoring over a non-empty store needs --force, and keeps the store it replaces.
    assert "--force" in one_line(invoke("restore", backup, "--database-url", url))
    assert invoke("restore", backup, "--database-url", url, "--force").exit_code == 0
    assert Path(f"{store_copy}.before-restore").exists()
    assert exported(url) == before
    assert invoke("check-store", "--database-url", url).exit_code == 0


def test_restore_refuses_a_backup_that_is_not_a_store(store_copy: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.bak"
    bad.write_bytes(b"nope" * 100)
    before = counts(store_copy)
    line = one_line(invoke("restore", bad, "--database-url", f"sqlite:///{store_copy}", "--force"))
    assert str(bad) in line, line
    assert counts(store_copy) == before


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed")
def test_postgresql_backup_delete_restore_gives_the_same_export(pg_url: str, tmp_path: Path) -> None:
    url = pg_url.replace("+psycopg", "")
    assert invoke("demo", "--database-url", url, "--orders", "20", "--reviews", "5").exit_code == 0
    before = exported(url)
    backup = tmp_path / "pg.dump"
    result = invoke("backup", backup, "--database-url", url)
    assert result.exit_code == 0, result.output
    for line in result.stdout.splitlines():  # the printed commands, run as printed
        subprocess.run(shlex.split(line), check=True, capture_output=True)
    assert backup.exists()
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    result = invoke("restore", backup, "--database-url", url)
    assert result.exit_code == 0, result.output
    for line in result.stdout.splitlines():
        subprocess.run(shlex.split(line), check=True, capture_output=True)
    assert exported(url) == before
    assert invoke("check-store", "--database-url", url).exit_code == 0


def test_postgresql_backup_masks_the_password() -> None:
    result = invoke("backup", "x.dump", "--database-url", "postgresql://u:pw-5ecret@127.0.0.1:1/db")
    assert "pw-5ecret" not in result.output


def test_check_store_on_a_healthy_store_is_one_line(store_copy: Path) -> None:
    result = invoke("check-store", "--database-url", f"sqlite:///{store_copy}")
    assert result.exit_code == 0, result.output
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    assert "ok" in result.stderr


# -- ./dev keeps the user's working directory ------------------------------------------------------


def test_dev_resolves_relative_paths_where_the_user_ran_it(store_copy: Path, tmp_path: Path) -> None:
    where = tmp_path / "elsewhere"
    where.mkdir()
    shutil.copy(store_copy, where / "rel.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALSYNC_")}
    done = subprocess.run([str(REPO / "dev"), "export", "orders", "--database-url", "sqlite:///rel.db",
                           "-o", "out/orders.jsonl"], cwd=where, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert (where / "out" / "orders.jsonl").read_text().count("\n") == counts(store_copy)["orders"]
    assert not (REPO / "rel.db").exists() and not (REPO / "out").exists()


def write_config(root: Path, base_url: str) -> Path:
    (root / "marketplaces").mkdir(parents=True, exist_ok=True)
    (root / "loyalsync.toml").write_text("[schedule]\njitter_seconds = 0\n", encoding="utf-8")
    limits = "".join(f"[accounts.rate_limits.{g}]\nrequests = 1000\nperiod_seconds = 1\nburst = 1000\n"
                     for g in ("marketplace", "feedbacks", "statistics"))
    (root / "marketplaces" / "wildberries.toml").write_text(
        f'[[accounts]]\nname = "main"\ntoken_env = "{TOKEN_ENV}"\n[accounts.base_urls]\n'
        f'marketplace = "{base_url}"\nstatistics = "{base_url}"\nfeedbacks = "{base_url}"\n{limits}',
        encoding="utf-8")
    return root / "loyalsync.toml"

