"""The Ozon emulator's seller actions (promo-code vouchers) and buyer chats, a mixin of `_Emulator`.

Chats follow the Premium Plus/Pro rules (platform_rules.md): the seller opens one by posting
number (FBS/rFBS, within 72 h of payment or delivery) and writes while the posting's window or a
buyer's 48 h reply window is open.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from connectors.emulation import FaultPlan
from connectors.ozon.emulator_data import FBO, US, Dataset, iso
from connectors.ozon.emulator_protocol import (
    CHAT_HISTORY,
    SELLER_ACTIONS,
    Refused,
    bad_request,
    limit_of,
    offset_of,
    parse_time,
    scalar,
)

__all__ = ["SellerWrites"]


class SellerWrites:
    """`/v1/seller-actions/*` and `/v1/chat/*`, `/v3/chat/history` over the emulator's state."""

    data: Dataset
    faults: FaultPlan
    vouchers: list[dict[str, Any]]
    chats: dict[str, dict[str, Any]]
    _message_ids: Iterator[int]
    seller_id: str

    def now(self) -> int:
        raise NotImplementedError

    # --- seller actions (beta) ---
    async def voucher_create(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        """`/v1/seller-actions/create/voucher` with the schema's checks (ozon.md §5.4)."""
        title = body.get("title")
        if not isinstance(title, str) or not 1 <= len(title) <= 256:
            raise bad_request("title must be 1..256 characters")
        start, end = parse_time(body.get("date_start")), parse_time(body.get("date_end"))
        if start is None or end is None:
            raise bad_request("date_start and date_end must be date-times")
        if end <= start or end <= now:
            raise bad_request("date_end must be after date_start and in the future")
        budget = body.get("budget")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0:
            raise bad_request("budget must be a positive integer")
        kind, value = body.get("discount_type"), body.get("discount_value")
        if kind not in ("PERCENT", "CURRENCY"):
            raise bad_request("discount_type must be PERCENT or CURRENCY")
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise bad_request("discount_value must be a positive number")
        if kind == "PERCENT" and value > 100:
            raise bad_request("discount_value must be at most 100 for PERCENT")
        params = body.get("voucher_parameters")
        if not isinstance(params, dict):
            raise bad_request("voucher_parameters is required")
        count, private, vtype = params.get("count_codes"), params.get("is_private"), params.get("type")
        if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
            raise bad_request("voucher_parameters.count_codes must be a positive integer")
        if not isinstance(private, bool):
            raise bad_request("voucher_parameters.is_private is required")
        if vtype not in ("ONE", "MULTIPLE", "UNIQUE"):
            raise bad_request("voucher_parameters.type must be ONE, MULTIPLE or UNIQUE")
        users = scalar(body, "user_ids", [])
        if not isinstance(users, list) or len(users) > 50 or not all(
                isinstance(u, str) and u.isdigit() for u in users):
            raise bad_request("user_ids must be at most 50 numeric strings")
        action_id = 5_000_000 + len(self.vouchers) + 1
        self.vouchers.append({
            # Kept flat here (tests read it); `/v1/seller-actions/list` serves it in the spec's
            # shape (`_listed_action`). VOUCHER_DISCOUNT is the spec's action type for promo codes.
            "id": action_id, "title": title, "action_type": "VOUCHER_DISCOUNT",
            "status": "PLANNED" if start > now else "ACTIVE",
            "date_start": body["date_start"], "date_end": body["date_end"], "budget": budget,
            "discount_type": kind, "discount_value": value,
            "voucher_parameters": {"count_codes": count, "is_private": private, "type": vtype},
            "user_ids": list(users),
        })
        return 200, {"action_id": action_id}

    async def seller_actions(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        """`/v1/seller-actions/list`: filters `action_type[]`, `status[]`, `search`; `limit*`, `offset`."""
        limit, offset = limit_of(body, 1, 100), offset_of(body)
        if limit is None:
            raise bad_request("limit must be in [1, 100]")
        types, statuses, search = body.get("action_type"), body.get("status"), scalar(body, "search", "")
        if not isinstance(search, str) or 0 < len(search) < 3:
            raise bad_request("search must be a string of at least 3 characters")
        hits = [a for a in self.vouchers
                if (not types or a["action_type"] in types) and (not statuses or a["status"] in statuses)
                and search.lower() in a["title"].lower()]
        page = self.faults.shorten(SELLER_ACTIONS, hits[offset: offset + limit], more=len(hits) > offset + limit)
        return 200, {"actions": [_listed_action(a) for a in page], "total": len(hits)}

    # --- chats (Premium Plus/Pro) ---
    def _posting(self, number: Any, now: int) -> int:
        if not isinstance(number, str) or not number:
            raise bad_request("posting_number is required")
        i = self.data.postings.index_of(number)
        if i is None or self.data.postings.t0[i] > now:
            raise Refused(404, 5, "posting not found")
        return i

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        if not isinstance(chat_id, str) or not chat_id:
            raise bad_request("chat_id is required")
        if chat_id not in self.chats:
            raise Refused(404, 5, "chat not found")
        return self.chats[chat_id]

    def _open(self, i: int) -> str:
        """The posting's chat, created on first use: Ozon keeps one chat per posting."""
        chat_id = self.data.postings.chat_id(i)
        self.chats.setdefault(chat_id, {"posting_number": self.data.postings.posting_number(i), "messages": []})
        return chat_id

    def _add(self, chat_id: str, text: str, user: dict[str, str], at: int) -> None:
        table = self.data.postings
        i = table.index_of(self.chats[chat_id]["posting_number"])
        assert i is not None
        self.chats[chat_id]["messages"].append({
            # uint64 by the schema, a string in the official example (ozon.md §6): sent as one.
            "message_id": str(next(self._message_ids)), "created_at": iso(at), "data": [text],
            # The enum has SUCCESS, MODERATION, FAILED and no "unset"; the official example sends SUCCESS.
            "is_image": False, "is_read": False, "moderate_image_status": "SUCCESS",
            "context": {"order_number": table.order_number(i), "sku": str(table.lines(i)[0][0].sku)},
            "user": user,
        })

    def _buyer_last(self, chat_id: str | None) -> int | None:
        messages = self.chats[chat_id]["messages"] if chat_id in self.chats else []
        times = [parse_time(m["created_at"]) for m in messages if m["user"]["type"] == "customer"]
        return max((t for t in times if t is not None), default=None)

    def buyer_message(self, posting_number: str, text: str, at: datetime | None = None) -> str:
        """Let the buyer write (opening the chat if needed, FBO too); return the chat_id."""
        i = self.data.postings.index_of(posting_number)
        if i is None:
            raise KeyError(posting_number)
        chat_id = self._open(i)
        customer = str(self.data.postings.customer_id(self.data.postings.buyer[i]))
        moment = int(at.timestamp() * US) if at is not None else self.now()
        self._add(chat_id, text, {"id": customer, "type": "customer"}, moment)
        return chat_id

    def chat_eligible(self, now: datetime | None = None) -> list[str]:
        """FBS/rFBS postings the seller may open a chat for and write to at `now` (default: the clock)."""
        at = int(now.timestamp() * US) if now is not None else self.now()
        table = self.data.postings
        return [table.posting_number(i) for i in range(len(table))
                if table.t0[i] <= at and table.chat_start_open(i, at) and table.chat_send_open(i, at, None)]

    async def chat_start(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        """`/v1/chat/start`: the posting's existing chat, or a new one where the seller may open it."""
        table = self.data.postings
        i = self._posting(body.get("posting_number"), now)
        chat_id = table.chat_id(i)
        if chat_id not in self.chats:
            # The refusals' status and wording are undocumented; FAILED_PRECONDITION is the gRPC
            # code for "not in this state", which Ozon's gateway answers with 400.
            if table.scheme[i] == FBO:
                raise Refused(400, 9, "only the buyer can start a chat for an FBO posting")
            if not table.chat_start_open(i, now):
                raise Refused(400, 9, "a chat can be started only within 72 hours after payment or delivery")
            self._open(i)
        return 200, {"result": {"chat_id": chat_id}}

    async def chat_send(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        """`/v1/chat/send/message`: plain text, 1..1000 characters, inside a sending window."""
        chat_id, text = body.get("chat_id"), body.get("text")
        chat = self._chat(chat_id)
        if not isinstance(text, str) or not text.strip() or len(text) > 1000:
            raise bad_request("text must be 1..1000 characters")
        i = self.data.postings.index_of(chat["posting_number"])
        assert i is not None
        if not self.data.postings.chat_send_open(i, now, self._buyer_last(chat_id)):
            raise Refused(400, 9, "the seller can write only until 72 hours after delivery, then "
                                   "within 48 hours of the buyer's last message")
        self._add(chat_id, text, {"id": self.seller_id, "type": "seller"}, now)
        return 200, {"result": "success"}

    async def chat_history(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        """`/v3/chat/history`: `direction` Backward (default, newest first) or Forward from
        `from_message_id` (exclusive here; Ozon's side is undocumented), `limit` 1..1000 (50)."""
        chat = self._chat(body.get("chat_id"))
        direction = scalar(body, "direction", "Backward")
        if direction not in ("Forward", "Backward"):
            raise bad_request("direction must be Forward or Backward")
        limit = scalar(body, "limit", 0) or 50  # unset, null or 0: "по умолчанию — 50"
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise bad_request("limit must be in [1, 1000]")
        start = body.get("from_message_id")
        if start is not None and not (isinstance(start, int) and not isinstance(start, bool)
                                      or isinstance(start, str) and start.isascii() and start.isdigit()):
            raise bad_request("from_message_id must be a uint64")
        hits = [m for m in chat["messages"] if (parse_time(m["created_at"]) or 0) <= now]
        if direction == "Backward":
            hits.reverse()
        if start is not None:
            after = (lambda m: int(m["message_id"]) > int(start)) if direction == "Forward" else \
                (lambda m: int(m["message_id"]) < int(start))
            hits = [m for m in hits if after(m)]
        page = self.faults.shorten(CHAT_HISTORY, hits[:limit], more=len(hits) > limit)
        return 200, {"messages": page, "has_next": len(hits) > len(page)}


def _listed_action(voucher: dict[str, Any]) -> dict[str, Any]:
    """An item of `/v1/seller-actions/list` (`SellerActionsListResponseAction` of the spec) for a
    voucher created here: the promotion's own fields are under `action_parameters`."""
    vp = voucher["voucher_parameters"]
    return {
        "action_id": voucher["id"],
        "action_parameters": {
            "title": voucher["title"], "type": voucher["action_type"], "status": voucher["status"],
            "date_start": voucher["date_start"], "date_end": voucher["date_end"],
            "budget": float(voucher["budget"]), "budget_spent": 0.0,
            "discount_type": voucher["discount_type"], "discount_value": float(voucher["discount_value"]),
            "voucher_parameters": {"count_codes": vp["count_codes"], "is_private": vp["is_private"],
                                   "type": vp["type"]},
            "picked_segments": [], "auto_stop_action_reason": "UNSPECIFIED",
        },
        "allow_delete": True, "highlight_url": "", "is_editable": True, "is_participated": False,
        "is_turn_on": True, "sku_count": 0,
    }
