"""Lots available at the same moment are used in the lot order of docs/loyalty-rules.md §8 (an
order's rate lot, then welcome, every-Nth, offer bonuses by name), not in the order of their keys.

Found by the engine-vs-model property at 1,000 examples: an order's every-Nth reward (key
"…:every_nth") was spent before its rate lot ("…:rate"), so when the reward was taken back at the
instant both expired, 2 points more were owed than the paper rules say.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from loyalty.fold import FoldLot, Spend, TakeBack, fold

T0 = datetime(2026, 1, 5, tzinfo=UTC)
DAY = timedelta(days=1)


def lot(rule: str, amount: int) -> FoldLot:
    return FoldLot(f"earn:ozon:main:O3:{rule}", ("O3", rule), Decimal(amount), T0, T0 + DAY, T0 + 11 * DAY)


def test_a_spend_uses_an_orders_rate_lot_before_its_rewards():
    lots = [lot("every_nth", 20), lot("offer:a", 10), lot("rate", 2)]
    result = fold(lots, [], [Spend("spend:1", Decimal(17), T0 + 2 * DAY)], T0 + 3 * DAY)
    # §8 order: rate 2 first, then every-Nth 15 of 20; the offer bonus untouched.
    assert result.remaining == {"earn:ozon:main:O3:rate": 0, "earn:ozon:main:O3:every_nth": 5,
                                "earn:ozon:main:O3:offer:a": 10}


def test_what_a_take_back_at_expiry_forgives_follows_from_that_order():
    """The reward taken back at the instant it expires: expiry first (§7 ties), so what it had left
    (5) is forgiven and the rest (15) owed; no other lot is available, so it is debt (the pending
    lot of another order pays it when it becomes available, §7 step 4)."""
    lots = [lot("every_nth", 20), lot("rate", 2),
            FoldLot("earn:ozon:main:O7:rate", ("O7", "rate"), Decimal(30), T0, None, None)]
    expires = T0 + 11 * DAY
    result = fold(lots, [TakeBack("reverse:O3:every_nth", ("O3", "every_nth"), Decimal(20), expires)],
                  [Spend("spend:1", Decimal(17), T0 + 2 * DAY)], T0 + 20 * DAY)
    assert result.forgiven == {"reverse:O3:every_nth": 5}
    assert result.remaining["earn:ozon:main:O7:rate"] == 30
    assert result.balances.expired == 0 and (result.balances.pending, result.balances.debt) == (30, 15)


def test_without_take_backs_or_spends_the_shortcut_ages_lots_exactly_as_the_replay():
    """`fold` skips the event replay when nothing takes points; both must agree on every lot,
    including odd dates (expiry before the grant or the availability, dates after `now`)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from loyalty.fold import _age, _replay, _Wallet

    hours = st.integers(-48, 48).map(lambda h: T0 + h * timedelta(hours=1))
    lot_data = st.tuples(st.integers(1, 50), hours, st.none() | hours, st.none() | hours)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(lot_data, max_size=6), hours)
    def check(data, now):
        def lots():
            return [FoldLot(f"k{i}", (f"O{i}", "rate"), Decimal(a), c, av, x) for i, (a, c, av, x) in enumerate(data)]

        aged, replayed = lots(), lots()
        _age(aged, now)
        _replay(_Wallet(replayed), replayed, [], [], now)
        for a, r in zip(aged, replayed, strict=True):
            assert (a.remaining, a.expired) == (r.remaining, r.expired), (a, r)
            assert (a.is_available and a.remaining) == (r.is_available and r.remaining), (a, r)

    check()
