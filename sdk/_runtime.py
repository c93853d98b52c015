"""Workflow-side runtime: what a compiled workflow does around the author's function.

Runs inside the Temporal sandbox, so it is deterministic and does no I/O. It keeps the
instance's state (current step, human tasks, pause flag), turns each transition into a
domain event with deterministic ids, and hands buffered events to the ``dwf.publish_events``
local activity before the workflow blocks, so the mirror and the application's handlers
see them promptly and exactly once per transition.

Events that need not hold the workflow up ride along instead: when a machine step is
scheduled, the events buffered so far go with its activity, in a header (``dwf-events``) that
the worker's activity-side interceptor writes before the step's code runs; an urgent event
with no step activity scheduled in the same activation is published at the end of that
activation. Which events ride along is decided by workflow code alone, never by whether the
interceptor is there, so a worker or ``Replayer`` without it issues the same commands; the
events an activity carried are published again at the next flush until that activity
completes (writes are idempotent). Instances started before this (no ``dwf-carry-events``
patch marker in their history) keep publishing every urgent event by local activity.
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from . import events as ev
from ._errors import HumanTaskExpired, field_errors
from ._ids import instance_id_for, step_activity_id, step_execution_id_for, task_id_for
from ._policy import denial_reason
from ._types import (
    EventBatch,
    InstanceState,
    Rejection,
    StepStatus,
    StepType,
    TaskAction,
    TaskCommand,
    TaskComment,
    TaskCompletion,
    TaskInfo,
    TaskStatus,
    WorkflowStatus,
)

if TYPE_CHECKING:
    from ._definition import HumanStep, MachineStep, WorkflowDefinition

__all__ = [
    "CARRY_HEADER",
    "PUBLISH_ACTIVITY",
    "REMINDER_ACTIVITY",
    "WorkflowRuntime",
    "current_runtime",
]

PUBLISH_ACTIVITY = "dwf.publish_events"
CARRY_HEADER = "dwf-events"
"""Activity header holding the events a step activity carries (an :class:`EventBatch`)."""
CARRY_PATCH = "dwf-carry-events"
REMINDER_ACTIVITY = "dwf.send_reminder"
SYSTEM_USER = "system"
_MAX_REJECTIONS = 50
_PUBLISH_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)


def jsonable(value: Any) -> Any:
    """A JSON-able copy of a step's argument or result (models become dicts)."""
    return to_jsonable_python(value, fallback=repr)


def as_data(args: list[Any]) -> dict[str, Any] | None:
    """Step or workflow input as the dict the seed's ``input_data`` columns hold."""
    if not args:
        return None
    if len(args) == 1:
        single = jsonable(args[0])
        return single if isinstance(single, dict) else {"value": single}
    return {"args": jsonable(args)}


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


class WorkflowRuntime:
    """The state of one workflow run, owned by its workflow object."""

    def __init__(self) -> None:
        info = workflow.info()
        self.instance_id = instance_id_for(info.run_id)
        self.definition: WorkflowDefinition[..., Any] | None = None
        self.status = WorkflowStatus.PENDING
        self.current_step: str | None = None
        self.tenant_id: str | None = workflow.memo_value("tenant_id", None, type_hint=str)
        self.created_by: str | None = workflow.memo_value("created_by", None, type_hint=str)
        self.tasks: dict[str, TaskInfo] = {}
        self.forms: dict[str, type[BaseModel]] = {}
        self.results: dict[str, BaseModel] = {}
        self.rejections: list[Rejection] = []
        self.paused = False
        self.cancel_reason: str | None = None
        self.canceled_by: str | None = None
        self._step_seq = 0
        self._event_seq = 0
        self._events: list[dict[str, Any]] = []
        self._urgent = False
        # Events handed to a step activity's header, by activity id, until it completes.
        self._carried: dict[str, list[dict[str, Any]]] = {}
        self._outbox: tuple[str, EventBatch] | None = None
        self._in_header: set[str] = set()  # activities whose header got their events
        self._unconfirmed: set[str] = set()  # activities that carried events, not completed yet
        self._carrying = False
        self._instance_published = False  # WorkflowStarted is committed (an LA or a step wrote it)
        self._flusher: asyncio.Task[None] | None = None
        # Tasks whose HumanTaskCreated is not yet committed: invisible to queries and commands,
        # so nobody acts on a task the mirror does not show yet.
        self._unpublished: set[str] = set()

    # -- events -------------------------------------------------------------------------

    def emit(
        self,
        event_type: type[ev.WorkflowEvent],
        *,
        urgent: bool = True,
        timestamp: datetime | None = None,
        **fields: Any,
    ) -> None:
        """Buffer an event stamped with this instance and the workflow clock.

        ``urgent=False`` marks events another writer already makes visible (a machine step's
        start and end, which the activity-side interceptor records as they happen); they
        ride along with the next flush instead of forcing one.
        """
        event = event_type(instance_id=self.instance_id, timestamp=timestamp or workflow.now(), **fields)
        self._event_seq += 1
        payload = ev.event_to_dict(event)
        payload["seq"] = self._event_seq
        if not urgent:
            payload["urgent"] = False
        self._events.append(payload)
        self._urgent = self._urgent or urgent

    def _batch(self, events: list[dict[str, Any]]) -> EventBatch:
        assert self.definition is not None
        info = workflow.info()
        return EventBatch(
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            namespace=info.namespace,
            task_queue=info.task_queue,
            workflow_type=info.workflow_type,
            workflow_name=self.definition.name,
            workflow_version=self.definition.version,
            tenant_id=self.tenant_id,
            created_by=self.created_by,
            events=events,
        )

    async def flush(self, *, force: bool = False) -> None:
        """Publish buffered events through the local activity.

        A no-op when nothing is buffered (nor carried by a step activity that has not
        completed), or when only non-urgent events are and ``force`` is false. Events that
        step activities carried are published again with them: writes are idempotent, and
        an activity that never ran, or ran where no interceptor read its header, wrote none.
        Whether this issues a command depends on the history only (never on the interceptor).
        """
        if self.definition is None or not (force or self._urgent):
            return
        if not self._events and not self._unconfirmed:
            return
        events, self._events, self._urgent = self._events, [], False
        if self._carried:
            carried = [event for batch in self._carried.values() for event in batch]
            events = sorted([*carried, *events], key=lambda event: int(event["seq"]))
        self._carried.clear()
        self._unconfirmed.clear()
        await workflow.execute_local_activity(
            PUBLISH_ACTIVITY,
            self._batch(events),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_PUBLISH_RETRY,
        )
        self._instance_published = True  # the first flush holds WorkflowStarted

    async def flush_soon(self) -> None:
        """Publish urgent events before this activation ends, unless a step activity carries them.

        On instances started before events could ride along, this is :meth:`flush`.
        """
        if not self._carrying:
            await self.flush()
            return
        if self._urgent and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._flush_when_idle())

    async def _flush_when_idle(self) -> None:
        # temporalio checks wait conditions only once nothing is ready to run, in order, and
        # a condition that holds queues its waiter. So "nothing queued" when this condition is
        # checked means no waiter was released before it in this pass: what this activation
        # resumed has run up to its next wait, and a step it scheduled carries the events.
        # Twice: a waiter released in the same pass as this one (a condition that already
        # held, say) runs before the second check. Again while urgent events arrived during
        # the publish (flush_soon starts no second flusher meanwhile).
        ready = getattr(asyncio.get_running_loop(), "_ready", None)
        while self._urgent:
            await workflow.wait_condition(lambda: not ready)
            await workflow.wait_condition(lambda: not ready)
            await self.flush()

    def carry(self, activity_id: str) -> bool:
        """Hand the buffered events to the step activity ``activity_id`` about to be scheduled.

        The worker's interceptor puts them in the activity's header (:meth:`take_outbox`).
        False when nothing is handed over: nothing is buffered, or the events cannot go
        before the instance row is committed (WorkflowStarted is neither committed nor
        among them: a step started alongside the first publish).
        """
        if not self._events or self.definition is None:
            return False
        if not self._instance_published and int(self._events[0]["seq"]) != 1:
            return False
        events, self._events, self._urgent = self._events, [], False
        self._carried[activity_id] = events
        self._unconfirmed.add(activity_id)
        self._outbox = (activity_id, self._batch(events))
        return True

    def take_outbox(self, activity_id: str) -> EventBatch | None:
        """The events for the header of activity ``activity_id`` (called by the interceptor)."""
        if self._outbox is None or self._outbox[0] != activity_id:
            return None
        batch, self._outbox = self._outbox[1], None
        self._in_header.add(activity_id)
        return batch

    def confirm(self, activity_id: str) -> None:
        """Activity ``activity_id`` completed: its interceptor wrote the events it carried.

        Unless no interceptor put them in its header (a worker not built by
        ``worker.create_worker``): then they stay for the next flush. Only what that flush
        sends depends on it, never whether it happens.
        """
        if activity_id not in self._unconfirmed:
            return
        self._unconfirmed.discard(activity_id)
        self._instance_published = True  # the instance row existed, or this batch made it
        if activity_id in self._in_header:
            self._in_header.discard(activity_id)
            self._carried.pop(activity_id, None)

    def step_abandoned(self, activity_id: str) -> None:
        """A step's activity ended without completing (failed, canceled): what it carried is
        published at the end of the activation unless the next step carries it."""
        if activity_id in self._unconfirmed:
            self._urgent = True

    @property
    def carrying(self) -> bool:
        """Whether step activities carry events (instances started with this runtime)."""
        return self._carrying

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self, definition: WorkflowDefinition[..., Any], args: tuple[Any, ...]) -> Any:
        """Run the author's function with lifecycle events around it."""
        self.definition = definition
        self.status = WorkflowStatus.RUNNING
        # A patch marker, written by the code that ran: an instance started before events
        # could ride along has none, and keeps its commands on replay.
        self._carrying = workflow.patched(CARRY_PATCH)
        info = workflow.info()
        self.emit(
            ev.WorkflowStarted,
            timestamp=info.workflow_start_time or info.start_time,
            workflow_name=definition.name,
            workflow_version=definition.version,
            initial_data=as_data(list(args)),
            user_id=self.created_by,
            tenant_id=self.tenant_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
        )
        try:
            result = await definition.fn(*args)
            # An update that completed the last task may still be publishing its events: let
            # it answer its caller before the workflow completes.
            if not (self._carrying and workflow.all_handlers_finished()):
                await workflow.wait_condition(workflow.all_handlers_finished)
        except asyncio.CancelledError:
            await self._finish_canceled()
            raise
        except Exception as err:
            if _is_engine_error(err):
                raise
            await self._finish_failed(err)
            if isinstance(err, FailureError):
                raise
            raise ApplicationError(
                f"{type(err).__name__}: {err}", type=type(err).__name__, non_retryable=True
            ) from err
        self.status = WorkflowStatus.COMPLETED
        final_step, self.current_step = self.current_step, None
        self.emit(
            ev.WorkflowCompleted,
            status=WorkflowStatus.COMPLETED.value,
            final_step=final_step,
            duration_seconds=(workflow.now() - (info.workflow_start_time or info.start_time)).total_seconds(),
            result=jsonable(result),
        )
        await self.flush(force=True)
        return result

    async def _finish_canceled(self) -> None:
        self.status = WorkflowStatus.CANCELED
        for task in self.tasks.values():
            if task.status is TaskStatus.PENDING:
                task.status = TaskStatus.CANCELED
        self.emit(
            ev.WorkflowCanceled,
            reason=self.cancel_reason or "cancellation requested",
            canceled_by=self.canceled_by,
            current_step=self.current_step,
        )
        await self.flush(force=True)

    async def _finish_failed(self, err: BaseException) -> None:
        self.status = WorkflowStatus.FAILED
        cause: BaseException = err
        while isinstance(cause, ActivityError) and cause.cause is not None:
            cause = cause.cause
        error_type = (
            cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
        )
        self.emit(
            ev.WorkflowFailed,
            error=(cause.message if isinstance(cause, FailureError) else str(cause)) or type(cause).__name__,
            failed_step=self.current_step,
            error_type=error_type,
            stack_trace="".join(traceback.format_exception(err))[-8000:],
        )
        await self.flush(force=True)

    def next_seq(self) -> int:
        self._step_seq += 1
        return self._step_seq

    async def hold_if_paused(self) -> None:
        """Before a step: wait while the instance is paused."""
        if self.paused:
            await workflow.wait_condition(lambda: not self.paused)

    # -- commands from outside (signals and updates) ---------------------------------

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
        del self.rejections[:-_MAX_REJECTIONS]

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

    def state(self) -> InstanceState:
        definition = self.definition
        tasks = [t.model_copy() for t in self.tasks.values() if t.task_id not in self._unpublished]
        return InstanceState(
            instance_id=str(self.instance_id),
            workflow_name=definition.name if definition else workflow.info().workflow_type,
            workflow_version=definition.version if definition else "",
            status=self.status,
            current_step=self.current_step,
            tenant_id=self.tenant_id,
            created_by=self.created_by,
            paused=self.paused,
            pending_tasks=[t for t in tasks if t.status is TaskStatus.PENDING],
            tasks=tasks,
            rejections=list(self.rejections),
        )


def _uuid(value: str) -> UUID:
    return UUID(value)


def _is_engine_error(err: BaseException) -> bool:
    """Errors that must fail the workflow task (retried after a fix), not the workflow."""
    name = type(err).__name__
    return name in {
        "NondeterminismError",
        "RestrictedWorkflowAccessError",
        "_NotInWorkflowEventLoopError",
    }


def current_runtime() -> WorkflowRuntime:
    """The runtime of the workflow whose code is running now."""
    instance = workflow.instance()
    runtime = getattr(instance, "_dwf", None)
    if not isinstance(runtime, WorkflowRuntime):
        raise RuntimeError("steps can only run inside a workflow declared with @sdk.workflow")
    return runtime


def _resolve(value: str | Callable[..., Any] | None, args: list[Any], kwargs: dict[str, Any]) -> str | None:
    if callable(value):
        result = value(*args, **kwargs)
        return None if result is None else str(result)
    return value


async def run_machine_step(step: MachineStep[..., Any], args: list[Any]) -> Any:
    """Schedule a machine step as an activity (called from the step object in a workflow)."""
    rt = current_runtime()
    await rt.hold_if_paused()
    seq = rt.next_seq()
    rt.current_step = step.name
    step_execution_id = step_execution_id_for(rt.instance_id, seq)
    rt.emit(
        ev.StepStarted,
        urgent=False,
        step_name=step.name,
        step_type=StepType.MACHINE.value,
        input_data=as_data(args),
        step_execution_id=step_execution_id,
        step_seq=seq,
    )
    activity_id = step_activity_id(seq)
    if not (rt.carrying and rt.carry(activity_id)):
        await rt.flush_soon()
    options = step.options
    started = workflow.now()
    try:
        result = await workflow.execute_activity(
            step.name,
            args=args,
            activity_id=activity_id,
            result_type=step.return_type if step.return_type is not Any else None,
            start_to_close_timeout=options.start_to_close_timeout,
            schedule_to_close_timeout=options.schedule_to_close_timeout,
            heartbeat_timeout=options.heartbeat_timeout,
            retry_policy=options.retry_policy(),
        )
    except ActivityError as err:
        cause = err.cause
        error_type = (
            cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause or err).__name__
        )
        rt.emit(
            ev.StepFailed,
            step_name=step.name,
            error=cause.message if isinstance(cause, FailureError) else str(cause or err),
            error_type=error_type,
            step_execution_id=step_execution_id,
        )
        if rt.carrying:  # with what the activity carried, unless the next step carries it
            rt.step_abandoned(activity_id)
            await rt.flush_soon()
        raise
    except asyncio.CancelledError:
        if rt.carrying:  # the activity may never have started: what it carried goes out
            rt.step_abandoned(activity_id)
            await rt.flush_soon()
        raise
    rt.confirm(activity_id)
    output = jsonable(result)
    rt.emit(
        ev.StepCompleted,
        urgent=False,
        step_name=step.name,
        status=StepStatus.SUCCEEDED.value,
        result=output,
        output_data=output if isinstance(output, dict) else {"value": output},
        duration_seconds=(workflow.now() - started).total_seconds(),
        step_execution_id=step_execution_id,
    )
    return result


async def run_human_step(step: HumanStep[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Create a human task, publish it, and wait for a valid completion or its deadline."""
    rt = current_runtime()
    await rt.hold_if_paused()
    seq = rt.next_seq()
    rt.current_step = step.name
    options = step.options
    returned = step.fn(*args, **kwargs)
    if inspect.isawaitable(returned):
        returned = await returned
    title = returned if isinstance(returned, str) else _resolve(options.title, args, kwargs)
    now = workflow.now()
    task = TaskInfo(
        task_id=str(task_id_for(rt.instance_id, seq)),
        step_execution_id=str(step_execution_id_for(rt.instance_id, seq)),
        step_name=step.name,
        title=title or step.name.replace("_", " ").capitalize(),
        description=_resolve(options.description, args, kwargs),
        form_name=step.form.__name__,
        form_schema=step.form_schema(),
        assignee_id=_resolve(options.assignee, args, kwargs),
        assignee_group=_resolve(options.assignee_group, args, kwargs),
        require_claim=options.require_claim,
        created_at=now,
        due_at=now + options.due_in if options.due_in else None,
        reminder_at=now + options.reminder_in if options.reminder_in else None,
    )
    rt.tasks[task.task_id] = task
    rt.forms[task.task_id] = step.form
    input_data = as_data(args)
    rt.emit(
        ev.StepStarted,
        step_name=step.name,
        step_type=StepType.HUMAN.value,
        input_data=input_data,
        step_execution_id=_uuid(task.step_execution_id),
        step_seq=seq,
    )
    rt.emit(
        ev.HumanTaskCreated,
        step_name=step.name,
        task_id=_uuid(task.task_id),
        assignee=task.assignee_id or task.assignee_group,
        title=task.title,
        description=task.description,
        due_at=task.due_at,
        step_execution_id=_uuid(task.step_execution_id),
        assignee_id=task.assignee_id,
        assignee_group=task.assignee_group,
        form_schema=task.form_schema,
        reminder_at=task.reminder_at,
        require_claim=task.require_claim,
    )
    rt._unpublished.add(task.task_id)
    await rt.flush(force=True)  # the task row is committed before the workflow waits on it
    rt._unpublished.discard(task.task_id)
    try:
        await _wait_for_task(rt, step, task)
    except asyncio.CancelledError:
        if task.status is TaskStatus.PENDING:
            task.status = TaskStatus.CANCELED
        raise
    await rt.flush_soon()
    if task.status is TaskStatus.EXPIRED:
        raise HumanTaskExpired(step.name, task.task_id)
    return rt.results[task.task_id]


async def _wait_for_task(rt: WorkflowRuntime, step: HumanStep[..., Any], task: TaskInfo) -> None:
    options = step.options
    remind = task.reminder_at is not None
    due_policy = options.on_due
    while task.status is TaskStatus.PENDING:
        deadlines = []
        if remind and task.reminder_at is not None:
            deadlines.append(task.reminder_at)
        if due_policy is not None and task.due_at is not None:
            deadlines.append(task.due_at)
        if not deadlines:
            await workflow.wait_condition(lambda: task.status is not TaskStatus.PENDING)
            return
        timeout = max(min(deadlines) - workflow.now(), timedelta(0))
        try:
            await workflow.wait_condition(lambda: task.status is not TaskStatus.PENDING, timeout=timeout)
            return
        except TimeoutError:
            pass
        now = workflow.now()
        if remind and task.reminder_at is not None and now >= task.reminder_at:
            remind = False
            await workflow.execute_activity(
                REMINDER_ACTIVITY,
                task,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=5),
            )
        if due_policy is not None and task.due_at is not None and now >= task.due_at:
            _apply_due_policy(rt, step, task)
            due_policy = None
            await rt.flush()


def _apply_due_policy(rt: WorkflowRuntime, step: HumanStep[..., Any], task: TaskInfo) -> None:
    options = step.options
    if options.on_due == "escalate":
        rt.reassign(
            task,
            options.escalate_to,
            options.escalate_to_group,
            SYSTEM_USER,
            "escalated: task overdue",
        )
    elif options.on_due == "complete":
        value = step.form.model_validate(options.default or {})
        rt._complete(task, value, SYSTEM_USER, "completed with the default value: task overdue")
    elif options.on_due == "expire":
        task.status = TaskStatus.EXPIRED
        task.completed_at = workflow.now()
        rt.emit(
            ev.HumanTaskCompleted,
            step_name=task.step_name,
            task_id=_uuid(task.task_id),
            completed_by=SYSTEM_USER,
            comment="expired: task overdue",
            step_execution_id=_uuid(task.step_execution_id),
            status=TaskStatus.EXPIRED.value,
        )
        rt.emit(
            ev.StepFailed,
            step_name=task.step_name,
            error=f"human task {task.task_id} expired",
            error_type="HumanTaskExpired",
            step_execution_id=_uuid(task.step_execution_id),
        )
