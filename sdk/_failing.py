"""Instances whose workflow task keeps failing, as Temporal describes them.

A workflow task fails when workflow code raises an exception that is not a Temporal failure, or
when new code no longer replays an instance's history (nondeterminism). Temporal then retries the
task forever, with backoff, and the instance makes no progress while it looks merely "running".
The server counts the attempts of the pending workflow task (``DescribeWorkflowExecution``): a
count above one means the last attempt failed (or timed out), whatever the cause, whichever
worker ran it. :func:`failing_instances` lists the running instances of the SDK's workflows and
keeps those; the cause is the history's last ``WorkflowTaskFailed`` event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

if TYPE_CHECKING:
    from ._client import WorkflowClient

__all__ = ["FailingInstance", "failing_instances"]

_CONCURRENCY = 8


@dataclass(frozen=True)
class FailingInstance:
    """A running instance whose workflow task failed and is being retried.

    Attributes:
        workflow_id: The Temporal workflow id.
        run_id: The run whose task fails.
        workflow_type: ``name@version``.
        attempts: The attempt of the pending workflow task (2: it failed once).
        since: When the first failing attempt was scheduled.
        error: The failure Temporal recorded (cause and message), if the history has it.
        tenant_id: The instance's tenant (from its memo).
    """

    workflow_id: str
    run_id: str
    workflow_type: str
    attempts: int
    since: datetime | None
    error: str | None
    tenant_id: str | None


async def failing_instances(
    client: WorkflowClient | Client,
    *,
    query: str | None = None,
    workflow_name: str | None = None,
    tenant_id: str | None = None,
    limit: int = 1000,
) -> list[FailingInstance]:
    """The running instances whose workflow task is failing (its pending task's attempt > 1).

    Args:
        client: A :class:`sdk.WorkflowClient` or a temporalio client.
        query: A Temporal visibility filter narrowing the running instances looked at (e.g.
            ``TaskQueue = 'q'``).
        workflow_name: Only this workflow (any version).
        tenant_id: Only this tenant's instances (None: every tenant).
        limit: The most running instances looked at (each costs one describe call).
    """
    temporal: Client = client.temporal if not isinstance(client, Client) else client
    running = "ExecutionStatus = 'Running'" + (f" AND ({query})" if query else "")
    candidates = []
    async for execution in temporal.list_workflows(running, limit=limit):
        name = execution.workflow_type.partition("@")[0]
        if workflow_name is not None and name != workflow_name:
            continue
        candidates.append(execution)
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def check(execution: Any) -> FailingInstance | None:
        async with gate:
            return await _failing(temporal, execution.id, execution.run_id, tenant_id)

    found = await asyncio.gather(*(check(e) for e in candidates))
    return [f for f in found if f is not None]


async def _failing(
    temporal: Client, workflow_id: str, run_id: str, tenant_id: str | None
) -> FailingInstance | None:
    handle = temporal.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        described = await handle.describe()
    except RPCError:
        return None  # gone meanwhile
    if described.status != WorkflowExecutionStatus.RUNNING:
        return None
    raw = described.raw_description
    if not raw.HasField("pending_workflow_task") or raw.pending_workflow_task.attempt <= 1:
        return None
    memo = await described.memo()
    tenant = memo.get("tenant_id")
    if tenant_id is not None and tenant != tenant_id:
        return None
    pending = raw.pending_workflow_task
    since = (
        pending.original_scheduled_time.ToDatetime() if pending.HasField("original_scheduled_time") else None
    )
    return FailingInstance(
        workflow_id=workflow_id,
        run_id=run_id,
        workflow_type=described.workflow_type,
        attempts=pending.attempt,
        since=since,
        error=await _last_failure(handle),
        tenant_id=tenant if isinstance(tenant, str) else None,
    )


async def _last_failure(handle: Any) -> str | None:
    """``Cause: message`` of the history's last WorkflowTaskFailed event."""
    last = None
    try:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                last = event.workflow_task_failed_event_attributes
    except RPCError:
        return None
    if last is None:
        return None
    from temporalio.api.enums.v1 import WorkflowTaskFailedCause

    cause = WorkflowTaskFailedCause.Name(last.cause).removeprefix("WORKFLOW_TASK_FAILED_CAUSE_")
    message = last.failure.message.strip().splitlines()
    return f"{cause}: {message[0] if message else ''}"[:500]
