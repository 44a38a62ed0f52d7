"""The ops console (issue 24), driven over HTTP as a browser would (cookies, forms, redirects) through
the daemon's endpoint app, against the Wildberries emulator: log in, see the pending replies with
their reviews, edit a reply into one with a phone number and see it refused with the reason,
approve one in live mode and see it reach the emulator exactly once. A review whose text is
`<script>` stays text; no route answers without a session; a form without its CSRF token is
refused; only this machine is answered."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.routing import Mount

from app.config import AppConfig, AppSettings, ConsoleSettings, ConsoleUser, MarketplaceAccount
from app.console import ROOT, console_app
from app.console.auth import hash_password, verify_password
from app.wiring import App
from connectors.base import RateOverride
from connectors.registry import available_connectors
from loyalty.action_job import propose_actions
from loyalty.action_settings import ActionSettings
from loyalty.outbox import action_rows, attempts_of, execute
from store import Store
from store.tables import ReviewRow

PASSWORD = "correct-horse-battery"
HASH = hash_password(PASSWORD)
SCRIPT = "<script>alert('x')</script> товар сломался"


def run_apart(coroutine: Any) -> Any:
    """`asyncio.run` in a thread of its own: a playwright browser may be running a loop in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def web_of(app: App) -> Starlette:
    return Starlette(routes=[Mount(ROOT, app=console_app(app))])


def client(web: Starlette, host: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(web, client=(host, 50123)), base_url="http://console.test",
                             headers={"Accept-Language": "ru-RU,ru;q=0.9"})


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def logged_in(c: httpx.AsyncClient) -> str:
    page = await c.get(f"{ROOT}/login")
    answer = await c.post(f"{ROOT}/login", data={"csrf": csrf_of(page.text), "user": "olga", "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == f"{ROOT}/"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    inbox = await c.get(f"{ROOT}/")
    assert inbox.status_code == 200
    return inbox.text


def test_password_hashes_are_scrypt_and_checked_in_constant_form():
    assert HASH.startswith("scrypt$16384$8$1$") and PASSWORD not in HASH
    assert verify_password(PASSWORD, HASH) and not verify_password(PASSWORD + "x", HASH)
    assert not verify_password(PASSWORD, "plain-text-password") and hash_password(PASSWORD) != HASH  # salted


@pytest.fixture
def wb(sqlite_store: Store):
    """A live-mode App on the Wildberries emulator with reviews synced and replies proposed (those to
    1–2★ reviews wait for a person), one review's text a script, and the console on."""
    cls = available_connectors()["wildberries"]
    setup = cls.demo(seed=11, orders=60, reviews=80, rate_limits=False)
    fast = {g: RateOverride(requests=1000, period_seconds=1, burst=1000) for g in cls.rate_groups}
    account = setup.account("http://emulator").model_copy(update={"rate_limits": fast})
    console = ConsoleSettings(enabled=True, users=(ConsoleUser(name="olga", password_hash_env="OLGA_HASH",
                                                               password_hash=SecretStr(HASH)),),
                              session_secret=SecretStr("s" * 40))
    config = AppConfig(settings=AppSettings(daemon={"mode": "live"}, console=console),
                       accounts=(MarketplaceAccount("wildberries", account),), config_path=None)
    app = App(config, store=sqlite_store, transports={"wildberries": httpx.ASGITransport(setup.app)})

    async def prepare() -> None:
        await app.__aenter__()
        assert all(r.ok for r in await app.sync_once([j for j in app.jobs() if j.stream == "reviews"]))

    run_apart(prepare())
    propose_actions(sqlite_store, ActionSettings(), app.capabilities(), mode="live", now=datetime.now(UTC))
    pending = action_rows(sqlite_store, status="pending")
    assert pending, "some replies wait for a person"
    with sqlite_store.engine.begin() as conn:
        conn.execute(update(ReviewRow.__table__).where(ReviewRow.__table__.c.review_id == pending[0]["target"])
                     .values(text=SCRIPT))
    yield app, setup, pending
    run_apart(app.__aexit__(None, None, None))


def test_no_route_answers_without_a_session_and_forms_need_their_token(wb):
    app, _, pending = wb
    web = web_of(app)

    async def run() -> None:
        async with client(web) as c:
            for path in ("/", "/tasks", "/sync", "/members", "/report"):
                answer = await c.get(f"{ROOT}{path}")
                assert answer.status_code == 303 and answer.headers["location"] == f"{ROOT}/login"
            for path in ("/actions/approve", "/actions/reject", f"/actions/{pending[0]['id']}/edit", "/tasks/done",
                         "/logout"):
                assert (await c.post(f"{ROOT}{path}", data={"id": pending[0]["id"]})).status_code == 401
            page = await c.get(f"{ROOT}/login")
            wrong = await c.post(f"{ROOT}/login", data={"csrf": csrf_of(page.text), "user": "olga", "password": "no"})
            assert wrong.status_code == 401 and "Неверное имя или пароль" in wrong.text
            no_token = await c.post(f"{ROOT}/login", data={"user": "olga", "password": PASSWORD})
            assert no_token.status_code == 403
            await logged_in(c)
            forged = await c.post(f"{ROOT}/actions/approve", data={"id": pending[0]["id"], "csrf": "forged"})
            assert forged.status_code == 403
        async with client(web, host="203.0.113.9") as far:  # another machine: not even the login page
            assert (await far.get(f"{ROOT}/login")).status_code == 403

    asyncio.run(run())
    assert action_rows(app.store, status="pending")[0]["id"] == pending[0]["id"]  # nothing was approved


def test_a_review_s_script_stays_text_and_a_phone_in_an_edit_is_refused_with_its_reason(wb):
    app, _, pending = wb
    first = pending[0]

    async def run() -> tuple[str, httpx.Response]:
        async with client(web_of(app)) as c:
            inbox = await logged_in(c)
            edited = await c.post(f"{ROOT}/actions/{first['id']}/edit",
                                  data={"csrf": csrf_of(inbox), "text": "Позвоните нам: +7 999 123-45-67"})
            return inbox, edited

    inbox, edited = asyncio.run(run())
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in inbox and "<script>" not in inbox
    # Each review's age against the seller's reply target (2 days by default) and the platform's window
    # (Wildberries archives a review unanswered for 30 days); past the target, it is marked.
    assert re.search(r"Возраст отзыва: \d+ дн\.\s+\(цель — ответить за 2 дн\.\); площадка принимает ответ не позже "
                     r"30 дн\.", inbox)
    assert 'class="late"' in inbox  # the demo's reviews are older than two days
    assert "Content-Security-Policy" in {k.title() for k in edited.headers}
    assert edited.status_code == 422 and "contains_phone" in edited.text
    assert "+7 999 123-45-67" in edited.text  # the draft is kept for the person to fix
    [row] = [r for r in action_rows(app.store, status="pending") if r["id"] == first["id"]]
    assert row["text"] == first["text"]  # never stored unchecked


def test_an_approved_reply_reaches_the_emulator_exactly_once_and_says_who_approved_it(wb):
    app, setup, pending = wb
    first = pending[0]

    async def run() -> None:
        async with client(web_of(app)) as c:
            inbox = await logged_in(c)
            text = "Спасибо, что написали. Мы разберёмся и поможем с заменой."
            saved = await c.post(f"{ROOT}/actions/{first['id']}/edit", data={"csrf": csrf_of(inbox), "text": text})
            assert saved.status_code == 200
            done = await c.post(f"{ROOT}/actions/approve", data={"csrf": csrf_of(inbox), "id": first["id"]})
            assert done.status_code == 200 and f"#{first['id']}" in done.text
        for _ in range(2):  # the daemon's executor, twice: the second finds nothing to send
            await execute(app.store, app.write_connectors(), settings=ActionSettings(), mode="live",
                          now=datetime.now(UTC), secrets=setup.secrets)

    asyncio.run(run())
    [row] = [r for r in action_rows(app.store) if r["id"] == first["id"]]
    assert row["status"] == "sent" and row["text"].startswith("Спасибо, что написали")
    writes = [w for w in setup.app.state.writes if w["applied"] and str(w["body"]["id"]) == first["target"]]
    assert len(writes) == 1 and writes[0]["body"]["text"] == row["text"]
    decisions = [(a["outcome"], a["detail"]) for a in attempts_of(app.store, first["id"]) if a["step"] == "decision"]
    assert decisions == [("edited", "by olga"), ("approved", "by olga")]
    from loyalty.outbox import decisions as last_decisions  # what `loyalsync actions` shows in its "decided" column

    assert last_decisions(app.store)[first["id"]].startswith("approved by olga at ")


def test_config_takes_hashes_from_the_environment_and_names_what_is_wrong(tmp_path):
    from app.config import check_config, load_config

    path = tmp_path / "loyalsync.toml"
    (tmp_path / "marketplaces").mkdir()
    path.write_text('[console]\nenabled = true\n[[console.users]]\nname = "olga"\npassword_hash_env = "OLGA_HASH"\n',
                    encoding="utf-8")
    assert f"{path}: console.users[0].password_hash_env: OLGA_HASH is not set; export the hash " \
           "`loyalsync console-password` prints in it" in check_config(path, env={})
    plain = check_config(path, env={"OLGA_HASH": PASSWORD})
    assert any("OLGA_HASH does not hold a password hash" in p for p in plain)
    assert not any(PASSWORD in p for p in plain)  # a password put there by mistake is not repeated
    cfg = load_config(path, env={"OLGA_HASH": HASH}, connectors={}, tokens=True)
    assert cfg.settings.console.users[0].password_hash.get_secret_value() == HASH
    path.write_text("[console]\nenabled = true\n", encoding="utf-8")
    assert any("console.users: the console is enabled but names nobody" in p for p in check_config(path, env={}))


def test_the_endpoint_serves_the_console_only_when_it_is_enabled(sqlite_store: Store):
    from app.metrics import Metrics
    from app.scheduler import Daemon
    from app.service import service_app

    def paths(console: ConsoleSettings) -> set[str]:
        config = AppConfig(settings=AppSettings(console=console), accounts=(), config_path=None)
        web = service_app(Daemon(App(config, store=sqlite_store)), Metrics(sqlite_store))
        return {getattr(r, "path", "") for r in web.routes}

    assert ROOT not in paths(ConsoleSettings())
    assert ROOT in paths(ConsoleSettings(enabled=True, users=(ConsoleUser(name="olga", password_hash_env="X"),)))


def test_a_member_is_found_by_an_order_number_or_a_key_prefix(tmp_path):
    from sqlalchemy import func, select

    from store import connect
    from store.loyalty_tables import LedgerEntryRow
    from store.tables import OrderRow
    from tests.conftest import synced_kaspi

    store = Store(connect(f"sqlite:///{synced_kaspi(tmp_path, orders=40)}"))
    ledger, orders = LedgerEntryRow.__table__, OrderRow.__table__
    with store.engine.connect() as conn:
        order_id, buyer = conn.execute(select(orders.c.order_id, orders.c.buyer_key).join(
            ledger, ledger.c.order_id == orders.c.order_id).limit(1)).one()
        entries = conn.execute(select(func.count()).select_from(ledger).where(ledger.c.buyer_key == buyer)).scalar()
    console = ConsoleSettings(enabled=True, users=(ConsoleUser(name="olga", password_hash_env="X",
                                                               password_hash=SecretStr(HASH)),))
    app = App(AppConfig(settings=AppSettings(console=console), accounts=(), config_path=None), store=store)

    async def run() -> tuple[str, str]:
        async with client(web_of(app)) as c:
            await logged_in(c)
            by_order = (await c.get(f"{ROOT}/members", params={"q": order_id})).text
            by_key = (await c.get(f"{ROOT}/members", params={"q": buyer[:12]})).text
            report = await c.get(f"{ROOT}/report")
            assert report.status_code == 200 and "Content-Security-Policy" in report.text and "<svg" in report.text
            return by_order, by_key

    by_order, by_key = asyncio.run(run())
    for page in (by_order, by_key):
        assert buyer in page and f"<td>{order_id}</td>" in page
        assert page.count("<tr><td>") == entries  # one row per ledger entry of the member


def test_approving_all_shown_approves_exactly_the_filtered_view(wb):
    app, _, pending = wb
    reviews = ReviewRow.__table__
    with app.store.engine.connect() as conn:
        stars = dict(conn.execute(select_reviews(reviews)).all())
    ones = sorted(a["id"] for a in pending if stars.get(a["target"]) == 1)
    assert ones and len(ones) < len(pending), "the demo has pending replies to 1★ and to other reviews"
    before = {r["id"] for r in action_rows(app.store, status="approved")}  # approved by the rules (4–5★)

    async def run() -> None:
        async with client(web_of(app)) as c:
            await logged_in(c)
            view = (await c.get(f"{ROOT}/", params={"stars": "1"})).text
            shown = sorted(int(i) for i in re.findall(r'<input type="hidden" name="id" value="(\d+)">', view))
            assert sorted(set(shown)) == ones
            bulk = re.search(r'<form method="post" action="/console/actions/approve">(.*?)</form>', view, re.S)
            ids = [int(i) for i in re.findall(r'name="id" value="(\d+)"', bulk.group(1))]
            answer = await c.post(f"{ROOT}/actions/approve", data={"csrf": csrf_of(view), "id": ids})
            assert answer.status_code == 200

    asyncio.run(run())
    approved = {r["id"] for r in action_rows(app.store, status="approved")}
    assert approved - before == set(ones)
    assert {r["id"] for r in action_rows(app.store, status="pending")} == {a["id"] for a in pending} - set(ones)


def select_reviews(reviews):
    from sqlalchemy import select

    return select(reviews.c.review_id, reviews.c.rating)


def test_the_sync_page_says_what_to_fix_for_a_refused_token(wb):
    from store.store import StreamKey

    app, _, _ = wb
    app.store.record_run(StreamKey("wildberries", "demo", "reviews"), state="error", at=datetime.now(UTC),
                         error="wildberries GET /api/v1/feedbacks HTTP 401: the token was rejected (missing, wrong, "
                               "expired or without this API's category); fix the token (platform says: <b>bad</b>). "
                               "Check the token in $LOYALSYNC_WB_DEMO_TOKEN")

    async def run() -> str:
        async with client(web_of(app)) as c:
            await logged_in(c)
            return (await c.get(f"{ROOT}/sync")).text

    page = asyncio.run(run())
    assert "put a valid token in $LOYALSYNC_WB_DEMO_TOKEN" in page
    assert "&lt;b&gt;bad&lt;/b&gt;" in page and "<b>bad</b>" not in page


def test_a_task_shows_its_steps_and_cost_and_is_marked_done_by_its_person(wb):
    import json as json_

    from sqlalchemy import insert

    from store.loyalty_tables import ActionRow

    app, _, _ = wb
    now = datetime.now(UTC)
    with app.store.engine.begin() as conn:
        task = conn.execute(insert(ActionRow.__table__).values(
            key="task:test:1", kind="ops_task", marketplace="wildberries", account="demo", target="promo",
            title="Запустить «Баллы за отзывы» на <i>Кружка</i>", purpose="loyalty", cost=Decimal("1500"),
            params=json_.dumps({"steps": ["Откройте «Маркетинг» → «Баллы за отзывы»", "Выберите товар"]}),
            approval="manual", status="open", grounds="", detail="", context="{}", created_at=now,
            updated_at=now).returning(ActionRow.__table__.c.id)
        ).scalar_one()

    async def run() -> tuple[str, str]:
        async with client(web_of(app)) as c:
            await logged_in(c)
            page = (await c.get(f"{ROOT}/tasks")).text
            done = await c.post(f"{ROOT}/tasks/done", data={"csrf": csrf_of(page), "id": task}, follow_redirects=True)
            return page, done.text

    page, after = asyncio.run(run())
    assert "1,500 ₽" in page and "Откройте «Маркетинг» → «Баллы за отзывы»" in page
    assert "&lt;i&gt;Кружка&lt;/i&gt;" in page
    assert f"task-{task}" not in after
    [row] = [r for r in action_rows(app.store) if r["id"] == task]
    assert row["status"] == "done"
    assert [(a["outcome"], a["detail"]) for a in attempts_of(app.store, task)] == [("done", "by olga")]


def test_a_long_inbox_shows_its_first_actions_and_says_how_many_there_are(wb, monkeypatch):
    import app.console as console_module

    app, _, pending = wb
    assert len(pending) >= 3
    monkeypatch.setattr(console_module, "SHOWN_MAX", 2)

    async def run() -> str:
        async with client(web_of(app)) as c:
            await logged_in(c)
            return (await c.get(f"{ROOT}/")).text

    page = asyncio.run(run())
    assert sorted(int(i) for i in re.findall(r'id="action-(\d+)"', page)) == sorted(a["id"] for a in pending)[:2]
    assert f"Показаны первые 2 из {len(pending)}" in page
