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
from ._details import current_details
from ._errors import InstanceNotFoundError, TaskNotFoundError
from ._identity import ALL_TENANTS, Identity
from ._ids import instance_id_for
from ._sender import CommandSender, CommandTrust, not_found, translate_rejection
from ._types import ENDED_STATUSES, InstanceState, TaskInfo, TaskStatus, WorkflowStatus
from .protocol import GRAPH_WORKFLOW, STATE_QUERY

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
    summary: str | None = None
    """Temporal's static summary, set when the instance started (``sdk.WorkflowClient.start``)."""
    details: str | None = None
    """What the instance is doing or waiting on, as it tells Temporal's UI (while it runs)."""


class InstanceHandle(CommandSender, Generic[R]):
    """One workflow instance: its result, state, tasks and control commands.

    Args:
        handle: The temporalio handle.
        definition: The definition it runs, when known (for the result type).
        tenant_id: The tenant the handle reads and acts for: an instance or task of another
            tenant is reported as not found, by every read (state, describe, task, result,
            next_task) and every command. None reaches only instances started without a
            tenant; ``sdk.ALL_TENANTS`` (an administrator's client) reaches all.
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
        """Wait for the instance to finish; raises ``WorkflowFailureError`` if it failed.

        Raises:
            InstanceNotFoundError: No such workflow (or it belongs to another tenant).
        """
        await self._ensure_visible()
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

    @property
    def _read_scope(self) -> str | None:
        """The tenant filter of the handle's mirror reads (None: every tenant)."""
        return None if self.tenant_id == ALL_TENANTS else self.tenant_id

    def _sees(self, tenant_id: str | None) -> bool:
        # Reads are scoped like commands: leaving the tenant out never widens the scope.
        return Identity(user="-", admin=True, tenant_id=self.tenant_id).sees_tenant(tenant_id)

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
        if desc.workflow_type == GRAPH_WORKFLOW and state is not None:  # the graph it runs
            name, version = state.workflow_name, state.workflow_version
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
            summary=await desc.static_summary(),
            details=current_details(state.status, state.current_step, state.tasks) if state else None,
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

    # -- waiting for the next task (self-contained: next_task and its two polls) ----------------

    async def next_task(self, *, timeout: float = 30.0, poll_interval: float = 0.1) -> TaskInfo:
        """Wait until the instance has a pending human task, and return it (the oldest).

        Right after :meth:`WorkflowClient.start` the workflow has not created its first task
        yet; this polls until it has. With a client connected to the mirror (``database_url``)
        each poll is one SQL read of the task rows (a task's row is committed before the
        workflow waits on it), falling back to the ``state`` query while the mirror has no row
        for the instance yet; without a mirror each poll is a ``state`` query. Polls start
        ``poll_interval`` apart and back off to one a second. A task completed with
        :meth:`complete_task` is no longer pending when that call returns, so the next call
        returns the task after it.

        Args:
            timeout: Seconds to wait for a task.
            poll_interval: Seconds between the first polls.

        Raises:
            TimeoutError: No task became pending within ``timeout`` seconds.
            TaskNotFoundError: The instance ended (completed, failed, canceled, terminated,
                timed out) with no task pending: none will come.
            InstanceNotFoundError: No such instance (or another tenant's).
        """
        import asyncio  # local imports keep this block self-contained
        import time

        deadline = time.monotonic() + timeout
        interval = poll_interval
        while True:
            polled = await self._poll_next_task_in_mirror()
            if polled is None:
                polled = await self._poll_next_task_in_state()
            task, ended = polled
            if task is not None:
                return task
            if ended is not None:
                raise TaskNotFoundError(
                    f"instance {self.id} is {ended.value} and has no pending task: none will come"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"instance {self.id} has no pending task after {timeout:g} s")
            await asyncio.sleep(min(interval, remaining))
            interval = min(interval * 2, 1.0)

    async def _poll_next_task_in_mirror(self) -> tuple[TaskInfo | None, WorkflowStatus | None] | None:
        """(oldest pending task, final status) from the mirror; None when it cannot tell."""
        if self._queries is None:
            return None
        try:
            if self.instance_id is not None:
                instance = await self._queries.get_instance(self.instance_id, tenant_id=self._read_scope)
            else:
                instance = await self._queries.instance_by_workflow_id(self.id, tenant_id=self._read_scope)
            if not self._sees(instance.tenant_id):
                return None  # the mirror's None means "no filter": the state query refuses it
            rows = await self._queries.instance_tasks(
                instance.id, tenant_id=self._read_scope, status=TaskStatus.PENDING, limit=1
            )
        except Exception:  # not mirrored yet, or the database does not answer: ask the workflow
            return None
        if rows.items:
            # None when the row stopped being pending meanwhile: the next poll tells.
            mirrored = await self._mirrored_pending_task(rows.items[0].id)
            return (mirrored[0] if mirrored is not None else None), None
        return None, instance.status if instance.status in ENDED_STATUSES else None

    async def _poll_next_task_in_state(self) -> tuple[TaskInfo | None, WorkflowStatus | None]:
        """(oldest pending task, final status) from the ``state`` query and Temporal."""
        state = await self.state()
        if state.pending_tasks:
            return min(state.pending_tasks, key=lambda t: (t.created_at, t.task_id)), None
        if state.status in ENDED_STATUSES:
            return None, state.status
        try:  # a terminated or timed-out run never told its workflow code
            described = await self._handle.describe()
        except RPCError as exc:
            raise not_found(exc, self.id) from exc
        status = _TEMPORAL_STATUS.get(described.status) if described.status else None
        return None, status if status in ENDED_STATUSES else None
