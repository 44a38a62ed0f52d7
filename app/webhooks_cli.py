"""`loyalsync webhooks`: what the webhook outbox holds, and sending dead letters again.

Registered top-level on the `loyalsync` app by `app/cli.py`. Thin: parse, call `crm.webhooks`, print.
"""

from __future__ import annotations

from datetime import UTC, datetime
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

__all__ = ["webhooks_app"]

webhooks_app = typer.Typer(no_args_is_help=False, add_completion=False, pretty_exceptions_show_locals=False)
STATUSES = ("pending", "sent", "dead")


@webhooks_app.command("webhooks")
def webhooks(
    status: Annotated[str | None, typer.Option(help="Only this status: pending, sent or dead.")] = "dead",
    resend: ResendOpt = None,
    resend_dead: ResendDeadOpt = False,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Webhook deliveries (the dead letters by default); --resend ID / --resend-dead send them again."""
    from crm.webhooks import deliveries
    from crm.webhooks import resend as resend_letters

    if status is not None and status not in STATUSES:
        err.print(f"--status: {status!r} is not one of {', '.join(STATUSES)}", markup=False)
        raise typer.Exit(code=2)
    cfg = load_or_exit(config, database_url, tokens=False)
    if resend or resend_dead:
        store = open_store_or_exit(cfg)
        count = resend_letters(store, None if resend_dead else resend, datetime.now(UTC), sinks=False)
        asked = "every dead letter" if resend_dead else f"{len(resend or [])} asked"
        every = format_duration(cfg.settings.schedule.webhooks_interval)
        err.print(f"{count} dead letter(s) due again ({asked}); the daemon sends them within {every}", markup=False)
        return
    store = open_store_or_exit(cfg, read_only=True)
    rows = deliveries(store, status=status, sinks=False)
    if as_json:
        print_json({"deliveries": rows})
        return
    table = Table(title=f"{len(rows)} webhook deliveries" + (f" ({status})" if status else ""))
    for column in ("id", "endpoint", "event", "type", "status", "attempts", "last error"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r["id"]), r["endpoint"], escape(r["event_id"]), r["event_type"], r["status"],
                      str(r["attempts"]), escape(r["last_error"] or ""))
    stdout_console().print(table)
