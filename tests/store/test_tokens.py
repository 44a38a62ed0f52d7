"""`auth_tokens` (migration 0014) and `StoreTokenCache`: replicas on one store fetch one OAuth token."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import inspect, text

from connectors.auth import CachedToken, TokenCache
from store import connect, migrate
from store.backup import MAIN_TABLES
from store.tokens import StoreTokenCache
from tests.connectors.test_auth import T0, Platform, Wall, _client, _oauth
from tests.store.conftest import migrate_to

KEY = "oauth2:https://api.platform.example/token:client-id-42"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:
    """A migrated database of either backend, reached by URL so each 'replica' opens its own engine."""
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = connect(url)
    migrate(engine)
    engine.dispose()
    return url


def test_migration_0014_adds_and_drops_auth_tokens(bare_engine):
    migrate_to(bare_engine, "0014")
    columns = {c["name"] for c in inspect(bare_engine).get_columns("auth_tokens")}
    assert columns == {"key", "token", "issued_at", "expires_at", "claimed_by", "claimed_until"}
    migrate_to(bare_engine, "0013", down=True)
    assert "auth_tokens" not in inspect(bare_engine).get_table_names()


def test_tokens_are_not_among_the_tables_a_backup_counts_aloud():
    assert "auth_tokens" not in MAIN_TABLES


@pytest.mark.anyio
async def test_a_token_round_trips_with_aware_times(db_url):
    engine = connect(db_url)
    try:
        cache = StoreTokenCache(engine)
        assert isinstance(cache, TokenCache)
        assert await cache.get(KEY) is None
        token = CachedToken("stored-token-value", issued_at=T0, expires_at=T0 + timedelta(hours=24))
        await cache.put(KEY, token)
        assert await cache.get(KEY) == token
        newer = CachedToken("stored-token-value-2", issued_at=T0 + timedelta(hours=22),
                            expires_at=T0 + timedelta(hours=46))
        await cache.put(KEY, newer)
        assert await cache.get(KEY) == newer
        assert "stored-token" not in repr(cache)
    finally:
        engine.dispose()


@pytest.mark.anyio
async def test_two_replicas_on_one_store_fetch_one_token(db_url):
    platform, wall = Platform(token_delay=0.05), Wall()
    engines = [connect(db_url), connect(db_url)]  # two replicas: their own engines, one database
    try:
        auths = [_oauth(wall, cache=StoreTokenCache(e, poll_every=0.01, now=wall)) for e in engines]
        async with _client(platform, auths[0]) as a, _client(platform, auths[1]) as b:
            bodies = await asyncio.gather(*(c.request_json("GET", "api", "/orders") for c in (a, b)
                                            for _ in range(10)))
            assert platform.issued == ["access-1-tok"]
            assert {body["token"] for body in bodies} == {"access-1-tok"}
            assert sum(auth.fetches for auth in auths) == 1
            # Ahead of expiry, one of them renews it, and the other uses the renewed one.
            wall.now = T0 + timedelta(hours=22)
            await asyncio.gather(a.request("GET", "api", "/orders"), b.request("GET", "api", "/orders"))
        assert platform.issued == ["access-1-tok", "access-2-tok"]
        with engines[0].connect() as conn:
            row = conn.execute(text("SELECT token, claimed_by FROM auth_tokens")).one()
        assert row == ("access-2-tok", None)  # the claim is released after the fetch
    finally:
        for e in engines:
            e.dispose()


@pytest.mark.anyio
async def test_a_claim_left_by_a_dead_replica_lapses(db_url):
    wall = Wall()
    engine = connect(db_url)
    try:
        cache = StoreTokenCache(engine, claim_for=timedelta(seconds=30), poll_every=0.01, now=wall)
        assert await asyncio.to_thread(cache._claim, KEY, "dead-replica")  # it died holding the claim
        waiting = asyncio.create_task(_enter(cache))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the live claim holds the others back
        wall.now = T0 + timedelta(seconds=31)
        await asyncio.wait_for(waiting, 5)
    finally:
        engine.dispose()


async def _enter(cache: StoreTokenCache) -> None:
    async with cache.refreshing(KEY):
        pass
