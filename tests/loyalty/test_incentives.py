"""The review-incentive planner: per-SKU counts from the store, selection, budget, keys, tasks, invariant 4."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from connectors.capabilities import ActionKind, ActionRule, BuyerIdentity, Capabilities, Channel
from connectors.ozon.capabilities import OZON_CAPABILITIES
from connectors.records import OrderLine, OrderRecord, OrderStatus, ReviewRecord
from connectors.wildberries.capabilities import WILDBERRIES_CAPABILITIES
from connectors.yandex_market.capabilities import YANDEX_MARKET_CAPABILITIES
from loyalty.action_settings import ReviewIncentiveSettings
from loyalty.actions import Kind, Purpose
from loyalty.incentives import (
    GROUNDS,
    loyalty_discount_task,
    plan_review_incentives,
    propose_review_incentives,
    review_cost,
    review_window,
)
from loyalty.sku_stats import SkuStats, sku_stats, sku_stats_query
from store import PageWrite, Store
from store.store import StreamKey

DAY = timedelta(days=1)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
CAPS = {c.marketplace: c for c in (WILDBERRIES_CAPABILITIES, OZON_CAPABILITIES, YANDEX_MARKET_CAPABILITIES)}
SETTINGS = ReviewIncentiveSettings()  # 20 orders, <= 5 reviews, 10 x 150 points, fee 0.44, 10,000 ₽


def stat(sku: str, orders: int, reviews: int, *, marketplace: str = "wildberries", account: str = "main",
         name: str | None = None) -> SkuStats:
    return SkuStats(marketplace, account, sku, name, orders, orders, reviews)


def settings(**more) -> ReviewIncentiveSettings:
    return ReviewIncentiveSettings.model_validate(more)


# -- sku_stats on both backends -------------------------------------------------------------------

def order(mp: str, oid: str, at: datetime, *lines: tuple[str, int], status: OrderStatus = OrderStatus.DELIVERED,
          name: str | None = None) -> OrderRecord:
    return OrderRecord(
        marketplace=mp, account="main", order_id=oid, created_at=at, updated_at=at, status=status,
        platform_status=status.value, fulfilment="fbs", currency="RUB", total=Decimal(1000),
        lines=tuple(OrderLine(sku=sku, offer_id=f"art-{sku}", name=name, quantity=q, price=Decimal(500))
                    for sku, q in lines))


def review(mp: str, rid: str, sku: str, rating: int, *, at: datetime = NOW - 400 * DAY,
           product: str | None = None) -> ReviewRecord:
    return ReviewRecord(marketplace=mp, account="main", review_id=rid, sku=sku, rating=rating, text="текст",
                        pros="", cons="", created_at=at, answered=False, answer_text=None, product_name=product)


def test_sku_stats_counts_orders_units_and_all_reviews(store: Store):
    since, until = NOW - 30 * DAY, NOW
    wb = [
        order("wildberries", "w1", since, ("245178903", 1)),  # the start is inside
        order("wildberries", "w2", since + DAY, ("245178903", 2), ("245178903", 1), ("111", 1)),  # two lines
        order("wildberries", "w3", until - timedelta(seconds=1), ("245178903", 1)),
        order("wildberries", "w4", until, ("245178903", 1)),  # the end is outside
        order("wildberries", "w5", since - timedelta(seconds=1), ("245178903", 1)),  # before
        order("wildberries", "w6", since + DAY, ("245178903", 5), status=OrderStatus.CANCELLED),
        order("wildberries", "w7", since + DAY, ("245178903", 1), status=OrderStatus.RETURNED),
    ]
    store.write_page(StreamKey("wildberries", "main", "orders"), PageWrite(orders=wb), now=NOW)
    # WB feedbacks carry the same nmId as the order lines; reviews of any age count.
    store.write_page(StreamKey("wildberries", "main", "reviews"), PageWrite(reviews=[
        review("wildberries", "r1", "245178903", 5, product="Кружка"),
        review("wildberries", "r2", "245178903", 1, at=NOW + DAY),
        review("wildberries", "r3", "999", 4),  # no sales: not listed
    ]), now=NOW)
    store.write_page(StreamKey("ozon", "main", "orders"), PageWrite(orders=[
        order("ozon", "o1", since + 2 * DAY, ("1900000001", 3), name="Чайник"),
    ]), now=NOW)
    store.write_page(StreamKey("ozon", "main", "reviews"), PageWrite(reviews=[
        review("ozon", "q1", "1900000001", 2), review("wildberries", "q1", "1900000001", 2)]), now=NOW)

    got = sku_stats(store.engine, since, until)

    assert got == [
        SkuStats("ozon", "main", "1900000001", "Чайник", orders=1, units=3, reviews=1),
        SkuStats("wildberries", "main", "111", None, orders=1, units=1, reviews=0),
        SkuStats("wildberries", "main", "245178903", "Кружка", orders=4, units=6, reviews=2),
    ]


def test_sku_stats_is_empty_on_an_empty_store(store: Store):
    assert sku_stats(store.engine, NOW - 30 * DAY, NOW) == []


def test_sku_stats_refuses_naive_datetimes(store: Store):
    with pytest.raises(ValueError, match="aware"):
        sku_stats(store.engine, datetime(2026, 1, 1), NOW)  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgres"])
def test_sku_stats_sql_never_mentions_the_rating(dialect):
    sql = str(sku_stats_query(NOW - 30 * DAY, NOW).compile(dialect=dialect)).lower()
    assert "reviews" in sql and "count" in sql
    for column in ("rating", "text", "pros", "cons", "buyer_key", "answer"):
        assert column not in sql


def test_the_plan_from_the_store_does_not_change_with_the_ratings(store: Store):
    since, until = review_window(NOW, SETTINGS.window)
    orders = [order("wildberries", f"w{i}", since + timedelta(hours=i), ("245178903", 1)) for i in range(25)]
    store.write_page(StreamKey("wildberries", "main", "orders"), PageWrite(orders=orders), now=NOW)
    reviews = [review("wildberries", f"r{i}", "245178903", 1 + i % 5) for i in range(3)]
    store.write_page(StreamKey("wildberries", "main", "reviews"), PageWrite(reviews=reviews), now=NOW)
    before = propose_review_incentives(store.engine, CAPS, SETTINGS, NOW)
    assert [a.target for a in before] == ["245178903"]
    for stars in (1, 5):
        flipped = [dataclasses.replace(r, rating=stars) for r in reviews]
        store.write_page(StreamKey("wildberries", "main", "reviews"), PageWrite(reviews=flipped), now=NOW)
        assert propose_review_incentives(store.engine, CAPS, SETTINGS, NOW) == before


# -- selection, ranking and budget --------------------------------------------------------------------

def test_candidates_need_enough_orders_and_few_reviews():
    stats = [stat("ok", 20, 5), stat("few-orders", 19, 0), stat("many-reviews", 500, 6), stat("zero", 40, 0)]
    plan = plan_review_incentives(stats, CAPS, SETTINGS, NOW)
    assert [a.target for a in plan] == ["zero", "ok"]


def test_ranking_is_fewest_reviews_then_most_orders_then_sku():
    stats = [stat("c", 30, 1), stat("b", 90, 1), stat("a", 30, 1), stat("d", 25, 0),
             stat("a", 30, 1, marketplace="ozon")]
    plan = plan_review_incentives(stats, CAPS, settings(budget=100_000), NOW)
    assert [(a.target, a.marketplace) for a in plan] == [
        ("d", "wildberries"), ("b", "wildberries"), ("a", "ozon"), ("a", "wildberries"), ("c", "wildberries")]
    assert plan_review_incentives(list(reversed(stats)), CAPS, settings(budget=100_000), NOW) == plan


def test_the_budget_cuts_the_list_in_rank_order():
    stats = [stat(f"s{k}", 100 - k, 0) for k in range(10)]
    plan = plan_review_incentives(stats, CAPS, SETTINGS, NOW)  # 10,000 ₽ / 2,160 ₽ = 4 SKUs
    assert [a.target for a in plan] == ["s0", "s1", "s2", "s3"]
    assert sum(a.cost for a in plan) == Decimal(8640) <= SETTINGS.budget
    exact = plan_review_incentives(stats, CAPS, settings(budget=Decimal(6480)), NOW)
    assert len(exact) == 3  # a total equal to the budget fits
    assert plan_review_incentives(stats, CAPS, settings(budget=Decimal(2159)), NOW) == []


def test_disabled_settings_plan_nothing():
    assert plan_review_incentives([stat("a", 50, 0)], CAPS, settings(enabled=False), NOW) == []


# -- the task ---------------------------------------------------------------------------------------

def test_the_example_figure_and_the_task_shape():
    assert review_cost(SETTINGS) == Decimal(2160)  # 10 x 150 x 1.44
    assert review_cost(settings(points_per_review="100.3", fee_rate="0.1")) == Decimal(1103)  # 1103.3
    [task] = plan_review_incentives([stat("245178903", 42, 1, name="Кружка")], CAPS, SETTINGS, NOW)
    assert task.kind is Kind.OPS_TASK and task.purpose is Purpose.MARKETING
    assert (task.marketplace, task.account, task.target, task.created_at) == ("wildberries", "main", "245178903", NOW)
    assert task.cost == Decimal(2160)
    assert task.title == "enrol SKU 245178903 in «Баллы за отзывы», 10 reviews x 150 points, about 2,160 ₽"
    assert task.grounds == GROUNDS == frozenset({"sku.orders", "sku.reviews"})
    assert not any(g.startswith("review.") for g in task.grounds)
    p = task.params
    assert p["program"] == "Баллы за отзывы" and p["channel"] == "cabinet"
    assert (p["reviews"], p["points_per_review"], p["fee_rate"], p["estimated_cost_rub"]) == (10, "150", "0.44", "2160")
    assert p["why"] == {"orders": 42, "units": 42, "reviews": 1, "min_orders": 20, "max_reviews": 5}
    assert all(isinstance(s, str) and s for s in p["steps"]) and len(p["steps"]) >= 3
    assert any("nmId 245178903 («Кружка»)" in s for s in p["steps"])
    assert any("24 hours ahead" in s for s in p["steps"])
    assert any("whatever its rating" in r for r in p["rules"])
    assert any("1.44 ₽ per point" in r for r in p["rules"])
    since, until = review_window(NOW, SETTINGS.window)
    assert p["window"] == {"since": since.isoformat(), "until": until.isoformat()}


def test_each_platform_gets_its_program_name_and_cabinet_steps():
    stats = [stat("S", 50, 0, marketplace=mp) for mp in ("wildberries", "ozon", "yandex_market")]
    plan = {a.marketplace: a for a in plan_review_incentives(stats, CAPS, SETTINGS, NOW)}
    assert plan["ozon"].title == "enrol SKU S in «Отзывы за баллы», 10 reviews x 150 points, about 2,160 ₽"
    assert plan["yandex_market"].params["program"] == "Отзывы за баллы Яндекс Плюса"
    ozon = plan["ozon"].params
    assert any("Products → Reviews → «Отзывы за баллы»" in s for s in ozon["steps"])
    assert any("manual campaign" in s for s in ozon["steps"])
    assert any("1 point = 1 ₽" in r and "0.44" in r for r in ozon["rules"])
    assert any("never per rating" in r for r in ozon["rules"])
    assert any("seller balance" in s for s in plan["yandex_market"].params["steps"])
    assert any("only positive reviews" in r for r in plan["yandex_market"].params["rules"])
    for task in plan.values():
        assert "{" not in " ".join(task.params["steps"] + task.params["rules"])  # every placeholder filled


def test_keys_are_stable_across_re_planning_within_a_window():
    stats = [stat("a", 50, 0), stat("b", 40, 2, marketplace="ozon")]
    first = plan_review_incentives(stats, CAPS, SETTINGS, NOW)
    since, until = review_window(NOW, SETTINGS.window)
    assert since <= NOW - SETTINGS.window and until <= NOW < until + SETTINGS.window
    for later in (NOW + timedelta(hours=1), until + SETTINGS.window - timedelta(microseconds=1), until):
        again = plan_review_incentives(stats, CAPS, SETTINGS, later)
        assert [a.key for a in again] == [a.key for a in first]
    assert [a.key for a in first] == [f"review-points:wildberries:main:a:{since.date()}",
                                      f"review-points:ozon:main:b:{since.date()}"]
    next_window = plan_review_incentives(stats, CAPS, SETTINGS, until + SETTINGS.window)
    assert not {a.key for a in next_window} & {a.key for a in first}
    assert len({a.key for a in plan_review_incentives(
        [stat("a", 50, 0, account="main"), stat("a", 50, 0, account="second")], CAPS, SETTINGS, NOW)}) == 2


def test_no_task_where_the_platform_offers_no_program():
    none = Capabilities(marketplace="avito", buyer_identity=BuyerIdentity.FULL, actions={
        ActionKind.REVIEW_POINTS_PROGRAM: ActionRule(channel=Channel.NONE, note="no such program")})
    silent = Capabilities(marketplace="kaspi", buyer_identity=BuyerIdentity.FULL)  # never mentions it
    caps = {**CAPS, "avito": none, "kaspi": silent}
    stats = [stat("x", 999, 0, marketplace="avito"), stat("y", 999, 0, marketplace="kaspi"),
             stat("z", 999, 0, marketplace="megamarket"), stat("w", 20, 5)]
    plan = plan_review_incentives(stats, caps, settings(budget=Decimal(2160)), NOW)
    assert [(a.marketplace, a.target) for a in plan] == [("wildberries", "w")]  # they do not use up the budget


def test_a_platform_without_a_described_program_gets_generic_steps():
    other = Capabilities(marketplace="megamarket", buyer_identity=BuyerIdentity.NONE, actions={
        ActionKind.REVIEW_POINTS_PROGRAM: ActionRule(channel=Channel.CABINET, note="«Бонусы за отзывы»: cabinet")})
    [task] = plan_review_incentives([stat("m", 30, 0, marketplace="megamarket")], {"megamarket": other},
                                    SETTINGS, NOW)
    assert task.title == "enrol SKU m in «Бонусы за отзывы», 10 reviews x 150 points, about 2,160 ₽"
    assert task.params["steps"] and "{" not in " ".join(task.params["steps"])


def test_invariant_4_the_plan_cannot_see_ratings():
    # SkuStats has no rating field at all; the plan is a function of counts only.
    assert not any("rating" in f.name for f in dataclasses.fields(SkuStats))
    stats = [stat(f"s{k}", 20 + k, k % 6) for k in range(12)]
    plan = plan_review_incentives(stats, CAPS, SETTINGS, NOW)
    assert plan == plan_review_incentives(list(stats), CAPS, SETTINGS, NOW)
    assert all(a.grounds == GROUNDS for a in plan)


# -- WB «Скидка лояльности» -------------------------------------------------------------------------

def test_loyalty_discount_task():
    task = loyalty_discount_task("wildberries", "main", 5, 3000, NOW)
    assert task.kind is Kind.OPS_TASK and task.purpose is Purpose.MARKETING
    assert task.title == "set WB Скидка лояльности 5% from 3,000 ₽"
    assert task.key == "loyalty-discount:wildberries:main:5:3000"
    assert loyalty_discount_task("wildberries", "main", 5, Decimal("3000"), NOW + DAY).key == task.key
    assert task.cost == 0 and task.grounds == frozenset()
    assert task.params["percent"] == 5 and task.params["min_order_total_rub"] == "3000"
    assert any("tariff builder" in s for s in task.params["steps"])
    assert any("5% for buyers who bought out at least 3,000 ₽" in s for s in task.params["steps"])
    assert any("30 days" in s for s in task.params["steps"])


@pytest.mark.parametrize(("mp", "percent", "total"), [
    ("ozon", 5, 3000), ("wildberries", 2, 3000), ("wildberries", 51, 3000), ("wildberries", 5, 999),
    ("wildberries", 5, 100_001), ("wildberries", 5, Decimal("1500.5")), ("wildberries", True, 3000)])
def test_loyalty_discount_task_refuses_what_the_platform_does_not_offer(mp, percent, total):
    with pytest.raises(ValueError):
        loyalty_discount_task(mp, "main", percent, total, NOW)


# -- the budget is per window, across plans ----------------------------------------------------------

def test_tasks_already_in_the_outbox_use_up_the_windows_budget():
    stats = [stat(f"s{k}", 100 - k, 0) for k in range(6)]
    first = plan_review_incentives(stats, CAPS, SETTINGS, NOW)
    committed = {a.key: a.cost for a in first}
    assert plan_review_incentives(stats, CAPS, SETTINGS, NOW, committed=committed) == []
    # a person rejected one (it costs nothing now): one more SKU fits, the best one not proposed yet
    committed[first[0].key] = Decimal(0)
    assert [a.target for a in plan_review_incentives(stats, CAPS, SETTINGS, NOW, committed=committed)] == ["s4"]


def test_re_planning_after_the_counts_change_never_exceeds_the_budget(store: Store):
    from loyalty.action_settings import ActionSettings
    from loyalty.actions import ActionStatus
    from loyalty.outbox import action_rows, propose, set_status

    since, _ = review_window(NOW, SETTINGS.window)
    orders = [order("wildberries", f"{sku}-{i}", since + DAY, (sku, 1)) for sku in "abcdef" for i in range(25)]
    store.write_page(StreamKey("wildberries", "main", "orders"), PageWrite(orders=orders), now=NOW)

    def plan_and_store() -> list[str]:
        actions = propose_review_incentives(store.engine, CAPS, SETTINGS, NOW)
        propose(store, actions, CAPS, ActionSettings(), mode="dry-run", now=NOW)
        return [a.target for a in actions]

    assert plan_and_store() == ["a", "b", "c", "d"]  # 4 x 2,160 ₽ of 10,000 ₽
    # "a" gets reviews and drops out of the ranking; its task stays open and keeps its share
    many = [review("wildberries", f"r{i}", "a", 5, at=since + DAY) for i in range(6)]
    store.write_page(StreamKey("wildberries", "main", "reviews"), PageWrite(reviews=many), now=NOW)
    assert plan_and_store() == []
    tasks = {r["target"]: r for r in action_rows(store) if r["kind"] == "ops_task"}
    assert sum(Decimal(r["cost"]) for r in tasks.values()) <= SETTINGS.budget
    # a person rejects "b": its share is free again, and the next best SKU takes it
    set_status(store, [tasks["b"]["id"]], ActionStatus.REJECTED, allowed_from=(ActionStatus.OPEN,),
               mode="dry-run", now=NOW)
    assert plan_and_store() == ["e"]
