"""The ledger on both backends: idempotent writes, pending lots, reversals of the recorded amount."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from connectors.records import OrderRecord, OrderStatus
from loyalty.engine import Entry, OrderFact, expires_at, points
from loyalty.ledger import LEDGER, apply, balances, entries_of, run_once
from loyalty.plan import member_entries
from loyalty.rules import EveryNthReward, ExpiryPolicy, LoyaltySettings, WelcomeReward
from store import PageWrite, Store
from store.store import StreamKey

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KEY = StreamKey("ozon", "main", "orders")
MEMBER = ("ozon", "main", "b1")
SETTINGS = LoyaltySettings(enabled=True, earn_rate=Decimal("0.05"))


def order(order_id: str = "A1", status: OrderStatus = OrderStatus.IN_DELIVERY, *, total: str = "1000",
          created: datetime = T0, updated: datetime | None = None, buyer: str | None = "b1",
          marketplace: str = "ozon") -> OrderRecord:
    return OrderRecord(marketplace=marketplace, account="main", order_id=order_id, created_at=created,
                       updated_at=updated or created,
                       status_changed_at=updated or created, status=status, platform_status=status.value,
                       fulfilment="fbo", currency="RUB", total=Decimal(total), lines=(), buyer_key=buyer)


def write(store: Store, *orders: OrderRecord) -> None:
    store.write_page(KEY, PageWrite(orders=list(orders)), now=T0)


def ledger(store: Store) -> list[tuple]:
    """The ledger without ids, comparable across runs."""
    return sorted(tuple(v for k, v in r.items() if k != "id") for r in entries_of(store))


def test_run_twice_changes_nothing(store: Store):
    write(store, order("A1"), order("A2", OrderStatus.DELIVERED, created=T0 + DAY, updated=T0 + 2 * DAY),
          order("A3", OrderStatus.CANCELLED, created=T0 + 2 * DAY))
    first = run_once(store, SETTINGS, T0 + 10 * DAY)
    before = ledger(store)
    second = run_once(store, SETTINGS, T0 + 10 * DAY)
    assert first.inserted == 2 and second.inserted == 0 and second.filled == 0
    assert ledger(store) == before
    again = apply(store, [Entry(**{k: r[k] for k in ("kind", "amount", "idempotency_key", "order_id", "rule",
                                                      "effective_at", "available_from", "expires_at",
                                                      "marketplace", "account", "buyer_key")})
                          for r in entries_of(store)])
    assert again.inserted == 0 and ledger(store) == before


def test_earn_is_pending_until_delivered_and_return_window_passed(store: Store):
    write(store, order("A1"))
    assert run_once(store, SETTINGS, T0 + DAY).inserted == 0  # not settled yet
    run_once(store, SETTINGS, T0 + 3 * DAY)
    [lot] = entries_of(store)
    assert (lot["kind"], lot["amount"], lot["available_from"]) == ("earn", Decimal(50), None)
    assert balances(store, MEMBER, T0 + 30 * DAY).pending == 50

    delivered = T0 + 4 * DAY
    write(store, order("A1", OrderStatus.DELIVERED, updated=delivered))
    assert run_once(store, SETTINGS, T0 + 5 * DAY).filled == 1
    [lot] = entries_of(store)
    assert lot["available_from"] == delivered + SETTINGS.return_window
    assert lot["expires_at"] == lot["available_from"] + timedelta(days=365)
    just_before = balances(store, MEMBER, lot["available_from"] - timedelta(seconds=1))
    assert (just_before.pending, just_before.available) == (50, 0)
    after = balances(store, MEMBER, lot["available_from"])
    assert (after.pending, after.available, after.lifetime, after.debt) == (0, 50, 50, 0)
    # A later, different delivered time never moves the recorded availability.
    write(store, order("A1", OrderStatus.DELIVERED, updated=delivered + DAY))
    assert run_once(store, SETTINGS, T0 + 6 * DAY).filled == 0
    assert entries_of(store)[0]["available_from"] == delivered + SETTINGS.return_window


def test_cancel_reverses_the_recorded_amount_even_after_the_rate_changed(store: Store):
    write(store, order("A1"))
    run_once(store, SETTINGS, T0 + 3 * DAY)
    write(store, order("A1", OrderStatus.CANCELLED, updated=T0 + 4 * DAY))
    richer = SETTINGS.model_copy(update={"earn_rate": Decimal("0.10")})
    run_once(store, richer, T0 + 5 * DAY)
    earn, rev = entries_of(store)
    assert (earn["amount"], earn["remaining"]) == (50, 0)
    assert (rev["kind"], rev["amount"], rev["remaining"]) == ("reverse", -50, 0)
    assert rev["idempotency_key"] == "reverse:ozon:main:A1:rate#1"
    assert rev["effective_at"] == T0 + 4 * DAY
    b = balances(store, MEMBER, T0 + 5 * DAY)
    assert (b.pending, b.available, b.lifetime, b.debt) == (0, 0, 0, 0)
    assert run_once(store, richer, T0 + 6 * DAY).inserted == 0


def test_idempotency_key_is_unique(store: Store):
    e = Entry("earn", Decimal(10), "earn:ozon:main:A1:rate", "A1", "rate", T0,
              marketplace="ozon", account="main", buyer_key="b1")
    assert apply(store, [e]).inserted == 1
    assert apply(store, [Entry("earn", Decimal(99), e.idempotency_key, "A1", "rate", T0,
                               marketplace="ozon", account="main", buyer_key="b1")]).inserted == 0
    [row] = entries_of(store)
    assert row["amount"] == 10
    with pytest.raises(IntegrityError), store.engine.begin() as conn:  # the database itself refuses
        conn.execute(insert(LEDGER).values(marketplace="ozon", account="main", buyer_key="b1", kind="earn",
                                           amount=Decimal(1), idempotency_key=e.idempotency_key,
                                           effective_at=T0, remaining=Decimal(1)))


def test_reversal_of_a_spent_lot_takes_other_lots_then_keeps_debt(store: Store):
    def lot(oid: str, amount: int, day: int) -> Entry:
        return Entry("earn", Decimal(amount), f"earn:ozon:main:{oid}:rate", oid, "rate", T0,
                     available_from=T0 + day * DAY, marketplace="ozon", account="main", buyer_key="b1")

    apply(store, [lot("A1", 50, 1), lot("A2", 30, 2)])
    apply(store, [Entry("spend", Decimal(-50), "spend:act1", None, None, T0 + 3 * DAY,
                        marketplace="ozon", account="main", buyer_key="b1")])
    apply(store, [Entry("reverse", Decimal(-50), "reverse:ozon:main:A1:rate:returned", "A1", "rate",
                        T0 + 4 * DAY, marketplace="ozon", account="main", buyer_key="b1")])
    rows = {r["idempotency_key"]: r["remaining"] for r in entries_of(store)}
    assert rows == {"earn:ozon:main:A1:rate": 0, "earn:ozon:main:A2:rate": 0, "spend:act1": 0,
                    "reverse:ozon:main:A1:rate:returned": -20}
    b = balances(store, MEMBER, T0 + 10 * DAY)
    assert (b.available, b.debt, b.total) == (0, 20, Decimal(-20))
    assert b.total == sum(r["amount"] for r in entries_of(store))


def test_orders_without_buyer_are_counted_per_marketplace(store: Store):
    write(store, order("A1", buyer=None), order("A2", buyer=None), order("W1", buyer=None, marketplace="wildberries"))
    result = run_once(store, SETTINGS, T0 + 3 * DAY)
    assert result.no_identity == {"ozon": 2, "wildberries": 1} and result.members == 0
    assert entries_of(store) == []


def test_disabled_program_writes_nothing(store: Store):
    write(store, order("A1"))
    assert run_once(store, LoyaltySettings(), T0 + 3 * DAY).inserted == 0
    assert entries_of(store) == []


# -- the pure engine ------------------------------------------------------------------------------

def fact(oid: str, day: int, status: str = "delivered", total: str = "1000") -> OrderFact:
    created = T0 + day * DAY
    return OrderFact("ozon", "main", oid, "b1", created, created + DAY, status, Decimal(total))


def test_points_round_down():
    assert points(Decimal("999.99"), Decimal("0.05")) == 49


def test_welcome_goes_to_the_first_settled_uncancelled_order_and_every_nth_counts_per_period():
    s = LoyaltySettings(enabled=True, welcome=WelcomeReward(points=Decimal(100)),
                        every_nth=EveryNthReward(n=2, points=Decimal(7), period=10 * DAY))
    orders = [fact("A1", 0, "cancelled"), fact("A2", 1), fact("A3", 2), fact("A4", 20), fact("A5", 21)]
    keys = {e.idempotency_key: e.order_id for e in member_entries(orders, s, {}, T0 + 40 * DAY)}
    assert keys["earn:ozon:main:A2:welcome"] == "A2"
    assert keys["earn:ozon:main:A3:every_nth"] == "A3"  # 2nd of the period from A2
    assert keys["earn:ozon:main:A5:every_nth"] == "A5"  # A4 (day 20) opened the next period
    assert not any(k.startswith("earn:ozon:main:A4:every_nth") for k in keys)
    assert "earn:ozon:main:A1:rate" not in keys


def test_tier_rate_comes_from_earlier_orders_in_the_window():
    s = LoyaltySettings.model_validate({"enabled": True, "tiers": [
        {"name": "base", "min_spend": 0, "earn_rate": "0.01"},
        {"name": "gold", "min_spend": 1500, "earn_rate": "0.10"}]})
    out = {e.order_id: e.amount for e in member_entries(
        [fact("A1", 0), fact("A2", 1), fact("A3", 2), fact("A4", 400)], s, {}, T0 + 500 * DAY)}
    assert out == {"A1": 10, "A2": 10, "A3": 100, "A4": 10}


def test_expiry_policies():
    at = datetime(2026, 1, 20, 5, tzinfo=UTC)
    month_end = LoyaltySettings(expiry=ExpiryPolicy(policy="end_of_month", days=30))
    assert expires_at(month_end, at) == datetime(2026, 3, 1, tzinfo=UTC)
    assert expires_at(LoyaltySettings(expiry=ExpiryPolicy(policy="never")), at) is None
    assert expires_at(LoyaltySettings(expiry=ExpiryPolicy(days=10)), at) == at + 10 * DAY
