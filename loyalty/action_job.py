"""One round of actions: plan (replies, chat notices, promo codes, incentives), gate, store, send (live).

Used by the daemon's `actions` job, `loyalsync demo` and `loyalsync actions --plan`. Planning and
gating read and write the store only; sending goes through each account's long-lived connector,
and so does looking up the product names replies need (`loyalty.product_names`), just before
planning wherever connectors are at hand (the daemon, the demo, `run_actions`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from connectors.base import Connector
from connectors.capabilities import Capabilities, Channel
from loyalty.action_settings import ActionSettings
from loyalty.actions import Action
from loyalty.outbox import ExecuteResult, ProposeResult, execute, propose
from loyalty.product_names import NameFill, fill_product_names
from loyalty.replies import propose_replies
from loyalty.return_reports import propose_return_reports
from store import Store

__all__ = ["ActionRound", "plan_actions", "propose_actions", "run_actions"]


@dataclass(slots=True)
class ActionRound:
    proposed: ProposeResult
    executed: ExecuteResult


def plan_actions(store: Store, settings: ActionSettings, capabilities: Mapping[str, Capabilities],
                 now: datetime, names: NameFill | None = None) -> list[Action]:
    """Everything the program would like to do now; the gate decides what of it may happen.

    `names`: this round's product-name lookup; with it, a reply to a review nothing names waits
    until the lookup has settled its SKU (`loyalty.replies`). Without it (`actions --plan`, offline)
    such replies name the article."""
    actions: list[Action] = list(propose_replies(store, settings.replies, now, names))
    if settings.chat.points_notice:
        from loyalty.chat import propose_points_notices

        actions += propose_points_notices(store, settings.chat, settings.replies.store_name, now)
    if settings.promo.enabled:
        from loyalty.promo import propose_promo_codes

        actions += propose_promo_codes(store, settings.promo, {}, now)
    if settings.review_incentives.enabled:
        from loyalty.incentives import propose_review_incentives

        actions += propose_review_incentives(store.engine, capabilities, settings.review_incentives, now)
    if settings.seller_bonus.enabled:
        from loyalty.seller_bonus import propose_seller_bonus

        actions += propose_seller_bonus(store, capabilities, settings.seller_bonus, now)
    # A platform's duty, not a choice of the program: always planned where a platform has one.
    actions += propose_return_reports(store, capabilities, now)
    return [a for a in actions if not _never_offered(a, capabilities)]


def _never_offered(action: Action, capabilities: Mapping[str, Capabilities]) -> bool:
    """Whether the platform says it offers no way at all to do `action` (e.g. no promo-code API and
    no chat on Kaspi): such an action is not planned there, where the gate would refuse one per
    member on every run. A kind the platform does not mention is still planned, and gated."""
    caps = capabilities.get(action.marketplace)
    rule = caps.actions.get(action.kind) if caps is not None else None
    return rule is not None and rule.channel is Channel.NONE


def propose_actions(store: Store, settings: ActionSettings, capabilities: Mapping[str, Capabilities], *,
                    mode: str, now: datetime, names: NameFill | None = None) -> ProposeResult:
    """Plan, gate and store (no network)."""
    return propose(store, plan_actions(store, settings, capabilities, now, names), capabilities, settings,
                   mode=mode, now=now)


async def run_actions(store: Store, settings: ActionSettings, capabilities: Mapping[str, Capabilities],
                      connectors: Mapping[tuple[str, str], Connector], *, mode: str, now: datetime,
                      secrets: Iterable[str] = ()) -> ActionRound:
    """Look up missing product names, then plan, gate, store, and (live) send."""
    names = await fill_product_names(store, connectors, now=now)
    proposed = propose_actions(store, settings, capabilities, mode=mode, now=now, names=names)
    executed = await execute(store, connectors, mode=mode, now=now, settings=settings, secrets=secrets)
    return ActionRound(proposed, executed)
