"""Seeded dataset behind the Wildberries emulator: orders (`emulator_orders`) and reviews.

Reviews are stored like orders, column-wise, and turned into JSON only for the page served.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left, bisect_right
from typing import Any, NamedTuple

from connectors.wildberries.emulator_orders import Fate, OrderTable, Variant
from connectors.wildberries.emulator_values import DAY, MAX_CONFIRM, Product, iso_utc, mix, msk, msk_offset
from connectors.wildberries.emulator_values import products as make_products

__all__ = [
    "ARCHIVE_AFTER", "MAX_CONFIRM", "Dataset", "Fate", "OrderTable", "ReviewTable", "Variant", "generate",
    "iso_utc", "msk", "msk_offset",
]

# "No response to the feedback is received within 30 days" makes it archived (wildberries.md §3).
ARCHIVE_AFTER = 30 * DAY


_REVIEW_TEXTS = {
    5: (("Спасибо, всё подошло", "Удобный", "Нет"),
        ("Отличное качество, как на фото", "Качество, цена", ""),
        ("", "", "")),  # stars only: WB allows reviews without text
    4: (("В целом хорошо, есть мелкие недочёты", "Качество", "Мелкие дефекты"),
        ("Хороший товар, упаковка помята", "Цена", "Упаковка")),
    3: (("Нормально за свои деньги", "Цена", "Качество среднее"),),
    2: (("Размер не соответствует, пришлось вернуть", "", "Маломерит"),),
    1: (("Пришёл брак, не рекомендую", "", "Брак"),),
}
_NAMES = ("Анна", "Николай", "Мария", "Алексей", "Екатерина", "Дмитрий", "Ольга", "Сергей", "Ирина")
_ANSWERS = ("Спасибо за Ваш отзыв!", "Благодарим за оценку, ждём вас снова!",
            "Нам жаль, что товар не подошёл. Напишите нам, пожалуйста, в чат.")
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _b62(x: int, width: int) -> str:
    out = []
    for _ in range(width):
        x, d = divmod(x, 62)
        out.append(_B62[d])
    return "".join(out)


class ReviewTable:
    """Reviews as parallel columns sorted by createdDate, plus answers written through the API."""

    def __init__(self, seed: int, products: list[Product], n: int, start: int, span: int):
        rng = random.Random(seed ^ 0x5EED)
        r = rng.random
        self.products = products
        self._salt = mix(seed + 1)
        self.created = array("q", sorted(start + int(r() * span) for _ in range(n)))
        self.product = array("H", rng.choices(range(len(products)), k=n))
        self.stars = array("B", rng.choices((1, 2, 3, 4, 5), weights=(5, 4, 8, 18, 65), k=n))
        # 0 = the seller never answers by itself; otherwise the answer appears this much later.
        self.answer_delay = array(
            "I", (0 if r() < 0.4 else 1800 + int(r() * 3 * DAY) for _ in range(n))
        )
        self.written: dict[int, str] = {}  # answers posted through the API, by index
        self._by_id: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.created)

    def review_id(self, i: int) -> str:
        """The 20-character feedback id."""
        # 11 base62 digits hold all 64 bits of a bijection, so ids are unique.
        return _b62(mix(self._salt + i), 11) + _b62(mix(self._salt ^ i), 9)

    def index_of(self, review_id: str) -> int | None:
        """Row of a feedback id, or None."""
        if self._by_id is None:  # built on the first write only: most runs never answer
            self._by_id = {self.review_id(i): i for i in range(len(self))}
        return self._by_id.get(review_id)

    def answer_text(self, i: int, now: int) -> tuple[str, bool] | None:
        """(text, editable) of the answer visible at `now`, or None."""
        if i in self.written:
            return self.written[i], True
        delay = self.answer_delay[i]
        if delay and self.created[i] + delay <= now:
            return _ANSWERS[0 if self.stars[i] >= 4 else 1 if self.stars[i] == 3 else 2], False
        return None

    def content(self, i: int) -> tuple[str, str, str, bool]:
        """(text, pros, cons, has photos) of a review: derived from its row."""
        texts = _REVIEW_TEXTS[self.stars[i]]
        h = mix(self._salt * 3 + i)
        return (*texts[h % len(texts)], h % 7 == 0)

    def archived(self, i: int, now: int) -> bool:
        """WB's archive rule: answered, or unanswered for 30 days, or no text and no photos."""
        text, pros, cons, photos = self.content(i)
        return (self.answer_text(i, now) is not None or now - self.created[i] >= ARCHIVE_AFTER
                or not (text or pros or cons or photos))

    def select(self, now: int, answered: bool, nm_id: int | None, date_from: int | None,
               date_to: int | None) -> tuple[list[int], int, int]:
        """Matching indices of GET /api/v1/feedbacks (oldest first), and the counts of
        unanswered and archived reviews.

        WB does not say whether this list holds archived reviews (wildberries.md §3); the
        emulator takes the reading that is hardest on a client: it holds none, so an archived
        review is found only through GET /api/v1/feedbacks/archive.
        """
        visible = self.visible_end(now)
        lo = bisect_left(self.created, date_from) if date_from is not None else 0
        hi = visible if date_to is None else min(visible, bisect_right(self.created, date_to))
        n_archived = sum(1 for i in range(visible) if self.archived(i, now))
        hits = [
            i for i in range(lo, hi)
            if not self.archived(i, now) and (self.answer_text(i, now) is not None) == answered
            and (nm_id is None or self.products[self.product[i]].nm_id == nm_id)
        ]
        return hits, visible - n_archived, n_archived

    def archive(self, now: int, nm_id: int | None) -> list[int]:
        """Archived reviews visible at `now`, oldest first (GET /api/v1/feedbacks/archive)."""
        return [i for i in range(self.visible_end(now)) if self.archived(i, now)
                and (nm_id is None or self.products[self.product[i]].nm_id == nm_id)]

    def visible_end(self, now: int) -> int:
        """Index one past the last review created at or before `now`."""
        return bisect_right(self.created, now)

    def record(self, i: int, now: int) -> dict[str, Any]:
        """A `data.feedbacks[]` item."""
        p, stars, h = self.products[self.product[i]], self.stars[i], mix(self._salt * 3 + i)
        text, pros, cons, photo = self.content(i)
        answer = self.answer_text(i, now)
        photos = f"https://feedback04.wbbasket.ru/vol{h % 2000}/part{h % 200000}/{p.nm_id}/photos"
        return {
            "id": self.review_id(i), "text": text, "pros": pros, "cons": cons,
            "productValuation": stars, "createdDate": msk_offset(self.created[i]),
            "answer": None if answer is None
            else {"text": answer[0], "state": "wbRu", "editable": answer[1]},
            "state": "wbRu" if answer else "none",
            "productDetails": {
                "imtId": p.imt_id, "nmId": p.nm_id, "productName": p.name,
                "supplierArticle": p.article, "supplierName": "ИП Кружинин В. Р.",
                "brandName": p.brand, "size": p.size,
            },
            "video": None, "wasViewed": answer is not None or h % 3 == 0,
            "photoLinks": [{"fullSize": f"{photos}/fs.webp", "miniSize": f"{photos}/ms.webp"}]
            if photo else None,
            "userName": _NAMES[h % len(_NAMES)],
            "orderStatus": "buyout" if stars > 2 or h % 2 else "returned",
            "matchingSize": "" if p.size == "0" else ("ok", "smaller", "bigger")[h % 3],
            "isAbleSupplierFeedbackValuation": False, "supplierFeedbackValuation": 0,
            "isAbleSupplierProductValuation": False, "supplierProductValuation": 0,
            "isAbleReturnProductOrders": False, "returnProductOrdersDate": None,
            "bables": ["цена"] if h % 5 == 0 else None,
            "lastOrderShkId": 30_000_000_000 + h % 9_000_000_000,
            "lastOrderCreatedAt": msk_offset(self.created[i] - DAY - h % (6 * DAY)),
            "color": p.color, "subjectId": p.subject_id, "subjectName": p.subject,
            "parentFeedbackId": None, "childFeedbackId": None,
        }


class Dataset(NamedTuple):
    """The emulator's whole seeded world."""

    products: list[Product]
    orders: OrderTable
    reviews: ReviewTable


def generate(seed: int, orders: int, reviews: int, history_days: int, now: int) -> Dataset:
    """Build the dataset; `now` (unix seconds) is the end of the history window."""
    rng = random.Random(seed)
    products = make_products(rng, 48)
    start, span = now - history_days * DAY, history_days * DAY
    return Dataset(products, OrderTable(seed, products, orders, start, span),
                   ReviewTable(seed, products, reviews, start, span))
