"""The base class of every compiled workflow: its signals, updates and queries.

Handler names are part of the public protocol, usable from any Temporal client:

- signal ``complete_task`` ``{"task_id", "user", "data", "comment"?, "groups"?, "admin"?}``
- update ``complete_task_update`` (same payload; rejected synchronously when invalid)
- signals ``pause`` / ``resume`` ``{"by"?, "reason"?}``, ``cancel_requested`` ``{"by"?, "reason"?}``
- query ``state`` (:class:`sdk.InstanceState`)
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from ._runtime import WorkflowRuntime
from ._types import InstanceState, TaskInfo

__all__ = ["DurableWorkflowBase"]


def _text(payload: Any, key: str) -> str | None:
    value = payload.get(key) if isinstance(payload, dict) else None
    return None if value is None else str(value)


class DurableWorkflowBase:
    """Handlers shared by all compiled workflows; the runtime lives in ``self._dwf``."""

    def __init__(self) -> None:
        self._dwf = WorkflowRuntime()

    @workflow.signal(name="complete_task")
    def complete_task(self, payload: Any) -> None:
        """Complete a human task; an invalid payload is recorded and the task stays pending."""
        self._dwf.apply_completion(payload, strict=False)

    @workflow.update(name="complete_task_update")
    def complete_task_update(self, payload: Any) -> TaskInfo:
        """Complete a human task and return it; refused with a specific error type otherwise."""
        return self._dwf.apply_completion(payload, strict=True)

    @complete_task_update.validator
    def _validate_complete_task(self, payload: Any) -> None:
        try:
            self._dwf.check_completion(payload)
        except Exception as rejected:
            to_error = getattr(rejected, "to_application_error", None)
            raise (to_error() if to_error else rejected) from None

    @workflow.signal(name="pause")
    async def pause(self, payload: Any = None) -> None:
        """Hold the instance before its next step."""
        if self._dwf.set_paused(True, _text(payload, "by"), _text(payload, "reason")):
            await self._dwf.flush()

    @workflow.signal(name="resume")
    async def resume(self, payload: Any = None) -> None:
        """Let a paused instance go on."""
        if self._dwf.set_paused(False, _text(payload, "by"), _text(payload, "reason")):
            await self._dwf.flush()

    @workflow.signal(name="cancel_requested")
    def cancel_requested(self, payload: Any = None) -> None:
        """Who cancels and why; the SDK client sends it just before Temporal's cancel."""
        self._dwf.cancel_reason = _text(payload, "reason")
        self._dwf.canceled_by = _text(payload, "by")

    @workflow.query(name="state")
    def state(self) -> InstanceState:
        """The instance's status, current step, tasks and recent rejections."""
        return self._dwf.state()
