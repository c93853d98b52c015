"""Cookie sessions for the web inbox, and their protection against cross-site request forgery.

A session is a cookie the inbox signs (HMAC-SHA256 with the application's session secret): the
identity it was opened for, a random CSRF token and an expiry. Nothing is stored on the server,
so a restart or a second replica keeps sessions valid while the secret is the same.

CSRF: the cookie is ``HttpOnly`` and ``SameSite=Lax``, and every unsafe request (POST, PUT,
PATCH, DELETE) authenticated by the cookie must also send the session's CSRF token in the
``X-CSRF-Token`` header. The token is returned by the login and ``GET /api/session``, and set in
a second cookie readable by the page's script (double submit). A cross-site page can make the
browser send the cookie, but can neither read the token nor set a custom header without a CORS
preflight the inbox never grants.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from sdk import Identity

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "SESSION_COOKIE", "Session", "SessionConfig"]

SESSION_COOKIE = "dwf_session"
CSRF_COOKIE = "dwf_csrf"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Session:
    """An open session: who, its CSRF token, and when it ends (seconds since the epoch)."""

    identity: Identity
    csrf_token: str
    expires_at: float


@dataclass(frozen=True)
class SessionConfig:
    """How the inbox signs its session cookies, and who may sign in without a token.

    Args:
        secret: The key the cookies are signed with (at least 32 bytes; keep it in the
            application's secret store).
        dev_users: For development only: the users a person may pick on the sign-in page
            (user id → identity). Empty: no "pick a user" sign-in.
        max_age: Seconds a session lasts.
        secure: Send the cookies over HTTPS only (turn off for plain-HTTP development).
    """

    secret: str | bytes
    dev_users: Mapping[str, Identity] = field(default_factory=dict)
    max_age: int = 8 * 3600
    secure: bool = True

    def __post_init__(self) -> None:
        if len(self.secret) < 32:
            raise ValueError("a session secret must be at least 32 bytes long")

    @property
    def _key(self) -> bytes:
        return self.secret.encode() if isinstance(self.secret, str) else self.secret

    def _mac(self, body: bytes) -> str:
        return _b64(hmac.new(self._key, body, hashlib.sha256).digest())

    def open(self, identity: Identity) -> tuple[Session, str]:
        """A new session for ``identity`` and its cookie value."""
        session = Session(identity, secrets.token_urlsafe(24), time.time() + self.max_age)
        body = json.dumps(
            {
                "identity": identity.model_dump(mode="json"),
                "csrf": session.csrf_token,
                "exp": session.expires_at,
            },
            separators=(",", ":"),
        ).encode()
        return session, f"{_b64(body)}.{self._mac(body)}"

    def read(self, cookie: str) -> Session | None:
        """The session a cookie holds; None when it is forged, damaged or expired."""
        encoded, _, mac = cookie.partition(".")
        try:
            body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = json.loads(body)
            session = Session(
                Identity.model_validate(data["identity"]), str(data["csrf"]), float(data["exp"])
            )
        except (ValueError, KeyError, TypeError, ValidationError):
            return None
        return session if session.expires_at > time.time() else None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
