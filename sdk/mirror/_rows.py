"""What the query API returns: frozen pydantic snapshots of mirror rows, and pages of them.

Rows are detached from any session (safe to pass between tasks, to serialize, to cache); each
field is the column of the same name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from sdk import StepStatus, StepType, TaskStatus, WorkflowStatus

from ._models import AssignmentAction, VoteState

__all__ = [
    "AssignmentRow",
    "CommentRow",
    "DelegationRow",
    "InstanceRow",
    "Page",
    "StepRow",
    "TaskRow",
    "VoteRow",
]

T = TypeVar("T")


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class TaskRow(_Row):
    """A row of ``workflow_human_tasks``."""

    id: UUID
    instance_id: UUID
    step_execution_id: UUID
    workflow_id: str
    tenant_id: str | None
    step_name: str
    title: str
    description: str | None
    form_schema: dict[str, Any] | None
    assignee_id: str | None
    assignee_group: str | None
    claimed_by: str | None
    claimed_at: datetime | None
    require_claim: bool
    status: TaskStatus
    due_at: datetime | None
    reminder_at: datetime | None
    completed_at: datetime | None
    completed_by: str | None
    form_data: dict[str, Any] | None
    comment: str | None
    created_at: datetime
    updated_at: datetime
    # Approval policies (docs/approvals.md)
    quorum: int | None = None
    reject_on: str | None = None
    voters: list[str] | None = None
    excluded_users: dict[str, str] | None = None
    priority: int = 50
    follow_up_at: datetime | None = None
    on_behalf_of: str | None = None
    """The absent user a delegation handed this task over for ("on behalf of")."""
    voters_on_behalf: dict[str, str] | None = None


class InstanceRow(_Row):
    """A row of ``workflow_instances``."""

    id: UUID
    definition_id: UUID
    workflow_id: str
    run_id: str
    workflow_name: str
    workflow_version: str
    status: WorkflowStatus
    current_step: str | None
    context_data: dict[str, Any]
    # The ORM attribute is ``metadata_`` (``metadata`` is taken by SQLAlchemy); the column is ``metadata``.
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("metadata_", "metadata"))
    error: str | None
    started_at: datetime
    completed_at: datetime | None
    tenant_id: str | None
    created_by: str | None
    task_queue: str | None
    last_event_seq: int
    created_at: datetime
    updated_at: datetime


class StepRow(_Row):
    """A row of ``workflow_step_executions``."""

    id: UUID
    instance_id: UUID
    workflow_id: str | None
    step_seq: int | None
    step_name: str
    step_type: StepType
    status: StepStatus
    attempts: int
    input_data: dict[str, Any] | None
    output_data: dict[str, Any] | None
    error: str | None
    started_at: datetime
    completed_at: datetime | None
    assigned_to: str | None
    completed_by: str | None
    created_at: datetime
    updated_at: datetime


class CommentRow(_Row):
    """A row of ``workflow_task_comments``."""

    id: UUID
    task_id: UUID
    instance_id: UUID
    author: str
    body: str
    posted_at: datetime


class AssignmentRow(_Row):
    """A row of ``workflow_task_assignments``: one claim, release, reassignment or escalation."""

    id: UUID
    task_id: UUID
    action: AssignmentAction
    from_assignee: str | None
    to_assignee: str | None
    by_user: str | None
    reason: str | None
    at: datetime
    on_behalf_of: str | None = None


class VoteRow(_Row):
    """A row of ``workflow_task_votes``: a user's ballot, vote or exclusion on one task."""

    id: UUID
    task_id: UUID
    instance_id: UUID
    voter: str
    state: VoteState
    approved: bool | None
    form_data: dict[str, Any] | None
    comment: str | None
    voted_at: datetime | None
    on_behalf_of: str | None
    reason: str | None


class DelegationRow(_Row):
    """A row of ``workflow_delegations``: a substitute for an absent user, for a period."""

    id: UUID
    tenant_id: str | None
    user_id: str
    substitute_id: str
    starts_at: datetime
    ends_at: datetime | None
    reason: str | None
    created_by: str
    ended_at: datetime | None
    ended_by: str | None
    created_at: datetime


class Page(BaseModel, Generic[T]):
    """One page of a query's results.

    Attributes:
        items: The rows of this page, in the query's order.
        total: How many rows match the query in all, or (``total_exact`` False) at least
            how many: the task lists count up to a cap (``MirrorQueries``' ``total_cap``),
            always past this page's end, so :attr:`has_more` holds either way.
        total_exact: Whether ``total`` is the exact count (False: a lower bound).
        limit: The page size asked for.
        offset: How many matching rows come before this page.
    """

    model_config = ConfigDict(frozen=True)

    items: list[T]
    total: int
    total_exact: bool = True
    limit: int
    offset: int

    @property
    def has_more(self) -> bool:
        """Whether rows follow this page."""
        return self.offset + len(self.items) < self.total
