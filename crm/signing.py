"""How a webhook is signed, and how a receiver checks it (HMAC-SHA256 over the timestamp and body).

The header is `Loyalsync-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
HMAC-SHA256(secret, "<t>." + body), the scheme Stripe and GitHub receivers already know: the
timestamp is signed with the body, so a captured request cannot be replayed later than the
receiver's tolerance, and `hmac.compare_digest` keeps the comparison constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "TOLERANCE_SECONDS", "sign", "signature_header", "verify"]

SIGNATURE_HEADER = "Loyalsync-Signature"
TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>." + body` under `secret`."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify(secret: str, header: str | None, body: bytes, now: float, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """Whether `header` signs `body` under `secret` at a time within `tolerance` seconds of `now`."""
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(parts.get("v1", ""), sign(secret, timestamp, body))
