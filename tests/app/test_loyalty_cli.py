"""The loyalty commands on a demo run of every emulator: `simulate` writes nothing and prints what a
real run produces, `members`/`member` show the ledger's balances, `export ledger` writes every entry,
and the daemon runs the ledger job only when the program is enabled."""

from __future__ import annotations

import asyncio
import csv
import logging
import re
import shutil
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from app.cli import app
from app.config import AppConfig, AppSettings, DatabaseSettings, ScheduleSettings, load_config
from app.scheduler import LOYALTY_JOB, MEMBERS_JOB, Daemon
from app.wiring import App
from loyalty import incremental
from loyalty.ledger import balances, entries_of, run_once
from loyalty.members import member_orders, member_rows, standing, summarize
from loyalty.membership import refresh_members, stored_for
from loyalty.rules import LoyaltySettings
from loyalty.simulate import simulate
from store import Store, connect

PROGRAM = """
[loyalty]
enabled = true
earn_rate = 0.05
return_window = "14d"

[[loyalty.tiers]]
name = "base"
min_spend = 0
earn_rate = 0.03

[[loyalty.tiers]]
name = "gold"
min_spend = 20000
earn_rate = 0.07

[loyalty.welcome]
points = 100

[loyalty.every_nth]
n = 3
points = 300
period = "180d"

[loyalty.marketplaces.ozon]
return_window = "7d"
"""
COLUMNS = ("members", "with points", "orders", "no buyer identity", "earned", "reversed", "pending",
           "available", "expired", "debt", "tiers reached")
LEDGER_FIELDS = ["id", "marketplace", "account", "buyer_key", "kind", "amount", "idempotency_key", "order_id",
                 "rule", "effective_at", "available_from", "expires_at", "remaining"]
DECIMAL = re.compile(r"^-?\d+\.\d{2}$")
_LOGGERS = ("", "loyalsync", "httpx", "httpcore", "apscheduler", "alembic")


@contextmanager
def restored_logging() -> Iterator[None]:
    """Commands set logging up with handlers on CliRunner's (closed afterwards) stream: undo it."""
    saved = [(lg, lg.level, list(lg.handlers), lg.propagate)
             for lg in (logging.getLogger(name) for name in _LOGGERS)]
    try:
        yield
    finally:
        for lg, level, handlers, propagate in saved:
            lg.setLevel(level)
            lg.handlers[:] = handlers
            lg.propagate = propagate


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    for var in ("LOYALSYNC_CONFIG", "LOYALSYNC_DATABASE_URL", "LOYALSYNC_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that no table cell folds
    with restored_logging():
        yield


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo run of every emulator (Ozon and Yandex Market orders carry buyer keys)."""
    path = tmp_path_factory.mktemp("loyalty-demo") / "demo.db"
    with pytest.MonkeyPatch.context() as mp, restored_logging():
        mp.chdir(tmp_path_factory.mktemp("loyalty-demo-cwd"))
        result = CliRunner().invoke(app, ["demo", "--database-url", f"sqlite:///{path}", "--orders", "300",
                                          "--reviews", "40"])
    assert result.exit_code == 0, (result.output, result.exc_info)
    return path


@pytest.fixture
def db(demo_file: Path, tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """A private copy of the demo store: its URL and a Store on it. The demo's own ledger, members and
    actions are removed: each test runs its own program over the synced orders."""
    copy = tmp_path / "copy.db"
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{demo_file}{suffix}").exists():
            shutil.copy(f"{demo_file}{suffix}", f"{copy}{suffix}")
    url = f"sqlite:///{copy}"
    engine = connect(url)
    with engine.begin() as conn:
        for table in ("action_attempts", "actions", "loyalty_members", "loyalty_ledger"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    yield url, Store(engine)
    engine.dispose()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "conf" / "loyalsync.toml"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(PROGRAM), encoding="utf-8")
    return path


@pytest.fixture
def settings(config: Path) -> LoyaltySettings:
    return load_config(config, env={}).settings.loyalty


NOW = datetime.now(UTC).replace(microsecond=0)  # the demo's data is relative to the wall clock


def invoke(*args: object) -> Result:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def table(text: str) -> dict[str, dict[str, str]]:
    """A rich table's rows by first cell, each as {column: cell}."""
    header: list[str] = []
    rows: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if line.startswith("┃"):
            header = [c.strip() for c in line.strip("┃").split("┃")]
        elif line.startswith("│") and header:
            cells = [c.strip() for c in line.strip("│").split("│")]
            rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def printed(figures) -> dict[str, str]:
    """The cells `simulate` must print for one marketplace's figures."""
    tiers = ", ".join(f"{t} {n}" for t, n in sorted(figures.tiers.items())) or "—"
    values = (figures.members, figures.members_with_points, figures.orders, figures.no_identity, figures.earned,
              figures.reversed, figures.pending, figures.available, figures.expired, figures.debt)
    return {**dict(zip(COLUMNS, map(str, values), strict=False)), "tiers reached": tiers}


def ledger_rows(url: str) -> int:
    engine = connect(url)
    try:
        return len(entries_of(engine))
    finally:
        engine.dispose()


# -- simulate -------------------------------------------------------------------------------------


def test_simulate_prints_figures_and_writes_nothing(db, config: Path, demo_platforms: list[str]) -> None:
    url, store = db
    path = Path(url.removeprefix("sqlite:///"))
    orders_before = list(store.iter_orders())
    result = invoke("simulate", "--now", NOW.isoformat(), "--config", config, "--database-url", url)
    assert result.exit_code == 0, result.output
    assert "nothing was written" in result.stderr
    rows = table(result.stdout)
    assert set(rows) == {*demo_platforms, "total"}
    assert int(rows["ozon"]["members"]) > 0 and Decimal(rows["ozon"]["earned"]) > 0
    assert rows["wildberries"]["members"] == "0" and rows["wildberries"]["no buyer identity"] == "300"
    assert Decimal(rows["total"]["earned"]) == sum(Decimal(rows[m]["earned"]) for m in rows if m != "total")
    # The real store is untouched: no ledger entry, the same orders.
    assert ledger_rows(url) == 0
    assert list(store.iter_orders()) == orders_before
    assert path.exists()


def test_simulate_prints_the_same_figures_as_a_real_run(db, config: Path, settings: LoyaltySettings) -> None:
    url, store = db
    result = invoke("simulate", "--now", NOW.isoformat(), "--config", config, "--database-url", url)
    assert result.exit_code == 0, result.output
    shown = table(result.stdout)
    simulated = simulate(store, settings, NOW).summary

    real_run = run_once(store, settings, NOW)
    assert real_run.inserted > 0
    real = summarize(store.iter_orders(), entries_of(store), settings, NOW)
    assert simulated == real
    for marketplace, figures in real.marketplaces.items():
        assert shown[marketplace] == {"marketplace": marketplace, **printed(figures)}, marketplace
    assert shown["total"] == {"marketplace": "total", **printed(real.total())}
    # The printed balances are the ledger's own, member by member.
    pending = sum((balances(store, (r.marketplace, r.account, r.buyer_key), NOW).pending
                   for r in member_rows(store, settings, NOW)), Decimal(0))
    assert Decimal(shown["total"]["pending"]) == pending


def test_simulate_restricts_orders_by_creation_date(db, config: Path, settings: LoyaltySettings) -> None:
    url, store = db
    orders = sorted(store.iter_orders(), key=lambda r: r["created_at"])
    cut = orders[len(orders) // 2]["created_at"].date()
    result = invoke("simulate", "--to", cut.isoformat(), "--now", NOW.isoformat(), "--config", config,
                    "--database-url", url)
    assert result.exit_code == 0, result.output
    shown = table(result.stdout)
    considered = [r for r in orders if r["created_at"].date() <= cut]
    assert 0 < len(considered) < len(orders)
    total = shown["total"]
    assert int(total["orders"]) + int(total["no buyer identity"]) == len(considered)
    later = invoke("simulate", "--from", cut.isoformat(), "--now", NOW.isoformat(),
                   "--config", config, "--database-url", url)
    assert later.exit_code == 0, later.output
    after = table(later.stdout)["total"]
    assert int(after["orders"]) + int(after["no buyer identity"]) == len(
        [r for r in orders if r["created_at"].date() >= cut])
    bad = invoke("simulate", "--from", "yesterday", "--config", config, "--database-url", url)
    assert bad.exit_code == 2 and "--from" in bad.stderr
    assert ledger_rows(url) == 0


# -- members, member -------------------------------------------------------------------------------


def test_members_and_member_show_the_ledgers_balances(db, config: Path, settings: LoyaltySettings) -> None:
    url, store = db
    run_once(store, settings, NOW)
    ozon = [r for r in member_rows(store, settings, NOW) if r.marketplace == "ozon"]
    result = invoke("members", "--marketplace", "ozon", "--now", NOW.isoformat(), "--config", config,
                    "--database-url", url)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(lines) == len(ozon) > 0
    for row in ozon:
        b = balances(store, ("ozon", row.account, row.buyer_key), NOW)
        line = next(x for x in lines if row.buyer_key[:12] in x)
        cells = [c.strip() for c in line.strip("│").split("│")]
        assert cells[0] == "ozon" and cells[1] == row.account and cells[3] == str(row.orders)
        assert Decimal(cells[5]) == b.pending and Decimal(cells[6]) == b.available, (cells, b)
        assert Decimal(cells[7]) == b.debt  # finding 7: the table showed no debt
        assert cells[8] == (row.tier or "—")

    gold = invoke("members", "--tier", "gold", "--now", NOW.isoformat(), "--config", config, "--database-url", url)
    gold_lines = [line for line in gold.stdout.splitlines() if line.startswith("│")]
    assert gold_lines and all(line.strip("│").split("│")[8].strip() == "gold" for line in gold_lines)
    segments = {line.strip("│").split("│")[9].strip() for line in lines}
    assert segments <= {"new", "active", "at_risk", "sleeping", "lost"}
    one = sorted(segments)[0]
    only = invoke("members", "--marketplace", "ozon", "--segment", one, "--now", NOW.isoformat(),
                  "--config", config, "--database-url", url)
    only_lines = [line for line in only.stdout.splitlines() if line.startswith("│")]
    assert only_lines and all(line.strip("│").split("│")[9].strip() == one for line in only_lines)
    bad = invoke("members", "--segment", "vip", "--config", config, "--database-url", url)
    assert bad.exit_code == 2 and "not one of" in bad.stderr

    rich_member = max(ozon, key=lambda r: r.balances.pending + r.balances.available)
    who = ("ozon", rich_member.account, rich_member.buyer_key)
    b = balances(store, who, NOW)
    shown = invoke("member", rich_member.buyer_key[:10], "--now", NOW.isoformat(), "--config", config,
                   "--database-url", url)
    assert shown.exit_code == 0, shown.output
    assert rich_member.buyer_key in shown.stdout
    assert f"pending {b.pending}, available {b.available}" in shown.stdout
    entries = entries_of(store, who)
    ids_shown = re.findall(r"^│\s*(\d+)\s*│", shown.stdout, flags=re.M)
    lots = [e for e in entries if e["kind"] == "earn"]
    assert len(ids_shown) == len(lots) + len(entries)  # lots table, then the whole history
    standing_now = standing(member_orders(store.iter_orders(), settings)[0][who], settings, NOW)
    assert f"tier {standing_now.tier or '—'}" in shown.stdout and f"segment {standing_now.segment}" in shown.stdout
    assert "last stored them" not in shown.stdout  # the member job has not run

    # The member job stores the same figures; the page says when it last did.
    refresh_members(store, settings, NOW)
    held = stored_for(store, [who])[who]
    assert (held["tier"], held["segment"]) == (standing_now.tier, standing_now.segment)
    evaluated = invoke("member", rich_member.buyer_key, "--now", NOW.isoformat(), "--config", config,
                       "--database-url", url)
    assert f"last stored them at {NOW.isoformat()}" in evaluated.stdout
    later = NOW + timedelta(days=400)  # everyone is lost by then: a point-in-time view says so
    moved = invoke("member", rich_member.buyer_key, "--now", later.isoformat(), "--config", config,
                   "--database-url", url)
    assert "segment lost" in moved.stdout

    unknown = invoke("member", "zzzz", "--config", config, "--database-url", url)
    assert unknown.exit_code == 1 and "no member" in unknown.stderr
    keys = [r.buyer_key for r in member_rows(store, settings, NOW)]
    first = next(k[0] for k in keys if sum(x.startswith(k[0]) for x in keys) > 1)
    ambiguous = invoke("member", first, "--config", config, "--database-url", url)
    assert ambiguous.exit_code == 2 and "give more characters" in ambiguous.stderr


# -- export ledger ---------------------------------------------------------------------------------


def test_export_ledger_writes_every_entry(db, settings: LoyaltySettings, tmp_path: Path) -> None:
    url, store = db
    run_once(store, settings, NOW)
    entries = entries_of(store)
    assert entries
    result = invoke("export", "ledger", "--format", "jsonl", "--database-url", url)
    assert result.exit_code == 0, result.output
    records = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    assert f"exported {len(entries)} ledger" in result.stderr
    for rec, entry in zip(records, entries, strict=True):
        assert list(rec) == LEDGER_FIELDS
        assert DECIMAL.match(rec["amount"]) and Decimal(rec["amount"]) == entry["amount"]
        assert rec["remaining"] is None or DECIMAL.match(rec["remaining"])
        assert datetime.fromisoformat(rec["effective_at"]).utcoffset() is not None
        for key in ("available_from", "expires_at"):
            assert rec[key] is None or datetime.fromisoformat(rec[key]) == entry[key]
    out = tmp_path / "ledger.csv"
    as_csv = invoke("export", "ledger", "--format", "csv", "-o", out, "--database-url", url)
    assert as_csv.exit_code == 0, as_csv.output
    with out.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames == LEDGER_FIELDS and len(rows) == len(entries)
    assert {r["idempotency_key"] for r in rows} == {e["idempotency_key"] for e in entries}


# -- rebuild ----------------------------------------------------------------------------------------


def _entries_but_expiry(url: str) -> list[tuple]:
    """The ledger without ids, `expire` entries and `remaining` (those follow the clock)."""
    engine = connect(url)
    try:
        return sorted(tuple(v for k, v in r.items() if k not in ("id", "remaining"))
                      for r in entries_of(engine) if r["kind"] != "expire")
    finally:
        engine.dispose()


def test_rebuild_runs_every_member_and_writes_what_one_full_run_writes(db, config: Path, tmp_path: Path,
                                                                       settings: LoyaltySettings) -> None:
    url, _ = db
    reference = tmp_path / "reference.db"
    for suffix in ("", "-wal", "-shm"):  # the store is in WAL mode: its last writes are in -wal
        if Path(url.removeprefix("sqlite:///") + suffix).exists():
            shutil.copy(url.removeprefix("sqlite:///") + suffix, f"{reference}{suffix}")
    result = invoke("rebuild", "--config", config, "--database-url", url)
    assert result.exit_code == 0, result.output
    assert re.search(r"ledger rebuilt: [1-9]\d* members", result.stdout), result.stdout
    # The same ledger as `run_once` over every member (rebuild's `now` is a moment later: a lot that
    # fell due in between would differ, so compare earn, reverse and take-back entries only).
    engine = connect(f"sqlite:///{reference}")
    run_once(Store(engine), settings, datetime.now(UTC))
    engine.dispose()
    mine, theirs = _entries_but_expiry(url), _entries_but_expiry(f"sqlite:///{reference}")
    assert len(mine) > 0 and mine == theirs
    again = invoke("rebuild", "--config", config, "--database-url", url)
    assert "0 entries written" in again.stdout, again.stdout


def test_rebuild_refuses_a_program_that_is_off(db, tmp_path: Path) -> None:
    url, _ = db
    off = tmp_path / "off.toml"
    off.write_text("[loyalty]\nenabled = false\n", encoding="utf-8")
    result = invoke("rebuild", "--config", off, "--database-url", url)
    assert result.exit_code == 2 and "loyalty program is off" in result.stderr
    assert ledger_rows(url) == 0


# -- the daemon's ledger job ---------------------------------------------------------------------


def _daemon(db, tmp_path: Path, enabled: bool) -> Daemon:
    url, store = db
    program = LoyaltySettings(enabled=enabled, earn_rate=Decimal("0.05"))
    settings = AppSettings(database=DatabaseSettings(url=url), schedule=ScheduleSettings(jitter_seconds=0),
                           loyalty=program)
    cfg = AppConfig(settings=settings, accounts=(), config_path=tmp_path / "loyalsync.toml")
    return Daemon(App(cfg, store=store))


@pytest.mark.parametrize("enabled", [True, False])
def test_the_daemon_runs_the_ledger_job_only_when_enabled(db, tmp_path: Path, enabled: bool,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url, store = db
    threads: list[str] = []

    def recording_run_once(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return run_once(*args, **kwargs)

    monkeypatch.setattr(incremental, "run_once", recording_run_once)
    daemon = _daemon(db, tmp_path, enabled)
    scheduler = daemon.schedule()
    job, members = scheduler.get_job(LOYALTY_JOB), scheduler.get_job(MEMBERS_JOB)
    assert (job is not None) == enabled and (members is not None) == enabled
    if enabled:
        assert job.max_instances == 1 and job.trigger.interval.total_seconds() == 600
        # Tiers may drop a step per evaluation under one_down: members are evaluated daily.
        assert members.max_instances == 1 and members.trigger.interval.total_seconds() == 86400

    async def main() -> None:
        task = asyncio.create_task(daemon.run())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (20 if enabled else 1)
        while loop.time() < deadline and not (enabled and ledger_rows(url) > 0):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # let a run that has written finish its last batch
        daemon.stop.set()
        await task

    asyncio.run(main())
    if enabled:
        assert ledger_rows(url) > 0
        assert threads and threading.main_thread().name not in threads  # ran off the event loop's thread
    else:
        assert ledger_rows(url) == 0 and threads == []


@pytest.mark.parametrize("command", [["simulate"], ["members"], ["member", "abc"]])
def test_reading_commands_refuse_a_store_that_does_not_exist(tmp_path: Path, command: list[str]) -> None:
    """Finding 7: `simulate` on a mistyped path created an empty database and reported nothing."""
    missing = tmp_path / "typo" / "store.db"
    result = CliRunner().invoke(app, [*command, "--database-url", f"sqlite:///{missing}"])
    assert result.exit_code == 2, result.output
    assert f"no store at {missing}" in result.stderr and "check the path" in result.stderr
    assert not missing.exists() and not missing.parent.exists()
