"""Out of office: a user names a substitute for a period (``WorkflowClient.delegations``).

A delegation is a row of ``workflow_delegations`` in the client's tenant. Only the absent
user or an administrator sets or ends one (identity from the application's identity
provider, as for every command). While it is in force, the tasks workflows create for the
user go to the substitute when they are created (the workflow reads the table through a
local activity, recorded in its history). Tasks already assigned to the user move only when
asked (:meth:`Delegations.hand_over`, also ``set(..., hand_over=True)``): each is a signed
reassignment "on behalf of" the user, checked and audited like any other.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._errors import InvalidInputError, PermissionDeniedError, TaskNotPendingError
from ._identity import ALL_TENANTS, Identity
from ._start_checks import refuse_unstorable
from ._types import TaskInfo

if TYPE_CHECKING:
    from ._client import WorkflowClient
    from .mirror import DelegationRow, DelegationStore

__all__ = ["Delegations"]


class Delegations:
    """Set, list and end delegations; hand a user's open tasks over to their substitute.

    Reached as ``client.delegations`` on a client connected with a ``database_url``.
    """

    def __init__(self, client: WorkflowClient, store: DelegationStore) -> None:
        self._client = client
        self._store = store

    def _tenant(self, tenant_id: str | None) -> str | None:
        tenant = tenant_id if tenant_id is not None else self._client.tenant_id
        if tenant == ALL_TENANTS:
            raise InvalidInputError("a delegation belongs to one tenant: pass tenant_id=<its tenant>")
        return tenant

    async def _acting(self, user: str, by: str | None, admin: bool | None, tenant: str | None) -> Identity:
        """The identity acting for ``user``: the user themselves or an administrator."""
        actor = by or user
        trust = self._client._trust
        identity = await trust.identity(actor, None if trust.identity_provider else (), admin, tenant)
        if identity.user != user and not identity.admin:
            raise PermissionDeniedError(
                f"only {user!r} or an administrator may manage {user!r}'s delegations, not {actor!r}"
            )
        return identity

    async def set(
        self,
        user: str,
        substitute: str,
        *,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        reason: str | None = None,
        by: str | None = None,
        admin: bool | None = None,
        hand_over: bool = False,
        tenant_id: str | None = None,
    ) -> DelegationRow:
        """Name ``substitute`` for ``user`` from ``starts_at`` (default now) until ``ends_at``.

        Args:
            user: The absent user.
            substitute: Who gets the user's new tasks meanwhile.
            starts_at: From when (aware datetime; default now).
            ends_at: Until when (None: until :meth:`end`).
            reason: Shown in the audit trail.
            by: Who sets it (default ``user``); another user must be an administrator.
            admin: Without an identity provider, the caller's word that ``by`` is an administrator.
            hand_over: Also hand the user's open tasks over now (:meth:`hand_over`).
            tenant_id: The tenant (default the client's).

        Raises:
            PermissionDeniedError: ``by`` is neither ``user`` nor an administrator.
            InvalidInputError: The user stands in for themselves, a naive datetime, an end
                not after the start, or a value no database can store.
        """
        tenant = self._tenant(tenant_id)
        refuse_unstorable(user=user, substitute=substitute, reason=reason, tenant_id=tenant)
        identity = await self._acting(user, by, admin, tenant)
        start = starts_at or datetime.now().astimezone()
        row = await self._store.add(
            tenant_id=tenant,
            user=user,
            substitute=substitute,
            starts_at=start,
            ends_at=ends_at,
            created_by=identity.user,
            reason=reason,
        )
        if hand_over:
            await self.hand_over(
                user, substitute, by=identity.user, admin=admin, reason=reason, tenant_id=tenant
            )
        return row

    async def end(
        self,
        delegation_id: uuid.UUID | str,
        *,
        by: str,
        admin: bool | None = None,
        tenant_id: str | None = None,
    ) -> DelegationRow:
        """End a delegation now: new tasks go to the user again (handed-over ones stay).

        Raises:
            NotFoundError: No such delegation in the tenant.
            PermissionDeniedError: ``by`` is neither its user nor an administrator.
        """
        tenant = self._tenant(tenant_id)
        row = await self._store.get(delegation_id, tenant_id=tenant)
        identity = await self._acting(row.user_id, by, admin, tenant)
        return await self._store.end(row.id, tenant_id=tenant, by=identity.user)

    async def list(
        self,
        *,
        user: str | None = None,
        in_force_at: datetime | None = None,
        tenant_id: str | None = None,
    ) -> Sequence[DelegationRow]:
        """The tenant's delegations (given or held by ``user``; in force at a time), newest first."""
        return await self._store.list(tenant_id=self._tenant(tenant_id), user=user, in_force_at=in_force_at)

    async def hand_over(
        self,
        user: str,
        substitute: str,
        *,
        by: str | None = None,
        admin: bool | None = None,
        reason: str | None = None,
        tenant_id: str | None = None,
    ) -> builtins.list[TaskInfo]:
        """Reassign every pending task assigned to ``user`` to ``substitute``, on their behalf.

        Each task goes through the same checks as :meth:`sdk.InstanceHandle.reassign_task`
        (signed, verified and audited as a ``delegate`` entry). Tasks that closed meanwhile
        are skipped. Returns the tasks handed over.
        """
        tenant = self._tenant(tenant_id)
        identity = await self._acting(user, by, admin, tenant)
        queries = self._client._require_queries("handing tasks over")
        why = f"delegation: {substitute} stands in for {user}" + (f" ({reason})" if reason else "")
        moved: builtins.list[TaskInfo] = []
        page = await queries.pending_tasks(tenant_id=tenant, assignee_id=user, limit=500)
        for row in page.items:
            extra: dict[str, Any] = {} if self._client._trust.identity_provider else {"admin": identity.admin}
            try:
                moved.append(
                    await self._client.reassign_task(
                        row.id,
                        user=identity.user,
                        to_user=substitute,
                        reason=why,
                        on_behalf_of=user,
                        tenant_id=tenant,
                        workflow_id=row.workflow_id,
                        **extra,
                    )
                )
            except TaskNotPendingError:
                continue
        return moved
