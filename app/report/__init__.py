"""`loyalsync report`: one self-contained HTML page of the store's figures, with inline SVG charts.

`data` reads the store into plain dataclasses, `svg` draws charts from small data, `page` renders the
document; `write_report` ties them together for the command.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from app.report.data import Period, Report, build_report, default_period, no_identity_platforms
from app.report.page import render_html
from loyalty.action_settings import ActionSettings
from loyalty.rules import LoyaltySettings
from store import Store

__all__ = ["Period", "Report", "build_report", "default_period", "render_html", "write_report"]


def write_report(store: Store, path: Path, *, loyalty: LoyaltySettings, actions: ActionSettings, period: Period,
                 now: datetime) -> Report:
    """Build the report and write it to `path` (UTF-8); OSError if the file cannot be written."""
    report = build_report(store, loyalty=loyalty, actions=actions, period=period, now=now,
                          no_identity=no_identity_platforms())
    path.write_text(render_html(report), encoding="utf-8")
    return report
