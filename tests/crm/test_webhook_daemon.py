"""The daemon's webhook job over real HTTP: a receiver served on loopback checks each signature and
keeps each event id once; the job is scheduled only where a webhook is configured; config errors
are one `file: key: problem` line each."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.config import AppConfig, AppSettings, check_config
from app.metrics import Metrics
from app.scheduler import WEBHOOKS_JOB, Daemon
from app.wiring import App
from connectors.records import OrderRecord, OrderStatus
from connectors.serve import serve_emulator
from crm.settings import CrmSettings, WebhookEndpoint
from crm.webhooks import deliveries
from store import PageWrite, Store
from store.store import StreamKey

SECRET = "whsec-daemon-88a1"


def receiver_app(seen: dict[str, int], bad: list[str]) -> Starlette:
    async def hook(request: Request) -> Response:
        body = await request.body()
        parts = dict(p.split("=", 1) for p in request.headers.get("loyalsync-signature", "").split(","))
        mac = hmac.new(SECRET.encode(), parts.get("t", "").encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, parts.get("v1", "")):
            bad.append(request.headers.get("loyalsync-event-id", "?"))
            return Response(status_code=401)
        event = json.loads(body)
        seen[event["id"]] = seen.get(event["id"], 0) + 1
        return Response(status_code=204)

    return Starlette(routes=[Route("/hooks", hook, methods=["POST"])])


def config(tmp_path: Path, url: str | None) -> AppConfig:
    hooks = () if url is None else (WebhookEndpoint(name="crm", url=url, secret_env="X", secret=SecretStr(SECRET)),)
    return AppConfig(settings=AppSettings(crm=CrmSettings(webhooks=hooks)), accounts=(),
                     config_path=tmp_path / "loyalsync.toml")


def test_the_daemon_job_delivers_signed_events_over_http(sqlite_store: Store, tmp_path: Path) -> None:
    sqlite_store.ensure_account("kaspi", "main")
    orders = [OrderRecord(marketplace="kaspi", account="main", order_id=f"K{n}",
                          created_at=datetime(2026, 7, 1, tzinfo=UTC), updated_at=datetime(2026, 7, 1, tzinfo=UTC),
                          status=OrderStatus.DELIVERED, platform_status="ARCHIVE/COMPLETED", fulfilment="seller",
                          currency="KZT", total=Decimal(1000 + n), lines=()) for n in range(7)]
    sqlite_store.write_page(StreamKey("kaspi", "main", "orders"), PageWrite(orders=orders), now=datetime.now(UTC))
    seen: dict[str, int] = {}
    bad: list[str] = []

    async def run() -> None:
        async with serve_emulator(receiver_app(seen, bad)) as base:
            daemon = Daemon(App(config(tmp_path, f"{base}/hooks"), store=sqlite_store))
            assert daemon.schedule().get_job(WEBHOOKS_JOB) is not None
            await daemon._webhooks_run()
            await daemon._webhooks_run()  # nothing new, nothing sent twice

    asyncio.run(run())
    assert bad == []
    assert {i.rsplit("@", 1)[0]: n for i, n in seen.items()} == \
        {f"order:kaspi:main:K{n}:delivered:{1000 + n}.00:0.00": 1 for n in range(7)}
    assert {d["status"] for d in deliveries(sqlite_store)} == {"sent"}
    scraped = Metrics(sqlite_store).render().decode()
    assert 'loyalsync_webhook_deliveries{endpoint="crm",status="sent"} 7.0' in scraped


def test_no_webhook_no_job(sqlite_store: Store, tmp_path: Path) -> None:
    daemon = Daemon(App(config(tmp_path, None), store=sqlite_store))
    assert daemon.schedule().get_job(WEBHOOKS_JOB) is None


def test_config_problems_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "loyalsync.toml"
    (tmp_path / "marketplaces").mkdir()
    path.write_text('[[crm.webhooks]]\nname = "crm"\nurl = "ftp://crm"\nsecret_env = "CRM_SECRET"\n'
                    '[[crm.webhooks]]\nname = "b"\nurl = "https://b.example/h"\nsecret_env = "B_SECRET"\n'
                    'events = ["point.*"]\n', encoding="utf-8")
    problems = check_config(path, env={})
    assert f"{path}: crm.webhooks[0].url: 'ftp://crm' is not an http(s) URL; give the receiver's full address, " \
           "e.g. https://crm.example/hooks/loyalsync" in problems
    assert any(p.startswith(f"{path}: crm.webhooks[1].events: point.* match no event type; types: order.created")
               for p in problems), problems
    path.write_text('[[crm.webhooks]]\nname = "crm"\nurl = "https://crm.example/h"\nsecret_env = "CRM_SECRET"\n',
                    encoding="utf-8")
    assert any(p == f"{path}: crm.webhooks[0].secret_env: CRM_SECRET is not set; export the signing secret the "
                    "receiver 'crm' checks (e.g. `openssl rand -hex 32`)" for p in check_config(path, env={}))
    assert not any("crm" in p for p in check_config(path, env={"CRM_SECRET": "s"}))
