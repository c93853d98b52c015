"""The API's request bodies and composite answers (rows and pages are the mirror's own models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sdk.mirror import AssignmentRow, CommentRow, InstanceRow, StepRow, TaskRow, VoteRow

__all__ = [
    "CommentRequest",
    "CompleteRequest",
    "ControlRequest",
    "DefinitionSummary",
    "InstanceDetail",
    "InstanceStarted",
    "PriorityRequest",
    "ReassignRequest",
    "SessionInfo",
    "StartRequest",
    "TaskDetail",
    "TokenLogin",
    "UserLogin",
    "VoteRequest",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CompleteRequest(_Body):
    """Complete a task: the form's data (checked against its JSON schema) and a comment."""

    data: dict[str, Any] = Field(default_factory=dict)
    comment: str | None = None


class ReassignRequest(_Body):
    """Reassign a task to a user and/or a group, with a reason (audited)."""

    to_user: str | None = None
    to_group: str | None = None
    reason: str


class VoteRequest(_Body):
    """Vote on a quorum task: the step's form (its ``approved`` field is the vote) and a comment."""

    data: dict[str, Any] = Field(default_factory=dict)
    comment: str | None = None


class PriorityRequest(_Body):
    """Change a task's priority (0-100) and/or follow-up date, with an optional reason."""

    priority: int | None = Field(default=None, ge=0, le=100)
    follow_up_at: datetime | None = Field(default=None, description="Timezone-aware (ISO 8601 with offset)")
    reason: str | None = None


class CommentRequest(_Body):
    """Comment on a task."""

    body: str


class ControlRequest(_Body):
    """Why an instance is canceled or paused (recorded)."""

    reason: str | None = None


class StartRequest(_Body):
    """Start an instance of a workflow (its active version unless ``version`` is given)."""

    workflow: str = Field(min_length=1)
    version: str | None = None
    input: Any = Field(default=None, description="The workflow's one argument (omit for none)")
    args: list[Any] | None = Field(default=None, description="The workflow's arguments, when not one")
    workflow_id: str | None = Field(default=None, description="The Temporal workflow id (default generated)")
    tenant_id: str | None = Field(
        default=None, description="Only for an administrator of all tenants: the instance's tenant"
    )


class InstanceStarted(BaseModel):
    """A started instance."""

    workflow_id: str
    run_id: str | None
    instance_id: str | None


class TaskDetail(BaseModel):
    """A task with its form's JSON schema, comments, assignment trail and (a quorum task) votes."""

    task: TaskRow
    form_schema: dict[str, Any]
    comments: list[CommentRow]
    assignments: list[AssignmentRow]
    votes: list[VoteRow] = Field(
        default_factory=list,
        description="A quorum task's rows per user: votes as cast, then open ballots and exclusions",
    )
    may_vote: bool = Field(default=False, description="Whether the caller may vote on it now")


class InstanceDetail(BaseModel):
    """An instance, its step history and its tasks."""

    instance: InstanceRow
    steps: list[StepRow]
    tasks: list[TaskRow]


class DefinitionSummary(BaseModel):
    """A registered workflow definition (one version)."""

    name: str
    version: str
    description: str | None
    is_active: bool
    workflow_type: str
    definition: dict[str, Any] | None = Field(default=None, description="The stored definition (show only)")


class SessionInfo(BaseModel):
    """Who the session is for, and the CSRF token its unsafe requests must send."""

    user: str
    groups: list[str]
    admin: bool
    tenant_id: str | None
    csrf_token: str | None = Field(default=None, description="Send as X-CSRF-Token on POST/PUT/PATCH/DELETE")
    dev_users: list[str] = Field(default_factory=list)


class UserLogin(_Body):
    """Development sign-in: pick one of the configured users."""

    user: str = Field(min_length=1)


class TokenLogin(_Body):
    """Production sign-in: a token the application's identity provider issued."""

    token: str = Field(min_length=1)
