"""Raw bulk reads (`sync.store.types.raw` + `readers`) give exactly what the column types give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from loyalty.engine import Entry
from loyalty.ledger_rows import LEDGER, insert_new
from sync.store import Store
from sync.store.types import raw, readers

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



def test_sqlite_binding_gives_the_column_types_text_whatever_was_bound_or_read_before():
    """`binders` on SQLite remembers the text of recent instants (formatting costs more than the
    insert): what it gives must stay exactly the column type's text, for any zone, after reads of
    stored text, and a naive datetime must still be refused."""
    import random

    from sqlalchemy.dialects import sqlite

    from sync.store.types import UTCDateTime, binders

    dialect = sqlite.dialect()
    bind, read = binders(dialect), readers(dialect)
    typed = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    rng = random.Random(7)
    zones = [UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-5, minutes=-30))]
    moments = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**13)) for _ in range(300)]
    for m in moments:  # read first (as the job reads orders), then bound in every zone, twice
        assert read.utc(typed(m)) == m
    for _ in range(2):
        for m in moments:
            for zone in zones:
                assert bind.utc(m.astimezone(zone)) == typed(m)
    with pytest.raises(ValueError):
        bind.utc(moments[0].replace(tzinfo=None))
