"""What Temporal recorded, replayed: the rows an instance's history implies.

The workflow code is deterministic, so replaying an instance's history with ``Replayer``
produces the event batches the workflow published. :class:`EventCapture` collects them (a
workflow outbound interceptor that watches the publish local activity and the step
activities' carried events) and keeps only what the history recorded:

- a publish local activity counts when its result is in the history (its marker); one the
  replay starts and never resolves is not recorded work. In particular, when the history
  ends with the instance still open, ``Replayer`` evicts the workflow and the runtime's
  cancellation handler publishes a "canceled" batch that never happened;
- a step activity's carried events count when the activity was scheduled in a workflow task
  the history holds (the replay was replaying history when it started).

:func:`expected_rows` writes those batches into a scratch mirror, with the attempts of each
step from the history and from ``describe()`` (activities still running), and the closings
the workflow could not report (terminate, execution timeout).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, update
from temporalio import workflow
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from sdk import WorkflowStatus, registry
from sdk.events import event_from_dict
from sdk.protocol import PUBLISH_ACTIVITY
from sdk.runtime import (
    EventBatch,
    GraphWorkflow,
    instance_id_for,
    sandbox_runner,
    seq_from_activity_id,
    step_execution_id_for,
    take_carried,
)

from ._closing import TIMEOUT_ERROR, close_instances, termination_error
from ._models import StepExecutionModel
from ._writer import MirrorWriter

__all__ = ["EventCapture", "expected_rows", "replay_batches"]

_CLOSED_BY_SERVER = {
    WorkflowExecutionStatus.TERMINATED: WorkflowStatus.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT: WorkflowStatus.TIMED_OUT,
}
_steps = cast(Table, StepExecutionModel.__table__)


class EventCapture(Interceptor):
    """Collects the event batches a replayed workflow published, as the history recorded them.

    Also those its step activities carry in their headers (see ``sdk._outbox``).
    """

    def __init__(self) -> None:
        self._entries: list[tuple[EventBatch, workflow.ActivityHandle[Any] | None]] = []

    @property
    def batches(self) -> list[EventBatch]:
        """The recorded batches, in the order the workflow published them."""
        return [batch for batch, handle in self._entries if handle is None or _resolved(handle)]

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        capture = self

        class _Outbound(WorkflowOutboundInterceptor):
            def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
                handle = self.next.start_local_activity(input)
                if input.activity == PUBLISH_ACTIVITY and input.args:
                    capture._entries.append((_as_sent(input.args[0]), handle))
                return handle

            def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
                batch = take_carried(input)
                if batch is not None and workflow.unsafe.is_replaying():
                    capture._entries.append((_as_sent(batch), None))
                return self.next.start_activity(input)

        class _Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(_Outbound(outbound))

        return _Inbound


def _as_sent(batch: Any) -> EventBatch:
    """The batch as the writer receives it live: through the data converter (NaN becomes null)."""
    converter = pydantic_data_converter.payload_converter
    (payload,) = converter.to_payloads([batch])
    sent: EventBatch = converter.from_payloads([payload], [EventBatch])[0]
    return sent


def _resolved(handle: workflow.ActivityHandle[Any]) -> bool:
    return handle.done() and not handle.cancelled() and handle.exception() is None


async def replay_batches(history: WorkflowHistory) -> list[EventBatch]:
    """Replay one history and return the event batches it recorded the workflow publishing."""
    capture = EventCapture()
    replayer = Replayer(
        workflows=[*dict.fromkeys(d.workflow_class for d in registry.workflows.values()), GraphWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
        interceptors=[capture],
    )
    await replayer.replay_workflow(history, raise_on_replay_failure=True)
    return capture.batches


@dataclass
class _Attempt:
    attempts: int
    error: str | None = None
    running: bool = False


def _history_attempts(history: WorkflowHistory) -> dict[int, _Attempt]:
    """The last attempt of each finished SDK step activity, by step sequence number."""
    by_event: dict[int, int] = {}
    found: dict[int, _Attempt] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            seq = seq_from_activity_id(attrs.activity_id)
            if seq is not None:
                by_event[event.event_id] = seq
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            seq_started = by_event.get(started.scheduled_event_id)
            if seq_started is not None:
                found[seq_started] = _Attempt(started.attempt)
    return found


def _running_attempts(description: WorkflowExecutionDescription) -> dict[int, _Attempt]:
    """Attempts of the step activities still running (their started events are not written yet)."""
    found: dict[int, _Attempt] = {}
    for pending in description.raw_description.pending_activities:
        seq = seq_from_activity_id(pending.activity_id)
        if seq is None:
            continue
        attempt = pending.attempt
        if pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED and attempt > 1:
            attempt -= 1  # waiting out the retry backoff: the last attempt that ran
        error = None
        if pending.HasField("last_failure"):
            failure = pending.last_failure
            kind = failure.application_failure_info.type or "ApplicationError"
            error = f"{kind}: {failure.message}"
        found[seq] = _Attempt(max(attempt, 1), error, running=True)
    return found


async def expected_rows(
    client: Client, scratch: MirrorWriter, workflow_id: str, run_id: str | None = None
) -> uuid.UUID:
    """Write into ``scratch`` (an empty mirror) the rows one instance's history implies."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    history = await handle.fetch_history()
    description = await handle.describe()
    instance_id = instance_id_for(description.run_id)
    for replayed in await replay_batches(history):
        # The replayer runs in a namespace and task queue of its own; the real ones are here.
        batch = replayed.model_copy(
            update={"namespace": client.namespace, "task_queue": description.task_queue}
        )
        await scratch.write_batch(batch, [event_from_dict(item) for item in batch.events])
    attempts = _history_attempts(history)
    attempts.update(_running_attempts(description))
    async with scratch.engine.begin() as conn:
        for seq, attempt in attempts.items():
            values: dict[str, Any] = {"attempts": attempt.attempts, "step_seq": seq}
            if attempt.running:
                values["error"] = attempt.error
            await conn.execute(
                update(_steps).where(_steps.c.id == step_execution_id_for(instance_id, seq)).values(values)
            )
        closed = _CLOSED_BY_SERVER.get(description.status) if description.status else None
        if closed is not None:
            at = description.close_time or datetime.now(UTC)
            await close_instances(conn, [instance_id], closed, at, _server_close_error(closed, history))
    return instance_id


def _server_close_error(status: WorkflowStatus, history: WorkflowHistory) -> str:
    """The instance error for a close the workflow could not report (as the client writes it)."""
    if status is WorkflowStatus.TERMINATED:
        reason = ""
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
                reason = event.workflow_execution_terminated_event_attributes.reason
        return termination_error(reason)
    return TIMEOUT_ERROR
