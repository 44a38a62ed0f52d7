"""Make docs/report.png: the demo into a temporary SQLite store, `loyalsync report`, a full-page screenshot.

    .venv/bin/python docs/make_report_screenshot.py [--orders N] [--reviews N] [--html PATH]

Needs Debian's Chromium (`apt-get install chromium`) and the `playwright` package (the dev extra);
`playwright install` is not needed. The demo program gets three example tiers so the tier chart has
something to show; everything else is the demo's own configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from app.demo import demo_settings, run_demo
from app.report import default_period, write_report
from app.wiring import open_store
from loyalty.rules import LoyaltySettings

CHROMIUM = "/usr/bin/chromium"
OUT = Path(__file__).resolve().parent / "report.png"
TIERS = LoyaltySettings.model_validate({
    "enabled": True,
    "tiers": [{"name": "bronze", "min_spend": 0, "earn_rate": "0.03"},
              {"name": "silver", "min_spend": 5000, "earn_rate": "0.05"},
              {"name": "gold", "min_spend": 20000, "earn_rate": "0.07"}],
})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--reviews", type=int, default=600)
    parser.add_argument("--html", type=Path, help="Also keep the HTML here.")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        asyncio.run(run_demo(orders=args.orders, reviews=args.reviews, database_url=url,
                             console=Console(stderr=True, quiet=True)))
        html = args.html or Path(tmp) / "report.html"
        now = datetime.now(UTC)
        settings = demo_settings(url)
        write_report(open_store(url), html, loyalty=TIERS, actions=settings.actions, period=default_period(now),
                     now=now)
        screenshot(html, args.out)
    print(f"screenshot written to {args.out}")


def screenshot(html: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            page.goto(html.resolve().as_uri())
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
