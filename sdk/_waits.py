"""Timers, external events and skipped steps: steps that are not activities nor human tasks.

Usable from ``@workflow`` functions (:func:`timer_step`, :func:`wait_for_event`,
:func:`skip_step`) and used by the graph interpreter. A timer is a durable
``workflow.sleep`` recorded as a TIMER step; an event wait is a WEBHOOK step that waits for
the ``external_event`` signal with a matching name and correlation key; a skipped step is a
``StepSkipped`` event. Deterministic, no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio import workflow

from . import events as ev
from ._errors import ErrorKind, Refusal
from ._graph_errors import EventTimeoutError
from ._ids import step_execution_id_for
from ._outbox import jsonable
from ._runtime import WorkflowRuntime, current_runtime
from ._types import StepStatus, StepType

__all__ = [
    "ExternalEvent",
    "event_wait",
    "receive_event",
    "record_done",
    "record_start",
    "skip_step",
    "timer_step",
    "wait_for_event",
]


class ExternalEvent(BaseModel):
    """The payload of the ``external_event`` signal."""

    model_config = ConfigDict(extra="forbid")

    event: str
    key: str
    payload: Any = None


def receive_event(rt: WorkflowRuntime, args: tuple[Any, ...]) -> None:
    """The signal handler's body: keep a well-formed event, record a malformed one as refused."""
    try:
        if len(args) != 1:
            raise ValueError(f"takes one argument, got {len(args)}")
        received = ExternalEvent.model_validate(args[0])
    except (ValidationError, ValueError) as exc:
        message = f"malformed external event: {str(exc).splitlines()[0]}"
        rt.record_rejection(None, None, Refusal(ErrorKind.INVALID_COMMAND, message))
        return
    rt.external_events.append(received)


def record_start(rt: WorkflowRuntime, name: str, step_type: StepType, input_data: dict[str, Any]) -> UUID:
    """Emit ``StepStarted`` for a step the workflow runs itself; returns its row id."""
    seq = rt.next_seq()
    rt.current_step = name
    step_execution_id = step_execution_id_for(rt.instance_id, seq)
    rt.emit(
        ev.StepStarted,
        step_name=name,
        step_type=step_type.value,
        input_data=input_data,
        step_execution_id=step_execution_id,
        step_seq=seq,
    )
    return step_execution_id


def record_done(
    rt: WorkflowRuntime, name: str, step_execution_id: UUID, output: Any, started: datetime
) -> None:
    """Emit ``StepCompleted`` (SUCCEEDED) with ``output`` for a step begun by :func:`record_start`."""
    output = jsonable(output)
    rt.emit(
        ev.StepCompleted,
        step_name=name,
        status=StepStatus.SUCCEEDED.value,
        result=output,
        output_data=output if isinstance(output, dict) else {"value": output},
        duration_seconds=(workflow.now() - started).total_seconds(),
        step_execution_id=step_execution_id,
    )


async def timer_step(name: str, duration: timedelta | None = None, *, until: datetime | None = None) -> None:
    """A durable wait recorded as the TIMER step ``name``: for ``duration``, or until ``until``.

    Survives worker restarts (a Temporal timer). ``until`` in the past returns at once.
    """
    if (duration is None) == (until is None):
        raise ValueError("timer_step takes a duration or until=, not both")
    rt = current_runtime()
    await rt.hold_if_paused()
    started = workflow.now()
    if until is not None:
        wait = until - started
        shown: dict[str, Any] = {"until": until.isoformat()}
    else:
        assert duration is not None
        wait = duration
        shown = {"seconds": duration.total_seconds()}
    step_execution_id = record_start(rt, name, StepType.TIMER, shown)
    await rt.flush_soon()
    if wait > timedelta(0):
        await workflow.sleep(wait)
    record_done(rt, name, step_execution_id, {"fired_at": workflow.now().isoformat()}, started)
    await rt.flush_soon()


async def event_wait(name: str, event: str, key: str, timeout: timedelta | None) -> tuple[bool, Any]:
    """Wait as the WEBHOOK step ``name``; (True, payload) or (False, None) on timeout."""
    rt = current_runtime()
    await rt.hold_if_paused()
    started = workflow.now()
    shown: dict[str, Any] = {"event": event, "correlation_key": key}
    if timeout is not None:
        shown["timeout_seconds"] = timeout.total_seconds()
    step_execution_id = record_start(rt, name, StepType.WEBHOOK, shown)
    await rt.flush(force=True)  # the waiting row is committed: senders find the instance by it

    def matching() -> ExternalEvent | None:
        for received in rt.external_events:
            if received.event == event and received.key == key:
                return received  # type: ignore[no-any-return]
        return None

    try:
        await workflow.wait_condition(lambda: matching() is not None, timeout=timeout)
    except TimeoutError:
        record_done(rt, name, step_execution_id, {"timed_out": True}, started)
        await rt.flush_soon()
        return False, None
    found = matching()
    assert found is not None
    rt.external_events.remove(found)
    record_done(rt, name, step_execution_id, {"event": event, "payload": found.payload}, started)
    await rt.flush_soon()
    return True, found.payload


async def wait_for_event(
    event: str, key: str, *, timeout: timedelta | None = None, name: str | None = None
) -> Any:
    """Wait for the external event ``event`` carrying correlation key ``key``; return its payload.

    Recorded as the WEBHOOK step ``name`` (default: the event's name). An event sent before
    the wait began is kept and consumed here. Send one with ``WorkflowClient.send_event``,
    ``dwf event send`` or ``temporal workflow signal --name external_event``.

    Raises:
        EventTimeoutError: ``timeout`` passed with no such event.
    """
    received, payload = await event_wait(name or event, event, key, timeout)
    if not received:
        raise EventTimeoutError(event, key)
    return payload


def skip_step(name: str, reason: str) -> None:
    """Record the step ``name`` as skipped, with ``reason`` (a ``StepSkipped`` event)."""
    rt = current_runtime()
    seq = rt.next_seq()
    rt.emit(
        ev.StepSkipped,
        step_name=name,
        reason=reason,
        step_execution_id=step_execution_id_for(rt.instance_id, seq),
    )
