"""Sign webhook bodies and check signatures: `X-Primer-Signature: t=<unix>,v1=<hex>`.

v1 is the hex HMAC-SHA256, keyed by the webhook's secret, of the ASCII timestamp, a dot and the
raw body bytes. A receiver recomputes it, compares in constant time, and rejects old timestamps
(five minutes by default) so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-Primer-Signature"
DEFAULT_TOLERANCE_S = 300


def new_secret() -> str:
    """Return a new webhook secret (256 random bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """Return the hex HMAC-SHA256 of '<timestamp>.<body>' under the secret."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """Return the X-Primer-Signature header value for a body sent now (or at `timestamp`)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={signature(secret, body, timestamp)}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Return whether the header signs this body with this secret, recently enough."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(parts.get("v1", ""), signature(secret, body, timestamp))
