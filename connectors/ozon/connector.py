"""The Ozon connector: FBS/rFBS postings, FBO postings and reviews over one Seller API host, and
writes (review replies, promo codes, buyer chat messages)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from connectors.base import (
    Connector,
    CursorKind,
    DemoSetup,
    RateOverride,
    RecordType,
    StreamSettings,
    StreamSpec,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from connectors.capabilities import ActionKind
from connectors.errors import AuthError, FatalApiError, StreamUnavailable
from connectors.ozon import catalog, mapping
from connectors.ozon.capabilities import OZON_CAPABILITIES
from connectors.ozon.client import ENDPOINT_GROUPS, OzonClient, action_ref, ozon_time
from connectors.ozon.settings import PRODUCTION_HOSTS, OzonAccountSettings
from connectors.ratelimit import Rate
from connectors.records import ProductName
from connectors.streams import Stream, stream_table

__all__ = ["STREAMS", "OzonConnector"]

DAY = timedelta(days=1)

STREAMS = {
    # FBS and rFBS postings (/v4/posting/fbs/list). Each window is read twice: by processing start
    # and by `last_changed_status_date`, which catches status changes of postings up to a year old
    # on every poll. So the lookback only covers postings that surface late (awaiting_registration,
    # awaiting_verification); a daily 30-day re-scan repairs anything else (a posting's life, up to
    # the return of an uncollected parcel, is under three weeks). Ozon allows a year per request
    # and documents no retention limit: a year of history feeds repeat-purchase loyalty. Weekly
    # windows keep a crashed backfill's re-read short.
    "orders_fbs": StreamSpec(
        name="orders_fbs", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW,
        window=7 * DAY, lookback=DAY, lag=timedelta(minutes=2),
        # /v4/posting/fbs/list: "The period must be ≤ 1 year" (shared/marketplaces/ozon.md §2.1).
        max_window=365 * DAY,
        start_history=365 * DAY, poll_interval=timedelta(minutes=10),
        rescan_lookback=30 * DAY, rescan_every=DAY,
    ),
    # FBO postings (/v3/posting/fbo/list) can only be filtered by creation time (see
    # `changes_only_by_rescan`), so following their statuses means re-reading: most move within a
    # week (packing, shipping, delivery), so each run re-reads 7 days. The daily re-scan reaches
    # 60 days back from the cursor: a posting whose status changes as late as 45 days after its
    # creation (a long delivery to a remote region, then pickup-point storage) is still inside it
    # when the next re-scan comes a day later, with two weeks to spare. FBO carries no buyer, so
    # polling every 30 minutes is enough.
    "orders_fbo": StreamSpec(
        name="orders_fbo", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW,
        window=7 * DAY, lookback=7 * DAY, lag=timedelta(minutes=2),
        start_history=365 * DAY, poll_interval=timedelta(minutes=30),
        rescan_lookback=60 * DAY, rescan_every=DAY,
    ),
    # Reviews by publication time (/v2/review/list). What changes is whether the seller answered
    # (a comment, usually within days): each run re-reads 14 days, a daily re-scan 60. Half a
    # year of history is what the reply workflow and reports use; reviews feed no ledger.
    "reviews": StreamSpec(
        name="reviews", record_type=RecordType.REVIEW, cursor=CursorKind.WINDOW,
        window=30 * DAY, lookback=14 * DAY, lag=timedelta(minutes=1),
        start_history=180 * DAY, poll_interval=timedelta(minutes=15),
        rescan_lookback=60 * DAY, rescan_every=DAY,
    ),
}
VOUCHER_TITLE = "Промокод для постоянного покупателя"
_TITLE_MAX = 256  # `title*` is 1..256 characters
# One order record per posting, keyed by its `posting_number`; reviews by their `id`.
STREAM_TABLE = stream_table([
    Stream(STREAMS["orders_fbs"], fetch=lambda conn, window: conn.client.fbs_postings(window),
           map=mapping.map_fbs_posting, key="posting_number"),
    Stream(STREAMS["orders_fbo"], fetch=lambda conn, window: conn.client.fbo_postings(window),
           map=mapping.map_fbo_posting, key="posting_number"),
    Stream(STREAMS["reviews"], fetch=lambda conn, window: conn.client.reviews(window),
           map=mapping.map_review, key="id"),
])


class OzonConnector(Connector):
    """Postings (one order record per posting) from the FBS and FBO lists, and reviews.

    Writes:

    - `reply_to_review`: `target` = the review id, `text` = the comment; no params. Sent to
      `/v1/review/comment/create` with `mark_review_as_processed: true`; `platform_ref` is the
      `comment_id`. `find_done`: the review already has a comment with `is_owner: true` (ours or a
      person's, published or not) → ALREADY_DONE with that comment's id.
    - `create_promo_code`: a single-buyer promo code, `/v1/seller-actions/create/voucher` (beta)
      with `voucher_parameters {type: UNIQUE, count_codes: 1, is_private: true}`; `target` is the
      member (not sent); `platform_ref` is the `action_id`. `params`:

      * `discount_value` (required): number > 0, roubles (or percent, see `discount_type`);
      * `valid_until` (required): aware `datetime` or ISO 8601 string, the voucher's `date_end`;
      * `customer_id` (optional): the buyer's Ozon id (a posting's `customer.customer_id`) sent as
        `user_ids: [customer_id]` (whether Ozon takes these ids is UNCONFIRMED, ozon.md §8);
      * `discount_type` (optional): `"CURRENCY"` (default) or `"PERCENT"`;
      * `valid_from` (optional): `date_start`, default now;
      * `budget` (optional): whole roubles; default the discount rounded up for CURRENCY,
        required for PERCENT;
      * `title` (optional): the promotion's name, default "Промокод для постоянного покупателя".

      The title always ends with ` [ls:<12 hex of sha256(key)>]`: `find_done` searches
      `/v1/seller-actions/list` for that mark and answers ALREADY_DONE with the action's id.
    - `send_chat_message` (Premium Plus/Pro): `target` = the posting number, `text` = the message
      (plain text, 1..1000 characters, checked by Ozon); no params. `/v1/chat/start` with the
      posting number gives the `chat_id`, then `/v1/chat/send/message`; `platform_ref` is the
      `chat_id`. Ozon's refusals (FBO posting, window closed, bad text) are REJECTED; a missing
      subscription raises StreamUnavailable. `find_done`: `/v1/chat/start` again, read as
      returning the posting's existing chat and creating nothing new (UNCONFIRMED; at worst it
      opens the chat `perform` would open anyway), then every page of `/v3/chat/history`: a
      `seller` message whose joined `data` equals the text (both stripped) → ALREADY_DONE. The
      key cannot ride along (the buyer reads every character), so the same text to the same
      posting counts as one message. A refused start → None: nothing can have been sent.
    """

    name: ClassVar[str] = "ozon"
    display_name: ClassVar[str] = "Ozon"
    brand_colour: ClassVar[str] = "#005bff"
    settings_model = OzonAccountSettings
    capabilities = OZON_CAPABILITIES
    stream_table = STREAM_TABLE
    rate_groups: ClassVar[Mapping[str, Rate]] = {g.name: g.rate for g in ENDPOINT_GROUPS}
    # Top-level raw fields that can carry a buyer's personal data, stripped before quarantine:
    # `customer` (customer_id, name, phone, customer_email, address) and `addressee` on FBS/rFBS;
    # `courier` (fbs/get); `legal_info` (a company buyer, often a sole trader's own name);
    # `analytics_data` (delivery city and region); `additional_data` (FBO v2 courier names);
    # `tracking_number` (carrier sites show the recipient); `_comments` (buyers' own words).
    personal_fields = frozenset({
        "customer", "addressee", "courier", "legal_info", "analytics_data", "additional_data",
        "tracking_number", "_comments",
    })

    # What each stream's list filters by, and so what a poll can see change (ozon.md §2.1, §2.4):
    # - orders_fbs: `/v4/posting/fbs/list` takes `filter.last_changed_status_date` ("период, в который
    #   последний раз изменялся статус у отправлений"): every window is read by it too, for postings
    #   up to a year old, so a late change arrives on the next poll.
    # - orders_fbo: the `/v3/posting/fbo/list` filter is only `since`, `to`, `statuses`,
    #   `posting_numbers`, `order_numbers`, all by creation: a late change waits for the re-scan.
    # - reviews: by publication time; `status` and `order_status` default to nothing documented, so
    #   both are sent as `ALL`. A reply only appears after moderation: the lookback re-reads it.
    changes_only_by_rescan: ClassVar[Mapping[str, str]] = {
        "orders_fbo": ("/v3/posting/fbo/list «Возвращает список отправлений за указанный период времени»: "
                       "its filter has since, to, statuses, posting_numbers and order_numbers, and no "
                       "status-change date (unlike the FBS list's last_changed_status_date)"),
    }

    def __init__(self, account: OzonAccountSettings, **kwargs: Any):
        super().__init__(account, **kwargs)
        self.client = OzonClient(account, transport=self.transport, clock=self.clock, sleep=self.sleep)

    @classmethod
    def demo(cls, *, seed: int, orders: int, reviews: int, rate_limits: bool = True) -> DemoSetup:
        from pydantic import SecretStr

        from connectors.ozon.emulator import EmulatorConfig, create_app

        token, client_id = "ozon-demo-api-key-not-a-secret", "100500"  # the emulator accepts only these
        history = 40
        app = create_app(EmulatorConfig(seed=seed, orders=orders, reviews=reviews, history_days=history,
                                        client_id=client_id, token=token, rate_limits=rate_limits))
        # The demo's data is 40 days old: start there instead of a year of empty weekly windows.
        short = StreamSettings(start_history=timedelta(days=history + 1))
        # Nothing else shares the demo's Client-Id, so it may use most of the 50/s (≤ 45 a second).
        budget = {"seller_api": RateOverride(requests=40, period_seconds=1.0, burst=5)}
        return DemoSetup(app=app, secrets=(token,), account=lambda base_url: OzonAccountSettings(
            name="demo", token_env="LOYALSYNC_DEMO_OZON_TOKEN", token=SecretStr(token), client_id=client_id,
            base_urls=dict.fromkeys(PRODUCTION_HOSTS, base_url), streams=dict.fromkeys(STREAMS, short),
            rate_limits=budget))

    async def perform(self, request: WriteRequest) -> WriteResult:
        if request.kind is ActionKind.REPLY_TO_REVIEW:
            if not request.text:
                return WriteResult(WriteStatus.REJECTED, detail="the reply has no text")
            return await _refusals(self.client.create_comment(request.target, request.text))
        if request.kind is ActionKind.CREATE_PROMO_CODE:
            try:
                body = voucher_body(request, datetime.now(UTC))
            except ValueError as exc:
                return WriteResult(WriteStatus.REJECTED, detail=str(exc))
            return await _refusals(self.client.create_voucher(body))
        if request.kind is ActionKind.SEND_CHAT_MESSAGE:
            if not (request.text or "").strip():
                return WriteResult(WriteStatus.REJECTED, detail="the message has no text")
            return await _refusals(self._chat_message(request.target, request.text or ""))
        return await super().perform(request)

    async def find_done(self, request: WriteRequest) -> WriteResult | None:
        if request.kind is ActionKind.REPLY_TO_REVIEW:
            try:
                comments = await self.client.review_comments(request.target)
            except (AuthError, StreamUnavailable):
                raise
            except FatalApiError as exc:
                if exc.status == 404:  # no such review: nothing was written; perform rejects it
                    return None
                raise
            # A comment moderation rejected is not an answer (as in the mapping): the reply is still due.
            mine = [c for c in comments if isinstance(c, dict) and c.get("is_owner") is True
                    and c.get("is_rejected") is not True]
            if mine:
                return WriteResult(WriteStatus.ALREADY_DONE, platform_ref=str(mine[0].get("id", "")) or None,
                                   detail="the review already has the seller's comment")
            return None
        if request.kind is ActionKind.CREATE_PROMO_CODE:
            found = await self.client.seller_actions(voucher_mark(request.key))
            if found:
                return WriteResult(WriteStatus.ALREADY_DONE, platform_ref=action_ref(found[0]),
                                   detail="a promotion with this action's mark exists")
            return None
        if request.kind is ActionKind.SEND_CHAT_MESSAGE:
            return await self._find_chat_message(request)
        return await super().find_done(request)

    async def _chat_message(self, posting_number: str, text: str) -> str:
        chat_id = await self.client.start_chat(posting_number)
        await self.client.send_chat_message(chat_id, text)
        return chat_id

    async def _find_chat_message(self, request: WriteRequest) -> WriteResult | None:
        text = (request.text or "").strip()
        if not text:
            return None
        try:
            chat_id = await self.client.start_chat(request.target)
        except (AuthError, StreamUnavailable):
            raise
        except FatalApiError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                return None  # no chat may be opened: none was, so nothing was sent; perform rejects
            raise
        for message in await self.client.chat_history(chat_id):
            if _seller_wrote(message, text):
                return WriteResult(WriteStatus.ALREADY_DONE, platform_ref=chat_id,
                                   detail="the chat already has this message from the seller")
        return None

    async def product_names(self, skus: Sequence[str]) -> dict[str, ProductName]:
        """`/v3/product/info/list` by `sku`, 1,000 a request (`connectors.ozon.catalog`)."""
        return await catalog.product_names(self.client.http, skus)

    async def aclose(self) -> None:
        await self.client.aclose()


async def _refusals(call: Any) -> WriteResult:
    """DONE with the created id, or REJECTED with Ozon's words for a 4xx (auth problems raise)."""
    try:
        ref = await call
    except (AuthError, StreamUnavailable):
        raise  # a wrong key or a missing subscription: fix the account, the write itself is fine
    except FatalApiError as exc:
        return WriteResult(WriteStatus.REJECTED, detail=exc.platform_message or str(exc))
    return WriteResult(WriteStatus.DONE, platform_ref=ref)


def _seller_wrote(message: Any, text: str) -> bool:
    """Whether a `/v3/chat/history` item is the seller's message `text` (already stripped).

    `data` is a list of strings; a message is expected as one, but lines or chunks are joined
    both ways in case Ozon splits it. `user.type` is compared case-blind (the official example
    writes "Сustomer", with a Cyrillic С).
    """
    if not isinstance(message, dict):
        return False
    user, data = message.get("user"), message.get("data")
    if not isinstance(user, dict) or str(user.get("type", "")).lower() != "seller":
        return False
    if not isinstance(data, list) or not all(isinstance(part, str) for part in data):
        return False
    return text in ("".join(data).strip(), "\n".join(data).strip())


def voucher_mark(key: str) -> str:
    """The tag a voucher's title carries so `find_done` recognises the write of `key`."""
    return f"[ls:{hashlib.sha256(key.encode()).hexdigest()[:12]}]"


def voucher_body(request: WriteRequest, now: datetime) -> dict[str, Any]:
    """The `/v1/seller-actions/create/voucher` body for `request`; ValueError names a bad param."""
    params = request.params
    value = _decimal(params.get("discount_value"), "discount_value")
    kind = params.get("discount_type", "CURRENCY")
    if kind not in ("CURRENCY", "PERCENT"):
        raise ValueError("params.discount_type must be CURRENCY or PERCENT")
    if kind == "PERCENT" and value > 100:
        raise ValueError("params.discount_value must be at most 100 for PERCENT")
    until = _moment(params.get("valid_until"), "valid_until")
    start = _moment(params["valid_from"], "valid_from") if params.get("valid_from") is not None else now
    if until <= start:
        raise ValueError("params.valid_until must be after valid_from (or now)")
    if params.get("budget") is not None:
        budget = _decimal(params["budget"], "budget")
    elif kind == "CURRENCY":
        budget = value
    else:
        raise ValueError("params.budget is required for a PERCENT voucher")
    mark = voucher_mark(request.key)
    title = str(params.get("title") or VOUCHER_TITLE)[: _TITLE_MAX - len(mark) - 1].rstrip()
    body: dict[str, Any] = {
        "title": f"{title} {mark}",
        "date_start": ozon_time(start),
        "date_end": ozon_time(until),
        "budget": math.ceil(budget),  # int64 roubles; the promotion stops when it runs out
        "discount_type": kind,
        "discount_value": int(value) if value == value.to_integral_value() else float(value),
        # `is_private`: the create schema calls true "publicly available", the list schema "not
        # publicly available" (ozon.md §7.6). Read by its name and the list schema: private.
        "voucher_parameters": {"count_codes": 1, "is_private": True, "type": "UNIQUE"},
    }
    customer = params.get("customer_id")
    if customer is not None:
        if not str(customer).isdigit():
            raise ValueError("params.customer_id must be Ozon's numeric buyer id")
        body["user_ids"] = [str(customer)]  # uint64 as a string, at most 50
    return body


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError(f"params.{name} must be a positive number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"params.{name} must be a positive number") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"params.{name} must be a positive number")
    return number


def _moment(value: Any, name: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"params.{name} must be an ISO 8601 date-time") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"params.{name} must be a timezone-aware date-time")
    return value
