"""The workflow-side half of carrying events in step activities' headers.

Workflow code decides which events a step activity carries
(:meth:`sdk._runtime.WorkflowRuntime.carry`); this outbound interceptor, installed by
``worker.create_worker``, puts them in the activity's ``dwf-events`` header. It changes no
command (headers are not part of replay's comparison), so a worker or ``Replayer`` without
it behaves the same apart from the header.

Local steps (``@machine_step(local=True)``) carry events too. Their activity runs on this
worker before the workflow task completes, so the events reach the mirror no later than with
a regular step; were that task lost, its retry emits the same events (same ids, a later
position), as it would for the ``dwf.publish_events`` local activity.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.worker import (
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from ._runtime import WorkflowRuntime
from ._types import EventBatch
from .protocol import CARRY_HEADER

__all__ = ["CarryInbound", "carry_interceptor_class", "take_carried"]


def take_carried(input: StartActivityInput | StartLocalActivityInput) -> EventBatch | None:
    """The events the activity being started carries (once; None for other activities)."""
    runtime = getattr(workflow.instance(), "_dwf", None)
    if not isinstance(runtime, WorkflowRuntime) or input.activity_id is None:
        return None
    return runtime.take_outbox(input.activity_id)


def _add_carried(input: StartActivityInput | StartLocalActivityInput) -> None:
    batch = take_carried(input)
    if batch is not None:
        input.headers = {**input.headers, CARRY_HEADER: workflow.payload_converter().to_payload(batch)}


class _CarryOutbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        _add_carried(input)
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
        # A local step (``@machine_step(local=True)``) carries them the same way: the header
        # reaches the activity interceptor of this worker on every attempt (a retry after a
        # timer backoff schedules the same input again).
        _add_carried(input)
        return super().start_local_activity(input)


class CarryInbound(WorkflowInboundInterceptor):
    """Wraps the outbound side with :class:`_CarryOutbound`."""

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_CarryOutbound(outbound))


def carry_interceptor_class(input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
    """``Interceptor.workflow_interceptor_class`` for workers of durable-workflows definitions."""
    return CarryInbound
