"""The activity-side interceptor: each machine-step attempt is mirrored as it happens.

It also delivers the events a step activity carries in its ``dwf-events`` header (see
``sdk._runtime``): to the mirror, in the transaction that records the attempt's start, and
then to the application's event handlers.

It runs outside the sandbox, once per attempt, for local steps (``@machine_step(local=True)``)
as for regular ones: a local step's attempt runs inside the workflow task, so its two writes
(start, end) are part of that task's time. The step's row id comes from the activity id
the workflow gave the step (``step-<seq>``) and the run id, the same derivation workflow code
and a rebuild use, so every writer lands on the same row.

The mirror's availability never changes a step's outcome: each write waits a few seconds at
most (``MirrorWriter.commit_wait``); while the database is unavailable the writes stay queued
in the writer, in order, and the author's code runs meanwhile. No mirror failure fails an
attempt or spends its retries: a write refused for another reason is logged and counted, and
the workflow's own events, published at its next flush, repair the row.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from sdk import MachineStep, registry
from sdk.events import WorkflowEvent, event_from_dict
from sdk.mirror import MirrorWriter
from sdk.protocol import CARRY_HEADER
from sdk.runtime import (
    EventBatch,
    as_data,
    carry_interceptor_class,
    instance_id_for,
    jsonable,
    seq_from_activity_id,
    step_execution_id_for,
)

from ._publish import EventPublisher

__all__ = ["MirrorInterceptor"]

logger = logging.getLogger("dwf.mirror")


class MirrorInterceptor(Interceptor):
    """Worker interceptor: mirrors machine-step attempts and delivers the events steps carry.

    ``writer`` is the SQL mirror (None: no attempt rows); ``publisher`` receives the carried
    events (default: one writing to ``writer`` and calling no handler).
    """

    def __init__(
        self, writer: MirrorWriter | None = None, *, publisher: EventPublisher | None = None
    ) -> None:
        self.writer = writer
        self.publisher = publisher or EventPublisher((), writer)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _MirrorActivityInbound(next, self.writer, self.publisher)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return carry_interceptor_class(input)


def _carried(input: ExecuteActivityInput) -> tuple[EventBatch, list[WorkflowEvent]] | None:
    payload = input.headers.get(CARRY_HEADER)
    if payload is None:
        return None
    batch = activity.payload_converter().from_payload(payload, EventBatch)
    return batch, [event_from_dict(item) for item in batch.events]


class _MirrorActivityInbound(ActivityInboundInterceptor):
    def __init__(
        self, next: ActivityInboundInterceptor, writer: MirrorWriter | None, publisher: EventPublisher
    ) -> None:
        super().__init__(next)
        self._writer = writer
        self._publisher = publisher

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        # Local activities too: a local step (``@machine_step(local=True)``) has a row like any
        # other; the SDK's own local activities (publish, verify) are no registered step.
        seq = seq_from_activity_id(info.activity_id)
        step = registry.steps.get(info.activity_type)
        if seq is None or not isinstance(step, MachineStep) or not info.workflow_run_id:
            return await self.next.execute_activity(input)
        instance_id = instance_id_for(info.workflow_run_id)
        row_id = step_execution_id_for(instance_id, seq)
        carried = await self._carried_events(input, info.attempt, row_id)
        writer = self._writer
        mirrored = writer is not None and self._publisher.sink is writer
        if writer is not None:
            own = carried if mirrored else None
            await self._record_start(writer, input, info, step.name, seq, row_id, own)
        if carried is not None:
            await self._publisher.deliver(*carried)
        if writer is None:
            return await self.next.execute_activity(input)
        try:
            result = await self.next.execute_activity(input)
        except BaseException as err:
            final = _is_final(err, step, info.attempt)
            await self._finish(row_id, info.attempt, error=_describe(err), final=final)
            raise
        output = jsonable(result)
        await self._finish(
            row_id, info.attempt, output=output if isinstance(output, dict) else {"value": output}
        )
        return result

    async def _record_start(
        self,
        writer: MirrorWriter,
        input: ExecuteActivityInput,
        info: activity.Info,
        step_name: str,
        seq: int,
        row_id: Any,
        carried: tuple[EventBatch, list[WorkflowEvent]] | None,
    ) -> None:
        """Mirror the attempt's start (and the carried events); never fails the attempt."""
        instance_id = instance_id_for(info.workflow_run_id or "")
        try:
            await writer.step_attempt_started(
                step_execution_id=row_id,
                instance_id=instance_id,
                workflow_id=info.workflow_id or "",
                step_name=step_name,
                step_seq=seq,
                attempt=info.attempt,
                input_data=as_data(list(input.args)),
                started_at=info.started_time if info.started_time.tzinfo else datetime.now(UTC),
                carried=carried,
                wait=writer.commit_wait,
            )
        except IntegrityError:
            # The instance row is not committed yet (a step started alongside the first
            # publish): the workflow's own StepStarted/StepCompleted events create the row.
            logger.warning(
                "step %s started before its instance row existed; the workflow's events will", row_id
            )
            if carried is not None:
                try:
                    await writer.write_batch(*carried, wait=writer.commit_wait)
                except Exception as exc:
                    logger.warning("could not mirror the events step %s carried: %s", row_id, exc)
        except Exception as exc:
            logger.warning("could not mirror the start of step attempt %s: %s", row_id, exc)

    async def _carried_events(
        self, input: ExecuteActivityInput, attempt: int, row_id: Any
    ) -> tuple[EventBatch, list[WorkflowEvent]] | None:
        """The carried events this attempt writes to the mirror and hands to the handlers.

        The first attempt takes them all. A retry skips them when the mirror shows the
        step's row (an earlier attempt, or a publish, committed them in one transaction with
        it); another sink gets them again on every attempt (sinks are idempotent), and the
        handlers with it; with no sink at all, only the first attempt delivers them.
        """
        carried = _carried(input)
        if carried is None:
            return None
        sink = self._publisher.sink
        if sink is not None and sink is self._writer:
            if attempt > 1 and await self._writer.step_recorded(row_id):
                return None
            return carried  # written with the attempt's row
        if sink is not None:
            await sink.write_batch(*carried)  # an application's sink: its failure retries
            return carried
        return carried if attempt == 1 else None

    async def _finish(
        self,
        row_id: Any,
        attempt: int,
        *,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        final: bool = False,
    ) -> None:
        if self._writer is None:
            return
        try:
            await self._writer.step_attempt_finished(
                step_execution_id=row_id,
                attempt=attempt,
                output_data=output,
                error=error,
                final=final,
                wait=self._writer.commit_wait,
            )
        except Exception as exc:
            logger.warning(
                "could not mirror the end of step attempt %s (%s); the workflow's event will", row_id, exc
            )


def _describe(err: BaseException) -> str:
    """``Type: message``, as workflow code reports the same failure (StepFailed)."""
    if isinstance(err, ApplicationError):
        return f"{err.type or type(err).__name__}: {err.message}"
    return f"{type(err).__name__}: {err}"


def _is_final(err: BaseException, step: MachineStep[..., Any], attempt: int) -> bool:
    """Whether Temporal will not retry after this error."""
    if isinstance(err, ApplicationError) and err.non_retryable:
        return True
    if type(err).__name__ in step.options.non_retryable_errors:
        return True
    if isinstance(err, ApplicationError) and err.type in step.options.non_retryable_errors:
        return True
    return step.options.max_attempts > 0 and attempt >= step.options.max_attempts
