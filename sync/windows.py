"""Pure window planning: which closed-open time ranges a stream run reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connectors.base import CursorKind, StreamSpec, Window

__all__ = ["RunPlan", "next_cursor", "plan_run"]


@dataclass(frozen=True, slots=True)
class RunPlan:
    """The windows of one run, and whether it is the periodic wider re-scan."""

    windows: tuple[Window, ...]
    rescan: bool


def plan_run(spec: StreamSpec, cursor_at: datetime | None, last_rescan_at: datetime | None,
             now: datetime) -> RunPlan:
    """Windows from (cursor - lookback) up to (now - lag), each at most `spec.window` long.

    The first run starts `start_history` ago; so does a cursor older than that, because the
    platforms keep no more history than that anyway.
    """
    upper = now - spec.lag
    rescan = bool(
        cursor_at is not None
        and spec.rescan_every is not None
        and spec.rescan_lookback is not None
        and (last_rescan_at is None or now - last_rescan_at >= spec.rescan_every)
    )
    earliest = now - spec.start_history
    if cursor_at is None:
        start = earliest
    else:
        lookback = max(spec.lookback, spec.rescan_lookback) if rescan and spec.rescan_lookback else spec.lookback
        start = max(cursor_at - lookback, earliest)
    if start >= upper:
        return RunPlan((), rescan)
    if spec.cursor is CursorKind.HIGH_WATER:
        # The platform pages by its own change mark; one open-ended span is all there is to plan.
        return RunPlan((Window(start, upper),), rescan)
    windows = []
    while start < upper:
        end = min(start + spec.window, upper)
        windows.append(Window(start, end))
        start = end
    return RunPlan(tuple(windows), rescan)


def next_cursor(current: datetime | None, reached: datetime) -> datetime:
    """Cursors never move back: re-reading a lookback must not lose ground after a crash."""
    return reached if current is None or reached > current else current
