"""`loyalsync report`: the figures from a store with known data (both backends), the page's safety
(self-contained, escaped, aggregates only), the empty store, the command, and a report of a demo sync."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import insert
from typer.testing import CliRunner

from app.cli import app
from app.report.data import (
    ActionCount,
    Period,
    action_figures,
    build_report,
    daily_orders,
    default_period,
    no_identity_platforms,
    points_figures,
    repeat_figures,
    review_figures,
    stream_health,
)
from app.report.page import render_html
from app.report.svg import Series, bar_chart, hbar_chart, line_chart, nice_ticks
from connectors.records import OrderRecord, OrderStatus, ReviewRecord
from connectors.registry import available_connectors
from loyalty.action_settings import ActionSettings, ReplySettings
from loyalty.engine import Entry
from loyalty.ledger import apply, entries_of, run_once
from loyalty.members import summarize
from loyalty.replies import overdue
from loyalty.rules import LoyaltySettings
from store import PageWrite, Store
from store.loyalty_tables import ActionRow
from store.store import Quarantined, StreamKey

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAY = timedelta(days=1)
PERIOD = Period(date(2026, 11, 1), date(2026, 11, 20))
HOSTILE = "<script>alert(1)</script>"
SECRET_BUYER = "buyerkey-7f3a9c-do-not-leak"
TIERS = LoyaltySettings.model_validate({
    "enabled": True,
    "tiers": [{"name": "bronze", "min_spend": 0, "earn_rate": "0.03"},
              {"name": "silver", "min_spend": 1500, "earn_rate": "0.05"}],
})
ACTIONS = ActionSettings.model_validate({"promo": {"point_value": "0.5"}})


def at(day: int, hour: int = 10, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def order(mp: str, oid: str, created: datetime, buyer: str | None, *, total: str = "1000",
          status: OrderStatus = OrderStatus.DELIVERED, status_at: datetime | None = None) -> OrderRecord:
    return OrderRecord(mp, "main", oid, created, created, status, status.value, "fbs", "RUB", Decimal(total), (),
                       buyer_key=buyer, status_changed_at=status_at)


def review(mp: str, rid: str, rating: int, created: datetime, *, answered: bool, product: str | None = None,
           sku: str = "100") -> ReviewRecord:
    return ReviewRecord(mp, "main", rid, sku, rating, "текст", "", "", created, answered, None, product_name=product)


ORDERS = [
    # ozon: b1 buys three times (gaps of 3 and 14 days), b2 once in the period (once before it),
    # b3 once (a cancelled order does not count), b4 at the very first instant, one order without a key.
    order("ozon", "O1", at(2), "b1"),
    order("ozon", "O2", at(5), "b1"),
    order("ozon", "O3", at(19), "b1"),
    order("ozon", "O4", at(3), "b2"),
    # Cancelled within the hour: it never counts (without a status time, the store would date the
    # cancellation when a sync first saw it, after the order settled, and it would count until then).
    order("ozon", "O5", at(4), "b3", status=OrderStatus.CANCELLED, status_at=at(4, 11)),
    order("ozon", "O6", at(10), "b3"),
    order("ozon", "O7", at(10, 15), None),
    order("ozon", "O8", at(20, month=10), "b2", total="300"),  # before the period
    order("ozon", "O9", datetime(2026, 11, 1, tzinfo=UTC), SECRET_BUYER),  # the period's first instant
    # wildberries: never a buyer key; one order at the first instant after the period.
    order("wildberries", "W1", at(2, 8), None),
    order("wildberries", "W2", at(2, 9), None),
    order("wildberries", "W3", at(20, 11), None),
    order("wildberries", "W4", datetime(2026, 11, 21, tzinfo=UTC), None),
]
REVIEWS = [
    review("ozon", "R1", 5, at(3), answered=True),
    review("ozon", "R2", 1, at(5), answered=False, product=HOSTILE),  # past the 2-day target
    review("ozon", "R3", 2, at(19), answered=False, product=HOSTILE),  # within it
    review("ozon", "R4", 4, at(1, month=10), answered=False),  # before the period
    review("wildberries", "R5", 3, at(18, 13), answered=False, product="Худи оверсайз"),  # 47 h old: within
    review("wildberries", "R6", 5, at(6), answered=True),
]


def action(key: str, kind: str, mp: str, status: str, created: datetime, *, target: str = "x",
           reason: str | None = None, sent_at: datetime | None = None) -> dict:
    return {"key": key, "kind": kind, "marketplace": mp, "account": "main", "target": target, "title": "t",
            "text": None, "public": False, "purpose": "service", "grounds": "", "cost": Decimal(0), "params": "{}",
            "approval": "auto", "status": status, "reason": reason, "detail": "", "attempts": 0,
            "created_at": created, "updated_at": created, "sent_at": sent_at}


def load(store: Store) -> None:
    for mp in ("ozon", "wildberries"):
        store.write_page(StreamKey(mp, "main", "orders"),
                         PageWrite(orders=[o for o in ORDERS if o.marketplace == mp]), now=NOW)
        store.write_page(StreamKey(mp, "main", "reviews"),
                         PageWrite(reviews=[r for r in REVIEWS if r.marketplace == mp]), now=NOW)
    store.record_run(StreamKey("ozon", "main", "orders"), state="ok", at=NOW - DAY)
    store.record_run(StreamKey("ozon", "main", "reviews"), state="ok", at=NOW - DAY)
    store.record_run(StreamKey("wildberries", "main", "orders"), state="ok", at=NOW - 2 * DAY)
    store.write_page(StreamKey("wildberries", "main", "reviews"),
                     PageWrite(quarantined=[Quarantined("bad-1", "no rating", {"id": 1}),
                                            Quarantined("bad-2", "no date", {"id": 2})]), now=NOW)
    store.record_run(StreamKey("wildberries", "main", "reviews"), state="error", at=NOW, error=HOSTILE)
    member = {"marketplace": "ozon", "account": "main"}
    apply(store, [
        Entry("earn", Decimal(100), "t:b1:1", "O1", "rate", at(2), available_from=NOW - 5 * DAY, **member,
              buyer_key="b1"),
        Entry("earn", Decimal(40), "t:b1:2", "O2", "rate", at(5), available_from=NOW + 5 * DAY, **member,
              buyer_key="b1"),
        Entry("spend", Decimal(-30), "t:b1:3", None, None, at(15), **member, buyer_key="b1"),
        Entry("earn", Decimal(25), "t:b2:1", "O4", "rate", at(3), **member, buyer_key="b2"),  # date unknown: pending
        Entry("spend", Decimal(-10), "t:b3:1", None, None, at(12), **member, buyer_key="b3"),  # nothing to take: debt
    ])
    rows = [
        action("reply:ozon:main:R1", "reply_to_review", "ozon", "sent", at(3, 12), target="R1",
               sent_at=at(4, 16)),  # 30 h after the review
        action("reply:ozon:main:R2", "reply_to_review", "ozon", "dry_run", at(6), target="R2"),
        action("reply:wildberries:main:R6", "reply_to_review", "wildberries", "sent", at(6, 12), target="R6",
               sent_at=at(9, 11)),  # 73 h after
        action("promo:1", "create_promo_code", "ozon", "refused", at(7), reason="over_budget"),
        action("promo:2", "create_promo_code", "ozon", "refused", at(8), reason="over_budget"),
        action("promo:3", "create_promo_code", "ozon", "pending", at(9)),
        action("promo:old", "create_promo_code", "ozon", "pending", at(9, month=10)),  # before the period
        action("chat:1", "send_chat_message", "wildberries", "refused", at(9), reason="chat_start_not_allowed"),
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(ActionRow.__table__), rows)


@pytest.fixture
def loaded(store: Store) -> Store:
    load(store)
    return store


# -- the figures, on SQLite and PostgreSQL ------------------------------------------------------------

def test_orders_per_day_count_every_status_within_the_utc_days(loaded: Store):
    got = daily_orders(loaded, PERIOD)
    assert got.days[0] == date(2026, 11, 1) and got.days[-1] == date(2026, 11, 20) and len(got.days) == 20
    per_day = {mp: {got.days[i].day: n for i, n in enumerate(v) if n} for mp, v in got.by_marketplace.items()}
    assert per_day == {"ozon": {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 10: 2, 19: 1},  # O5 cancelled still counts
                       "wildberries": {2: 2, 20: 1}}  # W4 (Nov 21, 00:00) is outside
    assert got.total == 11


def test_repeat_purchases_use_buyer_keys_only_and_say_when_there_are_none(loaded: Store):
    got = {r.marketplace: r for r in repeat_figures(loaded, PERIOD, no_identity=["wildberries"]).rows}
    oz = got["ozon"]
    assert (oz.orders, oz.keyed_orders, oz.keyless_orders) == (7, 6, 1)  # O5 cancelled, O8 before the period
    assert (oz.buyers, oz.repeat_buyers, oz.repeat_rate) == (4, 1, 0.25)
    assert oz.gaps == (1, 0, 1, 0, 0)  # 3 days; 14 days falls in "14–30 days"
    assert oz.median_gap_days == pytest.approx(8.5)
    assert oz.identity
    wb = got["wildberries"]
    assert (wb.orders, wb.keyed_orders, wb.buyers, wb.repeat_rate, wb.identity) == (3, 0, 0, None, False)
    assert "wildberries" in no_identity_platforms() and "ozon" not in no_identity_platforms()


def test_reviews_by_rating_reply_status_and_reply_time_from_the_outbox(loaded: Store):
    target = ReplySettings().within
    got = review_figures(loaded, PERIOD, NOW, target)
    assert got.ratings == {"ozon": (1, 1, 0, 0, 1), "wildberries": (0, 0, 1, 0, 1)}
    assert got.answered == {"ozon": 1, "wildberries": 1}
    assert got.waiting == {"ozon": 1, "wildberries": 1}
    assert got.overdue == {"ozon": 1, "wildberries": 0}
    # Only sent replies are timed: review created_at -> action sent_at (30 h and 73 h).
    assert got.buckets == ("under 1 day", "1–2 days", "2–7 days", "7+ days")
    assert got.reply_times == {"ozon": (0, 1, 0, 0), "wildberries": (0, 0, 1, 0)}
    [low] = got.low_rated
    assert (low.marketplace, low.name, low.low, low.reviews, low.average) == ("ozon", HOSTILE, 2, 2, 1.5)
    # Over all time, "past the target" is exactly loyalty.replies.overdue.
    everything = review_figures(loaded, Period(date(2020, 1, 1), date(2026, 11, 20)), NOW, target)
    assert {mp: n for mp, n in everything.overdue.items() if n} == overdue(loaded, ReplySettings(), NOW) == {"ozon": 2}


def test_points_outstanding_and_tier_mix(loaded: Store):
    got = points_figures(loaded, TIERS, Decimal("0.5"), NOW)
    [oz] = got.rows  # wildberries has no members: no buyer keys
    assert oz.marketplace == "ozon" and oz.members == 4
    assert (oz.available, oz.pending, oz.debt, oz.outstanding) == (70, 65, 10, 135)  # 100-30 available
    assert got.outstanding == 135 and got.outstanding_roubles == Decimal("67.5")
    # b1: 2000 settled spend -> silver; b2 (1300), b3 (1000; O5 cancelled), b4 (1000) -> bronze
    assert oz.tiers == {"silver": 1, "bronze": 3}
    assert got.tier_names == ("bronze", "silver")
    untiered = points_figures(loaded, LoyaltySettings(enabled=True), Decimal(1), NOW)
    assert untiered.rows[0].tiers == {"no tier": 4} and untiered.tier_names == ("no tier",)


def test_points_match_the_programs_own_summary_after_a_ledger_run(store: Store):
    program = LoyaltySettings.model_validate({"enabled": True, "welcome": {"points": 30}})
    for mp in ("ozon", "wildberries"):
        store.write_page(StreamKey(mp, "main", "orders"),
                         PageWrite(orders=[o for o in ORDERS if o.marketplace == mp]), now=NOW)
    run_once(store, program, NOW)
    got = points_figures(store, program, Decimal(1), NOW)
    summary = summarize(store.iter_orders(), entries_of(store), program, NOW).marketplaces["ozon"]
    assert got.outstanding == summary.available + summary.pending > 0
    assert got.rows[0].members == summary.members == 4


def test_actions_by_decision_in_the_period(loaded: Store):
    got = action_figures(loaded, PERIOD)
    assert got.counts == (
        ActionCount("ozon", "create_promo_code", "pending", None, 1),  # promo:old is before the period
        ActionCount("ozon", "create_promo_code", "refused", "over_budget", 2),
        ActionCount("ozon", "reply_to_review", "dry_run", None, 1),
        ActionCount("ozon", "reply_to_review", "sent", None, 1),
        ActionCount("wildberries", "reply_to_review", "sent", None, 1),
        ActionCount("wildberries", "send_chat_message", "refused", "chat_start_not_allowed", 1),
    )
    assert got.total == 7
    assert got.refusals() == {"over_budget": {"ozon": 2}, "chat_start_not_allowed": {"wildberries": 1}}
    assert got.by_status()[("ozon", "create_promo_code")] == {"pending": 1, "refused": 2}


def test_sync_health_per_stream(loaded: Store):
    got = {(s.marketplace, s.stream): s for s in stream_health(loaded)}
    assert set(got) == {("ozon", "orders"), ("ozon", "reviews"), ("wildberries", "orders"),
                        ("wildberries", "reviews")}
    oz = got[("ozon", "orders")]
    assert (oz.state, oz.last_success_at, oz.records, oz.quarantined, oz.last_error) == ("ok", NOW - DAY, 9, 0, None)
    wb = got[("wildberries", "reviews")]  # 2 reviews written; the 2 quarantined ones are counted apart
    assert (wb.state, wb.last_success_at, wb.records, wb.quarantined, wb.last_error) == ("error", None, 2, 2, HOSTILE)


# -- the page ---------------------------------------------------------------------------------------------

class _Outline(HTMLParser):
    """Sections with their headings and the charts in each; every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, int] = {}
        self.headings: list[str] = []
        self.urls: list[str] = []
        self.scripts = 0
        self._section: str | None = None
        self._h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self._section = a.get("id")
            self.sections[self._section] = 0
        elif tag == "svg" and self._section:
            self.sections[self._section] += 1
        elif tag == "h2":
            self._h2 = True
        elif tag == "script":
            self.scripts += 1
        self.urls += [v for k, v in attrs if k in ("src", "href", "xlink:href", "action", "data", "poster") and v]

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None
        elif tag == "h2":
            self._h2 = False

    def handle_data(self, data):
        if self._h2:
            self.headings.append(data)


SECTIONS = {"orders": "Orders per day", "repeat": "Repeat purchases", "reviews": "Reviews and replies",
            "points": "Loyalty points and tiers", "actions": "Actions by decision", "sync": "Sync health"}


def outline(html: str) -> _Outline:
    parser = _Outline()
    parser.feed(html)
    parser.close()
    return parser


def assert_self_contained(html: str) -> None:
    found = outline(html)
    assert found.urls == [], found.urls
    assert found.scripts == 0
    assert not re.search(r"<script\b", html, re.I)
    assert not re.search(r"@import|url\(", html, re.I)
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html, re.I)
    assert "default-src 'none'" in html  # and the browser is told to load nothing at all


def test_the_page_is_self_contained_escaped_and_has_a_chart_per_section(loaded: Store):
    report = build_report(loaded, loyalty=TIERS, actions=ACTIONS, period=PERIOD, now=NOW,
                          no_identity=["wildberries"])
    html = render_html(report)
    assert_self_contained(html)
    found = outline(html)
    assert found.headings == list(SECTIONS.values())
    assert list(found.sections) == list(SECTIONS)
    assert all(n >= 1 for n in found.sections.values()), found.sections
    # Platform text (a product name, a platform error) is shown, escaped, never as markup.
    assert HOSTILE not in html and "<script" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2
    # Aggregates only: no buyer key, not even the one of a member with points.
    for buyer in (SECRET_BUYER, "b1", "b2"):
        assert not re.search(rf"\b{re.escape(buyer)}\b", html), buyer
    assert "Wildberries has no buyer identity" in html
    assert "67.50 ₽" in html  # 135 points outstanding at 0.5 ₽
    assert "Ozon: 25% of 4 buyers" in html
    assert "records whether a review is answered, not when" in html
    assert "for the 2 replies loyalsync sent itself" in html
    assert "2026-11-01 – 2026-11-20" in html


def test_an_empty_store_still_gives_a_valid_report_saying_so(store: Store):
    report = build_report(store, loyalty=LoyaltySettings(), actions=ActionSettings(), period=default_period(NOW),
                          now=NOW, no_identity=no_identity_platforms())
    assert report.empty and report.period == Period(date(2026, 8, 23), date(2026, 11, 20))
    html = render_html(report)
    assert_self_contained(html)
    assert "No data yet." in html and "loyalty program is off" in html
    found = outline(html)
    assert list(found.sections) == list(SECTIONS) and all(n >= 1 for n in found.sections.values())


# -- the charts ----------------------------------------------------------------------------------------

def test_nice_ticks_reach_the_top_in_round_steps():
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(100) == [0, 25, 50, 75, 100]
    assert nice_ticks(1234)[-1] >= 1234


def test_charts_draw_one_mark_per_value_with_an_escaped_tooltip():
    svg = bar_chart(["a<b", "c"], [Series("x&y", [1, 2]), Series("z", [0, 3])], title=HOSTILE)
    assert svg.count('class="mark"') == 3  # a zero draws nothing
    assert "<title>a&lt;b — x&amp;y: 1</title>" in svg and HOSTILE not in svg
    hsvg = hbar_chart(["row"], [Series("s", [5])], title="t")
    assert hsvg.count('class="mark"') == 1 and "<title>row — s: 5</title>" in hsvg
    lsvg = line_chart(["d1", "d2", "d3"], [Series("ozon", [1, 4, 2])], title="t")
    assert lsvg.count("<path") == 1 and lsvg.count('class="hover"') == 3
    assert "<title>d2\nozon: 4</title>" in lsvg


# -- the command ---------------------------------------------------------------------------------------

def invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("LOYALSYNC_CONFIG", "LOYALSYNC_DATABASE_URL", "LOYALSYNC_MODE", "COLUMNS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_the_command_writes_the_report_and_says_where(isolated: Path, sqlite_store: Store):
    load(sqlite_store)
    url = sqlite_store.engine.url.render_as_string(hide_password=False)
    out = isolated / "out" / "report.html"
    result = invoke("report", "--html", out, "--from", "2026-11-01", "--to", "2026-11-20", "--database-url", url)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"report written to {out} (2026-11-01 – 2026-11-20)"
    html = out.read_text(encoding="utf-8")
    assert "2026-11-01 – 2026-11-20" in html and "Ozon: 25% of 4 buyers" in html


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "2026-11-31"], "--from '2026-11-31' is not a date (YYYY-MM-DD)"),
    (["--to", "20261101"], "--to '20261101' is not a date (YYYY-MM-DD)"),
    (["--from", "2026-11-20", "--to", "2026-11-01"], "--from 2026-11-20 is after --to 2026-11-01"),
])
def test_the_command_rejects_bad_dates_with_exit_2(isolated: Path, args: list[str], message: str):
    result = invoke("report", "--html", isolated / "r.html", *args, "--database-url", "sqlite:///unused.db")
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not (isolated / "r.html").exists() and not (isolated / "unused.db").exists()


def test_the_command_says_plainly_when_it_cannot_write(isolated: Path, sqlite_store: Store):
    (isolated / "taken").write_text("a file, not a folder", encoding="utf-8")
    target = isolated / "taken" / "report.html"
    url = sqlite_store.engine.url.render_as_string(hide_password=False)
    result = invoke("report", "--html", target, "--database-url", url)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"cannot write {target}: File exists ({isolated / 'taken'})", result.stderr


# -- a report of a real demo sync --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    from app.demo import run_demo

    url = f"sqlite:///{tmp_path_factory.mktemp('report-demo') / 'demo.db'}"
    summary = asyncio.run(run_demo(orders=300, reviews=80, database_url=url, console=Console(quiet=True)))
    assert summary.ok
    return url


def test_a_report_of_the_demo_adds_up_to_what_was_synced(demo_url: str, demo_platforms: list[str]):
    from app.demo import demo_settings
    from app.wiring import open_store

    store = open_store(demo_url)
    now = datetime.now(UTC)
    settings = demo_settings(demo_url)
    period = Period(date(2000, 1, 1), now.date() + DAY)  # every order the emulators made
    report = build_report(store, loyalty=settings.loyalty, actions=settings.actions, period=period, now=now,
                          no_identity=no_identity_platforms())
    assert {mp: sum(v) for mp, v in report.orders.by_marketplace.items()} == dict.fromkeys(demo_platforms, 300)
    assert report.reviews.total == sum(1 for _ in store.iter_reviews())
    repeat = {r.marketplace: r for r in report.repeat.rows}
    assert not repeat["wildberries"].identity and repeat["wildberries"].buyers == 0
    assert repeat["ozon"].buyers > 0 and repeat["ozon"].repeat_buyers > 0
    summary = summarize(store.iter_orders(), entries_of(store), settings.loyalty, now)
    assert report.points.outstanding == summary.total().available + summary.total().pending > 0
    assert report.actions.total == store.count(ActionRow)
    streams = sum(len(available_connectors()[p].streams) for p in demo_platforms)  # 8 for the three built-ins
    assert len(report.streams) == len(store.cursors()) == streams
    assert all(s.state == "ok" and s.records > 0 for s in report.streams)
    html = render_html(report)
    assert_self_contained(html)
    assert all(n >= 1 for n in outline(html).sections.values())
    for row in store.iter_orders():
        if row["buyer_key"]:
            assert row["buyer_key"] not in html
