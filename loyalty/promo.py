"""Points redeemed as personal promo codes, where the platform has single-buyer codes in its API.

A member whose available points (less what open proposals already reserve) reach `redeem_at` gets
one proposal for a code worth `redeem_at x point_value` roubles. The key includes the member's points
spent so far, so a refused or rejected proposal is not proposed again until the balance moves, and a
sent one (whose `spend` the outbox writes to the ledger in the same transaction) makes room for the
next. The code is not tied to the platform's raw buyer id: loyalsync keeps only salted hashes, so
the seller hands the code over (it is in `loyalsync actions` and `export actions`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from loyalty.action_settings import PromoSettings
from loyalty.actions import Action, ActionStatus, Kind, Purpose
from loyalty.ledger import LEDGER, entries_of
from loyalty.members import balances_by_member
from loyalty.outbox import ACTIONS

__all__ = ["propose_promo_codes"]

GROUNDS = frozenset({"member.available_points"})
_OPEN = (ActionStatus.PENDING.value, ActionStatus.APPROVED.value, ActionStatus.DRY_RUN.value)


def _reserved(store: Any) -> dict[tuple[str, str, str], Decimal]:
    """Points held by promo proposals not sent (or refused) yet, per member."""
    out: dict[tuple[str, str, str], Decimal] = {}
    stmt = select(ACTIONS.c.marketplace, ACTIONS.c.account, ACTIONS.c.params).where(
        ACTIONS.c.kind == Kind.CREATE_PROMO_CODE.value, ACTIONS.c.status.in_(_OPEN))
    with store.engine.connect() as conn:
        for mp, acct, params in conn.execute(stmt):
            p = json.loads(params)
            member = (mp, acct, p["buyer_key"])
            out[member] = out.get(member, Decimal(0)) + Decimal(p["points"])
    return out


def _spent(store: Any) -> dict[tuple[str, str, str], Decimal]:
    out: dict[tuple[str, str, str], Decimal] = {}
    c = LEDGER.c
    with store.engine.connect() as conn:
        for mp, acct, buyer, amount in conn.execute(
                select(c.marketplace, c.account, c.buyer_key, c.amount).where(c.kind == "spend")):
            out[(mp, acct, buyer)] = out.get((mp, acct, buyer), Decimal(0)) - Decimal(amount)
    return out


def propose_promo_codes(store: Any, settings: PromoSettings, enabled_marketplaces: Mapping[str, bool],
                        now: datetime) -> Iterator[Action]:
    """One code proposal per member whose free available points reach `redeem_at`."""
    if not settings.enabled:
        return
    reserved, spent = _reserved(store), _spent(store)
    for member, b in balances_by_member(entries_of(store), now).items():
        mp, acct, buyer = member
        if not enabled_marketplaces.get(mp, True):
            continue
        free = b.available - b.debt - reserved.get(member, Decimal(0))
        if free < settings.redeem_at:
            continue
        points = settings.redeem_at
        value = points * settings.point_value
        until = now + settings.valid_for
        key = f"promo:{mp}:{acct}:{buyer}:{spent.get(member, Decimal(0)).normalize():f}"
        yield Action(kind=Kind.CREATE_PROMO_CODE, marketplace=mp, account=acct, key=key, target=buyer,
                     created_at=now, purpose=Purpose.REWARD, grounds=GROUNDS, cost=value,
                     params={"buyer_key": buyer, "points": str(points), "discount_value": str(value),
                             "valid_until": until.isoformat()},
                     title=f"personal promo code worth {value:.0f} ₽ for {points:.0f} points")
