"""Seeded dataset behind the Ozon emulator: postings (FBS, rFBS, FBO) whose statuses move with
time, the buyers behind them, and reviews whose comments (the seller's answers) appear later.

Generated once from a seed and kept column-wise in `array`s; JSON is built only for the records of
a page. Statuses are not stored: each posting's status events are offsets from its start, read at
the request's "now". Times are unix microseconds.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left, bisect_right
from collections import namedtuple
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

__all__ = ["DAY", "FBO", "FBS", "HOUR", "RFBS", "US", "Dataset", "Fate", "LateChange", "PostingTable",
           "ReviewTable", "generate", "iso", "mix"]

US = 1_000_000
DAY = 86_400 * US
HOUR = 3600 * US
FBS, RFBS, FBO = 0, 1, 2
_M64 = (1 << 64) - 1


def mix(x: int) -> int:
    """splitmix64 finalizer: a bijection on 64-bit ints, so distinct inputs give distinct values."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def iso(us: int, digits: int = 3) -> str:
    """RFC 3339 UTC with `Z` and `digits` of fraction (0, 3 or 6), as Ozon varies it."""
    text = datetime.fromtimestamp(us // US, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{us % US:06d}"[: digits + 1] if digits else "") + "Z"


def _uuid(a: int, b: int) -> str:
    h = f"{a:016x}{b:016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Fate:
    """How a posting ends."""

    DELIVERED, BUYER_CANCEL, SELLER_CANCEL, OZON_CANCEL, NOT_COLLECTED = range(5)


_FATE_WEIGHTS = (78, 8, 4, 3, 7)


class LateChange(NamedTuple):
    """`times` postings of one list (FBO or FBS/rFBS) created about `age` before `at`, still
    `delivering` until `at`, then delivered or cancelled (`connectors.emulation` `late_change`)."""

    fbo: bool
    times: int
    at: int  # unix microseconds
    age: int  # microseconds


Product = namedtuple("Product", "sku offer_id name price")  # price: Decimal, major units
_CATALOG = (
    ("mug-350", "Кружка керамическая 350 мл", 590), ("plate-26", "Тарелка обеденная 26 см", 390),
    ("polo-m", "Футболка-поло мужская", 1890), ("hoodie", "Худи оверсайз", 3490),
    ("styler-5", "Мультистайлер 5 в 1", 8870), ("yoga-mat", "Коврик для йоги 6 мм", 1290),
    ("cream-75", "Крем для рук 75 мл", 300), ("bricks-420", "Конструктор 420 деталей", 2990),
    ("phone-n12", "Смартфон Note 12", 12990), ("earbuds", "Наушники Bluetooth", 3490),
)
_FIRST = ("Иван", "Мария", "Алексей", "Екатерина", "Дмитрий", "Ольга", "Сергей", "Анна", "Павел",
          "Наталья", "Михаил", "Татьяна")
_LAST = ("Петров", "Смирнов", "Кузнецов", "Попов", "Васильев", "Соколов", "Михайлов", "Новиков",
         "Фёдоров", "Морозов", "Волков", "Лебедев")
_SUBSTATUS = {"awaiting_packaging": "posting_created", "awaiting_deliver": "posting_in_carriage",
              "delivering": "posting_on_way_to_city", "delivered": "posting_delivered",
              "cancelled": "posting_canceled"}


class PostingTable:
    """All postings as parallel columns sorted by their list time (FBS `in_process_at`, FBO
    `created_at`), plus every status event sorted by time for the status-change filter."""

    def __init__(self, seed: int, products: list[Product], n: int, start: int, span: int,
                 buyers: int, shares: tuple[float, float], late: tuple[LateChange, ...] = ()):
        rng = random.Random(seed)
        r = rng.random
        self.products, self._salt, self.buyers = products, mix(seed), buyers
        starts = sorted(start + int(r() * span) for _ in range(n))
        # split[i]: posting i belongs to the previous posting's order (Ozon splits an order into
        # postings numbered -1, -2, ...); part[i] is that number.
        self.split, self.part = array("b", bytes(n)), array("b", [1] * n)
        for i in range(1, n):
            if r() < 0.06:
                starts[i], self.split[i], self.part[i] = starts[i - 1], 1, self.part[i - 1] + 1
        rfbs_share, fbo_share = shares
        scheme, buyer = array("b"), array("i")
        for i in range(n):
            if self.split[i]:
                scheme.append(scheme[i - 1])
                buyer.append(buyer[i - 1])
                continue
            x = r()
            scheme.append(FBO if x < fbo_share else RFBS if x < fbo_share + rfbs_share else FBS)
            buyer.append(int(buyers * r() ** 2))  # skewed: a few buyers come back again and again
        # FBS in whole seconds or milliseconds, FBO in microseconds (ozon.md §6).
        self.t0 = array("q", (t - t % (US if i % 2 else 1000) if scheme[i] != FBO else t
                              for i, t in enumerate(starts)))
        self.scheme, self.buyer = scheme, buyer
        self.fate = array("b", rng.choices(range(5), weights=_FATE_WEIGHTS, k=n))
        # Offsets from t0 of: packed, shipped, arrived at the pickup point, the final event.
        self.t1, self.t2, self.t3, self.end = (array("q") for _ in range(4))
        for fate in self.fate:
            for column, value in zip((self.t1, self.t2, self.t3, self.end), self._timings(r, fate), strict=True):
                column.append(value)
        #: posting number -> (status before, status after) of the postings a LateChange moved
        self.late_changes: dict[str, tuple[str, str]] = {}
        seq, counts, order_ids, next_order = array("i"), {}, array("q"), 70_000_000_000
        for i in range(n):
            if not self.split[i]:
                counts[buyer[i]] = counts.get(buyer[i], 0) + 1
                next_order += 1 + int(r() * 9)
            seq.append(counts[buyer[i]])
            order_ids.append(next_order)
        self.seq, self.order_ids = seq, order_ids
        for change in late:  # before the event index below, which must see the new timings
            self._apply_late_change(change)
        # Every status event, sorted by time, for the last_changed_status_date filter (arrays and
        # an index sort: a list of (time, posting) tuples would cost ~120 bytes per event).
        times, posts = array("q"), array("i")
        for i in range(n):
            for off in self._event_offsets(i):
                times.append(self.t0[i] + off)
                posts.append(i)
        order = sorted(range(len(times)), key=times.__getitem__)
        self.ev_time = array("q", (times[k] for k in order))
        self.ev_post = array("i", (posts[k] for k in order))
        del times, posts, order
        self.fbs = array("i", (i for i in range(n) if scheme[i] != FBO))
        self.fbo = array("i", (i for i in range(n) if scheme[i] == FBO))
        self.fbs_t0 = array("q", (self.t0[i] for i in self.fbs))
        self.fbo_t0 = array("q", (self.t0[i] for i in self.fbo))
        self._by_number: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.t0)

    @staticmethod
    def _timings(r: Any, fate: int) -> tuple[int, int, int, int]:
        """(packed, shipped, arrived, end) offsets; `end` is the final event's."""
        t1 = HOUR + int(r() * 23 * HOUR)
        t2 = t1 + 4 * HOUR + int(r() * 44 * HOUR)
        t3 = t2 + DAY + int(r() * 7 * DAY)
        end = {Fate.DELIVERED: t3, Fate.BUYER_CANCEL: 300 * US + int(r() * (t1 - 300 * US)),
               Fate.SELLER_CANCEL: t1 + int(r() * (t2 - t1)), Fate.OZON_CANCEL: t2 + int(r() * (t3 - t2)),
               Fate.NOT_COLLECTED: t3 + 7 * DAY}[fate]  # kept 7 days at the pickup point
        return t1, t2, t3, end

    def _apply_late_change(self, change: LateChange) -> None:
        """Give `change.times` postings created nearest `change.at - change.age` a final event at
        `change.at`, in transit until then: delivered, or cancelled as lost (every other one)."""
        target = change.at - change.age
        # Created about `age` before the change, and already handed to delivery well before it.
        pool = [i for i in range(len(self.t0)) if (self.scheme[i] == FBO) == change.fbo
                and self.posting_number(i) not in self.late_changes and abs(self.t0[i] - target) <= 2 * DAY
                and self.t0[i] + self.t2[i] < change.at - HOUR]
        if len(pool) < change.times:
            raise ValueError(f"late_change: fewer than {change.times} postings were created around "
                             f"{iso(target)}; generate a longer history")
        for k, i in enumerate(sorted(pool, key=lambda i: (abs(self.t0[i] - target), i))[:change.times]):
            end = change.at - self.t0[i]
            self.fate[i] = Fate.DELIVERED if k % 2 == 0 else Fate.OZON_CANCEL
            # Arrival at the pickup point: the delivery itself for a delivered posting, never for a lost one.
            self.t3[i] = end if self.fate[i] == Fate.DELIVERED else end + DAY
            self.end[i] = end
            after = "delivered" if self.fate[i] == Fate.DELIVERED else "cancelled"
            self.late_changes[self.posting_number(i)] = ("delivering", after)

    def offsets(self, i: int) -> tuple[int, int, int, int]:
        """(packed, shipped, arrived, end) of posting i, microseconds after its t0."""
        return self.t1[i], self.t2[i], self.t3[i], self.end[i]

    def _event_offsets(self, i: int) -> list[int]:
        t1, t2, _, end = self.offsets(i)
        return [0, *(t for t in (t1, t2) if t < end), end]

    def _events(self, i: int) -> list[tuple[int, str, str]]:
        t1, t2, _, end = self.offsets(i)
        fate = self.fate[i]
        out = [(0, "awaiting_packaging", "")]
        out += [(t, s, "") for t, s in ((t1, "awaiting_deliver"), (t2, "delivering")) if t < end]
        final = "delivered" if fate == Fate.DELIVERED else "cancelled"
        sub = "posting_returned_to_warehouse" if fate == Fate.NOT_COLLECTED else ""
        return [*out, (end, final, sub)]

    # --- identities derived from the index ---
    def customer_id(self, k: int) -> int:
        """Buyer k's stable Ozon customer id (what loyalsync must never store)."""
        return 5_100_000_000 + k * 7_919 + self._salt % 7_919

    def buyer_name(self, k: int) -> str:
        return f"{_FIRST[k % len(_FIRST)]} {_LAST[(k // len(_FIRST)) % len(_LAST)]}"

    def buyer_email(self, k: int) -> str:
        return f"buyer{k:04d}.{mix(self._salt ^ k) % 9973}@example.ru"

    def phone(self, i: int) -> str:
        """A posting's substitute number: Ozon issues a fresh one per posting."""
        return f"+79{mix(self._salt + 3 * i) % 10**9:09d}"

    def order_number(self, i: int) -> str:
        # Ozon prefixes a buyer's orders with a buyer-specific number (ozon.md §2.6); here it
        # starts with 0 and is never the customer id.
        prefix = (self.buyer[i] * 387_420_489 + self._salt) % 10**9
        return f"0{prefix:09d}-{self.seq[i]:04d}"

    def posting_number(self, i: int) -> str:
        return f"{self.order_number(i)}-{self.part[i]}"

    def index_of(self, posting_number: str) -> int | None:
        if self._by_number is None:
            self._by_number = {self.posting_number(i): i for i in range(len(self))}
        return self._by_number.get(posting_number)

    def has_customer(self, i: int) -> bool:
        """rFBS postings always carry the buyer; about one FBS posting in ten does; FBO never."""
        return self.scheme[i] == RFBS or (self.scheme[i] == FBS and mix(self._salt ^ (i * 5)) % 10 == 0)

    # --- time ---
    def state(self, i: int, now: int) -> tuple[str, str, int]:
        """(status, substatus, when it was set) as seen at `now`."""
        age = now - self.t0[i]
        at, status, sub = max(e for e in self._events(i) if e[0] <= age)
        return status, sub or _SUBSTATUS[status], self.t0[i] + at

    def final_at(self, i: int) -> int:
        return self.t0[i] + self.end[i]

    def paid_at(self, i: int) -> int:
        """`in_process_at`: payment. FBS lists by it (t0); FBO by `created_at`, paid seconds later."""
        return self.t0[i] if self.scheme[i] != FBO else self.t0[i] + (5 + mix(i) % 25) * US

    def delivered_at(self, i: int) -> int | None:
        """When the buyer got the posting (its final event), None if it is never delivered."""
        return self.final_at(i) if self.fate[i] == Fate.DELIVERED else None

    # --- chat windows (platform_rules.md, Ozon chat); buyer chats live in the emulator ---
    def chat_start_open(self, i: int, now: int) -> bool:
        """Whether the seller may open a chat: FBS/rFBS within 72 h of payment or of delivery."""
        if self.scheme[i] == FBO:
            return False  # only the buyer starts an FBO chat
        paid, delivered = self.paid_at(i), self.delivered_at(i)
        if delivered is None and now >= self.final_at(i):
            return False  # cancelled: no chat to open (an assumption, as for sending)
        return paid <= now <= paid + 3 * DAY or (delivered is not None and delivered <= now <= delivered + 3 * DAY)

    def chat_send_open(self, i: int, now: int, buyer_last: int | None) -> bool:
        """Whether the seller may write now. FBS/rFBS: from payment until 72 h after delivery (or
        until a cancellation, an assumption: the rule names no end for those). Any scheme: within
        48 h of the buyer's last message."""
        if buyer_last is not None and buyer_last <= now <= buyer_last + 2 * DAY:
            return True
        if self.scheme[i] == FBO or now < self.paid_at(i):
            return False
        delivered = self.delivered_at(i)
        if delivered is not None:
            return now <= delivered + 3 * DAY
        return now < self.final_at(i)  # cancelled at final_at; until then still on its way

    def chat_id(self, i: int) -> str:
        """The chat of posting i (one per posting), once someone has opened it."""
        return _uuid(mix(self._salt ^ (i * 17 + 3)), mix(self._salt + i * 31))

    def lines(self, i: int) -> list[tuple[Product, int, Decimal]]:
        """(product, quantity, unit price) of each line; a few lines carry a seller discount."""
        h = mix(self._salt * 7 + i)
        count = 1 + (h % 100 >= 70) + (h % 100 >= 92)
        out = []
        for k in range(count):
            g = mix(h + k)
            product = self.products[(g >> 8) % len(self.products)]
            discount = (0, 0, 0, 10, 15)[(g >> 20) % 5]
            price = (product.price * (100 - discount) / 100).quantize(Decimal("0.01"))
            out.append((product, 1 + (g % 10 >= 8) + (g % 10 >= 9), price))
        return out

    def total(self, i: int) -> Decimal:
        return sum((price * qty for _, qty, price in self.lines(i)), Decimal("0.00"))

    # --- selections; keys are (t0, index) and pages are keyset-paged on them ---
    def page(self, fbo: bool, since: int, to: int, now: int, after: tuple[int, int] | None,
             limit: int, keep: Any = None) -> tuple[list[int], bool]:
        """Up to `limit` postings of one list with since <= t0 <= min(to, now), after `after`."""
        idx, t0s = (self.fbo, self.fbo_t0) if fbo else (self.fbs, self.fbs_t0)
        lo, hi = bisect_left(t0s, since), bisect_right(t0s, min(to, now))
        if after is not None:
            lo = max(lo, bisect_left(t0s, after[0]))
        out: list[int] = []
        for pos in range(lo, hi):
            i = idx[pos]
            if (after is not None and (self.t0[i], i) <= after) or (keep is not None and not keep(i)):
                continue
            out.append(i)
            if len(out) > limit:
                return out[:limit], True
        return out, False

    def changed(self, since: int, to: int, frm: int, till: int, now: int) -> list[int]:
        """FBS/rFBS postings whose latest status change at `now` lies in [frm, till], by key."""
        found = set()
        for k in range(bisect_left(self.ev_time, frm), bisect_right(self.ev_time, min(till, now))):
            i = self.ev_post[k]
            if self.scheme[i] != FBO and since <= self.t0[i] <= to and self.state(i, now)[2] == self.ev_time[k]:
                found.add(i)
        return sorted(found, key=lambda i: (self.t0[i], i))


_TEXTS = {5: ("Отличное качество, как на фото", "Всё подошло, спасибо", ""),
          4: ("В целом хорошо, упаковка помята", ""), 3: ("Нормально за свои деньги",),
          2: ("Размер не соответствует",), 1: ("Пришёл брак, не рекомендую",)}
_THREAD = ("А размер соответствует?", "У меня так же", "Подтверждаю, всё как в описании",
           "А как с доставкой?", "Спасибо, полезный отзыв")
_CLOSING = "Спасибо всем за обсуждение! Ответили на вопросы в карточке товара."
_ANSWERS = ("Спасибо за отзыв! Рады, что товар понравился.",
            "Спасибо! Передали замечание производителю.",
            "Нам жаль, что товар не подошёл. Напишите нам в чат заказа, поможем с возвратом.")


class ReviewTable:
    """Reviews sorted by `published_at`, with their comments as they appear over time."""

    def __init__(self, seed: int, products: list[Product], n: int, start: int, span: int):
        rng = random.Random(seed ^ 0x0201)
        r = rng.random
        self.products, self._salt = products, mix(seed + 11)
        self.published = array("q", sorted(start + int(r() * span) // 1000 * 1000 for _ in range(n)))
        self.product = array("H", (int(r() * len(products)) for _ in range(n)))
        self.stars = array("B", rng.choices((1, 2, 3, 4, 5), weights=(5, 4, 8, 18, 65), k=n))
        # 0: never answered by itself; else the seller's answer appears that long after publishing.
        self.answer_delay = array("q", (0 if r() < 0.35 else 30 * 60 * US + int(r() * 3 * DAY) for _ in range(n)))
        self.rejected = array("b", (r() < 0.06 for _ in range(n)))  # moderation refused the answer
        self.buyer_reply = array("q", (int(r() * 4 * DAY) if r() < 0.1 else -1 for _ in range(n)))
        # A review now and then draws a discussion among buyers, longer than a page of comments
        # (20..100 a page), which the seller closes: the comment list then has several pages.
        self.thread = array("b", (21 + mix(self._salt ^ (i * 7 + 1)) % 25 if mix(self._salt + i * 13) % 30 == 0
                                  else 0 for i in range(n)))
        self.written: dict[int, list[tuple[str, int]]] = {}  # comments posted through the API
        self._by_id: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.published)

    def review_id(self, i: int) -> str:
        return _uuid(mix(self._salt + i), mix(self._salt ^ (i << 1)))

    def index_of(self, review_id: str) -> int | None:
        if self._by_id is None:
            self._by_id = {self.review_id(i): i for i in range(len(self))}
        return self._by_id.get(review_id)

    def visible_end(self, now: int) -> int:
        return bisect_right(self.published, now)

    def comments(self, i: int, now: int) -> list[dict[str, Any]]:
        """The review's comments visible at `now`, oldest first."""
        made = []
        if self.answer_delay[i]:
            text = _ANSWERS[0 if self.stars[i] >= 4 else 1 if self.stars[i] == 3 else 2]
            made.append((self.published[i] + self.answer_delay[i], text, True, bool(self.rejected[i])))
        if self.buyer_reply[i] >= 0:
            made.append((self.published[i] + self.buyer_reply[i] + HOUR, "Спасибо за ответ!", False, False))
        if self.thread[i]:
            step = 5 * HOUR
            made += [(self.published[i] + 2 * HOUR + k * step, _THREAD[k % len(_THREAD)], False, False)
                     for k in range(self.thread[i])]
            if self.answer_delay[i]:
                made.append((self.published[i] + 3 * HOUR + self.thread[i] * step, _CLOSING, True, False))
        made += [(at, text, True, False) for text, at in self.written.get(i, ())]
        out = []
        for k, (at, text, owner, rejected) in enumerate(sorted(made)):
            if at > now:
                continue
            out.append({
                "id": _uuid(mix(self._salt * 3 + i), mix(k + 1)), "text": text,
                "parent_comment_id": "", "is_owner": owner, "is_official": owner,
                "is_published": not rejected, "is_rejected": rejected, "likes_amount": 0,
                "dislikes_amount": 0, "deviation_reason": "нарушает правила" if rejected else "",
                "published_at": iso(at),
            })
        return out

    def status(self, i: int, now: int) -> str:
        if any(c["is_owner"] and not c["is_rejected"] for c in self.comments(i, now)):
            return "PROCESSED"
        return "VIEWED" if now - self.published[i] > 6 * HOUR else "NEW"

    def order_status(self, i: int) -> str:
        return "CANCELLED" if mix(self._salt ^ i) % 10 == 0 else "DELIVERED"

    def record(self, i: int, now: int) -> dict[str, Any]:
        """An item of `reviews[]` in /v2/review/list."""
        h = mix(self._salt * 5 + i)
        texts = _TEXTS[self.stars[i]]
        sku = self.products[self.product[i]].sku
        order_status = self.order_status(i)
        return {
            "id": self.review_id(i),
            # The official example sends sku as a string; the schema says int64 (ozon.md §3.2).
            "sku": str(sku) if h % 4 == 0 else sku,
            "text": texts[h % len(texts)], "published_at": iso(self.published[i]),
            "rating": self.stars[i], "status": self.status(i, now),
            "comments_amount": len(self.comments(i, now)), "photos_amount": h % 7 == 0 and 2 or 0,
            "videos_amount": 0, "order_status": order_status,
            "is_rating_participant": order_status == "DELIVERED",
        }


class Dataset(NamedTuple):
    """The emulator's whole seeded world."""

    products: list[Product]
    postings: PostingTable
    reviews: ReviewTable


def generate(seed: int, postings: int, reviews: int, history_days: int, now: int,
             shares: tuple[float, float] = (0.25, 0.3), late: tuple[LateChange, ...] = ()) -> Dataset:
    """Build the dataset; `now` (unix microseconds) ends the history; `shares` = (rFBS, FBO);
    `late`: old postings that change after `now`."""
    rng = random.Random(seed * 31 + 7)
    products = [
        Product(sku=1_900_000_000 + k * 7_919 + rng.randrange(7_000), offer_id=f"{stem}-{k:02d}",
                name=name, price=Decimal(int(rub * rng.uniform(0.9, 1.2))))
        for k, (stem, name, rub) in enumerate(_CATALOG * 3)
    ]
    start, span = now - history_days * DAY, history_days * DAY
    return Dataset(products,
                   PostingTable(seed, products, postings, start, span, max(3, postings // 4), shares, late),
                   ReviewTable(seed, products, reviews, start, span))
