"""`loyalsync status`: per account x stream, where it got to and how its last run went."""

from __future__ import annotations

from datetime import datetime

from rich.markup import escape
from rich.table import Table

from sync.store import Store
from sync.store.tables import QuarantineRow, ReviewRow

__all__ = ["status_table"]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def status_table(store: Store) -> Table:
    """A rich table of every stream the store knows."""
    table = Table(title="loyalsync status", header_style="bold")
    for col in ("account", "stream", "state", "cursor", "last success", "records written", "quarantined",
                "last error"):
        table.add_column(col, overflow="fold")
    totals: dict[tuple[str, str], tuple[int, int, int]] = {}
    for row in store.cursors():
        acct = (row["marketplace"], row["account"])
        if acct not in totals:
            orders, keyed = store.buyer_key_coverage(*acct)
            totals[acct] = (orders, keyed, store.count(ReviewRow, marketplace=acct[0], account=acct[1]))
        quarantined = store.count(QuarantineRow, marketplace=acct[0], account=acct[1],
                                  stream=row["stream"])
        state = row["state"]
        style = {"ok": "green", "deferred": "yellow", "error": "red", "unavailable": "magenta"}.get(state, "")
        table.add_row(
            f"{acct[0]}/{acct[1]}", row["stream"], f"[{style}]{state}[/]" if style else state,
            _when(row["cursor_at"]), _when(row["last_success_at"]), str(row["records_synced"]),
            str(quarantined), escape(row["last_error"] or ""),  # platform text is not markup
        )
    lines = []
    for (mp, acct), (orders, keyed, reviews) in totals.items():
        # The share loyalty can work with: only orders with a buyer key can make members.
        share = f"{keyed / orders:.0%}" if orders else "—"
        lines.append(f"{mp}/{acct}: {orders} orders ({share} with a buyer key), {reviews} reviews stored")
    table.caption = "\n".join(lines) or None
    return table
