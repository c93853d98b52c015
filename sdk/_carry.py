"""The workflow-side half of carrying events in step activities' headers.

Workflow code decides which events a step activity carries
(:meth:`sdk._runtime.WorkflowRuntime.carry`); this outbound interceptor, installed by
``worker.create_worker``, puts them in the activity's ``dwf-events`` header. It changes no
command (headers are not part of replay's comparison), so a worker or ``Replayer`` without
it behaves the same apart from the header.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.worker import (
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from ._runtime import CARRY_HEADER, WorkflowRuntime

__all__ = ["CarryInbound", "carry_interceptor_class"]


class _CarryOutbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        runtime = getattr(workflow.instance(), "_dwf", None)
        if isinstance(runtime, WorkflowRuntime) and input.activity_id is not None:
            batch = runtime.take_outbox(input.activity_id)
            if batch is not None:
                input.headers = {
                    **input.headers,
                    CARRY_HEADER: workflow.payload_converter().to_payload(batch),
                }
        return super().start_activity(input)


class CarryInbound(WorkflowInboundInterceptor):
    """Wraps the outbound side with :class:`_CarryOutbound`."""

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_CarryOutbound(outbound))


def carry_interceptor_class(input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
    """``Interceptor.workflow_interceptor_class`` for workers of durable-workflows definitions."""
    return CarryInbound
