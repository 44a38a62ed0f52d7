"""One httpx transport in front of several emulators, chosen by the request's host.

`App` takes one transport per marketplace, while two accounts of one platform are two seller
cabinets with their own data, limits and faults: give each account its own base URL host and
route each host to its own emulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["HostRouter"]


class HostRouter(httpx.AsyncBaseTransport):
    """Sends each request to the ASGI app registered for its host; an unknown host is an error."""

    def __init__(self, apps: Mapping[str, Any]):
        self.transports = {host: httpx.ASGITransport(app=app) for host, app in apps.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.transports.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(f"no emulator for host {request.url.host!r}", request=request)
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self.transports.values():
            await transport.aclose()
