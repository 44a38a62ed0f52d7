"""Leases in the store (`sync.leases`): one holder at a time, expiry hands over, fences refuse stale writes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from connectors.records import OrderRecord, OrderStatus
from store import PageWrite
from store.store import StreamKey
from store.tables import OrderRow
from sync.leases import LEASES, LeaseLost, Leases

TTL = timedelta(seconds=30)
KEY = StreamKey("wildberries", "main", "orders")
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _page(order_id: str) -> PageWrite:
    order = OrderRecord(marketplace="wildberries", account="main", order_id=order_id, created_at=NOW,
                        updated_at=NOW, status=OrderStatus.DELIVERED, platform_status="sold", fulfilment=None,
                        currency="RUB", total=Decimal(100), lines=(), source="test", source_rank=1)
    return PageWrite(orders=[order], cursor_at=NOW)


def _expire(store, name: str) -> None:
    """Make `name` run out now, as if its holder had stopped renewing a lease period ago."""
    with store.engine.begin() as conn:
        conn.execute(LEASES.update().where(LEASES.c.name == name)
                     .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))


def test_one_holder_at_a_time_until_it_expires(store):
    a, b = Leases(store.engine, "a", TTL), Leases(store.engine, "b", TTL)
    first = a.acquire("account:wildberries/main")
    assert first is not None and first.token == 1
    assert b.acquire("account:wildberries/main") is None
    _expire(store, "account:wildberries/main")
    taken = b.acquire("account:wildberries/main")
    assert taken is not None and taken.token == 2 and taken.holder == "b"
    assert a.acquire("account:wildberries/main") is None
    assert a.renew() == ["account:wildberries/main"] and a.held == {}


def test_renew_keeps_a_lease_past_its_first_period(store):
    # A 4 s lease renewed after 1.6 s is asked for 4.1 s after the grant: past its first period, and
    # 1.5 s before the renewed one ends (a loaded machine once spent 0.5 s of slack between the two).
    a, b = Leases(store.engine, "a", timedelta(seconds=4)), Leases(store.engine, "b", timedelta(seconds=4))
    held = a.acquire("job:loyalty")
    time.sleep(1.6)
    assert a.renew() == []
    time.sleep(2.5)  # 4.1 s after the grant: only the renewal keeps it
    assert b.acquire("job:loyalty") is None
    assert a.held["job:loyalty"].token == held.token
    assert a.held["job:loyalty"].expires_at > held.expires_at


def test_release_hands_over_at_once(store):
    a, b = Leases(store.engine, "a", TTL), Leases(store.engine, "b", TTL)
    a.acquire("job:actions")
    a.release("job:actions")
    assert b.acquire("job:actions") is not None


def test_a_restart_under_the_same_name_takes_its_leases_back_with_a_new_token(store):
    before = Leases(store.engine, "replica-1", TTL)
    old = before.acquire("account:ozon/main")
    after = Leases(store.engine, "replica-1", TTL)  # the same replica name, a new process
    new = after.acquire("account:ozon/main")
    assert new is not None and new.token == old.token + 1
    # The earlier process, were it still alive, is fenced out.
    with pytest.raises(LeaseLost):
        store.write_page(KEY, _page("late"), now=NOW, fence=before.fence(old))


def test_a_stale_fence_refuses_the_whole_write(store):
    a, b = Leases(store.engine, "a", TTL), Leases(store.engine, "b", TTL)
    lease = a.acquire("account:wildberries/main")
    store.write_page(KEY, _page("first"), now=NOW, fence=a.fence(lease))
    _expire(store, "account:wildberries/main")
    with pytest.raises(LeaseLost):  # expired, not yet taken: already refused
        store.write_page(KEY, _page("expired"), now=NOW, fence=a.fence(lease))
    successor = b.acquire("account:wildberries/main")
    with pytest.raises(LeaseLost):
        store.write_page(KEY, _page("stale"), now=NOW, fence=a.fence(lease))
    with pytest.raises(LeaseLost):
        store.record_run(KEY, state="ok", at=NOW, fence=a.fence(lease))
    store.write_page(KEY, _page("successor"), now=NOW, fence=b.fence(successor))
    with store.engine.connect() as conn:
        ids = {r for (r,) in conn.execute(select(OrderRow.order_id))}
    assert ids == {"first", "successor"}
    assert store.get_cursor(KEY).records_synced == 2


def test_racing_replicas_get_one_grant(pg_store):
    holders = [Leases(pg_store.engine, f"r{i}", TTL) for i in range(8)]
    start = threading.Barrier(len(holders))

    def race(leases: Leases):
        start.wait()
        return leases.acquire("job:loyalty")

    with ThreadPoolExecutor(len(holders)) as pool:
        grants = [g for g in pool.map(race, holders) if g is not None]
    assert len(grants) == 1


def test_a_takeover_waits_for_the_fenced_write_in_flight(pg_store):
    """PostgreSQL: a write that passed its fence commits before anyone else is granted the lease."""
    ttl = timedelta(seconds=1)
    a, b = Leases(pg_store.engine, "a", ttl), Leases(pg_store.engine, "b", ttl)
    lease = a.acquire("account:wildberries/main")
    fenced, writing_until = threading.Event(), []

    def slow_write() -> None:
        with pg_store.engine.begin() as conn:
            a.fence(lease)(conn)
            fenced.set()
            time.sleep(ttl.total_seconds() + 0.5)  # the lease runs out while this write is open
            conn.execute(OrderRow.__table__.insert().values(
                marketplace="wildberries", account="main", order_id="in-flight", created_at=NOW, updated_at=NOW,
                status="delivered", platform_status="sold", currency="RUB", total=Decimal(1),
                returned_total=Decimal(0), source="test", source_rank=1, status_changed_at=NOW))
            # Taken inside the transaction: the commit follows. (A time taken after the commit
            # returns can come later than the waiting thread's, which the server released first.)
            writing_until.append(time.monotonic())

    writer = threading.Thread(target=slow_write)
    writer.start()
    assert fenced.wait(5)
    time.sleep(ttl.total_seconds() + 0.1)
    taken = b.acquire("account:wildberries/main")  # blocks on the writer's share lock
    granted_at = time.monotonic()
    writer.join()
    assert taken is not None
    assert writing_until and writing_until[0] <= granted_at  # the grant waited for the write's commit


def _transactions(engine) -> list[int]:
    """A counter of the transactions begun on `engine` from now on (one element per BEGIN)."""
    begun: list[int] = []
    event.listen(engine, "begin", lambda conn: begun.append(1))
    return begun


def test_many_leases_are_taken_in_one_transaction_only_where_free(store):
    a, b = Leases(store.engine, "a", TTL), Leases(store.engine, "b", TTL)
    names = [f"account:wildberries/a{i:04d}" for i in range(1200)]  # more than one statement's worth
    assert {lease.name for lease in a.acquire_many(names[:400])} == set(names[:400])
    _expire(store, names[0])
    begun = _transactions(store.engine)
    granted = b.acquire_many(reversed(names))
    assert len(begun) == 1
    # b gets the free ones and the expired one, with its token bumped; a keeps the other 399.
    assert {lease.name for lease in granted} == {names[0], *names[400:]}
    assert {lease.name: lease.token for lease in granted}[names[0]] == 2
    assert set(b.held) == {names[0], *names[400:]}
    assert a.renew() == [names[0]] and len(a.held) == 399


def test_many_leases_are_given_back_in_one_transaction(store):
    a, b = Leases(store.engine, "a", TTL), Leases(store.engine, "b", TTL)
    names = [f"account:ozon/a{i:04d}" for i in range(700)]
    a.acquire_many(names)
    begun = _transactions(store.engine)
    a.release_many(names[:600])
    assert len(begun) == 1 and set(a.held) == set(names[600:])
    assert {lease.name for lease in b.acquire_many(names)} == set(names[:600])
