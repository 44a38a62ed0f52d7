"""The policy gate: one pure function over (action, capabilities, settings) -> approved, or refused with a reason.

`gate` runs these checks in order; the first that fails decides the refusal:

1. **ops task** — `ActionKind.OPS_TASK` is for a person and is always approved.
2. **reward conditioned on a review** (DESIGN invariant 4) — a benefit (a kind in `BENEFIT_KINDS`,
   `purpose == REWARD`, `cost > 0`, or a text offering one, `text_checks.find_promotion`) whose `grounds`
   name a review field (`review.*`, `feedback.*`, or a part like `rating`, `stars`, `text`, `sentiment`,
   `pros`, `cons`) ->
   `REWARD_CONDITIONED_ON_RATING`. Checked before the capability so that a rating-based benefit is never
   turned into an ops task through `CABINET_ONLY`. A reply whose *tone* follows the rating is fine.
   Then **a benefit promised for a review**: a reply to a review (or any public text) whose text offers
   points, cashback, a discount, a gift, free delivery, a promo code or a sale (`text_checks.find_benefit`)
   -> `REWARD_FOR_REVIEW`, whatever the grounds: on WB, Ozon and Market a reward for a review outside the
   platform's own program is forbidden.
3. **capability** — the action's `ActionKind` (reply -> `REPLY_TO_REVIEW`, promo code -> `CREATE_PROMO_CODE`,
   chat message -> `SEND_CHAT_MESSAGE`): `Channel.NONE` -> `NOT_OFFERED`, `Channel.CABINET` -> `CABINET_ONLY`,
   an API the connector does not carry out (`Capabilities.writes`) -> `NOT_SUPPORTED`.
   A chat message with no chat yet (`action.chat` is None or `chat_exists` is False) also starts one:
   `chat.seller_may_start` False, or a fulfilment scheme the `START_CHAT` note names as buyer-only
   ("FBO: only the buyer starts a chat") -> `CHAT_START_NOT_ALLOWED`; then the `START_CHAT` channel as above.
   Then **the template**: a reply made from a template (`action.origin`) whose text the configuration no
   longer holds for its rating, or replies switched off -> `TEMPLATE_WITHDRAWN` (matters at send time).
4. **text** — limits from the action's rule (for chat, `SEND_CHAT_MESSAGE`'s); an action with text but no
   `TextLimits` gets the content checks with everything off. Length is `len(text.strip())` in Python code
   points (assumed to match the platforms' "characters"; no platform documents its counting; None counts as
   empty): `TEXT_TOO_SHORT`, `TEXT_TOO_LONG`;
   then `CONTAINS_LINK` unless `links_allowed`, `CONTAINS_PHONE` and `CONTAINS_EMAIL` unless
   `contacts_allowed`, `CONTAINS_PERSONAL_DATA` always (includes messenger handles and off-platform
   invitations, see `loyalty.text_checks`), `PROMO_CODE_IN_PUBLIC_REPLY` for a public text unless both
   `settings.promo_codes_in_replies` and the platform's `promo_codes_allowed` (a review reply with a promo
   code is already `REWARD_FOR_REVIEW`). Then a public text already posted `repeats` times on the account
   within `replies.repeat_span`, more than `replies.max_repeats` -> `REPEATED_TEXT`.
5. **chat** — starting a chat outside `start_window` after `paid_at` or after `delivered_at` (no known time:
   outside); writing into an existing chat when `reply_window` is set, later than `reply_window` after
   the buyer's last message, unless the seller could start a chat for this order and the order is between
   payment and `start_window` after delivery (Ozon FBS/rFBS) -> `CHAT_OUTSIDE_WINDOW`. Then a marketing
   message (declared so, or whose text offers a benefit or promotes a sale, `text_checks.find_promotion`:
   content decides, not the label; a statement of points credited is not an offer) without both
   `settings.marketing_consent` and the buyer's recorded consent, on a platform whose
   `chat.marketing_needs_consent` (the default) -> `MARKETING_WITHOUT_CONSENT`.
6. **budget** — an action with `cost > 0` when `spent_this_month + cost > settings.monthly_budget`
   -> `OVER_BUDGET` (a free action cannot go over budget).

No check branches on a platform's name; everything comes from `Capabilities`. The executor runs the
same gate again right before each send, with the settings and capabilities in force then
(`loyalty.send_check`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from connectors.capabilities import ActionKind, Capabilities, Channel, TextLimits
from loyalty.action_settings import ActionSettings
from loyalty.actions import BENEFIT_KINDS, Action, ChatContext, Decision, Purpose, Refusal
from loyalty.text_checks import (
    find_benefit,
    find_email,
    find_link,
    find_personal_data,
    find_phone,
    find_promo_code,
    find_promotion,
)

__all__ = ["gate", "is_review_field"]

_NOUNS = {  # (plural, singular)
    ActionKind.REPLY_TO_REVIEW: ("review replies", "reply"),
    ActionKind.CREATE_PROMO_CODE: ("promo codes", "promo code"),
    ActionKind.SEND_CHAT_MESSAGE: ("chat messages", "chat message"),
}
_NO_LIMITS = TextLimits(min_chars=0, max_chars=10**9)
_REVIEW_ROOTS = frozenset({"review", "reviews", "feedback", "feedbacks", "отзыв"})
_REVIEW_PARTS = frozenset({"rating", "ratings", "stars", "star", "text", "sentiment", "pros", "cons", "score",
                           "grade", "tone", "оценка"})
_BUYER_ONLY = re.compile(r"\b([A-Za-z]+(?:/[A-Za-z]+)*):\s*only the buyer (?:starts|can start)")


def is_review_field(ground: str) -> bool:
    """Whether a `grounds` entry names something from a review (its rating, text, sentiment...)."""
    parts = [p for p in re.split(r"[.\-_\s\[\]]+", ground.lower()) if p]
    return bool(parts) and (parts[0] in _REVIEW_ROOTS or any(p in _REVIEW_PARTS for p in parts))


def gate(action: Action, capabilities: Capabilities, settings: ActionSettings, *, now: datetime,
         spent_this_month: Decimal = Decimal(0), forbidden_words: Iterable[str] = (), repeats: int = 0) -> Decision:
    """Approve `action` or refuse it with the first failing check (order in the module docstring).

    `forbidden_words` are words the text must not contain, e.g. the buyer's name (Action has no field
    for it). `now` is timezone-aware; `spent_this_month` is what actions already gave away this month;
    `repeats` how many earlier actions on the account posted this exact public text within
    `replies.repeat_span`.
    """
    if action.kind is ActionKind.OPS_TASK:
        return Decision.ok()
    platform = capabilities.marketplace.replace("_", " ").title()
    rule = capabilities.rule(action.kind)
    refusal = (_check_review_grounds(action, platform)
               or _check_benefit_for_review(action, platform)
               or _check_capability(action, capabilities, platform)
               or _check_template(action, settings)
               or _check_text(action, rule.text, settings, platform, tuple(forbidden_words))
               or _check_repeats(action, settings, platform, repeats)
               or _check_chat(action, capabilities, settings, platform, now)
               or _check_budget(action, settings, platform, spent_this_month))
    return refusal or Decision.ok()


def _check_benefit_for_review(action: Action, platform: str) -> Decision | None:
    """A reply to a review (or any public text) that promises a benefit is a reward for the review:
    forbidden outside the platform's own program, and fined when it follows the rating."""
    if not (action.kind is ActionKind.REPLY_TO_REVIEW or action.public) or not action.text:
        return None
    found = find_benefit(action.text)
    if found is None:
        return None
    return Decision.refuse(
        Refusal.REWARD_FOR_REVIEW,
        f"On {platform} a reply to a review must not promise the buyer anything; this one offers "
        f"{found.kind.replace('_', ' ')} (“{_clip(found.fragment)}”). Rewards for reviews go only through "
        f"the platform's own program.")


def _check_template(action: Action, settings: ActionSettings) -> Decision | None:
    """A reply made from a template is sent only while the configuration still holds that text
    (checked again at send time: a template replaced or replies switched off withdraws it)."""
    digest, rating = action.origin.get("template"), action.origin.get("rating")
    if action.kind is not ActionKind.REPLY_TO_REVIEW or digest is None:
        return None
    if isinstance(rating, int) and digest in settings.replies.digests_for(action.marketplace, rating):
        return None
    why = ("replies are switched off" if not settings.replies.enabled
           else "its template text or the store name changed in [actions.replies]")
    return Decision.refuse(Refusal.TEMPLATE_WITHDRAWN,
                           f"This reply was written from a template the configuration no longer holds ({why}); "
                           f"a new reply is proposed from the current templates.")


def _check_repeats(action: Action, settings: ActionSettings, platform: str, repeats: int) -> Decision | None:
    limit = settings.replies.max_repeats
    if not action.public or repeats <= limit:
        return None
    return Decision.refuse(
        Refusal.REPEATED_TEXT,
        f"This exact text was already posted {repeats} times on this {platform} account within "
        f"{settings.replies.repeat_span.days} days (at most {limit} repeats): {platform} may restrict sellers "
        f"who post repetitive replies. Add wordings to the template.")


def _check_review_grounds(action: Action, platform: str) -> Decision | None:
    review_grounds = sorted(g for g in action.grounds if is_review_field(g))
    if not review_grounds:
        return None
    _, single = _NOUNS[action.kind]
    if action.kind in BENEFIT_KINDS:
        benefit = f"a {single}"
    elif action.purpose is Purpose.REWARD:
        benefit = "a reward"
    elif action.cost > 0:
        benefit = f"something worth {action.cost}"
    elif action.text and (found := find_promotion(action.text)):
        benefit = f"{found.kind.replace('_', ' ')} (“{_clip(found.fragment)}”)"
    else:
        return None
    return Decision.refuse(
        Refusal.REWARD_CONDITIONED_ON_RATING,
        f"On {platform} a benefit must never depend on a review; this {single} gives {benefit} "
        f"and was decided on {', '.join(review_grounds)}.")


def _channel_refusal(capabilities: Capabilities, kind: ActionKind, platform: str, what: str) -> Decision | None:
    rule = capabilities.rule(kind)
    note = f" ({rule.note})" if rule.note else ""
    if rule.channel is Channel.NONE:
        return Decision.refuse(Refusal.NOT_OFFERED, f"{platform} offers no way to {what}{note}.")
    if rule.channel is Channel.CABINET:
        return Decision.refuse(Refusal.CABINET_ONLY,
                               f"On {platform} only a person in the seller cabinet can {what}{note}.")
    return None


def _support_refusal(capabilities: Capabilities, kind: ActionKind, platform: str, what: str) -> Decision | None:
    if capabilities.implements(kind):
        return None
    return Decision.refuse(Refusal.NOT_SUPPORTED,
                           f"{platform}'s API can {what}, but loyalsync's {platform} connector does not do it "
                           f"yet; do it in the seller cabinet if it is needed.")


def _buyer_only_schemes(capabilities: Capabilities) -> frozenset[str]:
    """Fulfilment schemes the START_CHAT note says only the buyer may open a chat for (e.g. Ozon FBO)."""
    note = capabilities.rule(ActionKind.START_CHAT).note
    return frozenset(s.lower() for m in _BUYER_ONLY.finditer(note) for s in m.group(1).split("/"))


def _seller_may_start(capabilities: Capabilities, chat: ChatContext) -> bool:
    scheme = (chat.fulfilment or "").lower()
    return capabilities.chat.seller_may_start and scheme not in _buyer_only_schemes(capabilities)


def _check_capability(action: Action, capabilities: Capabilities, platform: str) -> Decision | None:
    """The platform's rules first (why it can never happen), then whether the connector implements it."""
    kind = action.kind
    what = {ActionKind.REPLY_TO_REVIEW: "reply to a review", ActionKind.CREATE_PROMO_CODE: "create a promo code",
            ActionKind.SEND_CHAT_MESSAGE: "send a chat message"}[action.kind]
    if refusal := _channel_refusal(capabilities, kind, platform, what):
        return refusal
    chat = action.chat or ChatContext()
    if action.kind is not ActionKind.SEND_CHAT_MESSAGE or chat.chat_exists:
        return _support_refusal(capabilities, kind, platform, what)
    if not capabilities.chat.seller_may_start:
        return Decision.refuse(Refusal.CHAT_START_NOT_ALLOWED,
                               f"On {platform} only the buyer can start a chat, and there is none for "
                               f"{action.target} yet.")
    if not _seller_may_start(capabilities, chat):
        return Decision.refuse(Refusal.CHAT_START_NOT_ALLOWED,
                               f"On {platform} only the buyer can start a chat for {chat.fulfilment} orders, "
                               f"and there is none for {action.target} yet.")
    return (_channel_refusal(capabilities, ActionKind.START_CHAT, platform, "start a chat")
            or _support_refusal(capabilities, kind, platform, what)
            or _support_refusal(capabilities, ActionKind.START_CHAT, platform, "start a chat"))


def _check_text(action: Action, limits: TextLimits | None, settings: ActionSettings, platform: str,
                forbidden_words: tuple[str, ...]) -> Decision | None:
    if limits is None and action.text is None:
        return None
    text = (action.text or "").strip()
    plural, single = _NOUNS[action.kind]
    if limits is not None:
        n = len(text)
        bounds = f"{platform} {plural} are {limits.min_chars}–{limits.max_chars} characters; this one has {n}."
        if n < limits.min_chars:
            return Decision.refuse(Refusal.TEXT_TOO_SHORT, bounds)
        if n > limits.max_chars:
            return Decision.refuse(Refusal.TEXT_TOO_LONG, bounds)
    rules = limits or _NO_LIMITS
    if not text:
        return None
    if not rules.links_allowed and (found := find_link(text)):
        return Decision.refuse(Refusal.CONTAINS_LINK,
                               f"{platform} {plural} may not contain links; this one has “{_clip(found)}”.")
    if not rules.contacts_allowed and (found := find_phone(text)):
        return Decision.refuse(Refusal.CONTAINS_PHONE,
                               f"{platform} {plural} may not contain phone numbers; this one has “{found}”.")
    if not rules.contacts_allowed and (found := find_email(text)):
        return Decision.refuse(Refusal.CONTAINS_EMAIL,
                               f"{platform} {plural} may not contain e-mail addresses; this one has “{found}”.")
    if found := find_personal_data(text, forbidden_words):
        return Decision.refuse(Refusal.CONTAINS_PERSONAL_DATA,
                               f"{platform} {plural} may not carry personal data or move the buyer off "
                               f"{platform}; this one has “{found}”.")
    if action.public and (found := find_promo_code(text)):
        if not settings.promo_codes_in_replies:
            why = "they are off in [actions] promo_codes_in_replies"
        elif not rules.promo_codes_allowed:
            why = f"{platform}'s rule for them is not confirmed"
        else:
            return None
        return Decision.refuse(Refusal.PROMO_CODE_IN_PUBLIC_REPLY,
                               f"Promo codes in public {plural} on {platform} are refused because {why}; "
                               f"this {single} has “{_clip(found)}”.")
    return None


def _within(t: datetime | None, now: datetime, window: timedelta) -> bool:
    return t is not None and now - t <= window


def _check_chat(action: Action, capabilities: Capabilities, settings: ActionSettings, platform: str,
                now: datetime) -> Decision | None:
    if action.kind is not ActionKind.SEND_CHAT_MESSAGE:
        return None
    chat = action.chat or ChatContext()
    rules = capabilities.chat
    if not chat.chat_exists and rules.start_window is not None:
        window = rules.start_window
        if not (_within(chat.paid_at, now, window) or _within(chat.delivered_at, now, window)):
            return Decision.refuse(
                Refusal.CHAT_OUTSIDE_WINDOW,
                f"On {platform} a seller may start a chat only within {_span(window)} after payment or "
                f"delivery; this order was {_times(chat)}.")
    if chat.chat_exists and rules.reply_window is not None:
        window = rules.reply_window
        order_open = (rules.start_window is not None and _seller_may_start(capabilities, chat)
                      and chat.paid_at is not None and chat.paid_at <= now
                      and (chat.delivered_at is None or _within(chat.delivered_at, now, rules.start_window)))
        if not (order_open or _within(chat.last_buyer_message_at, now, window)):
            last = (f"the buyer last wrote {_at(chat.last_buyer_message_at)}" if chat.last_buyer_message_at
                    else "the buyer has not written")
            return Decision.refuse(
                Refusal.CHAT_OUTSIDE_WINDOW,
                f"On {platform} a seller may write only within {_span(window)} of the buyer's last message "
                f"(or while the order is open); {last}.")
    # Content decides what a message is, not its declared purpose: an offer or a sale is marketing.
    promotion = find_promotion(action.text) if action.text else None
    if ((action.purpose is Purpose.MARKETING or promotion is not None) and rules.marketing_needs_consent
            and not (settings.marketing_consent and chat.buyer_consented_to_marketing)):
        why = ("[actions] marketing_consent is off" if not settings.marketing_consent
               else "this buyer has not consented")
        what = (f"This message offers {promotion.kind.replace('_', ' ')} (“{_clip(promotion.fragment)}”), which "
                f"makes it marketing whatever its declared purpose; m" if promotion is not None else "M")
        return Decision.refuse(
            Refusal.MARKETING_WITHOUT_CONSENT,
            f"{what}arketing messages on {platform} need the buyer's recorded consent (38-FZ art. 18); {why}.")
    return None


def _check_budget(action: Action, settings: ActionSettings, platform: str, spent: Decimal) -> Decision | None:
    budget = settings.monthly_budget
    if budget is None or action.cost <= 0 or spent + action.cost <= budget:
        return None
    _, single = _NOUNS[action.kind]
    return Decision.refuse(
        Refusal.OVER_BUDGET,
        f"The monthly budget is {budget} ₽; {spent} ₽ spent this month plus {action.cost} ₽ for this "
        f"{platform} {single} would make {spent + action.cost} ₽.")


def _clip(fragment: str, limit: int = 60) -> str:
    return fragment if len(fragment) <= limit else fragment[:limit - 1] + "…"


def _span(window: timedelta) -> str:
    hours = window.total_seconds() / 3600
    return f"{hours:g} h"


def _at(t: datetime) -> str:
    return f"{t.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _times(chat: ChatContext) -> str:
    parts = [f"paid {_at(chat.paid_at)}" if chat.paid_at else "not known to be paid",
             f"delivered {_at(chat.delivered_at)}" if chat.delivered_at else "not delivered"]
    return " and ".join(parts)
