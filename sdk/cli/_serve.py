"""``dwf serve``: the inbox's HTTP API (``sdk.inbox``) alone, under uvicorn, until Ctrl-C.

Who callers are comes from the environment, never from flags a process listing would show:
``DWF_INBOX_JWT_SECRET`` (bearer JWTs signed with a shared secret, HS256) or ``--jwks-file``
(public keys), and ``--dev-users`` (a JSON file of users to pick from, for development). The
session cookies are signed with ``DWF_INBOX_SESSION_SECRET`` (generated when unset: sessions
then end with the process).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sdk import Identity

from ._context import Context
from ._exit import ExitCode, UsageError
from ._target import open_client

__all__ = ["JWT_SECRET_ENV", "SESSION_SECRET_ENV", "load_dev_users", "serve"]

JWT_SECRET_ENV = "DWF_INBOX_JWT_SECRET"
SESSION_SECRET_ENV = "DWF_INBOX_SESSION_SECRET"


def load_dev_users(path: str) -> dict[str, Identity]:
    """Development users from a JSON file: ``{"ann": {"groups": ["managers"], "tenant_id": "acme"}}``.

    Raises:
        UsageError: The file cannot be read or does not describe users.
    """
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"--dev-users: cannot read {path}: {exc}") from None
    if not isinstance(raw, dict) or not raw:
        raise UsageError(f"--dev-users: {path} must hold a JSON object of users")
    users: dict[str, Identity] = {}
    for user, fields in raw.items():
        try:
            users[user] = Identity(user=user, **(fields or {}))
        except (ValidationError, TypeError) as exc:
            raise UsageError(f"--dev-users: user {user!r} in {path}: {exc}") from None
    return users


def _authenticator(args: Any) -> Any:
    from sdk.inbox import JWTAuthenticator

    secret = os.environ.get(JWT_SECRET_ENV, "").strip()
    if secret and args.jwks_file:
        raise UsageError(f"{JWT_SECRET_ENV} and --jwks-file are exclusive: tokens are verified one way")
    try:
        if secret:
            return JWTAuthenticator(secret=secret, audience=args.audience, issuer=args.issuer)
        if args.jwks_file:
            return JWTAuthenticator(jwks_file=args.jwks_file, audience=args.audience, issuer=args.issuer)
    except (OSError, ValueError) as exc:
        raise UsageError(f"the inbox's token settings: {exc}") from None
    return None


async def serve(ctx: Context) -> int:
    """Serve the inbox API until interrupted."""
    import uvicorn

    from sdk.inbox import OPENAPI_URL, SessionConfig, create_inbox_app

    a = ctx.args
    authenticator = _authenticator(a)
    dev_users = load_dev_users(a.dev_users) if a.dev_users else {}
    if authenticator is None and not dev_users:
        raise UsageError(
            f"the inbox serves identified callers only: set {JWT_SECRET_ENV}, or pass --jwks-file "
            "(tokens) or --dev-users FILE (development)"
        )
    session_secret = os.environ.get(SESSION_SECRET_ENV, "").strip()
    if not session_secret:
        session_secret = secrets.token_urlsafe(32)
        ctx.out.note(f"{SESSION_SECRET_ENV} is not set: sessions end when this process does")
    try:
        sessions = SessionConfig(session_secret, dev_users=dev_users, secure=not a.insecure_cookies)
    except ValueError as exc:
        raise UsageError(f"{SESSION_SECRET_ENV}: {exc}") from None
    async with open_client(ctx.target) as client:
        app = create_inbox_app(
            client, authenticator=authenticator, sessions=sessions, single_tenant=a.single_tenant
        )
        config = uvicorn.Config(app, host=a.host, port=a.port, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        base = f"http://{a.host}:{a.port}"
        ctx.out.line(f"inbox API on {base}/api (OpenAPI {base}{OPENAPI_URL}, docs {base}/api/docs)")
        # uvicorn stops gracefully on SIGTERM, then raises the signal again under the handler
        # found before it: ignored here, so a SIGTERM ends the command normally (exit 0).
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            await server.serve()
        finally:
            signal.signal(signal.SIGTERM, previous)
    return ExitCode.OK
