"""`loyalsync demo`: every built-in connector's emulator on loopback, one full sync into SQLite,
and a summary per marketplace.

Each connector offers its emulator and a matching account through `Connector.demo()`, so a new
connector joins the demo by implementing that one hook.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.actions_cli import summary_table
from app.config import AppConfig, AppSettings, DatabaseSettings, MarketplaceAccount
from app.demo_crm import CrmFigures, crm_demo, crm_table
from app.demo_store import claim_demo_store, mark_demo_store
from app.progress import sync_with_progress
from app.report.data import PointsFigures, points_figures
from app.scheduler import Daemon
from app.wiring import App, open_store, store_connections
from connectors.base import Connector, DemoSetup
from connectors.capabilities import ActionKind, BuyerIdentity
from connectors.registry import available_connectors
from connectors.serve import serve_emulator
from loyalty.action_job import propose_actions
from loyalty.action_settings import ActionSettings, PromoSettings, ReplySettings, ReviewIncentiveSettings
from loyalty.ledger import run_once
from loyalty.outbox import action_rows, counts
from loyalty.product_names import fill_product_names
from loyalty.rules import LoyaltySettings
from sync.runner import RunResult

__all__ = ["DEMO_DATABASE_URL", "DemoSummary", "MarketplaceSummary", "demo_setups", "run_demo"]

DEMO_DATABASE_URL = "sqlite:///data/demo.db"


@dataclass
class MarketplaceSummary:
    """What the demo stored for one marketplace."""

    orders_by_status: Counter[str] = field(default_factory=Counter)
    orders_by_fulfilment: Counter[str] = field(default_factory=Counter)
    orders_with_buyer_key: int = 0
    buyers: set[str] = field(default_factory=set)
    reviews: int = 0
    reviews_answered: int = 0

    @property
    def orders(self) -> int:
        return sum(self.orders_by_status.values())


@dataclass
class DemoSummary:
    """What a demo cycle did."""

    results: list[RunResult] = field(default_factory=list)
    marketplaces: dict[str, MarketplaceSummary] = field(default_factory=dict)
    # (marketplace, kind, status, refusal reason) -> actions stored by the demo's dry-run round
    actions: dict[tuple[str, str, str, str | None], int] = field(default_factory=dict)
    points: PointsFigures | None = None  # the ledger after the demo's loyalty run
    replies: list[dict[str, Any]] = field(default_factory=list)  # the first replies proposed per marketplace
    crm: CrmFigures | None = None  # what the RetailCRM emulator holds after the demo's backfill

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def of(self, marketplace: str) -> MarketplaceSummary:
        return self.marketplaces.setdefault(marketplace, MarketplaceSummary())


def demo_setups(connectors: Mapping[str, type[Connector]] | None = None, *, seed: int = 7,
                orders: int = 2000, reviews: int = 600) -> dict[str, DemoSetup]:
    """The demo pair (emulator, account) of every connector that ships one."""
    found = {}
    for name, cls in sorted((connectors or available_connectors()).items()):
        setup = cls.demo(seed=seed, orders=orders, reviews=reviews)
        if setup is not None:
            found[name] = setup
    return found


async def run_demo(*, orders: int = 2000, reviews: int = 600, follow: bool = False,
                   database_url: str = DEMO_DATABASE_URL, console: Console | None = None,
                   seed: int = 7, setups: Mapping[str, DemoSetup] | None = None) -> DemoSummary:
    """Serve every emulator, sync every stream once with progress bars, and summarise."""
    console = console or Console(stderr=True)
    setups = setups if setups is not None else demo_setups(seed=seed, orders=orders, reviews=reviews)
    claim_demo_store(database_url)  # raises DemoRefused for a store holding data the demo did not write
    async with AsyncExitStack() as stack:
        accounts = []
        for name, setup in setups.items():
            base_url = await stack.enter_async_context(serve_emulator(setup.app))
            console.print(f"[bold]loyalsync demo[/]: {name} emulator on {base_url}")
            accounts.append(MarketplaceAccount(name, setup.account(base_url)))
        console.print(f"{orders} orders and {reviews} reviews per marketplace; store {database_url}")
        config = AppConfig(settings=demo_settings(database_url), accounts=tuple(accounts),
                           config_path=Path("(built-in demo)"))
        app = App(config, store=open_store(database_url, connections=store_connections(config)))
        mark_demo_store(app.store.engine)
        stack.callback(app.store.engine.dispose)  # after `async with app` below has closed
        async with app:
            summary = DemoSummary(results=await sync_with_progress(app, app.jobs(), console))
            _summarise(app, summary)
            console.print(_summary_table(summary, app))
            # Replies name products: what no synced record names is asked of the emulators' catalogs.
            await fill_product_names(app.store, app.write_connectors(), now=datetime.now(UTC))
            summary.actions, summary.points = await asyncio.to_thread(_loyalty_and_actions, app)
            summary.replies = await asyncio.to_thread(_first_replies, app)
            console.print(_points_table(summary.points))
            console.print(summary_table(summary.actions, "actions (dry-run: computed and checked, nothing sent)"))
            console.print(_replies_table(summary.replies))
            # The members of the platforms whose every order names its buyer: the quickest to show.
            full = tuple(name for name, cls in sorted(app.connector_classes.items())
                         if cls.capabilities.buyer_identity is BuyerIdentity.FULL)
            summary.crm = await crm_demo(app.store, full)
            console.print(crm_table(summary.crm))
            if follow:
                console.print("following: polling on each stream's interval; Ctrl+C stops")
                await Daemon(app).run()
    return summary


def _summarise(app: App, summary: DemoSummary) -> None:
    for row in app.store.iter_orders():
        mp = summary.of(row["marketplace"])
        mp.orders_by_status[row["status"]] += 1
        mp.orders_by_fulfilment[row["fulfilment"] or "unknown"] += 1
        if row["buyer_key"]:
            mp.orders_with_buyer_key += 1
            mp.buyers.add(row["buyer_key"])
    for row in app.store.iter_reviews():
        mp = summary.of(row["marketplace"])
        mp.reviews += 1
        mp.reviews_answered += bool(row["answered"])


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items()))


def _summary_table(summary: DemoSummary, app: App) -> Table:
    table = Table(title="demo summary", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for name, mp in sorted(summary.marketplaces.items()):
        table.add_row(name, f"{mp.orders} orders ({_counts(mp.orders_by_status)})")
        table.add_row("", f"fulfilment: {_counts(mp.orders_by_fulfilment)}")
        table.add_row("", f"reviews: {mp.reviews} ({mp.reviews_answered} answered)")
        identity = app.connector_classes[name].capabilities.buyer_identity
        if identity is BuyerIdentity.NONE:
            table.add_row("", "buyer identity: none on this platform — no per-buyer points; "
                              "loyalty runs through the platform's own instruments")
        else:
            share = mp.orders_with_buyer_key / mp.orders if mp.orders else 0.0
            table.add_row("", f"buyer identity: {share:.0%} of orders carry a buyer key "
                              f"({len(mp.buyers)} distinct buyers)")
    for r in summary.results:
        if r.ok and not r.quarantined:
            continue
        line = f"{r.state}: {r.records} records, {r.quarantined} quarantined"
        if r.error:
            line += f" — {escape(r.error)}"  # platform text is not markup
        table.add_row(str(r.key), line)
    return table


DEMO_STORE_NAME = "Уютный дом"  # how the demo's replies are signed (a seller sets theirs)


def demo_settings(database_url: str) -> AppSettings:
    """The built-in program: the loyalty defaults switched on, points redeemable as promo codes, and
    review-incentive thresholds that fit the emulators' small catalogues (every SKU there has reviews)."""
    return AppSettings(database=DatabaseSettings(url=database_url), loyalty=LoyaltySettings(enabled=True),
                       actions=ActionSettings(promo=PromoSettings(enabled=True),
                                              replies=ReplySettings(store_name=DEMO_STORE_NAME),
                                              review_incentives=ReviewIncentiveSettings(min_orders=10,
                                                                                        max_reviews=12)))


def _loyalty_and_actions(app: App) -> tuple[dict[tuple[str, str, str, str | None], int], PointsFigures]:
    """One ledger run, then one round of actions in dry-run; the outbox's counts and the points."""
    settings = app.config.settings
    now = datetime.now(UTC)
    run_once(app.store, settings.loyalty, now)
    points = points_figures(app.store, settings.loyalty, settings.actions.promo.point_value, now)
    propose_actions(app.store, settings.actions, app.capabilities(), mode="dry-run", now=now)
    return counts(app.store), points


REPLIES_SHOWN = 3  # per marketplace: enough to see the names and the wordings vary


def _first_replies(app: App) -> list[dict[str, Any]]:
    first: dict[str, list[dict[str, Any]]] = {}
    for row in action_rows(app.store, kind=ActionKind.REPLY_TO_REVIEW.value):
        shown = first.setdefault(row["marketplace"], [])
        if len(shown) < REPLIES_SHOWN:
            shown.append(row)
    return [row for mp in sorted(first) for row in first[mp]]


def _replies_table(replies: list[dict[str, Any]]) -> Table:
    table = Table(title=f"replies (the first {REPLIES_SHOWN} proposed on each marketplace)")
    for column in ("marketplace", "what", "text"):
        table.add_column(column, overflow="fold")
    for r in replies:
        table.add_row(r["marketplace"], escape(r["title"]), escape(r["text"] or ""))  # platform text is not markup
    return table


def _points_table(points: PointsFigures) -> Table:
    table = Table(title="points (the loyalty ledger after one run)")
    for column in ("marketplace", "members", "available", "pending", "debt", "tiers"):
        table.add_column(column, justify="left" if column in ("marketplace", "tiers") else "right")
    for r in points.rows:
        tiers = ", ".join(f"{name} {n}" for name, n in sorted(r.tiers.items()))
        table.add_row(r.marketplace, f"{r.members:,}", f"{r.available:,.0f}", f"{r.pending:,.0f}",
                      f"{r.debt:,.0f}", tiers)
    return table
