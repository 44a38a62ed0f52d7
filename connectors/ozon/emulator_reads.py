"""The Ozon emulator's list methods, a mixin of `_Emulator`: the FBS and FBO posting lists
(cursor-paged, by creation or by last status change) and the review and comment lists.

Each cuts a page short when a `short_page` fault fires and builds its next cursor, `last_id` or
`offset` from what it actually served, as Ozon's `has_next` promises nothing about page sizes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from connectors.emulation import FaultPlan
from connectors.ozon.emulator_blocks import requested_blocks
from connectors.ozon.emulator_data import US, Dataset
from connectors.ozon.emulator_protocol import (
    COMMENT_LIST,
    FBO_LIST,
    FBS_LIST,
    REVIEW_LIST,
    Refused,
    bad_request,
    error_answer,
    limit_of,
    offset_of,
    parse_time,
    posting_cursor,
    read_cursor,
    scalar,
)
from connectors.ozon.emulator_records import fbo_posting, fbs_posting

__all__ = ["ListMethods"]

_YEAR = 366 * 86_400 * US  # a leap year's span still passes Ozon's "at most one year"


class ListMethods:
    """`/v4/posting/fbs/list`, `/v3/posting/fbo/list`, `/v2/review/list`, `/v1/review/comment/list`
    and `/v1/review/comment/create` over the emulator's data."""

    data: Dataset
    faults: FaultPlan
    config: Any  # EmulatorConfig
    comments: list[tuple[str, str]]

    # --- postings ---
    def _posting_query(self, body: dict[str, Any], max_limit: int) -> tuple[Any, ...]:
        """(since, to, limit, after, statuses) of a posting list request, or Refused."""
        flt = body.get("filter")
        if not isinstance(flt, dict):
            raise bad_request("filter is required")
        since, to = parse_time(flt.get("since")), parse_time(flt.get("to"))
        if since is None or to is None or since > to:
            raise bad_request("filter.since and filter.to must be date-times, since <= to")
        if to - since > _YEAR:
            raise Refused(400, 3, "PERIOD_IS_TOO_LONG")
        limit = limit_of(body, 1, max_limit)
        if limit is None:
            raise bad_request(f"limit must be in [1, {max_limit}]")
        cursor = scalar(body, "cursor", "")
        after = read_cursor(cursor) if cursor else None
        if cursor and after is None:
            raise bad_request("cursor is malformed")
        statuses = flt.get("statuses")
        return since, to, limit, after, set(statuses) if isinstance(statuses, list) and statuses else None

    def _postings_answer(self, path: str, page: list[int], has_next: bool,
                         render: Callable[[int], Any]) -> tuple[int, Any]:
        # A short page keeps has_next true; the cursor follows the last posting actually served.
        page = self.faults.shorten(path, page, more=has_next)
        table = self.data.postings
        last = page[-1] if page else None
        return 200, {"cursor": posting_cursor(table.t0[last], last) if last is not None else "",
                     "has_next": has_next, "postings": [render(i) for i in page]}

    async def fbs_list(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        since, to, limit, after, statuses = self._posting_query(body, 100)
        table, cfg = self.data.postings, self.config
        keep = (lambda i: table.state(i, now)[0] in statuses) if statuses else None
        changed = body["filter"].get("last_changed_status_date")
        if changed is not None:
            frm = parse_time(changed.get("from")) if isinstance(changed, dict) else None
            till = parse_time(changed.get("to")) if isinstance(changed, dict) else None
            if frm is None or till is None:
                raise bad_request("last_changed_status_date needs from and to")
            hits = [i for i in table.changed(since, to, frm, till, now)
                    if (after is None or (table.t0[i], i) > after) and (keep is None or keep(i))]
            page, has_next = hits[:limit], len(hits) > limit
        else:
            page, has_next = table.page(False, since, to, now, after, limit, keep)
        blocks = requested_blocks(body)
        return self._postings_answer(FBS_LIST, page, has_next, lambda i: fbs_posting(
            table, i, now, cfg.currency, cfg.customer_visible_days, blocks))

    async def fbo_list(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        since, to, limit, after, statuses = self._posting_query(body, 100)
        table = self.data.postings
        keep = (lambda i: table.state(i, now)[0] in statuses) if statuses else None
        page, has_next = table.page(True, since, to, now, after, limit, keep)
        blocks = requested_blocks(body) - {"barcodes"}
        return self._postings_answer(FBO_LIST, page, has_next,
                                     lambda i: fbo_posting(table, i, now, self.config.currency, blocks))

    # --- reviews ---
    async def review_list(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        limit = limit_of(body, 20, 100)
        if limit is None:
            raise bad_request("limit must be in [20, 100]")
        flt = body.get("filters") or {}
        reviews = self.data.reviews
        lo_t, hi_t = parse_time(flt.get("published_from")), parse_time(flt.get("published_to"))
        lo = 0 if lo_t is None else bisect_left(reviews.published, lo_t)
        hi = reviews.visible_end(now if hi_t is None else min(hi_t, now))
        status, order_status = flt.get("status", "ALL"), flt.get("order_status", "ALL")
        hits = [i for i in range(lo, hi)
                if status in ("ALL", None, "") or reviews.status(i, now) == status
                if order_status in ("ALL", None, "") or reviews.order_status(i) == order_status]
        if body.get("sort_dir") == "DESC":
            hits.reverse()
        last_id = scalar(body, "last_id", "")
        if last_id:
            k = reviews.index_of(last_id)
            if k is None or k not in hits:
                raise bad_request("last_id is unknown")
            hits = hits[hits.index(k) + 1:]
        page = self.faults.shorten(REVIEW_LIST, hits[:limit], more=len(hits) > limit)
        return 200, {"reviews": [reviews.record(i, now) for i in page], "has_next": len(hits) > len(page),
                     "last_id": reviews.review_id(page[-1]) if page else ""}

    async def comment_list(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        limit, offset = limit_of(body, 20, 100), offset_of(body)
        if limit is None:
            raise bad_request("limit must be in [20, 100]")
        reviews = self.data.reviews
        i = reviews.index_of(str(body.get("review_id") or ""))
        if i is None or reviews.published[i] > now:
            return error_answer(404, 5, "review not found")
        comments = reviews.comments(i, now)
        if body.get("sort_dir") == "DESC":
            comments.reverse()
        page = self.faults.shorten(COMMENT_LIST, comments[offset: offset + limit],
                                   more=len(comments) > offset + limit)
        # `offset` as in the official example (asked 123, one comment, answered 124): where the
        # next page starts, after what was actually served.
        return 200, {"comments": page, "offset": offset + len(page)}

    async def comment_create(self, body: dict[str, Any], now: int) -> tuple[int, Any]:
        reviews = self.data.reviews
        review_id, text, mark = body.get("review_id"), body.get("text"), body.get("mark_review_as_processed")
        if not isinstance(review_id, str) or not review_id:
            raise bad_request("review_id is required")
        if not isinstance(text, str) or not text.strip():
            raise bad_request("text is required")
        if mark is not None and not isinstance(mark, bool):
            raise bad_request("mark_review_as_processed must be a boolean")
        limit = self.config.comment_max_length
        if limit is not None and len(text) > limit:
            raise bad_request(f"text must be at most {limit} characters")
        i = reviews.index_of(review_id)
        if i is None or reviews.published[i] > now:
            return error_answer(404, 5, "review not found")
        # A second comment is allowed (Ozon has no edit); the connector's find_done prevents one.
        reviews.written.setdefault(i, []).append((text, now))
        self.comments.append((reviews.review_id(i), text))
        mine = [c for c in reviews.comments(i, now) if c["is_owner"] and c["text"] == text]
        return 200, {"comment_id": mine[-1]["id"]}
