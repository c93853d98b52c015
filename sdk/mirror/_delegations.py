"""Delegations: who stands in for an absent user, for a period, per tenant.

Unlike the other tables, ``workflow_delegations`` is not a projection of Temporal's history:
the application writes it (through ``WorkflowClient.delegations`` or ``dwf delegations``),
and workers read it when a task is created (:meth:`DelegationStore.substitutes`, called by a
local activity whose answer the workflow's history records). So a rebuild of the mirror
leaves it alone, and a replay never reads it.

A delegation is in force at ``t`` when ``starts_at <= t`` and neither its ``ends_at`` nor its
``ended_at`` (set when ended early) is at or before ``t``. When several are in force for one
user, the one that started last wins. Substitutes are not followed further (a substitute's
own delegation does not pass a task on again).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from sdk import InvalidInputError, NotFoundError

from ._base import utcnow
from ._models import DelegationModel
from ._rows import DelegationRow

__all__ = ["DelegationStore"]

_DELEGATIONS = cast(Table, DelegationModel.__table__)


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidInputError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


def _in_force(at: datetime) -> Any:
    return and_(
        _DELEGATIONS.c.starts_at <= at,
        or_(_DELEGATIONS.c.ends_at.is_(None), _DELEGATIONS.c.ends_at > at),
        or_(_DELEGATIONS.c.ended_at.is_(None), _DELEGATIONS.c.ended_at > at),
    )


def _tenant_is(tenant_id: str | None) -> Any:
    column = _DELEGATIONS.c.tenant_id
    return column.is_(None) if tenant_id is None else column == tenant_id


class DelegationStore:
    """Reads and writes ``workflow_delegations`` (no permission checks: the client makes them).

    Args:
        engine: The mirror's database.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(
        self,
        *,
        tenant_id: str | None,
        user: str,
        substitute: str,
        starts_at: datetime,
        ends_at: datetime | None,
        created_by: str,
        reason: str | None = None,
    ) -> DelegationRow:
        """Store a delegation and return its row.

        Raises:
            InvalidInputError: The user stands in for themselves, a naive datetime, or an end
                not after the start.
        """
        if not user or not substitute or user == substitute:
            raise InvalidInputError("a delegation needs a user and a different substitute")
        _aware(starts_at, "starts_at")
        if ends_at is not None and _aware(ends_at, "ends_at") <= starts_at:
            raise InvalidInputError(f"ends_at {ends_at} is not after starts_at {starts_at}")
        now = utcnow()
        values = {
            "id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "user_id": user,
            "substitute_id": substitute,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "reason": reason,
            "created_by": created_by,
            "ended_at": None,
            "ended_by": None,
            "created_at": now,
            "updated_at": now,
        }
        async with self.engine.begin() as conn:
            await conn.execute(_DELEGATIONS.insert().values(values))
        return DelegationRow.model_validate(values)

    async def get(self, delegation_id: uuid.UUID | str, *, tenant_id: str | None) -> DelegationRow:
        """One delegation of the tenant by id.

        Raises:
            NotFoundError: No such delegation in this tenant.
        """
        try:
            key = delegation_id if isinstance(delegation_id, uuid.UUID) else uuid.UUID(str(delegation_id))
        except ValueError:
            raise NotFoundError(f"no delegation {delegation_id}") from None
        stmt = select(_DELEGATIONS).where(_DELEGATIONS.c.id == key, _tenant_is(tenant_id))
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            raise NotFoundError(f"no delegation {delegation_id}")
        return DelegationRow.model_validate(dict(row))

    async def end(
        self, delegation_id: uuid.UUID | str, *, tenant_id: str | None, by: str, at: datetime | None = None
    ) -> DelegationRow:
        """End a delegation now (or at ``at``); an ended one keeps its first end."""
        row = await self.get(delegation_id, tenant_id=tenant_id)
        if row.ended_at is None:
            when = _aware(at, "at") if at is not None else utcnow()
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(_DELEGATIONS)
                    .where(_DELEGATIONS.c.id == row.id, _DELEGATIONS.c.ended_at.is_(None))
                    .values(ended_at=when, ended_by=by, updated_at=utcnow())
                )
        return await self.get(row.id, tenant_id=tenant_id)

    async def list(
        self,
        *,
        tenant_id: str | None,
        user: str | None = None,
        in_force_at: datetime | None = None,
    ) -> list[DelegationRow]:
        """The tenant's delegations (of ``user``; in force at ``in_force_at``), newest first."""
        stmt = select(_DELEGATIONS).where(_tenant_is(tenant_id))
        if user is not None:
            stmt = stmt.where(or_(_DELEGATIONS.c.user_id == user, _DELEGATIONS.c.substitute_id == user))
        if in_force_at is not None:
            stmt = stmt.where(_in_force(_aware(in_force_at, "in_force_at")))
        stmt = stmt.order_by(_DELEGATIONS.c.starts_at.desc(), _DELEGATIONS.c.id.asc())
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [DelegationRow.model_validate(dict(row)) for row in rows]

    async def substitutes(self, tenant_id: str | None, users: Sequence[str], at: datetime) -> dict[str, str]:
        """Who stands in for each of ``users`` at ``at`` (users without one are left out)."""
        if not users:
            return {}
        stmt = (
            select(_DELEGATIONS.c.user_id, _DELEGATIONS.c.substitute_id)
            .where(_tenant_is(tenant_id), _DELEGATIONS.c.user_id.in_(list(users)), _in_force(at))
            .order_by(_DELEGATIONS.c.starts_at.asc(), _DELEGATIONS.c.created_at.asc())
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        # Ascending: the delegation that started last overwrites the others.
        return {str(user): str(substitute) for user, substitute in rows}
