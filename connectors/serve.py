"""Serving an emulator (any ASGI app) with uvicorn on a free loopback port: the demo, the
benchmarks and the tests that need a real socket (a daemon process connects to it)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

__all__ = ["serve_emulator"]


@asynccontextmanager
async def serve_emulator(app, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve an emulator app with uvicorn on a free loopback port; yields its base URL."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it Nagle + delayed ACK cost every request/response on loopback about 40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # surfaces the start-up error
            await asyncio.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
