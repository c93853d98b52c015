"""What the inbox API's tests share: an app on the module's mirror and worker, tokens, snapshots.

:func:`open_inbox` builds ``sdk.inbox.create_inbox_app`` on a client connected with the
module's database and worker task queue, with a JWT authenticator (HS256) and cookie sessions
(development users), and an ``httpx.AsyncClient`` that calls it in process (ASGI).
:func:`token` issues the bearer tokens the application's identity provider would.
:func:`mirror_snapshot` reads every mirror row, to show that a refusal changed none.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from sdk import Identity, IdentityProvider, WorkflowClient
from sdk.inbox import JWTAuthenticator, SessionConfig, create_inbox_app
from sdk.mirror import MirrorBase

__all__ = ["JWT_SECRET", "Inbox", "bearer", "mirror_snapshot", "open_inbox", "token"]

JWT_SECRET = "inbox-tests-shared-secret-0123456789abcdef"
SESSION_SECRET = "inbox-tests-session-secret-0123456789abcdef"


def token(
    user: str,
    *,
    groups: tuple[str, ...] = (),
    tenant: str | None = None,
    admin: bool = False,
    secret: str = JWT_SECRET,
    expires_in: float = 300,
) -> str:
    """A bearer token as the application's identity provider issues it."""
    claims: dict[str, Any] = {"sub": user, "groups": list(groups), "exp": int(time.time() + expires_in)}
    if tenant is not None:
        claims["tenant_id"] = tenant
    if admin:
        claims["admin"] = True
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(user: str, **claims: Any) -> dict[str, str]:
    """``Authorization`` headers for a user (see :func:`token`)."""
    return {"Authorization": f"Bearer {token(user, **claims)}"}


@dataclass
class Inbox:
    """The app under test, an HTTP client on it, and the client it acts through."""

    app: FastAPI
    http: httpx.AsyncClient
    client: WorkflowClient
    touched: list[str] = field(default_factory=list)
    """Workflow ids the tests started, to audit."""


@asynccontextmanager
async def open_inbox(
    target: str,
    database_url: str,
    task_queue: str,
    dev_users: dict[str, Identity] | None = None,
    identity_provider: IdentityProvider | None = None,
) -> AsyncIterator[Inbox]:
    """The inbox app on the module's database and worker, with an HTTP client on it."""
    client = await WorkflowClient.connect(
        target, database_url=database_url, task_queue=task_queue, identity_provider=identity_provider
    )
    app = create_inbox_app(
        client,
        authenticator=JWTAuthenticator(secret=JWT_SECRET),
        sessions=SessionConfig(SESSION_SECRET, dev_users=dev_users or {}, secure=False),
    )
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inbox") as http,
        ):
            yield Inbox(app, http, client)
    finally:
        await client.close()


async def mirror_snapshot(db: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every mirror table, in a stable order."""
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    async with db.connect() as conn:
        for table in MirrorBase.metadata.sorted_tables:
            rows = (await conn.execute(select(table).order_by(*table.primary_key.columns))).all()
            snapshot[table.name] = [tuple(row) for row in rows]
    return snapshot
