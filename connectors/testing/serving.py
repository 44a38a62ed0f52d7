"""Serving an emulator app on loopback from a background thread, for synchronous tests.

CLI and subprocess tests need a real port (the code under test opens its own connections), while
the test itself stays synchronous; the emulator's event loop runs in a thread of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sync.demo import serve_emulator

__all__ = ["served"]


@contextmanager
def served(emulator: Any) -> Iterator[str]:
    """Serve `emulator` with uvicorn on a free loopback port, from a thread with its own loop."""
    box: dict = {}
    ready = threading.Event()

    async def serve() -> None:
        box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
        async with serve_emulator(emulator) as url:
            box["url"] = url
            ready.set()
            await box["stop"].wait()

    def main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            box["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=main, name="wb-emulator", daemon=True)
    thread.start()
    try:
        assert ready.wait(10), "emulator did not start within 10s"
        if "error" in box:
            raise box["error"]
        yield box["url"]
    finally:
        if "stop" in box:
            box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)
        assert not thread.is_alive(), "emulator thread did not stop"
