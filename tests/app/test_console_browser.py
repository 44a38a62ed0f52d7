"""The ops console in a real browser (Debian's Chromium, headless, driven by playwright), served on a
loopback socket by uvicorn as the daemon serves it, in Russian as the seller's staff read it: log
in, see a review whose text is `<script>` as text, edit a reply into one with a phone number and see
it refused with the reason, approve a reply in live mode and see it arrive at the Wildberries
emulator exactly once. Skips, naming the command, where Chromium is not installed."""

from __future__ import annotations

from datetime import UTC, datetime

from app.console import ROOT
from connectors.testing.serving import served_all
from loyalty.action_settings import ActionSettings
from loyalty.outbox import action_rows, execute
from tests.app.test_console import PASSWORD, SCRIPT, run_apart, wb, web_of  # noqa: F401 - `wb` is a fixture used here
from tests.app.test_report_browser import browser  # noqa: F401 - a fixture used here


def post_without_token(page, action_id: int) -> int:
    """Submit an approve form that carries no CSRF token (as a forged one would); the answer's status."""
    # The submit navigates to the answer: wait for that navigation to end, not just for the answer,
    # or the next goto races it.
    with page.expect_navigation(wait_until="load") as navigation:
        page.evaluate("""id => { const f = document.createElement('form'); f.method = 'post';
            f.action = '/console/actions/approve'; const i = document.createElement('input');
            i.name = 'id'; i.value = String(id); f.appendChild(i); document.body.appendChild(f); f.submit(); }""",
                      action_id)
    return navigation.value.status


def test_log_in_refuse_a_phone_approve_a_reply_and_see_it_sent_once(browser, wb):  # noqa: F811
    app, setup, pending = wb
    first = pending[0]
    errors: list[str] = []
    with served_all([web_of(app)], quiet_disconnects=True) as [base]:
        page = browser.new_page(locale="ru-RU", viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: (errors.append(d.message), d.dismiss()))
        for path in ("/", "/tasks", "/members", "/sync", "/report"):  # no session: every page sends to the login
            page.goto(f"{base}{ROOT}{path}")
            assert page.url.endswith(f"{ROOT}/login"), path
        # A form posted without a session (another site's, say) is refused outright.
        assert post_without_token(page, first["id"]) == 401
        page.goto(f"{base}{ROOT}/login")
        page.fill("input[name=user]", "olga")
        page.fill("input[name=password]", PASSWORD)
        page.get_by_role("button", name="Войти").click()
        page.wait_for_url(f"{base}{ROOT}/")

        card = page.locator(f"#action-{first['id']}")
        assert card.get_by_text(SCRIPT, exact=False).first.is_visible()  # the review's script, as text
        assert page.locator("main script").count() == 0

        card.locator("textarea").fill("Позвоните нам: +7 999 123-45-67")
        card.get_by_role("button", name="Сохранить текст").click()
        card = page.locator(f"#action-{first['id']}")
        assert "contains_phone" in card.locator(".refused").inner_text()

        # Logged in, a form without its CSRF token is refused too.
        assert post_without_token(page, first["id"]) == 403
        page.goto(f"{base}{ROOT}/")

        card.locator("textarea").fill("Спасибо за отзыв. Разберёмся и поможем с заменой товара.")
        card.get_by_role("button", name="Сохранить текст").click()
        page.locator(f"#action-{first['id']}").get_by_role("button", name="Одобрить").click()
        assert f"#{first['id']}" in page.locator("p.notice").first.inner_text()
        page.close()

    run_apart(execute(app.store, app.write_connectors(), settings=ActionSettings(), mode="live",
                      now=datetime.now(UTC), secrets=setup.secrets))
    [row] = [r for r in action_rows(app.store) if r["id"] == first["id"]]
    writes = [w for w in setup.app.state.writes if w["applied"] and str(w["body"]["id"]) == first["target"]]
    assert row["status"] == "sent" and len(writes) == 1
    assert writes[0]["body"]["text"] == "Спасибо за отзыв. Разберёмся и поможем с заменой товара."
    assert errors == []
