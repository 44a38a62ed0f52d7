"""What every bench script shares: the result rows and the JSON file `bench/run.py` collects.

Every script writes `bench/results/NAME.json`:

    {"bench": NAME, "params": {...}, "rows": [{"metric": str, "value": float, "unit": str,
                                               "target": str | None, "met": bool | None}, ...],
     ...extra detail keys of that script...}

`target` is the target in words (e.g. ">= 30,000"), `met` whether this run met it; both are None
for a figure that is only reported. A figure that could not be measured is left out rather than
written as a fake value.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["MB_BYTES", "RESULTS", "RssSampler", "maxrss_mb", "print_rows", "row", "write_result"]

RESULTS = Path(__file__).resolve().parent / "results"
MB_BYTES = 1024 * 1024


def row(metric: str, value: float, unit: str, target: str | None = None, met: bool | None = None) -> dict:
    """One figure of the contract; `met` stays None when there is no target."""
    return {"metric": metric, "value": float(value), "unit": unit, "target": target,
            "met": None if target is None else bool(met)}


def write_result(bench: str, params: dict[str, Any], rows: list[dict], **extra: Any) -> Path:
    """Write `bench/results/<bench>.json` in the shared contract (extra keys kept alongside)."""
    RESULTS.mkdir(exist_ok=True)
    out = {"bench": bench, "params": params, "rows": rows,
           "python": sys.version.split()[0], **extra}
    path = RESULTS / f"{bench}.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    return path


def print_rows(bench: str, rows: list[dict]) -> None:
    """The contract rows as a plain-text table (run.py prints the combined one with rich)."""
    print(f"\n{bench}: {'metric':<58}{'value':>14} {'unit':<10}{'target':<14}met")
    for r in rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        print(f"  {r['metric']:<{58 + len(bench)}}{_fmt(r['value']):>14} {r['unit']:<10}"
              f"{r['target'] or '':<14}{met}")


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "—"  # nothing measured (e.g. no poll in the window), not a crash
    if value == int(value) and abs(value) >= 10:
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"


class RssSampler(threading.Thread):
    """Peak resident set of this process in bytes, sampled from /proc/self/statm every `interval` s."""

    def __init__(self, interval: float = 0.02):
        super().__init__(daemon=True)
        self.interval = interval
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.peak = self.start_rss = self.rss()
        self._halt = threading.Event()

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.peak = max(self.peak, self.rss())

    def stop(self) -> int:
        self._halt.set()
        self.join()
        self.peak = max(self.peak, self.rss())
        return self.peak


def maxrss_mb() -> float:
    """getrusage's peak resident set of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
