"""The signature of webhook notifications: how the worker signs a POST and a receiver checks it.

The worker's webhook notifier sends the header :data:`WEBHOOK_SIGNATURE_HEADER` with the value
``t=<unix seconds>,v1=<hex>``, where ``<hex>`` is the HMAC-SHA256, keyed with the shared
secret, of ``"<unix seconds>."`` followed by the exact request body. A receiver recomputes it
over the body it received (:func:`verify_webhook_signature`) and refuses a request whose
timestamp is too old, so a captured request cannot be replayed later. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["WEBHOOK_SIGNATURE_HEADER", "sign_webhook", "verify_webhook_signature"]

WEBHOOK_SIGNATURE_HEADER = "X-DWF-Signature"
"""The HTTP header holding a webhook notification's signature."""


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign_webhook(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The :data:`WEBHOOK_SIGNATURE_HEADER` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(_secret_bytes(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_webhook_signature(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    *,
    tolerance_seconds: float = 300.0,
    now: float | None = None,
) -> bool:
    """Whether ``header`` is a valid signature of ``body``, made less than ``tolerance_seconds`` ago.

    Args:
        secret: The secret shared with the worker's webhook notifier.
        body: The raw request body, exactly as received (before any JSON parsing).
        header: The value of the ``X-DWF-Signature`` header (None when it was missing).
        tolerance_seconds: How old (or how far in the future) the timestamp may be.
        now: The current unix time (default: the clock).
    """
    if not header:
        return False
    fields: dict[str, str] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, value)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = sign_webhook(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))
