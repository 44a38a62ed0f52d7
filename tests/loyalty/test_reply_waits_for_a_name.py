"""A reply to a review nothing names waits for the round's catalog lookup to settle its SKU, so its
wording never depends on which job ran first (found by the crash harness: a review synced between
the lookup and the planning was answered «арт. …» in one run and by name in the other)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.records import ReviewRecord
from loyalty.action_settings import ReplySettings, ReplyTemplate
from loyalty.product_names import NameFill
from loyalty.replies import propose_replies
from store import PageWrite, Store
from store.store import StreamKey

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
SETTINGS = ReplySettings(store_name="Уютный дом", templates=(ReplyTemplate(ratings=(1, 2, 3, 4, 5),
                                                                             text="Спасибо за «{product}»!"),))


def review(store: Store, rid: str, sku: str, age: timedelta) -> None:
    record = ReviewRecord("yandex_market", "main", rid, sku, 5, "Отлично", "", "", NOW - age, False, None)
    store.write_page(StreamKey("yandex_market", "main", "reviews"), PageWrite(reviews=[record]), now=NOW)


def texts(store: Store, names: NameFill | None) -> dict[str, str]:
    return {a.target: a.text or "" for a in propose_replies(store, SETTINGS, NOW, names)}


def test_a_review_the_lookup_has_not_seen_waits_and_one_it_settled_names_the_article(sqlite_store: Store):
    review(sqlite_store, "R1", "SKU-LAMP", timedelta(hours=3))
    review(sqlite_store, "R2", "SKU-PAN", timedelta(hours=3))
    # The lookup asked about SKU-LAMP (the platform does not know it); SKU-PAN came after it began.
    names = NameFill(sought={("yandex_market", "main", "SKU-LAMP")})
    assert texts(sqlite_store, names) == {"R1": "Спасибо за «арт. SKU-LAMP»!"}
    # Offline planning (no lookup this round) answers both with the article, as before.
    assert set(texts(sqlite_store, None)) == {"R1", "R2"}


def test_a_failing_lookup_holds_young_reviews_and_lets_old_ones_name_the_article(sqlite_store: Store):
    review(sqlite_store, "young", "SKU-A", timedelta(hours=3))
    review(sqlite_store, "old", "SKU-B", SETTINGS.within + timedelta(hours=1))
    names = NameFill(failed=[("yandex_market", "main")])
    assert texts(sqlite_store, names) == {"old": "Спасибо за «арт. SKU-B»!"}


def test_a_review_of_the_seller_tied_to_no_product_is_answered_about_the_store():
    """Avito's reviews are about the seller and may name no listing (sku ""): the reply speaks of
    the store, never of an empty article ("арт. ")."""
    from loyalty.replies import reply_action

    settings = ReplySettings(store_name="Уютный дом")
    review = {"marketplace": "avito", "account": "main", "review_id": "92312343", "sku": "", "rating": 5,
              "product_name": None, "brand": None}
    action = reply_action(review, settings, NOW)
    assert "арт." not in action.text + action.title
    assert "«Уютный дом»" in action.title
    named = reply_action({**review, "sku": "1234567"}, settings, NOW)
    assert "арт. 1234567" in named.text  # a listing with no name still falls back to its article
