"""`loyalsync demo`: the built-in emulators on loopback, a full sync cycle into SQLite, a summary."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.wildberries.emulator import EmulatorConfig, create_app
from connectors.wildberries.settings import PRODUCTION_HOSTS, WildberriesAccountSettings
from sync.app import App, JobSpec, open_store
from sync.config import AppConfig, AppSettings, DatabaseSettings, MarketplaceAccount
from sync.runner import RunResult
from sync.scheduler import Daemon

__all__ = ["DEMO_DATABASE_URL", "DemoSummary", "run_demo", "serve_emulator"]

DEMO_DATABASE_URL = "sqlite:///data/demo.db"
# Not a secret: the emulator accepts only this value, so the demo also exercises auth.
DEMO_TOKEN = "demo-token-not-a-secret"


@dataclass
class DemoSummary:
    """What a demo cycle did."""

    results: list[RunResult] = field(default_factory=list)
    orders_by_status: Counter[str] = field(default_factory=Counter)
    orders_by_fulfilment: Counter[str] = field(default_factory=Counter)
    reviews: int = 0
    reviews_answered: int = 0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


@asynccontextmanager
async def serve_emulator(app, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve an emulator app with uvicorn on a free loopback port; yields its base URL."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it Nagle + delayed ACK cost every request/response on loopback about 40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # surfaces the start-up error
            await asyncio.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def demo_config(base_url: str, database_url: str) -> AppConfig:
    """One Wildberries account whose every host is the local emulator."""
    account = WildberriesAccountSettings(
        name="demo", token_env="LOYALSYNC_DEMO_TOKEN", token=SecretStr(DEMO_TOKEN),
        base_urls={host: base_url for host in PRODUCTION_HOSTS},
    )
    settings = AppSettings(database=DatabaseSettings(url=database_url))
    return AppConfig(settings=settings, accounts=(MarketplaceAccount("wildberries", account),),
                     config_path=Path("(built-in demo)"))


async def run_demo(*, orders: int = 2000, reviews: int = 600, follow: bool = False,
                   database_url: str = DEMO_DATABASE_URL, console: Console | None = None,
                   seed: int = 7) -> DemoSummary:
    """Start the emulators, sync every stream once with progress bars, and summarise."""
    console = console or Console(stderr=True)
    _fresh_sqlite(database_url)
    emulator = create_app(EmulatorConfig(seed=seed, orders=orders, reviews=reviews, token=DEMO_TOKEN))
    async with serve_emulator(emulator) as base_url:
        console.print(f"[bold]loyalsync demo[/]: Wildberries emulator on {base_url} "
                      f"({orders} orders, {reviews} reviews), store {database_url}")
        app = App(demo_config(base_url, database_url), store=open_store(database_url))
        async with app:
            summary = DemoSummary(results=await _sync_with_progress(app, console))
            _summarise(app, summary)
            console.print(_summary_table(summary))
            if follow:
                console.print("following: polling on each stream's interval; Ctrl+C stops")
                await Daemon(app).run()
    return summary


async def _sync_with_progress(app: App, console: Console) -> list[RunResult]:
    columns = (TextColumn("{task.description:<36}"), BarColumn(), TextColumn("{task.fields[records]:>7} records"),
               TextColumn("{task.fields[pages]:>4} pages"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = {job.id: progress.add_task(job.id, total=None, records=0, pages=0) for job in app.jobs()}

        def on_page(job: JobSpec, result: RunResult) -> None:
            progress.update(tasks[job.id], records=result.records, pages=result.pages)

        results = await app.sync_once(app.jobs(), on_page=on_page)
        for job, result in zip(app.jobs(), results, strict=True):
            progress.update(tasks[job.id], total=1, completed=1,
                            description=f"{job.id} [{'green' if result.ok else 'red'}]{result.state}[/]")
    return results


def _summarise(app: App, summary: DemoSummary) -> None:
    for row in app.store.iter_orders():
        summary.orders_by_status[row["status"]] += 1
        summary.orders_by_fulfilment[row["fulfilment"] or "unknown"] += 1
    for row in app.store.iter_reviews():
        summary.reviews += 1
        summary.reviews_answered += bool(row["answered"])


def _summary_table(summary: DemoSummary) -> Table:
    table = Table(title="demo summary", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    total = sum(summary.orders_by_status.values())
    table.add_row("orders", f"{total} ({', '.join(f'{k} {v}' for k, v in sorted(summary.orders_by_status.items()))})")
    table.add_row("fulfilment", ", ".join(f"{k} {v}" for k, v in sorted(summary.orders_by_fulfilment.items())))
    table.add_row("reviews", f"{summary.reviews} ({summary.reviews_answered} answered)")
    for r in summary.results:
        line = f"{r.state}: {r.records} records in {r.pages} pages"
        if r.quarantined:
            line += f", {r.quarantined} quarantined"
        if r.error:
            line += f" — {escape(r.error)}"  # platform text is not markup
        table.add_row(str(r.key), line)
    table.add_row("buyer loyalty", "Wildberries exposes no buyer identity: no per-buyer points here; "
                  "loyalty runs through WB's own instruments")
    return table


def _fresh_sqlite(database_url: str) -> None:
    """The demo starts from an empty store each time, so its figures are reproducible."""
    prefix = "sqlite:///"
    if database_url.startswith(prefix):
        path = Path(database_url[len(prefix):])
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
