"""Workflow-side runtime: what a compiled workflow does around the author's function.

Runs inside the Temporal sandbox, so it is deterministic and does no I/O. It keeps the
instance's state (current step, human tasks, pause flag) and turns each transition into a
domain event with deterministic ids. Its parts: the event outbox (``_outbox``), the task
commands (``_commands``) and approval commands (``_approvals``), the lifecycle here, and the
step executors (``_steps``).
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from . import events as ev
from ._approvals import ApprovalCommands
from ._details import current_details
from ._escalation import ChainState, EscalationChain
from ._ids import instance_id_for
from ._inputs import check_memo, decode_args
from ._nonces import SeenSignatures
from ._outbox import as_data, jsonable
from ._types import (
    InstanceState,
    Rejection,
    TaskInfo,
    TaskStatus,
    WorkflowStatus,
)
from .protocol import CARRY_PATCH

if TYPE_CHECKING:
    from ._definition import WorkflowDefinition

__all__ = ["SYSTEM_USER", "WorkflowRuntime", "current_runtime"]

HANDLERS_PATCH = "dwf-handlers-answer-before-close"
"""Patch marker: a failing or canceled run lets its updates in flight answer first."""
_HANDLERS_WAIT = timedelta(seconds=30)

SYSTEM_USER = "system"
"""The user recorded for what the workflow does by itself (an escalation, a default)."""


class WorkflowRuntime(ApprovalCommands):
    """The state of one workflow run, owned by its workflow object."""

    def __init__(self) -> None:
        super().__init__()
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
        self.signatures = SeenSignatures()
        self._step_seq = 0
        # Tasks whose HumanTaskCreated is not yet committed: invisible to queries and commands,
        # so nobody acts on a task the mirror does not show yet.
        self._unpublished: set[str] = set()
        # Escalation chains of the tasks that have one, and where each task is in it.
        self.chains: dict[str, tuple[EscalationChain, ChainState]] = {}
        # External events received (``sdk._waits``), kept until an event step consumes them.
        self.external_events: list[Any] = []

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self, definition: WorkflowDefinition[..., Any], args: tuple[Any, ...]) -> Any:
        """Run the author's function with lifecycle events around it."""
        self.definition = definition
        self.status = WorkflowStatus.RUNNING
        # A patch marker, written by the code that ran: an instance started before events
        # could ride along has none, and keeps its commands on replay.
        self._carrying = workflow.patched(CARRY_PATCH)
        args, invalid_input = decode_args(definition, args)
        if (bad_memo := check_memo(self.tenant_id, self.created_by)) is not None:
            invalid_input, self.tenant_id, self.created_by = bad_memo, None, None
        info = workflow.info()
        self.emit(
            ev.WorkflowStarted,
            timestamp=info.workflow_start_time or info.start_time,
            workflow_name=definition.name,
            workflow_version=definition.version,
            initial_data=as_data(list(args)) if invalid_input is None else None,
            user_id=self.created_by,
            tenant_id=self.tenant_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
        )
        try:
            if invalid_input is not None:
                raise invalid_input
            result = await definition.fn(*args)
            # An update that completed the last task may still be publishing its events: let
            # it answer its caller before the workflow completes.
            if not (self._carrying and workflow.all_handlers_finished()):
                await workflow.wait_condition(workflow.all_handlers_finished)
        except asyncio.CancelledError:
            await self._let_handlers_answer()
            await self._finish_canceled()
            raise
        except Exception as err:
            if _is_engine_error(err):
                raise
            await self._let_handlers_answer()
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

    async def _let_handlers_answer(self) -> None:
        """Before the run closes: let updates in flight answer their callers.

        An update that applied a command (recorded in the history) and is still publishing
        its events would otherwise be abandoned, and its caller told it failed. The wait is
        bounded, since publishing never waits long for the mirror. Instances whose history
        predates this wait (no patch marker) close as they did.
        """
        if workflow.all_handlers_finished() or not workflow.patched(HANDLERS_PATCH):
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(workflow.all_handlers_finished, timeout=_HANDLERS_WAIT)

    async def _finish_canceled(self) -> None:
        if self.cancel_notes_pending:  # who cancels and why, still being verified
            await workflow.wait_condition(lambda: self.cancel_notes_pending == 0)
        self.status = WorkflowStatus.CANCELED
        for task in self.tasks.values():
            # Pending here, or marked canceled by its step as the cancellation reached it.
            if task.status is TaskStatus.PENDING or (
                task.status is TaskStatus.CANCELED and task.completed_at is None
            ):
                task.status = TaskStatus.CANCELED
                task.completed_at = workflow.now()
                # For notifiers; the rows are closed by WorkflowCanceled below.
                self.emit(
                    ev.HumanTaskCanceled,
                    step_name=task.step_name,
                    task_id=_uuid(task.task_id),
                    canceled_by=self.canceled_by,
                    reason=self.cancel_reason,
                )
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

    def emit(
        self,
        event_type: type[ev.WorkflowEvent],
        *,
        urgent: bool = True,
        timestamp: datetime | None = None,
        **fields: Any,
    ) -> None:
        """Buffer the event of a transition, and tell Temporal's UI what the instance does now.

        Every transition emits an event after changing the state, so the current details
        (``sdk._details``) follow each one. Setting them issues no command: old histories
        replay unchanged.
        """
        super().emit(event_type, urgent=urgent, timestamp=timestamp, **fields)
        workflow.set_current_details(current_details(self.status, self.current_step, self.tasks.values()))

    def next_seq(self) -> int:
        self._step_seq += 1
        return self._step_seq

    async def hold_if_paused(self) -> None:
        """Before a step: wait while the instance is paused."""
        if self.paused:
            await workflow.wait_condition(lambda: not self.paused)

    def state(self) -> InstanceState:
        definition = self.definition
        tasks = [t.model_copy() for t in self.tasks.values() if t.task_id not in self._unpublished]
        pending = [t for t in tasks if t.status is TaskStatus.PENDING]
        # The mirror's vocabulary: an instance that is not paused and has a task out waits on
        # a human (WAITING). Only the answer changes; ``self.status`` drives the commands.
        status = self.status
        if status is WorkflowStatus.RUNNING and pending:
            status = WorkflowStatus.WAITING
        return InstanceState(
            instance_id=str(self.instance_id),
            workflow_name=definition.name if definition else workflow.info().workflow_type,
            workflow_version=definition.version if definition else "",
            status=status,
            current_step=self.current_step,
            tenant_id=self.tenant_id,
            created_by=self.created_by,
            paused=self.paused,
            pending_tasks=pending,
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
