"""The tier a member holds after an evaluation, under `tier_policy.downgrade`. Pure.

The tier a member's window *qualifies for* is computed as the engine computes it
(`loyalty.members.tier_of`; earn rates keep using the engine's per-order tier). This module only
decides what the member *holds* given what it held before:

- `recompute`: the qualifying tier, up or down.
- `never`: the higher of the previous and the qualifying tier (never goes down).
- `one_down`: up to the qualifying tier at once; down at most one step per evaluation.

Tiers are names ordered lowest first (`LoyaltySettings.tiers`); `None` is "no tier", below them all,
so one step down from the lowest tier is `None`. A previous tier no longer in the config cannot be
ranked: the qualifying tier is taken.
"""

from __future__ import annotations

from collections.abc import Sequence

from loyalty.rules import Tier, TierPolicy

__all__ = ["evaluate_tier"]


def evaluate_tier(previous_tier: str | None, qualifying_tier_now: str | None,
                  policy: TierPolicy | str, tiers: Sequence[Tier | str]) -> str | None:
    """The tier held after this evaluation; `tiers` lowest first, `policy` a TierPolicy or its downgrade."""
    downgrade = policy.downgrade if isinstance(policy, TierPolicy) else policy
    if downgrade not in ("never", "one_down", "recompute"):
        raise ValueError(f"unknown downgrade policy {downgrade!r}")
    names = [t.name if isinstance(t, Tier) else t for t in tiers]
    if qualifying_tier_now is not None and qualifying_tier_now not in names:
        raise ValueError(f"unknown tier {qualifying_tier_now!r}")
    if downgrade == "recompute" or (previous_tier is not None and previous_tier not in names):
        return qualifying_tier_now
    # rank: -1 is "no tier"; names[i] is rank i
    prev = -1 if previous_tier is None else names.index(previous_tier)
    now = -1 if qualifying_tier_now is None else names.index(qualifying_tier_now)
    if now >= prev:
        return qualifying_tier_now
    if downgrade == "never":
        return previous_tier
    step = prev - 1  # one_down
    return None if step < 0 else names[step]
