"""The inbox application: the API's routes under ``/api``, its OpenAPI document, its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from sdk import WorkflowClient
from sdk.mirror import create_engine

from . import _diagrams, _instances, _signin, _tasks
from ._auth import Authenticator
from ._caller import InboxState
from ._problems import PROBLEM_JSON, install_problem_handlers
from ._session import SessionConfig
from ._web import install_web_inbox

__all__ = ["API_PREFIX", "OPENAPI_URL", "create_inbox_app"]

API_PREFIX = "/api"
OPENAPI_URL = f"{API_PREFIX}/openapi.json"
"""Where the OpenAPI 3.1 document is served (relative to where the inbox is mounted)."""


def create_inbox_app(
    client: WorkflowClient,
    *,
    authenticator: Authenticator | None = None,
    sessions: SessionConfig | None = None,
    single_tenant: bool = False,
    title: str = "durable-workflows inbox",
    web: bool = True,
) -> FastAPI:
    """The inbox API as an ASGI application, to serve alone or mount in another one.

    Mount it with ``app.mount("/inbox", create_inbox_app(...))`` (FastAPI, Starlette) or as a
    Litestar ``asgi`` route (see ``docs/inbox.md``). The routes live under ``/api``; the
    OpenAPI document at ``/api/openapi.json``, its browsable form at ``/api/docs``.

    Args:
        client: A client connected with the mirror's ``database_url`` (queries read it). It
            acts for each request's tenant: connect it without ``tenant_id``. With an identity
            provider, the provider says each user's groups and admin flag.
        authenticator: Request → :class:`sdk.Identity` (e.g. :class:`JWTAuthenticator`, or the
            application's own function).
        sessions: Cookie sessions for the web inbox (token sign-in, and development users).
        single_tenant: Serve identities without a tenant (an application without tenants);
            otherwise such an identity is refused, since it would read every tenant's rows.
        title: The OpenAPI document's title.
        web: Serve the web inbox (the page at ``/``, its assets under ``/assets``) when
            ``sessions`` are given: the page signs people in with a cookie session.

    Raises:
        ValueError: The client has no database, or a tenant of its own; or neither an
            authenticator nor sessions are given.
    """
    if client.queries is None or client.database_url is None:
        raise ValueError("the inbox reads the SQL mirror: connect its client with database_url=")
    if client.tenant_id is not None:
        raise ValueError("the inbox acts for each request's tenant: connect its client without tenant_id=")
    if authenticator is None and sessions is None:
        raise ValueError("give an authenticator= and/or sessions=: the inbox serves only identified callers")
    engine = create_engine(client.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(
        title=title,
        openapi_url=OPENAPI_URL,
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.dwf_inbox = InboxState(
        client=client,
        queries=client.queries,
        engine=engine,
        authenticator=authenticator,
        sessions=sessions,
        single_tenant=single_tenant,
        uses_provider=client.identity_provider is not None,
    )
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(_signin.router)
    api.include_router(_tasks.router)
    api.include_router(_instances.router)
    api.include_router(_diagrams.router)
    app.include_router(api)
    install_problem_handlers(app)
    _problems_in_openapi(app)
    if web and sessions is not None:
        install_web_inbox(app)
    return app


def _problems_in_openapi(app: FastAPI) -> None:
    """Declare error answers as ``application/problem+json`` (FastAPI files a response model
    under ``application/json``)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        for path in document.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status.isdigit() and int(status) >= 400 and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
