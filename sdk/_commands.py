"""Commands from outside (signals and updates): checked against the task, then applied.

Runs inside the Temporal sandbox. A refused command raises :class:`Rejected`, which an
update turns into a failure its caller sees and a signal records as a rejection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from . import events as ev
from ._errors import field_errors
from ._outbox import EventOutbox
from ._policy import denial_reason
from ._types import (
    Rejection,
    StepStatus,
    TaskAction,
    TaskCommand,
    TaskComment,
    TaskCompletion,
    TaskInfo,
    TaskStatus,
    WorkflowStatus,
)

if TYPE_CHECKING:
    pass

__all__ = ["MAX_REJECTIONS", "Rejected", "TaskCommands"]

MAX_REJECTIONS = 50
"""The rejections an instance keeps (the newest)."""


class Rejected(Exception):
    """A command workflow code refused; becomes a Rejection (signal) or a failed update."""

    def __init__(
        self, kind: str, message: str, errors: list[dict[str, Any]] | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.errors = errors or []
        self.details = details

    def to_application_error(self) -> ApplicationError:
        details = {"errors": self.errors, **self.details}
        return ApplicationError(str(self), details, type=self.kind, non_retryable=True)


class TaskCommands(EventOutbox):
    """Checks and applies task commands (a base of :class:`sdk._runtime.WorkflowRuntime`)."""

    status: WorkflowStatus
    current_step: str | None
    tasks: dict[str, TaskInfo]
    forms: dict[str, type[BaseModel]]
    results: dict[str, BaseModel]
    rejections: list[Rejection]
    paused: bool
    _unpublished: set[str]

    def _find_task(self, task_id: str, tenant_id: str | None, *, pending: bool) -> TaskInfo:
        task = None if task_id in self._unpublished else self.tasks.get(task_id)
        # Another tenant's task is reported exactly like a task that does not exist.
        if task is None or (tenant_id is not None and tenant_id != self.tenant_id):
            raise Rejected("TaskNotFoundError", f"no task {task_id} in this instance")
        if pending and task.status is not TaskStatus.PENDING:
            raise Rejected(
                "TaskNotPendingError",
                f"task {task.task_id} is {task.status.value}, not pending",
                task_id=task.task_id,
                status=task.status.value,
            )
        return task

    def check_completion(self, payload: Any) -> tuple[TaskInfo, TaskCompletion, BaseModel]:
        """Validate a completion; raise :class:`Rejected` saying why it cannot apply."""
        try:
            completion = TaskCompletion.model_validate(payload)
        except ValidationError as exc:
            errors = field_errors(exc)
            raise Rejected("InvalidCommandError", "malformed completion payload", errors) from None
        task = self._find_task(completion.task_id, completion.tenant_id, pending=True)
        reason = denial_reason(
            task, TaskAction.COMPLETE, completion.user, completion.groups, completion.admin
        )
        if reason is not None:
            raise Rejected("PermissionDeniedError", reason)
        form = self.forms[task.task_id]
        try:
            value = form.model_validate(completion.data)
        except ValidationError as exc:
            raise Rejected(
                "FormValidationError", f"invalid data for form {form.__name__}", field_errors(exc)
            ) from None
        return task, completion, value

    def apply_completion(self, payload: Any, *, strict: bool) -> TaskInfo | None:
        """Complete a task; a refused completion raises (update) or is recorded (signal)."""
        try:
            task, completion, value = self.check_completion(payload)
        except Rejected as rejected:
            self._refuse(payload, rejected, strict)
            return None
        self._complete(task, value, completion.user, completion.comment)
        return task

    def _refuse(self, payload: Any, rejected: Rejected, strict: bool) -> None:
        """Raise the refusal (an update) or record it (a signal, which cannot answer)."""
        if strict:
            raise rejected.to_application_error() from None
        raw = payload if isinstance(payload, dict) else {}
        self.record_rejection(raw.get("task_id"), raw.get("user"), rejected)

    def check_command(self, action: TaskAction, payload: Any) -> tuple[TaskInfo, TaskCommand]:
        """Validate a claim, release, reassignment or comment; raise :class:`Rejected` if refused."""
        try:
            command = TaskCommand.model_validate(payload)
        except ValidationError as exc:
            raise Rejected(
                "InvalidCommandError", f"malformed {action.value} payload", field_errors(exc)
            ) from None
        task = self._find_task(command.task_id, command.tenant_id, pending=action is not TaskAction.COMMENT)
        if action is TaskAction.CLAIM and task.claimed_by not in (None, command.user):
            raise Rejected(
                "TaskClaimConflictError", f"task {task.task_id} is already claimed by {task.claimed_by!r}"
            )
        reason = denial_reason(task, action, command.user, command.groups, command.admin)
        if reason is not None:
            raise Rejected("PermissionDeniedError", reason)
        if action is TaskAction.REASSIGN and not (command.to_user or command.to_group):
            raise Rejected("InvalidCommandError", "reassign needs to_user or to_group")
        if action is TaskAction.COMMENT and not (command.body or "").strip():
            raise Rejected("InvalidCommandError", "a comment needs a non-empty body")
        return task, command

    def apply_command(self, action: TaskAction, payload: Any, *, strict: bool) -> TaskInfo | None:
        """Apply a claim, release, reassignment or comment (see :meth:`apply_completion`)."""
        try:
            task, command = self.check_command(action, payload)
        except Rejected as rejected:
            self._refuse(payload, rejected, strict)
            return None
        now = workflow.now()
        task_uuid = _uuid(task.task_id)
        if action is TaskAction.CLAIM:
            if task.claimed_by != command.user:
                task.claimed_by, task.claimed_at = command.user, now
                self.emit(
                    ev.HumanTaskClaimed, step_name=task.step_name, task_id=task_uuid, claimed_by=command.user
                )
        elif action is TaskAction.RELEASE:
            previous, task.claimed_by, task.claimed_at = task.claimed_by, None, None
            self.emit(
                ev.HumanTaskReleased,
                step_name=task.step_name,
                task_id=task_uuid,
                released_by=command.user,
                previous_claimant=previous,
            )
        elif action is TaskAction.REASSIGN:
            self.reassign(task, command.to_user, command.to_group, command.user, command.reason or "")
        elif action is TaskAction.COMMENT:
            comment_id = uuid5(task_uuid, f"comment/{len(task.comments) + 1}")
            body = (command.body or "").strip()
            task.comments.append(
                TaskComment(comment_id=str(comment_id), author=command.user, body=body, posted_at=now)
            )
            self.emit(
                ev.HumanTaskCommented,
                step_name=task.step_name,
                task_id=task_uuid,
                comment_id=comment_id,
                author=command.user,
                body=body,
            )
        return task

    def record_rejection(self, task_id: Any, user: Any, rejected: Rejected) -> None:
        workflow.logger.warning("rejected command for task %s: %s %s", task_id, rejected, rejected.errors)
        self.rejections.append(
            Rejection(
                task_id=str(task_id) if task_id is not None else None,
                user=str(user) if user is not None else None,
                reason=f"{rejected.kind}: {rejected}",
                errors=rejected.errors,
                at=workflow.now(),
            )
        )
        del self.rejections[:-MAX_REJECTIONS]

    def _complete(
        self,
        task: TaskInfo,
        value: BaseModel,
        user: str,
        comment: str | None,
        status: TaskStatus = TaskStatus.COMPLETED,
    ) -> None:
        now = workflow.now()
        task.status = status
        task.completed_at = now
        task.completed_by = user
        task.form_data = value.model_dump(mode="json")
        task.comment = comment
        self.results[task.task_id] = value
        self.emit(
            ev.HumanTaskCompleted,
            step_name=task.step_name,
            task_id=_uuid(task.task_id),
            completed_by=user,
            form_data=task.form_data,
            comment=comment,
            step_execution_id=_uuid(task.step_execution_id),
            status=status.value,
        )
        self.emit(
            ev.StepCompleted,
            step_name=task.step_name,
            status=StepStatus.SUCCEEDED.value,
            output_data=task.form_data,
            duration_seconds=(now - task.created_at).total_seconds(),
            step_execution_id=_uuid(task.step_execution_id),
            completed_by=user,
        )

    def reassign(
        self, task: TaskInfo, to_user: str | None, to_group: str | None, by: str, reason: str
    ) -> None:
        """Move a task to another user and/or group (None keeps that side), with its event."""
        before = task.assignee_id or task.assignee_group
        if to_user is not None:
            task.assignee_id = to_user
        if to_group is not None:
            task.assignee_group = to_group
        task.claimed_by = None
        task.claimed_at = None
        self.emit(
            ev.HumanTaskReassigned,
            step_name=task.step_name,
            task_id=_uuid(task.task_id),
            from_assignee=before,
            to_assignee=task.assignee_id or task.assignee_group,
            reassigned_by=by,
            reason=reason,
            to_assignee_id=to_user,
            to_assignee_group=to_group,
        )

    def set_paused(self, paused: bool, by: str | None, reason: str | None) -> bool:
        """Pause or resume; returns False when the instance already was in that state."""
        if paused == self.paused or self.status not in (
            WorkflowStatus.RUNNING,
            WorkflowStatus.PAUSED,
        ):
            return False
        self.paused = paused
        if paused:
            self.status = WorkflowStatus.PAUSED
            self.emit(ev.WorkflowPaused, reason=reason, paused_at_step=self.current_step)
        else:
            self.status = WorkflowStatus.RUNNING
            self.emit(ev.WorkflowResumed, resumed_by=by, resuming_at_step=self.current_step)
        return True


def _uuid(value: str) -> UUID:
    return UUID(value)
