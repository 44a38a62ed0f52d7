"""The fault harness (issue 7): every account of every platform synced through misbehaving emulators.

Four seller cabinets — Wildberries, two on Ozon, Yandex Market — each with its own emulator behind
one `HostRouter` per platform, are synced by `app.wiring.App` in repeated `sync_once` rounds until
no stream is left to retry. The emulators answer 5xx to about 20 % of requests, time out, send
429 storms (Yandex Market: 420), cut bodies off, add unknown fields to every object, leave out
optional fields, give one record of some pages a field of the wrong type (that record stays
broken), and the second Ozon cabinet's key expires partway through. The same cabinets synced
without faults are the reference the result is compared with.

Waits cost no time: connectors and emulators share a `FakeTime`, so the platforms' real limits
stay on and each 429/420 is honoured in fake seconds; only the timeouts take real time.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.config import AppConfig, AppSettings, DatabaseSettings, MarketplaceAccount
from app.export import export_rows
from app.wiring import App
from connectors.base import Connector
from connectors.emulation import Fault
from connectors.ozon import OzonConnector
from connectors.ozon import emulator as ozon_emulator
from connectors.ozon.settings import OzonAccountSettings
from connectors.testing import FakeTime, HostRouter
from connectors.wildberries import emulator as wb_emulator
from connectors.wildberries.connector import WildberriesConnector
from connectors.wildberries.settings import PRODUCTION_HOSTS as WB_HOSTS
from connectors.wildberries.settings import WildberriesAccountSettings
from connectors.yandex_market import YandexMarketConnector
from connectors.yandex_market import emulator as ym_emulator
from connectors.yandex_market.settings import YandexMarketAccountSettings
from store import Store
from sync.runner import RunResult

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MAX_ROUNDS = 8
STORM = 4  # consecutive 429/420 answers: fewer than the client's 6 attempts, so one call rides it out
EXPIRES_AFTER = 150  # requests the second Ozon key serves before it expires: past its FBS postings


@dataclass(frozen=True)
class Cabinet:
    marketplace: str
    name: str
    seed: int
    expires: bool = False

    @property
    def host(self) -> str:
        return f"{self.marketplace.replace('_', '-')}-{self.name}.emulator"

    @property
    def token(self) -> str:
        return f"harness-{self.marketplace}-{self.name}-token-5c2e"

    @property
    def token_env(self) -> str:
        return f"LOYALSYNC_{self.marketplace.upper()}_{self.name.upper()}_TOKEN"

    @property
    def key(self) -> tuple[str, str]:
        return self.marketplace, self.name


CABINETS = (
    Cabinet("wildberries", "main", seed=21),
    Cabinet("ozon", "main", seed=22),
    Cabinet("ozon", "second", seed=23, expires=True),
    Cabinet("yandex_market", "main", seed=24),
)
EXPIRED = CABINETS[2]
BUSINESS_ID = 4242
# Each list endpoint -> the stream it feeds.
STREAM_OF_PATH = {
    "wildberries": {"/api/v3/orders": "orders", "/api/v1/supplier/orders": "orders_statistics",
                    "/api/v1/feedbacks": "reviews"},
    "ozon": {"/v4/posting/fbs/list": "orders_fbs", "/v3/posting/fbo/list": "orders_fbo",
             "/v2/review/list": "reviews"},
    "yandex_market": {f"/v1/businesses/{BUSINESS_ID}/orders": "orders",
                      f"/v2/businesses/{BUSINESS_ID}/goods-feedback": "reviews"},
}
# Further list endpoints a stream pages through, which a fault on the stream's prefix also hits:
# WB reviews read the archive too (GET /api/v1/feedbacks/archive).
ALSO_PAGED = {"wildberries": {"/api/v1/feedbacks/archive": "reviews"}}


def stream_of(marketplace: str, path: str) -> str | None:
    """The stream a list endpoint feeds, or None."""
    return STREAM_OF_PATH[marketplace].get(path) or ALSO_PAGED.get(marketplace, {}).get(path)


# The first page of each platform's orders and reviews: where the rate-limit storms hit.
STORM_PATHS = {"wildberries": ("/api/v3/orders", "/api/v1/feedbacks"),
               "ozon": ("/v4/posting/fbs/list", "/v2/review/list"),
               "yandex_market": (f"/v1/businesses/{BUSINESS_ID}/orders",
                                 f"/v2/businesses/{BUSINESS_ID}/goods-feedback")}


def faults(cab: Cabinet) -> tuple[Fault, ...]:
    """The whole menu, in the order the emulator consults it (one request fault per request)."""
    storm_orders, storm_reviews = STORM_PATHS[cab.marketplace]
    request = [
        Fault(storm_orders, "rate_limit", times=STORM, after=1, retry_after=3),
        Fault(storm_reviews, "rate_limit", times=STORM, retry_after=2),
        Fault("/", "timeout", times=2, probability=0.15, delay=5.0),
        Fault("/", "http_500", times=None, probability=0.1),
        Fault("/", "http_503", times=None, probability=0.1),
    ]
    if not cab.expires:
        # A cut-off body with a broken record in it would leave that record unseen once the key
        # is gone: the expiring cabinet gets no truncation (its record bookkeeping stays exact).
        request.insert(2, Fault("/", "truncated", times=3, probability=0.1))
    broken = [Fault(path, "wrong_type", times=2, probability=0.5) for path in STREAM_OF_PATH[cab.marketplace]]
    if cab.expires:
        # Reviews attach comments before a page is handed on: a record broken on a page lost to
        # the expiry in between would never reach the runner. Postings pages go straight on.
        broken = [f for f in broken if "review" not in f.path_prefix]
        request.insert(0, Fault("/", "expired_token", times=None, after=EXPIRES_AFTER))
    return (*request, Fault("/", "schema_drift", times=None), *broken)


def emulator(cab: Cabinet, time: FakeTime, *, faulty: bool):
    common = dict(seed=cab.seed, orders=150, reviews=60, now=NOW, clock=lambda: NOW, token=cab.token,
                  monotonic=time.monotonic, faults=faults(cab) if faulty else ())
    if cab.marketplace == "wildberries":
        return wb_emulator.create_app(wb_emulator.EmulatorConfig(statistics_page_size=60, **common))
    if cab.marketplace == "ozon":
        return ozon_emulator.create_app(ozon_emulator.EmulatorConfig(client_id=str(7000 + cab.seed), **common))
    return ym_emulator.create_app(ym_emulator.EmulatorConfig(business_id=BUSINESS_ID, **common))


def account(cab: Cabinet) -> MarketplaceAccount:
    base, common = f"http://{cab.host}", dict(name=cab.name, token_env=cab.token_env, token=SecretStr(cab.token),
                                              request_timeout_seconds=1.0)
    if cab.marketplace == "wildberries":
        settings: Any = WildberriesAccountSettings(base_urls=dict.fromkeys(WB_HOSTS, base), orders_page_size=40,
                                                   feedbacks_page_size=25, **common)
    elif cab.marketplace == "ozon":
        settings = OzonAccountSettings(client_id=str(7000 + cab.seed), base_urls={"api": base},
                                       postings_page_size=30, reviews_page_size=20, **common)
    else:
        settings = YandexMarketAccountSettings(business_id=BUSINESS_ID, base_urls={"api": base},
                                               orders_page_size=20, feedbacks_page_size=20, **common)
    return MarketplaceAccount(cab.marketplace, settings)


def on_fake_time(cls: type[Connector], time: FakeTime) -> type[Connector]:
    """The connector as the registry has it, pacing and backing off on `time` instead of the wall clock."""

    class Paced(cls):  # type: ignore[valid-type, misc]
        def __init__(self, account_settings: Any, **kwargs: Any):
            super().__init__(account_settings, clock=time.monotonic, sleep=time.sleep, **kwargs)

    return Paced


@dataclass
class Run:
    store: Store
    apps: dict[tuple[str, str], Any]
    rounds: list[list[RunResult]]
    transport_errors: int


async def sync_all(url: str, *, faulty: bool) -> Run:
    time = FakeTime()
    apps = {cab.key: emulator(cab, time, faulty=faulty) for cab in CABINETS}
    transports = {mp: HostRouter({c.host: apps[c.key] for c in CABINETS if c.marketplace == mp})
                  for mp in STREAM_OF_PATH}
    classes = {"wildberries": WildberriesConnector, "ozon": OzonConnector, "yandex_market": YandexMarketConnector}
    config = AppConfig(settings=AppSettings(database=DatabaseSettings(url=url)),
                       accounts=tuple(account(c) for c in CABINETS), config_path=Path("(fault harness)"))
    application = App(config, transports=transports, clock=lambda: NOW,
                      connectors={mp: on_fake_time(cls, time) for mp, cls in classes.items()})
    rounds: list[list[RunResult]] = []
    async with application:
        jobs = application.jobs()
        for _ in range(MAX_ROUNDS):
            results = await application.sync_once(jobs)
            rounds.append(results)
            again = {r.key for r in results if r.state == "deferred"}
            jobs = [j for j in jobs if (j.account.marketplace, j.account.settings.name, j.stream) in
                    {(k.marketplace, k.account, k.stream) for k in again}]
            if not jobs:
                break
        errors = sum(application.connector(a).client.http.stats.transport_errors for a in application.accounts())
    return Run(application.store, apps, rounds, errors)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    where = tmp_path_factory.mktemp("fault-harness")
    reference = await sync_all(f"sqlite:///{where / 'reference.db'}", faulty=False)
    faulty = await sync_all(f"sqlite:///{where / 'faulty.db'}", faulty=True)
    return {"reference": reference, "faulty": faulty, "dir": where}  # type: ignore[dict-item]


def final_states(run: Run) -> dict[tuple[str, str, str], str]:
    return {(r["marketplace"], r["account"], r["stream"]): r["state"] for r in run.store.cursors()}


def by_key(store: Store, kind: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    ident = "order_id" if kind == "orders" else "review_id"
    return {(r["marketplace"], r["account"], r[ident]): r for r in export_rows(store, kind)}


def broken_records(run: Run) -> dict[tuple[str, str, str, str], str]:
    """(marketplace, account, stream, record key) -> the field the emulator gave a wrong type."""
    out = {}
    for (mp, acct), app in run.apps.items():
        for (path, key), field_name in app.state.breakage.wrong_type.items():
            out[(mp, acct, stream_of(mp, path), key)] = field_name
    return out


def quarantined(run: Run) -> dict[tuple[str, str, str, str], set[str]]:
    out: dict[tuple[str, str, str, str], set[str]] = {}
    for q in run.store.quarantine():
        out.setdefault((q["marketplace"], q["account"], q["stream"], q["record_key"]), set()).add(q["reason"])
    return out


# -- (a) the daemon finishes --------------------------------------------------------------------------

async def test_the_reference_run_is_clean_and_complete(runs):
    ref = runs["reference"]
    assert len(ref.rounds) == 1 and all(r.ok for r in ref.rounds[0]), [(r.key, r.error) for r in ref.rounds[0]]
    assert not ref.store.quarantine()
    counts = Counter((r["marketplace"], r["account"]) for r in export_rows(ref.store, "orders"))
    assert all(counts[c.key] >= 100 for c in CABINETS), counts


async def test_the_faulty_run_finishes_within_bounded_rounds_having_met_every_fault(runs):
    run = runs["faulty"]
    assert len(run.rounds) < MAX_ROUNDS, [(r.key, r.state, r.error) for r in run.rounds[-1]]
    assert not [r for r in run.rounds[-1] if r.state == "deferred"]
    expired_stats = run.apps[EXPIRED.key].state.stats.statuses
    assert expired_stats[401] > 0 and expired_stats[200] > 100  # it expired partway, not at once
    for cab in CABINETS:
        if cab.expires:
            continue  # once its key is gone, it gets 401 before any other fault is considered
        app = run.apps[cab.key]
        plan, stats = app.state.emulator.faults, app.state.stats
        # Every counted fault used all its turns: each storm, truncation and timeout was served.
        spent = {f.kind for f, left in zip(plan.faults, plan.left, strict=True) if left == 0}
        unspent = [(f.kind, f.path_prefix, left) for f, left in zip(plan.faults, plan.left, strict=True)
                   if left not in (0, None)]
        assert not unspent, (cab, unspent)
        assert {"rate_limit", "timeout"} <= spent
        statuses = stats.statuses
        limited = 420 if cab.marketplace == "yandex_market" else 429
        assert statuses[limited] >= 2 * STORM, (cab, statuses)
        assert cab.marketplace != "yandex_market" or statuses[429] == 0  # Market speaks 420 only
        served = sum(statuses.values())
        fivexx = statuses[500] + statuses[503]
        assert 0.1 * served < fivexx < 0.3 * served, (cab, fivexx, served)
    assert run.transport_errors >= 2 * len(CABINETS)  # the timeouts reached the client as timeouts


# -- (b) exactly the broken records are quarantined, everything else equals the reference --------------

async def test_exactly_the_records_the_emulator_broke_are_quarantined_each_with_its_field(runs):
    run = runs["faulty"]
    broken, held = broken_records(run), quarantined(run)
    assert set(held) == set(broken)
    assert len(broken) >= 10 and {k[0] for k in broken} == set(STREAM_OF_PATH)
    for key, reasons in held.items():
        assert all(broken[key] in reason for reason in reasons), (key, broken[key], reasons)
    # The key's wrong type is what the reason is about, not a side effect: e.g. a number as text.
    assert any("expected" in reason for reasons in held.values() for reason in reasons)


def _expected_absent(ref_orders, broken) -> set[tuple[str, str, str]]:
    """Orders the store cannot hold: every source of theirs sent them broken.

    Wildberries reports an FBS order through two APIs (`orders`, source_rank 2, and
    `orders_statistics`, which sees every scheme): such an order is lost only if both sent it
    broken. Elsewhere an order has one stream.
    """
    bad: dict[tuple[str, str, str], set[str]] = {}
    for mp, acct, stream, key in broken:
        bad.setdefault((mp, acct, key), set()).add(stream)
    absent = set()
    for key, streams in bad.items():
        if key[0] == "wildberries" and key in ref_orders:
            needs = {"orders_statistics"} | ({"orders"} if ref_orders[key]["source_rank"] == 2 else set())
            if needs <= streams:
                absent.add(key)
        else:
            absent.add(key)
    return absent


# What only one of WB's two order APIs knows (the Marketplace API's FBS status and its change time,
# the warehouse type); an order one of them sent broken carries the other's view of these.
WB_SOURCE_FIELDS = ("status", "platform_status", "updated_at", "fulfilment")


class Buyers:
    """Buyer keys are salted per installation: two stores agree on them only up to renaming, which
    must then be one-to-one (the same buyer keyed alike on every order, different buyers apart)."""

    def __init__(self) -> None:
        self.rename: dict[str, str] = {}

    def same(self, got: dict[str, Any], want: dict[str, Any], skip: tuple[str, ...] = ()) -> bool:
        mine, theirs = got.get("buyer_key"), want.get("buyer_key")
        if (mine is None) != (theirs is None) or (mine and self.rename.setdefault(mine, theirs) != theirs):
            return False
        skip = (*skip, "buyer_key")
        return {f: v for f, v in got.items() if f not in skip} == {f: v for f, v in want.items() if f not in skip}

    @property
    def one_to_one(self) -> bool:
        return len(set(self.rename.values())) == len(self.rename)


async def test_every_other_record_is_stored_exactly_as_without_faults(runs):
    ref, run = runs["reference"], runs["faulty"]
    broken, buyers = broken_records(run), Buyers()
    ref_rows = {(r["marketplace"], r["account"], r["order_id"]): r for r in ref.store.iter_orders()}
    for kind in ("orders", "reviews"):
        want, got = by_key(ref.store, kind), by_key(run.store, kind)
        if kind == "orders":
            absent = _expected_absent(ref_rows, broken)
        else:
            absent = {(mp, acct, key) for mp, acct, stream, key in broken if stream == "reviews"}
        for key in list(want):
            if key[:2] == EXPIRED.key:
                continue  # checked below: the expired cabinet has only what it read before
            # WB reviews: the archive has no date filter, so every window reads it newest first and
            # a review may be read whole by one window before a later read breaks it. The whole
            # copy then stays, and must equal the reference's.
            read_whole_first = kind == "reviews" and key[0] == "wildberries" and key in got
            if key in absent and not read_whole_first:
                assert key not in got, key
                continue
            assert key in got, (kind, key)
            one_source_broken = kind == "orders" and key[0] == "wildberries" and any(
                (key[0], key[1], s, key[2]) in broken for s in ("orders", "orders_statistics"))
            assert buyers.same(got[key], want[key], WB_SOURCE_FIELDS if one_source_broken else ()), key
        # Nothing the reference does not have; what the expired cabinet stored before equals it too.
        assert set(got) <= set(want)
        expired = {k: v for k, v in got.items() if k[:2] == EXPIRED.key}
        assert all(buyers.same(v, want[k]) for k, v in expired.items())
        assert kind == "reviews" or expired, "the expiring cabinet stored nothing before its key expired"
    assert buyers.rename and buyers.one_to_one


# -- (c) unknown fields and missing optional ones are not a reason to quarantine ------------------------

async def test_unknown_and_missing_optional_fields_do_not_cause_quarantine(runs):
    run = runs["faulty"]
    held = quarantined(run)
    for cab in CABINETS:
        breakage = run.apps[cab.key].state.breakage
        assert breakage.unknown_fields > 100, cab
        drifted = {(cab.marketplace, cab.name, stream_of(cab.marketplace, path), key)
                   for path, key in breakage.dropped}
        assert len(drifted) > 50, cab
        # A drifted record is quarantined only if it was also the one given a wrong type.
        assert not {k for k in drifted if k in held} - set(broken_records(run)), cab
    assert not [r for reasons in held.values() for r in reasons if "xDrift" in r]
    # Every order and review of the reference came with drift in the faulty run, and is stored.
    stored = by_key(run.store, "orders")
    assert sum(1 for k in stored if k[:2] != EXPIRED.key) >= 300


# -- (d) the expired token is reported clearly ---------------------------------------------------------

def status_output(url: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    config = tmp / "loyalsync.toml"
    config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    monkeypatch.setenv("COLUMNS", "250")  # a wide terminal: a table cell may fold, the caption line not
    result = CliRunner().invoke(cli_app, ["status", "--config", str(config)])
    assert result.exit_code == 0, (result.output, result.exc_info)
    assert result.exception is None
    return result.output


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """`status` sets logging up on CliRunner's stream, closed afterwards: undo it."""
    names = ("", "loyalsync", "httpx", "httpcore", "alembic")
    saved = [(lg, lg.level, list(lg.handlers), lg.propagate) for lg in map(logging.getLogger, names)]
    yield
    for lg, level, handlers, propagate in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate


async def test_status_names_the_expired_token_and_its_variable_on_one_line(runs, monkeypatch, restored_logging):
    run = runs["faulty"]
    states = final_states(run)
    mine = {k[2]: s for k, s in states.items() if k[:2] == EXPIRED.key}
    # Its FBS postings were read before the key expired; what came after stopped with the 401.
    assert mine == {"orders_fbs": "ok", "orders_fbo": "error", "reviews": "error"}, mine
    for r in run.rounds[-1]:
        if (r.key.marketplace, r.key.account) == EXPIRED.key and r.state == "error":
            assert "Api-key is deactivated" in r.error and "HTTP 401" in r.error
    url = f"sqlite:///{runs['dir'] / 'faulty.db'}"
    output = status_output(url, runs["dir"], monkeypatch)
    assert "Traceback" not in output
    lines = [ln for ln in output.splitlines() if f"${EXPIRED.token_env}" in ln]
    # The summary line under the table (the table's own row names the variable too, now that piped
    # tables are printed whole).
    line = next(ln for ln in lines if "ozon/second: token refused" in ln)
    assert re.search(r"ozon/second: token refused or expired — put a valid token in \$" + EXPIRED.token_env, line)
    assert "Api-key is deactivated" in line and "HTTP 401" in line
    assert all(s in line for s, state in mine.items() if state == "error")
    assert EXPIRED.token not in output and not any(c.token in output for c in CABINETS)
    # Only the expired cabinet is named as a token problem.
    assert not [ln for ln in output.splitlines() if "token refused" in ln and "ozon/second" not in ln]


# -- (e) the other cabinets kept running ---------------------------------------------------------------

async def test_every_other_cabinet_synced_every_stream_to_ok(runs):
    run = runs["faulty"]
    states = final_states(run)
    others = {k: s for k, s in states.items() if k[:2] != EXPIRED.key}
    expected_streams = sum(len(STREAM_OF_PATH[c.marketplace]) for c in CABINETS if not c.expires)
    assert len(others) == expected_streams and set(others.values()) == {"ok"}, others
    last_success = {(r["marketplace"], r["account"], r["stream"]): r["last_success_at"] for r in run.store.cursors()}
    assert all(last_success[k] is not None for k in others)
