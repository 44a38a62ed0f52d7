"""Points notices: one service message per recent order whose points are credited, gated per platform."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from connectors.ozon.capabilities import OZON_CAPABILITIES
from connectors.records import OrderRecord, OrderStatus
from connectors.wildberries.capabilities import WILDBERRIES_CAPABILITIES
from connectors.yandex_market.capabilities import YANDEX_MARKET_CAPABILITIES
from loyalty.action_job import plan_actions
from loyalty.action_settings import ActionSettings, ChatSettings
from loyalty.actions import Kind, Purpose, Refusal
from loyalty.chat import propose_points_notices
from loyalty.ledger import run_once
from loyalty.policy import gate
from loyalty.rules import LoyaltySettings
from store import PageWrite, Store
from store.store import StreamKey

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
H = timedelta(hours=1)
PROGRAM = LoyaltySettings.model_validate({"enabled": True, "earn_rate": "0.05", "welcome": {"points": 30}})
CAPS = {"ozon": OZON_CAPABILITIES, "yandex_market": YANDEX_MARKET_CAPABILITIES,
        "wildberries": WILDBERRIES_CAPABILITIES}


def order(mp: str, oid: str, age: timedelta, *, buyer: str | None = "b1", status=OrderStatus.DELIVERED,
          fulfilment: str = "fbs", total: str = "1000") -> OrderRecord:
    created = NOW - age
    return OrderRecord(mp, "main", oid, created, created, status, status.value, fulfilment, "RUB", Decimal(total),
                       (), buyer_key=buyer)


def load(store: Store, *orders: OrderRecord) -> None:
    for mp in {o.marketplace for o in orders}:
        page = [o for o in orders if o.marketplace == mp]
        store.write_page(StreamKey(mp, "main", "orders"), PageWrite(orders=page), now=NOW)
    run_once(store, PROGRAM, NOW)


def notices(store: Store, **chat) -> dict[str, object]:
    return {a.target: a for a in propose_points_notices(store, ChatSettings(**chat), "Ромашка", NOW)}


def test_a_credited_recent_order_gets_one_notice_with_its_points_and_the_balance(store: Store):
    load(store, order("ozon", "P-OLD", timedelta(days=20)), order("ozon", "P-NEW", 60 * H, total="2000"))
    got = notices(store)
    assert list(got) == ["P-NEW"]  # the 20-day-old order is history: never told
    a = got["P-NEW"]
    assert a.kind is Kind.SEND_CHAT_MESSAGE and a.purpose is Purpose.SERVICE and not a.public
    assert a.key == "chat:points:ozon:main:P-NEW" and a.cost == 0
    # 2000 x 5 % = 100 points for this order; the balance also holds the old order's 50 + welcome 30
    assert a.text == ("Спасибо за заказ P-NEW! За него начислено 100 баллов программы лояльности магазина "
                      "«Ромашка»; всего на вашем счёте 180.")
    assert a.chat.paid_at == NOW - 60 * H and a.chat.fulfilment == "fbs" and not a.chat.chat_exists
    assert not any("review" in g or "rating" in g for g in a.grounds)


def test_unsettled_cancelled_anonymous_and_old_orders_are_not_told(store: Store):
    load(store,
         order("ozon", "FRESH", 10 * H),  # not settled yet: no points credited
         order("ozon", "GONE", 60 * H, status=OrderStatus.CANCELLED),
         order("wildberries", "WB1", 60 * H, buyer=None),  # no buyer identity, no ledger
         order("yandex_market", "Y1", 60 * H, fulfilment="dbs"))
    assert list(notices(store)) == ["Y1"]
    assert list(notices(store, within=timedelta(days=2))) == []  # Y1 was created 60 h ago
    assert notices(store, points_notice=False) == {}


def test_the_notice_is_proposed_by_the_action_round_only_when_enabled(store: Store):
    load(store, order("yandex_market", "Y1", 60 * H, fulfilment="dbs"))
    kinds = [a.kind for a in plan_actions(store, ActionSettings(), CAPS, NOW)]
    assert kinds.count(Kind.SEND_CHAT_MESSAGE) == 1
    off = ActionSettings(chat={"points_notice": False})
    assert Kind.SEND_CHAT_MESSAGE not in [a.kind for a in plan_actions(store, off, CAPS, NOW)]


@pytest.mark.parametrize(("mp", "fulfilment", "age", "status", "expected"), [
    ("ozon", "fbs", 60 * H, OrderStatus.IN_DELIVERY, None),  # seller may open an FBS chat within 72 h
    ("ozon", "rfbs", 60 * H, OrderStatus.DELIVERED, None),
    ("ozon", "fbo", 60 * H, OrderStatus.DELIVERED, Refusal.CHAT_START_NOT_ALLOWED),  # FBO: buyer only
    ("ozon", "fbs", 80 * H, OrderStatus.IN_DELIVERY, Refusal.CHAT_OUTSIDE_WINDOW),
    ("yandex_market", "dbs", 70 * H, OrderStatus.DELIVERED, None),  # ORDER chats: seller may create
    ("wildberries", "fbs", 60 * H, OrderStatus.DELIVERED, Refusal.CHAT_START_NOT_ALLOWED),  # never
])
def test_the_gate_decides_where_a_notice_may_go(store: Store, mp, fulfilment, age, status, expected):
    load(store, order(mp, "O1", age, fulfilment=fulfilment, status=status))
    (action,) = notices(store, within=timedelta(days=5)).values()
    decision = gate(action, CAPS[mp], ActionSettings(), now=NOW)
    assert decision.reason is expected, decision.detail


def test_a_chat_template_may_not_name_the_buyer():
    with pytest.raises(ValidationError, match=r"unknown variable \{buyer\}: a chat message may use only"):
        ChatSettings(points_text="{buyer}, спасибо за заказ {order}!")
