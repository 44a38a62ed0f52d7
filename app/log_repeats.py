"""A logging filter that lets the first of a repeated message through and counts the rest.

APScheduler logs `Execution of job "…" skipped: maximum number of running instances reached` each
time a stream is due while its previous run still goes on, every few seconds on a slow store. That
is expected (runs never overlap, by design), so it is said once, then once per `every` with the count
of repeats held back meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["MAX_INSTANCES", "RepeatFilter"]

MAX_INSTANCES = "maximum number of running instances reached"


class RepeatFilter(logging.Filter):
    """Holds back repeats of messages containing `marker`, reporting their count once per `every` seconds."""

    def __init__(self, marker: str = MAX_INSTANCES, *, every: float = 600.0,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.marker, self.every, self.clock = marker, every, clock
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, int]] = {}  # message -> (last shown, repeats held back since)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.marker not in str(record.msg):
            return True
        message, now = record.getMessage(), self.clock()
        with self._lock:
            shown = self._seen.get(message)
            if shown is not None and now - shown[0] < self.every:
                self._seen[message] = (shown[0], shown[1] + 1)
                return False
            held = shown[1] if shown else 0
            self._seen[message] = (now, 0)
        if held:
            suffix = f" ({held} more time(s) in the last {self.every / 60:g} min, not logged)"
        else:
            suffix = f" (expected while a run takes longer than its interval; repeats are counted, " \
                     f"reported every {self.every / 60:g} min)"
        record.msg, record.args = message + suffix, None
        return True
