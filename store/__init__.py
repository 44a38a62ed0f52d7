"""The local store: tables, migrations, bulk upserts, cursors."""

from store.db import connect, migrate
from store.store import CursorState, PageWrite, Store

__all__ = ["CursorState", "PageWrite", "Store", "connect", "migrate"]
