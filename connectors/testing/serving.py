"""Serving emulator apps on loopback from a background thread, for synchronous tests.

CLI and subprocess tests need real ports (the code under test opens its own connections), while
the test itself stays synchronous; the emulators' event loop runs in a thread of its own, so
their state outlives any daemon process the test starts and kills.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from typing import Any

from connectors.serve import serve_emulator

__all__ = ["served", "served_all"]


@contextmanager
def served(emulator: Any) -> Iterator[str]:
    """Serve `emulator` with uvicorn on a free loopback port, from a thread with its own loop."""
    with served_all([emulator]) as [url]:
        yield url


@contextmanager
def served_all(apps: Sequence[Any], *, quiet_disconnects: bool = False) -> Iterator[list[str]]:
    """Serve every app on a loopback port of its own, all from one background thread and loop.

    `quiet_disconnects`: a killed client drops its connections mid-request and uvicorn logs each
    as an ASGI error; a test that kills daemons on purpose silences those.
    """
    box: dict[str, Any] = {}
    ready = threading.Event()
    noisy = logging.getLogger("uvicorn.error")
    level = noisy.level

    async def serve() -> None:
        box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
        async with AsyncExitStack() as stack:
            box["urls"] = [await stack.enter_async_context(serve_emulator(app)) for app in apps]
            if quiet_disconnects:
                noisy.setLevel(logging.CRITICAL)  # after uvicorn configured its logging
            ready.set()
            await box["stop"].wait()

    def main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            box["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=main, name="emulators", daemon=True)
    thread.start()
    try:
        assert ready.wait(20), "emulators did not start within 20s"
        if "error" in box:
            raise box["error"]
        yield box["urls"]
    finally:
        if "stop" in box:
            box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(20)
        noisy.setLevel(level)
        assert not thread.is_alive(), "emulator thread did not stop"
