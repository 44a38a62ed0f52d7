"""`LoyaltySettings` -> `RefRules`: the reference model's rules read off the config object's fields.

Field values only: no method of `loyalty.rules` is called and no rule of the program is applied here,
so the model's understanding of the rules stays its own (`tests/loyalty/reference_model.py`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.loyalty.reference_types import (
    RefBudget,
    RefCondition,
    RefEveryNth,
    RefExpiry,
    RefMarketplace,
    RefOffer,
    RefRules,
    RefSegmentThresholds,
    RefTier,
    RefTierPolicy,
)

__all__ = ["rules_from_settings"]


def rules_from_settings(settings: Any) -> RefRules:
    """The fields of a `loyalty.rules.LoyaltySettings` as a `RefRules`."""
    s = settings
    return RefRules(
        earn_rate=Decimal(s.earn_rate),
        tiers=tuple(RefTier(name=t.name, earn_rate=Decimal(t.earn_rate), min_spend=t.min_spend,
                            min_orders=t.min_orders) for t in s.tiers),
        tier_policy=RefTierPolicy(basis=s.tier_policy.basis, window=s.tier_policy.window,
                                  downgrade=s.tier_policy.downgrade),
        return_window=s.return_window,
        expiry=RefExpiry(policy=s.expiry.policy, days=s.expiry.days),
        welcome_points=s.welcome.points if s.welcome is not None else None,
        every_nth=(RefEveryNth(n=s.every_nth.n, points=s.every_nth.points, period=s.every_nth.period)
                   if s.every_nth is not None else None),
        offers=tuple(RefOffer(name=o.name, starts=o.starts, ends=o.ends, multiplier=o.multiplier,
                              bonus_points=o.bonus_points, segments=tuple(o.segments),
                              conditions=tuple(RefCondition(c.field, c.op, c.value) for c in o.conditions))
                     for o in s.offers),
        budget=RefBudget(total_points=s.budget.total_points, per_member_points=s.budget.per_member_points),
        segments=RefSegmentThresholds(new_within=s.segments.new_within,
                                      at_risk_gap_factor=s.segments.at_risk_gap_factor,
                                      sleeping_after=s.segments.sleeping_after, lost_after=s.segments.lost_after),
        # `enabled` per marketplace is not in the paper rules (Q12): the model has every marketplace in.
        marketplaces={name: RefMarketplace(earn_rate=m.earn_rate, return_window=m.return_window)
                      for name, m in s.marketplaces.items()},
    )
