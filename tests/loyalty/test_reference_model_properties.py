"""The reference model's own invariants over random histories (no engine: this file stays green).

A model that broke the page's invariants would make the engine comparison meaningless, so the
model is held to them directly: §7's ledger identity and lifetime, each lot's kept amount, §5's
"exactly one welcome" and "no second reward for a position", and indifference to input order.
300 examples per test by default; LOYALSYNC_PROPERTY_EXAMPLES=5000 for a long search.
"""

from __future__ import annotations

import os
import random
from decimal import Decimal

from hypothesis import HealthCheck, given, settings

from tests.loyalty.history_strategies import History, histories
from tests.loyalty.reference_model import compute, is_settled
from tests.loyalty.reference_types import is_void, member_of
from tests.scale import examples

EXAMPLES = int(os.environ.get("LOYALSYNC_PROPERTY_EXAMPLES") or examples(300))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY
@given(history=histories())
def test_the_ledger_identity_and_lifetime_hold(history: History):
    result = compute(history.final_orders(), history.spends, history.rules, history.end)
    for member, m in result.members.items():
        spent = sum((s.amount for s in history.spends if s.member == member and s.at <= history.end), Decimal(0))
        granted = sum((lot.granted for lot in m.lots.values()), Decimal(0))
        owed = sum((lot.owed for lot in m.lots.values()), Decimal(0))
        forgiven = sum((lot.forgiven for lot in m.lots.values()), Decimal(0))
        b = m.balances
        # §7: Σ ledger (earn − reverse − expire + forgiven − spend) = pending + available − debt, where
        # `expired` is net of what was forgiven, so what expire entries carry is expired + forgiven.
        assert granted - (owed + forgiven) - (b.expired + forgiven) + forgiven - spent == (
            b.pending + b.available - b.debt)
        assert b.lifetime == granted - owed - forgiven >= 0
        assert min(b.pending, b.available, b.expired, b.debt) >= 0
        for lot in m.lots.values():
            assert lot.kept == lot.granted - lot.owed - lot.forgiven, lot


@PROPERTY
@given(history=histories(budgets=False))
def test_one_welcome_kept_and_no_position_rewarded_twice(history: History):
    rules = history.rules
    orders = history.final_orders()
    result = compute(orders, history.spends, rules, history.end)
    for member, m in result.members.items():
        counted = [o for o in orders if member_of(o) == member and is_settled(o, history.end) and not is_void(o)]
        kept = {rule: [lot for (_, r), lot in m.lots.items() if r == rule and lot.kept > 0]
                for rule in ("welcome", "every_nth")}
        if rules.welcome_points:
            # §5: exactly one welcome not taken back, as long as the member has a counted order.
            assert [lot.kept for lot in kept["welcome"]] == ([rules.welcome_points] if counted else [])
        if rules.every_nth is not None:
            # No period holds more than len/n rewards, so no more than len(counted)//n in all.
            assert len(kept["every_nth"]) <= len(counted) // rules.every_nth.n


@PROPERTY
@given(history=histories())
def test_the_order_of_the_inputs_does_not_matter(history: History):
    orders, spends = history.final_orders(), list(history.spends)
    first = compute(orders, spends, history.rules, history.end)
    shuffled = random.Random(len(orders)).sample(orders, len(orders))
    again = compute(shuffled, list(reversed(spends)), history.rules, history.end)
    assert first == again
