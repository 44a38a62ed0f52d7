"""The actions outbox: proposed actions are gated, stored once by key, approved, and executed.

Statuses (`loyalty.actions.ActionStatus`): the gate's refusal is stored as `refused` with its
reason; a cabinet-only action is refused AND becomes an ops task (`open`) with the steps for a
person. An approved action waits for a person (`pending`, approval = "manual"), or is `dry_run`
(would be sent) or `approved` (will be sent) by `[daemon].mode`. Switching to live sends the
`dry_run` ones too: each is checked against the platform's state first.

Exactly-once effect (`execute`): before every send the executor records the attempt (commit), then
reads the platform's state (`Connector.find_done`); only if the effect is not there does it check the
action again as things are now (`loyalty.send_check`: the gate with the current capabilities,
settings and time; refused -> `refused`, and its key is freed for a fresh proposal; the kind now
needs a person -> `pending`), and then it sends, once, and records the answer. A crash between
sending and recording therefore ends, on the next run, in a state check that finds the effect and
marks the action sent without sending again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Table, func, or_, select, tuple_, update

from connectors.base import Connector, WriteNotSupported, WriteRequest, WriteResult, WriteStatus
from connectors.capabilities import ActionKind, Capabilities
from connectors.errors import ApiError, AuthError
from connectors.redaction import redact
from loyalty.action_settings import ActionSettings
from loyalty.actions import Action, ActionStatus, Decision, Refusal
from loyalty.replies import recent_texts
from loyalty.send_check import check_at_send, context_json
from store import Store
from store.loyalty_tables import ActionAttemptRow, ActionRow
from store.replica import default_replica_name

__all__ = ["ATTEMPTS", "DECISION", "POINTS_SHORT", "ExecuteResult", "ProposeResult", "action_rows", "attempts_of",
           "check_now", "counts", "decisions", "edit_text", "execute", "propose", "release_claims", "set_status"]

log = logging.getLogger("loyalsync.actions")
ACTIONS: Table = ActionRow.__table__  # type: ignore[assignment]
ATTEMPTS: Table = ActionAttemptRow.__table__  # type: ignore[assignment]
_S = ActionStatus
# What counts against the monthly budget: everything not refused, rejected or failed.
_COMMITTED = (_S.PENDING, _S.APPROVED, _S.DRY_RUN, _S.SENT)
_SENDABLE = (_S.APPROVED, _S.DRY_RUN)
_UNCLAIMED: dict[str, Any] = {"claimed_by": None, "claimed_until": None}
DECISION = "decision"  # an action_attempts step: a person approved, rejected or edited it (detail: by whom)
POINTS_SHORT = "points short"  # how a promo code's `detail` starts when its points were gone at send time
# Claims are judged by the wall clock every executor shares, never by a run's business `now`.
CLAIM_FOR = timedelta(minutes=2)  # a claimed batch waiting its turn: free again this long after its executor died
SEND_WINDOW = timedelta(minutes=2)  # one action's check, and then its send, are each cut off after this ...
SEND_MARGIN = timedelta(minutes=1)  # ... and its claim outlasts that, for a request cut off while in flight
CLAIM_BATCH = 20
Gate = Callable[..., Decision]


@dataclass(slots=True)
class ProposeResult:
    """What one `propose` stored, per marketplace and status; refusals by reason."""

    stored: Counter = field(default_factory=Counter)  # (marketplace, kind, status) -> count
    refused: Counter = field(default_factory=Counter)  # (marketplace, reason) -> count
    known: int = 0  # proposed before (same key): left as they are


@dataclass(slots=True)
class ExecuteResult:
    sent: int = 0
    already_done: int = 0
    failed: int = 0
    errors: int = 0  # transient: the action stays approved and is checked first next time
    refused: int = 0  # the gate refused them at send time: never sent
    held: int = 0  # their kind needs a person's approval now: back to pending


def _month_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def _spent_this_month(conn: Any, now: datetime, *, besides: int | None = None) -> Decimal:
    """What committed actions created this month give away (without action `besides`)."""
    stmt = select(ACTIONS.c.cost).where(ACTIONS.c.status.in_([s.value for s in _COMMITTED]),
                                        ACTIONS.c.created_at >= _month_start(now))
    if besides is not None:
        stmt = stmt.where(ACTIONS.c.id != besides)
    return sum((Decimal(c) for (c,) in conn.execute(stmt)), Decimal(0))


def _ops_task_for(action: Action, decision: Decision) -> Action:
    """A cabinet-only action, rewritten as the steps a person takes in the platform's cabinet."""
    steps = list(action.params.get("steps", ())) or [
        f"Open the {action.marketplace} seller cabinet for account {action.account}.",
        f"Do by hand what the API does not offer: {action.title or action.kind.value}.",
    ]
    if action.text:
        steps.append(f"Text to use: {action.text}")
    return Action(kind=ActionKind.OPS_TASK, marketplace=action.marketplace, account=action.account,
                  key=f"task:{action.key}", target=action.target, created_at=action.created_at,
                  text=action.text, purpose=action.purpose, grounds=action.grounds, cost=action.cost,
                  params={**action.params, "steps": steps, "instead_of": action.kind.value},
                  title=f"in the cabinet: {action.title or action.kind.value} ({decision.detail})")


def _row(action: Action, status: ActionStatus, approval: str, decision: Decision, now: datetime) -> dict[str, Any]:
    return {
        "key": action.key, "kind": action.kind.value, "marketplace": action.marketplace,
        "account": action.account, "target": action.target, "title": action.title, "text": action.text,
        "public": action.public, "purpose": action.purpose.value, "grounds": ",".join(sorted(action.grounds)),
        "cost": action.cost, "params": json.dumps(dict(action.params), ensure_ascii=False, default=str),
        "context": context_json(action),
        "approval": approval, "status": status.value,
        "reason": decision.reason.value if decision.reason else None, "detail": decision.detail,
        "created_at": action.created_at, "updated_at": now, "attempts": 0,
    }


def propose(store: Store, actions: Iterable[Action], capabilities: Mapping[str, Capabilities],
            settings: ActionSettings, *, mode: str, now: datetime, gate: Gate | None = None) -> ProposeResult:
    """Gate and store new actions (a key already stored is left alone) in one transaction."""
    if gate is None:
        from loyalty.policy import gate as default_gate

        gate = default_gate
    result = ProposeResult()
    with store.engine.begin() as conn:
        batch = {a.key: a for a in actions}
        known: set[str] = set()
        keys = sorted(batch) + [f"task:{k}" for k in batch]
        for start in range(0, len(keys), 500):
            known.update(k for (k,) in conn.execute(select(ACTIONS.c.key).where(
                ACTIONS.c.key.in_(keys[start:start + 500]))))
        spent = _spent_this_month(conn, now)
        posted = recent_texts(conn, now - settings.replies.repeat_span)
        rows: list[dict[str, Any]] = []
        for key, action in batch.items():
            if key in known:
                result.known += 1
                continue
            caps = capabilities.get(action.marketplace)
            texts = posted.setdefault((action.marketplace, action.account), Counter())
            repeats = texts[action.text] if action.public and action.text else 0
            if caps is None:
                decision = Decision.refuse(Refusal.NOT_OFFERED, f"no connector for {action.marketplace}")
            else:
                decision = gate(action, caps, settings, now=now, spent_this_month=spent, repeats=repeats)
            approval = "auto" if action.kind == ActionKind.OPS_TASK else action.params.get(
                "approval", settings.approval_for(action.kind))
            if not decision.approved:
                rows.append(_row(action, _S.REFUSED, approval, decision, now))
                result.refused[(action.marketplace, decision.reason.value if decision.reason else "")] += 1
                result.stored[(action.marketplace, action.kind.value, _S.REFUSED.value)] += 1
                if decision.reason == Refusal.CABINET_ONLY and f"task:{key}" not in known:
                    task = _ops_task_for(action, decision)
                    rows.append(_row(task, _S.OPEN, "auto", Decision.ok(), now))
                    result.stored[(task.marketplace, task.kind.value, _S.OPEN.value)] += 1
                continue
            if action.kind == ActionKind.OPS_TASK:
                status = _S.OPEN
            elif approval == "manual":
                status = _S.PENDING
            else:
                status = _S.APPROVED if mode == "live" else _S.DRY_RUN
            spent += action.cost
            if action.public and action.text:
                texts[action.text] += 1
            rows.append(_row(action, status, approval, decision, now))
            result.stored[(action.marketplace, action.kind.value, status.value)] += 1
        if rows:
            conn.execute(ACTIONS.insert(), rows)
    return result


def set_status(store: Store, ids: Iterable[int], to: ActionStatus, *, allowed_from: Iterable[ActionStatus],
               mode: str, now: datetime, by: str | None = None) -> tuple[list[int], list[int]]:
    """Move actions `ids` to `to` (approve, reject, a task done) where their status allows; (moved, not).
    `by`: who decided (the CLI's user, a console login), recorded on each action moved."""
    wanted = sorted(set(ids))
    allowed = [s.value for s in allowed_from]
    with store.engine.begin() as conn:
        present = {i: s for i, s in conn.execute(select(ACTIONS.c.id, ACTIONS.c.status).where(
            ACTIONS.c.id.in_(wanted)))}
        moved = [i for i in wanted if present.get(i) in allowed]
        if moved:
            target = to
            if to == _S.APPROVED and mode != "live":
                target = _S.DRY_RUN  # approved by a person, but nothing is sent in dry-run
            conn.execute(update(ACTIONS).where(ACTIONS.c.id.in_(moved), ACTIONS.c.status.in_(allowed))
                         .values(status=target.value, updated_at=now))
            if by is not None:
                for i in moved:
                    _write_attempt(conn, i, DECISION, to.value, f"by {by}", now)
    return moved, [i for i in wanted if i not in moved]


def check_now(store: Store, row: Mapping[str, Any], capabilities: Capabilities, settings: ActionSettings, *,
              now: datetime) -> Decision:
    """The gate's decision on a stored action (or an edited copy of one) as the executor would
    check it if it were sent now: this month's budget without it, its text's recent repeats."""
    with store.engine.connect() as conn:
        spent = _spent_this_month(conn, now, besides=row["id"])
        repeats = _earlier_posts(conn, row, now - settings.replies.repeat_span)
    return check_at_send(row, capabilities, settings, now=now, spent_by_others=spent, repeats=repeats)


def edit_text(store: Store, action_id: int, text: str, capabilities: Capabilities, settings: ActionSettings, *,
              now: datetime, by: str) -> Decision | None:
    """A person's new text for a pending action, checked by the gate as if it were sent now (the
    same check the executor makes): kept, and recorded with who, only if the gate allows it. The
    decision (refused: with the reason shown to the person), or None for no pending action `action_id`."""
    with store.engine.connect() as conn:
        row = conn.execute(select(ACTIONS).where(ACTIONS.c.id == action_id)).mappings().first()
    if row is None or row["status"] != _S.PENDING.value:
        return None
    decision = check_now(store, {**row, "text": text}, capabilities, settings, now=now)
    if not decision.approved:
        return decision
    with store.engine.begin() as conn:
        changed = conn.execute(update(ACTIONS).where(ACTIONS.c.id == action_id, ACTIONS.c.status == _S.PENDING.value,
                                                     ACTIONS.c.text == row["text"])
                               .values(text=text, updated_at=now)).rowcount
        if not changed:  # decided or edited by someone else meanwhile: nothing kept
            return None
        _write_attempt(conn, action_id, DECISION, "edited", f"by {by}", now)
    return decision


def action_rows(store: Store, *, status: str | None = None, kind: str | None = None,
                exclude_kind: str | None = None) -> list[dict[str, Any]]:
    """Stored actions, oldest first, optionally by status and kind."""
    stmt = select(ACTIONS).order_by(ACTIONS.c.id)
    if status is not None:
        stmt = stmt.where(ACTIONS.c.status == status)
    if kind is not None:
        stmt = stmt.where(ACTIONS.c.kind == kind)
    if exclude_kind is not None:
        stmt = stmt.where(ACTIONS.c.kind != exclude_kind)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def counts(store: Store) -> dict[tuple[str, str, str, str | None], int]:
    """(marketplace, kind, status, reason) -> number of actions."""
    c = ACTIONS.c
    stmt = select(c.marketplace, c.kind, c.status, c.reason, func.count()).group_by(
        c.marketplace, c.kind, c.status, c.reason)
    with store.engine.connect() as conn:
        return {(mp, k, s, r): int(n) for mp, k, s, r, n in conn.execute(stmt)}


def _write_attempt(conn: Any, action_id: int, step: str, outcome: str, said: str, now: datetime,
                   **changes: Any) -> None:
    """One attempt row (the platform's words in `said`) and any change to the action."""
    conn.execute(ATTEMPTS.insert().values(action_id=action_id, at=now, step=step, outcome=outcome,
                                          detail=said[:2000]))
    if changes:
        conn.execute(update(ACTIONS).where(ACTIONS.c.id == action_id).values(updated_at=now, **changes))


def _record(store: Store, action_id: int, step: str, outcome: str, said: str, now: datetime,
            **changes: Any) -> None:
    """`_write_attempt` in a transaction of its own."""
    with store.engine.begin() as conn:
        _write_attempt(conn, action_id, step, outcome, said, now, **changes)


def _request(row: Mapping[str, Any]) -> WriteRequest:
    return WriteRequest(kind=row["kind"], key=row["key"], target=row["target"], text=row["text"],
                        params=json.loads(row["params"] or "{}"))


def _claim_batch(store: Store, accounts: Iterable[tuple[str, str]], claimer: str, now: datetime,
                 until: datetime, size: int, after: int) -> list[dict[str, Any]]:
    """Claim up to `size` sendable actions of `accounts` after id `after` for `claimer`.

    On PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so executors claiming at the same
    moment take different actions instead of queueing behind each other; a claim that ran out
    (its executor died) can be taken again.
    """
    c = ACTIONS.c
    mine = list(accounts)
    if not mine:
        return []
    free = or_(c.claimed_until.is_(None), c.claimed_until < now, c.claimed_by == claimer)
    with store.engine.begin() as conn:
        pick = (select(c.id).where(c.id > after, c.status.in_([s.value for s in _SENDABLE]),
                                   c.kind != ActionKind.OPS_TASK.value,
                                   tuple_(c.marketplace, c.account).in_(mine), free)
                .order_by(c.id).limit(size).with_for_update(skip_locked=True))
        ids = [i for (i,) in conn.execute(pick)]
        if not ids:
            return []
        conn.execute(update(ACTIONS).where(c.id.in_(ids), free).values(claimed_by=claimer, claimed_until=until))
        return [dict(r) for r in conn.execute(select(ACTIONS).where(c.id.in_(ids), c.claimed_by == claimer)
                                              .order_by(c.id)).mappings()]


def _begin_attempt(store: Store, action_id: int, claimer: str, now: datetime, until: datetime) -> bool:
    """Record the intent to send before anything leaves (commit), so a crash is followed by a check.

    Only while the claim is still ours (no other executor has claimed it since: a claim is taken
    over only by overwriting `claimed_by`), extending it to `until`.
    """
    c = ACTIONS.c
    with store.engine.begin() as conn:
        done = conn.execute(update(ACTIONS).where(c.id == action_id, c.status.in_([s.value for s in _SENDABLE]),
                                                  c.claimed_by == claimer)
                            .values(attempts=c.attempts + 1, updated_at=now, claimed_until=until))
        return done.rowcount == 1


def _hold(store: Store, action_id: int, claimer: str, until: datetime) -> bool:
    """Extend our claim to `until` right before the send; False if it is no longer ours."""
    c = ACTIONS.c
    with store.engine.begin() as conn:
        done = conn.execute(update(ACTIONS).where(c.id == action_id, c.status.in_([s.value for s in _SENDABLE]),
                                                  c.claimed_by == claimer).values(claimed_until=until))
        return done.rowcount == 1


def _send_window(connector: Connector) -> timedelta:
    """How long one action's check, and then its send, may take: SEND_WINDOW, or three of the
    account's request deadlines when that is longer (a check may read a page or two, a send may
    wait out one rate-limit refusal)."""
    seconds = 3 * getattr(getattr(connector, "account", None), "request_timeout_seconds", 0)
    return max(SEND_WINDOW, timedelta(seconds=seconds))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _done(store: Store, row: Mapping[str, Any], result: WriteResult, step: str, now: datetime) -> None:
    """Mark sent, with the attempt; a promo code's `spend` goes into the ledger in the same transaction."""
    from loyalty.engine import Entry
    from loyalty.ledger import apply_in

    with store.engine.begin() as conn:
        _write_attempt(conn, row["id"], step, result.status.value, result.detail, now, status=_S.SENT.value,
                       platform_ref=result.platform_ref, sent_at=now, **_UNCLAIMED)
        params = json.loads(row["params"] or "{}")
        if row["kind"] == ActionKind.CREATE_PROMO_CODE.value and "buyer_key" in params:
            apply_in(conn, [Entry("spend", -Decimal(params["points"]), f"spend:{row['key']}", None, "promo_code",
                                  now, marketplace=row["marketplace"], account=row["account"],
                                  buyer_key=params["buyer_key"])], now=now)


def _points_short(store: Store, row: Mapping[str, Any], now: datetime) -> str | None:
    """Why a promo code must not be sent now (its points expired or were taken back since it was
    proposed: its spend would leave the buyer in debt), or None."""
    params = json.loads(row["params"] or "{}")
    if row["kind"] != ActionKind.CREATE_PROMO_CODE.value or "buyer_key" not in params:
        return None
    from loyalty.ledger import balances

    b = balances(store, (row["marketplace"], row["account"], params["buyer_key"]), now)
    free, points = b.available - b.debt, Decimal(params["points"])
    if free >= points:
        return None
    return (f"{POINTS_SHORT}: not sent, the member has {free:f} available points now and the code needs "
            f"{points:f} (points expired or were taken back since it was proposed); a new code is proposed "
            "when the balance allows")


async def execute(store: Store, connectors: Mapping[tuple[str, str], Connector], *, mode: str, now: datetime,
                  settings: ActionSettings, secrets: Iterable[str] = (), clock: Callable[[], datetime] | None = None,
                  claimer: str | None = None, wall: Callable[[], datetime] = _utcnow,
                  gate: Gate | None = None) -> ExecuteResult:
    """Send approved actions (live mode only) through their account's connector, each exactly once.

    Only actions of the accounts in `connectors` (a replica passes those it holds), each claimed
    for `claimer` in the outbox first; an action claimed by a live executor is left to it. Each is
    checked again right before its send (`loyalty.send_check`) against the connector's capabilities
    and `settings` (the configuration in force now), at the time of the send.
    `clock` stamps what is recorded (default: `now`); claims are judged by `wall`, the clock all
    executors share, and last longer than the check and the send they guard (`_send_window`), so no
    other executor, however slow this one runs, takes over an action while it may still land.
    """
    result = ExecuteResult()
    if mode != "live":
        return result
    secrets = tuple(s for s in secrets if s)
    stamp = clock or (lambda: now)
    claimer = claimer or default_replica_name()
    after = 0  # one pass in id order: an action that failed now waits for the next run
    while True:
        rows = _claim_batch(store, connectors, claimer, wall(), wall() + CLAIM_FOR, CLAIM_BATCH, after)
        if not rows:
            return result
        after = rows[-1]["id"]
        stop = await _execute_batch(store, rows, connectors, result, secrets, stamp, claimer, wall,
                                    _SendCheck(settings, gate))
        if stop:
            release_claims(store, claimer)
            return result


def release_claims(store: Store, claimer: str) -> int:
    """Give back what `claimer` claimed and did not finish, for the next run (or another executor);
    how many actions it held.

    A daemon calls it as it starts, for the claims its own earlier process left when it was killed:
    that process is gone, so nothing can still be sending under its name, and the replica that took
    its accounts over need not wait out the claims (SEND_WINDOW + SEND_MARGIN, three minutes). The
    check before any send (`find_done`) still runs first: a request that landed is found, not repeated."""
    with store.engine.begin() as conn:
        return conn.execute(update(ACTIONS).where(ACTIONS.c.claimed_by == claimer).values(**_UNCLAIMED)).rowcount


@dataclass(frozen=True, slots=True)
class _SendCheck:
    """What an action is checked against at send time: the settings in force, and the gate."""

    settings: ActionSettings
    gate: Gate | None

    def needs_a_person(self, row: Mapping[str, Any]) -> bool:
        """Approved by the rules of its time, but its kind now needs a person (and no one approved it)."""
        own = json.loads(row["params"] or "{}").get("approval")
        return (row["approval"] == "auto" and own is None
                and self.settings.approval_for(ActionKind(row["kind"])) == "manual")

    def decide(self, store: Store, row: Mapping[str, Any], connector: Connector, now: datetime) -> Decision:
        with store.engine.connect() as conn:
            spent = _spent_this_month(conn, now, besides=row["id"])
            repeats = _earlier_posts(conn, row, now - self.settings.replies.repeat_span)
        return check_at_send(row, connector.capabilities, self.settings, now=now, spent_by_others=spent,
                             repeats=repeats, gate=self.gate)


def _earlier_posts(conn: Any, row: Mapping[str, Any], since: datetime) -> int:
    """How many actions before this one posted its exact public text on its account since `since`."""
    if not row["public"] or not row["text"]:
        return 0
    c = ACTIONS.c
    stmt = select(func.count()).where(c.marketplace == row["marketplace"], c.account == row["account"],
                                      c.public.is_(True), c.text == row["text"], c.id < row["id"],
                                      c.created_at >= since, c.status.in_([s.value for s in _COMMITTED]))
    return int(conn.execute(stmt).scalar_one())


def _refuse_at_send(store: Store, row: Mapping[str, Any], decision: Decision, now: datetime) -> None:
    """Refused by the gate at send time: recorded with the reason, never sent. The row keeps its
    history under a key of its own, so the next round may propose the action afresh (a reply from
    the current template) and the gate decides that one."""
    reason = decision.reason.value if decision.reason else None
    with store.engine.begin() as conn:
        _write_attempt(conn, row["id"], "gate", "refused", f"{reason}: {decision.detail}", now,
                       status=_S.REFUSED.value, reason=reason, detail=decision.detail,
                       key=f"{row['key']}~{row['id']}", **_UNCLAIMED)


async def _execute_batch(store: Store, rows: list[dict[str, Any]], connectors: Mapping[tuple[str, str], Connector],
                         result: ExecuteResult, secrets: tuple[str, ...], stamp: Callable[[], datetime],
                         claimer: str, wall: Callable[[], datetime], check: _SendCheck) -> bool:
    """Check and send each claimed action; True when the rest must wait (the token was refused)."""
    for row in rows:
        connector = connectors[(row["marketplace"], row["account"])]
        window = _send_window(connector)
        if not _begin_attempt(store, row["id"], claimer, stamp(), wall() + window + SEND_MARGIN):
            continue  # another executor took it over, or a person changed it
        request = _request(row)
        try:
            async with asyncio.timeout(window.total_seconds()):
                found = await connector.find_done(request)
            if found is not None:
                _done(store, row, replace(found, detail=redact(found.detail, secrets)), "check", stamp())
                result.already_done += 1
                continue
            _record(store, row["id"], "check", "not_done", "", stamp())
            if check.needs_a_person(row):
                _record(store, row["id"], "gate", "held", "its kind needs a person's approval now ([actions.approval])",
                        stamp(), status=_S.PENDING.value, approval="manual", **_UNCLAIMED)
                result.held += 1
                continue
            decision = check.decide(store, row, connector, stamp())
            if not decision.approved:
                _refuse_at_send(store, row, decision, stamp())
                log.info("action %s on %s/%s refused at send time: %s", row["id"], row["marketplace"],
                         row["account"], decision.reason)
                result.refused += 1
                continue
            if (short := _points_short(store, row, stamp())) is not None:
                _record(store, row["id"], "send", "rejected", short, stamp(), status=_S.FAILED.value, detail=short,
                        **_UNCLAIMED)
                result.failed += 1
                continue
            if not _hold(store, row["id"], claimer, wall() + window + SEND_MARGIN):
                continue
            async with asyncio.timeout(window.total_seconds()):
                answer = await connector.perform(request)
        except WriteNotSupported as exc:
            _record(store, row["id"], "send", "rejected", str(exc), stamp(), status=_S.FAILED.value, detail=str(exc),
                    **_UNCLAIMED)
            result.failed += 1
            continue
        except (ApiError, httpx.HTTPError, TimeoutError) as exc:
            # Lost answer, platform down, bad token, cut off: the next run checks the platform before sending.
            said = str(exc) if not isinstance(exc, TimeoutError) else f"no answer within {window.total_seconds():g}s"
            detail = redact(f"{type(exc).__name__}: {said}", secrets)
            _record(store, row["id"], "send", "error", detail, stamp(), **_UNCLAIMED)
            log.warning("action %s on %s/%s not sent yet: %s", row["id"], row["marketplace"], row["account"], detail)
            result.errors += 1
            if isinstance(exc, AuthError):
                return True  # every other write with this token fails the same way
            continue
        if answer.status == WriteStatus.REJECTED:
            detail = redact(answer.detail, secrets)
            _record(store, row["id"], "send", "rejected", detail, stamp(), status=_S.FAILED.value, detail=detail,
                    **_UNCLAIMED)
            result.failed += 1
        else:
            _done(store, row, replace(answer, detail=redact(answer.detail, secrets)), "send", stamp())
            result.sent += 1
    return False


def decisions(store: Store) -> dict[int, str]:
    """Per action, the last person's decision on it: "approved by olga at 2026-12-07 21:30 UTC"."""
    a = ATTEMPTS.c
    stmt = select(a.action_id, a.outcome, a.detail, a.at).where(a.step == DECISION).order_by(a.id)
    with store.engine.connect() as conn:
        return {i: f"{outcome} {detail} at {at:%Y-%m-%d %H:%M} UTC" for i, outcome, detail, at in conn.execute(stmt)}


def attempts_of(store: Store, action_id: int) -> list[dict[str, Any]]:
    """The executor's record for one action, oldest first."""
    stmt = select(ATTEMPTS).where(ATTEMPTS.c.action_id == action_id).order_by(ATTEMPTS.c.id)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]

