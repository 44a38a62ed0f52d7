"""The RetailCRM client against its emulator (written from ../shared/crm/README.md), and the two
rules a CRM sink rests on: dates rounded inward to the day, and a credit whose answer was lost is
found in the account's operations before it is ever sent again. Figures worked by hand."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from connectors.errors import ApiError, FatalApiError
from connectors.testing import FakeTime
from crm.retailcrm.client import CHARGE, CREDIT, Operation, RetailCrmClient, credit_landed, landed, shown
from crm.retailcrm.dates import activation_day, crm_time, expiry_day
from crm.retailcrm.emulator import EmulatorConfig, create_app

MSK = timezone(timedelta(hours=3))
KEY = "retailcrm-test-key"


def test_dates_are_rounded_inward_on_the_account_s_calendar():
    # 13:00 UTC is 16:00 in Moscow: points usable only from the next whole day, 11 July.
    assert activation_day(datetime(2026, 7, 10, 13, 0, tzinfo=UTC), MSK) == date(2026, 7, 11)
    # 21:00 UTC is Moscow midnight exactly: that day itself.
    assert activation_day(datetime(2026, 7, 10, 21, 0, tzinfo=UTC), MSK) == date(2026, 7, 11)
    # Expiring at 15:00 Moscow time on 10 August: the last whole day is the 9th.
    assert expiry_day(datetime(2026, 8, 10, 12, 0, tzinfo=UTC), MSK) == date(2026, 8, 9)
    # Expiring at Moscow midnight starting 10 August: the 9th ends exactly then.
    assert expiry_day(datetime(2026, 8, 9, 21, 0, tzinfo=UTC), MSK) == date(2026, 8, 9)
    assert crm_time(datetime(2026, 7, 10, 21, 30, 5, tzinfo=UTC), MSK) == "2026-07-11 00:30:05"


def client(app, time: FakeTime | None = None) -> RetailCrmClient:
    time = time or FakeTime()
    return RetailCrmClient("http://crm", KEY, transport=httpx.ASGITransport(app=app), clock=time.monotonic,
                           sleep=time.sleep)


def test_customers_are_upserted_by_external_id_and_accounts_activated_before_credit():
    app = create_app(EmulatorConfig(api_key=KEY))
    crm = app.state.crm

    async def run() -> None:
        c = client(app)
        assert (await c.zone()).utcoffset(None) == timedelta(hours=3)
        await c.upsert_customer("ls:kaspi:abc", {"firstName": "Участник abc"})
        await c.upsert_customer("ls:kaspi:abc", {"firstName": "Участник abc", "vip": True})  # edit, not a copy
        first = await c.ensure_account("ls:kaspi:abc")
        assert crm.accounts[first]["active"] is True  # created not_confirmed, then activated
        assert await c.ensure_account("ls:kaspi:abc") == first  # found again, not created twice
        await c.credit(first, Decimal("150.00"), date(2026, 7, 11), date(2026, 8, 9), "ls:earn:1")
        await c.aclose()

    asyncio.run(run())
    assert list(crm.customers) == ["ls:kaspi:abc"] and crm.customers["ls:kaspi:abc"]["vip"] is True
    [credit] = crm.credits()
    assert (credit.amount, credit.activation, credit.expire) == (Decimal("150.00"), "2026-07-11", "2026-08-09")


def test_a_credit_to_an_account_not_activated_is_refused_by_the_crm():
    app = create_app(EmulatorConfig(api_key=KEY))

    async def run() -> None:
        c = client(app)
        await c.upsert_customer("ls:x", {})
        await c._post("/api/v5/loyalty/account/create", {"loyaltyAccount": '{"customer": {"externalId": "ls:x"}}'})
        with pytest.raises(FatalApiError, match="not activated"):
            await c.credit(1, Decimal(10), date(2026, 7, 1), date(2026, 7, 2), "")
        await c.aclose()

    asyncio.run(run())


def test_429_and_503_are_both_waited_out():
    app = create_app(EmulatorConfig(api_key=KEY, throttle=4))
    time = FakeTime()

    async def run() -> None:
        c = client(app, time)
        await c.upsert_customer("ls:y", {})
        await c.aclose()

    asyncio.run(run())
    assert list(app.state.crm.customers) == ["ls:y"] and time.waited > 0


def test_a_wrong_key_is_a_clear_error_without_the_key():
    app = create_app(EmulatorConfig(api_key=KEY))

    async def run() -> None:
        c = RetailCrmClient("http://crm", "wrong-key-77", transport=httpx.ASGITransport(app=app))
        with pytest.raises(ApiError) as caught:
            await c.zone()
        await c.aclose()
        assert "token was rejected" in str(caught.value) and "wrong-key-77" not in str(caught.value)

    asyncio.run(run())


def test_credits_whose_answers_were_lost_are_found_not_sent_twice_and_none_is_missing():
    """Twelve lots, several of the same amount and dates; the CRM refuses one credit with a 503
    (nothing applied), and three times applies a credit and drops the connection. A sender that
    reads the account's operations before re-sending any unconfirmed credit ends with the CRM
    holding exactly the twelve."""
    app = create_app(EmulatorConfig(api_key=KEY, drop_after_credit=3, throttle=2))
    lots = [(f"earn:{n}", Decimal(100 if n % 3 else 250), date(2026, 7, 11 + n % 2), date(2026, 8, 9))
            for n in range(12)]

    async def run() -> None:
        c = client(app)
        zone = await c.zone()
        await c.upsert_customer("ls:m", {})
        account = await c.ensure_account("ls:m")
        app.state.crm.throttle = 1  # the first credit gets a 503 before anything is applied: it must be re-sent
        confirmed: list[tuple[tuple, datetime]] = []  # (signature, when) of credits whose answers came
        unconfirmed: dict[str, tuple[tuple, datetime]] = {}
        pending = list(lots)
        while pending or unconfirmed:
            for key, (signature, since) in list(unconfirmed.items()):
                del unconfirmed[key]
                window = since - timedelta(minutes=1)
                known = sum(1 for s, at in confirmed if s == signature and at >= window)
                ops = await c.operations(account, window, datetime.now(UTC) + timedelta(minutes=1), zone)
                if credit_landed(ops, *signature, confirmed=known):
                    confirmed.append((signature, since))  # it was applied: recorded, never sent again
                else:
                    pending.append((key, *signature))
            for key, amount, activation, expire in pending:
                since = datetime.now(UTC)
                try:
                    await c.credit(account, amount, activation, expire, f"ls:{key}")
                    confirmed.append(((amount, activation, expire), since))
                except ApiError:
                    unconfirmed[key] = ((amount, activation, expire), since)
            pending = []
        await c.aclose()

    asyncio.run(run())
    credits = app.state.crm.credits()
    assert Counter((o.amount, date.fromisoformat(o.activation), date.fromisoformat(o.expire)) for o in credits) == \
        Counter((amount, activation, expire) for _, amount, activation, expire in lots)
    assert app.state.crm.drops == 0  # the three drops happened


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "retailcrm"


def test_operations_are_read_in_the_official_client_s_shape():
    """The PHP client's own test answer: activation under `bonus`, a charge negative, no expiry."""
    body = json.loads((FIXTURES / "bonus_operations.json").read_text())
    seen = [shown(op) for op in body["bonusOperations"]]
    assert seen == [Operation("credit_for_order", Decimal("215.1"), date(2020, 11, 27)),
                    Operation("charge_for_order", Decimal(247)),
                    Operation("credit_for_order", Decimal("347.8"), date(2020, 11, 27))]


def test_the_emulator_answers_operations_in_that_shape():
    app = create_app(EmulatorConfig(api_key=KEY, check_balance=False))
    wanted = json.loads((FIXTURES / "bonus_operations.json").read_text())

    async def run() -> dict:
        c = client(app)
        await c.upsert_customer("ls:z", {})
        account = await c.ensure_account("ls:z", "ls0001")
        await c.credit(account, Decimal(100), date(2026, 7, 11), date(2026, 8, 9), "x")
        await c.charge(account, Decimal(30), "y")
        body = await c.http.request_json("GET", "api", f"/api/v5/loyalty/account/{account}/bonus/operations")
        await c.aclose()
        return body

    body = asyncio.run(run())
    assert set(body) == set(wanted) and set(body["pagination"]) == set(wanted["pagination"])
    credit, charge = body["bonusOperations"]
    known = {k for op in wanted["bonusOperations"] for k in op} | {"loyaltyAccount", "event", "loyalty"}
    assert set(credit) <= known and set(charge) <= known
    assert credit["bonus"] == {"activationDate": "2026-07-11"} and charge["amount"] == -30


def test_landed_counts_only_what_is_not_known_already():
    ops = [{"type": "credit_manual", "amount": 100.0, "bonus": {"activationDate": "2026-07-11"}},
           {"type": "credit_manual", "amount": 100.0, "bonus": {"activationDate": "2026-07-11"}},
           {"type": "charge_manual", "amount": -100.0},
           {"type": "credit_manual", "amount": 100.0, "bonus": {"activationDate": "2026-07-12"}}]
    credit = Operation(CREDIT, Decimal(100), date(2026, 7, 11), date(2026, 8, 9))
    assert landed(ops, credit, confirmed=1)
    assert not landed(ops, credit, confirmed=2)
    assert not landed(ops, Operation(CREDIT, Decimal(101), date(2026, 7, 11)), confirmed=0)
    assert landed(ops, Operation(CHARGE, Decimal(100)), confirmed=0)
    assert not landed(ops, Operation(CHARGE, Decimal(100)), confirmed=1)
