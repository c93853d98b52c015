"""The caller of one request: who it is (authenticated here), and what it may reach.

:func:`get_caller` is the dependency every endpoint takes. It authenticates the request
(a bearer credential through the application's authenticator, else the inbox's session cookie,
which must come with its CSRF header on unsafe methods) and returns a :class:`Caller`: the
identity, the tenant scope of its reads, and the keyword arguments that make the client act
as it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from sdk import ALL_TENANTS, Identity, PermissionDeniedError, TaskInfo, TaskNotFoundError, WorkflowClient
from sdk.mirror import MirrorQueries, TaskRow
from sdk.runtime import TaskAction, denial_reason, separation_reason, vote_denial

from ._auth import Authenticator, authenticate_with
from ._session import CSRF_HEADER, SESSION_COOKIE, SessionConfig

__all__ = ["Caller", "InboxState", "get_caller", "inbox_state", "policy_view"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class InboxState:
    """What the endpoints share: the client, its mirror, and how callers authenticate."""

    client: WorkflowClient
    queries: MirrorQueries
    engine: AsyncEngine
    authenticator: Authenticator | None
    sessions: SessionConfig | None
    single_tenant: bool
    uses_provider: bool


def inbox_state(request: Request) -> InboxState:
    """The inbox's shared state (set by ``create_inbox_app``)."""
    state: InboxState = request.app.state.dwf_inbox
    return state


@dataclass(frozen=True)
class Caller:
    """An authenticated caller.

    Attributes:
        identity: Who it is, as the authenticator or the session says.
        via_session: Authenticated by the session cookie (not a bearer credential).
    """

    identity: Identity
    state: InboxState
    via_session: bool = False

    @property
    def queries(self) -> MirrorQueries:
        return self.state.queries

    @property
    def client(self) -> WorkflowClient:
        return self.state.client

    @property
    def scope(self) -> str | None:
        """The tenant filter of the caller's reads (None: no filter, for ALL_TENANTS admins)."""
        tenant = self.identity.tenant_id
        return None if tenant == ALL_TENANTS else tenant

    def acting(self, tenant_id: str | None = None) -> dict[str, Any]:
        """Keyword arguments that make a client command act as this caller.

        With an identity provider on the client, the provider says the groups and admin flag
        (the client refuses them from callers); else the authenticated identity does.
        """
        identity = self.identity
        tenant = tenant_id if tenant_id is not None else identity.tenant_id
        if self.state.uses_provider:
            return {"user": identity.user, "tenant_id": tenant}
        return {
            "user": identity.user,
            "groups": list(identity.groups),
            "admin": identity.admin,
            "tenant_id": tenant,
        }

    def may_see(self, task: TaskRow) -> bool:
        """Whether the caller may see a task of its tenant.

        The workflow's own rules (``sdk._policy``) decide, as the mirror's inbox applies them:
        an administrator sees every task; a user kept out by separation of duties sees none;
        a quorum task shows to its listed voters (or, without a list, its group's members),
        voted or not; any other task to whoever may comment on it, and to who completed it.
        """
        identity = self.identity
        if identity.admin:
            return True
        info = policy_view(task)
        if separation_reason(info, identity.user) is not None:
            return False
        if task.completed_by == identity.user:
            return True
        if task.quorum is not None:
            # Eligibility without the votes: a voter who has voted still sees the task.
            return vote_denial(info, identity.user, identity.groups) is None
        return denial_reason(info, TaskAction.COMMENT, identity.user, identity.groups) is None

    async def task(self, task_id: str) -> TaskRow:
        """A task the caller may see; another tenant's or one it may not see is not found."""
        row = await self.queries.get_task(task_id, tenant_id=self.scope)
        if not self.identity.sees_tenant(row.tenant_id) or not self.may_see(row):
            raise TaskNotFoundError(f"task {task_id} not found")
        return row


def policy_view(task: TaskRow) -> TaskInfo:
    """A mirror row as the task rules read it (without its votes and comments)."""
    return TaskInfo(
        task_id=str(task.id),
        step_execution_id=str(task.step_execution_id),
        step_name=task.step_name,
        title=task.title,
        form_name="",
        form_schema=task.form_schema or {},
        assignee_id=task.assignee_id,
        assignee_group=task.assignee_group,
        claimed_by=task.claimed_by,
        require_claim=task.require_claim,
        status=task.status,
        created_at=task.created_at,
        quorum=task.quorum,
        voters=task.voters,
        excluded_users=task.excluded_users or {},
    )


_BEARER = HTTPBearer(auto_error=False, description="A JWT the application's identity provider issued")


async def get_caller(
    request: Request, _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None
) -> Caller:
    """Authenticate the request (the dependency of every endpoint but the sign-in ones).

    The bearer scheme is declared for the OpenAPI document (its "Authorize" button); the
    authenticator reads the request itself.

    Raises:
        HTTPException: 401 without a valid credential, 403 when a session's CSRF token is
            missing or wrong on an unsafe method.
    """
    state = inbox_state(request)
    caller: Caller | None = None
    if "authorization" in request.headers and state.authenticator is not None:
        identity = await authenticate_with(state.authenticator, request)
        if identity is not None:
            caller = Caller(identity, state)
    if caller is None and state.sessions is not None:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = state.sessions.read(cookie) if cookie else None
        if session is not None:
            if request.method not in _SAFE_METHODS:
                sent = request.headers.get(CSRF_HEADER, "")
                if not sent or sent != session.csrf_token:
                    raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header (cross-site request?)")
            caller = Caller(session.identity, state, via_session=True)
    if caller is None and state.authenticator is not None and "authorization" not in request.headers:
        identity = await authenticate_with(state.authenticator, request)
        if identity is not None:
            caller = Caller(identity, state)
    if caller is None:
        raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
    check_tenancy(caller)
    return caller


def check_tenancy(caller: Caller) -> None:
    """Refuse an identity without a tenant, unless the inbox serves a single-tenant application."""
    if caller.identity.tenant_id is None and not caller.state.single_tenant:
        raise PermissionDeniedError(
            f"user {caller.identity.user!r} has no tenant: this inbox serves tenants "
            "(create it with single_tenant=True for an application without tenants)"
        )
