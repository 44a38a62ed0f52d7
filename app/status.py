"""`loyalsync status`: per account x stream, where it got to and how its last run went."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from connectors.base import RecordType
from connectors.errors import TOKEN_REJECTED
from connectors.registry import available_connectors
from crm.webhooks import summary as webhook_summary
from store import Store
from store.tables import OrderRow, QuarantineRow, ReviewRow
from sync.cluster import replica_summary

__all__ = ["status_rows", "status_table"]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


# The runner ends an AuthError's text with "Check the token in $VAR …"; the platform's own words
# are in "(platform says: …)" (connectors.errors.ApiError).
_ENV_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_PLATFORM_SAYS = re.compile(r"\(platform says: (.+?)\)(?: \[requestId [^\]]*\])?(?:\.|$)")
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")


def token_problem(account: str, streams: list[str], error: str) -> str:
    """One line for an account whose token the platform refused: which, why, and what to fix."""
    status = _HTTP_STATUS.search(error)
    says = _PLATFORM_SAYS.search(error)
    var = _ENV_VAR.search(error)
    why = f"HTTP {status.group(1)}" if status else "refused"
    if says:
        why += f": {says.group(1)}"
    where = f"${var.group(1)}" if var else "the account's token variable"
    # What to do comes first: a narrow terminal crops the end of the line, not the fix.
    return (f"{account}: token refused or expired — put a valid token in {where}; "
            f"stopped: {', '.join(streams)} ({why})")


def _record_types() -> dict[tuple[str, str], RecordType]:
    """(marketplace, stream) → what the stream stores, from the installed connectors."""
    return {(mp, name): spec.record_type for mp, connector in available_connectors().items()
            for name, spec in connector.streams.items()}


def status_rows(store: Store) -> list[dict[str, Any]]:
    """Every stream the store knows, for `status --json`: the documented shape (README, status).

    `records_read` counts every record the stream's runs wrote, re-reads included (lookback and
    re-scans read the same orders again); `stored` is the account's distinct orders or reviews now
    in the store, the kind the stream syncs (streams of one kind share it).
    """
    kinds = _record_types()
    stored: dict[tuple[str, str, RecordType], int] = {}
    rows = []
    for row in store.cursors():
        mp, acct, stream = row["marketplace"], row["account"], row["stream"]
        kind = kinds.get((mp, stream))
        if kind is not None and (mp, acct, kind) not in stored:
            table = OrderRow if kind is RecordType.ORDER else ReviewRow
            stored[(mp, acct, kind)] = store.count(table, marketplace=mp, account=acct)
        rows.append({
            "marketplace": mp, "account": acct, "stream": stream, "state": row["state"],
            "cursor_at": row["cursor_at"], "last_success_at": row["last_success_at"],
            "records_read": row["records_synced"],
            "stored": stored.get((mp, acct, kind)) if kind is not None else None,
            "quarantined": store.count(QuarantineRow, marketplace=mp, account=acct, stream=stream),
            "last_error": row["last_error"],
        })
    return rows


def status_table(store: Store) -> Table:
    """A rich table of every stream the store knows."""
    table = Table(title="loyalsync status", header_style="bold")
    # "records read" counts re-reads too; "stored" is what the store holds of the stream's kind.
    for col in ("account", "stream", "state", "cursor", "last success", "records read", "stored",
                "quarantined", "last error"):
        table.add_column(col, overflow="fold")
    totals: dict[tuple[str, str], tuple[int, int, int]] = {}
    refused: dict[tuple[str, str], tuple[list[str], str]] = {}
    for row in status_rows(store):
        acct = (row["marketplace"], row["account"])
        if acct not in totals:
            orders, keyed = store.buyer_key_coverage(*acct)
            totals[acct] = (orders, keyed, store.count(ReviewRow, marketplace=acct[0], account=acct[1]))
        state = row["state"]
        if state == "error" and TOKEN_REJECTED in (row["last_error"] or ""):
            refused.setdefault(acct, ([], row["last_error"]))[0].append(row["stream"])
        style = {"ok": "green", "deferred": "yellow", "error": "red", "unavailable": "magenta"}.get(state, "")
        table.add_row(
            f"{acct[0]}/{acct[1]}", row["stream"], f"[{style}]{state}[/]" if style else state,
            _when(row["cursor_at"]), _when(row["last_success_at"]), str(row["records_read"]),
            "—" if row["stored"] is None else str(row["stored"]),
            str(row["quarantined"]), escape(row["last_error"] or ""),  # platform text is not markup
        )
    lines = []
    reviewed = {mp for (mp, _), kind in _record_types().items() if kind is RecordType.REVIEW}
    for (mp, acct), (orders, keyed, reviews) in totals.items():
        # The share loyalty can work with: only orders with a buyer key can make members.
        share = f"{keyed / orders:.0%}" if orders else "—"
        # A platform without a review API says so, rather than "0 reviews stored".
        said = f"{reviews} reviews stored" if mp in reviewed else "no reviews: the platform has no review API"
        lines.append(f"{mp}/{acct}: {orders} orders ({share} with a buyer key), {said}")
    # Token problems first, each on one line that is never wrapped: the one thing to act on.
    problems = [token_problem(f"{mp}/{acct}", streams, error) for (mp, acct), (streams, error) in refused.items()]
    lines += replica_summary(store.engine)
    lines += webhook_summary(store)
    if problems or lines:
        table.caption = Text("\n".join(problems + lines), no_wrap=True, overflow="ignore", justify="left")
    return table
