"""Raw bulk reads (`store.types.raw` + `readers`) give exactly what the column types give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select

from loyalty.engine import Entry
from loyalty.ledger_rows import LEDGER, insert_new
from store import Store
from store.types import raw, readers

MOMENTS = [datetime(2026, 8, 18, 9, 41, 27, 5, tzinfo=UTC), datetime(2026, 8, 18, 23, 59, 59, 999999, tzinfo=UTC),
           datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=3))), datetime(1, 1, 1, 3, tzinfo=UTC)]
AMOUNTS = [Decimal("1248.32"), Decimal("0.10"), Decimal("1E+3"), Decimal("-0.00"), Decimal("-12")]


def test_raw_reads_equal_the_column_types_on_both_databases(store: Store):
    entries = [Entry("earn", amount, f"k{i}", "O1", "rate", at, at if i % 2 else None, None, "ozon", "main", "b1")
               for i, (amount, at) in enumerate(zip(AMOUNTS, MOMENTS + MOMENTS[:1], strict=True))]
    c = LEDGER.c
    with store.engine.begin() as conn:
        insert_new(conn, entries)
        typed = conn.execute(select(c.amount, c.effective_at, c.available_from).order_by(c.id)).all()
        read = readers(conn.dialect)
        rows = conn.execute(select(raw(c.amount), raw(c.effective_at), raw(c.available_from)).order_by(c.id)).all()
    converted = [(read.money(a), read.utc(e), read.utc(v)) for a, e, v in rows]
    assert converted == [tuple(r) for r in typed]
    assert all(e.tzinfo is not None and e.utcoffset() == timedelta(0) for _, e, _ in converted)
    assert [a for a, _, _ in converted] == AMOUNTS
    assert [e for _, e, _ in converted] == [m.astimezone(UTC) for m in MOMENTS + MOMENTS[:1]]



def test_the_sqlite_binder_writes_what_the_column_type_writes_for_any_instant():
    """`binders` on SQLite formats instants itself (cached date part); SQLAlchemy's own bind processor
    is the reference, over random instants in years 1-3000, whole seconds and other offsets included."""
    import random

    from sqlalchemy.dialects import sqlite

    from store.types import UTCDateTime, binders

    dialect = sqlite.dialect()
    reference = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    fast = binders(dialect).utc
    rng = random.Random(7)
    for _ in range(20_000):
        t = datetime(1, 1, 2, tzinfo=UTC) + timedelta(microseconds=rng.randrange(0, 94_000_000_000_000_000))
        if rng.random() < 0.3:
            t = t.replace(microsecond=0)
        if rng.random() < 0.2:
            t = t.astimezone(timezone(timedelta(minutes=rng.randrange(-720, 840))))
        assert fast(t) == reference(t), t
    assert fast(None) is None
