"""The WB endpoints of the emulator: Marketplace orders, Statistics rows, feedbacks.

A mixin of `emulator._Emulator`, which supplies `config`, `data` (the `Dataset`), `faults` (the
`FaultPlan`) and `answers`, and runs each handler behind its guard (auth, limits, faults). Each
handler returns (status, JSON payload) in WB's own words, units and error bodies.
"""

from __future__ import annotations

import itertools
import math
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from starlette.requests import Request

from connectors.emulation import FaultPlan
from connectors.wildberries.emulator_data import MAX_CONFIRM, Dataset, msk

__all__ = ["MSK", "WbEndpoints"]

MSK = timezone(timedelta(hours=3))
_MONTH = 30 * 86400
# GET /api/v3/orders "returns information about assembly orders created no more than 3 months ago"
# (spec-2026-08); older ones only through the archive method.
_QUARTER = 90 * 86400


def _mp_error(message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"code": "IncorrectParameter",
                 "message": f"Передан некорректный параметр: {message}"}


def _fb_error(text: str, status: int = 400) -> tuple[int, dict[str, Any]]:
    return status, {"data": None, "error": True, "errorText": text, "additionalErrors": None,
                    "requestId": str(uuid.uuid4())}


def _fb_ok(data: Any) -> dict[str, Any]:
    return {"data": data, "error": False, "errorText": "", "additionalErrors": None}


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


class WbEndpoints:
    """WB's paths; see the module docstring for what the host class provides."""

    config: Any
    data: Dataset
    faults: FaultPlan
    answers: list[tuple[str, str]]

    # --- Marketplace ---
    async def orders(self, request: Request, now: int) -> tuple[int, Any]:
        q = request.query_params
        limit, after = _int(q.get("limit")), _int(q.get("next"))
        if limit is None or not 1 <= limit <= 1000:
            return _mp_error("limit must be 1..1000")
        if after is None or after < 0:
            return _mp_error("next is required")
        date_to = _int(q.get("dateTo", str(now)))
        date_from = _int(q.get("dateFrom", str(now - _MONTH)))
        if date_from is None or date_to is None or date_from > date_to:
            return _mp_error("dateFrom/dateTo")
        if date_to - date_from > _MONTH:
            return _mp_error("period is longer than 30 days")
        table = self.data.orders
        date_from = max(date_from, now - _QUARTER)
        page = table.fbs_page(date_from, min(date_to, now), after, limit + 1)
        more = len(page) > limit
        page = self.faults.shorten(request.url.path, page[:limit], more=more)
        # `next`: the last id served, so the following call starts right after it. An empty
        # page repeats the cursor it was given.
        return 200, {"next": table.ids[page[-1]] if page else after,
                     "orders": [table.marketplace_order(i, now) for i in page]}

    async def orders_new(self, request: Request, now: int) -> tuple[int, Any]:
        table = self.data.orders
        # Only orders younger than the longest confirmation delay can still be "new".
        lo = table.visible_end(now - MAX_CONFIRM - 1)
        return 200, {"orders": [
            table.new_order(i, now) for i in range(lo, table.visible_end(now))
            if not table.fbo[i] and table.status(i, now) == ("new", "waiting")
        ]}

    async def orders_status(self, request: Request, now: int) -> tuple[int, Any]:
        try:
            ids = orjson.loads(await request.body())["orders"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _mp_error("body must be {\"orders\": [ids]}")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 1000 or not all(
            isinstance(x, int) and not isinstance(x, bool) for x in ids
        ):
            return _mp_error("orders must hold 1..1000 integer ids")
        table, out = self.data.orders, []
        for order_id in ids:
            i = table.index_of_id(order_id)
            if i is None or table.fbo[i] or table.created[i] > now:
                continue  # WB silently drops ids it does not know
            out.append(table.status_entry(i, now))
        return 200, {"orders": out}

    # --- Statistics ---
    async def supplier_orders(self, request: Request, now: int) -> tuple[int, Any]:
        raw, flag = request.query_params.get("dateFrom"), request.query_params.get("flag", "0")
        if not raw:
            return 400, {"errors": ["dateFrom: field required"]}
        try:
            since = datetime.fromisoformat(raw)
        except ValueError:
            return 400, {"errors": "dateFrom: Value not validated"}
        if flag not in ("0", "1"):
            return 400, {"errors": "flag: Value not validated"}
        if since.tzinfo is None:
            since = since.replace(tzinfo=MSK)  # WB reads an offset-less dateFrom as Moscow time
        table = self.data.orders
        if flag == "1":  # the whole Moscow calendar day of dateFrom, by order date
            day = since.astimezone(MSK).replace(hour=0, minute=0, second=0, microsecond=0)
            lo = table.visible_end(int(day.timestamp()) - 1)
            hi = table.visible_end(min(now, int(day.timestamp()) + 86399))
            return 200, [table.statistics_row(i, now) for i in range(lo, hi)]
        cap, since_ts = self.config.statistics_page_size, math.ceil(since.timestamp())
        picked = list(itertools.islice(table.changes_since(since_ts, now), cap + 1))
        picked = self._shorten_statistics(request.url.path, picked[:cap], since_ts, now, more=len(picked) > cap)
        return 200, [table.statistics_row(i, now) for i in picked]

    def _shorten_statistics(self, path: str, picked: list[int], since: int, now: int, *,
                            more: bool) -> list[int]:
        """A `short_page` cut of a Statistics answer, made past the rows at `dateFrom` itself.

        WB's cursor is `lastChangeDate >= dateFrom`: no client can resume inside the group of rows
        that share the dateFrom instant, so a cut there would lose rows whatever the client did.
        The emulator cuts only after that group, where the next `dateFrom` reaches the rest.
        """
        table, head = self.data.orders, 0
        while head < len(picked) and table.last_change(picked[head], now) <= since:
            head += 1
        return picked[:head] + self.faults.shorten(path, picked[head:], more=more)

    # --- Feedbacks ---
    async def feedbacks(self, request: Request, now: int) -> tuple[int, Any]:
        q = request.query_params
        answered = q.get("isAnswered")
        take, skip = _int(q.get("take")), _int(q.get("skip"))
        if answered not in ("true", "false"):
            return _fb_error("isAnswered is required: true or false")
        if take is None or not 1 <= take <= 5000:
            return _fb_error("take must be 1..5000")
        if skip is None or not 0 <= skip <= 199_990:
            return _fb_error("skip must be 0..199990")
        order = q.get("order", "dateDesc")
        if order not in ("dateAsc", "dateDesc"):
            return _fb_error("order must be dateAsc or dateDesc")
        nm_id, date_from, date_to = (_int(q.get(k)) for k in ("nmId", "dateFrom", "dateTo"))
        if any(q.get(k) is not None and v is None for k, v in
               (("nmId", nm_id), ("dateFrom", date_from), ("dateTo", date_to))):
            return _fb_error("nmId, dateFrom and dateTo must be integers")
        reviews = self.data.reviews
        hits, unanswered, archive = reviews.select(now, answered == "true", nm_id,
                                                   date_from, date_to)
        if order == "dateDesc":
            hits.reverse()
        page = self.faults.shorten(request.url.path, hits[skip: skip + take], more=skip + take < len(hits))
        return 200, _fb_ok({"countUnanswered": unanswered, "countArchive": archive,
                            "feedbacks": [reviews.record(i, now) for i in page]})

    async def feedbacks_archive(self, request: Request, now: int) -> tuple[int, Any]:
        """GET /api/v1/feedbacks/archive: take/skip/nmId/order, no date filter, `data{feedbacks}`."""
        q = request.query_params
        take, skip, nm_id = _int(q.get("take")), _int(q.get("skip")), _int(q.get("nmId"))
        if take is None or not 1 <= take <= 5000:
            return _fb_error("take must be 1..5000")
        if skip is None or skip < 0:
            return _fb_error("skip must be a non-negative integer")
        if q.get("nmId") is not None and nm_id is None:
            return _fb_error("nmId must be an integer")
        order = q.get("order", "dateDesc")
        if order not in ("dateAsc", "dateDesc"):
            return _fb_error("order must be dateAsc or dateDesc")
        reviews = self.data.reviews
        hits = reviews.archive(now, nm_id)
        if order == "dateDesc":
            hits.reverse()
        page = self.faults.shorten(request.url.path, hits[skip: skip + take], more=skip + take < len(hits))
        return 200, _fb_ok({"feedbacks": [reviews.record(i, now) for i in page]})

    async def feedback(self, request: Request, now: int) -> tuple[int, Any]:
        reviews = self.data.reviews
        i = reviews.index_of(request.query_params.get("id", ""))
        if i is None or reviews.created[i] > now:
            # The spec's 422 and its example's words (ResponseGetFeedbackByIdErrEx).
            return _fb_error("Невозможно получить отзыв по id", 422)
        return 200, _fb_ok(reviews.record(i, now))

    async def count_unanswered(self, request: Request, now: int) -> tuple[int, Any]:
        unanswered, _, _ = self.data.reviews.select(now, False, None, None, None)
        midnight = datetime.fromtimestamp(now, MSK).replace(hour=0, minute=0, second=0)
        today, _, _ = self.data.reviews.select(now, False, None, int(midnight.timestamp()), None)
        return 200, _fb_ok({"countUnanswered": len(unanswered), "countUnansweredToday": len(today)})

    async def answer(self, request: Request, now: int) -> tuple[int, Any]:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return 400, {"title": "bad request", "requestId": uuid.uuid4().hex, "origin": "fbapi",
                         "detail": "content-type header not specified"}
        try:
            body = orjson.loads(await request.body())
            review_id, text = body["id"], body["text"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _fb_error("body must be {\"id\", \"text\"}")
        if not (isinstance(review_id, str) and isinstance(text, str) and 2 <= len(text) <= 5000):
            return _fb_error("text must be 2..5000 characters")
        reviews = self.data.reviews
        i = reviews.index_of(review_id)
        known = i is not None and reviews.created[i] <= now
        if known and reviews.answer_text(i, now) is not None:
            # An answer is changed with PATCH (once, within 60 days); a second POST is refused.
            # The wording is the emulator's: WB documents no error text for this case.
            return _fb_error("feedback already has an answer; use PATCH to edit it")
        self.answers.append((review_id, text))
        # WB does not validate the id: an unknown one is accepted (204) and changes nothing.
        if known:
            reviews.written[i] = text
        return 204, None

    async def ping(self, request: Request, now: int) -> tuple[int, Any]:
        return 200, {"TS": msk(now) + "+03:00", "Status": "OK"}
