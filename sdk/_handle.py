"""A handle on one workflow instance: result, state, description, and the commands.

The commands (complete, claim, release, reassign, comment, cancel, pause, resume) come from
:class:`sdk._sender.CommandSender`, which checks, signs and sends them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from ._definition import WorkflowDefinition
from ._errors import InstanceNotFoundError, TaskNotFoundError
from ._identity import Identity
from ._ids import instance_id_for
from ._sender import CommandSender, CommandTrust, not_found, translate_rejection
from ._types import InstanceState, TaskInfo, WorkflowStatus
from .protocol import STATE_QUERY

if TYPE_CHECKING:
    from .mirror import MirrorQueries

__all__ = ["CommandTrust", "InstanceDescription", "InstanceHandle", "translate_rejection"]

R = TypeVar("R")

_TEMPORAL_STATUS = {
    WorkflowExecutionStatus.RUNNING: WorkflowStatus.RUNNING,
    WorkflowExecutionStatus.COMPLETED: WorkflowStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED: WorkflowStatus.FAILED,
    WorkflowExecutionStatus.CANCELED: WorkflowStatus.CANCELED,
    WorkflowExecutionStatus.TERMINATED: WorkflowStatus.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT: WorkflowStatus.TIMED_OUT,
    WorkflowExecutionStatus.CONTINUED_AS_NEW: WorkflowStatus.COMPLETED,
}


@dataclass(frozen=True)
class InstanceDescription:
    """An instance as Temporal describes it, with the workflow's own view when it runs."""

    workflow_id: str
    run_id: str
    instance_id: uuid.UUID
    workflow_type: str
    workflow_name: str
    workflow_version: str | None
    status: WorkflowStatus
    start_time: datetime | None
    close_time: datetime | None
    tenant_id: str | None
    created_by: str | None
    current_step: str | None
    pending_tasks: list[TaskInfo]


class InstanceHandle(CommandSender, Generic[R]):
    """One workflow instance: its result, state, tasks and control commands.

    Args:
        handle: The temporalio handle.
        definition: The definition it runs, when known (for the result type).
        tenant_id: The tenant the handle acts for: an instance or task of another tenant is
            reported as not found. Commands always carry it: None reaches only instances
            started without a tenant (``sdk.ALL_TENANTS``, for administrators, reaches all).
        queries: The mirror's queries (a client connected with a database): a task command
            is then checked against the task's row when the mirror shows it pending in this
            instance, instead of asking the workflow (a ``state`` query) first. The workflow
            checks every command again when it arrives.
        trust: The client's signing key and identity provider.
    """

    def __init__(
        self,
        handle: WorkflowHandle[Any, R],
        definition: WorkflowDefinition[..., R] | None = None,
        *,
        tenant_id: str | None = None,
        queries: MirrorQueries | None = None,
        trust: CommandTrust | None = None,
    ) -> None:
        self._handle = handle
        self.definition = definition
        self.tenant_id = tenant_id
        self._queries = queries
        self._trust = trust or CommandTrust()

    @property
    def temporal(self) -> WorkflowHandle[Any, R]:
        """The underlying temporalio handle."""
        return self._handle

    async def result(self) -> R:
        """Wait for the instance to finish; raises ``WorkflowFailureError`` if it failed."""
        result: R = await self._handle.result()
        return result

    async def state(self) -> InstanceState:
        """The workflow's own view (the ``state`` query): status, current step, tasks.

        Raises:
            InstanceNotFoundError: No such workflow (or it belongs to another tenant).
        """
        try:
            state: InstanceState = await self._handle.query(STATE_QUERY, result_type=InstanceState)
        except RPCError as exc:
            raise not_found(exc, self.id) from exc
        if not self._sees(state.tenant_id):
            raise InstanceNotFoundError(f"no workflow instance {self.id}")
        return state

    def _sees(self, tenant_id: str | None) -> bool:
        # Reading: an unscoped handle reads any instance (commands are scoped, see __init__).
        return self.tenant_id is None or Identity(user="-", admin=True, tenant_id=self.tenant_id).sees_tenant(
            tenant_id
        )

    async def describe(self) -> InstanceDescription:
        """Temporal's description of the instance, refined by the ``state`` query while it runs."""
        try:
            desc = await self._handle.describe()
        except RPCError as exc:
            raise not_found(exc, self.id) from exc
        memo = await desc.memo()
        if not self._sees(memo.get("tenant_id")):
            raise InstanceNotFoundError(f"no workflow instance {self.id}")
        status = _TEMPORAL_STATUS.get(desc.status, WorkflowStatus.RUNNING) if desc.status else None
        status = status or WorkflowStatus.RUNNING
        state: InstanceState | None = None
        if status is WorkflowStatus.RUNNING:
            state = await self.state()
            if state.status is not WorkflowStatus.PENDING:
                status = state.status
        name, _, version = desc.workflow_type.partition("@")
        return InstanceDescription(
            workflow_id=desc.id,
            run_id=desc.run_id,
            instance_id=instance_id_for(desc.run_id),
            workflow_type=desc.workflow_type,
            workflow_name=name,
            workflow_version=version or None,
            status=status,
            start_time=desc.start_time,
            close_time=desc.close_time,
            tenant_id=memo.get("tenant_id"),
            created_by=memo.get("created_by"),
            current_step=state.current_step if state else None,
            pending_tasks=state.pending_tasks if state else [],
        )

    async def task(self, task_id: str | uuid.UUID) -> TaskInfo:
        """One task of this instance, as the workflow knows it (with its comments).

        Raises:
            TaskNotFoundError: No such task here (or another tenant's).
        """
        try:
            state = await self.state()
        except InstanceNotFoundError as exc:
            raise TaskNotFoundError(f"no task {task_id} in instance {self.id}") from exc
        found = next((t for t in state.tasks if t.task_id == str(task_id)), None)
        if found is None:
            raise TaskNotFoundError(f"no task {task_id} in instance {self.id}")
        return found
