"""The base class of every compiled workflow: its signals, updates and queries.

Handler names are part of the public protocol (``sdk.protocol``), usable from any Temporal
client; every command acting as a user must be signed by the application's client (see
``docs/security.md``):

- signal ``complete_task`` ``{"task_id", "user", "data", "comment"?, "groups"?, "admin"?,
  "tenant_id"?, "auth"}``; update ``complete_task_update`` (same payload, refused synchronously)
- signals ``claim_task``, ``release_task``, ``reassign_task``, ``comment_task``, ``escalate_task`` and the
  matching ``*_update`` updates ``{"task_id", "user", "groups"?, "admin"?, "tenant_id"?,
  "to_user"?, "to_group"?, "reason"?, "body"?, "auth"}``
- signal ``vote_task`` and update ``vote_task_update`` (a completion's payload): a vote on a
  quorum task; signal ``prioritize_task`` and update ``prioritize_task_update`` (a task
  command's payload with ``priority``? and ``follow_up_at``?, ``reason``?)
- signals ``pause`` / ``resume`` / ``cancel_requested`` ``{"user"?, "reason"?, "groups"?,
  "admin"?, "tenant_id"?, "auth"}``
- signal ``external_event`` ``{"event", "key", "payload"?}``: an event for a waiting event step
- query ``state`` (:class:`sdk.InstanceState`)

Every handler takes its arguments as they come (``*args``) and refuses a wrong shape itself:
a signal with two arguments must not fail the workflow task.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from ._approvals import APPROVAL_ACTIONS
from ._commands import one_payload
from ._errors import Refusal
from ._runtime import WorkflowRuntime
from ._types import InstanceAction, InstanceState, TaskAction, TaskInfo
from ._waits import receive_event
from .protocol import (
    CANCEL_SIGNAL,
    COMPLETE_SIGNAL,
    COMPLETE_UPDATE,
    EVENT_SIGNAL,
    PAUSE_SIGNAL,
    RESUME_SIGNAL,
    STATE_QUERY,
    task_signal,
    task_update,
)

__all__ = ["DurableWorkflowBase"]

_ABANDON = workflow.HandlerUnfinishedPolicy.ABANDON


def _accepted(task: TaskInfo | None) -> TaskInfo:
    # With strict=True a refusal raises, so an update always has its task here.
    if task is None:
        raise RuntimeError("a refused update returned instead of raising")
    return task


class DurableWorkflowBase:
    """Handlers shared by all compiled workflows; the runtime lives in ``self._dwf``."""

    def __init__(self) -> None:
        self._dwf = WorkflowRuntime()

    # -- shared bodies --------------------------------------------------------------------

    async def _task_signal(self, action: TaskAction, args: tuple[Any, ...]) -> None:
        """A signal: parse, verify (recorded), apply; any refusal becomes a rejection."""
        dwf = self._dwf
        try:
            payload = one_payload(args, task_signal(action))
        except Refusal as refusal:
            dwf.record_rejection(None, None, refusal)
            return
        try:
            await dwf.verify_recorded(action.value, payload)
        except Refusal as refusal:
            dwf.refuse(payload, refusal, strict=False)
            return
        if action is TaskAction.COMPLETE:
            dwf.apply_completion(payload, strict=False)
            await dwf.flush_soon()
        else:
            dwf.apply_command(action, payload, strict=False)
            await dwf.flush()

    def _task_validate(self, action: TaskAction, args: tuple[Any, ...]) -> None:
        """An update's validator: the only place its signature is verified (not on replay)."""
        dwf = self._dwf
        try:
            payload = one_payload(args, task_update(action))
            dwf.verify_now(action.value, payload)
            if action is TaskAction.COMPLETE:
                dwf.check_completion(payload)
            elif action in APPROVAL_ACTIONS:
                dwf.check_approval(action, payload)
            else:
                dwf.check_command(action, payload)
        except Refusal as refusal:
            raise refusal.to_application_error() from None

    async def _task_update(self, action: TaskAction, args: tuple[Any, ...]) -> TaskInfo:
        """An update's handler: apply what the validator accepted; the mirror shows it first."""
        dwf = self._dwf
        try:
            payload = one_payload(args, task_update(action))
            dwf.accept_once(payload)  # the validator verified it; two at once: one wins
        except Refusal as refusal:
            raise refusal.to_application_error() from None
        if action is TaskAction.COMPLETE:
            task = dwf.apply_completion(payload, strict=True)
        else:
            task = dwf.apply_command(action, payload, strict=True)
        await dwf.flush()  # the mirror shows the change before the caller hears back
        return _accepted(task)

    async def _control(
        self, action: InstanceAction, name: str, args: tuple[Any, ...]
    ) -> tuple[str | None, str | None] | None:
        """Pause or resume: (user, reason) once verified and allowed, else None (recorded)."""
        dwf = self._dwf
        try:
            payload = one_payload(args, name)
        except Refusal as refusal:
            dwf.record_rejection(None, None, refusal)
            return None
        try:
            await dwf.verify_recorded(action.value, payload)
            command = dwf.check_control(payload)
        except Refusal as refusal:
            dwf.record_rejection(None, payload.get("user"), refusal)
            return None
        return command.user, command.reason

    # -- complete -------------------------------------------------------------------------

    @workflow.signal(unfinished_policy=_ABANDON, name=COMPLETE_SIGNAL)
    async def complete_task(self, *args: Any) -> None:
        """Complete a human task; an invalid payload is recorded and the task stays pending."""
        await self._task_signal(TaskAction.COMPLETE, args)

    @workflow.update(unfinished_policy=_ABANDON, name=COMPLETE_UPDATE)
    async def complete_task_update(self, *args: Any) -> TaskInfo:
        """Complete a human task and return it; refused with a specific error type otherwise."""
        return await self._task_update(TaskAction.COMPLETE, args)

    @complete_task_update.validator
    def _validate_complete_task(self, *args: Any) -> None:
        self._task_validate(TaskAction.COMPLETE, args)

    # Claim, release, reassign, comment: a signal for any Temporal client, and an update
    # (answered synchronously, race-free) for the SDK's client.

    @workflow.signal(unfinished_policy=_ABANDON, name=task_signal(TaskAction.CLAIM))
    async def claim_task(self, *args: Any) -> None:
        """Claim a task for the sending user (a member of its group)."""
        await self._task_signal(TaskAction.CLAIM, args)

    @workflow.update(unfinished_policy=_ABANDON, name=task_update(TaskAction.CLAIM))
    async def claim_task_update(self, *args: Any) -> TaskInfo:
        """Claim a task; of two concurrent claims exactly one succeeds."""
        return await self._task_update(TaskAction.CLAIM, args)

    @claim_task_update.validator
    def _validate_claim(self, *args: Any) -> None:
        self._task_validate(TaskAction.CLAIM, args)

    @workflow.signal(unfinished_policy=_ABANDON, name=task_signal(TaskAction.RELEASE))
    async def release_task(self, *args: Any) -> None:
        """Give a claimed task back to its group."""
        await self._task_signal(TaskAction.RELEASE, args)

    @workflow.update(unfinished_policy=_ABANDON, name=task_update(TaskAction.RELEASE))
    async def release_task_update(self, *args: Any) -> TaskInfo:
        """Give a claimed task back to its group."""
        return await self._task_update(TaskAction.RELEASE, args)

    @release_task_update.validator
    def _validate_release(self, *args: Any) -> None:
        self._task_validate(TaskAction.RELEASE, args)

    @workflow.signal(unfinished_policy=_ABANDON, name=task_signal(TaskAction.REASSIGN))
    async def reassign_task(self, *args: Any) -> None:
        """Move a task to another user and/or group, with a reason."""
        await self._task_signal(TaskAction.REASSIGN, args)

    @workflow.update(unfinished_policy=_ABANDON, name=task_update(TaskAction.REASSIGN))
    async def reassign_task_update(self, *args: Any) -> TaskInfo:
        """Move a task to another user and/or group, with a reason."""
        return await self._task_update(TaskAction.REASSIGN, args)

    @reassign_task_update.validator
    def _validate_reassign(self, *args: Any) -> None:
        self._task_validate(TaskAction.REASSIGN, args)

    @workflow.signal(unfinished_policy=_ABANDON, name=task_signal(TaskAction.COMMENT))
    async def comment_task(self, *args: Any) -> None:
        """Add a comment to a task."""
        await self._task_signal(TaskAction.COMMENT, args)

    @workflow.update(unfinished_policy=_ABANDON, name=task_update(TaskAction.COMMENT))
    async def comment_task_update(self, *args: Any) -> TaskInfo:
        """Add a comment to a task."""
        return await self._task_update(TaskAction.COMMENT, args)

    @comment_task_update.validator
    def _validate_comment(self, *args: Any) -> None:
        self._task_validate(TaskAction.COMMENT, args)

    # Approval policies: a vote on a quorum task; a priority or follow-up change.

    @workflow.signal(unfinished_policy=_ABANDON, name=task_signal(TaskAction.VOTE))
    async def vote_task(self, *args: Any) -> None:
        """Vote on a quorum task with its form (each eligible user once)."""
        await self._task_signal(TaskAction.VOTE, args)

    @workflow.update(unfinished_policy=_ABANDON, name=task_update(TaskAction.VOTE))
    async def vote_task_update(self, *args: Any) -> TaskInfo:
        """Vote on a quorum task; answers with the task (closed when the vote decided it)."""
        return await self._task_update(TaskAction.VOTE, args)

    @vote_task_update.validator
    def _validate_vote(self, *args: Any) -> None:
        self._task_validate(TaskAction.VOTE, args)

    @workflow.signal(unfinished_policy=_ABANDON, name=task_signal(TaskAction.PRIORITIZE))
    async def prioritize_task(self, *args: Any) -> None:
        """Change a task's priority and/or follow-up date (audited)."""
        await self._task_signal(TaskAction.PRIORITIZE, args)

    @workflow.update(unfinished_policy=_ABANDON, name=task_update(TaskAction.PRIORITIZE))
    async def prioritize_task_update(self, *args: Any) -> TaskInfo:
        """Change a task's priority and/or follow-up date (audited)."""
        return await self._task_update(TaskAction.PRIORITIZE, args)

    @prioritize_task_update.validator
    def _validate_prioritize(self, *args: Any) -> None:
        self._task_validate(TaskAction.PRIORITIZE, args)

    @workflow.signal(unfinished_policy=_ABANDON, name=task_signal(TaskAction.ESCALATE))
    async def escalate_task(self, *args: Any) -> None:
        """Move a task to the next link of its escalation chain now."""
        await self._task_signal(TaskAction.ESCALATE, args)

    @workflow.update(unfinished_policy=_ABANDON, name=task_update(TaskAction.ESCALATE))
    async def escalate_task_update(self, *args: Any) -> TaskInfo:
        """Move a task to the next link of its escalation chain now; refused when none is left."""
        return await self._task_update(TaskAction.ESCALATE, args)

    @escalate_task_update.validator
    def _validate_escalate(self, *args: Any) -> None:
        self._task_validate(TaskAction.ESCALATE, args)

    # -- the instance ---------------------------------------------------------------------

    @workflow.signal(unfinished_policy=_ABANDON, name=PAUSE_SIGNAL)
    async def pause(self, *args: Any) -> None:
        """Hold the instance before its next step."""
        allowed = await self._control(InstanceAction.PAUSE, PAUSE_SIGNAL, args)
        if allowed is not None and self._dwf.set_paused(True, *allowed):
            await self._dwf.flush()

    @workflow.signal(unfinished_policy=_ABANDON, name=RESUME_SIGNAL)
    async def resume(self, *args: Any) -> None:
        """Let a paused instance go on."""
        allowed = await self._control(InstanceAction.RESUME, RESUME_SIGNAL, args)
        if allowed is not None and self._dwf.set_paused(False, *allowed):
            await self._dwf.flush()

    @workflow.signal(unfinished_policy=_ABANDON, name=CANCEL_SIGNAL)
    async def cancel_requested(self, *args: Any) -> None:
        """Who cancels and why; the SDK client sends it just before Temporal's cancel.

        Verified like every signal (its verdict recorded, so a rebuild of the mirror from history
        finds the same note); the cancellation waits for a note still being verified.
        """
        dwf = self._dwf
        dwf.cancel_notes_pending += 1
        try:
            payload = one_payload(args, CANCEL_SIGNAL)
            await dwf.verify_recorded(InstanceAction.CANCEL.value, payload)
            command = dwf.check_control(payload)
            dwf.cancel_reason, dwf.canceled_by = command.reason, command.user
        except Refusal as refusal:
            dwf.record_rejection(None, None, refusal)
        finally:
            dwf.cancel_notes_pending -= 1

    @workflow.signal(unfinished_policy=_ABANDON, name=EVENT_SIGNAL)
    def external_event(self, *args: Any) -> None:
        """An external event ``{"event", "key", "payload"}`` for an event step (kept until one waits)."""
        receive_event(self._dwf, args)

    @workflow.query(name=STATE_QUERY)
    def state(self) -> InstanceState:
        """The instance's status, current step, tasks and recent rejections."""
        return self._dwf.state()
