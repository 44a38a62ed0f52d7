"""A platform's duty to report returns (Megamarket's `order/return` by the end of the next day,
megamarket.md §2.5) as ops tasks; deadlines worked by hand on the Moscow calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from connectors.capabilities import ActionKind, BuyerIdentity, Capabilities, ReturnDuty
from connectors.megamarket.capabilities import MEGAMARKET_CAPABILITIES
from connectors.records import OrderRecord, OrderStatus
from loyalty.action_job import plan_actions
from loyalty.action_settings import ActionSettings
from loyalty.return_reports import deadline, propose_return_reports
from store import PageWrite, Store
from store.store import StreamKey

MSK = timezone(timedelta(hours=3))
NOW = datetime(2026, 7, 21, 9, 0, tzinfo=UTC)
CAPS = {"megamarket": MEGAMARKET_CAPABILITIES,
        "plain": Capabilities(marketplace="plain", buyer_identity=BuyerIdentity.FULL)}


def order(order_id: str, status: OrderStatus, seen: datetime, *, mp: str = "megamarket",
          returned: str = "0") -> OrderRecord:
    created = datetime(2026, 7, 1, tzinfo=UTC)
    return OrderRecord(marketplace=mp, account="main", order_id=order_id, created_at=created, updated_at=seen,
                       status=status, platform_status="DELIVERED", fulfilment="dbs", currency="RUB",
                       total=Decimal("7470"), lines=(), returned_total=Decimal(returned), status_changed_at=seen)


def save(store: Store, records: list[OrderRecord]) -> None:
    for record in records:
        store.ensure_account(record.marketplace, record.account)
        store.write_page(StreamKey(record.marketplace, record.account, "orders"), PageWrite(orders=[record]), now=NOW)


def test_the_deadline_is_the_end_of_the_next_day_in_moscow() -> None:
    duty = MEGAMARKET_CAPABILITIES.return_duty
    assert duty is not None
    # 11:00 MSK on 20 July: due by the end of 21 July, Moscow time.
    assert deadline(datetime(2026, 7, 20, 8, 0, tzinfo=UTC), duty) == datetime(2026, 7, 21, 23, 59, 59, 999999,
                                                                                 tzinfo=MSK)
    # 22:30 UTC on 20 July is already 01:30 on the 21st in Moscow: due by the end of the 22nd.
    assert deadline(datetime(2026, 7, 20, 22, 30, tzinfo=UTC), duty).date().isoformat() == "2026-07-22"
    two_days = ReturnDuty(label="X", days=2, zone=UTC, steps=(), rules=())
    assert deadline(datetime(2026, 7, 20, 23, 0, tzinfo=UTC), two_days) == datetime(2026, 7, 22, 23, 59, 59, 999999,
                                                                                      tzinfo=UTC)


def test_one_task_per_recent_return_with_its_deadline(sqlite_store: Store) -> None:
    save(sqlite_store, [
        order("full", OrderStatus.RETURNED, datetime(2026, 7, 20, 8, 0, tzinfo=UTC)),
        order("part", OrderStatus.PARTIALLY_RETURNED, datetime(2026, 7, 20, 22, 30, tzinfo=UTC), returned="2490"),
        order("old", OrderStatus.RETURNED, NOW - timedelta(days=8)),  # its deadline passed long ago
        order("kept", OrderStatus.DELIVERED, datetime(2026, 7, 20, 8, 0, tzinfo=UTC)),
        order("elsewhere", OrderStatus.RETURNED, datetime(2026, 7, 20, 8, 0, tzinfo=UTC), mp="plain"),
    ])
    tasks = {t.target: t for t in propose_return_reports(sqlite_store, CAPS, NOW)}
    assert set(tasks) == {"full", "part"}
    full, part = tasks["full"], tasks["part"]
    assert full.kind is ActionKind.OPS_TASK and full.key == "return-report:megamarket:main:full:7470.00"
    assert full.params["deadline"] == "2026-07-21T23:59:59.999999+03:00"
    assert "by 2026-07-21 23:59 MSK" in full.title and "7,470.00 RUB" in full.title
    assert part.params["returned"] == "2490.00" and part.params["deadline"].startswith("2026-07-22T23:59:59")
    assert any("shipment part" in step and "2,490.00 RUB" in step for step in part.params["steps"])


def test_a_second_unit_returned_later_is_a_second_report(sqlite_store: Store) -> None:
    seen = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
    save(sqlite_store, [order("o1", OrderStatus.PARTIALLY_RETURNED, seen, returned="2490")])
    [first] = propose_return_reports(sqlite_store, CAPS, NOW)
    save(sqlite_store, [order("o1", OrderStatus.PARTIALLY_RETURNED, seen + timedelta(hours=5),
                                      returned="4980")])
    [second] = propose_return_reports(sqlite_store, CAPS, NOW)
    assert first.key != second.key and second.params["returned"] == "4980.00"


def test_the_planner_lists_them_beside_the_other_actions(sqlite_store: Store) -> None:
    save(sqlite_store, [order("r1", OrderStatus.RETURNED, datetime(2026, 7, 20, 8, 0, tzinfo=UTC))])
    planned = plan_actions(sqlite_store, ActionSettings(), CAPS, NOW)
    assert [a.key for a in planned if a.key.startswith("return-report:")] == [
        "return-report:megamarket:main:r1:7470.00"]
