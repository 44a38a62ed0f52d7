"""Ozon client: auth headers, paging, error bodies, the subscription refusal, 429s — against respx
routes that must all be called."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest
import respx
from pydantic import SecretStr

from connectors.base import Window
from connectors.errors import AuthError, FatalApiError, RetryDeferred, StreamUnavailable
from connectors.ozon.client import OzonClient, describe_ozon_error
from connectors.ozon.settings import OzonAccountSettings
from connectors.testing import FakeTime
from tests.conftest import load_fixture

pytestmark = pytest.mark.anyio
BASE = "https://ozon.test"
API_KEY = "0f3c9a1e-sentinel-api-key"
CLIENT_ID = "836412"
# Fractions of a second on both ends: Ozon's filters take whole seconds.
WINDOW = Window(datetime(2026, 6, 1, 0, 0, 0, 500000, tzinfo=UTC),
                datetime(2026, 6, 8, 0, 0, 0, 900000, tzinfo=UTC))


def client(time: FakeTime, **settings) -> OzonClient:
    account = OzonAccountSettings(name="main", token_env="X", token=SecretStr(API_KEY), client_id=CLIENT_ID,
                                  base_urls={"api": BASE}, **settings)
    return OzonClient(account, clock=time.monotonic, sleep=time.sleep)


async def collect(pages):
    return [p async for p in pages]


def bodies(route) -> list[dict]:
    return [orjson.loads(call.request.content) for call in route.calls]


def postings(*numbers: str) -> list[dict]:
    return [{"posting_number": n} for n in numbers]


async def test_fbs_sends_both_headers_and_reads_each_window_by_start_and_by_status_change():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post("/v4/posting/fbs/list").mock(side_effect=[
            httpx.Response(200, json={"cursor": "c1", "has_next": True, "postings": postings("a-1", "b-1")}),
            httpx.Response(200, json={"cursor": "c2", "has_next": False, "postings": postings("c-1")}),
            httpx.Response(200, json={"cursor": "", "has_next": False, "postings": postings("a-1")}),
        ])
        oz = client(FakeTime(), postings_page_size=2)
        pages = await collect(oz.fbs_postings(WINDOW))
        await oz.aclose()
    request = route.calls[0].request
    assert request.headers["Client-Id"] == CLIENT_ID and request.headers["Api-Key"] == API_KEY
    assert "Authorization" not in request.headers
    first, second, changes = bodies(route)
    assert first == {
        "cursor": "", "limit": 2, "sort_dir": "ASC", "translit": False,
        "filter": {"since": "2026-06-01T00:00:00Z", "to": "2026-06-08T00:00:00Z"},
        "with": {"analytics_data": False, "barcodes": False, "financial_data": False, "legal_info": False},
    }
    assert second["cursor"] == "c1" and second["filter"] == first["filter"]
    # The status-change pass: postings up to a year old whose last change is inside the window.
    assert changes["cursor"] == "" and changes["filter"] == {
        "since": "2025-06-09T00:00:00Z", "to": "2026-06-08T00:00:00Z",
        "last_changed_status_date": {"from": "2026-06-01T00:00:00Z", "to": "2026-06-08T00:00:00Z"},
    }
    # Every key we send is one the schema-correct request fixture uses.
    assert set(first) <= set(load_fixture("ozon", "fbs_list_request.json"))
    assert [[p["posting_number"] for p in page.items] for page in pages] == [["a-1", "b-1"], ["c-1"], ["a-1"]]


async def test_fbo_pages_by_cursor_over_creation_time_only():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post("/v3/posting/fbo/list").mock(side_effect=[
            httpx.Response(200, json={"cursor": "x", "has_next": True, "postings": postings("f-1")}),
            httpx.Response(200, json={"cursor": "", "has_next": False, "postings": []}),
        ])
        oz = client(FakeTime())
        pages = await collect(oz.fbo_postings(WINDOW))
        await oz.aclose()
    first, second = bodies(route)
    assert first["filter"] == {"since": "2026-06-01T00:00:00Z", "to": "2026-06-08T00:00:00Z"}
    assert first["with"] == {"analytics_data": False, "financial_data": False, "legal_info": False}
    assert set(first) <= set(load_fixture("ozon", "fbo_list_request.json")) and first["limit"] == 100
    assert second["cursor"] == "x" and len(pages) == 1  # an empty last page yields nothing


async def test_a_cursor_that_does_not_move_stops_the_stream_instead_of_looping():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post("/v3/posting/fbo/list").mock(return_value=httpx.Response(
            200, json={"cursor": "same", "has_next": True, "postings": postings("f-1")}))
        oz = client(FakeTime())
        with pytest.raises(FatalApiError, match="'cursor' did not advance"):
            await collect(oz.fbo_postings(WINDOW))
        await oz.aclose()


async def test_reviews_page_by_last_id_and_fetch_comments_only_where_there_are_some():
    listing = load_fixture("ozon", "review_list_response.json")  # has_next, second review has 1 comment
    last = {"reviews": [dict(listing["reviews"][0], id="r-3", comments_amount=0)], "has_next": False,
            "last_id": "r-3"}
    comments = load_fixture("ozon", "review_comment_list_response.json")
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        reviews = router.post("/v2/review/list").mock(side_effect=[
            httpx.Response(200, json=listing), httpx.Response(200, json=last)])
        comment_route = router.post("/v1/review/comment/list").mock(side_effect=[
            httpx.Response(200, json=comments), httpx.Response(200, json={"comments": [], "offset": 1})])
        oz = client(FakeTime(), reviews_page_size=20, comments_page_size=20)
        pages = await collect(oz.reviews(WINDOW))
        await oz.aclose()
    first, second = bodies(reviews)
    assert first == {"filters": {"published_from": "2026-06-01T00:00:00Z", "published_to": "2026-06-08T00:00:00Z",
                                 "order_status": "ALL", "status": "ALL"},
                     "last_id": "", "limit": 20, "sort_dir": "ASC"}
    assert set(first) == set(load_fixture("ozon", "review_list_request.json"))
    assert second["last_id"] == "017c0d53-a7c8-81ef-53de-7d32fcbd7421"
    asked, end = bodies(comment_route)
    assert asked == {"review_id": "017c0d53-a7c8-81ef-53de-7d32fcbd7421", "limit": 20, "offset": 0, "sort_dir": "ASC"}
    assert set(asked) == set(load_fixture("ozon", "review_comment_list_request.json"))
    assert end == asked | {"offset": 1}  # the end is an empty page, not a page shorter than the limit
    no_comments, commented = pages[0].items
    assert "_comments" not in no_comments and commented["_comments"] == comments["comments"]


def comment_page(*ids: str) -> httpx.Response:
    return httpx.Response(200, json={"comments": [{"id": c, "is_owner": False} for c in ids]})


async def test_comments_page_by_offset_until_an_empty_page_reading_past_a_short_one():
    # Ozon documents no end for the comment list but an empty page (no has_next; the `offset` it
    # answers is ambiguous), so a page shorter than the limit mid-list is read past.
    first, short = [f"c{k}" for k in range(20)], ["c20", "c21", "c22"]
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post("/v1/review/comment/list").mock(side_effect=[
            comment_page(*first), comment_page(*short), comment_page("c23"), comment_page()])
        oz = client(FakeTime(), comments_page_size=20)
        got = await oz.review_comments("r-1")
        await oz.aclose()
    assert [b["offset"] for b in bodies(route)] == [0, 20, 23, 24]
    assert [c["id"] for c in got] == [*first, *short, "c23"]


async def test_comments_that_repeat_instead_of_advancing_stop_the_stream():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post("/v1/review/comment/list").mock(return_value=comment_page("c0", "c1"))
        oz = client(FakeTime(), comments_page_size=20)
        with pytest.raises(FatalApiError, match="repeats comments"):
            await oz.review_comments("r-1")
        await oz.aclose()


def actions_page(total: int, *ids: int) -> httpx.Response:
    """A `/v1/seller-actions/list` answer shaped as the spec's v1SellerActionsListResponse."""
    return httpx.Response(200, json={"total": total, "actions": [
        {"action_id": i, "action_parameters": {"title": f"Промокод [ls:{i % 2}]", "type": "VOUCHER_DISCOUNT"}}
        for i in ids]})


async def test_seller_actions_page_until_total_reading_past_short_pages():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post("/v1/seller-actions/list").mock(side_effect=[
            actions_page(5, 1, 2), actions_page(5, 3, 4), actions_page(5, 5)])
        oz = client(FakeTime())
        got = await oz.seller_actions("[ls:1]")
        await oz.aclose()
    assert [b["offset"] for b in bodies(route)] == [0, 2, 4]  # no fourth call: offset reached total
    assert [a["action_id"] for a in got] == [1, 3, 5]  # the title, under action_parameters, matches


async def test_seller_actions_without_a_total_end_on_an_empty_page():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post("/v1/seller-actions/list").mock(side_effect=[
            httpx.Response(200, json={"actions": [{"action_id": 7, "action_parameters": {"title": "x [ls:1]"}}]}),
            httpx.Response(200, json={"actions": []})])
        oz = client(FakeTime())
        assert [a["action_id"] for a in await oz.seller_actions("[ls:1]")] == [7]
        await oz.aclose()


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("error_generic_schema.json", "INVALID_ARGUMENT: invalid request: limit must be in [20, 100]"),
        ("error_429.json", "RESOURCE_EXHAUSTED: You have reached request rate limit per second"),
        ("error_429_product_import_official_example.json",
         "RESOURCE_EXHAUSTED: You have reached operation items limits. Retry after 120 seconds."),
    ],
)
def test_ozon_error_bodies_yield_the_code_name_and_message(fixture, message):
    info = describe_ozon_error(httpx.Response(400, json=load_fixture("ozon", fixture)))
    assert info.message.startswith(message)


def test_an_error_body_that_is_not_ozons_yields_nothing():
    assert describe_ozon_error(httpx.Response(502, text="<html>bad gateway</html>")).message == ""
    assert describe_ozon_error(httpx.Response(500, json=["x"])).message == ""


async def test_a_400_fails_fast_with_ozons_words():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post("/v3/posting/fbo/list").mock(return_value=httpx.Response(
            400, json={"code": 3, "message": "PERIOD_IS_TOO_LONG", "details": []}))
        oz = client(FakeTime())
        with pytest.raises(FatalApiError) as info:
            await collect(oz.fbo_postings(WINDOW))
        await oz.aclose()
    assert not isinstance(info.value, AuthError)
    assert "HTTP 400" in str(info.value) and "INVALID_ARGUMENT: PERIOD_IS_TOO_LONG" in str(info.value)


SUBSCRIPTION_403 = {"code": 7, "message": "Доступно для продавцов с подпиской Управление отзывами или Premium Pro",
                    "details": []}
BAD_KEY_403 = {"code": 7, "message": "Invalid Api-Key, please check the key and try again", "details": []}


@pytest.mark.parametrize("path", ["/v2/review/list", "/v1/review/comment/list"])
async def test_a_403_on_review_methods_is_the_missing_subscription(path):
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(path).mock(return_value=httpx.Response(403, json=SUBSCRIPTION_403))
        if path != "/v2/review/list":
            router.post("/v2/review/list").mock(return_value=httpx.Response(
                200, json=load_fixture("ozon", "review_list_response.json") | {"has_next": False}))
        oz = client(FakeTime())
        with pytest.raises(StreamUnavailable) as info:
            await collect(oz.reviews(WINDOW))
        await oz.aclose()
    text = str(info.value)
    assert "«Управление отзывами»" in text and "Premium Pro" in text and "HTTP 403" in text
    assert f"POST {path}" in text and API_KEY not in text


@pytest.mark.parametrize("message", [BAD_KEY_403["message"], "Api-key is deactivated, use another one",
                                     "Api-Key is restricted to specific IP addresses", "403 Offer not signed"])
async def test_a_403_about_the_key_itself_stays_an_auth_error_on_review_methods(message):
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post("/v2/review/list").mock(return_value=httpx.Response(403, json={"code": 7, "message": message}))
        oz = client(FakeTime())
        with pytest.raises(AuthError) as info:
            await collect(oz.reviews(WINDOW))
        await oz.aclose()
    assert not isinstance(info.value, StreamUnavailable) and "token" in str(info.value)


@pytest.mark.parametrize("body", [SUBSCRIPTION_403, BAD_KEY_403])
async def test_a_403_on_orders_is_always_an_auth_error(body):
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post("/v4/posting/fbs/list").mock(return_value=httpx.Response(403, json=body))
        oz = client(FakeTime())
        with pytest.raises(AuthError) as info:
            await collect(oz.fbs_postings(WINDOW))
        await oz.aclose()
    assert not isinstance(info.value, StreamUnavailable)
    assert "PERMISSION_DENIED" in str(info.value) and API_KEY not in str(info.value)


INVALID_KEY_404 = {"code": 5, "message": "Invalid Api-Key, please check the key and try again", "details": []}


@pytest.mark.parametrize(("status", "body"), [
    (404, INVALID_KEY_404),  # as live probes report it ([3p])
    (400, {"code": 3, "message": "Client-Id header value should be positive integer", "details": []}),
    (401, {"code": 16, "message": "Api-key is deactivated, use another one or generate a new one"}),
])
async def test_ozons_key_refusals_are_auth_errors_whatever_the_status(status, body):
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post("/v4/posting/fbs/list").mock(return_value=httpx.Response(status, json=body))
        oz = client(FakeTime())
        with pytest.raises(AuthError) as info:
            await collect(oz.fbs_postings(WINDOW))
        await oz.aclose()
    assert info.value.status == status and body["message"] in str(info.value) and API_KEY not in str(info.value)


async def test_an_invalid_key_404_on_a_comment_list_is_not_taken_for_a_deleted_review():
    listing = load_fixture("ozon", "review_list_response.json") | {"has_next": False}
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post("/v2/review/list").mock(return_value=httpx.Response(200, json=listing))
        router.post("/v1/review/comment/list").mock(return_value=httpx.Response(404, json=INVALID_KEY_404))
        oz = client(FakeTime())
        with pytest.raises(AuthError):
            await collect(oz.reviews(WINDOW))
        await oz.aclose()


@pytest.mark.parametrize(("status", "body"), [
    (404, {"code": 5, "message": "review not found", "details": []}),
    (429, {"code": 8, "message": "You have reached request rate limit per second (Api-Key quota)"}),
    (500, {"code": 13, "message": "Internal error: Client-Id lookup failed"}),
])
def test_other_errors_are_not_read_as_a_refused_key(status, body):
    from connectors.ozon.client import token_rejected

    assert not token_rejected(status, describe_ozon_error(httpx.Response(status, json=body)))


async def test_a_429_waits_the_hinted_seconds_then_goes_on():
    time = FakeTime()
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post("/v3/posting/fbo/list").mock(side_effect=[
            httpx.Response(429, json=load_fixture("ozon", "error_429.json"),
                           headers={"retry-after": "2", "ratelimit-remaining": "0"}),
            httpx.Response(200, json={"cursor": "", "has_next": False, "postings": postings("f-1")}),
        ])
        oz = client(time)
        pages = await collect(oz.fbo_postings(WINDOW))
        stats = oz.http.stats
        await oz.aclose()
    assert route.call_count == 2 and len(pages) == 1
    assert stats.rate_limited == 1 and time.waited >= 2.0


async def test_a_429_asking_for_minutes_defers_to_the_next_run():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post("/v3/posting/fbo/list").mock(return_value=httpx.Response(
            429, json={"code": 8, "message": "Circle is open"}, headers={"retry-after": "600"}))
        oz = client(FakeTime())
        with pytest.raises(RetryDeferred) as info:
            await collect(oz.fbo_postings(WINDOW))
        await oz.aclose()
    assert info.value.retry_after == 600 and "Circle is open" in str(info.value)


async def test_requests_are_paced_below_ozons_50_per_second():
    time = FakeTime()
    pages = [httpx.Response(200, json={"cursor": f"c{k}", "has_next": k < 59, "postings": postings(f"p{k}")})
             for k in range(60)]
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post("/v3/posting/fbo/list").mock(side_effect=pages)
        oz = client(time)
        await collect(oz.fbo_postings(WINDOW))
        await oz.aclose()
    # 25 per second after a burst of 5: 60 requests take (60 - 5) / 25 = 2.2 s, never 50 in a second.
    assert time.waited == pytest.approx(2.2, abs=0.05)


async def test_a_review_deleted_before_its_comments_are_read_is_kept_without_them():
    listing = load_fixture("ozon", "review_list_response.json") | {"has_next": False}
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post("/v2/review/list").mock(return_value=httpx.Response(200, json=listing))
        router.post("/v1/review/comment/list").mock(return_value=httpx.Response(
            404, json={"code": 5, "message": "review not found", "details": []}))
        oz = client(FakeTime())
        [page] = await collect(oz.reviews(WINDOW))
        await oz.aclose()
    assert len(page.items) == 2 and not any("_comments" in r for r in page.items)
