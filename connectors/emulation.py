"""Building blocks every platform emulator shares: injected faults and their bookkeeping.

Emulators serve tests, the demo and benchmarks; a fault plan makes one misbehave on purpose
(5xx, slow answers, broken records, rate limiting, cut-off bodies) in a seeded, repeatable way.

Writes (review replies, vouchers) are logged in `app.state.writes`, one `write_entry` dict per
write request received, so a test can count what reached the "platform". The `apply_then_*`
faults are the lost-answer cases: the emulator applies the write, then the answer is lost (the
client times out) or replaced by a 500.

Faults act at five stages, each asked separately (`FaultPlan.pick(path, stage)`):

- `auth` (`expired_token`): checked with the token; once it fires (after `after` requests it let
  through), every later request of that emulator gets the platform's expired-token 401.
- `request` (the classic kinds): at most one per request: 5xx, timeouts, 429/420, cut-off bodies,
  lost answers, `malformed` values.
- `payload` (`schema_drift`, `wrong_type`): reshape a successful answer, every one that fires.
  `schema_drift` adds unknown fields to every object of the answer and leaves out fields the
  platform documents as optional; `wrong_type` gives one record of a page a field of the wrong
  JSON type, and that record stays broken on every later read (a platform's bad record does not
  heal by itself). Both are recorded on a `Breakage` so a test knows exactly what was done.
- `page` (`short_page`): a page shorter than the limit that is NOT the last one. A platform that
  promises only its cursor (WB's `next`, Ozon's `has_next`, Market's `nextPageToken`) may do
  this; a client that stops on "fewer than limit" then loses every later record. Handlers call
  `FaultPlan.shorten(path, records, more=...)` on each page and build the next cursor from what
  they actually served; `FaultPlan.short_pages` lists what was cut.
- `data` (`late_change`): an old record changes long after it was created (a late return, a
  parcel that waited weeks at a pickup point). Not a request fault: an emulator reads
  `FaultPlan.late_changes()` when it builds its data set and gives `times` records a new state
  `delay` seconds after its generated "now", each record created about `age` seconds before that
  change. It lists them in `app.state.late_changes` ({record key: (state before, state after)},
  in the platform's own status words).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Any, Literal

import orjson

__all__ = ["APPLY_THEN_FAIL", "AUTH_FAULTS", "DATA_FAULTS", "LATE_CHANGE_AGE", "LATE_CHANGE_DELAY", "PAGE_FAULTS",
           "PAYLOAD_FAULTS", "Breakage", "Fault", "FaultKind", "FaultPlan",
           "PayloadShape", "add_unknown_fields", "drop_optional", "reshape_payload", "write_entry"]

FaultKind = Literal["http_500", "http_503", "timeout", "malformed", "rate_limit", "truncated",
                    "apply_then_timeout", "apply_then_500", "expired_token", "schema_drift", "wrong_type",
                    "short_page", "late_change"]
Stage = Literal["auth", "request", "payload", "page", "data"]
#: Faults checked with the token, before limits and the request faults.
AUTH_FAULTS: frozenset[str] = frozenset({"expired_token"})
#: Faults that reshape a successful answer; several may apply to one answer.
PAYLOAD_FAULTS: frozenset[str] = frozenset({"schema_drift", "wrong_type"})
#: Faults that cut a page short (see `FaultPlan.shorten`).
PAGE_FAULTS: frozenset[str] = frozenset({"short_page"})
#: Faults that shape the data set rather than a request (see `FaultPlan.late_changes`).
DATA_FAULTS: frozenset[str] = frozenset({"late_change"})
#: `late_change` defaults: created 45 days before the change, which comes an hour after the
#: emulator's generated "now" (so a sync at "now" sees the old state, one two hours later the new).
LATE_CHANGE_AGE = 45 * 86400.0
LATE_CHANGE_DELAY = 3600.0
#: The prefix of every field `schema_drift` invents (no platform uses it).
UNKNOWN_FIELD_PREFIX = "xDrift"
#: Faults that let the handler apply the request, then lose its answer: `apply_then_timeout`
#: answers only after `delay` seconds (the client's deadline fires first), `apply_then_500`
#: answers 500 instead of the handler's success.
APPLY_THEN_FAIL: frozenset[str] = frozenset({"apply_then_timeout", "apply_then_500"})


def write_entry(method: str, path: str, raw: bytes) -> dict[str, Any]:
    """A write log entry: `{"method", "path", "body", "status", "applied"}`.

    `body` is the decoded JSON (the raw text if it is not JSON); the emulator fills `status` with
    the status it decided on (for `apply_then_timeout`, the one the client never saw) and
    `applied` with whether its handler ran and accepted it (a 2xx), whatever the client then got.
    """
    try:
        body: Any = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        body = raw.decode("utf-8", "replace")
    return {"method": method, "path": path, "body": body, "status": None, "applied": False}


@dataclass(frozen=True)
class Fault:
    """An injected failure for requests whose path starts with `path_prefix`.

    It fires on the next `times` matching requests (None = unlimited), each with `probability`
    (None = always) drawn from its own seeded RNG.
    """

    path_prefix: str
    kind: FaultKind
    times: int | None = 1
    probability: float | None = None
    retry_after: int | None = 1  # rate_limit: the wait the answer asks for, in seconds (None: no hint)
    # timeout, apply_then_timeout: how long the answer takes; late_change: seconds after the
    # emulator's generated "now" at which the old records change (0: LATE_CHANGE_DELAY)
    delay: float = 0
    after: int = 0  # let this many matching requests through untouched first
    age: float = LATE_CHANGE_AGE  # late_change: how old the changed records are when they change


class FaultPlan:
    """Remaining counts and RNGs of an emulator's faults (the faults themselves stay frozen)."""

    def __init__(self, faults: tuple[Fault, ...], seed: int):
        self.faults = faults
        self.left = [f.times for f in faults]
        self.rngs = [Random(seed * 1000 + k) for k in range(len(faults))]
        self.seen = [0] * len(faults)
        #: (path, records served, records the page had) of every page `shorten` cut
        self.short_pages: list[tuple[str, int, int]] = []

    @staticmethod
    def stage_of(kind: str) -> Stage:
        if kind in AUTH_FAULTS:
            return "auth"
        if kind in PAYLOAD_FAULTS:
            return "payload"
        if kind in PAGE_FAULTS:
            return "page"
        return "data" if kind in DATA_FAULTS else "request"

    def shorten(self, path: str, records: list[Any], *, more: bool) -> list[Any]:
        """`records`, or only their first 1..len-1 when a `short_page` fault fires for `path`.

        Only a page that is not the last (`more`: records remain after it) with two records or
        more is cut: a short page is then never empty and never the true end, so it tests exactly
        one thing, that the client does not take "fewer than limit" for the end.
        """
        if not more or len(records) < 2:
            return records
        k = self.pick(path, "page")
        if k is None:
            return records
        keep = 1 + self.rngs[k].randrange(len(records) - 1)
        self.short_pages.append((path, keep, len(records)))
        return records[:keep]

    def late_changes(self) -> list[Fault]:
        """The `late_change` faults, for an emulator to apply when it builds its data set."""
        return [f for f in self.faults if f.kind == "late_change"]

    def pick(self, path: str, stage: Stage = "request") -> int | None:
        """The index of the first fault of `stage` that fires for `path`, using one of its turns."""
        fired = self._fire(path, stage, first=True)
        return fired[0] if fired else None

    def pick_all(self, path: str, stage: Stage = "payload") -> list[int]:
        """Every fault of `stage` that fires for `path` (payload faults combine)."""
        return self._fire(path, stage, first=False)

    def _fire(self, path: str, stage: Stage, first: bool) -> list[int]:
        fired = []
        for k, f in enumerate(self.faults):
            if self.stage_of(f.kind) != stage or not path.startswith(f.path_prefix) or self.left[k] == 0:
                continue
            self.seen[k] += 1
            if self.seen[k] <= f.after:
                continue
            if f.probability is not None and self.rngs[k].random() >= f.probability:
                continue
            if self.left[k] is not None:
                self.left[k] -= 1
            fired.append(k)
            if first:
                break
        return fired

    def refund(self, k: int) -> None:
        """Give back a turn that found nothing to break (e.g. an empty page for `malformed`)."""
        if self.left[k] is not None:
            self.left[k] += 1


@dataclass
class Breakage:
    """What the payload faults did, for a test to compare with what the store holds.

    `wrong_type` maps (path, record key) -> the field given a wrong type (the record stays broken);
    `dropped` maps (path, record key) -> optional fields left out at least once; `unknown_fields`
    counts the invented fields added.
    """

    wrong_type: dict[tuple[str, str], str] = field(default_factory=dict)
    dropped: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    unknown_fields: int = 0

    def is_broken(self, path: str, key: str) -> bool:
        return (path, key) in self.wrong_type


def add_unknown_fields(payload: Any, rng: Random) -> int:
    """Add an invented field to every object in `payload` (nested ones too); return how many.

    The values vary in JSON type (string, number, bool, null, object, list) as a platform's new
    fields do.
    """
    added = 0
    stack = [payload]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
            n = rng.randrange(6)
            node[f"{UNKNOWN_FIELD_PREFIX}{n}"] = ("new", 7, True, None, {"nested": [1, "a"]}, [0.5])[n]
            added += 1
        elif isinstance(node, list):
            stack.extend(node)
    return added


def drop_optional(record: dict[str, Any], optional: tuple[str, ...]) -> set[str]:
    """Leave out the fields in `optional` (`name?`: only while its value is null); return them."""
    dropped = set()
    for spec in optional:
        name = spec.rstrip("?")
        if name in record and (not spec.endswith("?") or record[name] is None):
            del record[name]
            dropped.add(name)
    return dropped


@dataclass(frozen=True)
class PayloadShape:
    """How one emulator's records look to the payload faults.

    `records(payload)` lists the (kind, record) pairs of an answer; `key(kind, record)` is the
    natural key the store uses; `optional[kind]` names the fields the platform documents as
    optional (see `drop_optional`); `wrong[kind]` is (field, a value of the wrong JSON type).
    """

    records: Callable[[Any], list[tuple[str, dict[str, Any]]]]
    key: Callable[[str, dict[str, Any]], str]
    optional: Mapping[str, tuple[str, ...]]
    wrong: Mapping[str, tuple[str, Any]]


def reshape_payload(plan: FaultPlan, path: str, payload: Any, shape: PayloadShape, breakage: Breakage) -> None:
    """Apply the payload faults that fire for `path` to a successful answer, in place."""
    records = shape.records(payload) if payload is not None else []
    already = False
    for kind, rec in records:
        if breakage.is_broken(path, shape.key(kind, rec)):
            name, value = shape.wrong[kind]
            rec[name] = value
            already = True
    for k in plan.pick_all(path, "payload"):
        kind = plan.faults[k].kind
        if kind == "schema_drift":
            for rkind, rec in records:
                dropped = drop_optional(rec, shape.optional.get(rkind, ()))
                if dropped:
                    breakage.dropped.setdefault((path, shape.key(rkind, rec)), set()).update(dropped)
            breakage.unknown_fields += add_unknown_fields(payload, plan.rngs[k])
        elif kind == "wrong_type":
            candidates = [(rkind, rec) for rkind, rec in records if rkind in shape.wrong]
            if already or not candidates:
                plan.refund(k)  # one broken record per page; nothing to break: wait for a real page
                continue
            rkind, rec = candidates[plan.rngs[k].randrange(len(candidates))]
            name, value = shape.wrong[rkind]
            rec[name] = value
            breakage.wrong_type[(path, shape.key(rkind, rec))] = name
            already = True
