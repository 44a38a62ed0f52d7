"""Replies to reviews from the templates in `[actions.replies]`: one proposed action per unanswered review.

The rating picks the template (thanks, or service recovery for low ratings, which by default waits for
a person's approval); it never picks a benefit, and a reply never carries one. Variables are the
product name, brand and store name only, never anything about the buyer.

A template may hold several wordings. Each reply takes the wording whose text (as filled in) was
used least on its account within `repeat_span`, counting the replies already in the outbox and those
proposed before it in the same round; ties go by the review id, so reviews of one product spread
over the wordings rather than all taking the first.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, false, select

from connectors.capabilities import ActionKind
from loyalty.action_settings import ReplySettings, template_digest
from loyalty.actions import Action, ActionStatus, Purpose
from store import Store
from store.loyalty_tables import ActionRow
from store.tables import ProductRow, ReviewRow

__all__ = ["overdue", "propose_replies", "reply_action", "reply_text"]

REVIEWS: Table = ReviewRow.__table__  # type: ignore[assignment]
PRODUCTS: Table = ProductRow.__table__  # type: ignore[assignment]
ACTIONS: Table = ActionRow.__table__  # type: ignore[assignment]
# Replies that were or will be posted: what a new one must not repeat.
POSTED = (ActionStatus.PENDING, ActionStatus.APPROVED, ActionStatus.DRY_RUN, ActionStatus.SENT)
# The rating chooses the tone only: a reply's grounds name it, and the gate refuses any benefit on it.
GROUNDS = frozenset({"review.rating", "review.product"})


def reply_text(template: str, *, product: str | None, brand: str | None, sku: str, store_name: str) -> str:
    """The template with {product}, {brand}, {store} filled (a missing name falls back to the article)."""
    return template.format(product=_product(product, sku, store_name), brand=(brand or "").strip(),
                           store=store_name).strip()


def _product(name: str | None, sku: str, store_name: str) -> str:
    """What a reply calls the product: its name, else its article; a review of the seller itself,
    tied to no product (Avito's may be), is about the store."""
    return (name or "").strip() or (f"арт. {sku}" if sku.strip() else store_name)


def _spread(review_id: str, n: int) -> int:
    """A stable index in 0..n-1 from the review id (not Python's salted hash: the same every run)."""
    return int.from_bytes(hashlib.sha256(str(review_id).encode()).digest()[:4], "big") % n


def reply_action(review: dict[str, Any], settings: ReplySettings, now: datetime,
                 used: Mapping[str, int] | None = None) -> Action | None:
    """The reply to one review, or None when no template covers its marketplace and rating.

    `used`: how often each text was posted on the review's account lately; the least used wording wins."""
    rating = int(review["rating"])
    template = settings.template_for(review["marketplace"], rating)
    if template is None:
        return None
    mp, acct, rid = review["marketplace"], review["account"], review["review_id"]
    filled = [(wording, reply_text(wording, product=review.get("product_name"), brand=review.get("brand"),
                                   sku=str(review["sku"]), store_name=settings.store_name))
              for wording in template.wordings]
    start = _spread(str(rid), len(filled))
    order = filled[start:] + filled[:start]
    counts = used or {}
    wording, text = min(order, key=lambda pair: counts.get(pair[1], 0))  # min keeps the first of equals
    params: dict[str, Any] = {}
    if template.approval is not None:
        params["approval"] = template.approval
    name = _product(review.get("product_name"), str(review["sku"]), settings.store_name)[:60]
    return Action(kind=ActionKind.REPLY_TO_REVIEW, marketplace=mp, account=acct, key=f"reply:{mp}:{acct}:{rid}",
                  target=str(rid), created_at=now, text=text, public=True, purpose=Purpose.SERVICE,
                  grounds=GROUNDS, params=params, title=f"reply to a {review['rating']}★ review of «{name}»",
                  origin={"template": template_digest(wording, settings.store_name), "rating": rating})


def recent_texts(conn: Any, since: datetime) -> dict[tuple[str, str], Counter[str]]:
    """Per account: how often each public text was posted (or is on its way) since `since`."""
    c = ACTIONS.c
    stmt = select(c.marketplace, c.account, c.text).where(
        c.public.is_(True), c.created_at >= since, c.status.in_([s.value for s in POSTED]), c.text.is_not(None))
    out: dict[tuple[str, str], Counter[str]] = {}
    for mp, acct, text in conn.execute(stmt):
        out.setdefault((mp, acct), Counter())[text] += 1
    return out


def _may_name_the_article(review: dict[str, Any], names: Any, settings: ReplySettings, now: datetime) -> bool:
    """Whether a review nothing names may be answered with its article now (`names`: this round's
    catalog lookup, `loyalty.product_names.NameFill`): when the platform was asked about its SKU and
    settled it, or its account's lookup keeps failing and the review is past the reply target. A
    review synced after the lookup began waits for the next round, so the wording never depends on
    which job ran first."""
    where = (review["marketplace"], review["account"])
    if (*where, str(review["sku"])) in names.sought:
        return True
    created = review["created_at"]
    return where in names.failed and created is not None and now - created > settings.within


def propose_replies(store: Store, settings: ReplySettings, now: datetime, names: Any = None) -> Iterator[Action]:
    """A reply for every unanswered review in the store that has none in the outbox (oldest first).

    The product is named by the review itself where it carries a name (Wildberries), else by the
    name cache (`store.products`: order lines, the platform's catalog).
    """
    if not settings.enabled:
        return
    c, p = REVIEWS.c, PRODUCTS.c
    cached = and_(p.marketplace == c.marketplace, p.account == c.account, p.sku == c.sku)
    stmt = (select(c.marketplace, c.account, c.review_id, c.sku, c.rating, c.product_name, c.brand, c.created_at,
                   p.name.label("cached_name"), p.brand.label("cached_brand"))
            .select_from(REVIEWS.outerjoin(PRODUCTS, cached))
            .where(c.answered == false()).order_by(c.created_at, c.review_id))
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
        replied = select(ACTIONS.c.key).where(ACTIONS.c.kind == ActionKind.REPLY_TO_REVIEW.value)
        proposed = {k for (k,) in conn.execute(replied)}
        used = recent_texts(conn, now - settings.repeat_span)
    for review in rows:
        if f"reply:{review['marketplace']}:{review['account']}:{review['review_id']}" in proposed:
            continue
        cached_name, cached_brand = review.pop("cached_name"), review.pop("cached_brand")
        if not (review["product_name"] or "").strip():
            review["product_name"] = cached_name
        review["brand"] = review["brand"] or cached_brand
        unnamed = not (review["product_name"] or "").strip()
        if unnamed and names is not None and not _may_name_the_article(review, names, settings, now):
            continue
        account = used.setdefault((review["marketplace"], review["account"]), Counter())
        action = reply_action(review, settings, now, account)
        if action is not None:
            account[action.text or ""] += 1
            yield action


def overdue(store: Store, settings: ReplySettings, now: datetime) -> dict[str, int]:
    """Unanswered reviews older than `within`, per marketplace (the reply-time target)."""
    c = REVIEWS.c
    stmt = select(c.marketplace).where(c.answered == false(), c.created_at < now - settings.within)
    out: dict[str, int] = {}
    with store.engine.connect() as conn:
        for (mp,) in conn.execute(stmt):
            out[mp] = out.get(mp, 0) + 1
    return out
