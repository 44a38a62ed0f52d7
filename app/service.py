"""The daemon's HTTP endpoint: `GET /healthz`, `GET /metrics` and, when configured, the ops console
under `/console` (`app.console`), served by uvicorn in its event loop.

The Daemon owns SIGTERM/SIGINT: uvicorn's own signal capture is switched off, and the Daemon's stop
ends the server (`Service.shutdown`). The socket is bound before anything starts, so a port in use
fails the start with one clear error (`CannotListen`) instead of a server that never came up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import uvicorn
from sqlalchemy import func, select, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from app.health import Problem
from app.metrics import CONTENT_TYPE, CURSORS, Metrics
from store import Store

if TYPE_CHECKING:
    from app.config import AppConfig
    from app.scheduler import Daemon

__all__ = ["CannotListen", "Service", "build_daemon", "service_app"]

log = logging.getLogger("loyalsync.service")
STORE_TIMEOUT = 2.0  # seconds a health check waits for `SELECT 1`
METRICS_TIMEOUT = 10.0  # seconds a scrape waits for the store's GROUP BYs
SHUTDOWN_TIMEOUT = 3.0  # seconds the server gets to finish open requests when the daemon stops


class CannotListen(Exception):
    """The endpoint's address cannot be bound (port in use, unknown host, no permission)."""

    def __init__(self, host: str, port: int, reason: str):
        super().__init__(f"cannot listen on {host}:{port}: {reason}")
        self.host, self.port, self.reason = host, port, reason


def _store_summary(store: Store) -> dict[str, int]:
    """`SELECT 1`, then the number of streams per last state (ok, deferred, error, ...)."""
    c = CURSORS.c
    with store.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        rows = conn.execute(select(c.state, func.count()).group_by(c.state)).all()
    return {state: int(n) for state, n in rows}


async def _in_thread(request: Request, call: Callable[[], Any], timeout: float) -> Any:
    # Own small pool: a hung database then ties up these threads, not the sync writers' pool.
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.run_in_executor(request.app.state.executor, call), timeout)


async def healthz(request: Request) -> Response:
    """200 when the daemon stores what it polls; 503 with each problem and what to do otherwise.

    The body has one shape either way: `status`, `problems` (each: `condition`, `message`, `action`,
    and `account`/`stream` where one is concerned), `scheduler`, `store`, `streams` (streams per
    last state). The conditions beyond "scheduler stopped" and "store unreachable" come from the
    daemon's own record of its runs (`app.health`).
    """
    daemon: Daemon = request.app.state.daemon
    problems: list[Problem] = []
    body: dict[str, Any] = {"scheduler": "running" if daemon.running else "stopped"}
    if not daemon.running:
        problems.append(Problem("scheduler_stopped", "scheduler stopped",
                                "the daemon is stopping or never started: see its log, then start it again"))
    try:
        body["streams"] = await _in_thread(request, lambda: _store_summary(daemon.app.store), STORE_TIMEOUT)
        body["store"] = "ok"
    except TimeoutError:
        body["store"] = "unreachable"
        problems.append(Problem("store_unreachable", f"store unreachable: no answer within {STORE_TIMEOUT:g}s",
                                "check that the database is up and reachable from the daemon"))
    except Exception as exc:  # noqa: BLE001 - any failure to read is the answer; the type, never the URL
        body["store"] = "unreachable"
        problems.append(Problem("store_unreachable", f"store unreachable: {type(exc).__name__}",
                                "check that the database is up and reachable from the daemon"))
    if daemon.running:  # a daemon not started has no runs to judge
        problems += daemon.health.problems(held=set(daemon.coordinator.leases.held))
    body = {"status": "unhealthy" if problems else "ok", "problems": [p.as_dict() for p in problems], **body}
    return JSONResponse(body, status_code=503 if problems else 200)


async def metrics(request: Request) -> Response:
    """Prometheus text exposition of the daemon's registry."""
    registry: Metrics = request.app.state.metrics
    try:
        payload = await _in_thread(request, registry.render, METRICS_TIMEOUT)
    except TimeoutError:
        return PlainTextResponse(f"metrics: the store gave no answer within {METRICS_TIMEOUT:g}s\n",
                                 status_code=503)
    return Response(payload, media_type=CONTENT_TYPE)


def service_app(daemon: Daemon, registry: Metrics) -> Starlette:
    """The ASGI app of the endpoint; runtime values live on `app.state`."""
    routes: list[Route | Mount] = [Route("/healthz", healthz, methods=["GET"]),
                                   Route("/metrics", metrics, methods=["GET"])]
    if daemon.app.config.settings.console.enabled:
        from app.console import ROOT, console_app

        routes.append(Mount(ROOT, app=console_app(daemon.app)))
    app = Starlette(routes=routes)
    app.state.daemon = daemon
    app.state.metrics = registry
    app.state.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="loyalsync-service")
    return app


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The Daemon handles SIGTERM/SIGINT and stops this server; uvicorn's handlers would
        # replace the loop's and re-raise the signal on exit.
        yield


class Service:
    """`service_app` served on `host:port` alongside a Daemon (`Daemon.run(service=...)`)."""

    def __init__(self, daemon: Daemon, registry: Metrics, *, host: str = "127.0.0.1", port: int = 8787):
        """`port=0` takes a free port (tests); `port` then tells which, once bound."""
        self.host, self.port = host, port
        self.app = service_app(daemon, registry)
        registry.watch(lambda: daemon.running)
        registry.watch_health(daemon.health)
        self.server = _Server(uvicorn.Config(
            self.app, host=host, port=port, http="h11", ws="none", lifespan="off", log_config=None,
            access_log=False, server_header=False, timeout_graceful_shutdown=int(SHUTDOWN_TIMEOUT),
        ))
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def bind(self) -> None:
        """Take the address now; raise CannotListen with the reason (e.g. the port is in use)."""
        if self._socket is not None:
            return
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise CannotListen(self.host, self.port, exc.strerror or str(exc)) from None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restarts reuse TIME_WAIT ports
            sock.bind(address)
        except OSError as exc:
            sock.close()
            reason = "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise CannotListen(self.host, self.port, reason) from None
        self._socket = sock
        self.port = sock.getsockname()[1]

    async def serve(self) -> None:
        """Serve until `shutdown`; binds first if `bind` was not called."""
        self.bind()
        assert self._socket is not None
        console = any(getattr(r, "path", "") == "/console" for r in self.app.routes)
        log.info("service listening on %s (/healthz, /metrics%s)", self.url, ", /console" if console else "")
        try:
            await self.server.serve(sockets=[self._socket])
        finally:
            self._socket.close()
            self.app.state.executor.shutdown(wait=False, cancel_futures=True)

    async def shutdown(self, serving: asyncio.Task) -> None:
        """Stop the server started as `serving`: open requests finish, then it returns."""
        self.server.should_exit = True
        done, _ = await asyncio.wait([serving], timeout=SHUTDOWN_TIMEOUT + 1)
        if not done:
            self.server.force_exit = True
            serving.cancel()
        # The server's own failure, if any, was reported when it ended (`Daemon`).
        await asyncio.gather(serving, return_exceptions=True)


def build_daemon(cfg: AppConfig, store: Store) -> tuple[Daemon, Service | None]:
    """What `loyalsync run` starts: the daemon, counted, and the `[service]` endpoint if enabled."""
    from app.scheduler import Daemon
    from app.wiring import App

    settings = cfg.settings.service
    if not settings.enabled:
        return Daemon(App(cfg, store=store)), None
    registry = Metrics(store)
    daemon = Daemon(App(cfg, store=store, request_observer=registry.request_observer),
                    on_result=registry.observe_run)
    return daemon, Service(daemon, registry, host=settings.host, port=settings.port)
