"""Expiry on both backends: one entry per expired lot, idempotent; taking back after it forgives
what expired unused (docs/loyalty-rules.md §7)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from connectors.records import OrderRecord, OrderStatus
from loyalty.engine import Entry
from loyalty.ledger import apply, balances, entries_of, expire_once, run_once
from loyalty.ledger_rows import ref_of
from loyalty.rules import ExpiryPolicy, LoyaltySettings
from store import PageWrite, Store, connect, migrate
from store.store import StreamKey

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KEY = StreamKey("ozon", "main", "orders")
MEMBER = ("ozon", "main", "b1")
WINDOW = 14 * DAY  # the default return window


def program(policy: str = "after_days", days: int = 30) -> LoyaltySettings:
    return LoyaltySettings(enabled=True, earn_rate=Decimal("0.05"), expiry=ExpiryPolicy(policy=policy, days=days))


def order(oid: str, status: OrderStatus = OrderStatus.DELIVERED, *, total: str = "1000", day: int = 0,
          updated_day: int | None = None) -> OrderRecord:
    created = T0 + day * DAY
    updated = T0 + (day + 1 if updated_day is None else updated_day) * DAY
    return OrderRecord(marketplace="ozon", account="main", order_id=oid, created_at=created, updated_at=updated,
                       status_changed_at=updated,
                       status=status, platform_status=status.value, fulfilment="fbo", currency="RUB",
                       total=Decimal(total), lines=(), buyer_key="b1")


def write(store: Store, *orders: OrderRecord) -> None:
    store.write_page(KEY, PageWrite(orders=list(orders)), now=T0)


def rows(store: Store) -> dict[str, dict]:
    return {r["idempotency_key"]: r for r in entries_of(store)}


def assert_invariant(store: Store, now: datetime) -> None:
    b = balances(store, MEMBER, now)
    assert b.total == sum((r["amount"] for r in entries_of(store)), Decimal(0))
    assert b.pending >= 0 and b.available >= 0 and b.expired >= 0 and b.debt >= 0


def spend(store: Store, action: str, amount: int, at: datetime) -> None:
    apply(store, [Entry("spend", Decimal(-amount), f"spend:{action}", None, None, at,
                        marketplace="ozon", account="main", buyer_key="b1")])


def test_after_days_expires_the_lot_once(store: Store):
    write(store, order("A1"))
    run_once(store, program(), T0 + 3 * DAY)
    lot = rows(store)["earn:ozon:main:A1:rate"]
    expiry = T0 + DAY + WINDOW + 30 * DAY
    assert lot["expires_at"] == expiry
    assert run_once(store, program(), expiry - timedelta(seconds=1)).expired == 0
    assert balances(store, MEMBER, expiry).expired == 50  # due, waiting for the job

    assert run_once(store, program(), expiry).expired == 1
    entry = rows(store)[f"expire:{ref_of(lot['idempotency_key'])}"]
    assert (entry["kind"], entry["amount"], entry["remaining"]) == ("expire", -50, None)
    assert (entry["order_id"], entry["rule"], entry["effective_at"]) == ("A1", "rate", expiry)
    assert rows(store)["earn:ozon:main:A1:rate"]["remaining"] == 0
    b = balances(store, MEMBER, expiry)
    assert (b.pending, b.available, b.expired, b.expired_unwritten, b.debt, b.lifetime) == (0, 0, 50, 0, 0, 50)
    assert_invariant(store, expiry)

    before = entries_of(store)
    again = run_once(store, program(), expiry + DAY)
    assert (again.inserted, again.filled, again.expired) == (0, 0, 0)
    assert expire_once(store, expiry + DAY) == 0 and entries_of(store) == before


def test_end_of_month_and_never():
    at = T0 + DAY + WINDOW  # available 2026-03-16 12:00; +20 days = 2026-04-05 -> expires 2026-05-01
    month_end = program("end_of_month", 20)
    never = program("never")
    with tempfile.TemporaryDirectory() as tmp:
        for settings, expect in ((month_end, datetime(2026, 5, 1, tzinfo=UTC)), (never, None)):
            engine = connect(f"sqlite:///{tmp}/{settings.expiry.policy}.db")
            migrate(engine)
            store = Store(engine)
            write(store, order("A1"))
            run_once(store, settings, at)
            lot = rows(store)["earn:ozon:main:A1:rate"]
            assert lot["expires_at"] == expect
            if expect is not None:
                assert run_once(store, settings, expect - timedelta(seconds=1)).expired == 0
                assert run_once(store, settings, expect).expired == 1
                assert balances(store, MEMBER, expect).available == 0
            else:
                far = T0 + 3650 * DAY
                assert run_once(store, settings, far).expired == 0
                assert balances(store, MEMBER, far).available == 50
            assert_invariant(store, T0 + 3650 * DAY)
            engine.dispose()


def test_expiry_takes_only_what_is_left_in_its_own_lot(store: Store):
    write(store, order("A1"), order("A2", total="2000", day=40))
    s = program()
    run_once(store, s, T0 + 20 * DAY)
    spend(store, "s1", 20, T0 + 20 * DAY)  # from A1, available since day 15
    expiry = T0 + DAY + WINDOW + 30 * DAY
    assert run_once(store, s, T0 + 50 * DAY).expired == 1
    r = rows(store)
    lot = r["earn:ozon:main:A1:rate"]
    assert r[f"expire:{ref_of(lot['idempotency_key'])}"]["amount"] == -30 and lot["remaining"] == 0
    assert r["earn:ozon:main:A2:rate"]["remaining"] == 100  # untouched
    assert expiry <= T0 + 50 * DAY
    assert_invariant(store, T0 + 50 * DAY)


def test_reversal_after_expiry_owes_only_the_points_that_were_used(store: Store):
    s = program()
    write(store, order("A1", total="2000"))  # 100 points
    run_once(store, s, T0 + 20 * DAY)
    spend(store, "s1", 30, T0 + 20 * DAY)
    expiry = T0 + DAY + WINDOW + 30 * DAY
    run_once(store, s, expiry)  # 70 expire
    write(store, order("A1", OrderStatus.RETURNED, total="2000", updated_day=60))
    run_once(store, s, T0 + 61 * DAY)
    r = rows(store)
    rev = r["reverse:ozon:main:A1:rate#1"]
    # All 100 are taken back: the 70 that expired unused are forgiven, the 30 spent stay as debt.
    assert (rev["amount"], rev["remaining"]) == (-100, -30)
    forgiven = r[f"forgive:{ref_of(rev['idempotency_key'])}"]
    assert (forgiven["kind"], forgiven["rule"], forgiven["amount"]) == ("adjust", "rate", 70)
    b = balances(store, MEMBER, T0 + 61 * DAY)
    assert (b.available, b.expired, b.debt, b.lifetime) == (0, 0, 30, 0)  # as if A1 had never earned
    assert_invariant(store, T0 + 61 * DAY)
    assert run_once(store, s, T0 + 62 * DAY).inserted == 0


def test_a_lot_that_expired_whole_is_forgiven_whole(store: Store):
    s = program()
    write(store, order("A1"))
    run_once(store, s, T0 + 60 * DAY)  # earned, then expired in the same run
    write(store, order("A1", OrderStatus.RETURNED, updated_day=61))
    run_once(store, s, T0 + 62 * DAY)
    r = rows(store)
    rev = r["reverse:ozon:main:A1:rate#1"]
    assert (rev["amount"], rev["remaining"]) == (-50, 0)
    assert r[f"forgive:{ref_of(rev['idempotency_key'])}"]["amount"] == 50
    b = balances(store, MEMBER, T0 + 62 * DAY)
    assert (b.available, b.expired, b.debt, b.lifetime) == (0, 0, 0, 0)
    assert_invariant(store, T0 + 62 * DAY)


def test_a_return_dated_before_the_expiry_takes_the_lot_whatever_ran_first(store: Store):
    s = program()
    write(store, order("A1"))
    run_once(store, s, T0 + 3 * DAY)
    write(store, order("A1", OrderStatus.RETURNED, updated_day=20))
    run_once(store, s, T0 + 60 * DAY)  # the return (day 20) and the expiry (day 45) are both in the past
    r = rows(store)
    assert r["reverse:ozon:main:A1:rate#1"]["amount"] == -50
    assert not any(k.startswith(("expire:", "forgive:")) for k in r)  # nothing was left to expire
    assert_invariant(store, T0 + 60 * DAY)


def test_an_expired_lot_is_never_spent_whether_or_not_a_run_wrote_its_expiry(store: Store):
    """Finding 1: a lot that expired at 12:00 funded a 13:00 spend because only the later expire step
    wrote it off. Now the spend finds nothing available and becomes debt."""
    s = program()
    write(store, order("A1"))
    run_once(store, s, T0 + 20 * DAY)  # available since day 15, expires day 45 12:00
    expiry = T0 + DAY + WINDOW + 30 * DAY
    assert balances(store, MEMBER, expiry + timedelta(hours=1)).available == 0
    spend(store, "late", 50, expiry + timedelta(hours=1))  # no run wrote the expiry yet
    b = balances(store, MEMBER, expiry + timedelta(hours=1))
    assert (b.available, b.debt, b.expired) == (0, 50, 50)
    run_once(store, s, expiry + timedelta(hours=2))
    lot = rows(store)["earn:ozon:main:A1:rate"]
    assert rows(store)[f"expire:{ref_of(lot['idempotency_key'])}"]["amount"] == -50
    assert_invariant(store, expiry + timedelta(hours=2))


def test_a_return_after_an_expiry_cannot_cover_itself_with_the_expired_lot(store: Store):
    """Finding 1, second half: a return in the same run as an expiry took its points from a lot that
    had already expired, so the debt vanished. Lot A2 expired before A1's return: it pays nothing."""
    s = program()
    write(store, order("A2", total="2000", day=0), order("A1", day=10))
    run_once(store, s, T0 + 30 * DAY)  # A2: 100, available day 15, expires day 45; A1: 50, expires day 55
    spend(store, "s1", 50, T0 + 30 * DAY)  # the oldest available first: from A2
    write(store, order("A1", OrderStatus.RETURNED, day=10, updated_day=50))  # returned after A2 expired
    run_once(store, s, T0 + 51 * DAY)
    b = balances(store, MEMBER, T0 + 51 * DAY)
    # A1's own lot (50, unspent, not expired) covers its return; A2's 50 left expired on day 45.
    assert (b.available, b.debt, b.expired) == (0, 0, 50)
    assert_invariant(store, T0 + 51 * DAY)
