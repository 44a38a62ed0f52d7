"""Seeded dataset behind the Yandex Market emulator: buyers, orders and their fates, reviews.

Generated once from a seed and kept column-wise; JSON is built only for the records of a page.
Statuses are not stored: each order has a fate and the times of its steps, and what the API
shows is computed from the request's "now", so the same data seen later has moved on (orders
get shipped, delivered, cancelled, returned; reviews get published and answered).
"""

from __future__ import annotations

import random
import time
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACTIVE", "CAMPAIGNS", "Buyers", "Chats", "Dataset", "OrderTable", "ReviewTable", "generate",
    "market_iso",
]

DAY = 86400
MSK_OFFSET = 3 * 3600
ACTIVE = frozenset({"PROCESSING", "DELIVERY", "PICKUP"})
PROGRAMS = ("FBS", "FBY", "DBS", "EXPRESS")
CAMPAIGNS = {"FBS": 21500001, "FBY": 21500002, "DBS": 21500003, "EXPRESS": 21500004}
_PROGRAM_WEIGHTS = (45, 20, 25, 10)
# Fates: 0 delivered, 1 cancelled by the buyer before shipping, 2 cancelled by the shop,
# 3 cancelled in delivery (refused or undelivered), 4 returned, 5 partially returned.
_FATE_WEIGHTS = (76, 8, 4, 5, 4, 3)
_M64 = (1 << 64) - 1
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# Names chosen so that none is part of another generated text: the end-to-end test looks for
# every one of them in every stored column.
_LAST = ("Иванова", "Петров", "Смирнова", "Кузнецов", "Соколова", "Лебедев", "Новикова", "Морозов",
         "Волкова", "Зайцев", "Павлова", "Семёнов")
_FIRST = ("Анна", "Павел", "Мария", "Игорь", "Елена", "Олег", "Дарья", "Тимур", "Вера", "Глеб")
_MIDDLE = ("Сергеевна", "Андреевич", "Викторовна", "Ильич", "Олеговна", "Петрович")
_OFFERS = (  # offerId stem, name, list price in roubles
    ("LAMP-G4", "Лампа галогеновая G4 20Вт", 119), ("KETTLE-17", "Чайник электрический 1.7 л", 2490),
    ("TOWEL-70", "Полотенце махровое 70x140", 899), ("MUG-350", "Кружка керамическая 350 мл", 459),
    ("CABLE-C", "Кабель USB-C 1 м", 349), ("PAN-28", "Сковорода с антипригарным покрытием 28 см", 3190),
    ("SOCKS-5", "Носки хлопковые, 5 пар", 599), ("BULB-E27", "Лампа светодиодная E27 12Вт", 189),
)
_REVIEWS = {
    5: (("Пришла быстро, всё работает.", "Яркая", "Нет"), ("Отличное качество", "Цена", ""),
        ("", "", "")),
    4: (("Хорошо, но упаковка помята", "Качество", "Упаковка"),),
    3: (("Нормально за свои деньги", "Цена", "Среднее качество"),),
    2: (("Не соответствует описанию", "", "Описание"),),
    1: (("Пришёл брак", "", "Брак"),),
}
_ANSWERS = ("Спасибо за отзыв!", "Благодарим за оценку!", "Жаль, что товар подвёл. Напишите нам в чат заказа.")
_SHOP = "Мой магазин"
_RETURN_BASE = 8_100_000  # return ids are this plus the order's row: distinct, and easy to invert


def _mix(x: int) -> int:
    """splitmix64 finalizer: a bijection on 64-bit ints, so distinct inputs give distinct ids."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def market_iso(ts: int) -> str:
    """Market's timestamps: ISO 8601 in Moscow time with +03:00."""
    t = time.gmtime(ts + MSK_OFFSET)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T{t[3]:02d}:{t[4]:02d}:{t[5]:02d}+03:00"


def _date(ts: int) -> str:
    t = time.gmtime(ts + MSK_OFFSET)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}"


def _money(kop: int) -> dict[str, Any]:
    return {"value": kop / 100, "currencyId": "RUR"}


class Buyers:
    """People who order; each has a stable id, a name and a substitute phone."""

    def __init__(self, seed: int, n: int):
        rng = random.Random(seed ^ 0xB0B)
        self._salt = _mix(seed + 77)
        self.names = [(rng.randrange(len(_LAST)), rng.randrange(len(_FIRST)), rng.randrange(len(_MIDDLE)))
                      for _ in range(n)]
        self.trusted = [rng.random() < 0.2 for _ in range(n)]

    def __len__(self) -> int:
        return len(self.names)

    def buyer_id(self, b: int) -> str:
        """22 characters, like Market's buyer ids."""
        x, y, out = _mix(self._salt + b), _mix(self._salt ^ (b << 7)), []
        for _ in range(11):
            x, d = divmod(x, 62)
            out.append(_B62[d])
        for _ in range(11):
            y, d = divmod(y, 62)
            out.append(_B62[d])
        return "".join(out)

    def phone(self, b: int) -> str:
        return f"+7999{_mix(self._salt * 3 + b) % 10_000_000:07d}"

    def name(self, b: int) -> tuple[str, str, str]:
        """(last, first, middle)."""
        last, first, middle = self.names[b]
        return _LAST[last], _FIRST[first], _MIDDLE[middle]

    def info(self, b: int) -> dict[str, Any]:
        """`OrderBuyerInfoDTO`."""
        last, first, middle = self.name(b)
        return {"id": self.buyer_id(b), "lastName": last, "firstName": first, "middleName": middle,
                "type": "PERSON", "phone": self.phone(b), "trusted": self.trusted[b]}


@dataclass(frozen=True, slots=True)
class Step:
    at: int  # unix seconds
    status: str
    substatus: str | None


class OrderTable:
    """Orders sorted by creation time (and so by orderId)."""

    def __init__(self, seed: int, buyers: Buyers, n: int, start: int, span: int, dbs_share: float):
        rng = random.Random(seed)
        r = rng.random
        self.buyers = buyers
        self.created = array("q", sorted(start + int(r() * span) for _ in range(n)))
        ids, next_id = array("q"), 55_113_000_000 + rng.randrange(1_000_000)
        for _ in range(n):
            next_id += 1 + int(r() * 9)
            ids.append(next_id)
        self.ids = ids
        rest = 1 - dbs_share
        weights = [w * rest / (100 - _PROGRAM_WEIGHTS[2]) for w in _PROGRAM_WEIGHTS]
        weights[2] = dbs_share
        self.program = array("B", rng.choices(range(len(PROGRAMS)), weights=weights, k=n))
        self.buyer = array("I", (rng.randrange(len(buyers)) for _ in range(n)))
        self.fate = array("B", rng.choices(range(len(_FATE_WEIGHTS)), weights=_FATE_WEIGHTS, k=n))
        self.pickup = array("B", (r() < 0.6 for _ in range(n)))
        # Step times after creation: ready to ship, handed to delivery, at the pickup point,
        # delivered, and the fate's own moment (cancel or return).
        self.steps = [self._times(r, self.fate[i]) for i in range(n)]
        self.lines: list[tuple[tuple[int, int, int, int], ...]] = [
            tuple(self._line(rng) for _ in range(1 + int(r() ** 2 * 3))) for _ in range(n)
        ]
        # A partial return needs an order of two units at least: a single unit becomes two (no
        # draw from `rng`, so every other order of the seed stays as it was).
        for i in range(n):
            if self.fate[i] == 5 and len(self.lines[i]) == 1 and self.lines[i][0][1] == 1:
                offer, _, unit, cashback = self.lines[i][0]
                self.lines[i] = ((offer, 2, unit, cashback),)
        self.notes = array("B", (r() < 0.1 for _ in range(n)))

    @staticmethod
    def _times(r: Any, fate: int) -> tuple[int, int, int, int, int]:
        ready = 1800 + int(r() * DAY)
        shipped = ready + 6 * 3600 + int(r() * 2 * DAY)
        at_point = shipped + DAY + int(r() * 2 * DAY)
        delivered = at_point + int(r() * 4 * DAY)
        end = {1: 300 + int(r() * (ready - 300)), 2: 600 + int(r() * (shipped - 600)),
               3: shipped + int(r() * (delivered - shipped)) + 1,
               4: delivered + 2 * DAY + int(r() * 8 * DAY), 5: delivered + 2 * DAY + int(r() * 8 * DAY)}
        return ready, shipped, at_point, delivered, end.get(fate, delivered)

    @staticmethod
    def _line(rng: random.Random) -> tuple[int, int, int, int]:
        """(offer, count, unit price in kopecks, Plus-points share of the unit price in kopecks)."""
        offer = rng.randrange(len(_OFFERS))
        unit = round(_OFFERS[offer][2] * 100 * rng.uniform(0.7, 1.0))
        cashback = 0 if rng.random() < 0.7 else rng.randrange(1, max(2, unit // 1000)) * 100
        return offer, rng.choice((1, 1, 1, 2, 3)), unit, min(cashback, unit)

    def __len__(self) -> int:
        return len(self.ids)

    def program_of(self, i: int) -> str:
        return PROGRAMS[self.program[i]]

    def campaign_of(self, i: int) -> int:
        return CAMPAIGNS[self.program_of(i)]

    def index_of_id(self, order_id: int) -> int | None:
        k = bisect_right(self.ids, order_id) - 1
        return k if k >= 0 and self.ids[k] == order_id else None

    def visible_end(self, now: int) -> int:
        """One past the last order created at or before `now`."""
        return bisect_right(self.created, now)

    def history(self, i: int) -> list[Step]:
        """Every step of the order's life, past and future."""
        c, fate = self.created[i], self.fate[i]
        ready, shipped, at_point, delivered, end = self.steps[i]
        steps = [Step(c, "PROCESSING", "STARTED"), Step(c + ready, "PROCESSING", "READY_TO_SHIP"),
                 Step(c + shipped, "DELIVERY", None)]
        if self.pickup[i]:
            steps.append(Step(c + at_point, "PICKUP", "PICKUP_SERVICE_RECEIVED"))
        steps.append(Step(c + delivered, "DELIVERED", "DELIVERY_SERVICE_DELIVERED"))
        if fate in (1, 2, 3):
            reason = {1: "USER_CHANGED_MIND", 2: "SHOP_FAILED", 3: "USER_REFUSED_DELIVERY"}[fate]
            steps = [s for s in steps if s.at < c + end] + [Step(c + end, "CANCELLED", reason)]
        elif fate in (4, 5):
            steps.append(Step(c + end, "RETURNED" if fate == 4 else "PARTIALLY_RETURNED", None))
        return steps

    def state(self, i: int, now: int) -> Step:
        """The step in force at `now` (its `at` is the order's updateDate)."""
        current = None
        for step in self.history(i):
            if step.at > now:
                break
            current = step
        assert current is not None, "an order is never shown before it exists"
        return current

    def total_kop(self, i: int) -> int:
        """What the buyer paid for the goods (money plus Plus points), in kopecks."""
        return sum(count * unit for _, count, unit, _ in self.lines[i])

    def returned_units(self, i: int) -> tuple[int, ...]:
        """Units of each line the buyer sends back: all of them for a return (fate 4), at least
        one but not all for a partial return (fate 5), none otherwise. Derived from the order id."""
        fate, lines = self.fate[i], self.lines[i]
        if fate == 4:
            return tuple(count for _, count, _, _ in lines)
        if fate != 5:
            return (0,) * len(lines)
        units = sum(count for _, count, _, _ in lines)
        left = 1 + _mix(self.ids[i]) % (units - 1)  # 1 .. units - 1
        out = []
        for _, count, _, _ in lines:
            back = min(count, left)
            out.append(back)
            left -= back
        return tuple(out)

    def returned_kop(self, i: int, now: int) -> int:
        """What the goods back with the seller at `now` are worth (money plus Plus points), in kopecks."""
        if self.state(i, now).status not in ("RETURNED", "PARTIALLY_RETURNED"):
            return 0
        return sum(back * unit for back, (_, _, unit, _) in zip(self.returned_units(i), self.lines[i], strict=True))

    def return_id(self, i: int) -> int:
        """The id of the order's return (it exists once the order is RETURNED or PARTIALLY_RETURNED)."""
        return _RETURN_BASE + i

    def index_of_return(self, return_id: int, now: int) -> int | None:
        """The order of a return visible at `now`, or None."""
        i = return_id - _RETURN_BASE
        if not 0 <= i < self.visible_end(now):
            return None
        return i if self.state(i, now).status in ("RETURNED", "PARTIALLY_RETURNED") else None

    def record(self, i: int, now: int) -> dict[str, Any]:
        """`BusinessOrderDTO` as seen at `now`."""
        step, program = self.state(i, now), self.program_of(i)
        returned = self.returned_units(i) if step.status in ("RETURNED", "PARTIALLY_RETURNED") else None
        # Some partial returns are refused at the pickup point (REJECTED), the rest sent back.
        why = "REJECTED" if returned and step.status == "PARTIALLY_RETURNED" and self.ids[i] % 4 == 0 \
            else "RETURNED"
        items, pay, cash, subsidy = [], 0, 0, 0
        for k, (offer, count, unit, cashback) in enumerate(self.lines[i]):
            stem, name, _ = _OFFERS[offer]
            pay += (unit - cashback) * count
            cash += cashback * count
            subsidy += unit * count // 20
            items.append({
                "id": int(self.ids[i] % 10**9) * 10 + k, "offerId": f"SKU-{stem}", "offerName": name,
                "count": count,
                "prices": {"payment": _money((unit - cashback) * count), "subsidy": _money(unit * count // 20),
                           "cashback": _money(cashback * count), "vat": "VAT_22"},
            })
            if returned is not None and returned[k]:
                items[-1]["itemStatuses"] = [{"count": returned[k], "status": why}]
        ready, shipped, at_point, delivered, _ = self.steps[i]
        c = self.created[i]
        delivery: dict[str, Any] = {
            "type": "PICKUP" if self.pickup[i] else "DELIVERY",
            "serviceName": "Маркет" if program != "DBS" else "Собственная служба",
            "dates": {"fromDate": _date(c + shipped), "toDate": _date(c + delivered)},
        }
        buyer = self.buyer[i]
        if program == "DBS" and not self.pickup[i]:
            # DBS shops deliver themselves, so the order carries an address and a recipient.
            last, first, _ = self.buyers.name(buyer)
            delivery["address"] = {"country": "Россия", "city": "Москва", "street": "Тверская",
                                   "house": str(1 + buyer % 40), "apartment": str(1 + buyer % 120),
                                   "recipient": f"{first} {last}", "phone": self.buyers.phone(buyer)}
        if step.status == "DELIVERED":
            delivery["dates"]["realDeliveryDate"] = _date(step.at)
        record = {
            "orderId": self.ids[i], "campaignId": self.campaign_of(i), "programType": program,
            "externalOrderId": f"A-{self.ids[i] % 1_000_000}", "status": step.status,
            "substatus": step.substatus, "creationDate": market_iso(c), "updateDate": market_iso(step.at),
            "paymentType": "PREPAID", "paymentMethod": "YANDEX", "fake": False, "items": items,
            "prices": {"payment": _money(pay), "subsidy": _money(subsidy), "cashback": _money(cash),
                       "delivery": {"payment": _money(0), "subsidy": _money(0)}},
            "delivery": delivery, "buyerType": "PERSON",
            "notes": f"Позвоните за час: {self.buyers.phone(buyer)}" if self.notes[i] else "",
            "sourcePlatform": "MARKET",
        }
        if step.substatus is None:
            del record["substatus"]
        if program == "DBS":
            record["cancelRequested"] = False
        return record


class ReviewTable:
    """Reviews sorted by publication; most link to an order, some get the shop's answer."""

    def __init__(self, seed: int, orders: OrderTable, n: int, start: int, span: int):
        rng = random.Random(seed ^ 0x5EED)
        r = rng.random
        self.orders = orders
        created = []
        order_of = []
        for _ in range(n):
            ts = start + int(r() * span)
            k = orders.visible_end(ts - DAY) - 1  # an order at least a day older than its review
            j = rng.randrange(k + 1) if k >= 0 else -1
            created.append(ts)
            order_of.append(j)
        delay = [300 + int(r() ** 3 * 2 * DAY) for _ in range(n)]  # moderation before publication
        rows = sorted(zip((c + d for c, d in zip(created, delay, strict=True)), created, order_of,
                          strict=True))
        self.published = array("q", (p for p, _, _ in rows))
        self.created = array("q", (c for _, c, _ in rows))
        self.order = array("q", (j for _, _, j in rows))
        self.stars = array("B", rng.choices((1, 2, 3, 4, 5), weights=(5, 4, 8, 18, 65), k=n))
        self.answer_after = array("I", (0 if r() < 0.4 else 600 + int(r() * 3 * DAY) for _ in range(n)))
        self.buyer_reply = array("B", (r() < 0.15 for _ in range(n)))
        self.paid = array("B", (r() < 0.3 for _ in range(n)))
        base = 123_400_000 + rng.randrange(100_000)
        self.ids = array("q", (base + 3 * k + int(r() * 3) for k in range(n)))
        self.written: dict[int, list[dict[str, Any]]] = {}  # comments posted through the API

    def __len__(self) -> int:
        return len(self.ids)

    def visible_end(self, now: int) -> int:
        return bisect_right(self.published, now)

    def index_of_id(self, feedback_id: int) -> int | None:
        k = bisect_right(self.ids, feedback_id) - 1
        return k if k >= 0 and self.ids[k] == feedback_id else None

    def offer(self, i: int) -> str:
        j = self.order[i]
        offer = self.orders.lines[j][0][0] if j >= 0 else i % len(_OFFERS)
        return f"SKU-{_OFFERS[offer][0]}"

    def _generated(self, i: int, now: int) -> list[dict[str, Any]]:
        """`GoodsFeedbackCommentDTO`s visible at `now`: the shop's answer, maybe the buyer's reply."""
        after = self.answer_after[i]
        if not after or self.published[i] + after > now:
            return []
        stars, fid = self.stars[i], self.ids[i]
        text = _ANSWERS[0 if stars >= 4 else 1 if stars == 3 else 2]
        out = [{"id": fid * 10 + 1, "text": text, "canModify": True,
                "author": {"type": "BUSINESS", "name": _SHOP}, "status": "PUBLISHED", "feedbackId": fid}]
        if self.buyer_reply[i] and self.order[i] >= 0:
            out.append({"id": fid * 10 + 2, "text": "Спасибо, разобрались.", "parentId": fid * 10 + 1,
                        "canModify": False, "author": {"type": "USER", "name": self.author(i)},
                        "status": "PUBLISHED", "feedbackId": fid})
        return out

    def comments(self, i: int, now: int) -> list[dict[str, Any]]:
        """The generated comments, then those written through the API (as they were sent back)."""
        written = [{k: v for k, v in c.items() if k != "_at"}
                   for c in self.written.get(i, ()) if c["_at"] <= now]
        return self._generated(i, now) + written

    def write_comment(self, i: int, now: int, text: str, comment_id: int | None,
                      parent_id: int | None) -> dict[str, Any] | None:
        """Create (no `comment_id`) or edit the shop's comment; None if `comment_id` is not ours."""
        fid, mine = self.ids[i], self.written.setdefault(i, [])
        if comment_id is not None:
            hit = next((c for c in mine if c["id"] == comment_id), None)
            if hit is None:
                return None
            hit.update(text=text, status="UNMODERATED")
            return {k: v for k, v in hit.items() if k != "_at"}
        comment: dict[str, Any] = {
            "id": fid * 10 + 3 + len(mine), "text": text, "canModify": True,
            "author": {"type": "BUSINESS", "name": _SHOP}, "status": "UNMODERATED", "feedbackId": fid,
            "_at": now,
        }
        if parent_id is not None:
            comment["parentId"] = parent_id
        mine.append(comment)
        return {k: v for k, v in comment.items() if k != "_at"}

    def author(self, i: int) -> str:
        j = self.order[i]
        b = self.orders.buyer[j] if j >= 0 else i % len(self.orders.buyers)
        last, first, _ = self.orders.buyers.name(b)
        return f"{first} {last[0]}."

    def record(self, i: int, now: int) -> dict[str, Any]:
        """`GoodsFeedbackDTO` as seen at `now`."""
        stars = self.stars[i]
        texts = _REVIEWS[stars]
        comment, pros, cons = texts[self.ids[i] % len(texts)]
        comments = self.comments(i, now)
        j = self.order[i]
        return {
            "feedbackId": self.ids[i], "createdAt": market_iso(self.created[i]),
            "needReaction": not comments,
            "identifiers": {"orderId": self.orders.ids[j], "offerId": self.offer(i)} if j >= 0
            else {"offerId": self.offer(i)},
            "author": self.author(i),
            "description": {"advantages": pros, "disadvantages": cons, "comment": comment},
            "media": {"photos": [], "videos": []},
            "statistics": {"rating": stars, "commentsCount": len(comments), "recommended": stars >= 4,
                           "paidAmount": 150 if self.paid[i] else 0},
        }


class Chats:
    """Chats with buyers, made at run time (none is seeded): `chats` maps chatId to a dict of
    `GetChatInfoDTO` fields plus `messages`, a list of `ChatMessageDTO`s, oldest first."""

    def __init__(self, buyers: Buyers, orders: OrderTable):
        self.buyers, self.orders = buyers, orders
        self.chats: dict[int, dict[str, Any]] = {}
        self._next_chat, self._next_message = 7_700_001, 9_900_001

    def find(self, context_type: str, context_id: int) -> dict[str, Any] | None:
        """The buyer chat (not a dispute) of an order or a return, if one was opened."""
        key = "returnId" if context_type == "RETURN" else "orderId"
        return next((c for c in self.chats.values() if c["type"] == "CHAT"
                     and c["context"]["type"] == context_type and c["context"].get(key) == context_id), None)

    def open(self, i: int, now: int, context_type: str = "ORDER") -> dict[str, Any]:
        """A new chat about order row `i` (its return for RETURN; a buyer's own chat for DIRECT)."""
        b = self.orders.buyer[i]
        last, first, _ = self.buyers.name(b)
        # ChatFullContextDTO: the buyer's public name and id always; order and campaign for ORDER
        # and RETURN chats, the return id for RETURN ones (a DIRECT chat is about a product).
        context: dict[str, Any] = {"type": context_type, "customer": {
            "name": f"{first} {last[0]}.", "publicId": self.buyers.buyer_id(b)[:12].lower()}}
        chat: dict[str, Any] = {"chatId": self._next_chat, "context": context, "type": "CHAT",
                                "status": "NEW", "createdAt": market_iso(now),
                                "updatedAt": market_iso(now), "messages": []}
        if context_type != "DIRECT":
            context.update(campaignId=self.orders.campaign_of(i), orderId=self.orders.ids[i])
            chat["orderId"] = self.orders.ids[i]  # the deprecated top-level copy
        if context_type == "RETURN":
            context["returnId"] = self.orders.return_id(i)
        self._next_chat += 1
        self.chats[chat["chatId"]] = chat
        return chat

    def add_message(self, chat_id: int, now: int, text: str, sender: str = "CUSTOMER") -> dict[str, Any]:
        """Append a message (tests use it for the buyer's words) and move the chat's status on."""
        chat = self.chats[chat_id]
        message = {"messageId": self._next_message, "createdAt": market_iso(now), "sender": sender,
                   "message": text}
        self._next_message += 1
        chat["messages"].append(message)
        chat["updatedAt"] = message["createdAt"]
        chat["status"] = "WAITING_FOR_CUSTOMER" if sender == "PARTNER" else "WAITING_FOR_PARTNER"
        return message

    @staticmethod
    def info(chat: dict[str, Any]) -> dict[str, Any]:
        """`GetChatInfoDTO`."""
        return {k: v for k, v in chat.items() if k != "messages"}


@dataclass(frozen=True)
class Dataset:
    """The emulator's whole seeded world."""

    buyers: Buyers
    orders: OrderTable
    reviews: ReviewTable
    chats: Chats


def generate(seed: int, orders: int, reviews: int, history_days: int, now: int, *,
             buyers: int | None = None, dbs_share: float = 0.25) -> Dataset:
    """Build the dataset; `now` (unix seconds) is the end of the history window."""
    start, span = now - history_days * DAY, history_days * DAY
    people = Buyers(seed, buyers or max(4, orders // 4))
    table = OrderTable(seed, people, orders, start, span, dbs_share)
    return Dataset(people, table, ReviewTable(seed, table, reviews, start, span), Chats(people, table))
