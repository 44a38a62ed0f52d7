"""The gate again, at the moment of sending: an action approved days ago is checked as it is now.

`propose` gates an action once, when it is planned. Between then and the send a person may approve
it a week later, the daemon may switch to live mode, a chat window may close, consent may be
withdrawn, a template may be replaced, or the connector may change. So the executor rebuilds the
`Action` from its outbox row (`action_of`) and runs `loyalty.policy.gate` on it with the current
capabilities and settings and the send time (`check_at_send`); what no longer passes is refused
with the gate's reason and never sent.

The row keeps what the gate needs beyond the action's own fields in `context` (JSON): the chat
context (`loyalty.actions.ChatContext`) and the action's `origin` (a reply's template digest and the
review's rating).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.capabilities import ActionKind, Capabilities
from loyalty.action_settings import ActionSettings
from loyalty.actions import Action, ChatContext, Decision, Purpose

__all__ = ["action_of", "check_at_send", "context_json"]

_CHAT_TIMES = frozenset(f.name for f in fields(ChatContext) if f.name.endswith("_at"))


def context_json(action: Action) -> str:
    """What the gate needs of `action` beyond its row's columns, as stored in `actions.context`."""
    out: dict[str, Any] = {}
    if action.chat is not None:
        out["chat"] = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(action.chat).items()}
    if action.origin:
        out["origin"] = dict(action.origin)
    return json.dumps(out, ensure_ascii=False, default=str, sort_keys=True)


def _chat_of(raw: Any) -> ChatContext | None:
    if not isinstance(raw, dict):
        return None
    known = {f.name for f in fields(ChatContext)}
    values = {k: (datetime.fromisoformat(v) if k in _CHAT_TIMES and isinstance(v, str) else v)
              for k, v in raw.items() if k in known}
    return ChatContext(**values)


def action_of(row: Mapping[str, Any]) -> Action:
    """The `Action` an outbox row was stored from (as `loyalty.outbox.propose` wrote it)."""
    context = json.loads(row.get("context") or "{}")
    chat = _chat_of(context.get("chat"))
    if chat is None and row["kind"] == ActionKind.SEND_CHAT_MESSAGE.value:
        chat = ChatContext()  # stored before contexts were kept: no chat, no times (refused, never sent blind)
    return Action(kind=ActionKind(row["kind"]), marketplace=row["marketplace"], account=row["account"], key=row["key"],
                  target=row["target"], created_at=row["created_at"], text=row["text"], public=bool(row["public"]),
                  purpose=Purpose(row["purpose"]), grounds=frozenset(g for g in (row["grounds"] or "").split(",") if g),
                  cost=Decimal(row["cost"]), chat=chat, params=json.loads(row["params"] or "{}"),
                  title=row["title"] or "", origin=context.get("origin") or {})


def check_at_send(row: Mapping[str, Any], capabilities: Capabilities, settings: ActionSettings, *, now: datetime,
                  spent_by_others: Decimal, repeats: int = 0, gate: Callable[..., Decision] | None = None) -> Decision:
    """The gate's decision on a stored action now (`spent_by_others`: this month's committed cost
    without this action's own; `repeats`: earlier posts of its exact public text on the account within
    the repeat span; `gate`: `loyalty.policy.gate` unless a test stands one in)."""
    if gate is None:
        from loyalty.policy import gate

    return gate(action_of(row), capabilities, settings, now=now, spent_this_month=spent_by_others, repeats=repeats)
