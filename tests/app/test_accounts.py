"""Several accounts of one platform in one config sync independently, for every connector."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from app.config import AppConfig, AppSettings, DatabaseSettings, MarketplaceAccount
from app.export import export_rows
from app.wiring import App
from connectors.registry import available_connectors
from store import Store

pytestmark = pytest.mark.anyio
WITH_DEMO = sorted(name for name, cls in available_connectors().items()
                   if cls.demo(seed=1, orders=1, reviews=1) is not None)


@pytest.mark.parametrize("marketplace", WITH_DEMO)
async def test_two_accounts_of_one_platform_keep_apart_and_one_failing_spares_the_other(
        marketplace: str, sqlite_store: Store, tmp_path: Path):
    cls = available_connectors()[marketplace]
    first = cls.demo(seed=3, orders=120, reviews=30, rate_limits=False)
    second = cls.demo(seed=4, orders=80, reviews=20, rate_limits=False)
    one = first.account("http://one").model_copy(update={"name": "one"})
    two = second.account("http://two").model_copy(update={"name": "two"})

    def app_for(accounts, apps=None) -> App:
        config = AppConfig(settings=AppSettings(database=DatabaseSettings(url=f"sqlite:///{tmp_path}/x.db")),
                           accounts=tuple(MarketplaceAccount(marketplace, a) for a in accounts),
                           config_path=tmp_path / "loyalsync.toml")
        # One emulator per account, routed by host name through one transport.
        transport = httpx.ASGITransport(app=_by_host(apps or {"one": first.app, "two": second.app}))
        return App(config, store=sqlite_store, transports={marketplace: transport})

    async with app_for([one, two]) as app:
        results = await app.sync_once(app.jobs())
    assert all(r.ok for r in results), [r.error for r in results]
    orders = list(export_rows(sqlite_store, "orders"))
    by_account = {name: {o["order_id"] for o in orders if o["account"] == name} for name in ("one", "two")}
    assert by_account["one"] and by_account["two"]

    # The second cabinet's token (an OAuth client's secret) is revoked: it fails alone; the first keeps syncing.
    # An OAuth account's access token in the store is revoked with it: a platform that has never seen it.
    secret = "client_secret" if "client_secret" in type(two).model_fields else "token"
    revoked = two.model_copy(update={secret: SecretStr("revoked-token-value")})
    fresh = cls.demo(seed=4, orders=80, reviews=20, rate_limits=False).app
    async with app_for([one, revoked], {"one": first.app, "two": fresh}) as app:
        results = await app.sync_once(app.jobs())
    states = {(r.key.account, r.key.stream): r.state for r in results}
    assert {s for (acct, _), s in states.items() if acct == "one"} == {"ok"}
    assert {s for (acct, _), s in states.items() if acct == "two"} == {"error"}
    after = {name: {o["order_id"] for o in export_rows(sqlite_store, "orders") if o["account"] == name}
             for name in ("one", "two")}
    assert after == by_account  # nothing lost, nothing mixed


def _by_host(apps):
    """An ASGI app that hands each request to the emulator named by its host."""
    async def route(scope, receive, send):
        host = dict(scope.get("headers") or []).get(b"host", b"").decode().split(":")[0]
        await apps[host](scope, receive, send)
    return route
