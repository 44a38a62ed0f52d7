"""The local store: tables, migrations, bulk upserts, cursors."""

from sync.store.db import connect, migrate
from sync.store.store import CursorState, PageWrite, Store

__all__ = ["CursorState", "PageWrite", "Store", "connect", "migrate"]
