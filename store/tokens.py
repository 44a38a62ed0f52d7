"""Runtime tokens in the store (`auth_tokens`): one OAuth token per key for every replica.

`StoreTokenCache` is the `connectors.auth.TokenCache` a daemon hands its connectors. A replica
that finds no fresh token claims the key's row (`claimed_by`, `claimed_until`) with one conditional
UPDATE; only the claim holder asks the platform, the others poll the row until the new token is
there or the claim lapses (a holder that died mid-fetch blocks nobody past `claim_for`). Within one
process an asyncio lock per key comes first, so many callers cost one claim. Database calls run in
a worker thread, off the event loop, like the runner's page writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, delete, or_, select, update
from sqlalchemy.engine import Engine

from connectors.auth import CachedToken
from store.tables import AuthTokenRow
from store.upsert import dialect_insert

__all__ = ["AUTH_TOKENS", "StoreTokenCache"]

AUTH_TOKENS: Table = AuthTokenRow.__table__  # type: ignore[assignment]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class StoreTokenCache:
    """A `TokenCache` in the store's `auth_tokens` table, shared by every replica on it."""

    def __init__(
        self,
        engine: Engine,
        *,
        claim_for: timedelta = timedelta(seconds=60),
        poll_every: float = 0.25,
        now: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        """`claim_for` bounds how long a replica may take to fetch (the token request's retries included)."""
        self.engine = engine
        self.claim_for = claim_for
        self.poll_every = poll_every
        self._now = now
        self._sleep = sleep
        self._locks: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"StoreTokenCache({self.engine.url.render_as_string(hide_password=True)!r})"

    async def get(self, key: str) -> CachedToken | None:
        return await asyncio.to_thread(self._get, key)

    async def put(self, key: str, token: CachedToken) -> None:
        await asyncio.to_thread(self._put, key, token)

    @contextlib.asynccontextmanager
    async def refreshing(self, key: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(key, asyncio.Lock()):
            holder = uuid.uuid4().hex
            seen = await self.get(key)
            while not (claimed := await asyncio.to_thread(self._claim, key, holder)):
                await self._sleep(self.poll_every)
                if await self.get(key) != seen:
                    break  # another replica put a token: the caller checks it, and fetches only if unfit
            try:
                yield
            finally:
                if claimed:
                    await asyncio.to_thread(self._release, key, holder)

    def forget(self, key: str) -> None:
        """Drop the key's token (a revoked credential; tests)."""
        with self.engine.begin() as conn:
            conn.execute(delete(AUTH_TOKENS).where(AUTH_TOKENS.c.key == key))

    def _get(self, key: str) -> CachedToken | None:
        c = AUTH_TOKENS.c
        with self.engine.connect() as conn:
            row = conn.execute(select(c.token, c.issued_at, c.expires_at).where(c.key == key)).first()
        if row is None or not row.token or row.issued_at is None or row.expires_at is None:
            return None
        return CachedToken(value=row.token, issued_at=row.issued_at, expires_at=row.expires_at)

    def _put(self, key: str, token: CachedToken) -> None:
        values = {"token": token.value, "issued_at": token.issued_at, "expires_at": token.expires_at}
        with self.engine.begin() as conn:
            stmt = dialect_insert(conn, AUTH_TOKENS).values(key=key, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=values))

    def _claim(self, key: str, holder: str) -> bool:
        """Take the key's refresh claim if nobody holds a live one; True when this holder has it."""
        c = AUTH_TOKENS.c
        now = self._now()
        with self.engine.begin() as conn:
            conn.execute(dialect_insert(conn, AUTH_TOKENS).values(key=key).on_conflict_do_nothing(
                index_elements=["key"]))
            taken = conn.execute(
                update(AUTH_TOKENS)
                .where(c.key == key, or_(c.claimed_until.is_(None), c.claimed_until <= now))
                .values(claimed_by=holder, claimed_until=now + self.claim_for)
            )
        return taken.rowcount == 1

    def _release(self, key: str, holder: str) -> None:
        c = AUTH_TOKENS.c
        with self.engine.begin() as conn:
            conn.execute(update(AUTH_TOKENS).where(c.key == key, c.claimed_by == holder)
                         .values(claimed_by=None, claimed_until=None))
