"""The RetailCRM sink against the RetailCRM emulator (written from ../shared/crm/README.md).

Expectations come from outside the sink: what the CRM should hold is worked out here from the
store's own tables with a plain reference (`expected_credits`: Moscow days worked by hand, +3 h, a
lot's activation rounded up to a midnight and its expiry down to the end of a day), and compared
with what the emulator recorded — not with what the sink says it sent.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import insert, select, text, update

from connectors.testing import FakeTime
from crm.outbox import DELIVERIES, summary
from crm.retailcrm.emulator import EmulatorConfig, create_app
from crm.retailcrm.settings import RetailCrmSettings
from crm.retailcrm.sink import NOT_CREDITED, TOO_SHORT, deliver, enqueue
from store import Store, connect, migrate
from store.loyalty_tables import LedgerEntryRow
from store.tables import OrderRow
from tests.conftest import synced_kaspi

KEY = "retailcrm-test-key"
LEDGER = LedgerEntryRow.__table__
ORDERS = OrderRow.__table__


def sink(**extra) -> RetailCrmSettings:
    return RetailCrmSettings(**{"url": "http://crm.example", "api_key": SecretStr(KEY), "max_per_second": 10, **extra})


def run_deliver(store: Store, app, now: datetime, settings: RetailCrmSettings | None = None):
    """One delivery on a fake clock: the sink's pacing is counted, not slept."""
    time = FakeTime()
    return asyncio.run(deliver(store, settings or sink(), now, claimer="r1", transport=httpx.ASGITransport(app),
                               clock=time.monotonic, sleep=time.sleep))


def drain(store: Store, app, now: datetime, settings: RetailCrmSettings | None = None, rounds: int = 30):
    """Enqueue and deliver until nothing is pending, moving the business clock past every backoff."""
    results = []
    for _ in range(rounds):
        enqueue(store, settings or sink(), now)
        results.append(run_deliver(store, app, now, settings))
        with store.engine.connect() as conn:
            if not conn.execute(select(DELIVERIES.c.id).where(DELIVERIES.c.status == "pending")).first():
                return results
        now += timedelta(hours=7)
    raise AssertionError("rows still pending")


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store after one sync of the Kaspi emulator and one loyalty run: orders, members, lots."""
    return synced_kaspi(tmp_path_factory.mktemp("retailcrm"), orders=120)


def copy_of(db: Path, tmp_path: Path) -> Store:
    target = tmp_path / "store.db"
    target.write_bytes(db.read_bytes())
    return Store(connect(f"sqlite:///{target}"))


def msk_activation(at: datetime) -> date:
    local = at.astimezone(UTC) + timedelta(hours=3)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.date() if local == midnight else local.date() + timedelta(days=1)


def msk_expiry(at: datetime) -> date:
    return (at.astimezone(UTC) + timedelta(hours=3)).date() - timedelta(days=1)


def expected_credits(store: Store, now: datetime) -> Counter:
    """Every usable lot of an identity the buyer still holds points of, as the CRM should show it."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(LEDGER).where(LEDGER.c.kind.in_(("earn", "reverse")))).mappings().all()
    net: Counter = Counter()
    for r in rows:
        net[(r["marketplace"], r["account"], r["order_id"], r["rule"])] += Decimal(r["amount"])
    out: Counter = Counter()
    for r in rows:
        if r["kind"] != "earn" or r["available_from"] is None or r["available_from"] > now:
            continue
        if net[(r["marketplace"], r["account"], r["order_id"], r["rule"])] <= 0:
            continue
        expire = msk_expiry(r["expires_at"]) if r["expires_at"] else None
        out[(f"ls:{r['marketplace']}:{r['account']}:{r['buyer_key']}", Decimal(r["amount"]),
             msk_activation(r["available_from"]), expire)] += 1
    return out


def credits_in(app) -> Counter:
    crm = app.state.crm
    owner = {a["id"]: a["customer"] for a in crm.accounts.values()}
    return Counter((owner[o.account], o.amount, date.fromisoformat(o.activation),
                    date.fromisoformat(o.expire) if o.expire else None) for o in crm.credits())


def test_msk_reference_days_are_right_on_paper():
    # 20:59 UTC on 1 March is 23:59 in Moscow: usable from 2 March; 21:00 UTC is midnight: 2 March.
    assert msk_activation(datetime(2026, 3, 1, 20, 59, tzinfo=UTC)) == date(2026, 3, 2)
    assert msk_activation(datetime(2026, 3, 1, 21, 0, tzinfo=UTC)) == date(2026, 3, 2)
    # Expiring 09:00 UTC (12:00 MSK) on 31 March: the last whole day is 30 March.
    assert msk_expiry(datetime(2026, 3, 31, 9, 0, tzinfo=UTC)) == date(2026, 3, 30)


def test_a_backfill_sends_every_member_order_and_usable_lot_once_though_answers_are_lost(synced, tmp_path):
    """Every fourth credit is applied and its connection dropped, and 429/503 storms come first:
    the CRM ends with exactly the credits the ledger implies, each customer and order once."""
    store = copy_of(synced, tmp_path)
    app = create_app(EmulatorConfig(api_key=KEY, drop_every=4, throttle=6))
    now = datetime.now(UTC)
    results = drain(store, app, now)
    crm = app.state.crm

    want = expected_credits(store, now)
    assert sum(want.values()) > 30
    assert credits_in(app) == want
    assert crm.dropped >= 5 and sum(r.found for r in results) == crm.dropped  # each lost answer found, not re-sent
    with store.engine.connect() as conn:
        members = {f"ls:{mp}:{acct}:{buyer}" for mp, acct, buyer in conn.execute(
            select(ORDERS.c.marketplace, ORDERS.c.account, ORDERS.c.buyer_key).where(ORDERS.c.buyer_key.is_not(None)))}
        orders = {f"{mp}:{acct}:{oid}": status for mp, acct, oid, status in conn.execute(
            select(ORDERS.c.marketplace, ORDERS.c.account, ORDERS.c.order_id, ORDERS.c.status)
            .where(ORDERS.c.buyer_key.is_not(None)))}
    assert set(crm.customers) == members
    assert {k: o["status"] for k, o in crm.orders.items()} == {k: sink().statuses[s] for k, s in orders.items()}
    assert all(o["customer"]["externalId"] in members for o in crm.orders.values())
    # No name, phone or address of a buyer went to the CRM: customers carry the keyed hash only.
    assert all(set(c) == {"externalId", "firstName", "id"} for c in crm.customers.values())
    assert all(a["active"] for a in crm.accounts.values())
    [line] = summary(store)
    assert line.startswith(f"RetailCRM retailcrm: {sum(want.values()) + len(members) + len(orders)} sent, 0 waiting")

    # A second run finds nothing new and sends nothing.
    requests = crm.requests
    assert enqueue(store, sink(), now) == 0
    run_deliver(store, app, now)
    assert crm.requests - requests == 1  # GET settings only


def test_a_changed_order_is_edited_and_an_upload_refusal_460_is_read_not_lost(synced, tmp_path):
    store = copy_of(synced, tmp_path)
    app = create_app(EmulatorConfig(api_key=KEY))
    with store.engine.begin() as conn:
        first = conn.execute(select(ORDERS).where(ORDERS.c.buyer_key.is_not(None)).order_by(ORDERS.c.order_id)
                             .limit(1)).mappings().one()
    external = f"{first['marketplace']}:{first['account']}:{first['order_id']}"
    # The CRM has this order already (an earlier install, a lost answer): the upload answers 460 for it.
    app.state.crm.orders[external] = {"externalId": external, "status": "new", "id": 999}
    drain(store, app, datetime.now(UTC), sink(points=False))
    assert app.state.crm.orders[external]["status"] == sink().statuses[first["status"]]  # edited by externalId
    assert app.state.crm.credits() == []  # points = false

    with store.engine.begin() as conn:
        conn.execute(update(ORDERS).where(ORDERS.c.order_id == first["order_id"])
                     .values(status="returned", changed_at=datetime.now(UTC) + timedelta(seconds=1)))
    count = len(app.state.crm.orders)
    drain(store, app, datetime.now(UTC) + timedelta(seconds=2), sink(points=False))
    assert app.state.crm.orders[external]["status"] == "cancel-other" and len(app.state.crm.orders) == count

    # The platform corrects itself: back to the first status, which the CRM had once. Sent again.
    with store.engine.begin() as conn:
        conn.execute(update(ORDERS).where(ORDERS.c.order_id == first["order_id"])
                     .values(status=first["status"], changed_at=datetime.now(UTC) + timedelta(seconds=3)))
    drain(store, app, datetime.now(UTC) + timedelta(seconds=4), sink(points=False))
    assert app.state.crm.orders[external]["status"] == sink().statuses[first["status"]]


def _member_with_lots(store: Store, now: datetime) -> str:
    """One Kaspi member with one delivered order and hand-written ledger entries (see the test)."""
    day = timedelta(days=1)
    with store.engine.begin() as conn:
        conn.execute(insert(ORDERS).values(marketplace="kaspi", account="main", order_id="T1",
                                           created_at=now - 40 * day, updated_at=now - 30 * day,
                                           status="delivered", platform_status="COMPLETED",
                                           buyer_key="b" * 64, currency="KZT", total=Decimal(5000),
                                           status_changed_at=now - 30 * day, changed_at=now - 30 * day))

        def entry(kind, amount, key, rule="rate", avail=None, expires=None, at=now - 30 * day):
            conn.execute(insert(LEDGER).values(marketplace="kaspi", account="main", buyer_key="b" * 64, kind=kind,
                                               amount=Decimal(amount), idempotency_key=key, order_id="T1", rule=rule,
                                               effective_at=at, available_from=avail, expires_at=expires))

        # A: usable since 20 days, credited; then taken back whole (a late return): a charge of 100.
        entry("earn", 100, "earn:kaspi:main:T1:rate", avail=now - 20 * day, expires=now + 300 * day)
        # B: taken back before it was usable: neither sent.
        entry("earn", 40, "earn:kaspi:main:T1:welcome", rule="welcome", avail=now - 20 * day,
              expires=now + 300 * day)
        entry("reverse", -40, "reverse:kaspi:main:T1:welcome#1", rule="welcome", at=now - 25 * day)
        # C: usable for six hours only: no whole day on the CRM's calendar.
        entry("earn", 25, "earn:kaspi:main:T1:offer:flash", rule="offer:flash", avail=now - 20 * day,
              expires=now - 20 * day + timedelta(hours=6))
        # A spend of 30 (a promo code paid with points) ten days ago.
        entry("spend", -30, "spend:promo:1", rule="promo", at=now - 10 * day)
    return "ls:kaspi:main:" + "b" * 64


@pytest.fixture(params=["sqlite", "postgresql"])
def either_store(request, tmp_path: Path) -> Store:
    """A migrated store on SQLite, then on PostgreSQL (the sink's anti-joins, RETURNING claims and
    FILTER counts run on both)."""
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else \
        request.getfixturevalue("pg_databases")()
    engine = connect(url)
    migrate(engine)
    yield Store(engine)
    engine.dispose()


def test_take_backs_spends_and_lots_the_crm_cannot_hold(either_store: Store):
    sqlite_store = either_store  # the same test on both databases
    now = datetime.now(UTC)
    customer = _member_with_lots(sqlite_store, now)
    app = create_app(EmulatorConfig(api_key=KEY))
    drain(sqlite_store, app, now)
    crm = app.state.crm
    usable = msk_activation(now - timedelta(days=20)).isoformat()
    assert [(o.amount, o.activation) for o in crm.credits()] == [(Decimal(100), usable)]
    assert Counter(o.amount for o in crm.charges()) == Counter({Decimal(30): 1})

    with sqlite_store.engine.begin() as conn:
        conn.execute(insert(LEDGER).values(marketplace="kaspi", account="main", buyer_key="b" * 64, kind="reverse",
                                           amount=Decimal(-70), idempotency_key="reverse:kaspi:main:T1:rate#1",
                                           order_id="T1", rule="rate", effective_at=now))
    drain(sqlite_store, app, now)
    assert sorted(o.amount for o in crm.charges()) == [Decimal(30), Decimal(70)]
    assert crm.active_balance(1, now) == 0
    with sqlite_store.engine.connect() as conn:
        fates = dict(conn.execute(select(DELIVERIES.c.event_id, DELIVERIES.c.last_error)
                                  .where(DELIVERIES.c.status == "skipped")).all())
    assert fates == {"earn:kaspi:main:T1:welcome": NOT_CREDITED, "reverse:kaspi:main:T1:welcome#1": NOT_CREDITED,
                     "earn:kaspi:main:T1:offer:flash": TOO_SHORT}
    assert customer in crm.customers


def test_a_charge_waits_for_its_credit_to_be_active(sqlite_store: Store):
    """A lot usable from now is credited from the next Moscow midnight; a take-back of part of it
    cannot be charged before then (a charge is taken from active bonuses): it waits, not dies."""
    now = datetime.now(UTC)
    with sqlite_store.engine.begin() as conn:
        conn.execute(insert(ORDERS).values(marketplace="kaspi", account="main", order_id="T2", created_at=now,
                                           updated_at=now, status="partially_returned", platform_status="RETURNED",
                                           buyer_key="c" * 64, currency="KZT", total=Decimal(900),
                                           status_changed_at=now, changed_at=now))
        for kind, amount, key in (("earn", 90, "earn:kaspi:main:T2:rate"),
                                  ("reverse", -40, "reverse:kaspi:main:T2:rate#1")):
            conn.execute(insert(LEDGER).values(marketplace="kaspi", account="main", buyer_key="c" * 64, kind=kind,
                                               amount=Decimal(amount), idempotency_key=key, order_id="T2", rule="rate",
                                               effective_at=now, available_from=now if kind == "earn" else None,
                                               expires_at=now + timedelta(days=90) if kind == "earn" else None))
    app = create_app(EmulatorConfig(api_key=KEY))
    enqueue(sqlite_store, sink(), now)
    result = run_deliver(sqlite_store, app, now)
    assert [o.amount for o in app.state.crm.credits()] == [Decimal(90)] and app.state.crm.charges() == []
    assert result.waiting == 1 and result.dead == 0
    midnight = datetime.combine(msk_activation(now), datetime.min.time(), UTC) - timedelta(hours=3)
    with sqlite_store.engine.connect() as conn:
        due, status = conn.execute(select(DELIVERIES.c.next_attempt_at, DELIVERIES.c.status)
                                   .where(DELIVERIES.c.event_id == "reverse:kaspi:main:T2:rate#1")).one()
    assert (due, status) == (midnight, "pending")


def test_a_wrong_key_touches_nothing_and_says_so_without_the_key(synced, tmp_path):
    store = copy_of(synced, tmp_path)
    app = create_app(EmulatorConfig(api_key=KEY))
    wrong = sink(api_key=SecretStr("wrong-key-12345"))
    assert enqueue(store, wrong, datetime.now(UTC)) > 0
    result = run_deliver(store, app, datetime.now(UTC), wrong)
    [error] = result.errors
    assert "token was rejected" in error and "wrong-key-12345" not in error
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT max(attempts) FROM webhook_deliveries")).scalar() == 0
    assert app.state.crm.customers == {}


def test_config_reads_the_key_from_the_environment_and_names_what_is_wrong(tmp_path):
    from app.config import load_config
    from connectors.errors import ConfigError

    path = tmp_path / "loyalsync.toml"
    path.write_text('[crm.retailcrm]\nurl = "https://shop.retailcrm.ru/api/v5/"\nsite = "shop"\n'
                    '[crm.retailcrm.statuses]\ndelivered = "done"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={}, connectors={})
    assert any("crm.retailcrm.api_key_env: LOYALSYNC_RETAILCRM_API_KEY is not set" in p for p in caught.value.problems)
    cfg = load_config(path, env={"LOYALSYNC_RETAILCRM_API_KEY": "k-1"}, connectors={})
    crm = cfg.settings.crm.retailcrm
    assert crm.url == "https://shop.retailcrm.ru" and crm.api_key.get_secret_value() == "k-1"
    assert crm.statuses["delivered"] == "done" and crm.statuses["created"] == "new"
    assert "k-1" not in json.dumps(cfg.settings.model_dump(mode="json"))

    path.write_text('[crm.retailcrm]\nurl = "shop.retailcrm.ru"\n[crm.retailcrm.statuses]\nshipped = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"LOYALSYNC_RETAILCRM_API_KEY": "k-1"}, connectors={})
    text_ = "\n".join(caught.value.problems)
    assert "crm.retailcrm.url" in text_ and "is not an http(s) URL" in text_
    assert "crm.retailcrm.statuses" in text_ and "shipped: not a loyalsync order status" in text_


def test_an_order_committed_after_the_cursor_passed_its_time_is_still_sent(sqlite_store: Store):
    now = datetime.now(UTC)
    _member_with_lots(sqlite_store, now)

    def order(number: str, changed_at: datetime) -> None:
        with sqlite_store.engine.begin() as conn:
            conn.execute(insert(ORDERS).values(marketplace="kaspi", account="main", order_id=number, created_at=now,
                                               updated_at=now, status="created", platform_status="NEW",
                                               buyer_key="b" * 64, currency="KZT", total=Decimal(700),
                                               status_changed_at=now, changed_at=changed_at))

    order("T8", now)  # the cursor stands here after the first run
    app = create_app(EmulatorConfig(api_key=KEY))
    drain(sqlite_store, app, now)
    order("T9", now - timedelta(minutes=4))  # a sync that stamped its write before that run, committed after
    drain(sqlite_store, app, now)
    assert sorted(o["number"] for o in app.state.crm.orders.values()) == ["T1", "T8", "T9"]
