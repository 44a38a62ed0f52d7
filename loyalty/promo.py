"""Points redeemed as personal promo codes, where the platform has single-buyer codes in its API.

A member whose available points (less debt and what open proposals already reserve) reach
`redeem_at` gets one proposal for a code worth `redeem_at x point_value` roubles. The key includes the member's points
spent so far, so a refused or rejected proposal is not proposed again until the balance moves, and a
sent one (whose `spend` the outbox writes to the ledger in the same transaction) makes room for the
next. The code is not tied to the platform's raw buyer id: loyalsync keeps only salted hashes, so
the seller hands the code over (it is in `loyalsync actions` and `export actions`).

Only points that stay available for `lasting` count: the code is sent after approval, and its
spend must find them (the executor checks again when it sends, `loyalty.outbox`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal

from sqlalchemy import or_, select

from connectors.capabilities import ActionKind
from loyalty.action_settings import PromoSettings
from loyalty.actions import Action, ActionStatus, Purpose
from loyalty.engine import Member
from loyalty.ledger import LEDGER, entries_of, lasting_available, rows_by_member
from loyalty.outbox import ACTIONS, POINTS_SHORT
from store import Store

__all__ = ["propose_promo_codes"]

GROUNDS = frozenset({"member.available_points"})
_OPEN = (ActionStatus.PENDING.value, ActionStatus.APPROVED.value, ActionStatus.DRY_RUN.value)


def _reserved(store: Store) -> tuple[dict[Member, Decimal], dict[Member, int]]:
    """Per member: points held by promo proposals not sent (or refused) yet, and how many codes were
    not sent because the points were gone by then (each such code frees its key for a new one)."""
    reserved: dict[Member, Decimal] = {}
    lapsed: dict[Member, int] = {}
    c = ACTIONS.c
    stmt = select(c.marketplace, c.account, c.params, c.status).where(
        c.kind == ActionKind.CREATE_PROMO_CODE.value,
        or_(c.status.in_(_OPEN), (c.status == ActionStatus.FAILED.value) & c.detail.startswith(POINTS_SHORT)))
    with store.engine.connect() as conn:
        for mp, acct, params, status in conn.execute(stmt):
            p = json.loads(params)
            member = (mp, acct, p["buyer_key"])
            if status == ActionStatus.FAILED.value:
                lapsed[member] = lapsed.get(member, 0) + 1
            else:
                reserved[member] = reserved.get(member, Decimal(0)) + Decimal(p["points"])
    return reserved, lapsed


def _spent(store: Store) -> dict[tuple[str, str, str], Decimal]:
    out: dict[tuple[str, str, str], Decimal] = {}
    c = LEDGER.c
    with store.engine.connect() as conn:
        for mp, acct, buyer, amount in conn.execute(
                select(c.marketplace, c.account, c.buyer_key, c.amount).where(c.kind == "spend")):
            out[(mp, acct, buyer)] = out.get((mp, acct, buyer), Decimal(0)) - Decimal(amount)
    return out


def propose_promo_codes(store: Store, settings: PromoSettings, enabled_marketplaces: Mapping[str, bool],
                        now: datetime) -> Iterator[Action]:
    """One code proposal per member whose free available points reach `redeem_at`."""
    if not settings.enabled:
        return
    (reserved, lapsed), spent = _reserved(store), _spent(store)
    for member, rows in rows_by_member(entries_of(store)).items():
        mp, acct, buyer = member
        if not enabled_marketplaces.get(mp, True):
            continue
        free = lasting_available(rows, now, now + settings.lasting) - reserved.get(member, Decimal(0))
        if free < settings.redeem_at:
            continue
        points = settings.redeem_at
        value = points * settings.point_value
        until = now + settings.valid_for
        key = f"promo:{mp}:{acct}:{buyer}:{spent.get(member, Decimal(0)).normalize():f}"
        if lapsed.get(member):
            key += f"#{lapsed[member] + 1}"
        yield Action(kind=ActionKind.CREATE_PROMO_CODE, marketplace=mp, account=acct, key=key, target=buyer,
                     created_at=now, purpose=Purpose.REWARD, grounds=GROUNDS, cost=value,
                     params={"buyer_key": buyer, "points": str(points), "discount_value": str(value),
                             "valid_until": until.isoformat()},
                     title=f"personal promo code worth {value:.0f} ₽ for {points:.0f} points")
