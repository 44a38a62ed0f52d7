"""Crash harness: `loyalsync run` killed with SIGKILL at random moments must end exactly where an
uninterrupted run ends (DESIGN invariant 2), and every action it sends must land exactly once.

What one `crash_and_compare` does:

1. Builds the Wildberries, Ozon and Yandex Market emulators twice from the same seeds (one set for
   the crash run, one for the reference run), one emulator per account, with a PINNED data clock:
   the generated history ends at one moment shared by both sets and the emulators' "now" stays
   there, so both sets serve the same data for the whole test. All of them are served on loopback
   from one background thread of the test process, so their state (replies, vouchers, chat
   messages written) survives every kill of the daemon.
2. Writes one config per run (`write_config`): several accounts on the three platforms, live mode,
   every action kind approved automatically, 1-2 s polls, 2 s loyalty and actions jobs, no jitter,
   our own pacing lifted, `[cluster] lease_seconds = 3`.
3. Starts both runs at the same moment: `replicas` subprocesses of `loyalsync run` each, with a
   stable `LOYALSYNC_REPLICA` name and a service port of their own. The crash run has one replica
   at a time killed with SIGKILL after a seeded random delay (`random.Random(seed)`, 0.3-2.5 s
   after its process start for a quarter of the kills, after its "daemon started" for the rest)
   and restarted, `kills` times; the reference run is never touched. Running both
   side by side means that the wall clock the daemon's rules read (settle delay, return windows,
   chat windows, expiry) is the same for both: a rule crossing a boundary mid-test crosses it in both.
4. Lets both run until each is QUIESCENT (see `Observer`), then stops every replica with SIGTERM.
5. Compares `loyalsync export orders|reviews|ledger|actions --format jsonl` of both runs after
   `normalise` (which drops only what depends on wall time, row ids or the installation's salt),
   and checks on the emulators that every sent action landed exactly once and that the crash run's
   platform effects equal the reference run's.

The CI tests (`test_crash_harness.py`) run one replica on SQLite and three on PostgreSQL, 5 kills
each (keeping `./dev test` under six minutes; 12 with `LOYALSYNC_FULL=1`). A bigger run:

    LOYALSYNC_CRASH_KILLS=300 .venv/bin/python -m pytest -q -p no:cacheprovider \\
        tests/acceptance/test_crash_harness.py

`crash_and_compare(..., replicas=3, database_url=<postgresql URL>, reference_database_url=...)` runs
three replicas sharing one PostgreSQL store per run, killing one of them at random each time.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError

from app.export import export_rows
from connectors.testing.serving import served_all
from loyalty.action_settings import ChatSettings
from loyalty.outbox import POINTS_SHORT
from store import Store, connect
from tests.scale import FULL

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DROPPED",
    "KILLS_ENV",
    "AccountSpec",
    "CrashReport",
    "Observer",
    "Replica",
    "Run",
    "build_emulator",
    "crash_and_compare",
    "default_kills",
    "differences",
    "emulator_effects",
    "normalise",
    "served_all",
    "snapshot",
    "write_config",
]

LOYALSYNC = Path(sys.executable).parent / "loyalsync"  # the console script of this venv
KILLS_ENV = "LOYALSYNC_CRASH_KILLS"
KINDS = ("orders", "reviews", "ledger", "actions")
HISTORY_DAYS = 12  # every review stays inside the 14-day review lookback: each poll re-reads them all
PINNED_BEHIND = timedelta(hours=1)  # the data's "now" lies this far behind the wall clock at the start
KILL_DELAY = (0.3, 2.5)  # seconds after a replica's start
LEASE_SECONDS = 3  # [cluster] lease_seconds: short, so a killed replica's accounts move quickly
STOP_TIMEOUT = 10.0
SENDABLE = ("approved", "dry_run")  # loyalty.outbox._SENDABLE: what the executor would still send


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """One seller account, served by an emulator of its own (its seed makes its data differ)."""

    marketplace: str  # wildberries | ozon | yandex_market
    name: str
    seed: int
    orders: int = 250
    reviews: int = 40


DEFAULT_ACCOUNTS: tuple[AccountSpec, ...] = (
    AccountSpec("wildberries", "wb-main", seed=101),
    AccountSpec("ozon", "ozon-main", seed=202),
    AccountSpec("ozon", "ozon-second", seed=203),
    AccountSpec("yandex_market", "ym-main", seed=303),
    AccountSpec("yandex_market", "ym-second", seed=304),
)


# How long both runs may take to settle after the last kill. Quiescence needs two more loyalty and
# actions runs and two more runs of every stream after the store stops changing; with the whole
# suite on 2 slow CPUs (3 xdist workers, ~20 daemon and emulator threads) one actions run once took
# over a minute (stop 28's note), and 90 s failed a green suite. Waiting longer costs nothing when
# the runs settle early. A replica killed between recording an attempt and its outcome holds the
# action for SEND_WINDOW + SEND_MARGIN (loyalty.outbox, 3 minutes); it frees that claim when it
# starts again (`Daemon._release_earlier_claims`), so the replica that took its account over never
# waits it out here (before that fix the PostgreSQL run took 205 s alone, now ~30 s). Should that
# regress, the run fails here instead of quietly waiting.
QUIESCE_TIMEOUT = 180.0


def default_kills() -> int:
    return int(os.environ.get(KILLS_ENV) or (12 if FULL else 5))


def _token(spec: AccountSpec) -> str:
    return f"crash-{spec.marketplace}-{spec.name}-token"


def _token_env(spec: AccountSpec) -> str:
    return "LOYALSYNC_CRASH_" + f"{spec.marketplace}_{spec.name}".upper().replace("-", "_") + "_TOKEN"


def _client_id(spec: AccountSpec) -> str:
    return str(100_000 + spec.seed)


def _business_id(spec: AccountSpec) -> int:
    return 700_000 + spec.seed


def build_emulator(spec: AccountSpec, pinned: datetime) -> Any:
    """The emulator app of one account: seeded data ending at `pinned`, its clock stopped there."""
    common: dict[str, Any] = dict(seed=spec.seed, orders=spec.orders, reviews=spec.reviews,
                                  history_days=HISTORY_DAYS, now=pinned, clock=lambda: pinned,
                                  token=_token(spec), rate_limits=False)
    if spec.marketplace == "wildberries":
        from connectors.wildberries.emulator import EmulatorConfig, create_app

        return create_app(EmulatorConfig(**common))
    if spec.marketplace == "ozon":
        from connectors.ozon.emulator import EmulatorConfig as OzonConfig
        from connectors.ozon.emulator import create_app as ozon_app

        return ozon_app(OzonConfig(**common, client_id=_client_id(spec)))
    if spec.marketplace == "yandex_market":
        from connectors.yandex_market.emulator import EmulatorConfig as MarketConfig
        from connectors.yandex_market.emulator import create_app as market_app

        return market_app(MarketConfig(**common, business_id=_business_id(spec)))
    raise ValueError(f"no emulator for {spec.marketplace}")


# -- config ---------------------------------------------------------------------------------------

GLOBAL_CONFIG = """\
[database]
url = "{database_url}"

[daemon]
mode = "live"

[schedule]
default_poll_interval = "2s"
jitter_seconds = 0
loyalty_interval = "2s"
members_interval = "3s"
actions_interval = "2s"

[cluster]
lease_seconds = {lease_seconds}

[loyalty]
enabled = true
earn_rate = "0.02"
# Short, so that within the 12 days of data points become available (promo codes) and expire.
return_window = "1d"
[loyalty.expiry]
policy = "after_days"
days = 5
[loyalty.welcome]
points = 20
[loyalty.every_nth]
n = 3
points = 30
[[loyalty.tiers]]
name = "base"
min_spend = 0
earn_rate = "0.02"
[[loyalty.tiers]]
name = "silver"
min_spend = 20000
earn_rate = "0.03"

[actions.approval]
reply_to_review = "auto"
create_promo_code = "auto"
send_chat_message = "auto"

[actions.replies]
store_name = "Тестовый магазин"
# One template for every rating and no per-template approval: every reply is sent on its own.
[[actions.replies.templates]]
ratings = [1, 2, 3, 4, 5]
text = "Спасибо за отзыв о товаре «{{product}}»! Ваш {{store}}"

[actions.promo]
enabled = true
# One code per member per actions run: a threshold that keeps the codes few enough to settle fast.
redeem_at = 300

[actions.chat]
within = "3d"

# Ops-task proposals only (nothing is sent); their 30-day sales window would just add noise.
[actions.review_incentives]
enabled = false
"""


def _rate_limits(marketplace: str) -> str:
    from connectors.registry import available_connectors

    groups = getattr(available_connectors()[marketplace], "rate_groups", {})
    return "".join(f"[accounts.rate_limits.{g}]\nrequests = 1000\nperiod_seconds = 1\nburst = 1000\n"
                   for g in sorted(groups))


def _streams(marketplace: str) -> str:
    from connectors.registry import available_connectors

    out = ""
    for i, stream in enumerate(sorted(available_connectors()[marketplace].streams)):
        # Order streams every second (so kills land mid-run), the rest every two.
        every = "1s" if stream.startswith("orders") and i % 2 == 0 else "2s"
        out += f'[accounts.streams.{stream}]\npoll_interval = "{every}"\nstart_history = "{HISTORY_DAYS + 2}d"\n'
    return out


def write_config(root: Path, accounts: Sequence[AccountSpec], base_urls: Sequence[str], database_url: str) -> Path:
    """The global config and one marketplace file per platform under `root`; the global file's path."""
    (root / "marketplaces").mkdir(parents=True, exist_ok=True)
    text = GLOBAL_CONFIG.format(database_url=database_url, lease_seconds=LEASE_SECONDS)
    (root / "loyalsync.toml").write_text(text, encoding="utf-8")
    by_platform: dict[str, str] = {}
    for spec, url in zip(accounts, base_urls, strict=True):
        block = f'[[accounts]]\nname = "{spec.name}"\ntoken_env = "{_token_env(spec)}"\n'
        if spec.marketplace == "wildberries":
            block += "[accounts.base_urls]\n" + "".join(f'{h} = "{url}"\n'
                                                       for h in ("marketplace", "statistics", "feedbacks"))
        elif spec.marketplace == "ozon":
            block += f'client_id = "{_client_id(spec)}"\n[accounts.base_urls]\napi = "{url}"\n'
        else:
            block += f'business_id = {_business_id(spec)}\n[accounts.base_urls]\napi = "{url}"\n'
        block += _streams(spec.marketplace) + _rate_limits(spec.marketplace)
        by_platform[spec.marketplace] = by_platform.get(spec.marketplace, "") + block + "\n"
    for platform, text in by_platform.items():
        (root / "marketplaces" / f"{platform}.toml").write_text(text, encoding="utf-8")
    return root / "loyalsync.toml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(accounts: Sequence[AccountSpec]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALSYNC_")}
    env.update({_token_env(spec): _token(spec) for spec in accounts})
    env["LOYALSYNC_LOG_FORMAT"] = "json"
    return env


# -- processes ------------------------------------------------------------------------------------

class Replica:
    """One `loyalsync run` subprocess under a stable replica name; restartable, output appended to a log."""

    def __init__(self, name: str, config: Path, env: dict[str, str], log: Path):
        self.name, self.config, self.log = name, config, log
        self.env = {**env, "LOYALSYNC_REPLICA": name, "LOYALSYNC_SERVICE_PORT": str(_free_port())}
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.starts = 0

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        self.ready_at: float | None = None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([str(LOYALSYNC), "run", "--config", str(self.config)],
                                         cwd=self.config.parent, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.started_at = time.monotonic()
        self.starts += 1

    def ready(self) -> bool:
        """Whether this start got as far as "daemon started" (imports, migrations and leases done)."""
        if self.ready_at is None:
            with self.log.open("rb") as fh:
                fh.seek(self._offset)
                if b'"message": "daemon started' in fh.read():
                    self.ready_at = time.monotonic()
        return self.ready_at is not None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, no chance to clean up (the crash under test)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)

    def terminate(self, *, signalled: bool = False) -> int:
        """SIGTERM (unless `signalled` already: a second one would cut the clean stop short) and
        the exit code; a replica still running after STOP_TIMEOUT fails the run."""
        assert self.proc is not None
        if not signalled and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"replica {self.name} still running {STOP_TIMEOUT}s after SIGTERM") from None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


# -- observing the store --------------------------------------------------------------------------

def _digest(rows: Sequence[dict[str, Any]]) -> str:
    return hashlib.sha256(orjson.dumps(rows, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(slots=True)
class Snapshot:
    """What the store says at one moment."""

    streams: dict[str, tuple[str | None, datetime | None, datetime | None]]  # id -> (state, cursor, last run)
    digest: str  # orders, reviews, ledger and actions, wall-time fields dropped
    sendable: int


def snapshot(database_url: str) -> Snapshot | None:
    """The store's state now; None while it is not there or not migrated yet."""
    try:
        engine = connect(database_url)
    except SQLAlchemyError:
        return None
    try:
        store = Store(engine)
        streams = {f"{c['marketplace']}/{c['account']}/{c['stream']}": (c["state"], c["cursor_at"], c["last_run_at"])
                   for c in store.cursors()}
        exports = {kind: [orjson.loads(orjson.dumps(r, default=str)) for r in export_rows(store, kind)]
                   for kind in KINDS}
    except SQLAlchemyError:
        return None  # not migrated yet, or mid-migration
    finally:
        engine.dispose()
    sendable = sum(1 for a in exports["actions"] if a["status"] in SENDABLE)
    # The executor's bookkeeping changes while it retries; what it decided does not.
    exports["actions"] = [{k: v for k, v in a.items() if k not in ("updated_at", "attempts")}
                          for a in exports["actions"]]
    return Snapshot(streams=streams, digest=_digest([exports[k] for k in KINDS]), sendable=sendable)


def _count_lines(replicas: Sequence[Replica], prefix: str) -> int:
    """Log lines (JSON) whose message starts with `prefix`, over every replica's whole log."""
    return sum(r.output().count(f'"message": "{prefix}') for r in replicas)  # app.logs: json.dumps


class Observer:
    """Decides when a run is QUIESCENT. A run is quiescent once, from a moment T0 on:

    - every configured (account, stream) has a cursor, its last run ended `ok`, and its cursor has
      caught up: `cursor_at` is at most a day before the pinned end of the data (window cursors stand
      at the wall clock minus the stream's lag, past that end; Wildberries statistics' high-water
      cursor stands at the newest change in the data, within the last hours of it);
    - no action is in a sendable status (`approved`, `dry_run`): the outbox has nothing left to send;
    - the store's content (orders, reviews, ledger, actions, wall-time fields aside) is unchanged
      since T0, while since T0 the loyalty job ran at least twice (so the ledger is unchanged across
      two loyalty runs), the actions job ran at least twice (it plans nothing new), and every stream
      finished two more runs (the second of which started after T0, so it re-read the platform after
      the last action landed: e.g. a reply shows as the review's answer).
    """

    def __init__(self, run: Run):
        self.run = run
        self._base: Snapshot | None = None
        self._since: tuple[int, int] = (0, 0)
        self._seen: dict[str, list[datetime]] = {}

    def _settled(self, snap: Snapshot) -> bool:
        if set(snap.streams) != self.run.expected_streams or snap.sendable:
            return False
        caught_up = self.run.pinned - timedelta(days=1)
        return all(state == "ok" and cursor is not None and cursor >= caught_up
                   for state, cursor, _ in snap.streams.values())

    def quiescent(self) -> bool:
        snap = snapshot(self.run.database_url)
        runs = (_count_lines(self.run.replicas, "loyalty: "), _count_lines(self.run.replicas, "actions (live)"))
        if snap is None or not self._settled(snap) or self._base is None or snap.digest != self._base.digest:
            self._base = snap if snap is not None and self._settled(snap) else None
            self._since = runs
            self._seen = {}
            return False
        for stream, (_, _, last) in snap.streams.items():
            seen = self._seen.setdefault(stream, [self._base.streams[stream][2]])
            if last != seen[-1]:
                seen.append(last)
        return (runs[0] >= self._since[0] + 2 and runs[1] >= self._since[1] + 2
                and all(len(v) >= 3 for v in self._seen.values()))


# -- one run --------------------------------------------------------------------------------------

@dataclass
class Run:
    """Emulators, config, store and replicas of one run (the crash run or the reference run)."""

    label: str
    root: Path
    accounts: Sequence[AccountSpec]
    database_url: str
    replica_count: int
    pinned: datetime
    apps: list[Any] = field(default_factory=list)
    replicas: list[Replica] = field(default_factory=list)
    config: Path | None = None

    def __post_init__(self) -> None:
        self.apps = [build_emulator(spec, self.pinned) for spec in self.accounts]

    def configure(self, base_urls: Sequence[str]) -> None:
        self.config = write_config(self.root / "config", self.accounts, base_urls, self.database_url)
        env = _env(self.accounts)
        self.replicas = [Replica(f"{self.label}-{i}", self.config, env, self.root / f"{self.label}-{i}.log")
                         for i in range(self.replica_count)]

    @property
    def expected_streams(self) -> set[str]:
        from connectors.registry import available_connectors

        classes = available_connectors()
        return {f"{s.marketplace}/{s.name}/{stream}"
                for s in self.accounts for stream in classes[s.marketplace].streams}

    def start(self) -> None:
        for r in self.replicas:
            r.start()

    def check_alive(self) -> None:
        for r in self.replicas:
            if not r.alive:
                raise AssertionError(f"replica {r.name} exited on its own ({r.proc.returncode if r.proc else None}):\n"
                                     f"{r.output()[-5000:]}")

    def ask_to_stop(self) -> None:
        """SIGTERM to every replica, without waiting (`stop` waits)."""
        for r in self.replicas:
            if r.proc is not None and r.proc.poll() is None:
                r.proc.send_signal(signal.SIGTERM)

    def stop(self) -> list[int]:
        """Every replica's exit code after `ask_to_stop` (each has STOP_TIMEOUT)."""
        return [r.terminate(signalled=True) for r in self.replicas]

    def kill_all(self) -> None:
        for r in self.replicas:
            r.kill()

    def export(self, kind: str) -> list[dict[str, Any]]:
        """The store's export of `kind`, as `loyalsync export KIND --format jsonl` writes it. In this
        process: eight export subprocesses (imports, migrations check) took a fifth of the test, and
        the command itself is tested in tests/app."""
        engine = connect(self.database_url)
        try:
            return [orjson.loads(orjson.dumps(row)) for row in export_rows(Store(engine), kind)]
        finally:
            engine.dispose()

    def logs(self) -> str:
        return "\n".join(r.output() for r in self.replicas)


# -- comparison -----------------------------------------------------------------------------------

# Dropped before comparing, with the reason each depends on something other than the data:
DROPPED = {
    # `id`: the row id follows the order of inserts, which follows when each job happened to run.
    "ledger": ("id",),
    # `id`: row id, as above. `created_at`/`updated_at`/`sent_at`: wall-clock moments of the
    # proposal, of the last change and of the send. `attempts`: how often the executor claimed the
    # action, which is exactly what a kill between claim and record changes. `platform_ref`: the id
    # the platform assigned (emulators number comments, messages and vouchers in arrival order, and
    # arrival order depends on timing); the effects themselves are compared on the emulators.
    "actions": ("id", "created_at", "updated_at", "sent_at", "attempts", "platform_ref"),
    "orders": (),
    "reviews": (),
}


def _points_notice_pattern() -> re.Pattern[str]:
    """The default points notice with its `{balance}` captured and every other variable matched."""
    parts = re.split(r"(\{\w+\})", ChatSettings().points_text)
    return re.compile("".join("(?P<balance>-?[0-9.]+)" if p == "{balance}" else ".+?" if p.startswith("{")
                              else re.escape(p) for p in parts if p))


_POINTS_NOTICE = _points_notice_pattern()


def without_balance(text: str | None) -> str | None:
    """A points notice with the balance it quotes masked.

    The notice quotes the member's balance when it was planned, a point in wall time: a promo code
    whose spend was recorded just before or just after (the executor sends it when it can), or an
    order synced a moment later, changes that figure without either run being wrong. The rest of the
    text (order, points earned, store) depends on the data only and is still compared.
    """
    if text is None or (m := _POINTS_NOTICE.fullmatch(text)) is None:
        return text
    return text[:m.start("balance")] + "<balance>" + text[m.end("balance"):]


def _buyer_labels(orders: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Each buyer key -> a label named after the buyer's first order.

    A buyer key is an HMAC under a salt generated once per installation (store), so the same buyer
    has different keys in two stores; labelled by their orders, the two runs' keys can be compared.
    """
    labels: dict[str, str] = {}
    for o in sorted(orders, key=lambda o: (o["marketplace"], o["account"], o["order_id"])):
        key = o.get("buyer_key")
        if key and key not in labels:
            labels[key] = f"buyer<{o['marketplace']}/{o['account']}/{o['order_id']}>"
    return labels


def _relabel(value: Any, labels: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, label in labels.items():
            if key in value:
                value = value.replace(key, label)
        return value
    if isinstance(value, list):
        return [_relabel(v, labels) for v in value]
    if isinstance(value, dict):
        return {k: _relabel(v, labels) for k, v in value.items()}
    return value


def normalise(exports: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The exports with DROPPED fields removed, buyer keys relabelled, rows in a stable order."""
    labels = _buyer_labels(exports["orders"])
    lot_keys = {str(e["id"]): e["idempotency_key"] for e in exports.get("ledger", ())}
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, rows in exports.items():
        clean = []
        for row in rows:
            if kind == "ledger" and row["kind"] == "expire" and row["idempotency_key"].startswith("expire:"):
                # An expiry's key is `expire:{lot row id}` (loyalty.ledger.expire_once): name the lot by
                # its own idempotency key instead, which does not depend on the order of inserts.
                lot = row["idempotency_key"].removeprefix("expire:")
                row = {**row, "idempotency_key": f"expire:<{lot_keys.get(lot, 'unknown lot ' + lot)}>"}
            if kind == "actions" and _lapsed_promo_code(row):
                continue
            row = {k: v for k, v in row.items() if k not in DROPPED[kind]}
            if kind == "actions" and str(row.get("key", "")).startswith("promo:"):
                row["key"] = re.sub(r"#\d+$", "", row["key"])  # a lapsed code's successor: `…#2`
            if kind == "ledger" and row["kind"] == "spend":
                # A spend is effective when its promo code was sent: a wall-clock moment.
                row.pop("effective_at")
            if kind == "actions" and str(row.get("key", "")).startswith("chat:points:"):
                row["text"] = without_balance(row.get("text"))
            if kind == "actions" and isinstance(row.get("params"), dict):
                # A promo code is valid for `valid_for` from the moment it was proposed (wall clock).
                row["params"] = {k: v for k, v in row["params"].items() if k != "valid_until"}
            clean.append(_relabel(row, labels))
        key = {"orders": ("marketplace", "account", "order_id"), "reviews": ("marketplace", "account", "review_id"),
               "ledger": ("idempotency_key",), "actions": ("key",)}[kind]
        out[kind] = sorted(clean, key=lambda r: tuple(str(r[k]) for k in key))
    return out


def _lapsed_promo_code(row: dict[str, Any]) -> bool:
    """A promo code not sent because its points were gone by then (loyalty.outbox._points_short: a
    return took them back after the proposal). Whether a run proposed one in that window depends on
    when its planning ran, not on crashes: it reached no platform and spent nothing, so the comparison
    leaves it (and the `#n` its successor's key carries) out. The effects and the ledger still count."""
    return (row.get("kind") == "create_promo_code" and row.get("status") == "failed"
            and str(row.get("detail") or "").startswith(POINTS_SHORT))


def differences(crash: list[dict[str, Any]], reference: list[dict[str, Any]], key: Sequence[str],
                limit: int = 10) -> list[str]:
    """Human-readable differences between two normalised exports (first `limit`)."""
    def k(r: dict[str, Any]) -> tuple:
        return tuple(str(r.get(f)) for f in key)

    a, b = {k(r): r for r in crash}, {k(r): r for r in reference}
    out = [f"only in the crash run: {r}" for kk, r in a.items() if kk not in b]
    out += [f"only in the reference run: {r}" for kk, r in b.items() if kk not in a]
    for kk in a.keys() & b.keys():
        if a[kk] != b[kk]:
            fields = {f: (a[kk].get(f), b[kk].get(f)) for f in a[kk].keys() | b[kk].keys()
                      if a[kk].get(f) != b[kk].get(f)}
            out.append(f"{kk}: crash vs reference {fields}")
    if len(crash) != len(a) or len(reference) != len(b):
        out.append(f"duplicate keys: crash {len(crash) - len(a)}, reference {len(reference) - len(b)}")
    return sorted(out)[:limit]


# -- effects on the emulators ---------------------------------------------------------------------

REPLY_PATHS = {"wildberries": ("/api/v1/feedbacks/answer", "id"), "ozon": ("/v1/review/comment/create", "review_id"),
               "yandex_market": ("/goods-feedback/comments/update", "feedbackId")}


def _applied(app: Any, path_part: str) -> list[dict[str, Any]]:
    return [w for w in app.state.writes if w["applied"] and path_part in w["path"]]


def _seller_messages(spec: AccountSpec, app: Any) -> Counter:
    """(order, text) of every message the seller wrote, counted."""
    out: Counter = Counter()
    if spec.marketplace == "ozon":
        for chat in app.state.chats.values():
            for m in chat["messages"]:
                if str(m["user"]["type"]).lower() == "seller":
                    out[(str(chat["posting_number"]), "".join(m["data"]) if "data" in m else m.get("message"))] += 1
    elif spec.marketplace == "yandex_market":
        for chat in app.state.chats.chats.values():
            for m in chat["messages"]:
                if m["sender"] == "PARTNER":
                    out[(str(chat["context"]["orderId"]), m["message"])] += 1
    return out


def emulator_effects(accounts: Sequence[AccountSpec], apps: Sequence[Any],
                     voucher_names: dict[str, str] | None = None) -> dict[str, Counter]:
    """What the daemon did on the platforms, by kind, each effect counted: replies (review, text),
    chat messages (order, text; a points notice's balance masked), promo codes (voucher title, value,
    budget; its dates are wall-clock).

    A voucher's title carries a mark derived from its action's key, and that key holds a buyer key
    (salted per store): `voucher_names` (mark -> a name valid in both runs) names it instead.
    """
    voucher_names = voucher_names or {}
    effects: dict[str, Counter] = {"reply_to_review": Counter(), "send_chat_message": Counter(),
                                   "create_promo_code": Counter()}
    for spec, app in zip(accounts, apps, strict=True):
        path, id_field = REPLY_PATHS[spec.marketplace]
        for w in _applied(app, path):
            body = w["body"]
            text = body.get("text") or body.get("comment", {}).get("text") if isinstance(body, dict) else None
            effects["reply_to_review"][(spec.marketplace, spec.name, str(body[id_field]), text)] += 1
        for (order, text), n in _seller_messages(spec, app).items():
            effects["send_chat_message"][(spec.marketplace, spec.name, order, without_balance(text))] += n
        for v in getattr(app.state, "vouchers", ()) if spec.marketplace == "ozon" else ():
            title = v["title"]
            for mark, name in voucher_names.items():
                title = title.replace(mark, name)
            effects["create_promo_code"][(spec.marketplace, spec.name, title, v["discount_value"], v["budget"])] += 1
    return effects


# -- the whole thing ------------------------------------------------------------------------------

@dataclass
class CrashReport:
    """What a `crash_and_compare` saw; the assertions are the caller's (`check`)."""

    seed: int
    kills: int
    kills_while_working: int  # kills that landed after the replica's "daemon started"
    seconds: float
    crash: dict[str, list[dict[str, Any]]]  # normalised exports
    reference: dict[str, list[dict[str, Any]]]
    crash_effects: dict[str, Counter]
    reference_effects: dict[str, Counter]
    crash_actions_raw: list[dict[str, Any]]
    reference_actions_raw: list[dict[str, Any]]
    crash_attempts: dict[int, list[tuple[str, str]]]  # action id -> (step, outcome) of each attempt
    reference_attempts: dict[int, list[tuple[str, str]]]
    crash_vouchers: dict[str, str]  # voucher mark -> the name `emulator_effects` gave it
    reference_vouchers: dict[str, str]
    exit_codes: list[int]
    logs: str

    def export_differences(self) -> dict[str, list[str]]:
        keys = {"orders": ("marketplace", "account", "order_id"), "reviews": ("marketplace", "account", "review_id"),
                "ledger": ("idempotency_key",), "actions": ("key",)}
        return {kind: d for kind in KINDS if (d := differences(self.crash[kind], self.reference[kind], keys[kind]))}

    def effect_differences(self) -> dict[str, list]:
        """Effects (with their counts) one run's platforms saw and the other's did not."""
        out: dict[str, list] = {}
        for kind in self.crash_effects.keys() | self.reference_effects.keys():
            a, b = self.crash_effects.get(kind, Counter()), self.reference_effects.get(kind, Counter())
            diff = [("crash", e, n) for e, n in (a - b).items()] + [("reference", e, n) for e, n in (b - a).items()]
            if diff:
                out[kind] = sorted(diff, key=str)
        return out

    def landed_more_than_once(self) -> dict[str, list]:
        """Effects applied more than once on a platform, in either run."""
        out: dict[str, list] = {}
        for label, effects in (("crash", self.crash_effects), ("reference", self.reference_effects)):
            for kind, counter in effects.items():
                twice = [(e, n) for e, n in counter.items() if n > 1]
                # A review answered twice, or an order's chat told twice, with different texts counts too.
                if kind in ("reply_to_review", "send_chat_message"):
                    per_target = Counter(e[:3] for e in counter.elements())
                    twice += [(e, n) for e, n in per_target.items() if n > 1]
                if twice:
                    out[f"{label}/{kind}"] = twice
        return out

    def found_on_platform(self, label: str) -> list[tuple]:
        """Sent actions whose effect was on the platform before any send of theirs: the executor's
        only record is a check that found it done (e.g. a review the seller had already answered)."""
        rows, attempts = ((self.crash_actions_raw, self.crash_attempts) if label == "crash"
                          else (self.reference_actions_raw, self.reference_attempts))
        return sorted((a["kind"], a["marketplace"], a["account"], str(a["target"])) for a in rows
                      if a["status"] == "sent" and attempts.get(a["id"], [])[-1:] == [("check", "already_done")]
                      and not any(step == "send" for step, _ in attempts.get(a["id"], [])))

    def sent_without_effect(self) -> dict[str, list]:
        """Actions marked sent whose effect is not on the platform, per run (those `found_on_platform`
        aside, whose effect predates the run)."""
        out: dict[str, list] = {}
        for label, rows, effects, names in (
                ("crash", self.crash_actions_raw, self.crash_effects, self.crash_vouchers),
                ("reference", self.reference_actions_raw, self.reference_effects, self.reference_vouchers)):
            targets = {kind: {(e[0], e[1], e[2]) for e in c} for kind, c in effects.items()}
            found = set(self.found_on_platform(label))
            missing = []
            for a in rows:
                if a["status"] != "sent" or a["kind"] not in targets:
                    continue
                if a["kind"] == "create_promo_code":
                    from connectors.ozon.connector import voucher_mark

                    name = names[voucher_mark(a["key"])]
                    hit = any(t[:2] == (a["marketplace"], a["account"]) and name in t[2] for t in targets[a["kind"]])
                else:
                    hit = (a["marketplace"], a["account"], str(a["target"])) in targets[a["kind"]]
                if not hit and (a["kind"], a["marketplace"], a["account"], str(a["target"])) not in found:
                    missing.append((a["kind"], a["marketplace"], a["account"], a["target"]))
            if missing:
                out[label] = missing
        return out


def _sqlite_sibling(url: str, suffix: str) -> str:
    assert url.startswith("sqlite:///"), "name the reference store with reference_database_url"
    path = Path(url.removeprefix("sqlite:///"))
    return f"sqlite:///{path.with_name(path.stem + suffix + path.suffix)}"


def crash_and_compare(root: Path, *, seed: int, kills: int | None = None, replicas: int = 1,
                      database_url: str, reference_database_url: str | None = None,
                      accounts: Sequence[AccountSpec] = DEFAULT_ACCOUNTS, quiesce_timeout: float = QUIESCE_TIMEOUT,
                      on_kill: Callable[[int, Replica], None] | None = None) -> CrashReport:
    """Run the crash run (killed `kills` times; default `$LOYALSYNC_CRASH_KILLS`, or 5, or 12 with
    `LOYALSYNC_FULL=1`) and the reference run side by side, each with `replicas` daemon processes
    on its own fresh store (`database_url`, `reference_database_url`; for SQLite the latter defaults to a sibling file),
    until both are quiescent; stop them with SIGTERM and report what both exported and did."""
    kills = default_kills() if kills is None else kills
    reference_database_url = reference_database_url or _sqlite_sibling(database_url, "-reference")
    rng = random.Random(seed)
    # The data's "now", whole minutes, shared by both sets of emulators.
    pinned = (datetime.now(UTC) - PINNED_BEHIND).replace(second=0, microsecond=0)
    crash = Run("crash", root / "crash", accounts, database_url, replicas, pinned)
    reference = Run("reference", root / "reference", accounts, reference_database_url, replicas, pinned)
    started = time.monotonic()
    exit_codes: list[int] = []
    with served_all([*crash.apps, *reference.apps], quiet_disconnects=True) as urls:
        crash.configure(urls[:len(accounts)])
        reference.configure(urls[len(accounts):])
        try:
            reference.start()
            crash.start()
            done = working = 0

            def next_kill() -> tuple[Replica, bool, float]:
                # A quarter of the kills count their delay from the process start, so some land in
                # start-up (imports, migrations, taking leases); the rest from "daemon started", so
                # they land in the work itself however long start-up takes on a loaded machine.
                return rng.choice(crash.replicas), rng.random() < 0.25, rng.uniform(*KILL_DELAY)

            victim, from_start, delay = next_kill()
            since = time.monotonic()
            while done < kills:
                reference.check_alive()
                crash.check_alive()  # a replica that exits on its own (not killed by us) fails the run
                if from_start:
                    due = max(victim.started_at, since) + delay
                else:
                    due = victim.ready_at + delay if victim.ready() and victim.ready_at else float("inf")
                if time.monotonic() < due:
                    time.sleep(0.02)
                    continue
                working += victim.ready()
                victim.kill()
                done += 1
                if on_kill is not None:
                    on_kill(done, victim)
                victim.start()
                victim, from_start, delay = next_kill()
                since = time.monotonic()
            observers = [Observer(crash), Observer(reference)]
            deadline = time.monotonic() + quiesce_timeout
            while True:
                crash.check_alive()
                reference.check_alive()
                if all([o.quiescent() for o in observers]):  # a list: every observer looks each time
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"not quiescent within {quiesce_timeout}s: "
                                         f"crash {_status(crash)}; reference {_status(reference)}")
                time.sleep(0.3)
            crash.ask_to_stop()  # every daemon of both runs stops at once
            reference.ask_to_stop()
            exit_codes = crash.stop() + reference.stop()
        finally:
            crash.kill_all()
            reference.kill_all()
        runs = {}
        for run in (crash, reference):
            raw = {kind: run.export(kind) for kind in KINDS}
            names = _voucher_names(raw)
            runs[run.label] = (normalise(raw), raw["actions"], emulator_effects(accounts, run.apps, names),
                               _attempts(run.database_url), names)
    return CrashReport(seed=seed, kills=kills, kills_while_working=working, seconds=time.monotonic() - started,
                       crash=runs["crash"][0], reference=runs["reference"][0],
                       crash_effects=runs["crash"][2], reference_effects=runs["reference"][2],
                       crash_actions_raw=runs["crash"][1], reference_actions_raw=runs["reference"][1],
                       crash_attempts=runs["crash"][3], reference_attempts=runs["reference"][3],
                       crash_vouchers=runs["crash"][4], reference_vouchers=runs["reference"][4],
                       exit_codes=exit_codes, logs=crash.logs())


def _voucher_names(raw: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    from connectors.ozon.connector import voucher_mark

    labels = _buyer_labels(raw["orders"])
    return {voucher_mark(a["key"]): f"[{_relabel(a['key'], labels)}]"
            for a in raw["actions"] if a["kind"] == "create_promo_code"}


def _attempts(database_url: str) -> dict[int, list[tuple[str, str]]]:
    """Each action's executor record: (step, outcome), oldest first."""
    from sqlalchemy import select

    from loyalty.outbox import ATTEMPTS

    engine = connect(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(ATTEMPTS.c.action_id, ATTEMPTS.c.step, ATTEMPTS.c.outcome)
                                .order_by(ATTEMPTS.c.id)).all()
    finally:
        engine.dispose()
    out: dict[int, list[tuple[str, str]]] = {}
    for action_id, step, outcome in rows:
        out.setdefault(action_id, []).append((step, outcome))
    return out


def _status(run: Run) -> str:
    snap = snapshot(run.database_url)
    if snap is None:
        return "no store"
    bad = {s: v[:2] for s, v in snap.streams.items() if v[0] != "ok"}
    missing = run.expected_streams - set(snap.streams)
    return json.dumps({"sendable": snap.sendable, "not ok": bad, "missing": sorted(missing)}, default=str)
