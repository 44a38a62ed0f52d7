"""Seeded dataset behind the Yandex Market emulator: buyers, orders (`emulator_orders`), reviews
and chats.

Generated once from a seed and kept column-wise; JSON is built only for the records of a page.
What the API shows is computed from the request's "now", so the same data seen later has moved
on (orders get shipped, delivered, cancelled, returned; reviews get published and answered).
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connectors.emulation import LATE_CHANGE_DELAY, Fault
from connectors.yandex_market.emulator_orders import (
    ACTIVE,
    CAMPAIGNS,
    DAY,
    OFFERS,
    OrderTable,
    market_iso,
    mix,
)

__all__ = [
    "ACTIVE", "CAMPAIGNS", "Buyers", "Chats", "Dataset", "OrderTable", "ReviewTable", "generate",
    "market_iso", "stage_late_changes",
]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# Names chosen so that none is part of another generated text: the end-to-end test looks for
# every one of them in every stored column.
_LAST = ("Иванова", "Петров", "Смирнова", "Кузнецов", "Соколова", "Лебедев", "Новикова", "Морозов",
         "Волкова", "Зайцев", "Павлова", "Семёнов")
_FIRST = ("Анна", "Павел", "Мария", "Игорь", "Елена", "Олег", "Дарья", "Тимур", "Вера", "Глеб")
_MIDDLE = ("Сергеевна", "Андреевич", "Викторовна", "Ильич", "Олеговна", "Петрович")
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
# Photo links in Market's form (avatars.mds.yandex.net); a review has photos or videos or neither.
_PHOTO = "https://avatars.mds.yandex.net/get-marketpic/{}/orig"
_VIDEO = "https://video.market.yandex.ru/{}"


class Buyers:
    """People who order; each has a stable id, a name and a substitute phone."""

    def __init__(self, seed: int, n: int):
        rng = random.Random(seed ^ 0xB0B)
        self._salt = mix(seed + 77)
        self.names = [(rng.randrange(len(_LAST)), rng.randrange(len(_FIRST)), rng.randrange(len(_MIDDLE)))
                      for _ in range(n)]
        self.trusted = [rng.random() < 0.2 for _ in range(n)]

    def __len__(self) -> int:
        return len(self.names)

    def buyer_id(self, b: int) -> str:
        """22 characters, like Market's buyer ids."""
        x, y, out = mix(self._salt + b), mix(self._salt ^ (b << 7)), []
        for _ in range(11):
            x, d = divmod(x, 62)
            out.append(_B62[d])
        for _ in range(11):
            y, d = divmod(y, 62)
            out.append(_B62[d])
        return "".join(out)

    def phone(self, b: int) -> str:
        return f"+7999{mix(self._salt * 3 + b) % 10_000_000:07d}"

    def name(self, b: int) -> tuple[str, str, str]:
        """(last, first, middle)."""
        last, first, middle = self.names[b]
        return _LAST[last], _FIRST[first], _MIDDLE[middle]

    def info(self, b: int) -> dict[str, Any]:
        """`OrderBuyerInfoDTO`."""
        last, first, middle = self.name(b)
        return {"id": self.buyer_id(b), "lastName": last, "firstName": first, "middleName": middle,
                "type": "PERSON", "phone": self.phone(b), "trusted": self.trusted[b]}


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
        offer = self.orders.lines[j][0][0] if j >= 0 else i % len(OFFERS)
        return f"SKU-{OFFERS[offer][0]}"

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
        """`GoodsFeedbackDTO` as seen at `now`. Optional parts vary with the id: an anonymous
        author (no `author`), texts left empty (absent), photos or videos (`media` only then:
        its lists hold one item at least)."""
        stars, fid, v = self.stars[i], self.ids[i], mix(self.ids[i] * 7 + 1)
        texts = _REVIEWS[stars]
        comment, pros, cons = texts[fid % len(texts)]
        comments = self.comments(i, now)
        j = self.order[i]
        record: dict[str, Any] = {
            "feedbackId": fid, "createdAt": market_iso(self.created[i]), "needReaction": not comments,
            "identifiers": {"orderId": self.orders.ids[j], "offerId": self.offer(i)} if j >= 0
            else {"offerId": self.offer(i)},
            "statistics": {"rating": stars, "commentsCount": len(comments), "recommended": stars >= 4,
                           "paidAmount": 150 if self.paid[i] else 0},
        }
        if v % 9:
            record["author"] = self.author(i)
        description = {k: t for k, t in (("advantages", pros), ("disadvantages", cons), ("comment", comment)) if t}
        if description:
            record["description"] = description
        media = {}
        if v % 5 == 0:
            media["photos"] = [_PHOTO.format(fid * 10 + k) for k in range(1 + v % 3)]
        if v % 17 == 0:
            media["videos"] = [_VIDEO.format(fid)]
        if media:
            record["media"] = media
        return record


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


def stage_late_changes(table: OrderTable, faults: Sequence[Fault], generated: int) -> dict[str, tuple[str, str]]:
    """Apply `late_change` faults: each makes `times` orders, delivered by `generated` (the data's
    "now") and created about `age` before the change, come back (RETURNED or PARTIALLY_RETURNED)
    `delay` seconds after `generated`, with their updateDate then. Returns {orderId: (status at
    `generated`, status after the change)} in Market's words."""
    changed: dict[str, tuple[str, str]] = {}
    taken: set[int] = set()
    for fault in faults:
        at = generated + int(fault.delay or LATE_CHANGE_DELAY)
        born = at - int(fault.age)
        count = 1 if fault.times is None else fault.times
        delivered = [i for i in range(table.visible_end(generated))
                     if i not in taken and table.fate[i] == 0 and table.state(i, generated).status == "DELIVERED"]
        picked = sorted(delivered, key=lambda i: abs(table.created[i] - born))[:count]
        if len(picked) < count or any(abs(table.created[i] - born) > 2 * DAY for i in picked):
            raise ValueError(f"late_change: no {count} delivered orders created about {fault.age / DAY:.0f} days "
                             "before the change; generate a longer history (EmulatorConfig.history_days)")
        for i in picked:
            taken.add(i)
            table.return_late(i, at)
            changed[str(table.ids[i])] = ("DELIVERED", table.state(i, at).status)
    return changed


def generate(seed: int, orders: int, reviews: int, history_days: int, now: int, *,
             buyers: int | None = None, dbs_share: float = 0.25) -> Dataset:
    """Build the dataset; `now` (unix seconds) is the end of the history window."""
    start, span = now - history_days * DAY, history_days * DAY
    people = Buyers(seed, buyers or max(4, orders // 4))
    table = OrderTable(seed, people, orders, start, span, dbs_share)
    return Dataset(people, table, ReviewTable(seed, table, reviews, start, span), Chats(people, table))
