"""`loyalty_due`: when a member's points next change by time alone, kept by every ledger write, read
by the ten-minute run instead of indexes on the ledger's dates (loyalty.incremental)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.records import OrderRecord, OrderStatus
from loyalty.engine import Entry
from loyalty.incremental import ORDERS, STATE, run_changed
from loyalty.ledger import apply, entries_of
from loyalty.ledger_rows import DUE, next_due
from loyalty.rules import ExpiryPolicy, LoyaltySettings
from store import PageWrite
from store.store import StreamKey
from tests.loyalty.engine_driver import fresh_store, migrated_template

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)
# 5 %, points available 14 days after delivery (the default return window), expiring 30 days later.
RULES = LoyaltySettings(enabled=True, earn_rate=Decimal("0.05"), expiry=ExpiryPolicy(policy="after_days", days=30))


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("due"))


def _order(oid: str, buyer: str, delivered: datetime, total: int) -> OrderRecord:
    created = delivered - 3 * DAY
    return OrderRecord(marketplace="ozon", account="main", order_id=oid, created_at=created, updated_at=delivered,
                       status=OrderStatus.DELIVERED, platform_status="delivered", fulfilment="fbs", currency="RUB",
                       total=Decimal(total), lines=(), buyer_key=buyer)


def _write(store, *records: OrderRecord, now: datetime) -> None:
    store.write_pages(StreamKey("ozon", "main", "orders"), [PageWrite(orders=list(records))], now=now)


def _due(store) -> dict[str, datetime]:
    with store.engine.connect() as conn:
        return {buyer: at for buyer, at in conn.execute(select(DUE.c.buyer_key, DUE.c.due_at))}


def _forget_wall_clock_changes(store) -> None:
    """The orders were synced long before the runs below (outside the run's re-read margin)."""
    long_ago = datetime.now(UTC) - DAY
    with store.engine.begin() as conn:
        conn.execute(ORDERS.update().values(changed_at=long_ago))
        conn.execute(STATE.update().where(STATE.c.name == "ledger.orders_changed").values(at=long_ago + DAY / 24))


def test_next_due_is_the_earliest_lot_date_after_now():
    def lot(kind: str, avail: datetime | None, expiry: datetime | None) -> Entry:
        return Entry(kind, Decimal(5), f"{kind}{avail}{expiry}", "O", "rate", T0, avail, expiry, "ozon", "main", "b")

    entries = [lot("earn", T0 - DAY, T0 + 9 * DAY), lot("earn", T0 + 3 * DAY, T0 + 33 * DAY),
               lot("reverse", T0 + DAY, T0 + DAY)]  # a take-back's dates mean nothing
    assert next_due(entries, T0) == T0 + 3 * DAY
    assert next_due(entries, T0 + 3 * DAY) == T0 + 9 * DAY  # "after now": a date at now is past
    assert next_due(entries, T0 + 33 * DAY) is None


def test_runs_keep_each_members_next_moment_and_wake_members_when_it_comes(template_db: Path):
    """b1 delivered at T0 (200 ₽: 10 points, available T0+14d, expiring T0+44d); b2 delivered at
    T0+5d (100 ₽: 5 points, available T0+19d, expiring T0+49d). Each run records the next of those
    moments per member; a run after one of them reads that member only, even when the run that
    should have seen it was skipped."""
    with fresh_store(template_db) as store:
        _write(store, _order("O1", "b1", T0, 200), _order("O2", "b2", T0 + 5 * DAY, 100), now=T0 + 5 * DAY)
        first = run_changed(store, RULES, T0 + 6 * DAY)
        assert first.full
        assert _due(store) == {"b1": T0 + 14 * DAY, "b2": T0 + 19 * DAY}
        _forget_wall_clock_changes(store)
        # Nothing due yet: no member read.
        assert run_changed(store, RULES, T0 + 7 * DAY).run.members == 0
        # b1's points became available at T0+14d; the run at T0+15d reads b1 alone and moves its
        # moment to the expiry.
        woke = run_changed(store, RULES, T0 + 15 * DAY)
        assert (woke.full, woke.run.members) == (False, 1)
        assert _due(store) == {"b1": T0 + 44 * DAY, "b2": T0 + 19 * DAY}
        # No run between T0+19d and T0+44d; the run at T0+50d finds both past their moments (b2's
        # availability and expiry, b1's expiry) and writes each expiry; then nothing is due.
        late = run_changed(store, RULES, T0 + 50 * DAY)
        assert (late.full, late.run.members) == (False, 2)
        expired = {r["order_id"]: r["amount"] for r in entries_of(store) if r["kind"] == "expire"}
        assert expired == {"O1": Decimal(-10), "O2": Decimal(-5)}
        assert _due(store) == {}


def test_a_lot_written_outside_the_job_is_due_too(template_db: Path):
    """`apply` (the outbox's path, or an operator's adjustment) refolds the member: its lots' dates
    are recorded as the member's next moment like the job's own."""
    with fresh_store(template_db) as store:
        lot = Entry("earn", Decimal(7), "earn:ozon:main:X:manual", "X", "manual", T0, T0 + 2 * DAY, T0 + 9 * DAY,
                    "ozon", "main", "b9")
        apply(store, [lot], now=T0)
        assert _due(store) == {"b9": T0 + 2 * DAY}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_inserting_rows_some_of_which_exist_reports_exactly_the_new_keys(backend: str, tmp_path: Path, request):
    """`insert_bound` tells the batch writer which of its keys it wrote (another run may have written
    some first). On SQLite it counts instead of reading each row back; both must name the same keys."""
    from loyalty.ledger_rows import LEDGER, bound_rows, insert_bound
    from store import connect, migrate
    from store.types import binders

    url = f"sqlite:///{tmp_path / 'x.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    engine = connect(url)
    migrate(engine)

    def entries(*names: str) -> list[Entry]:
        return [Entry("earn", Decimal(3), f"earn:ozon:main:{n}:rate", n, "rate", T0, None, None, "ozon", "main", "b")
                for n in names]

    with engine.begin() as conn:
        bind = binders(conn.dialect)
        first = insert_bound(conn, bound_rows(bind, entries("A", "C")))
        assert first == {"earn:ozon:main:A:rate", "earn:ozon:main:C:rate"}
        got = insert_bound(conn, bound_rows(bind, entries("A", "B", "C", "D")))
        assert got == {"earn:ozon:main:B:rate", "earn:ozon:main:D:rate"}
        assert insert_bound(conn, bound_rows(bind, entries("B", "D"))) == set()
        keys = sorted(conn.execute(select(LEDGER.c.idempotency_key)).scalars())
    assert keys == [f"earn:ozon:main:{n}:rate" for n in "ABCD"]
    engine.dispose()
