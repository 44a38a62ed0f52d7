"""Signed webhooks end to end: a store filled by a real sync and loyalty run, the outbox, and a
receiver written here that checks every signature with its own HMAC code and keeps the event ids it
has processed, as a receiver is told to (docs/webhooks/event.schema.json)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from random import Random

import httpx
import pytest
from jsonschema import Draft202012Validator
from pydantic import SecretStr
from sqlalchemy import text
from typer.testing import CliRunner

from app.cli import app as cli
from connectors.records import OrderRecord, OrderStatus
from crm.settings import WebhookEndpoint
from crm.signing import verify
from crm.webhooks import MAX_ATTEMPTS, deliver, deliveries, enqueue, summary
from store import PageWrite, Store, connect
from store.store import StreamKey
from tests.conftest import synced_kaspi

SECRET = "whsec-test-5f1d0c"
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "webhooks" / "event.schema.json").read_text())


class Killed(BaseException):
    """The process dies mid-send (SIGKILL): nothing after it runs."""


class Receiver(httpx.AsyncBaseTransport):
    """A CRM's webhook endpoint: checks the signature (its own HMAC code, not crm.signing), keeps
    the ids it processed and skips repeats. `script` says what happens to the n-th POST (1-based):
    "500", "400" or "503" answers so; "lost" processes it and drops the answer; "kill" processes it
    and the sender dies."""

    def __init__(self, script: dict[int, str] | None = None, refuse_types: frozenset[str] = frozenset()):
        self.script = script or {}
        self.refuse_types = refuse_types
        self.posts = 0
        self.bad_signatures = 0
        self.processed: list[str] = []  # every event id taken, repeats included
        self.bodies: list[dict] = []

    def signed(self, request: httpx.Request) -> bool:
        header = request.headers.get("Loyalsync-Signature", "")
        parts = dict(p.split("=", 1) for p in header.split(","))
        expected = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + request.content, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts.get("v1", ""))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.posts += 1
        step = self.script.get(self.posts)
        if not self.signed(request):
            self.bad_signatures += 1
            return httpx.Response(401)
        body = json.loads(request.content)
        if step in ("500", "503"):
            return httpx.Response(int(step))
        if step == "400" or body["type"] in self.refuse_types:
            return httpx.Response(400, json={"error": "unknown customer"})
        assert request.headers["Loyalsync-Event-Id"] == body["id"]
        if body["id"] not in self.processed:
            self.bodies.append(body)
        self.processed.append(body["id"])
        if step == "lost":
            raise httpx.ReadTimeout("the answer was lost", request=request)
        if step == "kill":
            raise Killed
        return httpx.Response(200)


def endpoint(**extra) -> WebhookEndpoint:
    return WebhookEndpoint(name="crm", url="https://crm.example/hooks/loyalsync", secret_env="CRM_SECRET",
                           secret=SecretStr(SECRET), **{"max_per_second": 1000, **extra})


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store after one sync of the Kaspi emulator and one loyalty run: orders, members, lots."""
    return synced_kaspi(tmp_path_factory.mktemp("webhooks"), orders=120)


def copy_of(db: Path, tmp_path: Path) -> Store:
    target = tmp_path / "store.db"
    target.write_bytes(db.read_bytes())
    return Store(connect(f"sqlite:///{target}"))


def drain(store: Store, receiver: Receiver, now: datetime, *, claimer: str = "replica-1", rounds: int = 40) -> datetime:
    """Deliver until nothing is pending, moving the clock past every backoff; the time it ended."""
    for _ in range(rounds):
        asyncio.run(deliver(store, [endpoint()], now, claimer=claimer, transport=receiver, rng=Random(1)))
        if not deliveries(store, status="pending", limit=1):
            return now
        now += timedelta(hours=7)
    raise AssertionError("deliveries still pending")


def test_every_event_reaches_the_receiver_signed_and_once_despite_failures_and_a_killed_sender(synced, tmp_path):
    store = copy_of(synced, tmp_path)
    now = datetime.now(UTC)
    added = enqueue(store, [endpoint()], now)
    with store.engine.connect() as conn:
        ledger = conn.exec_driver_sql("SELECT COUNT(*) FROM loyalty_ledger").scalar()
        members = conn.exec_driver_sql("SELECT COUNT(DISTINCT buyer_key) FROM loyalty_ledger").scalar()
        orders = conn.exec_driver_sql("SELECT COUNT(*) FROM orders WHERE changed_at IS NOT NULL").scalar()
    # One event per ledger entry, one per member, one per order (no action was sent here).
    assert ledger > 50 and members > 10 and added == ledger + members + orders
    assert enqueue(store, [endpoint()], now) == 0  # read again: nothing new

    receiver = Receiver({1: "500", 2: "500", 3: "503", 5: "lost", 9: "kill"})
    with pytest.raises(Killed):
        asyncio.run(deliver(store, [endpoint()], now, claimer="replica-1", transport=receiver, rng=Random(1)))
    store.engine.dispose()

    restarted = Store(connect(f"sqlite:///{tmp_path / 'store.db'}"))  # the daemon starts again
    assert enqueue(restarted, [endpoint()], now) == 0
    drain(restarted, receiver, now)

    assert receiver.bad_signatures == 0
    expected = {d["event_id"] for d in deliveries(restarted, limit=100_000)}
    assert len(expected) == added
    assert set(receiver.processed) == expected  # every event arrived ...
    repeats = {i: n for i, n in Counter(receiver.processed).items() if n > 1}
    assert len(repeats) == 2 and set(repeats.values()) == {2}  # ... twice only where the answer was lost
    assert {d["status"] for d in deliveries(restarted, limit=100_000)} == {"sent"}
    restarted.engine.dispose()


def test_every_payload_fits_the_documented_schema_and_names_no_buyer(synced, tmp_path):
    store = copy_of(synced, tmp_path)
    enqueue(store, [endpoint()], datetime.now(UTC))
    receiver = Receiver()
    drain(store, receiver, datetime.now(UTC))
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems = [f"{b['type']}: {e.message}" for b in receiver.bodies for e in validator.iter_errors(b)]
    assert problems == []
    assert {b["type"] for b in receiver.bodies} >= {"order.created", "member.joined", "points.earned"}
    text = json.dumps(receiver.bodies, ensure_ascii=False)
    assert "+7" not in text and "cellPhone" not in text and "firstName" not in text
    earned = [b for b in receiver.bodies if b["type"] == "points.earned"]
    with store.engine.connect() as conn:
        total = conn.exec_driver_sql("SELECT SUM(amount) FROM loyalty_ledger WHERE kind = 'earn'").scalar()
    assert sum(Decimal(b["data"]["amount"]) for b in earned) == Decimal(str(total)).quantize(Decimal("0.01"))
    store.engine.dispose()


def test_a_refused_event_is_a_dead_letter_the_cli_sends_again(synced, tmp_path, monkeypatch):
    store = copy_of(synced, tmp_path)
    now = datetime.now(UTC)
    enqueue(store, [endpoint(events=("member.*",))], now)
    receiver = Receiver(refuse_types=frozenset({"member.joined"}))
    drain(store, receiver, now)
    dead = deliveries(store, status="dead", limit=10_000)
    assert dead and all(d["attempts"] == 1 and "HTTP 400" in d["last_error"] for d in dead)
    [line] = summary(store)
    assert line.startswith(f"webhook crm: 0 sent, 0 waiting, {len(dead)} dead (last error: HTTP 400")
    assert "--resend-dead" in line

    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = CliRunner().invoke(cli, ["webhooks", "--resend-dead", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert f"{len(dead)} dead letter(s) due again" in result.stderr
    receiver.refuse_types = frozenset()
    drain(store, receiver, datetime.now(UTC))
    assert {d["status"] for d in deliveries(store, limit=10_000)} == {"sent"}
    assert len(set(receiver.processed)) == len(dead)
    store.engine.dispose()


def test_an_endpoint_that_stays_down_is_retried_with_doubling_waits_then_given_up(sqlite_store):
    record = OrderRecord(marketplace="kaspi", account="main", order_id="A1",
                         created_at=datetime(2026, 7, 1, tzinfo=UTC),
                         updated_at=datetime(2026, 7, 1, tzinfo=UTC), status=OrderStatus.CREATED, platform_status="NEW",
                         fulfilment=None, currency="KZT", total=Decimal("100"), lines=())
    sqlite_store.ensure_account("kaspi", "main")
    sqlite_store.write_page(StreamKey("kaspi", "main", "orders"), PageWrite(orders=[record]), now=datetime.now(UTC))
    now = datetime(2026, 7, 2, tzinfo=UTC)
    assert enqueue(sqlite_store, [endpoint()], now) == 1
    receiver = Receiver({n: "503" for n in range(1, 100)})
    waits = []
    for _ in range(MAX_ATTEMPTS):
        asyncio.run(deliver(sqlite_store, [endpoint()], now, claimer="r", transport=receiver, rng=Random(3)))
        [row] = deliveries(sqlite_store, limit=1)
        if row["status"] == "dead":
            break
        waits.append(row["next_attempt_at"] - now)
        now = row["next_attempt_at"]
    assert row["status"] == "dead" and row["attempts"] == MAX_ATTEMPTS == receiver.posts
    assert "HTTP 503: 12 attempts failed" in row["last_error"]
    # 30 s, then doubling (±10 %), never more than 6 h apart.
    assert timedelta(seconds=27) <= waits[0] <= timedelta(seconds=33)
    assert all(0.85 * 2 <= b / a <= 1.2 * 2 for a, b in zip(waits[:6], waits[1:7], strict=True))
    assert max(waits) <= timedelta(hours=6, minutes=36)


def test_an_order_is_created_once_then_changed(store):
    sqlite_store = store  # SQLite and PostgreSQL: the outbox's insert-or-ignore and row-value cursors
    key = StreamKey("kaspi", "main", "orders")
    sqlite_store.ensure_account("kaspi", "main")
    base = dict(marketplace="kaspi", account="main", order_id="A1", created_at=datetime(2026, 7, 1, tzinfo=UTC),
                updated_at=datetime(2026, 7, 1, tzinfo=UTC), platform_status="x", fulfilment=None, currency="KZT",
                total=Decimal("100"), lines=())
    sqlite_store.write_page(key, PageWrite(orders=[OrderRecord(status=OrderStatus.CREATED, **base)]),
                            now=datetime.now(UTC))
    enqueue(sqlite_store, [endpoint()], datetime.now(UTC))
    sqlite_store.write_page(key, PageWrite(orders=[OrderRecord(status=OrderStatus.DELIVERED, **base)]),
                            now=datetime.now(UTC))
    enqueue(sqlite_store, [endpoint()], datetime.now(UTC))
    sqlite_store.write_page(key, PageWrite(orders=[OrderRecord(status=OrderStatus.CREATED, **base)]),
                            now=datetime.now(UTC))  # the platform corrects itself: back to created, which is news
    enqueue(sqlite_store, [endpoint()], datetime.now(UTC))
    rows = sorted(deliveries(sqlite_store), key=lambda d: d["id"])
    assert [(d["event_type"], d["event_id"].rsplit("@", 1)[0]) for d in rows] == [
        ("order.created", "order:kaspi:main:A1:created:100.00:0.00"),
        ("order.changed", "order:kaspi:main:A1:delivered:100.00:0.00"),
        ("order.changed", "order:kaspi:main:A1:created:100.00:0.00")]


def test_a_change_committed_after_the_cursor_passed_its_time_is_still_sent(sqlite_store: Store):
    """A sync transaction that stamped `changed_at` before the last run but committed after it:
    the next run reads a margin before its cursor, and the change is sent (once)."""
    key = StreamKey("kaspi", "main", "orders")
    sqlite_store.ensure_account("kaspi", "main")
    now = datetime.now(UTC)
    base = dict(marketplace="kaspi", account="main", created_at=datetime(2026, 7, 1, tzinfo=UTC),
                updated_at=datetime(2026, 7, 1, tzinfo=UTC), platform_status="x", fulfilment=None, currency="KZT",
                total=Decimal("100"), lines=(), status=OrderStatus.CREATED)
    sqlite_store.write_page(key, PageWrite(orders=[OrderRecord(order_id="B1", **base)]), now=now)
    enqueue(sqlite_store, [endpoint()], now)
    late = now - timedelta(minutes=3)  # stamped three minutes before the cursor, committed now
    sqlite_store.write_page(key, PageWrite(orders=[OrderRecord(order_id="B2", **base)]), now=late)
    with sqlite_store.engine.begin() as conn:
        conn.execute(text("UPDATE orders SET changed_at = :t WHERE order_id = 'B2'"), {"t": late})
    enqueue(sqlite_store, [endpoint()], now)
    enqueue(sqlite_store, [endpoint()], now)
    ids = [d["event_id"] for d in deliveries(sqlite_store)]
    assert sorted(i.rsplit("@", 1)[0] for i in ids) == ["order:kaspi:main:B1:created:100.00:0.00",
                                                       "order:kaspi:main:B2:created:100.00:0.00"]


def test_the_signature_is_hmac_sha256_of_the_timestamp_and_body():
    body, t = b'{"id":"x"}', 1_800_000_000
    good = f"t={t},v1={hmac.new(b's3', f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"
    assert verify("s3", good, body, now=t + 10)
    assert not verify("s3", good, body + b" ", now=t + 10)  # the body changed
    assert not verify("other", good, body, now=t + 10)  # another secret
    assert not verify("s3", good, body, now=t + 301)  # replayed too late
    assert not verify("s3", "garbage", body, now=t) and not verify("s3", None, body, now=t)


def test_a_member_joins_once_and_each_entry_is_one_points_event(store):
    from sqlalchemy import insert

    from loyalty.ledger import LEDGER

    at = datetime(2026, 7, 1, tzinfo=UTC)

    def entry(buyer: str, kind: str, amount: str, n: int) -> dict:
        return {"marketplace": "kaspi", "account": "main", "buyer_key": buyer, "kind": kind, "amount": Decimal(amount),
                "idempotency_key": f"{kind}:kaspi:main:{buyer}:{n}", "effective_at": at}

    with store.engine.begin() as conn:
        conn.execute(insert(LEDGER), [entry("b1", "earn", "120", 1), entry("b2", "earn", "35.5", 2)])
    enqueue(store, [endpoint()], at)
    with store.engine.begin() as conn:
        conn.execute(insert(LEDGER), [entry("b1", "spend", "-20", 3), entry("b1", "expire", "-100", 4)])
    enqueue(store, [endpoint()], at)
    got = sorted((d["event_type"], d["event_id"]) for d in deliveries(store))
    assert got == [("member.joined", "member:kaspi:main:b1"), ("member.joined", "member:kaspi:main:b2"),
                   ("points.earned", "points:earn:kaspi:main:b1:1"), ("points.earned", "points:earn:kaspi:main:b2:2"),
                   ("points.expired", "points:expire:kaspi:main:b1:4"),
                   ("points.spent", "points:spend:kaspi:main:b1:3")]


def test_a_batch_boundary_inside_one_instant_loses_no_order_and_no_action(store, monkeypatch):
    """Ten orders written in one page share `changed_at`; read three at a time, the (time, key)
    cursor still finds each once. The same for actions sent in the same instant."""
    from sqlalchemy import insert

    import crm.events
    from store.loyalty_tables import ActionRow

    monkeypatch.setattr(crm.events, "BATCH", 3)
    at = datetime(2026, 7, 1, tzinfo=UTC)
    store.ensure_account("kaspi", "main")
    orders = [OrderRecord(marketplace="kaspi", account="main", order_id=f"K{n:02}", created_at=at, updated_at=at,
                          status=OrderStatus.CREATED, platform_status="x", fulfilment=None, currency="KZT",
                          total=Decimal(10 + n), lines=()) for n in range(10)]
    store.write_page(StreamKey("kaspi", "main", "orders"), PageWrite(orders=orders), now=datetime.now(UTC))
    with store.engine.begin() as conn:
        conn.execute(insert(ActionRow.__table__), [  # type: ignore[attr-defined]
            {"key": f"reply:r{n}", "kind": "reply_to_review", "marketplace": "kaspi", "account": "main",
             "target": f"r{n}", "title": "reply", "purpose": "service", "cost": Decimal(0), "approval": "auto",
             "status": "sent", "platform_ref": f"c{n}", "created_at": at, "updated_at": at, "sent_at": at,
             "grounds": "", "params": "{}", "context": "{}", "detail": ""}
            for n in range(7)])
    added = enqueue(store, [endpoint()], at)
    rows = deliveries(store, limit=100)
    assert added == 17 and len(rows) == 17
    assert sorted(d["event_id"] for d in rows if d["event_type"] == "action.sent") == [
        f"action:reply:r{n}" for n in range(7)]
    assert len({d["event_id"] for d in rows if d["event_type"] == "order.created"}) == 10
    assert enqueue(store, [endpoint()], at) == 0


def test_a_tier_change_is_told_once_and_a_daily_re_evaluation_is_not(store):
    from sqlalchemy import insert, update

    from store.loyalty_tables import MemberProjectionRow

    members = MemberProjectionRow.__table__  # type: ignore[attr-defined]
    day1, day2 = datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 7, 2, tzinfo=UTC)
    row = {"marketplace": "kaspi", "account": "main", "buyer_key": "b1", "orders": 3, "spend": Decimal("4500"),
           "tier": "silver", "tier_since": day1, "segment": "active", "service_recovery": False, "evaluated_at": day1}
    with store.engine.begin() as conn:
        conn.execute(insert(members), [row, {**row, "buyer_key": "b2", "tier": None, "tier_since": None}])
    enqueue(store, [endpoint()], day1)
    with store.engine.begin() as conn:  # the next day's evaluation: b1 unchanged, b2 reaches bronze
        conn.execute(update(members).where(members.c.buyer_key == "b1").values(evaluated_at=day2))
        conn.execute(update(members).where(members.c.buyer_key == "b2").values(
            evaluated_at=day2, tier="bronze", tier_since=day2))
    enqueue(store, [endpoint()], day2)
    got = sorted((d["event_type"], d["event_id"]) for d in deliveries(store))
    assert got == [("member.tier_changed", "tier:kaspi:main:b1:silver:2026-07-01T00:00:00+00:00"),
                   ("member.tier_changed", "tier:kaspi:main:b2:bronze:2026-07-02T00:00:00+00:00")]
    receiver = Receiver()
    drain(store, receiver, day2)
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert [e.message for b in receiver.bodies for e in validator.iter_errors(b)] == []
    assert {b["data"]["tier"] for b in receiver.bodies} == {"silver", "bronze"}
