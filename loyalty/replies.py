"""Replies to reviews from the templates in `[actions.replies]`: one proposed action per unanswered review.

The rating picks the template (thanks, or service recovery for low ratings, which by default waits for
a person's approval); it never picks a benefit, and a reply never carries one. Variables are the
product name, brand and store name only, never anything about the buyer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, false, select

from loyalty.action_settings import ReplySettings
from loyalty.actions import Action, Kind, Purpose
from sync.store.tables import ProductRow, ReviewRow

__all__ = ["overdue", "propose_replies", "reply_action", "reply_text"]

REVIEWS: Table = ReviewRow.__table__  # type: ignore[assignment]
PRODUCTS: Table = ProductRow.__table__  # type: ignore[assignment]
# The rating chooses the tone only: a reply's grounds name it, and the gate refuses any benefit on it.
GROUNDS = frozenset({"review.rating", "review.product"})


def reply_text(template: str, *, product: str | None, brand: str | None, sku: str, store_name: str) -> str:
    """The template with {product}, {brand}, {store} filled (a missing name falls back to the article)."""
    return template.format(product=(product or "").strip() or f"арт. {sku}", brand=(brand or "").strip(),
                           store=store_name).strip()


def reply_action(review: dict[str, Any], settings: ReplySettings, now: datetime) -> Action | None:
    """The reply to one review, or None when no template covers its marketplace and rating."""
    template = settings.template_for(review["marketplace"], int(review["rating"]))
    if template is None:
        return None
    mp, acct, rid = review["marketplace"], review["account"], review["review_id"]
    text = reply_text(template.text, product=review.get("product_name"), brand=review.get("brand"),
                      sku=str(review["sku"]), store_name=settings.store_name)
    params: dict[str, Any] = {}
    if template.approval is not None:
        params["approval"] = template.approval
    name = (review.get("product_name") or f"арт. {review['sku']}")[:60]
    return Action(kind=Kind.REPLY_TO_REVIEW, marketplace=mp, account=acct, key=f"reply:{mp}:{acct}:{rid}",
                  target=str(rid), created_at=now, text=text, public=True, purpose=Purpose.SERVICE,
                  grounds=GROUNDS, params=params, title=f"reply to a {review['rating']}★ review of «{name}»")


def propose_replies(store: Any, settings: ReplySettings, now: datetime) -> Iterator[Action]:
    """A reply for every unanswered review in the store (oldest first).

    The product is named by the review itself where it carries a name (Wildberries), else by the
    name cache (`sync.store.products`: order lines, the platform's catalog).
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
    for review in rows:
        cached_name, cached_brand = review.pop("cached_name"), review.pop("cached_brand")
        if not (review["product_name"] or "").strip():
            review["product_name"] = cached_name
        review["brand"] = review["brand"] or cached_brand
        action = reply_action(review, settings, now)
        if action is not None:
            yield action


def overdue(store: Any, settings: ReplySettings, now: datetime) -> dict[str, int]:
    """Unanswered reviews older than `within`, per marketplace (the reply-time target)."""
    c = REVIEWS.c
    stmt = select(c.marketplace).where(c.answered == false(), c.created_at < now - settings.within)
    out: dict[str, int] = {}
    with store.engine.connect() as conn:
        for (mp,) in conn.execute(stmt):
            out[mp] = out.get(mp, 0) + 1
    return out
