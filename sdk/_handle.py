"""A handle on one workflow instance: result, state, description, and the commands.

Every command is checked here first against the workflow's own state (the ``state`` query):
the task exists in the caller's tenant and is pending, the user may act, the data fits the
form. Only then is anything sent, as a Temporal update, so the caller learns synchronously
that the workflow accepted it. The workflow checks again on receipt.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from ._definition import HumanStep, WorkflowDefinition
from ._errors import (
    FormValidationError,
    InstanceNotFoundError,
    PermissionDeniedError,
    TaskClaimConflictError,
    TaskNotFoundError,
    TaskNotPendingError,
    TaskRejectedError,
)
from ._ids import instance_id_for
from ._policy import denial_reason
from ._registry import registry
from ._types import (
    InstanceState,
    TaskAction,
    TaskCommand,
    TaskCompletion,
    TaskInfo,
    TaskStatus,
    WorkflowStatus,
)

if TYPE_CHECKING:
    from .mirror import MirrorQueries

__all__ = ["InstanceDescription", "InstanceHandle", "translate_rejection"]

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


def translate_rejection(err: BaseException) -> Exception:
    """Map a workflow's refusal (an ApplicationError type name) onto the SDK's exceptions."""
    cause = err.cause if isinstance(err, WorkflowUpdateFailedError) else err
    if not isinstance(cause, ApplicationError):
        return TaskRejectedError(str(cause or err))
    details = cause.details[0] if cause.details else {}
    details = details if isinstance(details, dict) else {}
    message = cause.message
    if cause.type == "FormValidationError":
        return FormValidationError(message.rsplit(" ", 1)[-1], details.get("errors", []))
    if cause.type == "TaskNotPendingError":
        return TaskNotPendingError(details.get("task_id"), str(details.get("status")))
    mapped: dict[str | None, type[Exception]] = {
        "TaskNotFoundError": TaskNotFoundError,
        "PermissionDeniedError": PermissionDeniedError,
        "TaskClaimConflictError": TaskClaimConflictError,
    }
    return mapped.get(cause.type, TaskRejectedError)(message)


def _not_found(exc: RPCError, what: str) -> Exception:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return InstanceNotFoundError(f"no workflow instance {what}")
    return exc


class InstanceHandle(Generic[R]):
    """One workflow instance: its result, state, tasks and control commands.

    Args:
        handle: The temporalio handle.
        definition: The definition it runs, when known (for the result type).
        tenant_id: When set, the handle acts for this tenant only: an instance or task of
            another tenant is reported as not found.
        queries: The mirror's queries (a client connected with a database): a task command
            is then checked against the task's row when the mirror shows it pending in this
            instance, instead of asking the workflow (a ``state`` query) first. The workflow
            checks every command again when it arrives.
    """

    def __init__(
        self,
        handle: WorkflowHandle[Any, R],
        definition: WorkflowDefinition[..., R] | None = None,
        *,
        tenant_id: str | None = None,
        queries: MirrorQueries | None = None,
    ) -> None:
        self._handle = handle
        self.definition = definition
        self.tenant_id = tenant_id
        self._queries = queries

    @property
    def id(self) -> str:
        """The Temporal workflow id."""
        return self._handle.id

    @property
    def run_id(self) -> str | None:
        """The Temporal run id of the first run, when known."""
        handle = self._handle
        return handle.first_execution_run_id or handle.result_run_id or handle.run_id

    @property
    def instance_id(self) -> uuid.UUID | None:
        """The instance's id in the SQL mirror (derived from the run id)."""
        return instance_id_for(self.run_id) if self.run_id else None

    @property
    def temporal(self) -> WorkflowHandle[Any, R]:
        """The underlying temporalio handle."""
        return self._handle

    async def result(self) -> R:
        """Wait for the instance to finish; raises ``WorkflowFailureError`` if it failed."""
        return await self._handle.result()

    async def state(self) -> InstanceState:
        """The workflow's own view (the ``state`` query): status, current step, tasks.

        Raises:
            InstanceNotFoundError: No such workflow (or it belongs to another tenant).
        """
        try:
            state: InstanceState = await self._handle.query("state", result_type=InstanceState)
        except RPCError as exc:
            raise _not_found(exc, self.id) from exc
        if self.tenant_id is not None and state.tenant_id != self.tenant_id:
            raise InstanceNotFoundError(f"no workflow instance {self.id}")
        return state

    async def describe(self) -> InstanceDescription:
        """Temporal's description of the instance, refined by the ``state`` query while it runs."""
        try:
            desc = await self._handle.describe()
        except RPCError as exc:
            raise _not_found(exc, self.id) from exc
        memo = await desc.memo()
        if self.tenant_id is not None and memo.get("tenant_id") != self.tenant_id:
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

    async def _pending_task(self, task_id: str | uuid.UUID, *, pending: bool = True) -> TaskInfo:
        if pending:
            mirrored = await self._mirrored_pending_task(task_id)
            if mirrored is not None:
                return mirrored
        task = await self.task(task_id)
        if pending and task.status is not TaskStatus.PENDING:
            raise TaskNotPendingError(task.task_id, task.status.value)
        return task

    async def _mirrored_pending_task(self, task_id: str | uuid.UUID) -> TaskInfo | None:
        """The task as its mirror row shows it, when that row is pending in this instance.

        None (ask the workflow) without a mirror, or when the row is missing, another
        tenant's, in another instance or not pending: the workflow's answer decides those.
        """
        if self._queries is None:
            return None
        try:
            row = await self._queries.get_task(task_id, tenant_id=self.tenant_id)
        except Exception:  # not there, or the database does not answer: ask the workflow
            return None
        run_instance = self.instance_id
        if row.workflow_id != self.id or (run_instance is not None and row.instance_id != run_instance):
            return None  # another instance's, or an earlier run's of the same workflow id
        if row.status is not TaskStatus.PENDING:
            return None
        step = registry.steps.get(row.step_name)
        return TaskInfo(
            task_id=str(row.id),
            step_execution_id=str(row.step_execution_id),
            step_name=row.step_name,
            title=row.title,
            description=row.description,
            form_name=step.form.__name__ if isinstance(step, HumanStep) else "",
            form_schema=row.form_schema or {},
            assignee_id=row.assignee_id,
            assignee_group=row.assignee_group,
            claimed_by=row.claimed_by,
            claimed_at=row.claimed_at,
            require_claim=row.require_claim,
            status=row.status,
            created_at=row.created_at,
            due_at=row.due_at,
            reminder_at=row.reminder_at,
        )

    async def _update(self, name: str, payload: BaseModel) -> TaskInfo:
        try:
            task: TaskInfo = await self._handle.execute_update(
                name, payload.model_dump(mode="json"), result_type=TaskInfo
            )
            return task
        except WorkflowUpdateFailedError as exc:
            raise translate_rejection(exc) from exc
        except RPCError as exc:
            raise _not_found(exc, self.id) from exc

    async def _checked_completion(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        user: str,
        groups: Sequence[str],
        comment: str | None,
        admin: bool,
    ) -> TaskCompletion:
        """Every check the client can make before it sends a completion."""
        payload_data = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        if not isinstance(payload_data, dict):
            raise FormValidationError(
                "form", [{"field": "__root__", "message": "form data must be a dict", "type": "dict_type"}]
            )
        if not user:
            raise PermissionDeniedError("a user is required to complete a task")
        task = await self._pending_task(task_id)
        reason = denial_reason(task, TaskAction.COMPLETE, user, groups, admin)
        if reason is not None:
            raise PermissionDeniedError(reason)
        step = registry.steps.get(task.step_name)
        if isinstance(step, HumanStep):
            try:
                step.form.model_validate(payload_data)
            except ValidationError as exc:
                raise FormValidationError.from_pydantic(step.form.__name__, exc) from None
        return TaskCompletion(
            task_id=task.task_id,
            user=user,
            data=payload_data,
            comment=comment,
            groups=list(groups),
            admin=admin,
            tenant_id=self.tenant_id,
        )

    async def complete_task(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        *,
        user: str,
        groups: Sequence[str] = (),
        comment: str | None = None,
        admin: bool = False,
    ) -> TaskInfo:
        """Complete a human task and return it once the workflow has accepted it.

        Raises:
            TaskNotFoundError, TaskNotPendingError, PermissionDeniedError,
            FormValidationError: Checked before anything is sent.
            TaskRejectedError: The workflow refused it (its state changed meanwhile).
        """
        completion = await self._checked_completion(task_id, data, user, groups, comment, admin)
        return await self._update("complete_task_update", completion)

    async def signal_complete_task(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        *,
        user: str,
        groups: Sequence[str] = (),
        comment: str | None = None,
        admin: bool = False,
    ) -> None:
        """Like :meth:`complete_task`, but sends the ``complete_task`` signal and returns at once."""
        completion = await self._checked_completion(task_id, data, user, groups, comment, admin)
        await self._handle.signal("complete_task", completion.model_dump(mode="json"))

    async def _command(
        self,
        action: TaskAction,
        task_id: str | uuid.UUID,
        user: str,
        groups: Sequence[str],
        admin: bool,
        **fields: Any,
    ) -> TaskInfo:
        if not user:
            raise PermissionDeniedError(f"a user is required to {action.value} a task")
        task = await self._pending_task(task_id, pending=action is not TaskAction.COMMENT)
        if action is TaskAction.CLAIM and task.claimed_by not in (None, user):
            raise TaskClaimConflictError(f"task {task.task_id} is already claimed by {task.claimed_by!r}")
        reason = denial_reason(task, action, user, groups, admin)
        if reason is not None:
            raise PermissionDeniedError(reason)
        command = TaskCommand(
            task_id=task.task_id,
            user=user,
            groups=list(groups),
            admin=admin,
            tenant_id=self.tenant_id,
            **fields,
        )
        return await self._update(f"{action.value}_task_update", command)

    async def claim_task(
        self, task_id: str | uuid.UUID, *, user: str, groups: Sequence[str] = (), admin: bool = False
    ) -> TaskInfo:
        """Claim a group task; of two users claiming at once exactly one wins.

        Raises:
            TaskClaimConflictError: Someone else holds the claim.
        """
        return await self._command(TaskAction.CLAIM, task_id, user, groups, admin)

    async def release_task(
        self, task_id: str | uuid.UUID, *, user: str, groups: Sequence[str] = (), admin: bool = False
    ) -> TaskInfo:
        """Release a claimed task back to its group (the claimant or an administrator)."""
        return await self._command(TaskAction.RELEASE, task_id, user, groups, admin)

    async def reassign_task(
        self,
        task_id: str | uuid.UUID,
        *,
        user: str,
        to_user: str | None = None,
        to_group: str | None = None,
        reason: str,
        groups: Sequence[str] = (),
        admin: bool = False,
    ) -> TaskInfo:
        """Reassign a task to another user and/or group, with a reason (audited).

        Raises:
            ValueError: Neither ``to_user`` nor ``to_group`` given, or no reason.
        """
        if not (to_user or to_group):
            raise ValueError("reassign_task needs to_user= or to_group=")
        if not reason or not reason.strip():
            raise ValueError("reassign_task needs a reason")
        return await self._command(
            TaskAction.REASSIGN,
            task_id,
            user,
            groups,
            admin,
            to_user=to_user,
            to_group=to_group,
            reason=reason,
        )

    async def comment_task(
        self,
        task_id: str | uuid.UUID,
        body: str,
        *,
        user: str,
        groups: Sequence[str] = (),
        admin: bool = False,
    ) -> TaskInfo:
        """Add a comment to a task (anyone who may see it)."""
        if not body or not body.strip():
            raise ValueError("a comment needs a non-empty body")
        return await self._command(TaskAction.COMMENT, task_id, user, groups, admin, body=body)

    async def _ensure_visible(self) -> None:
        if self.tenant_id is not None:
            await self.describe()

    async def cancel(self, *, reason: str | None = None, by: str | None = None) -> None:
        """Request cancellation; pending tasks become canceled and the instance CANCELED."""
        await self._ensure_visible()
        try:
            await self._handle.signal("cancel_requested", {"reason": reason, "by": by})
            await self._handle.cancel(reason=reason or "")
        except RPCError as exc:
            raise _not_found(exc, self.id) from exc

    async def pause(self, *, by: str | None = None, reason: str | None = None) -> None:
        """Hold the instance before its next step (status PAUSED, WorkflowPaused)."""
        await self._ensure_visible()
        try:
            await self._handle.signal("pause", {"by": by, "reason": reason})
        except RPCError as exc:
            raise _not_found(exc, self.id) from exc

    async def resume(self, *, by: str | None = None) -> None:
        """Let a paused instance go on (WorkflowResumed)."""
        await self._ensure_visible()
        try:
            await self._handle.signal("resume", {"by": by})
        except RPCError as exc:
            raise _not_found(exc, self.id) from exc

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

    _NEXT_TASK_ENDED = frozenset(
        {
            WorkflowStatus.COMPLETED,
            WorkflowStatus.FAILED,
            WorkflowStatus.CANCELED,
            WorkflowStatus.TERMINATED,
            WorkflowStatus.TIMED_OUT,
        }
    )

    async def _poll_next_task_in_mirror(self) -> tuple[TaskInfo | None, WorkflowStatus | None] | None:
        """(oldest pending task, final status) from the mirror; None when it cannot tell."""
        if self._queries is None:
            return None
        try:
            if self.instance_id is not None:
                instance = await self._queries.get_instance(self.instance_id, tenant_id=self.tenant_id)
            else:
                instance = await self._queries.instance_by_workflow_id(self.id, tenant_id=self.tenant_id)
            rows = await self._queries.instance_tasks(
                instance.id, tenant_id=self.tenant_id, status=TaskStatus.PENDING, limit=1
            )
        except Exception:  # not mirrored yet, or the database does not answer: ask the workflow
            return None
        if rows.items:
            # None when the row stopped being pending meanwhile: the next poll tells.
            return await self._mirrored_pending_task(rows.items[0].id), None
        return None, instance.status if instance.status in self._NEXT_TASK_ENDED else None

    async def _poll_next_task_in_state(self) -> tuple[TaskInfo | None, WorkflowStatus | None]:
        """(oldest pending task, final status) from the ``state`` query and Temporal."""
        state = await self.state()
        if state.pending_tasks:
            return min(state.pending_tasks, key=lambda t: (t.created_at, t.task_id)), None
        if state.status in self._NEXT_TASK_ENDED:
            return None, state.status
        try:  # a terminated or timed-out run never told its workflow code
            described = await self._handle.describe()
        except RPCError as exc:
            raise _not_found(exc, self.id) from exc
        status = _TEMPORAL_STATUS.get(described.status) if described.status else None
        return None, status if status in self._NEXT_TASK_ENDED else None
