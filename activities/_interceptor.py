"""The activity-side interceptor: each machine-step attempt is mirrored as it happens.

It runs outside the sandbox, once per attempt. The step's row id comes from the activity id
the workflow gave the step (``step-<seq>``) and the run id, the same derivation workflow code
and a rebuild use, so every writer lands on the same row.

A failure to record the *start* of an attempt fails the attempt before the author's code
runs (nothing happened yet; Temporal retries). A failure to record its *end* is logged and
counted, never turned into a failed attempt (that would repeat side effects); the workflow's
own StepCompleted/StepFailed event, published at its next flush, repairs the row.
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
)

from sdk._definition import MachineStep
from sdk._ids import instance_id_for, seq_from_activity_id, step_execution_id_for
from sdk._registry import registry
from sdk._runtime import as_data, jsonable

from ._mirror import MirrorWriter

__all__ = ["MirrorInterceptor"]

logger = logging.getLogger("dwf.mirror")


class MirrorInterceptor(Interceptor):
    """Worker interceptor that mirrors machine-step attempts through a :class:`MirrorWriter`."""

    def __init__(self, writer: MirrorWriter) -> None:
        self.writer = writer

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _MirrorActivityInbound(next, self.writer)


class _MirrorActivityInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, writer: MirrorWriter) -> None:
        super().__init__(next)
        self._writer = writer

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        seq = None if info.is_local else seq_from_activity_id(info.activity_id)
        step = registry.steps.get(info.activity_type)
        if seq is None or not isinstance(step, MachineStep) or not info.workflow_run_id:
            return await self.next.execute_activity(input)
        instance_id = instance_id_for(info.workflow_run_id)
        row_id = step_execution_id_for(instance_id, seq)
        try:
            await self._writer.step_attempt_started(
                step_execution_id=row_id,
                instance_id=instance_id,
                workflow_id=info.workflow_id or "",
                step_name=step.name,
                step_seq=seq,
                attempt=info.attempt,
                input_data=as_data(list(input.args)),
                started_at=info.started_time if info.started_time.tzinfo else datetime.now(UTC),
            )
        except IntegrityError:
            # The instance row is not committed yet (a step started alongside the first
            # publish): the workflow's own StepStarted/StepCompleted events create the row.
            logger.warning(
                "step %s started before its instance row existed; the workflow's events will", row_id
            )
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

    async def _finish(
        self,
        row_id: Any,
        attempt: int,
        *,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        final: bool = False,
    ) -> None:
        try:
            await self._writer.step_attempt_finished(
                step_execution_id=row_id, attempt=attempt, output_data=output, error=error, final=final
            )
        except Exception:
            logger.warning("could not mirror the end of step attempt %s; the workflow's event will", row_id)


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
