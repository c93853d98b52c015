"""The task inbox over HTTP: an ASGI API (FastAPI) to mount in an application or run alone.

::

    from sdk.inbox import JWTAuthenticator, create_inbox_app

    inbox = create_inbox_app(client, authenticator=JWTAuthenticator(secret=SECRET))
    app.mount("/inbox", inbox)          # FastAPI or Starlette; ``dwf serve`` runs it alone

Identity comes from a verified credential (a bearer token, or the inbox's signed session
cookie), never from a request's body; every endpoint applies the client's permission and
tenant checks; errors are RFC 9457 problem details. See ``docs/inbox.md``.
"""

from ._app import API_PREFIX, OPENAPI_URL, create_inbox_app
from ._auth import AuthenticationError, Authenticator, JWTAuthenticator
from ._problems import PROBLEM_JSON, FieldError, Problem
from ._session import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, SessionConfig

__all__ = [
    # The application
    "create_inbox_app",
    "API_PREFIX",
    "OPENAPI_URL",
    # Who calls: authenticators and cookie sessions
    "Authenticator",
    "AuthenticationError",
    "JWTAuthenticator",
    "SessionConfig",
    "SESSION_COOKIE",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    # Errors
    "PROBLEM_JSON",
    "Problem",
    "FieldError",
]
