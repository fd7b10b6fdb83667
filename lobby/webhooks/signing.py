"""Signatures: ``Anteroom-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``
with ``Anteroom-Webhook-Timestamp: <unix seconds>`` (docs/webhooks.md has the receiver's side)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
ID_HEADER = "Anteroom-Webhook-Id"
TIMESTAMP_HEADER = "Anteroom-Webhook-Timestamp"
SIGNATURE_HEADER = "Anteroom-Webhook-Signature"
EVENT_HEADER = "Anteroom-Webhook-Event"
ATTEMPT_HEADER = "Anteroom-Webhook-Attempt"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, header: str, *, now: float, tolerance: int = 300
) -> bool:
    """The receiver's check (used by the tests, and the recipe docs/webhooks.md shows)."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, int(timestamp), body)
    return any(hmac.compare_digest(expected, part.strip()) for part in header.split(" "))
