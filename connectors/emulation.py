"""Building blocks every platform emulator shares: injected faults and their bookkeeping.

Emulators serve tests, the demo and benchmarks; a fault plan makes one misbehave on purpose
(5xx, slow answers, broken records, rate limiting, cut-off bodies) in a seeded, repeatable way.

Writes (review replies, vouchers) are logged in `app.state.writes`, one `write_entry` dict per
write request received, so a test can count what reached the "platform". The `apply_then_*`
faults are the lost-answer cases: the emulator applies the write, then the answer is lost (the
client times out) or replaced by a 500.

Faults act at three stages of a request, each asked separately (`FaultPlan.pick(path, stage)`):

- `auth` (`expired_token`): checked with the token; once it fires (after `after` requests it let
  through), every later request of that emulator gets the platform's expired-token 401.
- `request` (the classic kinds): at most one per request: 5xx, timeouts, 429/420, cut-off bodies,
  lost answers, `malformed` values.
- `payload` (`schema_drift`, `wrong_type`): reshape a successful answer, every one that fires.
  `schema_drift` adds unknown fields to every object of the answer and leaves out fields the
  platform documents as optional; `wrong_type` gives one record of a page a field of the wrong
  JSON type, and that record stays broken on every later read (a platform's bad record does not
  heal by itself). Both are recorded on a `Breakage` so a test knows exactly what was done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Any, Literal

import orjson

__all__ = ["APPLY_THEN_FAIL", "AUTH_FAULTS", "PAYLOAD_FAULTS", "Breakage", "Fault", "FaultKind", "FaultPlan",
           "PayloadShape", "add_unknown_fields", "drop_optional", "reshape_payload", "write_entry"]

FaultKind = Literal["http_500", "http_503", "timeout", "malformed", "rate_limit", "truncated",
                    "apply_then_timeout", "apply_then_500", "expired_token", "schema_drift", "wrong_type"]
Stage = Literal["auth", "request", "payload"]
#: Faults checked with the token, before limits and the request faults.
AUTH_FAULTS: frozenset[str] = frozenset({"expired_token"})
#: Faults that reshape a successful answer; several may apply to one answer.
PAYLOAD_FAULTS: frozenset[str] = frozenset({"schema_drift", "wrong_type"})
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
    retry_after: int = 1  # rate_limit: the wait the answer asks for, in seconds
    delay: float = 0  # timeout, apply_then_timeout: how long the answer takes
    after: int = 0  # let this many matching requests through untouched first


class FaultPlan:
    """Remaining counts and RNGs of an emulator's faults (the faults themselves stay frozen)."""

    def __init__(self, faults: tuple[Fault, ...], seed: int):
        self.faults = faults
        self.left = [f.times for f in faults]
        self.rngs = [Random(seed * 1000 + k) for k in range(len(faults))]
        self.seen = [0] * len(faults)

    @staticmethod
    def stage_of(kind: str) -> Stage:
        return "auth" if kind in AUTH_FAULTS else "payload" if kind in PAYLOAD_FAULTS else "request"

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
