"""Domain events for the workflow lifecycle (the seed's vocabulary, names and fields kept).

Workflow code produces these events with deterministic ids; the built-in publish activity
hands them to the SQL mirror and to every handler the application registered
(``Worker(..., event_handlers=[...])``). Handlers receive the dataclass instances below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

__all__ = [
    "EVENT_TYPES",
    "HumanTaskCanceled",
    "HumanTaskClaimed",
    "HumanTaskCommented",
    "HumanTaskCompleted",
    "HumanTaskCreated",
    "HumanTaskPrioritized",
    "HumanTaskReassigned",
    "HumanTaskReleased",
    "HumanTaskVoted",
    "StepCompleted",
    "StepFailed",
    "StepSkipped",
    "StepStarted",
    "WorkflowCanceled",
    "WorkflowCompleted",
    "WorkflowEvent",
    "WorkflowFailed",
    "WorkflowPaused",
    "WorkflowResumed",
    "WorkflowStarted",
    "event_from_dict",
    "event_to_dict",
]


@dataclass
class WorkflowEvent:
    """Base class for all workflow events.

    Attributes:
        instance_id: Unique identifier of the workflow instance.
        timestamp: When the event occurred (workflow time, UTC).
    """

    instance_id: UUID
    timestamp: datetime


@dataclass
class WorkflowStarted(WorkflowEvent):
    """A workflow instance started execution."""

    workflow_name: str
    workflow_version: str
    initial_data: dict[str, Any] | None = None
    user_id: str | None = None
    tenant_id: str | None = None
    # Extensions (not in the seed): where the instance runs in Temporal.
    workflow_id: str | None = None
    run_id: str | None = None


@dataclass
class WorkflowCompleted(WorkflowEvent):
    """A workflow instance completed successfully."""

    status: str
    final_step: str | None = None
    duration_seconds: float | None = None
    # Extension: the workflow's return value, JSON-able.
    result: Any = None


@dataclass
class WorkflowFailed(WorkflowEvent):
    """A workflow instance failed."""

    error: str
    failed_step: str | None = None
    error_type: str | None = None
    stack_trace: str | None = None


@dataclass
class WorkflowCanceled(WorkflowEvent):
    """A workflow instance was canceled."""

    reason: str
    canceled_by: str | None = None
    current_step: str | None = None


@dataclass
class WorkflowPaused(WorkflowEvent):
    """A workflow instance was paused; it holds before its next step."""

    reason: str | None = None
    paused_at_step: str | None = None


@dataclass
class WorkflowResumed(WorkflowEvent):
    """A paused workflow instance resumed."""

    resumed_by: str | None = None
    resuming_at_step: str | None = None


@dataclass
class StepStarted(WorkflowEvent):
    """A step began execution."""

    step_name: str
    step_type: str
    input_data: dict[str, Any] | None = None
    # Extensions: the deterministic row id and the attempt number.
    step_execution_id: UUID | None = None
    attempt: int = 1
    step_seq: int = 0


@dataclass
class StepCompleted(WorkflowEvent):
    """A step completed successfully."""

    step_name: str
    status: str
    result: Any = None
    output_data: dict[str, Any] | None = None
    duration_seconds: float | None = None
    # Extensions: the deterministic row id, attempts used, who completed a human step.
    step_execution_id: UUID | None = None
    attempt: int = 1
    completed_by: str | None = None


@dataclass
class StepFailed(WorkflowEvent):
    """A step failed (after its last retry)."""

    step_name: str
    error: str
    error_type: str | None = None
    retry_count: int = 0
    # Extension: the deterministic row id.
    step_execution_id: UUID | None = None


@dataclass
class StepSkipped(WorkflowEvent):
    """A step was skipped."""

    step_name: str
    reason: str | None = None
    # Extension: the deterministic row id.
    step_execution_id: UUID | None = None


@dataclass
class HumanTaskCreated(WorkflowEvent):
    """A human task was created and the workflow waits on it."""

    step_name: str
    task_id: UUID
    assignee: str | None = None
    title: str | None = None
    description: str | None = None
    due_at: datetime | None = None
    # Extensions: what the task row needs beyond the seed's fields.
    step_execution_id: UUID | None = None
    assignee_id: str | None = None
    assignee_group: str | None = None
    form_schema: dict[str, Any] | None = None
    reminder_at: datetime | None = None
    require_claim: bool = False
    # Extensions (approval policies): a quorum, separation of duties, priority, delegation.
    quorum: int | None = None
    reject_on: str | None = None
    voters: list[str] | None = None
    excluded_users: dict[str, str] | None = None
    priority: int = 50
    follow_up_at: datetime | None = None
    on_behalf_of: str | None = None
    voters_on_behalf: dict[str, str] | None = None


@dataclass
class HumanTaskCompleted(WorkflowEvent):
    """A human task was completed with valid form data."""

    step_name: str
    task_id: UUID
    completed_by: str
    form_data: dict[str, Any] | None = None
    comment: str | None = None
    # Extensions: the deterministic row id; the final status ("completed" or "expired").
    step_execution_id: UUID | None = None
    status: str = "completed"


@dataclass
class HumanTaskReassigned(WorkflowEvent):
    """A human task was reassigned (by a user, or by escalation at its due time)."""

    step_name: str
    task_id: UUID
    from_assignee: str | None = None
    to_assignee: str | None = None
    reassigned_by: str | None = None
    reason: str | None = None
    # Extensions: user and group after the change (None keeps a side unchanged).
    to_assignee_id: str | None = None
    to_assignee_group: str | None = None
    # Extension: the absent user a delegation handed the task over for.
    on_behalf_of: str | None = None
    # Extensions: the new due time an escalation link set (None keeps it), and the link's
    # position in its chain (1 for the first; 0 for a reassignment outside a chain).
    due_at: datetime | None = None
    escalation_level: int = 0
    # Extension: the change replaces both sides (an escalation link): a None side is cleared.
    replaces_assignment: bool = False


# Extensions to the seed's vocabulary: the task lifecycle beyond create/complete/reassign.


@dataclass
class HumanTaskClaimed(WorkflowEvent):
    """A member of the task's group claimed it (extension event)."""

    step_name: str
    task_id: UUID
    claimed_by: str


@dataclass
class HumanTaskReleased(WorkflowEvent):
    """The holder of a claim (or an administrator) released it (extension event)."""

    step_name: str
    task_id: UUID
    released_by: str
    previous_claimant: str | None = None


@dataclass
class HumanTaskCommented(WorkflowEvent):
    """Someone who may see the task commented on it (extension event)."""

    step_name: str
    task_id: UUID
    comment_id: UUID
    author: str
    body: str


@dataclass
class HumanTaskVoted(WorkflowEvent):
    """An eligible user voted on a quorum task (extension event)."""

    step_name: str
    task_id: UUID
    vote_id: UUID
    voter: str
    approved: bool
    form_data: dict[str, Any] | None = None
    comment: str | None = None
    on_behalf_of: str | None = None


@dataclass
class HumanTaskPrioritized(WorkflowEvent):
    """A task's priority and/or follow-up date changed (extension event)."""

    step_name: str
    task_id: UUID
    changed_by: str
    priority: int
    follow_up_at: datetime | None = None
    previous_priority: int | None = None
    previous_follow_up_at: datetime | None = None
    reason: str | None = None


@dataclass
class HumanTaskCanceled(WorkflowEvent):
    """A pending task was canceled with its instance (extension event; the instance's own
    ``WorkflowCanceled`` closes its rows)."""

    step_name: str
    task_id: UUID
    canceled_by: str | None = None
    reason: str | None = None


EVENT_TYPES: dict[str, type[WorkflowEvent]] = {
    cls.__name__: cls
    for cls in (
        WorkflowStarted,
        WorkflowCompleted,
        WorkflowFailed,
        WorkflowCanceled,
        WorkflowPaused,
        WorkflowResumed,
        StepStarted,
        StepCompleted,
        StepFailed,
        StepSkipped,
        HumanTaskCreated,
        HumanTaskCompleted,
        HumanTaskReassigned,
        HumanTaskClaimed,
        HumanTaskReleased,
        HumanTaskCommented,
        HumanTaskVoted,
        HumanTaskPrioritized,
        HumanTaskCanceled,
    )
}
"""Every concrete event class by name: the seed's thirteen (fourteen with the base class) and
the task-lifecycle and approval-policy extensions."""

_UUID_FIELDS = {"instance_id", "task_id", "step_execution_id", "comment_id", "vote_id"}
_TIME_FIELDS = {"timestamp", "due_at", "reminder_at", "follow_up_at", "previous_follow_up_at"}


def event_to_dict(event: WorkflowEvent) -> dict[str, Any]:
    """Serialize an event to a JSON-able dict tagged with its type name."""
    data: dict[str, Any] = {}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if isinstance(value, UUID):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        data[field.name] = value
    return {"type": type(event).__name__, "data": data}


def event_from_dict(payload: dict[str, Any]) -> WorkflowEvent:
    """Rebuild an event from :func:`event_to_dict` output.

    Raises:
        KeyError: The type tag names no known event.
    """
    cls = EVENT_TYPES[payload["type"]]
    data = dict(payload["data"])
    for name in _UUID_FIELDS & data.keys():
        if data[name] is not None:
            data[name] = UUID(data[name])
    for name in _TIME_FIELDS & data.keys():
        if data[name] is not None:
            data[name] = datetime.fromisoformat(data[name])
    return cls(**data)
