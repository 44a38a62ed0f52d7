"""Buyer keys: a platform's raw buyer id becomes a salted hash before anything is stored.

The salt is generated once per installation and kept in the store's `meta` table, so keys stay
stable across restarts and replicas but cannot be reversed or joined with another installation's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

from sqlalchemy import Table, select
from sqlalchemy.engine import Engine

from store.tables import MetaRow
from store.upsert import dialect_insert

__all__ = ["SALT_KEY", "buyer_key_hasher", "installation_salt"]

SALT_KEY = "buyer_key_salt"
META: Table = MetaRow.__table__  # type: ignore[assignment]


def installation_salt(engine: Engine) -> bytes:
    """The installation's salt, created on first use; concurrent first uses agree on one."""
    with engine.begin() as conn:
        conn.execute(dialect_insert(conn, META).values(key=SALT_KEY, value=secrets.token_hex(32))
                     .on_conflict_do_nothing(index_elements=["key"]))
        value = conn.execute(select(META.c.value).where(META.c.key == SALT_KEY)).scalar_one()
    return bytes.fromhex(value)


def buyer_key_hasher(salt: bytes, marketplace: str) -> Callable[[str], str]:
    """HMAC-SHA256 of (marketplace, raw id) under the salt, as 32 hex characters."""
    prefix = f"{marketplace}\x1f".encode()

    def buyer_key(raw_id: str) -> str:
        if not raw_id:
            raise ValueError("empty buyer id")
        return hmac.new(salt, prefix + str(raw_id).encode(), hashlib.sha256).hexdigest()[:32]

    return buyer_key
