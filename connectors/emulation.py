"""Building blocks every platform emulator shares: injected faults and their bookkeeping.

Emulators serve tests, the demo and benchmarks; a fault plan makes one misbehave on purpose
(5xx, slow answers, broken records, rate limiting, cut-off bodies) in a seeded, repeatable way.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random
from typing import Literal

__all__ = ["Fault", "FaultKind", "FaultPlan"]

FaultKind = Literal["http_500", "http_503", "timeout", "malformed", "rate_limit", "truncated"]


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
    delay: float = 0  # timeout: how long the answer takes


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
