"""Webhook signatures: ``X-Quantpipe-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.

The body carries ``sent_at`` (epoch seconds, also sent as ``X-Quantpipe-Timestamp``), so
the signature covers the time: a receiver rejects a body older than its tolerance
(replay) and dedupes on ``idempotency_key`` (also the ``Idempotency-Key`` header), which
stays the same across retries of one (subscription, alert).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

SIGNATURE_HEADER = "X-Quantpipe-Signature"
TIMESTAMP_HEADER = "X-Quantpipe-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Quantpipe-Event"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None, *, tolerance: float = 300.0,
           now: float | None = None) -> dict:
    """What a receiver does: check the signature, then the body's ``sent_at``; returns the payload.

    Raises ValueError naming what failed (``signature`` or ``sent_at``).
    """
    if not header or not hmac.compare_digest(header, signature(secret, body)):
        raise ValueError("signature: X-Quantpipe-Signature does not match the body")
    payload = json.loads(body)
    sent = payload.get("sent_at")
    if not isinstance(sent, (int, float)) or abs((time.time() if now is None else now) - sent) > tolerance:
        raise ValueError(f"sent_at: outside the {tolerance:.0f} s tolerance (replayed or clock skew)")
    return payload
