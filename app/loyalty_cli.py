"""The loyalty commands: `simulate`, `members`, `member`, `rebuild`. Thin: parse, call one function, print.

Registered on the `loyalsync` app by `app/cli.py` (`app.add_typer(loyalty_app)`), so they are
top-level commands. They read the store only (`simulate` writes to an in-memory ledger), except
`rebuild`, which runs the ledger job over every member.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.cli_common import ConfigOpt, DatabaseOpt, NowOpt, err, load_or_exit, open_store_or_exit
from app.output import JsonOpt, print_json, stdout_console

__all__ = ["loyalty_app"]

loyalty_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False)

SEGMENTS = ("new", "active", "at_risk", "sleeping", "lost")
KEY_SHOWN = 12  # characters of a buyer key in tables; `loyalsync member` takes any unique prefix


def _when(text: str | None, option: str, *, end_of_day: bool = False) -> datetime | None:
    """An ISO date or date-time (UTC when no offset is given); a bare date as `end_of_day` means its end."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        err.print(f"{option}: {text!r} is not a date (YYYY-MM-DD) or ISO date-time", markup=False)
        raise typer.Exit(code=2) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if end_of_day and len(text.strip()) == 10:  # --to 2026-03-31 includes that day
        value += timedelta(days=1)
    return value


def _store_and_settings(config: Path | None, database_url: str | None) -> tuple[Any, Any]:
    """The store (which must exist: these commands only read it) and the loyalty settings."""
    cfg = load_or_exit(config, database_url, tokens=False)
    return open_store_or_exit(cfg, read_only=True), cfg.settings.loyalty


def _num(value: Decimal) -> str:
    return str(value)


def _time(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "—"


def _short(key: str) -> str:
    return key if len(key) <= KEY_SHOWN else key[:KEY_SHOWN] + "…"


def summary_table(summary: Any) -> Table:
    """The figures `simulate` prints: one row per marketplace and a total."""
    table = Table(title=f"loyalty figures at {summary.now.isoformat()}")
    for name in ("marketplace", "members", "with points", "orders", "no buyer identity", "earned",
                 "reversed", "pending", "available", "expired", "debt", "tiers reached"):
        table.add_column(name, justify="left" if name in ("marketplace", "tiers reached") else "right")

    def row(name: str, f: Any) -> None:
        tiers = ", ".join(f"{t} {n}" for t, n in sorted(f.tiers.items())) or "—"
        table.add_row(name, str(f.members), str(f.members_with_points), str(f.orders), str(f.no_identity),
                      _num(f.earned), _num(f.reversed), _num(f.pending), _num(f.available),
                      _num(f.expired), _num(f.debt), tiers)

    for mp, f in summary.marketplaces.items():
        row(mp, f)
    row("total", summary.total())
    return table


@loyalty_app.command()
def simulate(
    from_: Annotated[str | None, typer.Option("--from", help="Only orders created from this date.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Only orders created up to this date (inclusive).")] = None,
    now: NowOpt = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """What the configured program would have given over stored orders; writes nothing."""
    from loyalty.simulate import simulate as run_simulation

    start, end = _when(from_, "--from"), _when(to, "--to", end_of_day=True)
    at = _when(now, "--now") or datetime.now(UTC)
    store, settings = _store_and_settings(config, database_url)
    result = run_simulation(store, settings, at, start=start, end=end)
    span = f"orders created {_time(start) if start else 'any time'} .. {_time(end) if end else 'now'}"
    state = "" if settings.enabled else " (the program is disabled in the config; simulated as enabled)"
    err.print(f"simulation over {span}{state}; nothing was written", markup=False, soft_wrap=True)
    Console().print(summary_table(result.summary))
    if result.run.late:
        err.print(f"{result.run.late} order(s) arrived after later orders had earned (see the log)")


@loyalty_app.command()
def rebuild(config: ConfigOpt = None, database_url: DatabaseOpt = None) -> None:
    """Run the loyalty ledger job over every member now, not only those with something new.

    The daemon's ten-minute job reads only members whose orders changed, settled, became available
    or expired since its last run. After restoring a backup, editing orders by hand or changing the
    program's rules, run this once. Safe while the daemon runs: the ledger is idempotent.
    """
    from connectors.errors import LoyalsyncError
    from loyalty.incremental import run_changed

    cfg = load_or_exit(config, database_url, tokens=False)
    settings = cfg.settings.loyalty
    if not settings.enabled:
        err.print("the loyalty program is off ([loyalty] enabled = false): nothing to rebuild", markup=False)
        raise typer.Exit(code=2)
    store = open_store_or_exit(cfg, read_only=True)
    try:
        run = run_changed(store, settings, datetime.now(UTC), full=True).run
    except LoyalsyncError as exc:  # a worker lost, a first run loading the ledger: says what to do
        err.print(f"rebuild stopped: {exc}", markup=False)
        raise typer.Exit(code=1) from None
    Console().print(f"ledger rebuilt: {run.members} members, {run.orders} orders, "
                    f"{run.inserted} entries written, {run.filled} lots activated", highlight=False)


@loyalty_app.command()
def members(
    marketplace: Annotated[str | None, typer.Option(help="Only this marketplace.")] = None,
    tier: Annotated[str | None, typer.Option(help="Only members who reached this tier.")] = None,
    segment: Annotated[str | None, typer.Option(
        help="Only members in this segment: new, active, at_risk, sleeping or lost.")] = None,
    now: NowOpt = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Members with orders, spend, balances, debt, tier and segment, as they stood at --now.

    A point-in-time view: orders created by then, each as it stood then; the tier the member held
    then (the one points were earned at); spend and segment from what the buyer kept.
    """
    from loyalty.members import member_rows

    if segment is not None and segment not in SEGMENTS:
        err.print(f"--segment: {segment!r} is not one of {', '.join(SEGMENTS)}", markup=False)
        raise typer.Exit(code=2)
    at = _when(now, "--now") or datetime.now(UTC)
    store, settings = _store_and_settings(config, database_url)
    rows = member_rows(store, settings, at, marketplace=marketplace, tier=tier, segment=segment)
    if as_json:  # members by their buyer key (a keyed hash, never the platform's id or a name)
        print_json({"at": at, "members": [
            {"marketplace": r.marketplace, "account": r.account, "buyer_key": r.buyer_key, "orders": r.orders,
             "spend": r.spend, "pending": r.balances.pending, "available": r.balances.available,
             "debt": r.balances.debt, "tier": r.tier, "segment": r.segment} for r in rows]})
        return
    table = Table(title=f"{len(rows)} member(s) at {at.isoformat()}")
    numbers = ("orders", "spend", "pending", "available", "debt")
    for name in ("marketplace", "account", "member", *numbers, "tier", "segment"):
        table.add_column(name, justify="right" if name in numbers else "left")
    for r in rows:
        table.add_row(r.marketplace, escape(r.account), _short(r.buyer_key), str(r.orders), _num(r.spend),
                      _num(r.balances.pending), _num(r.balances.available), _num(r.balances.debt),
                      r.tier or "—", r.segment or "—")
    stdout_console().print(table)


def _standing(stored: dict[str, Any] | None, st: Any, at: datetime) -> str:
    """The tier and segment at `at`, and when the daily member job last stored them."""
    tier = st.tier or "—"
    since = f" since {st.tier_since.isoformat()}" if st.tier is not None and st.tier_since is not None else ""
    text = f"tier {tier}{since}, segment {st.segment} (at {at.isoformat()})"
    if stored is not None:
        text += f"; the member list last stored them at {stored['evaluated_at'].isoformat()}"
        if stored["service_recovery"]:
            text += " (service recovery)"
    return text


@loyalty_app.command()
def member(
    key: Annotated[str, typer.Argument(help="A buyer key, or a unique prefix of one.")],
    now: NowOpt = None,
    config: ConfigOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """One member: balances, lots and the history of entries."""
    from loyalty.engine import EARN
    from loyalty.ledger import balances, entries_of
    from loyalty.members import find_members, member_orders, standing
    from loyalty.membership import stored_for

    at = _when(now, "--now") or datetime.now(UTC)
    store, settings = _store_and_settings(config, database_url)
    found = find_members(store, key.strip()) if key.strip() else []
    if not found:
        err.print(f"no member with a buyer key starting with {key!r}", markup=False)
        raise typer.Exit(code=1)
    if len(found) > 1:
        shown = ", ".join(f"{mp}/{acct}/{_short(b)}" for mp, acct, b in found[:5])
        err.print(f"{key!r} matches {len(found)} members ({shown}{', …' if len(found) > 5 else ''}); "
                  "give more characters", markup=False, soft_wrap=True)
        raise typer.Exit(code=2)
    who = found[0]
    mp, acct, buyer = who
    by_member, _ = member_orders(store.iter_orders(), settings)
    orders = by_member.get(who, [])
    b = balances(store, who, at)
    out = Console()
    out.print(f"{mp}/{escape(acct)} member {buyer}", soft_wrap=True)
    stored = stored_for(store, [who]).get(who)
    st = standing(orders, settings, at)
    out.print(f"orders {st.orders}, spend {_num(st.spend)}", soft_wrap=True)
    out.print(_standing(stored, st, at), soft_wrap=True)
    out.print(f"pending {_num(b.pending)}, available {_num(b.available)}, expired {_num(b.expired)}, "
              f"debt {_num(b.debt)}, lifetime {_num(b.lifetime)} (at {at.isoformat()})", soft_wrap=True)
    rows = entries_of(store, who)
    lots = Table(title="lots")
    for name in ("id", "rule", "order", "amount", "available_from", "expires_at", "remaining"):
        lots.add_column(name)
    history = Table(title="history")
    for name in ("id", "effective_at", "kind", "rule", "order", "amount", "remaining"):
        history.add_column(name)
    for r in rows:
        remaining = _num(r["remaining"]) if r["remaining"] is not None else "—"
        if r["kind"] == EARN:
            lots.add_row(str(r["id"]), r["rule"] or "—", escape(r["order_id"] or "—"), _num(r["amount"]),
                         _time(r["available_from"]), _time(r["expires_at"]), remaining)
        history.add_row(str(r["id"]), _time(r["effective_at"]), r["kind"], r["rule"] or "—",
                        escape(r["order_id"] or "—"), _num(r["amount"]), remaining)
    out.print(lots)
    out.print(history)
