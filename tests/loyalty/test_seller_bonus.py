"""The seller-bonus ops task (Kaspi «Бонус от продавца»), figures worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import insert

from connectors.capabilities import ActionKind, BuyerIdentity, Capabilities, SellerBonusProgram
from loyalty.action_settings import SellerBonusSettings
from loyalty.ledger import LEDGER
from loyalty.seller_bonus import propose_seller_bonus
from store import Store

NOW = datetime(2026, 12, 1, tzinfo=UTC)
PROGRAM = SellerBonusProgram(label="Shop", name="Бонус", steps=("set {percent}% for {members} members ({points})",),
                             rules=("never for a review",))
CAPS = {"bonusmart": Capabilities(marketplace="bonusmart", buyer_identity=BuyerIdentity.FULL, seller_bonus=PROGRAM),
        "plain": Capabilities(marketplace="plain", buyer_identity=BuyerIdentity.FULL)}


def entry(mp: str, buyer: str, kind: str, amount: str, n: int) -> dict:
    return {"marketplace": mp, "account": "main", "buyer_key": buyer, "kind": kind, "amount": Decimal(amount),
            "idempotency_key": f"{mp}:{buyer}:{n}", "effective_at": NOW}


def test_one_task_per_account_with_its_members_and_the_points_they_hold(sqlite_store: Store):
    with sqlite_store.engine.begin() as conn:
        conn.execute(insert(LEDGER), [
            entry("bonusmart", "b1", "earn", "120", 1), entry("bonusmart", "b1", "spend", "-20", 2),
            entry("bonusmart", "b2", "earn", "35.50", 3),
            entry("plain", "b9", "earn", "500", 4),  # no seller-bonus program there: no task
        ])
    [task] = propose_seller_bonus(sqlite_store, CAPS, SellerBonusSettings(percent=7), NOW)
    # b1: 120 - 20 = 100; b2: 35.50; two members hold 135.50 points.
    assert (task.kind, task.key) == (ActionKind.OPS_TASK, "seller-bonus:bonusmart:main:7")
    assert (task.params["members"], Decimal(task.params["points_held"])) == (2, Decimal("135.50"))
    assert task.params["steps"] == ["set 7% for 2 members (136)"]
    assert list(propose_seller_bonus(sqlite_store, CAPS, SellerBonusSettings(enabled=False), NOW)) == []
