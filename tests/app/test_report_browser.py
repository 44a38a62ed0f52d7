"""The report in a real browser: Debian's Chromium, headless, driven by playwright.

It must render (title, every section heading visible), every chart must be an SVG with drawn marks,
and the page must emit no console error, no page error, no dialog and no request beyond its own file.
`./dev test` installs Debian's Chromium when it runs as root (as CI does); elsewhere, without it,
these tests skip with the one command to run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from app.report.data import Period, build_report, default_period, no_identity_platforms
from app.report.page import render_html

CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = ("Orders per day", "Repeat purchases", "Reviews and replies", "Loyalty points and tiers",
            "Actions by decision", "Sync health")
HOSTILE = "<script>alert(1)</script>"
INSTALL = "sudo apt-get install chromium"


def require_chromium() -> None:
    """Skip, naming the one command to run, when Debian's Chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: the report's browser tests need Debian's Chromium; run "
                    f"`{INSTALL}` (not `playwright install`), or `./dev test` as root, which installs it")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    require_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: `.venv/bin/pip install playwright` (the dev extra)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


class Opened:
    """A page with everything it emitted recorded."""

    def __init__(self, browser, html: Path):
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": 1366, "height": 800})
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type in ("error", "warning")
                     else None)
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = html.resolve().as_uri()
        self.page.goto(self.url, wait_until="load")

    def assert_quiet(self) -> None:
        assert self.console_errors == [] and self.page_errors == [] and self.dialogs == []
        assert self.requests == [self.url]  # nothing but the file itself was loaded

    def chart_marks(self) -> list[tuple[str, int]]:
        """Per SVG: its title, how many marks (bars, lines, points) it draws, and its rendered width."""
        return self.page.eval_on_selector_all(
            "svg", "els => els.map(s => [s.getAttribute('aria-label') || '', "
                   "s.querySelectorAll('rect.mark, path.mark, circle.mark').length, "
                   "s.getBoundingClientRect().width])")


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.demo import demo_settings, run_demo
    from app.wiring import open_store

    root = tmp_path_factory.mktemp("report-browser")
    url = f"sqlite:///{root / 'demo.db'}"
    # In a thread of its own: while the module's browser is open, playwright's loop runs in this one.
    with ThreadPoolExecutor(1) as pool:
        summary = pool.submit(asyncio.run, run_demo(orders=300, reviews=80, database_url=url,
                                                    console=Console(quiet=True))).result()
    assert summary.ok
    now = datetime.now(UTC)
    settings = demo_settings(url)
    report = build_report(open_store(url), loyalty=settings.loyalty, actions=settings.actions,
                          period=default_period(now), now=now, no_identity=no_identity_platforms())
    out = root / "report.html"
    out.write_text(render_html(report), encoding="utf-8")
    return out


def test_the_demo_report_renders_every_section_and_chart(browser, demo_report: Path, demo_platforms: list[str]):
    opened = Opened(browser, demo_report)
    page = opened.page
    assert page.title().startswith("loyalsync report · ")
    for heading in SECTIONS:
        assert page.get_by_role("heading", name=heading, exact=True).is_visible(), heading
    charts = opened.chart_marks()
    assert len(charts) >= len(SECTIONS)
    for title, marks, width in charts:
        assert marks > 0 and width > 300, (title, marks, width)
    assert page.locator("svg.empty").count() == 0  # the demo has data for every chart
    for section in ("orders", "repeat", "reviews", "points", "actions", "sync"):
        assert page.locator(f"section#{section} svg").count() >= 1, section
    assert page.locator("section#orders svg path.mark").count() == len(demo_platforms)  # one line per platform
    assert page.get_by_text("Wildberries has no buyer identity").is_visible()
    opened.assert_quiet()
    page.close()


def test_hostile_platform_text_is_shown_as_text_and_never_runs(browser, sqlite_store, tmp_path: Path):
    from connectors.records import ReviewRecord
    from loyalty.action_settings import ActionSettings
    from loyalty.rules import LoyaltySettings
    from store import PageWrite
    from store.store import StreamKey

    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    review = ReviewRecord("ozon", "main", "R1", "1", 1, "t", "", "", now, False, None, product_name=HOSTILE)
    sqlite_store.write_page(StreamKey("ozon", "main", "reviews"), PageWrite(reviews=[review]), now=now)
    sqlite_store.record_run(StreamKey("ozon", "main", "reviews"), state="error", at=now,
                            error=f'{HOSTILE}<img src=x onerror="alert(2)">')
    report = build_report(sqlite_store, loyalty=LoyaltySettings(), actions=ActionSettings(),
                          period=Period(now.date(), now.date()), now=now, no_identity=no_identity_platforms())
    out = tmp_path / "hostile.html"
    out.write_text(render_html(report), encoding="utf-8")
    opened = Opened(browser, out)
    page = opened.page
    assert page.locator("script, img").count() == 0
    assert page.get_by_text(HOSTILE, exact=True).first.is_visible()  # the product name, as text
    assert page.locator("section#sync .err").inner_text().startswith(HOSTILE)
    opened.assert_quiet()
    page.close()


def test_an_empty_store_renders_saying_there_is_no_data_yet(browser, sqlite_store, tmp_path: Path):
    from loyalty.action_settings import ActionSettings
    from loyalty.rules import LoyaltySettings

    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    report = build_report(sqlite_store, loyalty=LoyaltySettings(), actions=ActionSettings(),
                          period=default_period(now), now=now)
    out = tmp_path / "empty.html"
    out.write_text(render_html(report), encoding="utf-8")
    opened = Opened(browser, out)
    page = opened.page
    assert page.get_by_text("No data yet.", exact=True).is_visible()
    for heading in SECTIONS:
        assert page.get_by_role("heading", name=heading, exact=True).is_visible(), heading
    for section in ("orders", "repeat", "reviews", "points", "actions", "sync"):
        assert page.locator(f"section#{section} svg").count() >= 1, section
    opened.assert_quiet()
    page.close()


def test_without_chromium_the_browser_tests_skip_naming_the_command(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setitem(globals(), "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_chromium()
    assert INSTALL in str(skipped.value) and "no-chromium is missing" in str(skipped.value)
