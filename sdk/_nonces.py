"""Replay protection for signed commands: each signature is accepted once per instance.

A signature binds the instance, the task, the action and an issue time, and the workflow accepts
it for a few minutes (``sdk._signing``). Within that window a captured command could be sent
again; :class:`SeenSignatures` remembers every verified signature, keyed by the signature itself
(unique per signed message), and refuses one it has seen. Memory stays bounded: a signature is
forgotten once the workflow's clock is past its issue time by :data:`REMEMBERED_FOR` (longer
than any accepted age), or when more than :data:`MAX_REMEMBERED` are held; what is forgotten
raises a floor, and a command issued at or before the floor is refused too, so forgetting never
reopens a replay. Pure and deterministic (workflow time only), sandbox safe.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ._errors import ErrorKind, Refusal

__all__ = ["MAX_REMEMBERED", "REMEMBERED_FOR", "SeenSignatures", "signature_of"]

REMEMBERED_FOR = timedelta(minutes=10)
"""How long after its issue time a signature is remembered (the accepted age is 5 minutes)."""
MAX_REMEMBERED = 1000
"""The most signatures one instance remembers; the oldest are forgotten first."""


def signature_of(payload: Any) -> tuple[str, datetime] | None:
    """(signature, issue time) of a verified signed payload; None when it carries none."""
    auth = payload.get("auth") if isinstance(payload, dict) else None
    if not isinstance(auth, dict):
        return None
    signature, issued = auth.get("signature"), auth.get("issued_at")
    if not isinstance(signature, str) or not isinstance(issued, str):
        return None
    try:
        at = datetime.fromisoformat(issued)
    except ValueError:
        return None
    return signature, at if at.tzinfo else at.replace(tzinfo=UTC)


class SeenSignatures:
    """The signatures one instance has accepted, within the replay window."""

    def __init__(self) -> None:
        self._seen: dict[str, datetime] = {}
        self._floor: datetime | None = None
        self._verifying: dict[str, int] = {}  # signatures of signals being verified right now

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, signature: str, issued_at: datetime) -> bool:
        """Whether this signature was accepted before, is being verified for another signal, or
        is older than what was forgotten."""
        return (
            signature in self._seen
            or signature in self._verifying
            or (self._floor is not None and issued_at <= self._floor)
        )

    def verifying(self, signature: str, busy: bool) -> None:
        """Mark a signal's signature as being verified (``busy``), or no longer."""
        count = self._verifying.get(signature, 0) + (1 if busy else -1)
        if count > 0:
            self._verifying[signature] = count
        else:
            self._verifying.pop(signature, None)

    def check(self, payload: Any) -> None:
        """Raise :class:`Refusal` (UNAUTHENTICATED) for a replayed signed payload."""
        found = signature_of(payload)
        if found is not None and self.seen(*found):
            raise replayed()

    def remember(self, payload: Any, now: datetime) -> None:
        """Remember a verified payload's signature; forget what is older than the window."""
        found = signature_of(payload)
        if found is None:
            return
        signature, issued_at = found
        self._seen[signature] = issued_at
        cutoff = now - REMEMBERED_FOR
        expired = [s for s, at in self._seen.items() if at < cutoff]
        if len(self._seen) - len(expired) > MAX_REMEMBERED:
            by_age = sorted(self._seen.items(), key=lambda item: (item[1], item[0]))
            expired = [s for s, _ in by_age[: len(self._seen) - MAX_REMEMBERED]]
        for forgotten in expired:
            at = self._seen.pop(forgotten)
            self._floor = at if self._floor is None else max(self._floor, at)


def replayed() -> Refusal:
    """The refusal of a command whose signature was accepted before."""
    return Refusal(
        ErrorKind.UNAUTHENTICATED,
        "the command was received before (a signed command is accepted once)",
    )
