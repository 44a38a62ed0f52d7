"""Building blocks every platform emulator shares: injected faults and their bookkeeping.

Emulators serve tests, the demo and benchmarks; a fault plan makes one misbehave on purpose
(5xx, slow answers, broken records, rate limiting, cut-off bodies) in a seeded, repeatable way.

Writes (review replies, vouchers) are logged in `app.state.writes`, one `write_entry` dict per
write request received, so a test can count what reached the "platform". The `apply_then_*`
faults are the lost-answer cases: the emulator applies the write, then the answer is lost (the
client times out) or replaced by a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random
from typing import Any, Literal

import orjson

__all__ = ["APPLY_THEN_FAIL", "Fault", "FaultKind", "FaultPlan", "write_entry"]

FaultKind = Literal["http_500", "http_503", "timeout", "malformed", "rate_limit", "truncated",
                    "apply_then_timeout", "apply_then_500"]
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


class FaultPlan:
    """Remaining counts and RNGs of an emulator's faults (the faults themselves stay frozen)."""

    def __init__(self, faults: tuple[Fault, ...], seed: int):
        self.faults = faults
        self.left = [f.times for f in faults]
        self.rngs = [Random(seed * 1000 + k) for k in range(len(faults))]

    def pick(self, path: str) -> int | None:
        """The index of the first fault that fires for `path`, using one of its turns."""
        for k, f in enumerate(self.faults):
            if not path.startswith(f.path_prefix) or self.left[k] == 0:
                continue
            if f.probability is not None and self.rngs[k].random() >= f.probability:
                continue
            if self.left[k] is not None:
                self.left[k] -= 1
            return k
        return None

    def refund(self, k: int) -> None:
        """Give back a turn that found nothing to break (e.g. an empty page for `malformed`)."""
        if self.left[k] is not None:
            self.left[k] += 1
