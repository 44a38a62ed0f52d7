"""A first full run into an empty SQLite ledger loads it without the key index (loyalty/bulk_load.py):
the same ledger as a keyed run, the index back however the run ends, and nothing written twice by
anyone meanwhile."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, text

import loyalty.bulk_load as bulk
from loyalty.bulk_load import LedgerLoading, bulk_load, restore_key_index
from loyalty.engine import Entry
from loyalty.ledger import apply, run_once
from loyalty.parallel import WORKERS_ENV
from store import Store, connect, migrate
from tests.loyalty.test_parallel import RULES, T1, ledger, orders, write

SPEND = Entry("spend", Decimal(-10), "spend:manual", None, "promo_code", T1, marketplace="ozon", account="main",
              buyer_key="b001")


def key_index(store: Store) -> bool:
    with store.engine.connect() as conn:
        return key_index_in(conn)


def mark(store: Store):
    with store.engine.connect() as conn:
        return conn.execute(select(bulk.STATE.c.at).where(bulk.STATE.c.name == bulk.MARK)).scalar()


def fresh(tmp_path: Path, name: str, history) -> Store:
    store = Store(connect(f"sqlite:///{tmp_path / name}"))
    migrate(store.engine)
    write(store, history, T1)
    return store


@pytest.fixture
def small_loads(monkeypatch):
    """Loads from 100 orders on (the default waits for 50,000)."""
    monkeypatch.setattr(bulk, "MIN_ORDERS", 100)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_first_run_loads_the_same_ledger_a_keyed_run_writes_and_builds_the_index(
        tmp_path: Path, monkeypatch, workers: str):
    history = orders(5, 600, T1)
    keyed, loaded = fresh(tmp_path, "keyed.db", history), fresh(tmp_path, "loaded.db", history)
    monkeypatch.setenv(WORKERS_ENV, workers)
    run_once(keyed, RULES, T1)
    monkeypatch.setattr(bulk, "MIN_ORDERS", 100)
    seen: list[bool] = []  # whether the key index was there at each insert

    import loyalty.batch as batch

    real = batch.insert_bound

    def watching(conn, rows, *, keyed=True):
        seen.append(key_index_in(conn))
        return real(conn, rows, keyed=keyed)

    monkeypatch.setattr(batch, "insert_bound", watching)
    result = run_once(loaded, RULES, T1)
    assert seen and not any(seen), "the entries went in while the key index was there"
    assert result.inserted > 600 and ledger(loaded) == ledger(keyed)
    assert key_index(loaded) and mark(loaded) is None
    # The index is the real one: a second run writes nothing, a duplicate key is refused.
    assert run_once(loaded, RULES, T1).inserted == 0
    first, again = apply(loaded, [SPEND]), apply(loaded, [SPEND])
    assert (first.inserted, again.inserted) == (1, 0)
    for store in (keyed, loaded):
        store.engine.dispose()


def key_index_in(conn) -> bool:
    return conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'ux_loyalty_ledger_key'")).first() is not None


def test_small_stores_and_ledgers_with_entries_are_written_keyed(tmp_path: Path, small_loads):
    store = fresh(tmp_path, "s.db", orders(5, 300, T1))
    apply(store, [SPEND])
    with bulk_load(store.engine) as load:
        assert load is None  # not empty
    assert key_index(store) and mark(store) is None
    tiny = fresh(tmp_path, "tiny.db", orders(5, 50, T1))
    with bulk_load(tiny.engine) as load:
        assert load is None  # under MIN_ORDERS
    for s in (store, tiny):
        s.engine.dispose()


def test_while_a_load_runs_every_other_writer_is_refused_and_writes_nothing(tmp_path: Path, small_loads):
    store = fresh(tmp_path, "s.db", orders(5, 300, T1))
    with bulk_load(store.engine) as load:
        assert load is not None and not key_index(store)
        with pytest.raises(LedgerLoading, match="first full run is loading the ledger"):
            apply(store, [SPEND])  # a promo code's spend, a manual adjustment
        with pytest.raises(LedgerLoading, match="this run waits"):
            run_once(store, RULES, T1, members=[("ozon", "main", "b001")])  # the ten-minute job
        with bulk_load(store.engine) as second:
            assert second is None  # one load at a time
    assert key_index(store) and mark(store) is None and ledger(store) == []
    store.engine.dispose()


def test_a_load_that_dies_is_waited_for_then_its_index_is_rebuilt(tmp_path: Path, small_loads):
    """A load killed outright (no `finally`) leaves the mark and no index: later runs wait while the
    mark is fresh, then rebuild the index, and the next run completes the ledger."""
    history = orders(5, 600, T1)
    store, clean = fresh(tmp_path, "s.db", history), fresh(tmp_path, "clean.db", history)
    run_once(clean, RULES, T1)
    load = bulk._begin(store.engine)  # the process dies right after: nothing finishes it
    assert load is not None
    with store.engine.begin() as conn:  # it renewed its mark at a first write
        load.renew(conn)
    with pytest.raises(LedgerLoading):
        run_once(store, RULES, T1)
    assert not key_index(store)
    restore_key_index(store.engine, now=mark(store) + bulk.STALE + timedelta(seconds=1))
    assert key_index(store) and mark(store) is None
    # The dead load's handle can write nothing any more.
    with pytest.raises(LedgerLoading, match="was stopped"), store.engine.begin() as conn:
        load.renew(conn)
    run_once(store, RULES, T1)
    assert ledger(store) == ledger(clean)
    for s in (store, clean):
        s.engine.dispose()


def test_a_load_whose_mark_was_taken_stops_before_writing(tmp_path: Path, small_loads, monkeypatch):
    """A load stalled past STALE: another run rebuilt the index and cleared the mark. The stalled
    load's next write transaction finds its mark gone and writes nothing; the index stays."""
    store = fresh(tmp_path, "s.db", orders(5, 600, T1))
    monkeypatch.setenv(WORKERS_ENV, "1")

    import loyalty.ledger as ledger_module

    real = ledger_module.write_plans
    calls = []

    def stalled(conn, plans, now, replan=None, current=None, load=None):
        if not calls:  # the other run, while this one stalls before its first write
            restore_key_index(store.engine, now=mark(store) + bulk.STALE + timedelta(seconds=1))
        calls.append(len(plans))
        return real(conn, plans, now, replan, current, load)

    monkeypatch.setattr(ledger_module, "write_plans", stalled)  # what the one-process run calls
    with pytest.raises(LedgerLoading, match="was stopped"):
        run_once(store, RULES, T1)
    assert key_index(store) and mark(store) is None and ledger(store) == []
    monkeypatch.setattr(ledger_module, "write_plans", real)
    assert run_once(store, RULES, T1).inserted > 600
    store.engine.dispose()


def test_a_load_that_fails_midway_puts_the_index_back(tmp_path: Path, small_loads, monkeypatch):
    """A worker killed mid-load (WorkerLost) ends the run; the index and the mark are back as they
    were, and what was written stays for the next run to complete."""
    import loyalty.parallel as parallel
    from loyalty.parallel import WorkerLost

    store = fresh(tmp_path, "s.db", orders(5, 600, T1))
    monkeypatch.setenv(WORKERS_ENV, "2")
    real = parallel.plan_in_workers

    def dies_after_one_group(*args, **kwargs):
        runs = real(*args, **kwargs)
        yield next(runs)
        runs.close()
        raise WorkerLost(2)

    monkeypatch.setattr(parallel, "plan_in_workers", dies_after_one_group)
    monkeypatch.setattr(parallel, "MEMBER_BATCH", 4)  # small chunks and groups: more than one group
    monkeypatch.setattr(parallel.write_batch, "WRITE_MEMBERS", 8)
    with pytest.raises(WorkerLost):
        run_once(store, RULES, T1)
    assert key_index(store) and mark(store) is None and ledger(store) != []
    monkeypatch.setattr(parallel, "plan_in_workers", real)
    assert run_once(store, RULES, T1).inserted > 0
    store.engine.dispose()
