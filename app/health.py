"""What `/healthz` answers from: the daemon's own record of its runs, kept in process memory.

The store cannot tell us it is broken (a full disk or corrupted pages fail the very writes that
would record it), so the daemon notes every run's outcome here and the endpoint reads it:

- the last store write failed (disk full, corrupted pages, or another database error);
- no stream has succeeded within `unhealthy_after` of its poll intervals (counted from the daemon's
  start for a stream that never did: a fresh daemon gets that long as grace);
- every stream of an account had its token rejected at its last run.

Each condition is a `Problem`: what is wrong and one sentence on what to do. Messages name
accounts, streams, env var names and the SQLite file; never a token, a URL with a password, or
anything a buyer wrote.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from sync.runner import RunResult, utc_now

__all__ = ["DEFAULT_UNHEALTHY_AFTER", "Health", "Problem", "StreamWatch", "store_failure_kind"]

DEFAULT_UNHEALTHY_AFTER = 3  # poll intervals without any successful stream run
# SQLite's result texts and PostgreSQL's SQLSTATEs for "no space" and "pages are damaged".
_DISK_FULL_TEXT = ("database or disk is full", "no space left on device", "could not extend file")
_CORRUPT_TEXT = ("database disk image is malformed", "file is not a database", "malformed database schema")
_DISK_FULL_STATES = ("53100",)
_CORRUPT_STATES = ("XX001", "XX002")


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason the daemon is unhealthy: a condition name, what is wrong, and what to do."""

    condition: str  # store_disk_full | store_corrupted | store_write_failed | no_recent_success | token_rejected | ...
    message: str
    action: str
    account: str | None = None  # marketplace/account
    stream: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True, slots=True)
class StreamWatch:
    """A scheduled stream as health sees it: its job id, account, poll interval, token env var and lease."""

    job: str
    marketplace: str
    account: str
    stream: str
    interval: timedelta
    token_env: str
    lease: str = ""  # the account's lease (`sync.cluster`): only streams this replica holds are judged


@dataclass(slots=True)
class _StoreFailure:
    kind: str
    job: str
    error: str  # the exception's type and first line: no SQL parameters, no URL
    at: datetime


@dataclass(slots=True)
class _Counts:
    store_write_failures: Counter[str] = field(default_factory=Counter)  # by kind
    auth_failures: Counter[tuple[str, str]] = field(default_factory=Counter)  # by (marketplace, account)
    job_failures: Counter[str] = field(default_factory=Counter)  # by job


def store_failure_kind(exc: BaseException) -> str:
    """`disk_full`, `corrupted` or `write_failed`, from a database error's text or SQLSTATE."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).lower()
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in _DISK_FULL_STATES or any(t in text for t in _DISK_FULL_TEXT):
        return "disk_full"
    if state in _CORRUPT_STATES or any(t in text for t in _CORRUPT_TEXT):
        return "corrupted"
    return "write_failed"


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _store_name(url: URL) -> str:
    """The SQLite file, or "the PostgreSQL database <name>": never credentials or hosts."""
    if url.get_backend_name() == "sqlite":
        return url.database or "the in-memory SQLite store"
    return f"the {url.get_backend_name()} database {url.database or ''}".rstrip()


class Health:
    """The daemon's running record of store writes, stream outcomes and failure counts; thread-safe."""

    def __init__(self, store_url: URL, *, unhealthy_after: int = DEFAULT_UNHEALTHY_AFTER,
                 clock: Callable[[], datetime] = utc_now):
        self.store_name = _store_name(store_url)
        self.unhealthy_after = unhealthy_after
        self.clock = clock
        self.started = clock()
        self.counts = _Counts()
        self._lock = threading.Lock()
        self._streams: dict[str, StreamWatch] = {}
        self._last_success: dict[str, datetime] = {}
        self._auth_rejected: set[str] = set()
        self._store_failure: _StoreFailure | None = None
        # When this replica took each stream's account: a stream taken over gets its grace from then.
        self._held_since: dict[str, datetime] = {}

    def watch(self, streams: list[StreamWatch]) -> None:
        """Start judging these streams; their grace period starts now."""
        with self._lock:
            self.started = self.clock()
            self._streams = {s.job: s for s in streams}
            self._held_since = dict.fromkeys(self._streams, self.started)

    def run_finished(self, job: str, result: RunResult) -> None:
        """A stream run ended with `result`; its outcome was written, so the store took a write."""
        now = self.clock()
        with self._lock:
            self._store_failure = None
            if result.ok:
                self._last_success[job] = now
            if result.auth_error:
                self._auth_rejected.add(job)
                key = result.key
                self.counts.auth_failures[(key.marketplace, key.account)] += 1
            else:
                self._auth_rejected.discard(job)
            if result.state == "error":
                self.counts.job_failures[job] += 1

    def store_failed(self, job: str, exc: BaseException) -> str:
        """A job's store read or write raised `exc`; returns its kind (see `store_failure_kind`)."""
        kind = store_failure_kind(exc)
        with self._lock:
            self._store_failure = _StoreFailure(kind, job, _first_line(exc), self.clock())
            self.counts.store_write_failures[kind] += 1
            self.counts.job_failures[job] += 1
        return kind

    def job_failed(self, job: str, exc: BaseException | None = None) -> None:
        """A store-wide job (loyalty, actions) failed; a database error also counts as a store failure."""
        if isinstance(exc, DBAPIError):
            self.store_failed(job, exc)
            return
        with self._lock:
            self.counts.job_failures[job] += 1

    def problems(self, held: Collection[str] | None = None) -> list[Problem]:
        """Every condition that makes the daemon unhealthy now; empty when it is healthy.

        `held`: the leases this replica holds; streams of other accounts are another replica's to
        run, so they are not judged here (None: judge every stream).
        """
        now = self.clock()
        with self._lock:
            mine = [w for w in self._streams.values() if held is None or w.lease in held]
            for gone in self._held_since.keys() - {w.job for w in mine}:
                del self._held_since[gone]
            for watch in mine:
                self._held_since.setdefault(watch.job, now)
            found = self._store_problem()
            found += self._auth_problems(mine)
            found += self._stale_problem(mine, now)
        return found

    def _store_problem(self) -> list[Problem]:
        failure = self._store_failure
        if failure is None:
            return []
        where = self.store_name
        if failure.kind == "disk_full":
            return [Problem("store_disk_full", f"the last store write failed at {failure.at:%Y-%m-%d %H:%M:%S} "
                            f"UTC in {failure.job}: the disk is full ({failure.error})",
                            f"the disk holding {where} is full: free space on it (or move the store to a "
                            "bigger disk); the daemon writes again at the next poll, nothing is lost")]
        if failure.kind == "corrupted":
            return [Problem("store_corrupted", f"the last store write failed at {failure.at:%Y-%m-%d %H:%M:%S} "
                            f"UTC in {failure.job}: the store's pages are damaged ({failure.error})",
                            f"{where} is corrupted: stop the daemon, restore it from a backup (or move it "
                            "aside and let the daemon sync everything again), then start it")]
        return [Problem("store_write_failed", f"the last store write failed at {failure.at:%Y-%m-%d %H:%M:%S} "
                        f"UTC in {failure.job} ({failure.error})",
                        f"check that {where} is reachable and writable; the daemon's log has each failure")]

    def _auth_problems(self, mine: list[StreamWatch]) -> list[Problem]:
        by_account: dict[tuple[str, str], list[StreamWatch]] = {}
        for watch in mine:
            by_account.setdefault((watch.marketplace, watch.account), []).append(watch)
        found = []
        for (marketplace, account), watches in sorted(by_account.items()):
            if all(w.job in self._auth_rejected for w in watches):
                env = watches[0].token_env
                streams = ", ".join(sorted(w.stream for w in watches))
                found.append(Problem(
                    "token_rejected", f"{marketplace}/{account}: the platform rejected the token for every "
                    f"stream ({streams})",
                    f"token rejected: set a new token in ${env} (with the API categories these streams need) "
                    "and restart the daemon", account=f"{marketplace}/{account}"))
        return found

    def _stale_problem(self, mine: list[StreamWatch], now: datetime) -> list[Problem]:
        if not mine:
            return []
        for watch in mine:
            since = max(self._last_success.get(watch.job, self.started), self.started,
                        self._held_since.get(watch.job, self.started))
            if now - since <= watch.interval * self.unhealthy_after:
                return []
        last = max((self._last_success[w.job] for w in mine if w.job in self._last_success), default=None)
        when = f"the last one at {last:%Y-%m-%d %H:%M:%S} UTC" if last else "none since the daemon started"
        return [Problem("no_recent_success", f"no stream has synced successfully within {self.unhealthy_after} "
                        f"of its poll intervals ({when})",
                        "the daemon's log names each stream's error: check the network to the platforms, "
                        "the tokens and the store")]

    def snapshot(self) -> dict[str, Any]:
        """The failure counters, for `/metrics`."""
        with self._lock:
            return {"store_write_failures": dict(self.counts.store_write_failures),
                    "auth_failures": dict(self.counts.auth_failures),
                    "job_failures": dict(self.counts.job_failures)}
