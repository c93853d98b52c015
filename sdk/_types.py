"""Domain types shared by workflow code, the client and the mirror.

Everything here is sandbox safe (pydantic models and enums, no I/O), because workflow
code imports it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ENDED_STATUSES",
    "ControlCommand",
    "EventBatch",
    "InstanceAction",
    "InstanceState",
    "QuorumDecision",
    "Rejection",
    "StepStatus",
    "StepType",
    "TaskAction",
    "TaskCommand",
    "TaskComment",
    "TaskCompletion",
    "TaskInfo",
    "TaskStatus",
    "TaskVote",
    "WorkflowStatus",
]


class WorkflowStatus(StrEnum):
    """Status of a workflow instance (``workflow_instances.status``)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"
    TIMED_OUT = "TIMED_OUT"


ENDED_STATUSES = frozenset(
    {
        WorkflowStatus.COMPLETED,
        WorkflowStatus.FAILED,
        WorkflowStatus.CANCELED,
        WorkflowStatus.TERMINATED,
        WorkflowStatus.TIMED_OUT,
    }
)
"""The statuses of an instance that has ended: no step runs and no task opens any more."""


class StepStatus(StrEnum):
    """Status of one step execution (``workflow_step_executions.status``)."""

    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELED = "CANCELED"


class StepType(StrEnum):
    """Kind of step (``workflow_step_executions.step_type``)."""

    MACHINE = "MACHINE"
    HUMAN = "HUMAN"
    TIMER = "TIMER"
    WEBHOOK = "WEBHOOK"
    GATEWAY = "GATEWAY"


class TaskStatus(StrEnum):
    """Status of a human task (``workflow_human_tasks.status``)."""

    PENDING = "pending"
    COMPLETED = "completed"
    CANCELED = "canceled"
    EXPIRED = "expired"


class TaskAction(StrEnum):
    """What a user asks of a human task."""

    COMPLETE = "complete"
    CLAIM = "claim"
    RELEASE = "release"
    REASSIGN = "reassign"
    COMMENT = "comment"
    VOTE = "vote"
    """A vote on a quorum task (the step's form, one per eligible user)."""
    PRIORITIZE = "prioritize"
    """A change of the task's priority and/or follow-up date (audited)."""
    ESCALATE = "escalate"
    """Move the task to the next link of its escalation chain now."""


class InstanceAction(StrEnum):
    """What a user asks of a whole instance."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


class TaskCompletion(BaseModel):
    """Payload of the ``complete_task`` signal and update.

    Any Temporal client may send it (``temporal workflow signal --name complete_task``),
    so workflow code validates it field by field and records a rejection instead of failing.
    """

    model_config = ConfigDict(extra="forbid")

    task_id: str
    user: str = Field(min_length=1)
    data: dict[str, Any] = Field(default_factory=dict)
    comment: str | None = None
    groups: list[str] = Field(default_factory=list)
    admin: bool = False
    tenant_id: str | None = None
    auth: dict[str, Any] | None = None
    """The client's signature (``sdk._signing.CommandAuth``); see ``docs/security.md``."""


class TaskCommand(BaseModel):
    """Payload of the ``claim_task``, ``release_task``, ``reassign_task`` and ``comment_task``
    signals and updates (``to_user``/``to_group``/``reason`` for reassign, ``body`` for comment).
    """

    model_config = ConfigDict(extra="forbid")

    task_id: str
    user: str = Field(min_length=1)
    groups: list[str] = Field(default_factory=list)
    admin: bool = False
    tenant_id: str | None = None
    to_user: str | None = None
    to_group: str | None = None
    reason: str | None = None
    body: str | None = None
    priority: int | None = None
    """For ``prioritize``: the new priority (0-100), None keeps it."""
    follow_up_at: datetime | None = None
    """For ``prioritize``: the new follow-up date, None keeps it."""
    on_behalf_of: str | None = None
    """For ``reassign``: a delegation's handover, for the absent assignee (who must hold it)."""
    auth: dict[str, Any] | None = None


class ControlCommand(BaseModel):
    """Payload of the ``pause``, ``resume`` and ``cancel_requested`` signals."""

    model_config = ConfigDict(extra="forbid")

    user: str | None = None
    groups: list[str] = Field(default_factory=list)
    admin: bool = False
    tenant_id: str | None = None
    reason: str | None = None
    auth: dict[str, Any] | None = None


class TaskComment(BaseModel):
    """A comment on a task, in the order it was received."""

    comment_id: str
    author: str
    body: str
    posted_at: datetime


class TaskVote(BaseModel):
    """One vote on a quorum task, in the order the workflow received it."""

    vote_id: str
    voter: str
    """Who voted (a substitute voting for an absent user: the substitute)."""
    approved: bool
    data: dict[str, Any] = Field(default_factory=dict)
    """The step's form, as submitted."""
    comment: str | None = None
    voted_at: datetime
    on_behalf_of: str | None = None
    """The absent user a substitute voted for (delegation), else None."""


class QuorumDecision(BaseModel):
    """What a quorum step returns: the outcome and every vote cast before it.

    ``approved`` is True once ``quorum`` voters approved, False once the step's rejection
    rule held (the first rejection, or a quorum no longer reachable).
    """

    approved: bool
    quorum: int
    votes: list[TaskVote] = Field(default_factory=list)

    @property
    def approvals(self) -> int:
        """How many votes approved."""
        return sum(1 for vote in self.votes if vote.approved)

    @property
    def rejections(self) -> int:
        """How many votes rejected."""
        return sum(1 for vote in self.votes if not vote.approved)


class Rejection(BaseModel):
    """A command the workflow refused (kept in the instance state for operators)."""

    task_id: str | None
    user: str | None
    reason: str
    kind: str | None = None
    """The :class:`sdk.ErrorKind` value of the refusal."""
    errors: list[dict[str, Any]] = Field(default_factory=list)
    at: datetime


class TaskInfo(BaseModel):
    """A human task as the workflow knows it (returned by the ``state`` query)."""

    task_id: str
    step_execution_id: str
    step_name: str
    title: str
    description: str | None = None
    form_name: str
    form_schema: dict[str, Any]
    assignee_id: str | None = None
    assignee_group: str | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    require_claim: bool = False
    status: TaskStatus = TaskStatus.PENDING
    created_at: datetime
    due_at: datetime | None = None
    reminder_at: datetime | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    form_data: dict[str, Any] | None = None
    comment: str | None = None
    comments: list[TaskComment] = Field(default_factory=list)
    # Approval policies (all optional: a task without them behaves as before).
    quorum: int | None = None
    """Approvals needed (a quorum task takes votes, not a completion)."""
    reject_on: str | None = None
    """A quorum task's rejection rule: ``"first"`` rejection or ``"unreachable"`` quorum."""
    voters: list[str] | None = None
    """Who may vote, when the step lists them (else the members of ``assignee_group``)."""
    votes: list[TaskVote] = Field(default_factory=list)
    excluded_users: dict[str, str] = Field(default_factory=dict)
    """Separation of duties: users who may not complete or vote, with the reason."""
    priority: int = 50
    """0 (lowest) to 100 (highest)."""
    follow_up_at: datetime | None = None
    """When the assignee means to look at the task again (sorting and filtering only)."""
    on_behalf_of: str | None = None
    """The absent user whose task this is, when a delegation handed it to ``assignee_id``."""
    voters_on_behalf: dict[str, str] = Field(default_factory=dict)
    """Substitute voter -> the absent voter they stand in for (delegation)."""


class InstanceState(BaseModel):
    """What the ``state`` query returns: the instance as its workflow code sees it now."""

    instance_id: str
    workflow_name: str
    workflow_version: str
    status: WorkflowStatus
    current_step: str | None = None
    tenant_id: str | None = None
    created_by: str | None = None
    paused: bool = False
    pending_tasks: list[TaskInfo] = Field(default_factory=list)
    tasks: list[TaskInfo] = Field(default_factory=list)
    rejections: list[Rejection] = Field(default_factory=list)


class EventBatch(BaseModel):
    """What workflow code hands to the publish local activity: events in emission order.

    Each event is ``sdk.events.event_to_dict(event)`` plus ``"seq"``, its position in the
    instance's event stream (so a writer can order batches that overlap), and ``"pos"``, the
    history length of the workflow task that emitted it, and ``"clock"``, that task's workflow
    time in microseconds (so the work Temporal recorded supersedes a lost workflow task's,
    which repeats the same sequence numbers).
    """

    workflow_id: str
    run_id: str
    namespace: str
    task_queue: str
    workflow_type: str
    workflow_name: str
    workflow_version: str
    tenant_id: str | None = None
    created_by: str | None = None
    events: list[dict[str, Any]]
