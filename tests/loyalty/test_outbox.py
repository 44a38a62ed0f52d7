"""The outbox: gating and storing once by key, approvals, and the exactly-once executor.

The executor runs against a fake connector here (the platforms' emulators: tests/loyalty/test_actions_e2e.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.base import WriteRequest, WriteResult, WriteStatus
from connectors.capabilities import ActionKind, ActionRule, BuyerIdentity, Capabilities, Channel
from connectors.errors import RetriableApiError
from loyalty.action_settings import ActionSettings
from loyalty.actions import Action, ActionStatus, Decision, Kind, Purpose, Refusal
from loyalty.engine import Entry
from loyalty.ledger import apply, balances
from loyalty.outbox import ExecuteResult, action_rows, attempts_of, execute, propose, set_status
from store import Store

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
CAPS = {"shop": Capabilities("shop", BuyerIdentity.FULL, actions={
    ActionKind.REPLY_TO_REVIEW: ActionRule(Channel.API),
    ActionKind.CREATE_PROMO_CODE: ActionRule(Channel.API),
    ActionKind.REVIEW_POINTS_PROGRAM: ActionRule(Channel.CABINET)},
    writes=frozenset({ActionKind.REPLY_TO_REVIEW, ActionKind.CREATE_PROMO_CODE}))}
S = ActionStatus
# The settings in force when the executor sends (checked again then, with the real gate).
SEND_SETTINGS = ActionSettings(approval=dict.fromkeys((Kind.REPLY_TO_REVIEW, Kind.CREATE_PROMO_CODE), "auto"))


def reply(rid: str, text: str | None = None, **more) -> Action:
    # Each reply its own text by default: the gate refuses a text repeated too often on one account.
    return Action(kind=Kind.REPLY_TO_REVIEW, marketplace="shop", account="main", key=f"reply:shop:main:{rid}",
                  target=rid, created_at=NOW, text=text or f"Спасибо, {rid}!", public=True, title=f"reply {rid}",
                  **more)


def allow_unless_bad(action, caps, settings, *, now, spent_this_month, repeats=0):
    """A stand-in gate: refuses texts containing "BAD", sends cabinet-only kinds to a person."""
    if action.text and "BAD" in action.text:
        return Decision.refuse(Refusal.CONTAINS_LINK, "found BAD")
    if action.kind == Kind.CREATE_PROMO_CODE and action.params.get("cabinet"):
        return Decision.refuse(Refusal.CABINET_ONLY, "only in the cabinet")
    return Decision.ok()


def statuses(store: Store) -> dict[str, str]:
    return {r["key"]: r["status"] for r in action_rows(store)}


def test_propose_stores_each_key_once_with_the_gates_decision(store: Store):
    settings = ActionSettings(approval={Kind.REPLY_TO_REVIEW: "auto"})
    manual = reply("R3", params={"approval": "manual"})
    result = propose(store, [reply("R1"), reply("R2", "BAD link"), manual], CAPS, settings, mode="dry-run",
                     now=NOW, gate=allow_unless_bad)
    assert statuses(store) == {"reply:shop:main:R1": "dry_run", "reply:shop:main:R2": "refused",
                               "reply:shop:main:R3": "pending"}
    assert result.refused == {("shop", "contains_link"): 1}
    refused = next(r for r in action_rows(store) if r["status"] == "refused")
    assert (refused["reason"], refused["detail"]) == ("contains_link", "found BAD")
    again = propose(store, [reply("R1"), reply("R2"), manual], CAPS, settings, mode="live", now=NOW,
                    gate=allow_unless_bad)
    assert again.known == 3 and len(action_rows(store)) == 3  # a known key is never re-decided

    live = propose(store, [reply("R4")], CAPS, settings, mode="live", now=NOW, gate=allow_unless_bad)
    assert statuses(store)["reply:shop:main:R4"] == "approved" and sum(live.stored.values()) == 1


def test_a_cabinet_only_action_is_refused_and_becomes_an_ops_task(store: Store):
    promo = Action(kind=Kind.CREATE_PROMO_CODE, marketplace="shop", account="main", key="promo:x", target="b1",
                   created_at=NOW, purpose=Purpose.REWARD, cost=Decimal(500), params={"cabinet": True},
                   title="promo code worth 500 ₽")
    propose(store, [promo], CAPS, ActionSettings(), mode="dry-run", now=NOW, gate=allow_unless_bad)
    rows = {r["key"]: r for r in action_rows(store)}
    assert rows["promo:x"]["status"] == "refused" and rows["promo:x"]["reason"] == "cabinet_only"
    task = rows["task:promo:x"]
    assert task["kind"] == "ops_task" and task["status"] == "open" and task["cost"] == 500
    assert "promo code worth 500 ₽" in task["title"]
    propose(store, [promo], CAPS, ActionSettings(), mode="dry-run", now=NOW, gate=allow_unless_bad)
    assert len(action_rows(store)) == 2


def test_approve_reject_and_done_move_only_from_the_right_status(store: Store):
    propose(store, [reply("R1", params={"approval": "manual"}), reply("R2", params={"approval": "manual"}),
                    reply("R3")], CAPS, ActionSettings(), mode="live", now=NOW, gate=allow_unless_bad)
    ids = {r["key"]: r["id"] for r in action_rows(store)}
    moved, not_moved = set_status(store, [ids["reply:shop:main:R1"], ids["reply:shop:main:R3"], 999], S.APPROVED,
                                  allowed_from=(S.PENDING,), mode="live", now=NOW)
    assert moved == [ids["reply:shop:main:R1"]] and not_moved == sorted([ids["reply:shop:main:R3"], 999])
    set_status(store, [ids["reply:shop:main:R2"]], S.APPROVED, allowed_from=(S.PENDING,), mode="dry-run", now=NOW)
    set_status(store, [ids["reply:shop:main:R3"]], S.REJECTED, allowed_from=(S.APPROVED,), mode="live", now=NOW)
    assert statuses(store) == {"reply:shop:main:R1": "approved", "reply:shop:main:R2": "dry_run",
                               "reply:shop:main:R3": "rejected"}


class FakePlatform:
    """A connector stand-in: answers reviews; can lose the answer of a write it applied."""

    name = "shop"
    capabilities = CAPS["shop"]

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}
        self.sends = 0
        self.lose_next = 0
        self.down = False

    async def find_done(self, request: WriteRequest) -> WriteResult | None:
        if self.down:
            raise RetriableApiError("shop: 503 Service Unavailable")
        if request.target in self.answers:
            return WriteResult(WriteStatus.ALREADY_DONE, platform_ref=f"c-{request.target}")
        return None

    async def perform(self, request: WriteRequest) -> WriteResult:
        self.sends += 1
        if len(request.text or "") > 50:
            return WriteResult(WriteStatus.REJECTED, detail="text: at most 50 characters")
        self.answers[request.target] = request.text or ""
        if self.lose_next:
            self.lose_next -= 1
            raise RetriableApiError("shop: timeout (the answer was lost)")
        return WriteResult(WriteStatus.DONE, platform_ref=f"c-{request.target}")


def run(store: Store, platform: FakePlatform, mode: str = "live"):
    return asyncio.run(execute(store, {("shop", "main"): platform}, settings=SEND_SETTINGS,
                               mode=mode, now=NOW, secrets=("tok",)))


def test_execute_sends_once_and_a_lost_answer_is_found_not_resent(store: Store):
    propose(store, [reply("R1"), reply("R2"), reply("R3", "x" * 60)], CAPS, ActionSettings(), mode="live", now=NOW,
            gate=allow_unless_bad)
    platform = FakePlatform()
    platform.lose_next = 1  # R1 is applied, but its answer never arrives
    first = run(store, platform)
    assert (first.sent, first.errors, first.failed) == (1, 1, 1)
    assert statuses(store) == {"reply:shop:main:R1": "approved", "reply:shop:main:R2": "sent",
                               "reply:shop:main:R3": "failed"}
    second = run(store, platform)
    assert (second.already_done, second.sent) == (1, 0)
    assert platform.sends == 3  # R1 once, R2 once, R3 once (rejected): nothing twice
    rows = {r["key"]: r for r in action_rows(store)}
    assert rows["reply:shop:main:R1"]["status"] == "sent" and rows["reply:shop:main:R1"]["platform_ref"] == "c-R1"
    assert rows["reply:shop:main:R3"]["detail"] == "text: at most 50 characters"
    steps = [(a["step"], a["outcome"]) for a in attempts_of(store, rows["reply:shop:main:R1"]["id"])]
    assert steps == [("check", "not_done"), ("send", "error"), ("check", "already_done")]
    assert run(store, platform).sent == 0


def test_dry_run_sends_nothing_and_live_later_sends_what_dry_run_kept(store: Store):
    propose(store, [reply("R1")], CAPS, ActionSettings(), mode="dry-run", now=NOW, gate=allow_unless_bad)
    platform = FakePlatform()
    assert run(store, platform, mode="dry-run").sent == 0 and platform.sends == 0
    assert run(store, platform, mode="live").sent == 1 and statuses(store) == {"reply:shop:main:R1": "sent"}


def test_a_platform_that_cannot_be_read_is_never_written(store: Store):
    propose(store, [reply("R1")], CAPS, ActionSettings(), mode="live", now=NOW, gate=allow_unless_bad)
    platform = FakePlatform()
    platform.down = True
    assert run(store, platform).errors == 1 and platform.sends == 0
    assert statuses(store) == {"reply:shop:main:R1": "approved"}


@pytest.mark.parametrize("crash_after_send", [True, False])
def test_a_crash_between_send_and_record_never_sends_twice(store: Store, monkeypatch, crash_after_send):
    """Kill the executor (an exception no handler catches) right after the platform applied the write."""
    import loyalty.outbox as outbox

    propose(store, [reply(f"R{i}") for i in range(20)], CAPS, ActionSettings(), mode="live", now=NOW,
            gate=allow_unless_bad)
    platform = FakePlatform()
    real_done = outbox._done
    crashes = 0

    class Killed(BaseException):
        pass

    def crashing_done(*args, **kwargs):
        nonlocal crashes
        if crash_after_send and crashes < 7 and platform.sends % 3 == 1:
            crashes += 1
            raise Killed
        return real_done(*args, **kwargs)

    monkeypatch.setattr(outbox, "_done", crashing_done)
    for _ in range(30):
        try:
            run(store, platform)
        except Killed:
            continue
        if all(s == "sent" for s in statuses(store).values()):
            break
    assert all(s == "sent" for s in statuses(store).values())
    assert platform.sends == 20 and len(platform.answers) == 20
    assert crashes == (7 if crash_after_send else 0)


class Vouchers(FakePlatform):
    async def perform(self, request: WriteRequest) -> WriteResult:
        self.sends += 1
        return WriteResult(WriteStatus.DONE, platform_ref=f"V-{self.sends}")


def test_a_sent_promo_code_spends_the_members_points_in_the_same_transaction(store: Store):
    apply(store, [Entry("earn", Decimal(800), "earn:shop:main:O1:rate", "O1", "rate", NOW - timedelta(days=30),
                        NOW - timedelta(days=10), None, "shop", "main", "b1")])
    promo = Action(kind=Kind.CREATE_PROMO_CODE, marketplace="shop", account="main", key="promo:shop:main:b1:0",
                   target="b1", created_at=NOW, purpose=Purpose.REWARD, cost=Decimal(500),
                   params={"buyer_key": "b1", "points": "500", "discount_value": "500"})
    propose(store, [promo], CAPS, ActionSettings(approval={Kind.CREATE_PROMO_CODE: "auto"}), mode="live", now=NOW,
            gate=allow_unless_bad)

    run(store, Vouchers())
    b = balances(store, ("shop", "main", "b1"), NOW)
    assert b.available == 300 and b.total == 300
    assert run(store, Vouchers()).sent == 0 and balances(store, ("shop", "main", "b1"), NOW).available == 300


def test_a_promo_code_whose_points_expired_before_it_was_sent_is_not_sent(store: Store):
    """Proposed at NOW from a lot of 600 that expires at NOW + 2 h; approved by a person the next day.
    Sending it would spend 500 points the buyer no longer has (debt 500): it is not sent."""
    member = ("shop", "main", "b1")
    apply(store, [Entry("earn", Decimal(600), "earn:shop:main:O1:rate", "O1", "rate", NOW - timedelta(days=40),
                        NOW - timedelta(days=20), NOW + timedelta(hours=2), "shop", "main", "b1")], now=NOW)
    promo = Action(kind=Kind.CREATE_PROMO_CODE, marketplace="shop", account="main", key="promo:shop:main:b1:0",
                   target="b1", created_at=NOW, purpose=Purpose.REWARD, cost=Decimal(500),
                   params={"buyer_key": "b1", "points": "500", "discount_value": "500"})
    propose(store, [promo], CAPS, ActionSettings(), mode="live", now=NOW, gate=allow_unless_bad)
    set_status(store, [action_rows(store)[0]["id"]], S.APPROVED, allowed_from=[S.PENDING], mode="live", now=NOW)
    platform = Vouchers()
    next_day = NOW + timedelta(days=1)
    result = asyncio.run(execute(store, {("shop", "main"): platform}, settings=SEND_SETTINGS,
                                 mode="live", now=next_day))
    assert (result.sent, result.failed, platform.sends) == (0, 1, 0)
    row = action_rows(store)[0]
    assert row["status"] == "failed" and row["detail"].startswith("points short")
    b = balances(store, member, next_day)
    assert (b.available, b.debt, b.expired) == (0, 0, 600)


def test_a_promo_code_is_proposed_only_from_points_that_last_until_it_can_be_sent(store: Store):
    """redeem_at 500, `lasting` 1 day. Lots: 400 expiring in 12 h, 300 expiring in 3 days: only 300
    last a day, so no code; a third lot of 250 (never expires) makes 550 lasting points: one code."""
    from loyalty.action_settings import PromoSettings
    from loyalty.promo import propose_promo_codes

    def lot(order: str, amount: int, expires: timedelta | None) -> Entry:
        return Entry("earn", Decimal(amount), f"earn:shop:main:{order}:rate", order, "rate", NOW - timedelta(days=40),
                     NOW - timedelta(days=20), None if expires is None else NOW + expires, "shop", "main", "b1")

    settings = PromoSettings(enabled=True, redeem_at=Decimal(500))
    apply(store, [lot("O1", 400, timedelta(hours=12)), lot("O2", 300, timedelta(days=3))], now=NOW)
    assert balances(store, ("shop", "main", "b1"), NOW).available == 700
    assert list(propose_promo_codes(store, settings, {}, NOW)) == []
    apply(store, [lot("O3", 250, None)], now=NOW)
    (code,) = propose_promo_codes(store, settings, {}, NOW)
    assert code.params["points"] == "500" and code.key == "promo:shop:main:b1:0"


def test_after_a_code_lapsed_for_points_a_new_one_is_proposed_under_a_new_key(store: Store):
    from loyalty.action_settings import PromoSettings
    from loyalty.promo import propose_promo_codes

    test_a_promo_code_whose_points_expired_before_it_was_sent_is_not_sent(store)
    later = NOW + timedelta(days=2)
    settings = PromoSettings(enabled=True, redeem_at=Decimal(500))
    assert list(propose_promo_codes(store, settings, {}, later)) == []  # nothing left
    apply(store, [Entry("earn", Decimal(700), "earn:shop:main:O2:rate", "O2", "rate", NOW, NOW, None,
                        "shop", "main", "b1")], now=later)
    (code,) = propose_promo_codes(store, settings, {}, later)
    assert code.key == "promo:shop:main:b1:0#2"


class SlowPlatform(FakePlatform):
    """Every send takes a moment, so two executors really overlap; counts sends per target."""

    def __init__(self) -> None:
        super().__init__()
        self.per_target: dict[str, int] = {}

    async def perform(self, request: WriteRequest) -> WriteResult:
        self.per_target[request.target] = self.per_target.get(request.target, 0) + 1
        await asyncio.sleep(0.01)
        return await super().perform(request)


def test_two_executors_on_one_postgresql_send_each_action_once(pg_store: Store):
    """Two replicas' executors at once: each action is claimed by one (SKIP LOCKED), sent once."""
    import threading

    propose(pg_store, [reply(f"R{i}") for i in range(60)], CAPS, ActionSettings(), mode="live", now=NOW,
            gate=allow_unless_bad)
    platform = SlowPlatform()
    start = threading.Barrier(2)
    results = {}

    def executor(name: str) -> None:
        start.wait()
        results[name] = asyncio.run(execute(pg_store, {("shop", "main"): platform}, settings=SEND_SETTINGS,
                                            mode="live", now=NOW,
                                             claimer=name, clock=lambda: datetime.now(UTC)))

    threads = [threading.Thread(target=executor, args=(n,)) for n in ("replica-a", "replica-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert platform.per_target == {f"R{i}": 1 for i in range(60)}
    assert results["replica-a"].sent + results["replica-b"].sent == 60
    assert results["replica-a"].sent > 0 and results["replica-b"].sent > 0, "one executor did everything"
    assert set(statuses(pg_store).values()) == {"sent"}
    assert all(r["claimed_by"] is None for r in action_rows(pg_store))


class Wall:
    """The clock executors share, moved by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_an_action_claimed_by_a_live_executor_is_left_alone_until_its_claim_runs_out(store: Store):
    from loyalty.outbox import CLAIM_FOR, _claim_batch

    propose(store, [reply("R1")], CAPS, ActionSettings(), mode="live", now=NOW, gate=allow_unless_bad)
    claimed = _claim_batch(store, [("shop", "main")], "dead-replica", NOW, NOW + CLAIM_FOR, 10, 0)
    assert [r["target"] for r in claimed] == ["R1"]
    platform, wall = FakePlatform(), Wall(NOW + CLAIM_FOR / 2)
    early = asyncio.run(execute(store, {("shop", "main"): platform}, settings=SEND_SETTINGS,
                                mode="live", now=NOW, claimer="other",
                                wall=wall))
    assert early.sent == 0 and platform.sends == 0
    wall.at = NOW + CLAIM_FOR + timedelta(seconds=1)
    late = asyncio.run(execute(store, {("shop", "main"): platform}, settings=SEND_SETTINGS,
                               mode="live", now=NOW, claimer="other", wall=wall))
    assert late.sent == 1 and platform.sends == 1


class OvertakenPlatform(FakePlatform):
    """Each send takes `send_takes` of the shared wall clock, and another replica's executor runs
    while the first send is in flight (before the platform has applied it)."""

    def __init__(self, store: Store, wall: Wall, send_takes: timedelta) -> None:
        super().__init__()
        self.store, self.wall, self.send_takes = store, wall, send_takes
        self.per_target: dict[str, int] = {}
        self.other: ExecuteResult | None = None

    async def perform(self, request: WriteRequest) -> WriteResult:
        self.per_target[request.target] = self.per_target.get(request.target, 0) + 1
        self.wall.at += self.send_takes
        if self.other is None:
            self.other = await execute(self.store, {("shop", "main"): self}, settings=SEND_SETTINGS,
                                       mode="live", now=NOW,
                                       claimer="replica-b", wall=self.wall)
        return await super().perform(request)


@pytest.mark.parametrize("send_takes", [timedelta(seconds=20), timedelta(seconds=100)])
def test_a_slow_send_is_never_taken_over_by_another_executor(store: Store, send_takes: timedelta):
    """The crash harness's double send: the daemon claimed for one lease period (seconds) and
    judged claims by the run's start time, so on a starved machine another replica took over an
    action whose send was still in flight, found nothing on the platform yet, and sent it again.
    A claim now outlasts the check and the send it guards (SEND_WINDOW + SEND_MARGIN)."""
    propose(store, [reply("R1"), reply("R2")], CAPS, ActionSettings(), mode="live", now=NOW, gate=allow_unless_bad)
    wall = Wall(NOW)
    platform = OvertakenPlatform(store, wall, send_takes)
    mine = asyncio.run(execute(store, {("shop", "main"): platform}, settings=SEND_SETTINGS,
                               mode="live", now=NOW, claimer="replica-a",
                               wall=wall))
    assert platform.per_target == {"R1": 1, "R2": 1}
    assert mine.sent == 2 and platform.other is not None and platform.other.sent == 0
    assert set(statuses(store).values()) == {"sent"}


def test_a_check_or_send_that_hangs_is_cut_off_and_checked_again_next_run(store: Store, monkeypatch):
    """A send cut off by the window is an error, not a failure: the next run reads the platform first."""
    import loyalty.outbox as outbox

    monkeypatch.setattr(outbox, "SEND_WINDOW", timedelta(seconds=0.05))

    class Hanging(FakePlatform):
        hang = True

        async def perform(self, request: WriteRequest) -> WriteResult:
            answer = await super().perform(request)  # applied on the platform, the answer never comes
            if self.hang:
                await asyncio.sleep(60)
            return answer

    propose(store, [reply("R1")], CAPS, ActionSettings(), mode="live", now=NOW, gate=allow_unless_bad)
    platform = Hanging()
    first = run(store, platform)
    assert (first.sent, first.errors) == (0, 1) and statuses(store) == {"reply:shop:main:R1": "approved"}
    assert "no answer within 0.05s" in attempts_of(store, action_rows(store)[0]["id"])[-1]["detail"]
    platform.hang = False
    second = run(store, platform)
    assert (second.already_done, platform.sends) == (1, 1)
    assert statuses(store) == {"reply:shop:main:R1": "sent"}
