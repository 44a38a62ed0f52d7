"""The gate runs again when an action is sent (issue 17, hole 4): an approval given a week later, a
switch to live mode, a closed chat window, withdrawn consent or a replaced template stop the send.

The executor sends through a recording stand-in of a connector carrying a platform's real
capabilities; what reached it is what a platform would have received.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import WriteRequest, WriteResult, WriteStatus
from connectors.capabilities import Capabilities, Channel
from connectors.ozon.capabilities import OZON_CAPABILITIES
from connectors.records import ReviewRecord
from connectors.yandex_market.capabilities import YANDEX_MARKET_CAPABILITIES
from loyalty.action_job import propose_actions
from loyalty.action_settings import ActionSettings, ChatSettings, ReplySettings, ReplyTemplate
from loyalty.actions import Action, ActionStatus, ChatContext, Kind, Purpose
from loyalty.outbox import action_rows, attempts_of, execute, propose, set_status
from loyalty.policy import gate
from loyalty.send_check import action_of
from store import PageWrite, Store
from store.store import StreamKey

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
H, DAY = timedelta(hours=1), timedelta(days=1)
S = ActionStatus
NAMED = ReplySettings(store_name="Уютный дом", templates=(ReplyTemplate(ratings=(5, 4, 3, 2, 1), texts=(
    "Спасибо за отзыв о «{product}»! Команда «{store}»", "Благодарим за отзыв о «{product}». Ваш «{store}»")),))


class Recorder:
    """A connector stand-in with a platform's real capabilities: records every write it is asked to do."""

    def __init__(self, capabilities: Capabilities):
        self.capabilities = capabilities
        self.name = capabilities.marketplace
        self.sent: list[WriteRequest] = []

    async def find_done(self, request: WriteRequest) -> WriteResult | None:
        return None

    async def perform(self, request: WriteRequest) -> WriteResult:
        self.sent.append(request)
        return WriteResult(WriteStatus.DONE, platform_ref=f"ref-{len(self.sent)}")


def send(store: Store, platform: Recorder, cfg: ActionSettings, now: datetime, mode: str = "live"):
    return asyncio.run(execute(store, {(platform.name, "main"): platform}, mode=mode, now=now, settings=cfg))


def notice(oid: str, chat: ChatContext, **kw) -> Action:
    fields = {"kind": Kind.SEND_CHAT_MESSAGE, "marketplace": "ozon", "account": "main",
              "key": f"chat:points:ozon:main:{oid}", "target": oid, "created_at": NOW,
              "text": "Спасибо за заказ! За него начислено 50 баллов.", "chat": chat, **kw}
    return Action(**fields)


def test_a_chat_notice_whose_window_closed_is_not_sent_when_the_daemon_goes_live(store: Store):
    # Proposed in dry-run within Ozon's 72 h after payment; the seller switches to live 5 days later.
    cfg = ActionSettings(approval={Kind.SEND_CHAT_MESSAGE: "auto"})
    chat = ChatContext(chat_exists=False, fulfilment="fbs", paid_at=NOW - 10 * H)
    propose(store, [notice("P-1", chat)], {"ozon": OZON_CAPABILITIES}, cfg, mode="dry-run", now=NOW)
    assert [r["status"] for r in action_rows(store)] == [S.DRY_RUN.value]
    ozon = Recorder(OZON_CAPABILITIES)
    result = send(store, ozon, cfg, NOW + 5 * DAY)
    (row,) = action_rows(store)
    assert ozon.sent == [] and result.refused == 1 and result.sent == 0
    assert (row["status"], row["reason"]) == ("refused", "chat_outside_window")
    assert [a["step"] for a in attempts_of(store, row["id"])] == ["check", "gate"]


def test_the_same_notice_is_sent_while_its_window_is_open(store: Store):
    cfg = ActionSettings(approval={Kind.SEND_CHAT_MESSAGE: "auto"})
    chat = ChatContext(chat_exists=False, fulfilment="fbs", paid_at=NOW - 10 * H)
    propose(store, [notice("P-1", chat)], {"ozon": OZON_CAPABILITIES}, cfg, mode="dry-run", now=NOW)
    ozon = Recorder(OZON_CAPABILITIES)
    assert send(store, ozon, cfg, NOW + 2 * H).sent == 1 and [r.target for r in ozon.sent] == ["P-1"]


def test_an_approval_given_a_week_later_checks_consent_again(store: Store):
    chat = ChatContext(chat_exists=True, buyer_opened=True, fulfilment="dbs", paid_at=NOW - DAY,
                       last_buyer_message_at=NOW - H, buyer_consented_to_marketing=True)
    offer = notice("O-1", chat, marketplace="yandex_market", key="chat:offer:1", purpose=Purpose.MARKETING,
                   text="Для вас скидка 10 % на аксессуары до конца месяца.")
    consenting = ActionSettings(marketing_consent=True)
    propose(store, [offer], {"yandex_market": YANDEX_MARKET_CAPABILITIES}, consenting, mode="live", now=NOW)
    (row,) = action_rows(store)
    assert row["status"] == "pending"  # chat messages wait for a person by default
    set_status(store, [row["id"]], S.APPROVED, allowed_from=(S.PENDING,), mode="live", now=NOW + 7 * DAY)
    market = Recorder(YANDEX_MARKET_CAPABILITIES)
    # Meanwhile the seller withdrew the consent setting.
    send(store, market, ActionSettings(marketing_consent=False), NOW + 7 * DAY)
    (row,) = action_rows(store)
    assert market.sent == [] and (row["status"], row["reason"]) == ("refused", "marketing_without_consent")


def test_a_kind_that_now_needs_a_person_goes_back_to_pending(store: Store):
    caps = {"ozon": OZON_CAPABILITIES}
    cfg = ActionSettings(approval={Kind.SEND_CHAT_MESSAGE: "auto"})
    chat = ChatContext(chat_exists=False, fulfilment="fbs", paid_at=NOW - 10 * H)
    propose(store, [notice("P-1", chat)], caps, cfg, mode="live", now=NOW)
    ozon = Recorder(OZON_CAPABILITIES)
    result = send(store, ozon, ActionSettings(approval={Kind.SEND_CHAT_MESSAGE: "manual"}), NOW + H)
    (row,) = action_rows(store)
    assert ozon.sent == [] and result.held == 1 and (row["status"], row["approval"]) == ("pending", "manual")


def _review(store: Store, rid: str, rating: int = 5) -> None:
    record = ReviewRecord("ozon", "main", rid, "1900163362", rating, "Отлично", "", "", NOW - DAY, False, None,
                          product_name="Плед флисовый 150×200")
    store.write_page(StreamKey("ozon", "main", "reviews"), PageWrite(reviews=[record]), now=NOW)


def test_a_reply_whose_template_was_replaced_is_not_sent_and_the_new_template_answers(store: Store):
    caps = {"ozon": OZON_CAPABILITIES}
    _review(store, "R-1")
    before = ActionSettings(replies=NAMED, chat=ChatSettings(points_notice=False))
    propose_actions(store, before, caps, mode="dry-run", now=NOW)
    (old,) = action_rows(store)
    assert old["status"] == "dry_run" and "Плед флисовый" in old["text"]
    new_text = "Спасибо, что выбрали «{product}»! «{store}»"
    after = before.model_copy(update={"replies": NAMED.model_copy(update={"templates": (
        ReplyTemplate(ratings=(5, 4, 3, 2, 1), text=new_text),)})})
    ozon = Recorder(OZON_CAPABILITIES)
    result = send(store, ozon, after, NOW + H)
    assert ozon.sent == [] and result.refused == 1
    propose_actions(store, after, caps, mode="live", now=NOW + H)  # the key was freed: proposed afresh
    send(store, ozon, after, NOW + 2 * H)
    assert [r.text for r in ozon.sent] == ["Спасибо, что выбрали «Плед флисовый 150×200»! «Уютный дом»"]
    by_status = {r["status"]: r for r in action_rows(store)}
    assert by_status["refused"]["reason"] == "template_withdrawn" and by_status["sent"]["key"] == "reply:ozon:main:R-1"


def test_replies_on_one_account_rotate_their_wordings_and_a_repeat_beyond_the_limit_is_refused(store: Store):
    for i in range(6):
        _review(store, f"R-{i}")
    cfg = ActionSettings(replies=NAMED.model_copy(update={"max_repeats": 1}), chat=ChatSettings(points_notice=False))
    propose_actions(store, cfg, {"ozon": OZON_CAPABILITIES}, mode="live", now=NOW)
    rows = action_rows(store)
    texts = [r["text"] for r in rows]
    # Two wordings for one product: used in turn, 3 times each; the third use of each is a 2nd repeat.
    assert len(set(texts)) == 2
    assert sorted(texts.count(t) for t in set(texts)) == [3, 3]
    assert sorted(r["status"] for r in rows) == ["approved"] * 4 + ["refused"] * 2
    assert {r["reason"] for r in rows if r["status"] == "refused"} == {"repeated_text"}


# --- property: nothing the gate refuses at send time reaches the platform --------------------------

CAPS = {"ozon": OZON_CAPABILITIES, "yandex_market": YANDEX_MARKET_CAPABILITIES}
TEXTS = ["Спасибо за заказ! Если будут вопросы, пишите сюда.", "Ваш заказ передан в доставку.",
         "Для вас скидка 10 % на следующий заказ", "Промокод SALE2026 на всё", "Дарим 200 баллов",
         "Пишите в телеграм @shop", "Спасибо за отзыв о пледе!", "а" * 5000]


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 8))
    actions = []
    for i in range(n):
        mp = draw(st.sampled_from(sorted(CAPS)))
        kind = draw(st.sampled_from([Kind.REPLY_TO_REVIEW, Kind.SEND_CHAT_MESSAGE, Kind.CREATE_PROMO_CODE]))
        hours = draw(st.sampled_from([1, 10, 47, 60, 100, 200]))
        chat = ChatContext(chat_exists=draw(st.booleans()), buyer_opened=True, fulfilment=draw(
            st.sampled_from(["fbs", "fbo", "dbs"])), paid_at=NOW - hours * H, last_buyer_message_at=NOW - hours * H,
            buyer_consented_to_marketing=draw(st.booleans())) if kind is Kind.SEND_CHAT_MESSAGE else None
        actions.append(Action(kind=kind, marketplace=mp, account="main", key=f"k{i}", target=f"t{i}", created_at=NOW,
                              text=draw(st.sampled_from(TEXTS)), public=kind is Kind.REPLY_TO_REVIEW,
                              purpose=draw(st.sampled_from(list(Purpose))), chat=chat,
                              cost=draw(st.sampled_from([Decimal(0), Decimal(300)]))))

    def config():
        return ActionSettings(marketing_consent=draw(st.booleans()), monthly_budget=draw(st.sampled_from(
            [None, Decimal(400), Decimal(5000)])), approval={k: draw(st.sampled_from(["auto", "manual"])) for k in (
                Kind.REPLY_TO_REVIEW, Kind.SEND_CHAT_MESSAGE, Kind.CREATE_PROMO_CODE)})

    def capabilities():
        out = {}
        for mp, caps in CAPS.items():
            api = [k for k, r in caps.actions.items() if r.channel is Channel.API]
            out[mp] = replace(caps, writes=frozenset(k for k in api if draw(st.booleans())))
        return out

    return (actions, config(), capabilities(), config(), capabilities(), draw(st.sampled_from([H, 2 * DAY, 7 * DAY])),
            draw(st.sampled_from(["dry-run", "live"])), draw(st.booleans()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_nothing_the_gate_refuses_at_send_time_reaches_the_platform(sqlite_store: Store, scenario):
    actions, cfg_then, caps_then, cfg_now, caps_now, later, mode_then, approve_all = scenario
    store = sqlite_store
    with store.engine.begin() as conn:  # each example starts from an empty outbox
        from loyalty.outbox import ACTIONS, ATTEMPTS

        conn.execute(ATTEMPTS.delete())
        conn.execute(ACTIONS.delete())
    propose(store, actions, caps_then, cfg_then, mode=mode_then, now=NOW)
    if approve_all:  # a person approves whatever waits, however long after
        waiting = [r["id"] for r in action_rows(store, status="pending")]
        set_status(store, waiting, S.APPROVED, allowed_from=(S.PENDING,), mode="live", now=NOW + later)
    sendable = {r["id"]: r for r in action_rows(store) if r["status"] in ("approved", "dry_run")}
    platforms = {mp: Recorder(caps_now[mp]) for mp in CAPS}
    asyncio.run(execute(store, {(mp, "main"): p for mp, p in platforms.items()}, mode="live", now=NOW + later,
                        settings=cfg_now))
    reached = {r.key for p in platforms.values() for r in p.sent}
    rows = {r["id"]: r for r in action_rows(store)}
    refused_at_send = 0
    for row_id, before in sendable.items():
        row = rows[row_id]
        # What the gate says of this action with the capabilities and settings at send time.
        decision = gate(action_of(before), caps_now[before["marketplace"]], cfg_now, now=NOW + later,
                        spent_this_month=_spent_before(rows, sendable, row_id), repeats=0)
        if before["key"] in reached:
            assert decision.approved, (before["key"], decision)
        elif row["status"] == "refused":
            refused_at_send += 1
            assert not decision.approved or row["reason"] == "over_budget"
    assert len(reached) + refused_at_send + sum(1 for r in rows.values() if r["status"] == "pending"
                                                and r["id"] in sendable) == len(sendable)


def _spent_before(rows, sendable, row_id) -> Decimal:
    """This month's committed cost besides the action, as the outbox counts it when the action is sent."""
    return sum((Decimal(r["cost"]) for i, r in rows.items() if i != row_id
                and r["status"] in ("pending", "approved", "dry_run", "sent")), Decimal(0))
