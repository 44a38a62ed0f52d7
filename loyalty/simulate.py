"""`loyalsync simulate`: the configured program over stored history, into a throw-away ledger.

The same `loyalty.ledger.run_once` a real run uses, on an in-memory SQLite store holding a copy of
the real store's orders (optionally only those created within a range) and of the points members
spent: the `spend` entries the outbox wrote for the promo codes it sent, up to `now`. The real
store is only read. The figures come from `loyalty.members.summarize`, which a real ledger's
figures come from too, so "simulate prints what a real run would produce" holds by construction
for the same orders, spends, settings and `now` (docs/loyalty-rules.md §9 names the exceptions).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, create_engine, insert, select
from sqlalchemy.pool import StaticPool

from loyalty.engine import Entry
from loyalty.ledger import LEDGER, RunResult, apply, entries_of, run_once
from loyalty.ledger_rows import SPEND
from loyalty.members import Summary, summarize
from loyalty.rules import LoyaltySettings
from store import Store
from store.db import migrate
from store.tables import OrderLineRow, OrderRow

__all__ = ["Simulation", "simulate"]


_COPY_BATCH = 2000


def _memory_store() -> Store:
    # One shared connection: every `connect()` must see the same in-memory database.
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    migrate(engine)
    return Store(engine)


def _copy_orders(store: Store, into: Store, start: datetime | None, end: datetime | None) -> int:
    """The store's orders created in [start, end), with their lines, copied into `into`."""
    orders: Table = OrderRow.__table__  # type: ignore[assignment]
    lines: Table = OrderLineRow.__table__  # type: ignore[assignment]
    order_batch: list[dict[str, Any]] = []
    line_batch: list[dict[str, Any]] = []
    copied = 0

    def flush() -> None:
        with into.engine.begin() as conn:
            if order_batch:
                conn.execute(insert(orders), order_batch)
            if line_batch:
                conn.execute(insert(lines), line_batch)
        order_batch.clear()
        line_batch.clear()

    for row in store.iter_orders():
        created = row["created_at"]
        if (start is not None and created < start) or (end is not None and created >= end):
            continue
        order_batch.append({k: v for k, v in row.items() if k != "lines"})
        line_batch.extend(row["lines"])
        copied += 1
        if len(order_batch) >= _COPY_BATCH:
            flush()
    flush()
    return copied


def _copy_spends(store: Store, into: Store, now: datetime, end: datetime | None) -> int:
    """The promo codes members spent points on by `now` (and before `end`), as `spend` entries."""
    c = LEDGER.c
    stmt = select(c.marketplace, c.account, c.buyer_key, c.amount, c.idempotency_key, c.rule, c.effective_at).where(
        c.kind == SPEND, c.effective_at <= now)
    if end is not None:
        stmt = stmt.where(c.effective_at < end)
    with store.engine.connect() as conn:
        spends = [Entry(SPEND, amount, key, None, rule, at, marketplace=mp, account=acct, buyer_key=buyer)
                  for mp, acct, buyer, amount, key, rule, at in conn.execute(stmt)]
    apply(into, spends, now=now)
    return len(spends)


class Simulation:
    """A finished simulation: its summary and what `run_once` reported."""

    def __init__(self, summary: Summary, run: RunResult):
        self.summary, self.run = summary, run


def simulate(store: Store, settings: LoyaltySettings, now: datetime, *,
             start: datetime | None = None, end: datetime | None = None) -> Simulation:
    """Run `settings` (as if enabled) over the store's orders at `now`; the store is only read."""
    enabled = settings.model_copy(update={"enabled": True})
    memory = _memory_store()
    try:
        _copy_orders(store, memory, start, end)
        _copy_spends(store, memory, now, end)
        run = run_once(memory, enabled, now)
        summary = summarize(memory.iter_orders(), entries_of(memory), enabled, now)
    finally:
        memory.engine.dispose()
    return Simulation(summary, run)
