"""The action commands: `actions`, `approve`, `reject`, `tasks`. Thin: parse, call one function, print.

Registered top-level on the `loyalsync` app by `app/cli.py`, like the loyalty commands.
"""

from __future__ import annotations

import getpass
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.cli_common import ConfigOpt, DatabaseOpt, err, load_or_exit, open_store_or_exit
from app.output import JsonOpt, print_json, stdout_console
from connectors.capabilities import ActionKind
from loyalty.actions import ActionStatus
from store import Store

__all__ = ["actions_app", "summary_table"]

actions_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False)
STATUSES = tuple(s.value for s in ActionStatus if s not in (ActionStatus.OPEN, ActionStatus.DONE))
TEXT_SHOWN = 70


def _open(config: Any, database_url: str | None) -> tuple[Any, Any]:
    cfg = load_or_exit(config, database_url, tokens=False)
    return open_store_or_exit(cfg, read_only=True), cfg.settings


# What `actions --json` gives per action: the outbox row without `params` and `context` (a promo code's
# params name the member; the context is the gate's business).
ACTION_FIELDS = ("id", "key", "marketplace", "account", "kind", "target", "status", "approval", "reason", "detail",
                 "title", "text", "public", "purpose", "cost", "attempts", "platform_ref", "created_at", "updated_at",
                 "sent_at")


def _clip(text: str | None, width: int = TEXT_SHOWN) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


@actions_app.command("actions")
def list_actions(
    status: Annotated[str | None, typer.Option(help=f"Only this status: {', '.join(STATUSES)}.")] = None,
    plan: Annotated[bool, typer.Option("--plan", metavar="",
                                      help="First plan and gate new actions (sends nothing).")] = False,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Proposed actions with the gate's decision: replies, promo codes, chat messages."""
    from loyalty.outbox import action_rows, decisions

    if status is not None and status not in STATUSES:
        err.print(f"--status: {status!r} is not one of {', '.join(STATUSES)}", markup=False)
        raise typer.Exit(code=2)
    store, settings = _open(config, database_url)
    if plan:
        _plan(store, settings)
    rows = action_rows(store, status=status, exclude_kind=ActionKind.OPS_TASK.value)
    decided = decisions(store)
    if as_json:
        print_json({"mode": settings.daemon.mode, "actions": [{**{k: r[k] for k in ACTION_FIELDS},
                                                                 "decided": decided.get(r["id"])} for r in rows]})
        return
    table = Table(title=f"{len(rows)} action(s){f' {status}' if status else ''} — mode {settings.daemon.mode}")
    for name in ("id", "marketplace", "account", "kind", "status", "reason", "what", "text", "decided"):
        table.add_column(name, justify="right" if name == "id" else "left", overflow="fold")
    for r in rows:
        table.add_row(str(r["id"]), r["marketplace"], escape(r["account"]), r["kind"], r["status"], r["reason"] or "",
                      escape(_clip(r["title"], 50)), escape(_clip(r["text"])), escape(decided.get(r["id"], "")))
    stdout_console().print(table)
    from loyalty.replies import overdue

    late = overdue(store, settings.actions.replies, datetime.now(UTC))
    if late:
        within = settings.actions.replies.within
        err.print("unanswered past the reply target (" + str(within) + "): "
                  + ", ".join(f"{mp} {n}" for mp, n in sorted(late.items())), markup=False)


def _plan(store: Store, settings: Any) -> None:
    from connectors.registry import available_connectors
    from loyalty.action_job import propose_actions

    caps = {name: cls.capabilities for name, cls in available_connectors().items()}
    result = propose_actions(store, settings.actions, caps, mode=settings.daemon.mode, now=datetime.now(UTC))
    err.print(f"planned {sum(result.stored.values())} new action(s), {sum(result.refused.values())} refused; "
              f"{result.known} known before")


def _move(ids: list[int], to: ActionStatus, allowed: tuple[ActionStatus, ...], verb: str, config: Any,
          database_url: str | None) -> None:
    from loyalty.outbox import set_status

    store, settings = _open(config, database_url)
    moved, not_moved = set_status(store, ids, to, allowed_from=allowed, mode=settings.daemon.mode,
                                  now=datetime.now(UTC), by=f"cli ({getpass.getuser()})")
    if moved:
        err.print(f"{verb}: {', '.join(map(str, moved))}")
    if not_moved:
        err.print(f"not {verb} (unknown, or not {' or '.join(s.value for s in allowed)}): "
                  f"{', '.join(map(str, not_moved))}")
        raise typer.Exit(code=1)


@actions_app.command()
def approve(
    ids: Annotated[list[int], typer.Argument(help="Action ids (see `loyalsync actions --status pending`).")],
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Approve pending actions: sent by the daemon in live mode, kept as dry_run otherwise."""
    _move(ids, ActionStatus.APPROVED, (ActionStatus.PENDING,), "approved", config, database_url)


@actions_app.command()
def reject(
    ids: Annotated[list[int], typer.Argument(help="Action ids.")],
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Reject actions that were not sent yet; they are never sent."""
    _move(ids, ActionStatus.REJECTED, (ActionStatus.PENDING, ActionStatus.APPROVED, ActionStatus.DRY_RUN),
          "rejected", config, database_url)


@actions_app.command()
def tasks(
    done: Annotated[list[int] | None, typer.Option("--done", help="Mark these task ids done.")] = None,
    show_all: Annotated[bool, typer.Option("--all", metavar="", help="Also tasks already done.")] = False,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ops tasks: what a platform allows only in its cabinet, with the exact steps and numbers."""
    import json

    from loyalty.outbox import action_rows

    if done:
        _move(done, ActionStatus.DONE, (ActionStatus.OPEN,), "done", config, database_url)
        return
    store, _ = _open(config, database_url)
    rows = [r for r in action_rows(store, kind=ActionKind.OPS_TASK.value)
            if show_all or r["status"] == ActionStatus.OPEN.value]
    if as_json:
        print_json({"tasks": [{"id": r["id"], "marketplace": r["marketplace"], "account": r["account"],
                               "status": r["status"], "title": r["title"], "created_at": r["created_at"],
                               "steps": list(json.loads(r["params"] or "{}").get("steps", ()))} for r in rows]})
        return
    out = Console()
    out.print(f"{len(rows)} task(s){'' if show_all else ' open'}")
    for r in rows:
        out.print(f"\n[bold]#{r['id']}[/bold] {escape(r['marketplace'])}/{escape(r['account'])} "
                  f"\\[{r['status']}] {escape(r['title'])}", soft_wrap=True)
        for n, step in enumerate(json.loads(r["params"] or "{}").get("steps", ()), 1):
            out.print(f"  {n}. {escape(str(step))}", soft_wrap=True)


def summary_table(counts: dict[tuple[str, str, str, str | None], int], title: str) -> Table:
    """Per platform: replies and promo codes by status, open tasks, and refusals by reason."""
    cells: dict[str, dict[str, Counter]] = {}
    for (mp, kind, status, reason), n in counts.items():
        row = cells.setdefault(mp, {"replies": Counter(), "promo codes": Counter(), "chat": Counter(),
                                    "tasks": Counter(), "refused": Counter()})
        if status == ActionStatus.REFUSED.value:
            row["refused"][reason or "?"] += n
        elif kind == ActionKind.OPS_TASK.value:
            row["tasks"][status] += n
        elif kind == ActionKind.REPLY_TO_REVIEW.value:
            row["replies"][status] += n
        elif kind == ActionKind.CREATE_PROMO_CODE.value:
            row["promo codes"][status] += n
        else:
            row["chat"][status] += n
    columns = ("replies", "promo codes", "chat", "tasks", "refused")
    table = Table(title=title)
    table.add_column("marketplace")
    for name in columns:
        table.add_column(name)
    for mp in sorted(cells):
        table.add_row(mp, *(", ".join(f"{k} {v}" for k, v in sorted(cells[mp][c].items())) or "—" for c in columns))
    return table
