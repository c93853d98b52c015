"""Approval policies, workflow side: quorum votes, separation of duties, priority, delegation.

Runs inside the Temporal sandbox: deterministic, no I/O. When a human step creates its task,
:func:`resolve_policy` fixes who may not decide it (the instance's starter, whoever completed
named earlier steps), its voters, priority and follow-up date; :func:`delegate_task` asks who
stands in for an absent assignee or voter through a local activity, whose answer Temporal
records, so a replay hands the task to the same substitute. :class:`ApprovalCommands` takes
votes and priority changes, checked by the shared policy (``sdk._policy``) like every command.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from . import events as ev
from ._commands import TaskCommands, _identity, _parse
from ._errors import Refusal
from ._ids import vote_id_for
from ._policy import check_form, check_priority, check_task_command, check_text
from ._types import (
    QuorumDecision,
    TaskAction,
    TaskCommand,
    TaskCompletion,
    TaskInfo,
    TaskStatus,
    TaskVote,
)
from .protocol import DELEGATION_ACTIVITY, DELEGATION_PATCH

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._definition import HumanStepOptions
    from ._runtime import WorkflowRuntime

__all__ = [
    "APPROVAL_ACTIONS",
    "ApprovalCommands",
    "created_policy_fields",
    "delegate_task",
    "resolve_policy",
]

APPROVAL_ACTIONS = (TaskAction.VOTE, TaskAction.PRIORITIZE)
"""The task actions :class:`ApprovalCommands` handles."""

_SYSTEM_USER = "system"  # what the workflow decides by itself (as sdk._runtime.SYSTEM_USER)


def _value(value: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    return value(*args, **kwargs) if callable(value) else value


def excluded_users(rt: WorkflowRuntime, options: HumanStepOptions) -> dict[str, str]:
    """Who may not decide the new task, and why (separation of duties)."""
    excluded: dict[str, str] = {}
    if options.exclude_starter and rt.created_by:
        excluded[rt.created_by] = "started this instance"
    for earlier in rt.tasks.values():
        if earlier.step_name not in options.exclude_steps:
            continue
        for vote in earlier.votes:
            excluded.setdefault(vote.voter, f"voted on step {earlier.step_name!r}")
        if earlier.status is TaskStatus.COMPLETED and earlier.completed_by not in (None, _SYSTEM_USER):
            excluded.setdefault(str(earlier.completed_by), f"completed step {earlier.step_name!r}")
    return excluded


def resolve_policy(
    rt: WorkflowRuntime, options: HumanStepOptions, args: list[Any], kwargs: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The approval-policy fields of a new task (``TaskInfo`` keyword arguments).

    Raises:
        ValueError: A computed priority, follow-up date or voter list is not usable (the
            step's function returned something wrong: the workflow fails, naming it).
    """
    fields: dict[str, Any] = {"excluded_users": excluded_users(rt, options)}
    priority = _value(options.priority, args, kwargs)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 100:
        raise ValueError(f"priority must be an int from 0 to 100, the step's function gave {priority!r}")
    fields["priority"] = priority
    follow_up = _value(options.follow_up_in, args, kwargs)
    if isinstance(follow_up, timedelta):
        follow_up = now + follow_up
    if follow_up is not None and not (isinstance(follow_up, datetime) and follow_up.utcoffset() is not None):
        raise ValueError(f"follow_up_in must give a timedelta or an aware datetime, got {follow_up!r}")
    fields["follow_up_at"] = follow_up
    if options.quorum is not None:
        fields["quorum"] = options.quorum
        fields["reject_on"] = options.reject_on
        voters = _value(options.voters, args, kwargs)
        if voters is not None:
            if isinstance(voters, str) or not all(isinstance(v, str) and v for v in voters):
                raise ValueError(f"voters must be a list of user ids, the step's function gave {voters!r}")
            fields["voters"] = [v for v in dict.fromkeys(voters) if v not in fields["excluded_users"]]
    return fields


def created_policy_fields(task: TaskInfo) -> dict[str, Any]:
    """The approval-policy fields of ``HumanTaskCreated`` for ``task``."""
    return {
        "quorum": task.quorum,
        "reject_on": task.reject_on,
        "voters": task.voters,
        "excluded_users": task.excluded_users or None,
        "priority": task.priority,
        "follow_up_at": task.follow_up_at,
        "on_behalf_of": task.on_behalf_of,
        "voters_on_behalf": task.voters_on_behalf or None,
    }


async def delegate_task(rt: WorkflowRuntime, task: TaskInfo) -> None:
    """Hand the new task to the substitutes of absent users (assignee and listed voters).

    The delegation table is read by a local activity, so Temporal records the answer and a
    replay hands the task over the same way. Only tasks naming users ask (a group task has no
    one to stand in for); instances started before this (no patch marker) never ask. When
    the answer cannot be had (no mirror, the database down), the task stays with its users.
    A substitute the step excludes (separation of duties) is not used.
    """
    users = [u for u in [task.assignee_id, *(task.voters or [])] if u]
    if not users or not workflow.patched(DELEGATION_PATCH):
        return
    before = workflow.now()
    await _hand_over_at_creation(rt, task, users)
    # The lookup took workflow time: the task is created now, its deadlines count from now.
    shift = workflow.now() - before
    if shift:
        for name in ("created_at", "due_at", "reminder_at", "follow_up_at"):
            value = getattr(task, name)
            if value is not None:
                setattr(task, name, value + shift)


async def _hand_over_at_creation(rt: WorkflowRuntime, task: TaskInfo, users: list[str]) -> None:
    request = {"tenant_id": rt.tenant_id, "users": users, "at": workflow.now().isoformat()}
    try:
        answer = await workflow.execute_local_activity(
            DELEGATION_ACTIVITY,
            request,
            result_type=dict,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
    except ActivityError as exc:
        workflow.logger.warning("delegations of task %s not read: %s", task.task_id, exc.cause or exc)
        return
    substitutes = answer.get("substitutes") if isinstance(answer, dict) else None
    if not isinstance(substitutes, dict):
        return

    def usable(user: str | None) -> str | None:
        sub = substitutes.get(user) if user else None
        ok = isinstance(sub, str) and sub and sub != user and sub not in task.excluded_users
        return sub if ok else None

    sub = usable(task.assignee_id)
    if sub is not None:
        task.on_behalf_of, task.assignee_id = task.assignee_id, sub
    if task.voters:
        voters: list[str] = []
        for voter in task.voters:
            stand_in = usable(voter)
            if stand_in is not None and stand_in not in task.voters and stand_in not in voters:
                task.voters_on_behalf[stand_in] = voter
                voters.append(stand_in)
            else:
                voters.append(voter)
        task.voters = voters


class ApprovalCommands(TaskCommands):
    """Votes and priority changes (a base of :class:`sdk._runtime.WorkflowRuntime`)."""

    def __init__(self) -> None:
        super().__init__()
        self.vote_fields: dict[str, str] = {}
        """The form field holding the vote, by quorum task id."""

    def check_approval(self, action: TaskAction, payload: dict[str, Any]) -> TaskInfo:
        """Validate a vote or a priority change; raise :class:`Refusal` if refused."""
        if action is TaskAction.VOTE:
            return self.check_vote(payload)[0]
        return self.check_prioritize(payload)[0]

    def apply_command(self, action: TaskAction, payload: dict[str, Any], *, strict: bool) -> TaskInfo | None:
        """Apply any task command but a completion (see :meth:`TaskCommands.apply_completion`)."""
        if action not in APPROVAL_ACTIONS:
            return super().apply_command(action, payload, strict=strict)
        try:
            if action is TaskAction.VOTE:
                task, ballot, value = self.check_vote(payload)
            else:
                task, command = self.check_prioritize(payload)
        except Refusal as refusal:
            self.refuse(payload, refusal, strict)
            return None
        if action is TaskAction.VOTE:
            self._vote(task, ballot, value)
        else:
            self._prioritize(task, command)
        return task

    # -- votes ----------------------------------------------------------------------------

    def check_vote(self, payload: dict[str, Any]) -> tuple[TaskInfo, TaskCompletion, BaseModel]:
        """Validate a vote (a completion payload under the ``vote`` action)."""
        ballot = _parse(TaskCompletion, payload, "vote")
        check_text(comment=ballot.comment)
        task = check_task_command(
            ballot.task_id,
            self._visible_task(ballot.task_id),
            TaskAction.VOTE,
            _identity(ballot),
            instance_tenant_id=self.tenant_id,
        )
        value = check_form(self.forms[task.task_id], ballot.data)
        return task, ballot, value

    def _vote(self, task: TaskInfo, ballot: TaskCompletion, value: BaseModel) -> None:
        task_uuid = UUID(task.task_id)
        field = self.vote_fields.get(task.task_id, "approved")
        vote = TaskVote(
            vote_id=str(vote_id_for(task_uuid, ballot.user)),
            voter=ballot.user,
            approved=bool(getattr(value, field)),
            data=value.model_dump(mode="json"),
            comment=ballot.comment,
            voted_at=workflow.now(),
            on_behalf_of=task.voters_on_behalf.get(ballot.user),
        )
        task.votes.append(vote)
        self.emit(
            ev.HumanTaskVoted,
            step_name=task.step_name,
            task_id=task_uuid,
            vote_id=UUID(vote.vote_id),
            voter=vote.voter,
            approved=vote.approved,
            form_data=vote.data,
            comment=vote.comment,
            on_behalf_of=vote.on_behalf_of,
        )
        self.resolve_quorum(task, ballot.user)

    def resolve_quorum(self, task: TaskInfo, by: str | None) -> None:
        """Close a quorum task once its outcome is decided (approved, or rejected by its rule).

        With listed voters a quorum that can no longer be reached rejects under either rule.
        """
        if task.quorum is None or task.status is not TaskStatus.PENDING:
            return
        approvals = sum(1 for vote in task.votes if vote.approved)
        rejections = len(task.votes) - approvals
        outstanding = None if task.voters is None else len(task.voters) - len(task.votes)
        unreachable = outstanding is not None and approvals + outstanding < task.quorum
        if approvals >= task.quorum:
            approved = True
        elif (task.reject_on == "first" and rejections) or unreachable:
            approved = False
        else:
            return
        decision = QuorumDecision(approved=approved, quorum=task.quorum, votes=list(task.votes))
        outcome = "approved" if approved else "rejected"
        comment = f"{outcome}: {approvals} of {task.quorum} approvals, {rejections} rejections"
        self._complete(task, decision, by or _SYSTEM_USER, comment)

    # -- priority and follow-up -----------------------------------------------------------

    def check_prioritize(self, payload: dict[str, Any]) -> tuple[TaskInfo, TaskCommand]:
        """Validate a priority or follow-up change."""
        command = _parse(TaskCommand, payload, TaskAction.PRIORITIZE.value)
        task = check_task_command(
            command.task_id,
            self._visible_task(command.task_id),
            TaskAction.PRIORITIZE,
            _identity(command),
            instance_tenant_id=self.tenant_id,
            reason=command.reason,
        )
        check_priority(command.priority, command.follow_up_at)
        return task, command

    def _prioritize(self, task: TaskInfo, command: TaskCommand) -> None:
        before_priority, before_follow_up = task.priority, task.follow_up_at
        if command.priority is not None:
            task.priority = command.priority
        if command.follow_up_at is not None:
            task.follow_up_at = command.follow_up_at
        self.emit(
            ev.HumanTaskPrioritized,
            step_name=task.step_name,
            task_id=UUID(task.task_id),
            changed_by=command.user,
            priority=task.priority,
            follow_up_at=task.follow_up_at,
            previous_priority=before_priority,
            previous_follow_up_at=before_follow_up,
            reason=command.reason,
        )
