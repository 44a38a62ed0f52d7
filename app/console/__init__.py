"""The ops console: server-rendered pages under `/console` on the daemon's endpoint.

Same truth as the CLI: every page reads and every button writes through the functions `loyalsync
actions`, `approve`, `reject`, `tasks` and `status` use (`loyalty.outbox`, `app.status`); an edited
text goes through the gate as the executor would check it (`loyalty.outbox.edit_text`), and every
decision is recorded on the action with who made it.

Access: off until `[console] enabled` with users; passwords are scrypt hashes from the environment
(`app.console.auth`); the session is a signed cookie (Starlette's SessionMiddleware, itsdangerous),
HttpOnly and SameSite=Strict, that ends after `session_hours`; every form carries the session's
CSRF token; only this machine's clients are answered unless `allow_remote`. Pages are Jinja2
templates with autoescaping: platform text (a review's `<script>`) stays text.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select, tuple_
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from app.console.auth import new_token, same, verify_password
from app.console.texts import KINDS, TEXTS, language

if TYPE_CHECKING:
    from app.wiring import App

__all__ = ["ROOT", "console_app"]

ROOT = "/console"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(default=True, default_for_string=True))
Handler = Callable[[Request], Awaitable[Response]]


def console_app(app: App) -> Starlette:
    """The console's ASGI app, to mount at ROOT; `app` is the daemon's (store, settings, connectors)."""
    console = app.config.settings.console
    key = console.session_secret.get_secret_value() or secrets.token_urlsafe(32)
    routes = [
        Route("/login", _login_page, methods=["GET"]), Route("/login", _login, methods=["POST"]),
        Route("/logout", _guard(_logout), methods=["POST"]),
        Route("/", _guard(_inbox), methods=["GET"]),
        Route("/actions/approve", _guard(_approve), methods=["POST"]),
        Route("/actions/reject", _guard(_reject), methods=["POST"]),
        Route("/actions/{id:int}/edit", _guard(_edit), methods=["POST"]),
        Route("/tasks", _guard(_tasks), methods=["GET"]),
        Route("/tasks/done", _guard(_tasks_done), methods=["POST"]),
        Route("/members", _guard(_members), methods=["GET"]),
        Route("/sync", _guard(_sync), methods=["GET"]),
        Route("/report", _guard(_report), methods=["GET"]),
    ]
    web = Starlette(routes=routes, middleware=[Middleware(
        SessionMiddleware, secret_key=key, session_cookie="loyalsync_console", path=ROOT,
        max_age=int(console.session_hours * 3600), same_site="strict", https_only=console.allow_remote)])
    web.state.app = app
    return web


# -- access ------------------------------------------------------------------------------------------

def _local(request: Request) -> bool:
    return request.app.state.app.config.settings.console.allow_remote or \
        (request.client is not None and request.client.host in LOOPBACK)


def _guard(handler: Handler) -> Handler:
    """Only this machine (unless allow_remote), only with a session, and every POST with its CSRF token."""
    async def guarded(request: Request) -> Response:
        if not _local(request):
            return PlainTextResponse(_t(request)["remote"], status_code=403)
        if not request.session.get("user"):
            if request.method == "GET":
                return RedirectResponse(f"{ROOT}/login", status_code=303)
            return PlainTextResponse("401: log in first", status_code=401)
        if request.method == "POST":
            form = await request.form()
            if not same(str(form.get("csrf") or ""), request.session.get("csrf")):
                return PlainTextResponse(_t(request)["csrf"], status_code=403)
            request.state.form = form
        return await handler(request)

    return guarded


def _t(request: Request) -> dict[str, str]:
    return TEXTS[language(request.headers.get("accept-language"))]


def _render(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    lang = language(request.headers.get("accept-language"))
    html = _TEMPLATES.get_template(name).render(
        t=TEXTS[lang], kinds=KINDS[lang], lang=lang, root=ROOT, user=request.session.get("user"),
        csrf=request.session.get("csrf"), **values)
    return HTMLResponse(html, status_code=status_code, headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                   "frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


async def _login_page(request: Request) -> Response:
    if not _local(request):
        return PlainTextResponse(_t(request)["remote"], status_code=403)
    request.session.setdefault("csrf", new_token())
    return _render(request, "login.html", page="login")


async def _login(request: Request) -> Response:
    if not _local(request):
        return PlainTextResponse(_t(request)["remote"], status_code=403)
    form = await request.form()
    if not same(str(form.get("csrf") or ""), request.session.get("csrf")):
        return PlainTextResponse(_t(request)["csrf"], status_code=403)
    name, password = str(form.get("user") or ""), str(form.get("password") or "")
    users = {u.name: u.password_hash.get_secret_value() for u in request.app.state.app.config.settings.console.users}
    # The hash is checked even for an unknown name, so a wrong name takes as long as a wrong password.
    stored = users.get(name, "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    ok = await asyncio.to_thread(verify_password, password, stored)
    if not ok or name not in users:
        return _render(request, "login.html", status_code=401, page="login", failed=True)
    request.session.clear()
    request.session.update(user=name, csrf=new_token())
    return RedirectResponse(f"{ROOT}/", status_code=303)


async def _logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse(f"{ROOT}/login", status_code=303)


# -- pages -------------------------------------------------------------------------------------------

SHOWN_MAX = 200  # actions on one inbox page: each is checked by the gate as it is shown


async def _inbox(request: Request, *, refusals: dict[int, str] | None = None, drafts: dict[int, str] | None = None,
                 message: str | None = None, status_code: int = 200) -> Response:
    app: App = request.app.state.app
    chosen = {name: request.query_params.get(name) or "" for name in FILTERS}
    rows, choices, total = await asyncio.to_thread(_pending, app, chosen)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        row["refusal"] = (refusals or {}).get(row["id"])
        row["draft"] = (drafts or {}).get(row["id"])
        groups.setdefault((row["marketplace"], row["account"]), []).append(row)
    target = app.config.settings.actions.replies.within
    return _render(request, "inbox.html", status_code=status_code, page="inbox", groups=sorted(groups.items()),
                   message=message, dry_run=app.config.settings.daemon.mode != "live", choices=choices,
                   target=f"{target.total_seconds() / 86400:g}", chosen=chosen, shown=[r["id"] for r in rows],
                   total=total)


FILTERS = ("marketplace", "kind", "stars")


def _pending(app: App, chosen: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, list[str]], int]:
    """The pending actions the filters `chosen` pick (at most SHOWN_MAX, oldest first), each with the
    review it answers, the gate's word on it now and who decided what on it; the filters' choices;
    how many the filters pick in all."""
    from connectors.capabilities import ActionKind
    from loyalty.outbox import ATTEMPTS, DECISION, action_rows, check_now
    from store.tables import ReviewRow

    rows = action_rows(app.store, status="pending")
    reviews = ReviewRow.__table__
    keys = {(r["marketplace"], r["account"], r["target"]) for r in rows}
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    if keys:
        c = reviews.c
        with app.store.engine.connect() as conn:
            for review in conn.execute(select(reviews).where(tuple_(c.marketplace, c.account, c.review_id)
                                                             .in_(sorted(keys)))).mappings():
                found[(review["marketplace"], review["account"], review["review_id"])] = dict(review)
    for row in rows:
        row["review"] = found.get((row["marketplace"], row["account"], row["target"]))
    choices = {"marketplace": sorted({r["marketplace"] for r in rows}), "kind": sorted({r["kind"] for r in rows}),
               "stars": sorted({str(r["review"]["rating"]) for r in rows if r["review"]})}
    picked = [r for r in rows if (not chosen["marketplace"] or r["marketplace"] == chosen["marketplace"])
              and (not chosen["kind"] or r["kind"] == chosen["kind"])
              and (not chosen["stars"] or (r["review"] and str(r["review"]["rating"]) == chosen["stars"]))]
    shown = picked[:SHOWN_MAX]
    history: dict[int, list[dict[str, Any]]] = {}
    if shown:
        a = ATTEMPTS.c
        with app.store.engine.connect() as conn:
            for h in conn.execute(select(ATTEMPTS).where(a.step == DECISION, a.action_id.in_([r["id"] for r in shown]))
                                  .order_by(a.id)).mappings():
                history.setdefault(h["action_id"], []).append(dict(h))
    now = datetime.now(UTC)
    capabilities = app.capabilities()
    for row in shown:
        review = row["review"]
        row["review_age_days"] = (now - review["created_at"]).days if review else None
        caps = capabilities.get(row["marketplace"])
        window = caps.rule(ActionKind(row["kind"])).answer_within if caps is not None else None
        row["answer_days"] = window.days if window is not None else None
        # Late: past the seller's own reply target (`actions.replies.within`, as `loyalsync actions` warns).
        row["late"] = bool(review and now - review["created_at"] > app.config.settings.actions.replies.within)
        # What the executor's check would say if it were sent now (budget, texts, windows).
        check = check_now(app.store, row, caps, app.config.settings.actions, now=now) if caps is not None else None
        row["check"] = None if check is None or check.approved else \
            f"{check.reason.value if check.reason else ''}: {check.detail}".strip(": ")
        row["history"] = history.get(row["id"], [])
    return shown, choices, len(picked)


def _ids(request: Request) -> list[int]:
    return [int(v) for v in request.state.form.getlist("id") if str(v).isdigit()]


async def _decide(request: Request, to: str) -> Response:
    from loyalty.actions import ActionStatus
    from loyalty.outbox import set_status

    app: App = request.app.state.app
    target = ActionStatus(to)
    allowed = (ActionStatus.PENDING,) if target is ActionStatus.APPROVED else \
        (ActionStatus.PENDING, ActionStatus.APPROVED, ActionStatus.DRY_RUN)
    moved, _ = await asyncio.to_thread(set_status, app.store, _ids(request), target, allowed_from=allowed,
                                       mode=app.config.settings.daemon.mode, now=datetime.now(UTC),
                                       by=request.session["user"])
    t = _t(request)
    word = t["approved_n"] if target is ActionStatus.APPROVED else t["rejected_n"]
    return await _inbox(request, message=f"{word}: {', '.join(f'#{i}' for i in moved) or '—'}")


async def _approve(request: Request) -> Response:
    return await _decide(request, "approved")


async def _reject(request: Request) -> Response:
    return await _decide(request, "rejected")


async def _edit(request: Request) -> Response:
    from loyalty.outbox import action_rows, edit_text

    app: App = request.app.state.app
    action_id = int(request.path_params["id"])
    text = str(request.state.form.get("text") or "")
    rows = await asyncio.to_thread(action_rows, app.store, status="pending")
    row = next((r for r in rows if r["id"] == action_id), None)
    if row is None:
        return await _inbox(request, status_code=404, message=f"#{action_id}: —")
    caps = app.capabilities().get(row["marketplace"])
    decision = await asyncio.to_thread(edit_text, app.store, action_id, text, caps, app.config.settings.actions,
                                       now=datetime.now(UTC), by=request.session["user"])
    if decision is not None and not decision.approved:
        reason = f"{decision.reason.value if decision.reason else ''}: {decision.detail}".strip(": ")
        return await _inbox(request, status_code=422, refusals={action_id: reason}, drafts={action_id: text})
    return await _inbox(request, message=f"#{action_id}: {_t(request)['edited']}")


async def _tasks(request: Request) -> Response:
    from connectors.capabilities import ActionKind
    from loyalty.outbox import action_rows

    app: App = request.app.state.app
    rows = await asyncio.to_thread(action_rows, app.store, status="open", kind=ActionKind.OPS_TASK.value)
    tasks = [{**r, "steps": list(json.loads(r["params"] or "{}").get("steps", ())),
              "cost": f"{r['cost']:,.0f}" if r["cost"] else ""} for r in rows]
    return _render(request, "tasks.html", page="tasks", tasks=tasks)


async def _tasks_done(request: Request) -> Response:
    from loyalty.actions import ActionStatus
    from loyalty.outbox import set_status

    app: App = request.app.state.app
    await asyncio.to_thread(set_status, app.store, _ids(request), ActionStatus.DONE,
                            allowed_from=(ActionStatus.OPEN,), mode=app.config.settings.daemon.mode,
                            now=datetime.now(UTC), by=request.session["user"])
    return RedirectResponse(f"{ROOT}/tasks", status_code=303)


async def _sync(request: Request) -> Response:
    """Each stream's state, and for a refused token what to fix (`loyalsync status`'s own line)."""
    from app.status import status_rows, token_problem
    from connectors.errors import TOKEN_REJECTED
    from crm.outbox import summary

    store = request.app.state.app.store
    rows = await asyncio.to_thread(status_rows, store)
    for row in rows:
        error = row["last_error"] or ""
        row["todo"] = token_problem(f"{row['marketplace']}/{row['account']}", [row["stream"]], error) \
            if row["state"] == "error" and TOKEN_REJECTED in error else ""
    return _render(request, "sync.html", page="sync", rows=rows, crm=await asyncio.to_thread(summary, store))


async def _members(request: Request) -> Response:
    q = (request.query_params.get("q") or "").strip()[:200]
    app: App = request.app.state.app
    found, card = await asyncio.to_thread(_member_lookup, app, q) if q else ([], None)
    return _render(request, "members.html", page="members", q=q, members=found, card=card)


def _member_lookup(app: App, q: str) -> tuple[list[Any], dict[str, Any] | None]:
    """Members whose key starts with `q`, or the buyer of order `q`; the card of the one found, with
    the functions `loyalsync member` prints from."""
    from loyalty.ledger import balances, entries_of
    from loyalty.members import find_members, member_orders, standing
    from store.tables import OrderRow

    orders = OrderRow.__table__
    with app.store.engine.connect() as conn:
        buyers = conn.execute(select(orders.c.marketplace, orders.c.account, orders.c.buyer_key).where(
            orders.c.order_id == q, orders.c.buyer_key.is_not(None))).all()
    found = sorted({tuple(b) for b in buyers}) or find_members(app.store, q)
    if len(found) != 1:
        return found, None
    who = found[0]
    settings, now = app.config.settings.loyalty, datetime.now(UTC)
    with app.store.engine.connect() as conn:
        rows = conn.execute(select(orders).where(orders.c.marketplace == who[0], orders.c.account == who[1],
                                                 orders.c.buyer_key == who[2])).mappings().all()
    facts = member_orders(rows, settings)[0].get(who, [])
    held, b = standing(facts, settings, now), balances(app.store, who, now)
    return found, {"marketplace": who[0], "account": who[1], "buyer_key": who[2], "orders": held.orders,
                   "spend": f"{held.spend:,.2f}", "tier": held.tier, "segment": held.segment,
                   "available": f"{b.available:,.0f}", "pending": f"{b.pending:,.0f}", "expired": f"{b.expired:,.0f}",
                   "debt": f"{b.debt:,.0f}", "entries": entries_of(app.store, who)}


async def _report(request: Request) -> Response:
    """The HTML report (`loyalsync report`), built now for the last 90 days; its page carries its own CSP."""
    from app.report import build_report, default_period, render_html
    from app.report.data import no_identity_platforms

    app: App = request.app.state.app
    settings, now = app.config.settings, datetime.now(UTC)

    def build() -> str:
        return render_html(build_report(app.store, loyalty=settings.loyalty, actions=settings.actions,
                                        period=default_period(now), now=now, no_identity=no_identity_platforms()))

    return HTMLResponse(await asyncio.to_thread(build), headers={"Cache-Control": "no-store",
                                                                 "X-Content-Type-Options": "nosniff"})
