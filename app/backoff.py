"""How long a stream whose token was rejected waits before its next try.

A rejected token stays rejected until a person replaces it, so polling it at the usual interval only
fills the log and spends the platform's patience. The wait starts at one poll interval and doubles
with each rejection in a row, up to `cap`; a run that is not rejected resets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["AUTH_BACKOFF_CAP", "AuthBackoff", "Retry"]

AUTH_BACKOFF_CAP = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Retry:
    """One backoff step: the how-many-th rejection in a row, the wait, and when the next try is."""

    step: int
    wait: timedelta
    at: datetime


class AuthBackoff:
    """Rejections in a row per job, and the wait each one earns."""

    def __init__(self, cap: timedelta = AUTH_BACKOFF_CAP):
        self.cap = cap
        self._steps: dict[str, int] = {}

    def rejected(self, job: str, interval: timedelta, now: datetime) -> Retry:
        """Count one more rejection of `job`; its next try waits interval x 2^(n-1), at most the cap."""
        step = self._steps.get(job, 0) + 1
        self._steps[job] = step
        # A poll interval longer than the cap is kept: backing off never polls more often.
        wait = min(interval * 2 ** min(step - 1, 32), max(self.cap, interval))
        return Retry(step, wait, now + wait)

    def succeeded(self, job: str) -> bool:
        """Reset `job`; True when it was backing off."""
        return self._steps.pop(job, None) is not None
