"""The `ZapHub-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>`.

`verify` is the receiver's side, the same code docs/webhooks.md shows tenants.
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "ZapHub-Signature"
DEFAULT_TOLERANCE = 300  # seconds a signature stays acceptable, against replays


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for `body` signed at `timestamp` (now when omitted)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, t, body)}"


def verify(
    secret: str, body: bytes, header: str, tolerance: int = DEFAULT_TOLERANCE, now: float | None = None
) -> bool:
    """True when `header` signs `body` with `secret` within `tolerance` seconds of `now`."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    timestamps = [v for k, v in parts if k.strip() == "t"]
    signatures = [v.strip() for k, v in parts if k.strip() == "v1"]
    if len(timestamps) != 1 or not timestamps[0].strip().isdigit() or not signatures:
        return False
    t = int(timestamps[0])
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = _mac(secret, t, body)
    return any(hmac.compare_digest(expected, s) for s in signatures)
