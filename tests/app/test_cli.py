"""The `loyalsync` command as ops use it: config checks, demo, status, export, and `sync --once`
against the Wildberries emulator served on loopback. The token must never show up in any output."""

from __future__ import annotations

import csv
import json
import logging
import re
import textwrap
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import typer
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from typer.testing import CliRunner, Result

from app.cli import app
from connectors.base import RecordType
from connectors.capabilities import ActionKind
from connectors.registry import available_connectors
from connectors.testing.serving import served
from connectors.wildberries.emulator import EmulatorConfig, Fault, create_app
from loyalty.ledger import entries_of
from store import Store, connect
from store.tables import OrderRow, ReviewRow

REPO = Path(__file__).resolve().parents[2]
SENTINEL = "SENTINEL-TOKEN-3b9c41d7e2a8"  # the emulator accepts only this token
WRONG = "WRONG-SENTINEL-TOKEN-8e1f06c4"
TOKEN_ENV = "LOYALSYNC_TEST_WB_TOKEN"
STREAMS = ("orders", "orders_statistics", "reviews")
# The DESIGN export schema, written out here so a change to app/export.py cannot move both sides.
ORDER_FIELDS = ["marketplace", "account", "order_id", "created_at", "updated_at", "status",
                "platform_status", "fulfilment", "buyer_key", "currency", "total", "returned_total", "lines"]
LINE_FIELDS = ["sku", "offer_id", "name", "quantity", "price"]
REVIEW_FIELDS = ["marketplace", "account", "review_id", "sku", "rating", "text", "pros", "cons",
                 "created_at", "answered", "answer_text", "order_id", "buyer_key"]
MONEY = re.compile(r"^-?\d+\.\d{2}$")
STATUSES = {"created", "in_delivery", "delivered", "cancelled", "partially_returned", "returned"}
_LOGGERS = ("", "loyalsync", "httpx", "httpcore", "apscheduler", "alembic", "uvicorn", "uvicorn.error",
            "uvicorn.access")


@contextmanager
def restored_logging() -> Iterator[None]:
    """Undo the logging set-up commands do: their handlers write to CliRunner's stream, which is
    closed afterwards, and their levels would hide records from later tests."""
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
    """Run each command in an empty folder, with no config from the environment."""
    monkeypatch.chdir(tmp_path)  # the repo's config/ and data/ stay out of reach
    for var in ("LOYALSYNC_CONFIG", "LOYALSYNC_DATABASE_URL", "LOYALSYNC_MODE", "COLUMNS"):
        monkeypatch.delenv(var, raising=False)
    with restored_logging():
        yield


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, [str(a) for a in args])
    # A crash would be stored here instead of printed: only a deliberate exit is acceptable.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def emulator_app(**overrides) -> Starlette:
    config = dict(seed=5, orders=120, reviews=40, token=SENTINEL, rate_limits=False)
    return create_app(EmulatorConfig(**{**config, **overrides}))


def write_config(root: Path, base_url: str, *, accounts: tuple[str, ...] = ("main",),
                 database: str = "sqlite:///from-config.db") -> Path:
    """A global config and a wildberries.toml whose accounts use the emulator for every host."""
    (root / "marketplaces").mkdir(parents=True, exist_ok=True)
    (root / "loyalsync.toml").write_text(textwrap.dedent(f"""\
        [database]
        url = "{database}"
        [schedule]
        jitter_seconds = 0
        """), encoding="utf-8")
    blocks = [textwrap.dedent(f"""\
        [[accounts]]
        name = "{name}"
        token_env = "{TOKEN_ENV}"
        [accounts.base_urls]
        marketplace = "{base_url}"
        statistics = "{base_url}"
        feedbacks = "{base_url}"
        # The client's pacing is tested elsewhere; WB's real budgets would only slow this down.
        [accounts.rate_limits.marketplace]
        requests = 1000
        period_seconds = 1
        burst = 1000
        [accounts.rate_limits.feedbacks]
        requests = 1000
        period_seconds = 1
        burst = 1000
        [accounts.rate_limits.statistics]
        requests = 1000
        period_seconds = 1
        burst = 1000
        """) for name in accounts]
    (root / "marketplaces" / "wildberries.toml").write_text("\n".join(blocks), encoding="utf-8")
    return root / "loyalsync.toml"


_engines: dict[str, Engine] = {}


@pytest.fixture(autouse=True, scope="module")
def _dispose_engines() -> Iterator[None]:
    yield
    while _engines:
        _engines.popitem()[1].dispose()


def open_db(url: str) -> Store:
    if url not in _engines:
        _engines[url] = connect(url)
    return Store(_engines[url])


def ran(store: Store) -> dict[tuple[str, str], str]:
    """(account, stream) -> state of every stream that has run."""
    return {(c["account"], c["stream"]): c["state"] for c in store.cursors()}


def assert_no_secret(result: Result, caplog, *secrets: str, files: tuple[Path, ...] = ()) -> None:
    texts = {"stdout": result.stdout, "stderr": result.stderr, "log": caplog.text}
    texts.update({str(f): f.read_bytes().decode("utf-8", "replace") for f in files})
    for secret in secrets:
        leaked = [where for where, text in texts.items() if secret in text]
        assert not leaked, f"token found in {leaked}"


# -- check-config -------------------------------------------------------------------------------


def test_check_config_accepts_the_shipped_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALSYNC_WB_MAIN_TOKEN", SENTINEL)
    result = invoke("check-config", "--config", REPO / "config" / "loyalsync.toml")
    assert result.exit_code == 0, result.output
    assert "config OK" in result.stderr and "1 account(s)" in result.stderr
    assert SENTINEL not in result.output


@pytest.fixture
def broken_config(tmp_path: Path) -> tuple[Path, list[tuple[str, str]]]:
    """A config with one of each mistake ops make, and the (line start, fragment) each must give."""
    root = tmp_path / "broken"
    (root / "marketplaces").mkdir(parents=True)
    cfg, wb, ebay = root / "loyalsync.toml", root / "marketplaces" / "wildberries.toml", \
        root / "marketplaces" / "ebay.toml"
    cfg.write_text(textwrap.dedent("""\
        [database]
        url = "sqlite:///broken.db"
        colour = "blue"
        [schedule]
        default_poll_interval = "5 minutes"
        """), encoding="utf-8")
    wb.write_text(textwrap.dedent("""\
        [[accounts]]
        name = "main"
        token_env = "LOYALSYNC_TEST_UNSET_TOKEN"
        [accounts.streams.orders]
        poll_interval = "soon"
        """), encoding="utf-8")
    ebay.write_text('[[accounts]]\nname = "x"\n', encoding="utf-8")
    expected = [
        (f"{cfg}: database.colour: ", "unknown key"),
        (f"{cfg}: schedule.default_poll_interval: ", "'5 minutes' is not a duration"),
        (f"{wb}: accounts[0].token_env: ", "LOYALSYNC_TEST_UNSET_TOKEN is not set"),
        (f"{wb}: accounts[0].streams.orders.poll_interval: ", "'soon' is not a duration"),
        (f"{ebay}: ", "unknown marketplace 'ebay'"),
    ]
    return cfg, expected


@pytest.mark.parametrize("command", [["check-config"], ["sync", "--once"], ["run"]])
def test_a_broken_config_is_reported_whole_and_nothing_runs(
        broken_config, command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOYALSYNC_TEST_UNSET_TOKEN", raising=False)
    cfg, expected = broken_config
    result = invoke(*command, "--config", cfg)
    assert result.exit_code == 2, result.output
    lines = lines_of(result.stderr)
    assert f"{len(expected)} config problems:" in lines
    for start, fragment in expected:
        # One problem, one whole line (no wrapping at the terminal width), file: key: problem.
        assert any(line.startswith(start) and fragment in line for line in lines), (start, result.stderr)
    assert len([line for line in lines if line.startswith(str(cfg.parent))]) == len(expected)
    assert not (cfg.parent / "broken.db").exists(), "a store was opened before the config was fixed"


# -- demo, status, export -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One demo run shared by the status and export tests (it takes a few seconds): (url, stderr)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    with pytest.MonkeyPatch.context() as mp, restored_logging():
        mp.chdir(tmp_path_factory.mktemp("demo-cwd"))
        mp.setenv("COLUMNS", "200")  # wide enough that no table cell folds: the tests read them
        result = CliRunner().invoke(app, ["demo", "--database-url", url, "--orders", "300",
                                          "--reviews", "80"])
    assert result.exit_code == 0, (result.output, result.exc_info)
    assert "Traceback" not in result.output
    assert "demo summary" in result.stderr
    assert re.search(r"\b300 orders \(", result.stderr), result.stderr  # orders, by status
    assert re.search(r"\b80 \(\d+ answered\)", result.stderr), result.stderr
    return url, result.stderr


@pytest.fixture(scope="module")
def demo_db(demo_run: tuple[str, str]) -> str:
    return demo_run[0]


def test_demo_shows_the_points_its_ledger_holds(demo_run: tuple[str, str]) -> None:
    """The demo's points table is the ledger's: members, available, pending and debt per marketplace
    with buyer keys (Ozon, Yandex Market), none for Wildberries (no buyer identity)."""
    url, stderr = demo_run
    store = open_db(url)
    totals: dict[str, list] = {}
    for row in entries_of(store):
        t = totals.setdefault(row["marketplace"], [set(), 0])
        t[0].add(row["buyer_key"])
        t[1] += row["amount"]
    assert "wildberries" not in totals and totals["ozon"][1] > 0, totals
    table = stderr.split("points (the loyalty ledger after one run)")[1].split("actions (dry-run")[0]
    lines = {line.split("│")[1].strip(): line for line in table.splitlines() if line.count("│") >= 6}
    for marketplace, (members, net) in totals.items():
        cells = [c.strip().replace(",", "") for c in lines[marketplace].split("│")[1:-1]]
        available, pending, debt = (Decimal(c) for c in cells[2:5])
        assert available + pending - debt == net, (marketplace, cells, net)  # Σ ledger = pending + available − debt
        assert int(cells[1]) >= len(members), cells
    assert Decimal(lines["ozon"].split("│")[3].strip().replace(",", "")) > 0  # points to spend


def _catalogue_names() -> dict[tuple[str, str], str]:
    """(marketplace, sku) -> the name each demo emulator's own catalogue gives it (the demo's seed)."""
    from app.demo import demo_setups
    from connectors.yandex_market.emulator_orders import OFFERS

    setups = demo_setups(orders=300, reviews=80)
    names = {("ozon", str(p.sku)): p.name for p in setups["ozon"].app.state.data.products}
    names |= {("wildberries", str(p.nm_id)): p.name for p in setups["wildberries"].app.state.data.products}
    return names | {("yandex_market", f"SKU-{stem}"): name for stem, name, _ in OFFERS}


def test_demo_replies_name_the_products_its_emulators_catalogue(demo_run: tuple[str, str]) -> None:
    """No reply of the demo names an article where the platform's catalogue has a name: not in the
    export (text and title), not in the replies table the demo prints."""
    url, stderr = demo_run
    result = invoke("export", "actions", "--format", "jsonl", "--database-url", url)
    assert result.exit_code == 0, result.output
    replies = [a for a in map(orjson.loads, result.stdout.splitlines()) if a["kind"] == "reply_to_review"]
    reviews = list(open_db(url).iter_reviews())
    skus = {(r["marketplace"], r["review_id"]): r["sku"] for r in reviews}
    names = _catalogue_names()
    # A platform whose reviews carry the product's name (a connector new-connector added) has no
    # catalogue to look in: its reviews' names are the platform's own words.
    catalogued = {mp for mp, _ in names}
    names |= {(r["marketplace"], r["sku"]): r["product_name"] for r in reviews
              if r["marketplace"] not in catalogued and r["product_name"]}
    # Every platform whose connector answers reviews (Kaspi has no review API).
    answering = {mp for mp, cls in available_connectors().items()
                 if ActionKind.REPLY_TO_REVIEW in cls.capabilities.writes}
    assert {r["marketplace"] for r in replies} == answering
    from app.demo import demo_settings

    store_name = demo_settings(url).actions.replies.store_name
    for reply in replies:
        sku = skus[(reply["marketplace"], reply["target"])]
        # A review of the seller tied to no product (Avito) is answered about the store.
        name = names[(reply["marketplace"], sku)] if sku else store_name  # catalogued: all
        assert "арт." not in reply["text"] + reply["title"], reply
        assert f"«{name}»" in reply["text"] and f"«{name[:60]}»" in reply["title"], reply
    shown = stderr.split("proposed on each marketplace)")[1]
    assert "арт." not in shown
    rows: list[list[str]] = []  # [marketplace, what, text], a folded cell's lines joined
    for line in shown.splitlines():
        if line.count("│") == 4:
            cells = [c.strip() for c in line.split("│")[1:4]]
            if cells[0]:
                rows.append(cells)
            else:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    assert {r[0] for r in rows} == answering
    for marketplace, what, text in rows:
        assert any(f"«{name}»" in what and f"«{name}»" in text for (mp, _), name in names.items()
                   if mp == marketplace), (what, text)


def test_demo_replies_vary_on_each_account(demo_run: tuple[str, str]) -> None:
    """Reviews of a few products, hundreds of replies: no text is posted more often than the gate allows,
    and most replies read differently (issue 17: Ozon restricts sellers who post repetitive replies)."""
    from loyalty.action_settings import ReplySettings

    url, _ = demo_run
    result = invoke("export", "actions", "--format", "jsonl", "--database-url", url)
    replies = [a for a in map(orjson.loads, result.stdout.splitlines()) if a["kind"] == "reply_to_review"]
    limit = ReplySettings().max_repeats
    for marketplace, cls in available_connectors().items():
        if ActionKind.REPLY_TO_REVIEW not in cls.capabilities.writes:
            continue  # no review API (Kaspi): nothing to reply to
        texts = Counter(r["text"] for r in replies if r["marketplace"] == marketplace and r["status"] != "refused")
        assert sum(texts.values()) > 20, marketplace
        assert max(texts.values()) <= limit + 1, texts.most_common(3)
        assert len(texts) >= sum(texts.values()) // 2, (marketplace, len(texts), sum(texts.values()))
    assert not [r for r in replies if r["reason"] == "repeated_text"]


def test_demo_stores_what_it_summarises(demo_db: str) -> None:
    store = open_db(demo_db)
    for marketplace, cls in available_connectors().items():
        assert store.count(OrderRow, marketplace=marketplace) == 300, marketplace
        reviewed = any(s.record_type is RecordType.REVIEW for s in cls.streams.values())
        assert (0 < store.count(ReviewRow, marketplace=marketplace) <= 80) == reviewed, marketplace
        states = {c["stream"]: c["state"] for c in store.cursors() if c["marketplace"] == marketplace}
        assert states == dict.fromkeys(cls.streams, "ok"), marketplace


def test_status_shows_every_stream_ok(demo_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that no cell folds
    result = invoke("status", "--database-url", demo_db)
    assert result.exit_code == 0, result.output
    for stream in STREAMS:
        row = next((line for line in result.stdout.splitlines()
                    if f" {stream} " in line and "wildberries/demo" in line), None)
        assert row is not None, result.stdout
        assert re.search(r"│\s*ok\s*│", row), row
    assert "wildberries/demo: 300 orders (0% with a buyer key), 80 reviews stored" in result.stdout
    # Where the platform names buyers, the share loyalty can work with is shown.
    ozon = re.search(r"ozon/demo: 300 orders \((\d+)% with a buyer key\)", result.stdout)
    assert ozon and int(ozon.group(1)) > 0, result.stdout
    # A platform without a review API says so instead of "0 reviews stored" (Kaspi, kaspi.md §4).
    assert "kaspi/demo: 300 orders (100% with a buyer key), no reviews: the platform has no review API" \
        in result.stdout, result.stdout


def test_export_orders_as_jsonl_in_the_design_schema(demo_db: str) -> None:
    result = invoke("export", "orders", "--format", "jsonl", "--database-url", demo_db)
    assert result.exit_code == 0, result.output
    records = [orjson.loads(line) for line in result.stdout.splitlines()]
    total = open_db(demo_db).count(OrderRow)
    assert len(records) == total == 300 * len(available_connectors())
    assert len({(r["marketplace"], r["order_id"]) for r in records}) == total
    assert f"exported {total} orders" in result.stderr
    for rec in records:
        assert list(rec) == ORDER_FIELDS
        assert rec["account"] == "demo" and rec["marketplace"] in available_connectors()
        assert rec["status"] in STATUSES and rec["fulfilment"]
        if rec["marketplace"] == "wildberries":
            assert rec["buyer_key"] is None  # WB exposes no buyer identity
        else:
            assert rec["buyer_key"] is None or re.fullmatch(r"[0-9a-f]{32}", rec["buyer_key"])
        assert rec["currency"] == ("KZT" if rec["marketplace"] == "kaspi" else "RUB")
        for key in ("created_at", "updated_at"):
            assert datetime.fromisoformat(rec[key]).utcoffset() is not None, rec[key]
        assert isinstance(rec["total"], str) and MONEY.match(rec["total"]), rec["total"]
        assert isinstance(rec["returned_total"], str) and MONEY.match(rec["returned_total"]), rec
        assert Decimal(0) <= Decimal(rec["returned_total"]) <= Decimal(rec["total"]), rec
        if rec["status"] == "partially_returned":
            assert 0 < Decimal(rec["returned_total"]) < Decimal(rec["total"]), rec
        assert rec["lines"]
        for line in rec["lines"]:
            assert list(line) == LINE_FIELDS
            assert isinstance(line["price"], str) and MONEY.match(line["price"]), line
            assert isinstance(line["quantity"], int)


def test_export_reviews_as_csv_to_a_file(demo_db: str, tmp_path: Path) -> None:
    out = tmp_path / "reviews.csv"
    result = invoke("export", "reviews", "--format", "csv", "-o", out, "--database-url", demo_db)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # the rows went to the file
    with out.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames == REVIEW_FIELDS
    total = open_db(demo_db).count(ReviewRow)
    assert len(rows) == total and len({(r["marketplace"], r["review_id"]) for r in rows}) == total
    for row in rows:
        assert row["rating"] in {"1", "2", "3", "4", "5"}
        assert datetime.fromisoformat(row["created_at"]).utcoffset() is not None
    assert f"exported {total} reviews" in result.stderr


def test_reading_commands_need_no_token_and_create_the_output_folder(demo_db: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The account's token variable is unset: status and export only read the store.
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    cfg = write_config(tmp_path / "cfg", "http://127.0.0.1:9")
    status = invoke("status", "--config", cfg, "--database-url", demo_db)
    assert status.exit_code == 0, status.output
    out = tmp_path / "not" / "yet" / "orders.jsonl"
    exported = invoke("export", "orders", "-o", out, "--config", cfg, "--database-url", demo_db)
    assert exported.exit_code == 0, exported.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 300 * len(available_connectors())
    # ...while syncing still refuses to start without it.
    sync = invoke("sync", "--once", "--config", cfg, "--database-url", demo_db)
    assert sync.exit_code == 2 and f"environment variable {TOKEN_ENV} is not set" in sync.stderr


# -- sync --once against the emulator on loopback ----------------------------------------------


def test_sync_once_syncs_every_stream_and_never_shows_the_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(TOKEN_ENV, SENTINEL)
    db = tmp_path / "sync.db"
    emulator = emulator_app()
    with served(emulator) as url:
        cfg = write_config(tmp_path / "conf", url)
        result = invoke("sync", "--once", "--verbose", "--config", cfg, "--database-url", f"sqlite:///{db}")
    assert result.exit_code == 0, result.output
    for stream in STREAMS:
        assert any(line.startswith(f"ok wildberries/main/{stream}: ") for line in lines_of(result.stderr))
    assert "GET marketplace /api/v3/orders -> 200" in result.stderr  # --verbose logs requests
    store = open_db(f"sqlite:///{db}")
    assert ran(store) == {("main", s): "ok" for s in STREAMS}
    assert store.count(OrderRow) == 120 and store.count(ReviewRow) == 40
    assert not (tmp_path / "from-config.db").exists()  # --database-url won over the file (cwd-relative)
    assert emulator.state.stats.statuses[401] == 0  # the token from the environment was sent
    assert_no_secret(result, caplog, SENTINEL, files=(db,))


def test_sync_once_runs_only_the_chosen_account_and_stream(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, SENTINEL)
    url_db = f"sqlite:///{tmp_path / 'filtered.db'}"
    with served(emulator_app(orders=40, reviews=10)) as url:
        cfg = write_config(tmp_path / "conf", url, accounts=("main", "second"))
        first = invoke("sync", "--once", "--account", "second", "--stream", "reviews",
                       "--config", cfg, "--database-url", url_db)
        assert first.exit_code == 0, first.output
        assert ran(open_db(url_db)) == {("second", "reviews"): "ok"}

        by_stream = invoke("sync", "--once", "--stream", "orders", "--config", cfg, "--database-url", url_db)
        assert by_stream.exit_code == 0, by_stream.output
        assert ran(open_db(url_db)) == {("second", "reviews"): "ok", ("main", "orders"): "ok",
                                        ("second", "orders"): "ok"}

        by_account = invoke("sync", "--once", "--account", "wildberries/main", "--config", cfg,
                            "--database-url", url_db)
        assert by_account.exit_code == 0, by_account.output
        assert {k for k in ran(open_db(url_db)) if k[0] == "main"} == {("main", s) for s in STREAMS}
        assert ("second", "orders_statistics") not in ran(open_db(url_db))

        nothing = invoke("sync", "--once", "--account", "nosuch", "--config", cfg, "--database-url", url_db)
        assert nothing.exit_code == 2
        assert "nothing to sync" in nothing.stderr


def test_sync_once_with_a_rejected_token_says_so_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(TOKEN_ENV, WRONG)
    db = tmp_path / "auth.db"
    emulator = emulator_app()
    with served(emulator) as url:
        cfg = write_config(tmp_path / "conf", url)
        result = invoke("sync", "--once", "--verbose", "--config", cfg, "--database-url", f"sqlite:///{db}")
    assert result.exit_code == 1, result.output
    assert emulator.state.stats.statuses[401] >= 1
    lines = lines_of(result.stderr)
    for stream in STREAMS:
        line = next((x for x in lines if x.startswith(f"error wildberries/main/{stream}: ")), None)
        assert line is not None, result.stderr
        # The whole message on that one line: what failed, that it is the token, what to do.
        assert "HTTP 401" in line and "token was rejected" in line, line
        assert line.endswith("Check the token in $LOYALSYNC_TEST_WB_TOKEN and its API categories."), line
        assert "[requestId " in line  # platform text is printed as text, not eaten as markup
    assert ran(open_db(f"sqlite:///{db}")) == {("main", s): "error" for s in STREAMS}
    monkeypatch.setenv("COLUMNS", "600")  # each last error on one table line
    status = invoke("status", "--database-url", f"sqlite:///{db}")
    assert status.exit_code == 0, status.output
    assert status.stdout.count("token was rejected") == 3 and status.stdout.count("[requestId ") == 3
    assert_no_secret(result, caplog, WRONG, SENTINEL, files=(db,))
    assert WRONG not in status.output


def test_sync_once_waits_out_a_rate_limit_storm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(TOKEN_ENV, SENTINEL)
    db = tmp_path / "storm.db"
    emulator = emulator_app(faults=(Fault("/api/v3/orders", "rate_limit", times=3, retry_after=1),))
    with served(emulator) as url:
        cfg = write_config(tmp_path / "conf", url)
        result = invoke("sync", "--once", "--config", cfg, "--database-url", f"sqlite:///{db}")
    assert result.exit_code == 0, result.output
    assert emulator.state.stats.throttled["marketplace"] == 3
    assert ran(open_db(f"sqlite:///{db}")) == {("main", s): "ok" for s in STREAMS}
    assert_no_secret(result, caplog, SENTINEL)


@pytest.mark.parametrize("command", [["status"], ["export", "orders"]])
@pytest.mark.parametrize("where", ["file-as-folder", "refused"])
def test_a_store_that_cannot_be_opened_is_one_clear_line(tmp_path: Path, command: list[str], where: str) -> None:
    (tmp_path / "not-a-folder").write_text("", encoding="utf-8")
    url = {"file-as-folder": f"sqlite:///{tmp_path / 'not-a-folder' / 'x.db'}",
           "refused": "postgresql://loyalsync:pw-5ecret@127.0.0.1:1/loyalsync"}[where]
    result = invoke(*command, "--database-url", url)
    assert result.exit_code == 2, (result.output, result.exc_info)
    problem = [line for line in lines_of(result.stderr) if line]
    assert len(problem) == 1 and problem[0].startswith("store "), result.stderr
    assert ("not-a-folder" if where == "file-as-folder" else "refused") in problem[0]
    assert "pw-5ecret" not in result.output


def test_sync_without_once_points_to_run(tmp_path: Path) -> None:
    result = invoke("sync")
    assert result.exit_code == 2
    assert "loyalsync run" in result.stderr


def test_export_rejects_an_unknown_kind() -> None:
    result = invoke("export", "ledgers", "--database-url", "sqlite:///unused.db")
    assert result.exit_code == 2
    assert "export orders|reviews" in result.stderr
    assert not Path("unused.db").exists()


def test_a_stream_the_platform_withholds_is_reported_and_is_not_a_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ozon's reviews need a paid subscription: without it `sync --once` says so and exits 0."""
    from connectors.ozon.emulator import EmulatorConfig as OzonConfig
    from connectors.ozon.emulator import create_app as ozon_app

    monkeypatch.setenv("LOYALSYNC_TEST_OZON_TOKEN", SENTINEL)
    emulator = ozon_app(OzonConfig(seed=3, orders=60, reviews=20, client_id="777", token=SENTINEL,
                                   rate_limits=False, reviews_subscription=False))
    db = f"sqlite:///{tmp_path / 'withheld.db'}"
    with served(emulator) as url:
        root = tmp_path / "conf"
        (root / "marketplaces").mkdir(parents=True)
        (root / "loyalsync.toml").write_text("[schedule]\njitter_seconds = 0\n", encoding="utf-8")
        (root / "marketplaces" / "ozon.toml").write_text(textwrap.dedent(f"""\
            [[accounts]]
            name = "main"
            client_id = "777"
            token_env = "LOYALSYNC_TEST_OZON_TOKEN"
            [accounts.base_urls]
            api = "{url}"
            """), encoding="utf-8")
        result = invoke("sync", "--once", "--quiet", "--config", root / "loyalsync.toml", "--database-url", db)
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stderr)
    assert any(x.startswith("ok ozon/main/orders_fbs: ") for x in lines), result.stderr
    withheld = next(x for x in lines if x.startswith("unavailable ozon/main/reviews: "))
    assert "«Управление отзывами»" in withheld and "Premium Pro" in withheld, withheld
    assert ran(open_db(db))[("main", "reviews")] == "unavailable"


def test_sync_exit_codes_follow_the_worst_stream_and_are_in_the_help() -> None:
    from app.cli import sync_exit_code
    from store.store import StreamKey
    from sync.runner import RunResult

    def results(*states: str) -> list[RunResult]:
        return [RunResult(key=StreamKey("ozon", "main", f"s{i}"), state=s) for i, s in enumerate(states)]

    assert sync_exit_code(results("ok", "unavailable")) == 0
    assert sync_exit_code(results("ok", "unavailable", "error")) == 1
    assert sync_exit_code(results("ok", "deferred")) == 1
    help_text = invoke("sync", "--help").stdout
    assert "Exit codes" in help_text and "unavailable" in help_text and "deferred" in help_text


# -- output for scripts and pipes -------------------------------------------------------------------

def test_status_shows_records_read_beside_records_stored(demo_db: str) -> None:
    result = invoke("status", "--database-url", demo_db)
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "records read" in line)
    assert "stored" in header and "records written" not in result.stdout
    row = next(line for line in result.stdout.splitlines() if "wildberries/demo" in line and " orders " in line)
    assert "│ 300 " in row.replace("  ", " ") or re.search(r"│\s*300\s*│", row), row


def test_status_json_parses_and_carries_read_and_stored(demo_db: str) -> None:
    result = invoke("status", "--json", "--database-url", demo_db)
    assert result.exit_code == 0, result.output
    streams = json.loads(result.stdout)["streams"]
    keys = {"marketplace", "account", "stream", "state", "cursor_at", "last_success_at", "records_read",
            "stored", "quarantined", "last_error"}
    assert streams and all(set(s) == keys for s in streams)
    wb = {s["stream"]: s for s in streams if s["marketplace"] == "wildberries"}
    assert wb["orders"]["stored"] == 300 and wb["reviews"]["stored"] == 80
    assert all(s["records_read"] >= 0 and s["state"] == "ok" for s in streams)


def test_actions_json_is_the_outbox_without_params_or_context(demo_db: str) -> None:
    from loyalty.outbox import action_rows

    result = invoke("actions", "--json", "--database-url", demo_db)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    stored = {r["id"]: r for r in action_rows(open_db(demo_db), exclude_kind="ops_task")}
    assert document["mode"] == "dry-run" and {a["id"] for a in document["actions"]} == set(stored)
    for a in document["actions"]:
        assert "params" not in a and "context" not in a  # a promo code's params name the member
        row = stored[a["id"]]
        assert (a["key"], a["status"], a["text"], Decimal(a["cost"])) == (row["key"], row["status"], row["text"],
                                                                           Decimal(row["cost"]))


def test_tasks_json_lists_each_open_task_with_its_steps(demo_db: str, tmp_path: Path) -> None:
    import shutil

    from connectors.wildberries.capabilities import WILDBERRIES_CAPABILITIES
    from loyalty.action_settings import ActionSettings
    from loyalty.actions import Action, Kind
    from loyalty.outbox import propose

    copy = tmp_path / "tasks.db"
    shutil.copy(demo_db.removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    now = datetime.now(UTC)
    steps = ["Open the cabinet.", "Enrol SKU 245336514 in «Баллы за отзывы»."]
    propose(open_db(url), [Action(kind=Kind.OPS_TASK, marketplace="wildberries", account="demo", key="task:json",
                                  target="245336514", created_at=now, params={"steps": steps}, title="enrol a SKU")],
            {"wildberries": WILDBERRIES_CAPABILITIES}, ActionSettings(), mode="dry-run", now=now)
    result = invoke("tasks", "--json", "--database-url", url)
    assert result.exit_code == 0, result.output
    tasks = {t["title"]: t for t in json.loads(result.stdout)["tasks"]}
    assert tasks["enrol a SKU"]["steps"] == steps and tasks["enrol a SKU"]["status"] == "open"
    assert all(t["status"] == "open" for t in tasks.values())


def test_members_json_gives_each_member_with_exact_money(demo_db: str) -> None:
    result = invoke("members", "--json", "--database-url", demo_db)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    members = document["members"]
    table = invoke("members", "--database-url", demo_db)
    assert f"{len(members)} member(s)" in table.stdout
    assert members and all(set(m) == {"marketplace", "account", "buyer_key", "orders", "spend", "pending",
                                      "available", "debt", "tier", "segment"} for m in members)
    assert all(Decimal(m["spend"]) >= 0 and m["orders"] >= 1 for m in members)  # money as exact decimal strings


def test_piped_tables_keep_a_40_character_id_whole(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.table import Table

    from app.output import stdout_console

    order_id = "WB-7513432034713632943-1-0-abcdefghijklm"
    assert len(order_id) == 40
    table = Table()
    for name in ("marketplace", "account", "order", "status", "created", "total", "buyer", "note"):
        table.add_column(name, overflow="fold")
    table.add_row("wildberries", "main-cabinet", order_id, "delivered", "2026-01-02 10:00:00 UTC", "1234.00",
                  "—", "a fairly long note that would push the table past eighty columns")
    stdout_console().print(table)
    assert order_id in capsys.readouterr().out


def test_flags_render_as_flags_and_take_no_value() -> None:
    help_text = invoke("sync", "--help").stdout
    for flag in ("--once", "--quiet", "--verbose"):
        row = next(line for line in help_text.splitlines() if flag in line)
        assert "<bool>" not in row, row
    result = invoke("sync", "--once", "true")
    assert result.exit_code == 2 and "unexpected extra argument" in result.output


def test_no_help_page_shows_a_type_beside_a_flag() -> None:
    from app.cli import app as cli_app

    commands = sorted(typer.main.get_command(cli_app).commands)  # type: ignore[attr-defined]
    for words in ([], *([c] for c in commands)):
        page = invoke(*words, "--help")
        assert page.exit_code == 0, (words, page.output)
        assert "<bool>" not in page.stdout, (words, [ln for ln in page.stdout.splitlines() if "<bool>" in ln])
