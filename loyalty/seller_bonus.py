"""A platform's storewide seller bonus as an ops task, where it is the only way points reach buyers.

Kaspi has no per-buyer reward instrument in its API (no promo codes, no chat): members earn points
there, but no code can carry them to one buyer. What Kaspi does offer is «Бонус от продавца», a
storewide, seller-funded bonus set in the Kaspi Pay app (`Capabilities.seller_bonus`). For each
account with members on such a platform, one task asks a person to set it to the configured
percent, with the numbers: how many members, how many points they hold. The key names the percent,
so the same task is not proposed again until the percent changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

from connectors.capabilities import ActionKind, Capabilities, Channel
from loyalty.action_settings import SellerBonusSettings
from loyalty.actions import Action, Purpose
from loyalty.ledger import LEDGER
from store import Store

__all__ = ["propose_seller_bonus"]

GROUNDS = frozenset({"member.points"})


def _members(store: Store) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """(marketplace, account) -> (members with ledger entries, the points they hold, pending included)."""
    c = LEDGER.c
    stmt = (select(c.marketplace, c.account, func.count(func.distinct(c.buyer_key)), func.sum(c.amount))
            .group_by(c.marketplace, c.account))
    with store.engine.connect() as conn:
        return {(mp, acct): (int(n), Decimal(str(total or 0))) for mp, acct, n, total in conn.execute(stmt)}


def propose_seller_bonus(store: Store, capabilities: Mapping[str, Capabilities], settings: SellerBonusSettings,
                         now: datetime) -> Iterator[Action]:
    """One task per account with members on a platform whose only reward instrument is a seller bonus."""
    if not settings.enabled:
        return
    for (mp, acct), (members, points) in sorted(_members(store).items()):
        caps = capabilities.get(mp)
        program = caps.seller_bonus if caps is not None else None
        if program is None or members == 0:
            continue
        values = {"percent": settings.percent, "members": f"{members:,}", "points": f"{points.to_integral_value():,f}"}
        yield Action(
            kind=ActionKind.OPS_TASK, marketplace=mp, account=acct,
            key=f"seller-bonus:{mp}:{acct}:{settings.percent}", target=program.name, created_at=now,
            purpose=Purpose.REWARD, grounds=GROUNDS,
            title=f"set {program.label} «{program.name}» to {settings.percent}% for {members:,} members",
            params={
                "program": program.name, "channel": Channel.CABINET.value, "percent": settings.percent,
                "members": members, "points_held": str(points),
                "steps": [step.format(**values) for step in program.steps],
                "rules": [rule.format(**values) for rule in program.rules],
            },
        )
