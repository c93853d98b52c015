"""Step executors: a machine step as an activity, a human step as a task and a wait.

Called from the step objects when workflow code awaits them; deterministic, no I/O.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from . import events as ev
from ._approvals import created_policy_fields, delegate_task, resolve_policy
from ._errors import HumanTaskExpired
from ._escalation import ChainState, EscalationChain
from ._ids import step_activity_id, step_execution_id_for, task_id_for
from ._outbox import as_data, jsonable
from ._runtime import SYSTEM_USER, WorkflowRuntime, current_runtime
from ._types import (
    StepStatus,
    StepType,
    TaskInfo,
    TaskStatus,
)
from .protocol import REMINDER_ACTIVITY

if TYPE_CHECKING:
    from ._definition import DuePolicy, HumanStep, MachineStep

__all__ = ["run_human_step", "run_machine_step"]


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
    started = workflow.now()
    try:
        result = await _execute(step, args, activity_id)
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


async def _execute(step: MachineStep[..., Any], args: list[Any], activity_id: str) -> Any:
    """Run the step's activity: a local activity when the author allowed it (``local=True``).

    Both kinds get the same activity id, arguments, timeouts and retry policy, and both pass
    through the outbound interceptor that puts carried events in their header
    (``sdk._carry``), so the step's events and rows are the same either way.
    """
    options = step.options
    result_type = step.return_type if step.return_type is not Any else None
    if options.local:
        return await workflow.execute_local_activity(
            step.name,
            args=args,
            activity_id=activity_id,
            result_type=result_type,
            start_to_close_timeout=options.start_to_close_timeout,
            schedule_to_close_timeout=options.schedule_to_close_timeout,
            retry_policy=options.retry_policy(),
            local_retry_threshold=options.local_retry_threshold,
        )
    return await workflow.execute_activity(
        step.name,
        args=args,
        activity_id=activity_id,
        result_type=result_type,
        start_to_close_timeout=options.start_to_close_timeout,
        schedule_to_close_timeout=options.schedule_to_close_timeout,
        heartbeat_timeout=options.heartbeat_timeout,
        retry_policy=options.retry_policy(),
    )


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
    policy = resolve_policy(rt, options, args, kwargs, now)
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
        **policy,
    )
    await delegate_task(rt, task)
    rt.tasks[task.task_id] = task
    rt.forms[task.task_id] = step.form
    if task.quorum is not None:
        rt.vote_fields[task.task_id] = options.vote_field
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
        **created_policy_fields(task),
    )
    rt._unpublished.add(task.task_id)
    await rt.flush(force=True)  # the task row is committed before the workflow waits on it
    rt._unpublished.discard(task.task_id)
    if task.quorum is not None:
        rt.resolve_quorum(task, None)  # a voter list the exclusions left too short
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
    if options.escalation is not None:
        await _wait_with_chain(rt, step, task, options.escalation)
        return
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


async def _wait_with_chain(
    rt: WorkflowRuntime, step: HumanStep[..., Any], task: TaskInfo, chain: EscalationChain
) -> None:
    """Wait for the task while walking its escalation chain, one link per due time.

    Each deadline is a durable timer (``wait_condition`` with a timeout). A link moves the task
    and gives it its next due time; the chain's end (``expire``/``complete``) applies at the
    last link's due time; without an end the task stays pending and overdue. An ``escalate``
    command applies the next link early (``TaskCommands.escalate``); the wait then follows the
    due time that link set.
    """
    state = ChainState()
    rt.chains[task.task_id] = (chain, state)
    remind = task.reminder_at is not None
    while task.status is TaskStatus.PENDING:
        deadlines = []
        if remind and task.reminder_at is not None:
            deadlines.append(task.reminder_at)
        if not state.ended and task.due_at is not None:
            deadlines.append(task.due_at)

        def done_or_moved(seen: int = state.changes) -> bool:
            return task.status is not TaskStatus.PENDING or state.changes != seen

        timeout = max(min(deadlines) - workflow.now(), timedelta(0)) if deadlines else None
        try:
            await workflow.wait_condition(done_or_moved, timeout=timeout)
            continue  # answered (the loop ends), or a command applied a link: new deadlines
        except TimeoutError:
            pass
        now = workflow.now()
        if remind and task.reminder_at is not None and now >= task.reminder_at:
            remind = False
            await _send_reminder(task)
        if state.ended or task.due_at is None or now < task.due_at or task.status is not TaskStatus.PENDING:
            continue
        if rt.next_link(task) is not None:
            rt.escalate(task, SYSTEM_USER, None)
        else:
            state.ended = True
            if chain.end is not None:
                _end_chain(rt, step, task, chain.end)
        await rt.flush()


async def _send_reminder(task: TaskInfo) -> None:
    await workflow.execute_activity(
        REMINDER_ACTIVITY,
        task,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=RetryPolicy(maximum_attempts=5),
    )


def _end_chain(rt: WorkflowRuntime, step: HumanStep[..., Any], task: TaskInfo, end: DuePolicy) -> None:
    """A chain's end (``expire``/``complete``) is the single due policy of that name."""
    _apply_due_policy(rt, replace(step, options=replace(step.options, on_due=end)), task)


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


def _uuid(value: str) -> UUID:
    return UUID(value)
