"""`loyalsync actions | approve | reject | tasks | export actions` over a store with proposed actions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from connectors.ozon.capabilities import OZON_CAPABILITIES
from connectors.wildberries.capabilities import WILDBERRIES_CAPABILITIES
from loyalty.action_settings import ActionSettings
from loyalty.actions import Action, Kind, Purpose
from loyalty.incentives import loyalty_discount_task
from loyalty.outbox import action_rows, propose
from store import Store, connect, migrate

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
CAPS = {"ozon": OZON_CAPABILITIES, "wildberries": WILDBERRIES_CAPABILITIES}


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    for var in ("LOYALSYNC_CONFIG", "LOYALSYNC_DATABASE_URL", "LOYALSYNC_MODE"):
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "loyalsync.toml"
    config.write_text('[daemon]\nmode = "dry-run"\n', encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = connect(url)
    migrate(engine)
    store = Store(engine)

    def reply(rid: str, text: str, **more) -> Action:
        return Action(kind=Kind.REPLY_TO_REVIEW, marketplace="ozon", account="main", key=f"reply:ozon:main:{rid}",
                      target=rid, created_at=NOW, text=text, public=True, title=f"reply to {rid}", **more)

    promo_on_wb = Action(kind=Kind.CREATE_PROMO_CODE, marketplace="wildberries", account="main", key="promo:wb:b1",
                         target="b1", created_at=NOW, purpose=Purpose.REWARD, cost=Decimal(300),
                         title="promo code worth 300 ₽")
    propose(store, [reply("R1", "Спасибо за отзыв!"), reply("R2", "Спасибо! Пишите на help@shop.ru"),
                    reply("R3", "Нам жаль. Напишите в чат заказа", params={"approval": "manual"}),
                    promo_on_wb, loyalty_discount_task("wildberries", "main", 5, Decimal(3000), NOW)],
            CAPS, ActionSettings(), mode="dry-run", now=NOW)
    yield store, ["--config", str(config), "--database-url", url]
    engine.dispose()


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def ids(store: Store) -> dict[str, int]:
    return {r["key"]: r["id"] for r in action_rows(store)}


def test_actions_lists_decisions_and_filters_by_status(setup):
    store, opts = setup
    shown = invoke("actions", *opts)
    assert shown.exit_code == 0, shown.output
    assert "contains_email" in shown.stdout and "dry_run" in shown.stdout and "pending" in shown.stdout
    refused = invoke("actions", "--status", "refused", *opts)
    lines = [line for line in refused.stdout.splitlines() if line.startswith("│")]
    assert len(lines) == 2 and all("refused" in line for line in lines)  # the e-mail and the WB promo code
    bad = invoke("actions", "--status", "maybe", *opts)
    assert bad.exit_code == 2 and "not one of" in bad.stderr


def test_approve_and_reject_move_only_what_they_may(setup):
    store, opts = setup
    key = ids(store)
    ok = invoke("approve", str(key["reply:ozon:main:R3"]), *opts)
    assert ok.exit_code == 0 and "approved" in ok.stderr
    assert {r["key"]: r["status"] for r in action_rows(store)}["reply:ozon:main:R3"] == "dry_run"  # dry-run mode
    again = invoke("approve", str(key["reply:ozon:main:R3"]), "9999", *opts)
    assert again.exit_code == 1 and "9999" in again.stderr
    rejected = invoke("reject", str(key["reply:ozon:main:R1"]), *opts)
    assert rejected.exit_code == 0
    assert {r["key"]: r["status"] for r in action_rows(store)}["reply:ozon:main:R1"] == "rejected"
    assert invoke("reject", str(key["reply:ozon:main:R2"]), *opts).exit_code == 1  # refused stays refused


def test_tasks_show_steps_and_can_be_marked_done(setup):
    store, opts = setup
    shown = invoke("tasks", *opts)
    assert shown.exit_code == 0, shown.output
    assert "2 task(s) open" in shown.stdout
    assert "Скидка лояльности" in shown.stdout and "  1. " in shown.stdout
    assert "in the cabinet: promo code worth 300 ₽" in shown.stdout  # WB has no promo code API: a task
    task = next(r["id"] for r in action_rows(store) if r["kind"] == "ops_task" and "loyalty" in r["key"])
    assert invoke("tasks", "--done", str(task), *opts).exit_code == 0
    assert "1 task(s) open" in invoke("tasks", *opts).stdout
    assert "2 task(s)" in invoke("tasks", "--all", *opts).stdout


def test_export_actions_in_both_formats(setup, tmp_path: Path):
    store, opts = setup
    out = tmp_path / "actions.jsonl"
    done = invoke("export", "actions", "--format", "jsonl", "-o", str(out), *opts)
    assert done.exit_code == 0, done.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(action_rows(store))
    refused = next(r for r in records if r["reason"] == "contains_email")
    assert refused["status"] == "refused" and refused["cost"] == "0.00" and refused["created_at"].endswith("+00:00")
    task = next(r for r in records if r["kind"] == "ops_task" and "loyalty" in r["key"])
    assert isinstance(task["params"]["steps"], list)
    csv_out = tmp_path / "actions.csv"
    assert invoke("export", "actions", "--format", "csv", "-o", str(csv_out), *opts).exit_code == 0
    header = csv_out.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("id,key,kind,marketplace")


def test_actions_reports_reviews_past_the_reply_target(setup):
    from connectors.records import ReviewRecord
    from store import PageWrite
    from store.store import StreamKey

    store, opts = setup
    old = ReviewRecord(marketplace="ozon", account="main", review_id="OLD", sku="1", rating=5, text="", pros="",
                       cons="", created_at=datetime(2020, 1, 1, tzinfo=UTC), answered=False, answer_text=None)
    store.write_page(StreamKey("ozon", "main", "reviews"), PageWrite(reviews=[old]), now=NOW)
    shown = invoke("actions", *opts)
    assert "unanswered past the reply target (2 days, 0:00:00): ozon 1" in shown.stderr
