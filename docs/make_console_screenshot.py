"""Make docs/console.png: the demo into a temporary SQLite store, the console served on loopback as the
daemon serves it, logged in, and a screenshot of its inbox (in Russian, as the seller's staff see it).

    .venv/bin/python docs/make_console_screenshot.py [--orders N] [--reviews N]

Needs Debian's Chromium (`apt-get install chromium`) and the `playwright` package (the dev extra).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console
from starlette.applications import Starlette
from starlette.routing import Mount

from app.config import AppConfig, ConsoleSettings, ConsoleUser
from app.console import ROOT, console_app
from app.console.auth import hash_password
from app.demo import demo_settings, run_demo
from app.wiring import App, open_store
from connectors.testing.serving import served_all

CHROMIUM = "/usr/bin/chromium"
OUT = Path(__file__).resolve().parent / "console.png"
PASSWORD = "screenshot-only-password"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--reviews", type=int, default=600)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        asyncio.run(run_demo(orders=args.orders, reviews=args.reviews, database_url=url,
                             console=Console(stderr=True, quiet=True)))
        user = ConsoleUser(name="olga", password_hash_env="-", password_hash=SecretStr(hash_password(PASSWORD)))
        settings = demo_settings(url).model_copy(update={"console": ConsoleSettings(enabled=True, users=(user,))})
        app = App(AppConfig(settings=settings, accounts=(), config_path=None), store=open_store(url))
        with served_all([Starlette(routes=[Mount(ROOT, app=console_app(app))])]) as [base]:
            screenshot(f"{base}{ROOT}", args.out)
    print(f"screenshot written to {args.out}")


def screenshot(root: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(locale="ru-RU", viewport={"width": 1200, "height": 1000})
            page.goto(f"{root}/login")
            page.fill("input[name=user]", "olga")
            page.fill("input[name=password]", PASSWORD)
            page.get_by_role("button", name="Войти").click()
            page.wait_for_url(f"{root}/")
            page.screenshot(path=str(out))
        finally:
            browser.close()


if __name__ == "__main__":
    main()
