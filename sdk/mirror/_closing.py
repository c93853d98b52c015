"""Closing an instance that its workflow could not report: a terminate or an execution timeout.

Neither reaches a worker, so no event carries them; the client that terminates and a rebuild
from history record them here, as the projection records the closings a workflow reports:
the instance gets its final status, its pending tasks and unfinished steps become canceled.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, and_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sdk import StepStatus, TaskStatus, WorkflowStatus

from ._models import WorkflowInstanceModel
from ._statements import Statements

__all__ = ["TIMEOUT_ERROR", "close_instances", "record_termination", "termination_error"]

_instances = cast(Table, WorkflowInstanceModel.__table__)

TIMEOUT_ERROR = "timed out: the workflow execution timeout elapsed"
"""The instance ``error`` of an instance whose execution timeout elapsed."""


def termination_error(reason: str | None) -> str:
    """The instance ``error`` of a terminated instance (the client and rebuild agree on it)."""
    return f"terminated: {reason}" if reason else "terminated"


async def close_instances(
    conn: AsyncConnection,
    instance_ids: Sequence[uuid.UUID],
    status: WorkflowStatus,
    at: datetime,
    error: str,
) -> None:
    """Give ``instance_ids`` their final status; cancel their pending tasks and open steps."""
    if not instance_ids:
        return
    await conn.execute(
        update(_instances)
        .where(_instances.c.id.in_(instance_ids))
        .values(status=status, completed_at=at, error=error, updated_at=at)
    )
    sql = Statements(conn.dialect.name)
    for instance_id in instance_ids:
        await conn.execute(
            sql.close_tasks(),
            {
                "b_instance_id": instance_id,
                "v_status": TaskStatus.CANCELED.value,
                "v_completed_at": at,
                "v_updated_at": at,
            },
        )
        await conn.execute(
            sql.close_steps(),
            {
                "b_instance_id": instance_id,
                "v_status": StepStatus.CANCELED,
                "v_completed_at": at,
                "v_updated_at": at,
            },
        )


async def record_termination(engine: AsyncEngine, workflow_id: str, reason: str | None) -> None:
    """Mark the open instances of ``workflow_id`` TERMINATED (called after the terminate RPC)."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        result = await conn.execute(
            _instances.select()
            .with_only_columns(_instances.c.id)
            .where(and_(_instances.c.workflow_id == workflow_id, _instances.c.completed_at.is_(None)))
        )
        ids = [row[0] for row in result]
        await close_instances(conn, ids, WorkflowStatus.TERMINATED, now, termination_error(reason))
