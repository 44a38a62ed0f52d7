"""The writing half of the Ozon client: review comments, promo-code vouchers and buyer chats, each
sent once (a timeout or 5xx raises: the write may have happened, and `find_done` looks), plus the
reads that find a write again (`/v1/seller-actions/list`, `/v3/chat/history`)."""

from __future__ import annotations

from typing import Any

from connectors.errors import FatalApiError, RetriableApiError
from connectors.http import ApiClient
from connectors.ozon.client_common import (
    CHAT_HISTORY,
    CHAT_SEND,
    CHAT_START,
    COMMENT_CREATE,
    MARKETPLACE,
    SELLER_ACTIONS,
    VOUCHER_CREATE,
    has_next,
    list_field,
)

__all__ = ["CHAT_HISTORY_PAGE", "SELLER_ACTIONS_PAGE", "OzonWrites", "action_ref", "action_title"]

SELLER_ACTIONS_PAGE = 100  # `limit*`: 1..100 (v1SellerActionsListRequest)
CHAT_HISTORY_PAGE = 1000  # `limit`: default 50, at most 1000
_CHAT_SUBSCRIPTION_HINT = (
    "Ozon withholds seller-to-buyer chat from this seller: starting a chat and sending messages "
    "need the Premium Plus or Premium Pro subscription. Subscribe in the seller cabinet, or stop "
    "proposing chat messages for this account"
)


class OzonWrites:
    """The write methods of `OzonClient` (which provides `http` and the subscription check)."""

    http: ApiClient

    async def _review_call(self, path: str, body: dict[str, Any], *, idempotent: bool = True) -> Any:
        raise NotImplementedError

    async def _subscribed(self, path: str, body: dict[str, Any], hint: str, *, idempotent: bool = True) -> Any:
        raise NotImplementedError

    async def create_comment(self, review_id: str, text: str) -> str:
        """Post the seller's comment on a review and mark it processed; return the `comment_id`.

        Sent once: a timeout or 5xx raises, since the comment may exist (see `find_done`).
        """
        body = await self._review_call(COMMENT_CREATE, {
            "review_id": review_id, "text": text, "mark_review_as_processed": True,
        }, idempotent=False)
        comment_id = body.get("comment_id") if isinstance(body, dict) else None
        if not isinstance(comment_id, str | int) or isinstance(comment_id, bool) or comment_id == "":
            raise FatalApiError("response has no 'comment_id'", marketplace=MARKETPLACE,
                                endpoint=f"POST {COMMENT_CREATE}")
        return str(comment_id)

    async def create_voucher(self, body: dict[str, Any]) -> str:
        """Create a promo-code promotion (beta); return its `action_id`. Sent once, like a comment."""
        answer = await self.http.request_json("POST", "api", VOUCHER_CREATE, json=body, idempotent=False)
        action_id = answer.get("action_id") if isinstance(answer, dict) else None
        if not isinstance(action_id, str | int) or isinstance(action_id, bool) or action_id == "":
            raise FatalApiError("response has no 'action_id'", marketplace=MARKETPLACE,
                                endpoint=f"POST {VOUCHER_CREATE}")
        return str(action_id)

    async def seller_actions(self, search: str) -> list[dict[str, Any]]:
        """The seller's own promotions whose title contains `search`, every status, all pages.

        Items are `actions[]{action_id, action_parameters{title, …}, …}` and the answer carries
        `total` ("общее количество акций"), per the spec's `v1SellerActionsListResponse`. The
        title is checked here too in case Ozon's `search` matches loosely.
        """
        endpoint = f"POST {SELLER_ACTIONS}"
        offset, out, seen = 0, [], set()
        while True:
            body = await self.http.request_json("POST", "api", SELLER_ACTIONS, json={
                "search": search, "limit": SELLER_ACTIONS_PAGE, "offset": offset,
            })
            actions = list_field(body, "actions", endpoint)
            # The end, per the spec: an empty page, or `offset` reaching `total`. Never "fewer than
            # limit": a short page is read past while `total` says more remain.
            if not actions:
                return out
            ids = {str(_action_id(a)) for a in actions}
            if ids <= seen:
                raise FatalApiError("the next page repeats promotions already read (offset ignored?); "
                                    "stopping rather than loop", marketplace=MARKETPLACE, endpoint=endpoint)
            seen |= ids
            out.extend(a for a in actions if isinstance(a, dict) and search in action_title(a))
            offset += len(actions)
            total = body.get("total") if isinstance(body, dict) else None
            if isinstance(total, int) and not isinstance(total, bool) and offset >= total:
                return out

    # -- chats (Premium Plus/Pro) ------------------------------------------------------------

    async def start_chat(self, posting_number: str) -> str:
        """The `chat_id` of a posting's chat, opening it if there is none yet.

        The spec does not say what a second start for the same posting returns. A chat belongs to
        one posting, so it is read as returning the existing chat and creating nothing
        (UNCONFIRMED; the emulator does so). Sent once all the same: it may create a chat.
        A refusal (FBO, window closed, unknown posting) raises FatalApiError.
        """
        body = await self._subscribed(CHAT_START, {"posting_number": posting_number},
                                      _CHAT_SUBSCRIPTION_HINT, idempotent=False)
        result = body.get("result") if isinstance(body, dict) else None
        chat_id = result.get("chat_id") if isinstance(result, dict) else None
        if not isinstance(chat_id, str) or not chat_id.strip():
            raise FatalApiError("response has no 'result.chat_id'", marketplace=MARKETPLACE,
                                endpoint=f"POST {CHAT_START}")
        return chat_id

    async def send_chat_message(self, chat_id: str, text: str) -> None:
        """Send plain `text` (1..1000 characters) into a chat; Ozon answers `{"result": "success"}`.

        Sent once. A 200 without "success" raises RetriableApiError, not a refusal: the message
        may be there, and only reading the chat (the outbox's `find_done`) can tell.
        """
        body = await self._subscribed(CHAT_SEND, {"chat_id": chat_id, "text": text},
                                      _CHAT_SUBSCRIPTION_HINT, idempotent=False)
        if not isinstance(body, dict) or body.get("result") != "success":
            raise RetriableApiError("answer is not {\"result\": \"success\"}; the message may have been "
                                    "sent", marketplace=MARKETPLACE, endpoint=f"POST {CHAT_SEND}")

    async def chat_history(self, chat_id: str) -> list[dict[str, Any]]:
        """Every message of a chat, newest first (`direction: Backward`, Ozon's default).

        Paged by `from_message_id` = the smallest id seen. Whether Ozon repeats that message on
        the next page is undocumented, so repeats are dropped; a page with nothing new while
        `has_next` is true raises rather than loop. A message without a usable `message_id`
        raises too: skipping it could hide the very message a caller is looking for.
        """
        endpoint = f"POST {CHAT_HISTORY}"
        body: dict[str, Any] = {"chat_id": chat_id, "direction": "Backward", "limit": CHAT_HISTORY_PAGE}
        seen: set[int] = set()
        out: list[dict[str, Any]] = []
        while True:
            answer = await self.http.request_json("POST", "api", CHAT_HISTORY, json=body)
            fresh = []
            for message in list_field(answer, "messages", endpoint):
                message_id = _message_id(message)
                if message_id is None:
                    raise FatalApiError("a message has no usable 'message_id'", marketplace=MARKETPLACE,
                                        endpoint=endpoint)
                if message_id not in seen:
                    seen.add(message_id)
                    fresh.append(message_id)
                    out.append(message)
            # spec, `/v3/chat/history`: "has_next — признак, что в ответе вернули не все сообщения".
            if not has_next(answer):
                return out
            if not fresh:
                raise FatalApiError("has_next is true but the page brought no new message; stopping "
                                    "rather than loop", marketplace=MARKETPLACE, endpoint=endpoint)
            # A string: uint64 ids pass 2**53, and Ozon's gateway reads 64-bit ints from strings.
            body["from_message_id"] = str(min(fresh))


def _action_id(action: Any) -> Any:
    """A seller action's id: `action_id` (uint64) by the spec."""
    return action.get("action_id") if isinstance(action, dict) else None


def action_title(action: Any) -> str:
    """A seller action's title: `action_parameters.title` by the spec."""
    params = action.get("action_parameters") if isinstance(action, dict) else None
    title = params.get("title") if isinstance(params, dict) else None
    return title if isinstance(title, str) else ""


def action_ref(action: Any) -> str | None:
    """A listed seller action's id as the `platform_ref` of the write that created it."""
    value = _action_id(action)
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) and value != "" else None


def _message_id(message: Any) -> int | None:
    """A chat message's id as an int: uint64, sent as a number or a digit string (ozon.md §6)."""
    value = message.get("message_id") if isinstance(message, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else None
