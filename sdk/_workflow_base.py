"""The base class of every compiled workflow: its signals, updates and queries.

Handler names are part of the public protocol, usable from any Temporal client:

- signal ``complete_task`` ``{"task_id", "user", "data", "comment"?, "groups"?, "admin"?}``
- update ``complete_task_update`` (same payload; rejected synchronously when invalid)
- signals ``claim_task``, ``release_task``, ``reassign_task``, ``comment_task`` and the
  matching ``*_update`` updates ``{"task_id", "user", "groups"?, "admin"?, "tenant_id"?,
  "to_user"?, "to_group"?, "reason"?, "body"?}``
- signals ``pause`` / ``resume`` ``{"by"?, "reason"?}``, ``cancel_requested`` ``{"by"?, "reason"?}``
- query ``state`` (:class:`sdk.InstanceState`)
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from ._commands import Rejected
from ._runtime import WorkflowRuntime
from ._types import InstanceState, TaskAction, TaskInfo

__all__ = ["DurableWorkflowBase"]


def _text(payload: Any, key: str) -> str | None:
    value = payload.get(key) if isinstance(payload, dict) else None
    return None if value is None else str(value)


def _validate(runtime: WorkflowRuntime, action: TaskAction, payload: Any) -> None:
    try:
        runtime.check_command(action, payload)
    except Rejected as rejected:
        raise rejected.to_application_error() from None


def _accepted(task: TaskInfo | None) -> TaskInfo:
    # With strict=True a refusal raises, so an update always has its task here.
    if task is None:
        raise RuntimeError("a refused update returned instead of raising")
    return task


class DurableWorkflowBase:
    """Handlers shared by all compiled workflows; the runtime lives in ``self._dwf``."""

    def __init__(self) -> None:
        self._dwf = WorkflowRuntime()

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="complete_task")
    async def complete_task(self, payload: Any) -> None:
        """Complete a human task; an invalid payload is recorded and the task stays pending."""
        self._dwf.apply_completion(payload, strict=False)
        await self._dwf.flush_soon()

    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="complete_task_update")
    async def complete_task_update(self, payload: Any) -> TaskInfo:
        """Complete a human task and return it; refused with a specific error type otherwise."""
        task = self._dwf.apply_completion(payload, strict=True)
        await self._dwf.flush()  # the mirror shows the change before the caller hears back
        return _accepted(task)

    @complete_task_update.validator
    def _validate_complete_task(self, payload: Any) -> None:
        try:
            self._dwf.check_completion(payload)
        except Rejected as rejected:
            raise rejected.to_application_error() from None

    # Claim, release, reassign, comment: a signal for any Temporal client, and an update
    # (answered synchronously, race-free) for the SDK's client.

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="claim_task")
    async def claim_task(self, payload: Any) -> None:
        """Claim a task for the sending user (a member of its group)."""
        self._dwf.apply_command(TaskAction.CLAIM, payload, strict=False)
        await self._dwf.flush()

    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="claim_task_update")
    async def claim_task_update(self, payload: Any) -> TaskInfo:
        """Claim a task; of two concurrent claims exactly one succeeds."""
        task = self._dwf.apply_command(TaskAction.CLAIM, payload, strict=True)
        await self._dwf.flush()  # the mirror shows the change before the caller hears back
        return _accepted(task)

    @claim_task_update.validator
    def _validate_claim(self, payload: Any) -> None:
        _validate(self._dwf, TaskAction.CLAIM, payload)

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="release_task")
    async def release_task(self, payload: Any) -> None:
        """Give a claimed task back to its group."""
        self._dwf.apply_command(TaskAction.RELEASE, payload, strict=False)
        await self._dwf.flush()

    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="release_task_update")
    async def release_task_update(self, payload: Any) -> TaskInfo:
        """Give a claimed task back to its group."""
        task = self._dwf.apply_command(TaskAction.RELEASE, payload, strict=True)
        await self._dwf.flush()  # the mirror shows the change before the caller hears back
        return _accepted(task)

    @release_task_update.validator
    def _validate_release(self, payload: Any) -> None:
        _validate(self._dwf, TaskAction.RELEASE, payload)

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="reassign_task")
    async def reassign_task(self, payload: Any) -> None:
        """Move a task to another user and/or group, with a reason."""
        self._dwf.apply_command(TaskAction.REASSIGN, payload, strict=False)
        await self._dwf.flush()

    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="reassign_task_update")
    async def reassign_task_update(self, payload: Any) -> TaskInfo:
        """Move a task to another user and/or group, with a reason."""
        task = self._dwf.apply_command(TaskAction.REASSIGN, payload, strict=True)
        await self._dwf.flush()  # the mirror shows the change before the caller hears back
        return _accepted(task)

    @reassign_task_update.validator
    def _validate_reassign(self, payload: Any) -> None:
        _validate(self._dwf, TaskAction.REASSIGN, payload)

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="comment_task")
    async def comment_task(self, payload: Any) -> None:
        """Add a comment to a task."""
        self._dwf.apply_command(TaskAction.COMMENT, payload, strict=False)
        await self._dwf.flush()

    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="comment_task_update")
    async def comment_task_update(self, payload: Any) -> TaskInfo:
        """Add a comment to a task."""
        task = self._dwf.apply_command(TaskAction.COMMENT, payload, strict=True)
        await self._dwf.flush()  # the mirror shows the change before the caller hears back
        return _accepted(task)

    @comment_task_update.validator
    def _validate_comment(self, payload: Any) -> None:
        _validate(self._dwf, TaskAction.COMMENT, payload)

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="pause")
    async def pause(self, payload: Any = None) -> None:
        """Hold the instance before its next step."""
        if self._dwf.set_paused(True, _text(payload, "by"), _text(payload, "reason")):
            await self._dwf.flush()

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="resume")
    async def resume(self, payload: Any = None) -> None:
        """Let a paused instance go on."""
        if self._dwf.set_paused(False, _text(payload, "by"), _text(payload, "reason")):
            await self._dwf.flush()

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON, name="cancel_requested")
    def cancel_requested(self, payload: Any = None) -> None:
        """Who cancels and why; the SDK client sends it just before Temporal's cancel."""
        self._dwf.cancel_reason = _text(payload, "reason")
        self._dwf.canceled_by = _text(payload, "by")

    @workflow.query(name="state")
    def state(self) -> InstanceState:
        """The instance's status, current step, tasks and recent rejections."""
        return self._dwf.state()
