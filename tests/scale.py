"""How much of each harness a run of the suite does.

`./dev test` (and CI) runs about a third of the property examples and a few crash kills, so the
whole suite stays under six minutes on a 2-core machine; the full counts are one variable away:

    LOYALSYNC_FULL=1 ./dev test

`LOYALSYNC_PROPERTY_EXAMPLES` and `LOYALSYNC_CRASH_KILLS` still set one count outright.
"""

from __future__ import annotations

import os

__all__ = ["FULL", "examples"]

FULL = os.environ.get("LOYALSYNC_FULL", "") not in ("", "0")


def examples(full: int) -> int:
    """`full` property examples in a full run, a third of them (at least one) otherwise."""
    return full if FULL else max(1, full // 3)
