"""`loyalsync crm`: what the RetailCRM sink holds, sending dead letters again, and a backfill.

Registered top-level on the `loyalsync` app by `app/cli.py`. Thin: parse, call `crm.retailcrm.sink`
and `crm.outbox`, print.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from app.cli_common import (
    ConfigOpt,
    DatabaseOpt,
    ResendDeadOpt,
    ResendOpt,
    err,
    load_or_exit,
    open_store_or_exit,
)
from app.durations import format_duration
from app.output import JsonOpt, print_json, stdout_console

__all__ = ["crm_app"]

crm_app = typer.Typer(no_args_is_help=False, add_completion=False, pretty_exceptions_show_locals=False)
STATUSES = ("pending", "sent", "dead", "skipped")


@crm_app.command("crm")
def crm(
    status: Annotated[str | None, typer.Option(help="Only this status: pending, sent, dead or skipped.")] = "dead",
    resend: ResendOpt = None,
    resend_dead: ResendDeadOpt = False,
    backfill: Annotated[bool, typer.Option("--backfill", metavar="",
                                           help="Send everything the CRM has not had yet now, paced, and wait "
                                                "for it (the daemon does the same, a batch each interval).")] = False,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The RetailCRM sink's rows (the dead letters by default); --resend / --resend-dead / --backfill."""
    from crm.outbox import deliveries
    from crm.outbox import resend as resend_letters

    if status is not None and status not in STATUSES:
        err.print(f"--status: {status!r} is not one of {', '.join(STATUSES)}", markup=False)
        raise typer.Exit(code=2)
    cfg = load_or_exit(config, database_url, tokens=backfill)
    sink = cfg.settings.crm.retailcrm
    if sink is None:
        err.print("no CRM sink is configured: add a [crm.retailcrm] table to loyalsync.toml (see the README, "
                  "\"RetailCRM\")", markup=False, soft_wrap=True)
        raise typer.Exit(code=2)
    if backfill:
        _backfill(cfg, sink)
        return
    if resend or resend_dead:
        store = open_store_or_exit(cfg)
        count = resend_letters(store, None if resend_dead else resend, datetime.now(UTC), endpoints=[sink.name],
                               sinks=True)
        every = format_duration(cfg.settings.schedule.crm_interval)
        err.print(f"{count} dead letter(s) due again; the daemon sends them within {every} "
                  "(or `loyalsync crm --backfill` now)", markup=False)
        return
    store = open_store_or_exit(cfg, read_only=True)
    rows = deliveries(store, status=status, endpoints=[sink.name], sinks=True)
    if as_json:
        print_json({"rows": rows})
        return
    table = Table(title=f"{len(rows)} {sink.name} rows" + (f" ({status})" if status else ""))
    for column in ("id", "what", "key", "status", "attempts", "last error"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r["id"]), r["event_type"].removeprefix("retailcrm."), escape(r["event_id"]), r["status"],
                      str(r["attempts"]), escape(r["last_error"] or ""))
    stdout_console().print(table)


def _backfill(cfg, sink) -> None:
    """Enqueue and send until nothing is due now, under the daemon's `crm` job lease (one sender)."""
    from app.scheduler import CRM_JOB
    from crm.retailcrm.sink import SinkResult, deliver, enqueue
    from sync.leases import Leases

    store = open_store_or_exit(cfg)
    # Named after this host's replica, not the process: a backfill killed midway leaves claims and
    # a lease that the next backfill here takes back at once instead of waiting for them to lapse.
    holder = f"{cfg.settings.cluster.replica or socket.gethostname()}/crm-backfill"
    leases = Leases(store.engine, holder, timedelta(seconds=cfg.settings.cluster.lease_seconds))
    lease = leases.acquire(f"job:{CRM_JOB}")
    if lease is None:
        err.print("a running daemon is sending to the CRM now (it holds the crm job); it sends the backlog "
                  "itself, or stop it and run this again", markup=False, soft_wrap=True)
        raise typer.Exit(code=1)

    async def run() -> SinkResult:
        total = SinkResult()
        renew = asyncio.create_task(_keep(leases, cfg.settings.cluster.lease_seconds / 3))
        try:
            while True:
                now = datetime.now(UTC)
                added = await asyncio.to_thread(enqueue, store, sink, now)
                result = await deliver(store, sink, now, claimer=holder)
                for name in ("sent", "found", "retrying", "waiting", "skipped", "dead"):
                    setattr(total, name, getattr(total, name) + getattr(result, name))
                total.errors += result.errors
                err.print(f"{added} new, {result.sent} sent, {result.found} found applied already, "
                          f"{result.retrying} to retry, {result.dead} dead", markup=False)
                if result.errors or not (added or result.sent or result.found):
                    return total
        finally:
            renew.cancel()

    try:
        total = asyncio.run(run())
    finally:
        leases.release_all()
    for error in total.errors:
        err.print(error, markup=False, soft_wrap=True)
    err.print(f"backfill: {total.sent} sent, {total.found} found applied already, {total.retrying} to retry, "
              f"{total.waiting} waiting, {total.skipped} not sent, {total.dead} dead", markup=False)
    raise typer.Exit(code=1 if total.errors else 0)


async def _keep(leases, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        await asyncio.to_thread(leases.renew)
