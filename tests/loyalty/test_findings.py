"""The audit's findings, each as the seller or buyer met it, on both backends (docs/loyalty-rules.md).

Every expected number is worked on paper in the comment beside it. Each test failed on the engine
before the rules were written down (finding numbers are issue 16's).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from connectors.records import OrderRecord, OrderStatus
from loyalty.ledger import balances, entries_of, run_once
from loyalty.members import member_rows
from loyalty.rules import LoyaltySettings
from store import PageWrite, Store, connect, migrate
from store.store import StreamKey

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KEY = StreamKey("ozon", "main", "orders")
MEMBER = ("ozon", "main", "b1")


def order(oid: str, day: float, status: OrderStatus = OrderStatus.DELIVERED, *, total: str = "1000",
          changed_day: float | None = None) -> OrderRecord:
    created = T0 + timedelta(days=day)
    changed = T0 + timedelta(days=changed_day if changed_day is not None else day + 1)
    extra = {"status_changed_at": changed}
    return OrderRecord(marketplace="ozon", account="main", order_id=oid, created_at=created, updated_at=changed,
                       status=status, platform_status=status.value, fulfilment="rfbs", currency="RUB",
                       total=Decimal(total), lines=(), buyer_key="b1", **extra)


def write(store: Store, *orders: OrderRecord) -> None:
    store.write_page(KEY, PageWrite(orders=list(orders)), now=T0)


def replay_store(tmp_path: Path) -> Store:
    """A second, empty store: the replay beside the live one."""
    engine = connect(f"sqlite:///{tmp_path / 'replay.db'}")
    migrate(engine)
    return Store(engine)


def held(store: Store, rule: str) -> dict[str, Decimal]:
    """What each order holds of `rule` now: granted less taken back."""
    out: dict[str, Decimal] = {}
    for r in entries_of(store):
        if r["rule"] == rule and r["kind"] in ("earn", "reverse"):
            out[r["order_id"]] = out.get(r["order_id"], Decimal(0)) + r["amount"]
    return {k: v for k, v in out.items() if v}


def test_2_an_every_nth_reward_is_neither_paid_twice_nor_lost_after_a_cancellation(store: Store):
    s = LoyaltySettings.model_validate({"enabled": True, "earn_rate": "0.01",
                                        "every_nth": {"n": 5, "points": 100, "period": timedelta(days=365)}})
    write(store, *(order(f"O{i}", day=i) for i in range(1, 7)))  # six orders, days 1..6
    run_once(store, s, T0 + 10 * DAY)
    assert held(store, "every_nth") == {"O5": 100}  # the 5th of the period
    # The period's first order is cancelled (day 12): the period now starts at O2, and O6 is its 5th.
    write(store, order("O1", day=1, status=OrderStatus.CANCELLED, changed_day=12))
    run_once(store, s, T0 + 13 * DAY)
    assert held(store, "every_nth") == {"O6": 100}  # one reward in all: not O5 and O6 both (paid twice)
    # Now the 5th itself... O6 is cancelled too: O2..O5 are four orders, nobody holds a reward.
    write(store, order("O6", day=6, status=OrderStatus.CANCELLED, changed_day=14))
    run_once(store, s, T0 + 15 * DAY)
    assert held(store, "every_nth") == {}
    # A seventh order is the 5th of the period again (O2, O3, O4, O5, O7): it earns (it was lost before).
    write(store, order("O7", day=16))
    run_once(store, s, T0 + 20 * DAY)
    assert held(store, "every_nth") == {"O7": 100}
    b = balances(store, MEMBER, T0 + 20 * DAY)
    # rate lots: O2..O5, O7 at 10 each = 50 (O1, O6 taken back); every-Nth 100 -> 150
    assert b.lifetime == 150


def test_3_the_welcome_moves_to_the_first_order_that_was_not_cancelled(store: Store):
    s = LoyaltySettings.model_validate({"enabled": True, "earn_rate": "0.01", "welcome": {"points": 300}})
    write(store, order("A", day=1), order("B", day=5), order("C", day=9))
    run_once(store, s, T0 + 12 * DAY)
    assert held(store, "welcome") == {"A": 300}
    write(store, order("A", day=1, status=OrderStatus.CANCELLED, changed_day=20))
    run_once(store, s, T0 + 21 * DAY)
    assert held(store, "welcome") == {"B": 300}  # before: taken back from A and never given again
    write(store, order("B", day=5, status=OrderStatus.RETURNED, changed_day=40))
    run_once(store, s, T0 + 41 * DAY)
    assert held(store, "welcome") == {"C": 300}
    take_back = next(r for r in entries_of(store) if r["kind"] == "reverse" and r["order_id"] == "B"
                     and r["rule"] == "welcome")
    assert take_back["effective_at"] == T0 + 40 * DAY  # when B went back, not when the job ran


def test_5_a_member_held_at_gold_earns_gold(store: Store):
    s = LoyaltySettings.model_validate({
        "enabled": True,
        "tiers": [{"name": "base", "min_spend": 0, "earn_rate": "0.02"},
                  {"name": "gold", "min_spend": 10000, "earn_rate": "0.10"}],
        "tier_policy": {"window": timedelta(days=30), "downgrade": "never"}})
    write(store, order("BIG", day=0, total="12000"), order("LATER", day=60, total="1000"))
    run_once(store, s, T0 + 70 * DAY)
    amounts = {r["order_id"]: r["amount"] for r in entries_of(store) if r["kind"] == "earn"}
    # BIG: no tier before it -> 12000 x 0.02 = 240. It lifts the member to gold, held for ever
    # (`never`), so LATER, 60 days on with nothing in its 30-day window, still earns gold: 1000 x 0.10.
    assert amounts == {"BIG": Decimal(240), "LATER": Decimal(100)}


def test_6_an_earlier_order_returned_after_a_later_one_earned_silver_gives_the_same_live_and_replayed(
        store: Store, tmp_path: Path):
    replay = replay_store(tmp_path)
    s = LoyaltySettings.model_validate({
        "enabled": True,
        "tiers": [{"name": "base", "min_spend": 0, "earn_rate": "0.02"},
                  {"name": "silver", "min_spend": 1000, "earn_rate": "0.05"}],
        "tier_policy": {"window": timedelta(days=90), "downgrade": "recompute"}})
    # Live: A (1000) is delivered, B is created on day 10 while A counts: silver, 2000 x 0.05 = 100.
    write(store, order("A", day=0), order("B", day=10, total="2000"))
    run_once(store, s, T0 + 13 * DAY)
    # A comes back on day 30, after B earned.
    write(store, order("A", day=0, status=OrderStatus.RETURNED, changed_day=30))
    run_once(store, s, T0 + 31 * DAY)
    # Replay: the final orders at once.
    write(replay, order("A", day=0, status=OrderStatus.RETURNED, changed_day=30),
          order("B", day=10, total="2000"))
    run_once(replay, s, T0 + 31 * DAY)
    for ledger in (store, replay):
        assert held(ledger, "rate") == {"B": Decimal(100)}  # A was live when B was created
        assert balances(ledger, MEMBER, T0 + 31 * DAY).lifetime == 100


def test_6_points_become_available_a_return_window_after_delivery_whatever_the_run_cadence(
        store: Store, tmp_path: Path):
    """The finding: daily runs, weekly runs and a replay gave three dates for one partly returned order."""
    s = LoyaltySettings.model_validate({"enabled": True, "earn_rate": "0.05", "return_window": timedelta(days=14)})
    states = {0.5: order("P", day=0, status=OrderStatus.IN_DELIVERY, changed_day=0.5),
              6: order("P", day=0, changed_day=6),  # delivered on day 6 (the platform's time)
              9: order("P", day=0, status=OrderStatus.PARTIALLY_RETURNED, changed_day=9)}
    cadences = {"daily": [float(d) for d in range(1, 31)], "weekly": [7.0, 14.0, 21.0, 28.0],
                "every 10 minutes": [d / 144 for d in range(1, 30 * 144, 37)]}
    dates = {}
    for name, runs in cadences.items():
        ledger = store if name == "daily" else replay_store(tmp_path / name.replace(" ", "_"))
        for day in runs:
            seen = [st for at, st in states.items() if at <= day]
            if seen:
                write(ledger, seen[-1])
            run_once(ledger, s, T0 + timedelta(days=day))
        dates[name] = next(r for r in entries_of(ledger) if r["kind"] == "earn")["available_from"]
    # Every cadence saw the delivery before the partial return: 14 days after day 6 (10:00), for all.
    assert set(dates.values()) == {T0 + 6 * DAY + 14 * DAY}


def test_6_a_store_that_never_saw_the_delivery_dates_the_window_from_the_return(tmp_path: Path):
    """Named exception (docs/loyalty-rules.md §9): first read after a partial return, the delivery
    time is unknown; the window counts from the return, later, never earlier."""
    s = LoyaltySettings.model_validate({"enabled": True, "earn_rate": "0.05", "return_window": timedelta(days=14)})
    late = replay_store(tmp_path)
    write(late, order("P", day=0, status=OrderStatus.PARTIALLY_RETURNED, changed_day=9))
    run_once(late, s, T0 + 10 * DAY)
    lot = next(r for r in entries_of(late) if r["kind"] == "earn")
    assert lot["available_from"] == T0 + 9 * DAY + 14 * DAY


def test_4_the_members_view_counts_partial_returns_as_the_engine_does(store: Store):
    s = LoyaltySettings.model_validate({
        "enabled": True,
        "tiers": [{"name": "base", "min_spend": 0, "earn_rate": "0.02"},
                  {"name": "silver", "min_spend": 5000, "earn_rate": "0.05"}],
        "tier_policy": {"window": timedelta(days=90), "downgrade": "recompute"}})
    write(store, order("BIG", day=0, total="6000"))
    partly = order("BIG", day=0, status=OrderStatus.PARTIALLY_RETURNED, total="6000", changed_day=5)
    write(store, replace(partly, returned_total=Decimal(2000)))  # 4000 kept from day 5
    write(store, order("NEXT", day=10, total="1000"))
    run_once(store, s, T0 + 13 * DAY)
    earned = {r["order_id"]: r["amount"] for r in entries_of(store) if r["kind"] == "earn"}
    # NEXT (day 10) earned at what the member held then: BIG's 4000 kept is base, 1000 x 0.02 = 20.
    assert earned["NEXT"] == Decimal(20)
    [row] = member_rows(store, s, T0 + 13 * DAY)
    # On day 13 the kept spend is 4000 + 1000 = 5000: silver, shown as such (not 7000 of totals).
    assert (row.spend, row.tier) == (Decimal(5000), "silver")
    [before] = member_rows(store, s, T0 + 9 * DAY)
    assert (before.spend, before.tier) == (Decimal(4000), "base")  # what NEXT was earned at


def test_6_simulate_counts_the_points_members_spent(store: Store):
    """Live: earned 150, taken back 100, debt 50. Simulate ignored spends and showed no debt."""
    from loyalty.engine import Entry
    from loyalty.ledger import apply
    from loyalty.members import summarize
    from loyalty.simulate import simulate

    s = LoyaltySettings.model_validate({"enabled": True, "earn_rate": "0.05", "return_window": timedelta(days=14)})
    # A: 1000 -> 50 points, delivered day 1, available day 15; B: 2000 -> 100, available day 16.
    write(store, order("A", day=0), order("B", day=1, total="2000", changed_day=2))
    run_once(store, s, T0 + 20 * DAY)
    apply(store, [Entry("spend", Decimal(-100), "spend:promo-1", None, "promo_code", T0 + 21 * DAY,
                        marketplace="ozon", account="main", buyer_key="b1")])  # A's 50, then B's 50
    write(store, order("B", day=1, total="2000", status=OrderStatus.RETURNED, changed_day=22))
    run_once(store, s, T0 + 25 * DAY)
    live = summarize(store.iter_orders(), entries_of(store), s, T0 + 25 * DAY).marketplaces["ozon"]
    # B's take-back: 50 from its own lot, 50 owed with nothing left anywhere: debt 50.
    assert (live.earned, live.reversed, live.debt, live.available) == (150, -100, 50, 0)
    sim = simulate(store, s, T0 + 25 * DAY).summary.marketplaces["ozon"]
    # The replay never grants B (returned): 50 earned; the spend takes A's 50 and leaves debt 50.
    assert (sim.debt, sim.available, sim.pending, sim.expired) == (live.debt, live.available, live.pending,
                                                                   live.expired)
    assert sim.earned + sim.reversed == live.earned + live.reversed == 50
