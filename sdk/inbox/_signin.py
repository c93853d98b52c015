"""Sign-in for the web inbox: a cookie session from a token (production) or a picked user
(development), who the session is for, and sign-out.

The identity of a session comes from a verified token or from the application's own list of
development users, never from what the request claims. Sign-in bodies must be declared JSON
(``Content-Type: application/json``, else 415), which a cross-site HTML form or a no-CORS fetch
cannot send: a page elsewhere cannot sign a browser in as someone else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from sdk import Identity

from ._auth import AuthenticationError
from ._caller import Caller, InboxState, get_caller, inbox_state
from ._schemas import SessionInfo, TokenLogin, UserLogin
from ._session import CSRF_COOKIE, SESSION_COOKIE, Session, SessionConfig
from ._tasks import _PROBLEMS

__all__ = ["router"]

router = APIRouter(prefix="/session", tags=["session"], responses=_PROBLEMS)  # type: ignore[arg-type]
StateDep = Annotated[InboxState, Depends(inbox_state)]


def _info(identity: Identity, session: Session | None, config: SessionConfig | None) -> SessionInfo:
    return SessionInfo(
        user=identity.user,
        groups=list(identity.groups),
        admin=identity.admin,
        tenant_id=identity.tenant_id,
        csrf_token=session.csrf_token if session else None,
        dev_users=sorted(config.dev_users) if config else [],
    )


def _sessions(state: InboxState) -> SessionConfig:
    if state.sessions is None:
        raise HTTPException(
            404, "this inbox has no cookie sessions (create it with sessions=SessionConfig(...))"
        )
    return state.sessions


def _cookie_path(request: Request) -> str:
    """Where the cookies apply: the inbox's mount point (``/`` when it runs alone)."""
    return str(request.scope.get("root_path") or "") or "/"


def _open(request: Request, response: Response, config: SessionConfig, identity: Identity) -> SessionInfo:
    session, cookie = config.open(identity)
    path = _cookie_path(request)
    common = {"max_age": config.max_age, "secure": config.secure, "samesite": "lax", "path": path}
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, **common)  # type: ignore[arg-type]
    response.set_cookie(CSRF_COOKIE, session.csrf_token, httponly=False, **common)  # type: ignore[arg-type]
    return _info(identity, session, config)


def _json_only(request: Request) -> None:
    """Refuse a sign-in body not declared JSON (checked before the body is read)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HTTPException(415, "send the sign-in as application/json")


JsonOnly = Depends(_json_only)


@router.get("/users", response_model=list[str], summary="Development users to pick from")
async def dev_users(state: StateDep) -> list[str]:
    """The users the development sign-in offers (empty when it is off)."""
    return sorted(state.sessions.dev_users) if state.sessions else []


@router.post(
    "/dev", response_model=SessionInfo, summary="Sign in as a development user", dependencies=[JsonOnly]
)
async def sign_in_dev(body: UserLogin, request: Request, response: Response, state: StateDep) -> SessionInfo:
    """Development only: open a session as one of the configured users (404 when none are)."""
    config = _sessions(state)
    if not config.dev_users:
        raise HTTPException(404, "development sign-in is off (no dev_users configured)")
    identity = config.dev_users.get(body.user)
    if identity is None:
        raise HTTPException(401, f"no development user {body.user!r}")
    return _open(request, response, config, identity)


@router.post("/token", response_model=SessionInfo, summary="Sign in with a token", dependencies=[JsonOnly])
async def sign_in_token(
    body: TokenLogin, request: Request, response: Response, state: StateDep
) -> SessionInfo:
    """Open a session for the identity a bearer token proves (verified like ``Authorization``)."""
    config = _sessions(state)
    verify = getattr(state.authenticator, "identity_from_token", None)
    if verify is None:
        raise HTTPException(
            404, "token sign-in needs a token authenticator (e.g. sdk.inbox.JWTAuthenticator)"
        )
    try:
        identity = verify(body.token)
    except AuthenticationError as exc:
        raise HTTPException(401, str(exc)) from None
    return _open(request, response, config, identity)


@router.get("", response_model=SessionInfo, summary="Who I am")
async def whoami(request: Request, caller: Annotated[Caller, Depends(get_caller)]) -> SessionInfo:
    """The caller's identity, and the session's CSRF token when signed in with a cookie."""
    session = None
    if caller.via_session and caller.state.sessions is not None:
        session = caller.state.sessions.read(request.cookies.get(SESSION_COOKIE, ""))
    return _info(caller.identity, session, caller.state.sessions)


@router.delete("", status_code=204, summary="Sign out")
async def sign_out(request: Request, caller: Annotated[Caller, Depends(get_caller)]) -> Response:
    """End the cookie session (the cookies are cleared)."""
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path=_cookie_path(request))
    response.delete_cookie(CSRF_COOKIE, path=_cookie_path(request))
    return response
