"""`loyalsync health`: ask the running daemon's `/healthz`, for the container HEALTHCHECK.

Exit 0 when the daemon answers 200, 1 otherwise, with one line saying what is wrong. It asks the
address the daemon listens on, from the same config; a wildcard bind is reached over loopback.
"""

from __future__ import annotations

import httpx

__all__ = ["probe"]

_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def _said(problem: object) -> str:
    """A problem of the body as one phrase: what is wrong, then what to do."""
    if isinstance(problem, dict):
        return " -> ".join(str(problem[k]) for k in ("message", "action") if problem.get(k))
    return str(problem)


def probe(host: str, port: int, timeout: float = 3.0) -> tuple[bool, str]:
    """(healthy, one line for a person) from GET /healthz on host:port."""
    host = _WILDCARD.get(host, host)
    url = f"http://[{host}]:{port}/healthz" if ":" in host else f"http://{host}:{port}/healthz"
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return False, f"no answer from {url} ({type(exc).__name__}): is `loyalsync run` running with [service] enabled?"
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 200:
        return True, f"healthy: {url}"
    problems = body.get("problems") if isinstance(body, dict) else None
    why = "; ".join(map(_said, problems)) if isinstance(problems, list) and problems else response.reason_phrase
    return False, f"unhealthy ({response.status_code}) at {url}: {why}"
