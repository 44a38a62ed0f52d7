"""The bad-input suite (issue 7): malformed config files as ops write them, through the real CLI.

Each case writes a global file and marketplace files into a temporary folder and runs
`loyalsync check-config` (a representative subset also `run` and `sync --once`, the daemon's own
start path). Each must exit 2 with exactly the expected `file: key: problem` lines — the file, the
dotted key and a phrase naming this particular problem — and no traceback, no secret echoed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

import app.cli as cli
from app.cli import app
from connectors.errors import ConfigError
from connectors.registry import available_connectors

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".venv" / "bin" / "loyalsync"  # the console script: `app.cli:main`
TOKEN_ENV = "LOYALSYNC_BADCFG_WB_TOKEN"
TOKEN = "tok-BADCFG-9f3e1d-SECRET-77aa"  # the account's token: never in any output
DB_PASSWORD = "hunter2-BADCFG-pw"
# A password with an unencoded "@": SQLAlchemy would read its tail as the host and print it.
AT_PASSWORD = "pw-BADCFG@AT-TAIL-BADCFG"
SECRETS = (TOKEN, DB_PASSWORD, "AT-TAIL-BADCFG", "pw-BADCFG")
STORE = "badcfg-store.db"  # the store every case names: never created while the config is bad

# Paths as the problem lines show them: relative to the working directory (tmp_path).
GLOBAL = "cfg/loyalsync.toml"
ENV = "environment"  # env-override problems name the variable instead of a file
# Every installed platform, as the messages list them (a generated connector joins the three).
KNOWN = ", ".join(sorted(available_connectors()))


def platform(name: str) -> str:
    return f"cfg/marketplaces/{name}.toml"


WB = platform("wildberries")
# Variables that would change what the files say; each case starts without them.
_CLEARED = ("LOYALSYNC_CONFIG", "LOYALSYNC_DATABASE_URL", "LOYALSYNC_MODE", "LOYALSYNC_SERVICE_HOST",
            "LOYALSYNC_SERVICE_PORT", "LOYALSYNC_REPLICA")

G_OK = f'[database]\nurl = "sqlite:///{STORE}"\n'
ACCOUNT = f'[[accounts]]\nname = "main"\ntoken_env = "{TOKEN_ENV}"\n'
WB_OK = {"wildberries": ACCOUNT}
DIR = object()  # write a directory where the file belongs


@dataclass(frozen=True)
class Case:
    name: str
    global_text: str | bytes | object | None  # None: no global file at all
    marketplaces: dict[str, str | bytes]
    env: dict[str, str | None]
    # (file, dotted key or None for a whole-file problem, phrase the problem must contain)
    expect: list[tuple[str, str | None, str]]
    daemon: bool = False  # also run through `run` and `sync --once`
    extra_files: dict[str, str] = field(default_factory=dict)


def rate(group: str, requests: int, period: int, burst: int) -> str:
    return (f"[accounts.rate_limits.{group}]\nrequests = {requests}\nperiod_seconds = {period}\n"
            f"burst = {burst}\n")


TIERS_DOWN = """
[loyalty]
enabled = true
[loyalty.tier_policy]
basis = "spend"
[[loyalty.tiers]]
name = "silver"
min_spend = 10000
earn_rate = 0.05
[[loyalty.tiers]]
name = "gold"
min_spend = 5000
earn_rate = 0.07
"""

RATING_OFFER = """
[[loyalty.offers]]
name = "five-star-bonus"
starts = 2026-11-01T00:00:00+03:00
ends = 2026-11-30T00:00:00+03:00
bonus_points = 100
conditions = [{field = "rating", op = "ge", value = 5}]
"""

CASES = [
    # -- the files themselves ------------------------------------------------------------------
    Case("toml-syntax-global", '[database\nurl = "sqlite:///x.db"\n', WB_OK, {},
         [(GLOBAL, "line 1, column 10", "invalid TOML: expected ']' at the end of a table declaration")],
         daemon=True),
    Case("toml-syntax-platform", G_OK, {"wildberries": '[[accounts]\nname = "main"\n'}, {},
         [(WB, "line 1, column 11", "invalid TOML: expected ']]'")]),
    Case("global-not-utf8", '[daemon]\nmode = "dry-run"  # режим\n'.encode("cp1251"), WB_OK, {},
         [(GLOBAL, None, "is not UTF-8 text")], daemon=True),
    Case("platform-not-utf8", G_OK, {"wildberries": ("# основной кабинет\n" + ACCOUNT).encode("cp1251")}, {},
         [(WB, None, "is not UTF-8 text")]),
    Case("config-path-missing", None, WB_OK, {}, [(GLOBAL, None, "file not found")], daemon=True),
    Case("config-path-is-a-directory", DIR, WB_OK, {}, [(GLOBAL, None, "cannot read the file: Is a directory")]),
    Case("marketplaces-dir-missing", G_OK + '[daemon]\nmarketplaces_dir = "platforms"\n', WB_OK, {},
         [(GLOBAL, "daemon.marketplaces_dir", "directory cfg/platforms does not exist")], daemon=True),
    Case("marketplaces-dir-is-a-file", G_OK + '[daemon]\nmarketplaces_dir = "notes.txt"\n', WB_OK, {},
         [(GLOBAL, "daemon.marketplaces_dir", "cfg/notes.txt is a file, not a directory")],
         extra_files={"notes.txt": "accounts live elsewhere\n"}),
    Case("platform-file-is-a-directory", G_OK, {"wildberries": DIR}, {},  # type: ignore[dict-item]
         [(WB, None, "cannot read the file: Is a directory")]),
    # -- keys and types ------------------------------------------------------------------------
    Case("unknown-top-level-key", f'[databse]\nurl = "sqlite:///{STORE}"\n', WB_OK, {},
         [(GLOBAL, "databse", "unknown key; allowed: database, daemon, schedule, loyalty, actions")],
         daemon=True),
    Case("unknown-nested-key", G_OK + "[schedule]\nmax_jobs = 3\n", WB_OK, {},
         [(GLOBAL, "schedule.max_jobs", "unknown key; allowed: default_poll_interval, max_concurrent_jobs")]),
    Case("string-for-int", G_OK + '[schedule]\nmax_concurrent_jobs = "eight"\n', WB_OK, {},
         [(GLOBAL, "schedule.max_concurrent_jobs", "must be a valid integer")]),
    Case("array-for-table", f'database = ["sqlite:///{STORE}"]\n', WB_OK, {},
         [(GLOBAL, "database", "must be a table")]),
    Case("table-for-array", G_OK + "[loyalty]\ntiers = {gold = 5000}\n", WB_OK, {},
         [(GLOBAL, "loyalty.tiers", "must be an array")]),
    Case("array-for-account-table", G_OK, {"wildberries": ACCOUNT + 'streams = ["orders"]\n'}, {},
         [(WB, "accounts[0].streams", "must be a table")]),
    # -- durations -----------------------------------------------------------------------------
    Case("duration-in-words", G_OK + '[schedule]\ndefault_poll_interval = "5 minutes"\n', WB_OK, {},
         [(GLOBAL, "schedule.default_poll_interval", "'5 minutes' is not a duration; use e.g. \"90s\"")],
         daemon=True),
    Case("duration-negative", G_OK + '[schedule]\nloyalty_interval = "-5m"\n', WB_OK, {},
         [(GLOBAL, "schedule.loyalty_interval", "must not be negative")]),
    Case("duration-zero", G_OK + '[schedule]\nactions_interval = "0s"\n', WB_OK, {},
         [(GLOBAL, "schedule.actions_interval", "must be longer than zero")]),
    Case("duration-overflows", G_OK + '[schedule]\nmembers_interval = "99999999999d"\n', WB_OK, {},
         [(GLOBAL, "schedule.members_interval", "must not be longer than 36500d")], daemon=True),
    Case("stream-duration-zero", G_OK, {"wildberries": ACCOUNT + '[accounts.streams.orders]\npoll_interval = "0s"\n'},
         {}, [(WB, "accounts[0].streams.orders.poll_interval", "must be longer than zero")]),
    # -- global values -------------------------------------------------------------------------
    Case("database-url-scheme", f'[database]\nurl = "mysql://loyal:{DB_PASSWORD}@db/loyal"\n', WB_OK, {},
         [(GLOBAL, "database.url", "unsupported database URL scheme 'mysql'; use sqlite:///")], daemon=True),
    Case("database-url-port-not-a-number", f'[database]\nurl = "postgresql://loyal:{DB_PASSWORD}@db:54x2/loyal"\n',
         WB_OK, {}, [(GLOBAL, "database.url", "cannot be parsed: the port is not a number")], daemon=True),
    Case("database-url-password-with-at", f'[database]\nurl = "postgresql://loyal:{AT_PASSWORD}@db/loyal"\n',
         WB_OK, {}, [(GLOBAL, "database.url", "percent-encode it as %40")], daemon=True),
    Case("service-host-does-not-resolve", G_OK + '[service]\nhost = "no-such-host.invalid"\n', WB_OK, {},
         [(GLOBAL, "service.host", "'no-such-host.invalid' does not resolve; set [service] host")]),
    Case("no-accounts-at-all", G_OK, {}, {},
         [("cfg/marketplaces", "accounts", "no account in any <platform>.toml; copy "
           "config/marketplaces/examples/")]),
    Case("wb-window-beyond-30-days", G_OK, {"wildberries": ACCOUNT + '[accounts.streams.orders]\nwindow = "90d"\n'},
         {}, [(WB, "accounts[0].streams.orders.window", "90 days is longer than wildberries allows in one "
               "request (30 days); set 30d or less")], daemon=True),
    Case("port-out-of-range", G_OK + "[service]\nport = 70000\n", WB_OK, {},
         [(GLOBAL, "service.port", "must be less than or equal to 65535 (got 70000)")]),
    Case("max-concurrent-jobs-zero", G_OK + "[schedule]\nmax_concurrent_jobs = 0\n", WB_OK, {},
         [(GLOBAL, "schedule.max_concurrent_jobs", "must be greater than 0 (got 0)")]),
    Case("jitter-negative", G_OK + "[schedule]\njitter_seconds = -1\n", WB_OK, {},
         [(GLOBAL, "schedule.jitter_seconds", "must be greater than or equal to 0 (got -1)")]),
    Case("jitter-infinite", G_OK + "[schedule]\njitter_seconds = inf\n", WB_OK, {},
         [(GLOBAL, "schedule.jitter_seconds", "must be a finite number")]),
    Case("lease-too-short", G_OK + "[cluster]\nlease_seconds = 1\n", WB_OK, {},
         [(GLOBAL, "cluster.lease_seconds", "must be greater than or equal to 2 (got 1)")]),
    Case("unknown-mode", G_OK + '[daemon]\nmode = "production"\n', WB_OK, {},
         [(GLOBAL, "daemon.mode", "must be 'dry-run' or 'live' (got 'production')")], daemon=True),
    Case("unknown-mode-from-env", G_OK, WB_OK, {"LOYALSYNC_MODE": "prod"},
         [(ENV, "LOYALSYNC_MODE", "must be 'dry-run' or 'live' (got 'prod')")]),
    # -- marketplace files ---------------------------------------------------------------------
    Case("misspelt-platform-file", G_OK, {"wildberies": ACCOUNT}, {},
         [(platform("wildberies"), None, f"unknown marketplace 'wildberies'; known: {KNOWN}")],
         daemon=True),
    Case("duplicate-account-names", G_OK, {"wildberries": ACCOUNT + ACCOUNT}, {},
         [(WB, "accounts[1].name", "duplicate account name 'main'; accounts[0] already uses it")]),
    Case("account-without-name", G_OK, {"wildberries": f'[[accounts]]\ntoken_env = "{TOKEN_ENV}"\n'}, {},
         [(WB, "accounts[0].name", "required key is missing")]),
    Case("account-name-with-space", G_OK, {"wildberries": ACCOUNT.replace('"main"', '"main shop"')}, {},
         [(WB, "accounts[0].name", "may use only letters, digits and _ . -")]),
    Case("token-variable-unset", G_OK, WB_OK, {TOKEN_ENV: None},
         [(WB, "accounts[0].token_env", f"environment variable {TOKEN_ENV} is not set; export it")], daemon=True),
    Case("token-variable-empty", G_OK, WB_OK, {TOKEN_ENV: "  "},
         [(WB, "accounts[0].token_env", f"environment variable {TOKEN_ENV} is empty")]),
    Case("token-inline", G_OK, {"wildberries": ACCOUNT + f'token = "{TOKEN}"\n'}, {},
         [(WB, "accounts[0].token", "tokens do not belong in config files")], daemon=True),
    Case("token-pasted-into-token-env", G_OK,
         {"wildberries": f'[[accounts]]\nname = "main"\ntoken_env = "{TOKEN}"\n'}, {},
         [(WB, "accounts[0].token_env", "not the token itself")]),
    Case("unknown-stream", G_OK, {"wildberries": ACCOUNT + "[accounts.streams.order]\nenabled = false\n"}, {},
         [(WB, "accounts[0].streams.order", "unknown stream 'order'; known: orders, orders_statistics, reviews")]),
    Case("rate-limit-requests-zero", G_OK, {"wildberries": ACCOUNT + rate("feedbacks", 0, 1, 6)}, {},
         [(WB, "accounts[0].rate_limits.feedbacks.requests", "must be greater than 0 (got 0)")]),
    Case("rate-limit-burst-negative", G_OK, {"wildberries": ACCOUNT + rate("feedbacks", 3, 1, -1)}, {},
         [(WB, "accounts[0].rate_limits.feedbacks.burst", "must be greater than 0 (got -1)")]),
    Case("base-url-without-scheme", G_OK,
         {"wildberries": ACCOUNT + '[accounts.base_urls]\nfeedbacks = "feedbacks-api.wildberries.ru"\n'}, {},
         [(WB, "accounts[0].base_urls.feedbacks", "must be an http:// or https:// URL")]),
    Case("bad-default-reported-once", G_OK, {"wildberries": "[defaults]\nrequest_timeout_seconds = 0\n"
                                             + ACCOUNT + ACCOUNT.replace('"main"', '"spare"')}, {},
         [(WB, "defaults.request_timeout_seconds", "must be greater than 0 (got 0)")]),
    Case("no-accounts-block", G_OK, {"wildberries": "[defaults]\nrequest_timeout_seconds = 20\n"}, {},
         [(WB, "accounts", "no [[accounts]] block; add one [[accounts]] block")], daemon=True),
    Case("empty-platform-file", G_OK, {"wildberries": ""}, {},
         [(WB, "accounts", "the file is empty; add one [[accounts]] block")]),
    Case("ozon-without-client-id", G_OK, {"ozon": ACCOUNT}, {},
         [(platform("ozon"), "accounts[0].client_id", "required key is missing")]),
    Case("yandex-business-id-text", G_OK, {"yandex_market": ACCOUNT + 'business_id = "my-shop"\n'}, {},
         [(platform("yandex_market"), "accounts[0].business_id", "must be a valid integer")]),
    # -- actions and loyalty -------------------------------------------------------------------
    Case("reply-template-names-buyer", G_OK + '[[actions.replies.templates]]\nratings = [5]\n'
         'text = "Thank you, {buyer}!"\n', WB_OK, {},
         [(GLOBAL, "actions.replies.templates[0].text",
           "unknown variable {buyer}: a reply may use only {product}, {brand}, {store}")]),
    Case("approval-not-auto-or-manual", G_OK + '[actions.approval]\nreply_to_review = "sometimes"\n', WB_OK, {},
         [(GLOBAL, "actions.approval.reply_to_review", "must be 'auto' or 'manual' (got 'sometimes')")]),
    Case("approval-for-ops-tasks", G_OK + '[actions.approval]\nops_task = "auto"\n', WB_OK, {},
         [(GLOBAL, "actions.approval.ops_task", "ops tasks are always for a person; remove this key")]),
    Case("approval-unknown-kind", G_OK + '[actions.approval]\nreplies = "auto"\n', WB_OK, {},
         [(GLOBAL, "actions.approval.replies", "unknown key; must be 'reply_to_review'")]),
    Case("monthly-budget-negative", G_OK + "[actions]\nmonthly_budget = -100\n", WB_OK, {},
         [(GLOBAL, "actions.monthly_budget", "must be greater than 0 (got -100)")]),
    Case("earn-rate-negative", G_OK + "[loyalty]\nearn_rate = -0.1\n", WB_OK, {},
         [(GLOBAL, "loyalty.earn_rate", "must be greater than or equal to 0 (got -0.1)")]),
    Case("tiers-not-increasing", G_OK + TIERS_DOWN, WB_OK, {},
         [(GLOBAL, "loyalty.tiers", "tiers must be listed from the lowest threshold up")]),
    Case("offer-on-review-rating", G_OK + RATING_OFFER, WB_OK, {},
         [(GLOBAL, "loyalty.offers[0].conditions[0].field", "'rating' is a review field")]),
    Case("loyalty-marketplace-typo", G_OK + '[loyalty.marketplaces.wildberies]\nreturn_window = "21d"\n', WB_OK, {},
         [(GLOBAL, "loyalty.marketplaces.wildberies", f"unknown marketplace 'wildberies'; known: {KNOWN}")]),
    # -- several problems: every one is listed -------------------------------------------------
    Case("two-problems-global", G_OK + "[service]\nport = 0\n[schedule]\nmax_concurrent_jobs = 0\n", WB_OK, {},
         [(GLOBAL, "schedule.max_concurrent_jobs", "must be greater than 0 (got 0)"),
          (GLOBAL, "service.port", "must be greater than or equal to 1 (got 0)")], daemon=True),
    Case("two-problems-platform", G_OK, {"wildberries": ACCOUNT + "[accounts.streams.review]\nenabled = false\n"
                                         + '[accounts.base_urls]\nmarketplace = "ftp://wb.example"\n'}, {},
         [(WB, "accounts[0].streams.review", "unknown stream 'review'"),
          (WB, "accounts[0].base_urls.marketplace", "must be an http:// or https:// URL")]),
]
DAEMON_CASES = [c for c in CASES if c.daemon]


def _write(root: Path, case: Case) -> None:
    cfg = root / "cfg"
    (cfg / "marketplaces").mkdir(parents=True)
    for name, text in case.extra_files.items():
        (cfg / name).write_text(text, encoding="utf-8")
    if case.global_text is DIR:
        (cfg / "loyalsync.toml").mkdir()
    elif isinstance(case.global_text, bytes):
        (cfg / "loyalsync.toml").write_bytes(case.global_text)
    elif isinstance(case.global_text, str):
        (cfg / "loyalsync.toml").write_text(case.global_text, encoding="utf-8")
    for name, text in case.marketplaces.items():
        path = cfg / "marketplaces" / f"{name}.toml"
        if text is DIR:
            path.mkdir()
        elif isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")


def _env(case: Case) -> dict[str, str | None]:
    return {**dict.fromkeys(_CLEARED), TOKEN_ENV: TOKEN, **case.env}


def _check(case: Case, exit_code: int, output: str, root: Path) -> None:
    """Exit 2, exactly the expected problem lines, no traceback, no secret, no store opened."""
    assert exit_code == 2, output
    assert "Traceback" not in output and "errors.pydantic.dev" not in output, output
    for secret in SECRETS:
        assert secret not in output, f"{case.name}: secret echoed:\n{output}"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    count = len(case.expect)
    assert lines[0] == f"{count} config problem{'' if count == 1 else 's'}:", output
    problems = lines[1:]
    assert len(problems) == count, output  # one message per problem: no echo, no follow-on noise
    for file, key, phrase in case.expect:
        start = f"{file}: {key}: " if key is not None else f"{file}: "
        hits = [p for p in problems if p.startswith(start) and phrase in p.removeprefix(start)]
        assert len(hits) == 1, f"{case.name}: no line `{start}...{phrase}...` in:\n{output}"
    assert not (root / STORE).exists(), "the store was opened although the config is wrong"


_LOGGERS = ("", "loyalsync", "httpx", "apscheduler", "alembic", "uvicorn")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # problem lines show cfg/... relative paths; the repo's config is out of reach
    saved = [(lg, lg.level, list(lg.handlers)) for lg in map(logging.getLogger, _LOGGERS)]
    yield
    for lg, level, handlers in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers


def _invoke(case: Case, root: Path, *command: str) -> None:
    _write(root, case)
    result = CliRunner().invoke(app, [*command, "--config", GLOBAL], env=_env(case))
    # An uncaught exception would be stored here (and be a traceback and exit 1 for real).
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    _check(case, result.exit_code, result.output, root)


def test_the_suite_covers_at_least_thirty_distinct_cases() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)
    assert len(DAEMON_CASES) >= 8


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_check_config(case: Case, tmp_path: Path) -> None:
    _invoke(case, tmp_path, "check-config")


@pytest.mark.parametrize("case", DAEMON_CASES, ids=[c.name for c in DAEMON_CASES])
@pytest.mark.parametrize("command", [("run",), ("sync", "--once")], ids=["run", "sync-once"])
def test_daemon_start_refuses_a_bad_config(case: Case, command: tuple[str, ...], tmp_path: Path) -> None:
    _invoke(case, tmp_path, *command)


def test_a_good_config_passes_so_the_cases_fail_for_their_own_reason(tmp_path: Path) -> None:
    """The baseline every case edits is itself valid: each failure above is the case's mistake."""
    good = Case("good", G_OK, {"wildberries": ACCOUNT}, {}, [])
    _write(tmp_path, good)
    result = CliRunner().invoke(app, ["check-config", "--config", GLOBAL], env=_env(good))
    assert result.exit_code == 0, result.output
    assert "config OK: cfg/loyalsync.toml, 1 account(s)" in result.output


# -- the console script's own exit-code mapping ---------------------------------------------------


def _main(case: Case, root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
          *command: str) -> tuple[int, str]:
    """Run `app.cli.main()`, the console script's entry, in-process."""
    _write(root, case)
    for var, value in _env(case).items():
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    monkeypatch.setattr(sys, "argv", ["loyalsync", *command, "--config", GLOBAL])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    captured = capsys.readouterr()
    return exited.value.code if isinstance(exited.value.code, int) else 1, captured.out + captured.err


@pytest.mark.parametrize("name", ["duplicate-account-names", "unknown-top-level-key", "toml-syntax-platform"])
def test_main_maps_a_bad_config_to_exit_2(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    case = next(c for c in CASES if c.name == name)
    code, output = _main(case, tmp_path, monkeypatch, capsys, "check-config")
    _check(case, code, output, tmp_path)


def test_main_turns_a_late_config_error_into_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A ConfigError raised after loading (e.g. while the daemon builds connectors) is no traceback."""
    line = f"{WB}: accounts[0]: connector refused the account"

    def late(*args: object, **kwargs: object) -> None:
        raise ConfigError([line])

    monkeypatch.setattr(cli, "load_or_exit", late)
    good = Case("late", G_OK, WB_OK, {}, [(WB, "accounts[0]", "connector refused the account")])
    code, output = _main(good, tmp_path, monkeypatch, capsys, "check-config")
    _check(good, code, output, tmp_path)


@pytest.mark.parametrize("name", ["token-inline", "duration-overflows", "no-accounts-block",
                                  "database-url-port-not-a-number", "database-url-password-with-at"])
def test_the_installed_script_exits_2_without_a_traceback(name: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == name)
    _write(tmp_path, case)
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update({k: v for k, v in _env(case).items() if v is not None})
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run([str(SCRIPT), "check-config", "--config", GLOBAL], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout == "", done.stdout  # problems go to stderr
    _check(case, done.returncode, done.stderr, tmp_path)
