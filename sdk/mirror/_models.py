"""The mirror's tables: the seed's four (names and columns kept) plus those of the task lifecycle.

The four tables the product's schema started from, column for column and index for index:

- ``workflow_definitions`` (:class:`WorkflowDefinitionModel`)
- ``workflow_instances`` (:class:`WorkflowInstanceModel`)
- ``workflow_step_executions`` (:class:`StepExecutionModel`)
- ``workflow_human_tasks`` (:class:`HumanTaskModel`)

Extension columns are marked "Extension" below; they tie rows to Temporal (workflow id, run id,
task queue, event sequence) and carry the task lifecycle (claim, form data, comment). The two new
tables are ``workflow_task_comments`` (:class:`TaskCommentModel`) and
``workflow_task_assignments`` (:class:`TaskAssignmentModel`, the audit trail of claims and
reassignments), ``workflow_task_votes`` (:class:`TaskVoteModel`, quorum votes and separation of
duties) and ``workflow_delegations`` (:class:`DelegationModel`, substitutes of absent users,
written by the application). The schema is created by the migrations in ``sdk/mirror/migrations``; a test
checks that they produce exactly this metadata.

Relationships never load implicitly: the seed's ``lazy="noload"`` is deprecated in SQLAlchemy 2.1
(it silently yields nothing) and its default ``lazy="select"`` back-references cannot run under
asyncio, so both are ``lazy="raise_on_sql"`` here; load with ``selectinload``/``joinedload`` in
the query. ``WorkflowInstanceModel.definition`` stays ``lazy="joined"`` as in the seed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Boolean, Enum, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sdk import StepStatus, StepType, TaskStatus, WorkflowStatus

from ._base import JSONType, MirrorBase, UTCDateTime, UUIDAuditMixin

__all__ = [
    "AssignmentAction",
    "DelegationModel",
    "HumanTaskModel",
    "StepExecutionModel",
    "TaskAssignmentModel",
    "TaskCommentModel",
    "TaskVoteModel",
    "VoteState",
    "WorkflowDefinitionModel",
    "WorkflowInstanceModel",
]


class AssignmentAction(StrEnum):
    """What a ``workflow_task_assignments`` row records."""

    CLAIM = "claim"
    RELEASE = "release"
    REASSIGN = "reassign"
    ESCALATE = "escalate"
    DELEGATE = "delegate"
    """Handed to a substitute when created (an absent user's delegation)."""
    PRIORITY = "priority"
    """The priority and/or follow-up date changed (not a change of hands)."""


class VoteState(StrEnum):
    """What a ``workflow_task_votes`` row records about one user and one task."""

    PENDING = "pending"
    """A listed voter who has not voted yet."""
    APPROVED = "approved"
    REJECTED = "rejected"
    EXCLUDED = "excluded"
    """Kept out by separation of duties: may not decide the task."""


def _default_workflow_type(context: DefaultExecutionContext) -> str:
    params: dict[str, Any] = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return f"{params['name']}@{params['version']}"


class WorkflowDefinitionModel(UUIDAuditMixin, MirrorBase):
    """Persisted workflow definition for versioning and storage.

    Attributes:
        name: Unique name identifier for the workflow.
        version: Semantic version string (e.g. "1.0.0").
        description: Human-readable description of the workflow.
        definition_json: Serialized WorkflowDefinition as JSON.
        is_active: Whether this version is active for new instances.
        workflow_type: Extension: the Temporal workflow type, ``"name@version"`` by default.
        instances: Related workflow instances (never loaded implicitly).
    """

    __tablename__ = "workflow_definitions"
    __table_args__ = (
        Index("ix_workflow_definitions_name_version", "name", "version", unique=True),
        Index("ix_workflow_definitions_name_active", "name", "is_active"),
    )

    name: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[str] = mapped_column(String(50))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    definition_json: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Extension
    workflow_type: Mapped[str] = mapped_column(String(255), default=_default_workflow_type)

    instances: Mapped[list[WorkflowInstanceModel]] = relationship(
        back_populates="definition", lazy="raise_on_sql", passive_deletes=True
    )


class WorkflowInstanceModel(UUIDAuditMixin, MirrorBase):
    """A running or finished workflow instance: one Temporal workflow run.

    Attributes:
        definition_id: Foreign key to the workflow definition.
        workflow_name: Denormalized workflow name for quick queries.
        workflow_version: Denormalized workflow version.
        status: Current execution status.
        current_step: Name of the currently executing step (None if complete).
        context_data: Mutable workflow context data as JSON.
        metadata_: Immutable metadata about the execution (column ``metadata``).
        error: Error message if the workflow failed.
        started_at: When execution began.
        completed_at: When execution finished.
        tenant_id: Optional tenant identifier for multi-tenancy.
        created_by: Optional user who started the workflow.
        workflow_id: Extension: the Temporal workflow id (shared by every run of it).
        run_id: Extension: the Temporal run id (unique; the instance id derives from it).
        task_queue: Extension: the task queue the run was started on.
        last_event_seq: Extension: the highest event sequence number applied to this row, so a
            writer can skip batches that arrive late or twice.
        history_position: Extension: the history length of the workflow task whose events
            last changed the row; row versions are ordered by (position, clock, sequence).
        history_clock: Extension: that workflow task's time (microseconds since the epoch).
    """

    __tablename__ = "workflow_instances"
    __table_args__ = (
        Index("ix_workflow_instances_status", "status"),
        Index("ix_workflow_instances_workflow_name", "workflow_name"),
        Index("ix_workflow_instances_tenant_id", "tenant_id"),
        Index("ix_workflow_instances_created_by", "created_by"),
        # Extension: listing instances by tenant or by workflow, filtered by status.
        Index("ix_workflow_instances_tenant_id_status", "tenant_id", "status"),
        Index("ix_workflow_instances_name_status_created_at", "workflow_name", "status", "created_at"),
    )

    definition_id: Mapped[UUID] = mapped_column(ForeignKey("workflow_definitions.id", ondelete="CASCADE"))
    workflow_name: Mapped[str] = mapped_column(String(255))
    workflow_version: Mapped[str] = mapped_column(String(50))
    status: Mapped[WorkflowStatus] = mapped_column(
        Enum(WorkflowStatus, native_enum=False, length=50), default=WorkflowStatus.PENDING
    )
    current_step: Mapped[str | None] = mapped_column(String(255), nullable=True)
    context_data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    tenant_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Extensions
    workflow_id: Mapped[str] = mapped_column(String(255), index=True)
    run_id: Mapped[str] = mapped_column(String(255), unique=True)
    task_queue: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    history_position: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    history_clock: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))

    definition: Mapped[WorkflowDefinitionModel] = relationship(back_populates="instances", lazy="joined")
    step_executions: Mapped[list[StepExecutionModel]] = relationship(
        back_populates="instance",
        lazy="raise_on_sql",
        order_by="StepExecutionModel.started_at",
        passive_deletes=True,
    )
    human_tasks: Mapped[list[HumanTaskModel]] = relationship(
        back_populates="instance", lazy="raise_on_sql", passive_deletes=True
    )


class StepExecutionModel(UUIDAuditMixin, MirrorBase):
    """One execution of one step within a workflow instance.

    Attributes:
        instance_id: Foreign key to the workflow instance.
        step_name: Name of the executed step.
        step_type: Type of step (MACHINE, HUMAN, ...).
        status: Execution status of the step.
        input_data: Input data passed to the step.
        output_data: Output data produced by the step.
        error: Error message if the step failed.
        started_at: When the step execution began.
        completed_at: When the step execution finished.
        assigned_to: User assigned to a human step.
        completed_by: User who completed a human step.
        step_seq: Extension: the step's sequence number within the instance (its row id derives
            from it, see ``sdk._ids.step_execution_id_for``).
        attempts: Extension: attempts used so far (Temporal retries).
        workflow_id: Extension: the Temporal workflow id, denormalized.
    """

    __tablename__ = "workflow_step_executions"
    __table_args__ = (
        Index("ix_step_executions_instance_id", "instance_id"),
        Index("ix_step_executions_step_name", "step_name"),
        Index("ix_step_executions_status", "status"),
    )

    instance_id: Mapped[UUID] = mapped_column(ForeignKey("workflow_instances.id", ondelete="CASCADE"))
    step_name: Mapped[str] = mapped_column(String(255))
    step_type: Mapped[StepType] = mapped_column(Enum(StepType, native_enum=False, length=50))
    status: Mapped[StepStatus] = mapped_column(
        Enum(StepStatus, native_enum=False, length=50), default=StepStatus.PENDING
    )
    input_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    output_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    assigned_to: Mapped[str | None] = mapped_column(String(255), nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Extensions
    step_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    workflow_id: Mapped[str | None] = mapped_column(String(255), nullable=True)

    instance: Mapped[WorkflowInstanceModel] = relationship(
        back_populates="step_executions", lazy="raise_on_sql"
    )


class HumanTaskModel(UUIDAuditMixin, MirrorBase):
    """A human task, denormalized for querying by assignee, group, tenant, due date and status.

    Attributes:
        instance_id: Foreign key to the workflow instance.
        step_execution_id: Foreign key to the step execution.
        step_name: Name of the human step.
        title: Display title for the task.
        description: Detailed description of the task.
        form_schema: JSON Schema of the task's form.
        assignee_id: User assigned to complete the task.
        assignee_group: Group or role whose members can complete the task.
        due_at: Deadline for task completion.
        reminder_at: When to send a reminder.
        status: A :class:`sdk.TaskStatus` value ("pending", "completed", "canceled", "expired").
        completed_at: When the task was completed.
        completed_by: User who completed the task.
        tenant_id: Extension: the instance's tenant, denormalized for tenant-scoped inboxes.
        workflow_id: Extension: the Temporal workflow id to signal.
        claimed_by: Extension: the group member who claimed the task.
        claimed_at: Extension: when it was claimed.
        form_data: Extension: the submitted form data.
        comment: Extension: the completion comment.
        require_claim: Extension: whether a group member must claim before completing.
        history_position: Extension: the history length of the workflow task that created or
            closed the task; a closing at a later (position, clock) supersedes an earlier one.
        history_clock: Extension: that workflow task's time (microseconds since the epoch).
        quorum: Extension: approvals a quorum task needs (None: a plain task).
        reject_on: Extension: a quorum task's rejection rule ("first", "unreachable").
        voters: Extension: a quorum task's listed voters (None: the group's members).
        excluded_users: Extension: separation of duties, user -> why they may not decide.
        priority: Extension: 0 (lowest) to 100 (highest), default 50.
        follow_up_at: Extension: when the assignee means to look at the task again.
        on_behalf_of: Extension: the absent user a delegation handed the task over for.
        voters_on_behalf: Extension: substitute voter -> the absent voter they stand in for.
    """

    __tablename__ = "workflow_human_tasks"
    __table_args__ = (
        Index("ix_human_tasks_assignee_id", "assignee_id"),
        Index("ix_human_tasks_assignee_group", "assignee_group"),
        Index("ix_human_tasks_status", "status"),
        Index("ix_human_tasks_due_at", "due_at"),
        # Extension: the inbox queries ("pending for user X or groups Y in tenant T, by due date"),
        # and the foreign keys (tasks of an instance; cascading deletes).
        Index("ix_human_tasks_status_assignee_id", "status", "assignee_id"),
        Index("ix_human_tasks_status_assignee_group", "status", "assignee_group"),
        Index("ix_human_tasks_tenant_id_status_due_at", "tenant_id", "status", "due_at"),
        Index("ix_human_tasks_instance_id", "instance_id"),
        Index("ix_human_tasks_step_execution_id", "step_execution_id"),
        # Extension: inboxes sorted or filtered by priority or follow-up date.
        Index("ix_human_tasks_status_priority", "status", "priority"),
        Index("ix_human_tasks_status_follow_up_at", "status", "follow_up_at"),
        # Extension: pending tasks only (the rows the inbox and pending-task queries read, a
        # fraction of the table), by tenant and assignee or group, in the queries' order.
        Index(
            "ix_human_tasks_pending_tenant_assignee_due",
            "tenant_id",
            "assignee_id",
            "due_at",
            "created_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_human_tasks_pending_tenant_group_due",
            "tenant_id",
            "assignee_group",
            "due_at",
            "created_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    instance_id: Mapped[UUID] = mapped_column(ForeignKey("workflow_instances.id", ondelete="CASCADE"))
    # Named explicitly: the conventional name is longer than PostgreSQL's 63 characters.
    step_execution_id: Mapped[UUID] = mapped_column(
        ForeignKey(
            "workflow_step_executions.id",
            ondelete="CASCADE",
            name="fk_workflow_human_tasks_step_execution_id",
        )
    )
    step_name: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    form_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    assignee_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    assignee_group: Mapped[str | None] = mapped_column(String(255), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(50), default=TaskStatus.PENDING.value)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Extensions
    tenant_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    workflow_id: Mapped[str] = mapped_column(String(255))
    claimed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    form_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    require_claim: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    history_position: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    history_clock: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    quorum: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reject_on: Mapped[str | None] = mapped_column(String(20), nullable=True)
    voters: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    excluded_users: Mapped[dict[str, str] | None] = mapped_column(JSONType, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=50, server_default=text("50"))
    follow_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    on_behalf_of: Mapped[str | None] = mapped_column(String(255), nullable=True)
    voters_on_behalf: Mapped[dict[str, str] | None] = mapped_column(JSONType, nullable=True)

    instance: Mapped[WorkflowInstanceModel] = relationship(back_populates="human_tasks", lazy="raise_on_sql")


class TaskCommentModel(UUIDAuditMixin, MirrorBase):
    """A comment posted on a human task (extension table).

    Attributes:
        task_id: The task commented on.
        instance_id: The task's instance, denormalized.
        author: Who posted it.
        body: The text.
        posted_at: When it was posted (workflow time).
    """

    __tablename__ = "workflow_task_comments"
    __table_args__ = (
        Index("ix_task_comments_task_id_posted_at", "task_id", "posted_at"),
        Index("ix_task_comments_instance_id", "instance_id"),
    )

    task_id: Mapped[UUID] = mapped_column(ForeignKey("workflow_human_tasks.id", ondelete="CASCADE"))
    instance_id: Mapped[UUID] = mapped_column(ForeignKey("workflow_instances.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TaskAssignmentModel(UUIDAuditMixin, MirrorBase):
    """One change of who holds a human task: the audit trail of claims and reassignments.

    Attributes:
        task_id: The task.
        action: An :class:`AssignmentAction` value ("claim", "release", "reassign", "escalate").
        from_assignee: The user or group that held the task before.
        to_assignee: The user or group that holds it after.
        by_user: Who did it (None for escalation by the workflow).
        reason: Why, if given.
        at: When (workflow time).
        on_behalf_of: Extension: the absent user a delegation acted for.
    """

    __tablename__ = "workflow_task_assignments"
    __table_args__ = (Index("ix_task_assignments_task_id_at", "task_id", "at"),)

    task_id: Mapped[UUID] = mapped_column(ForeignKey("workflow_human_tasks.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(50))
    from_assignee: Mapped[str | None] = mapped_column(String(255), nullable=True)
    to_assignee: Mapped[str | None] = mapped_column(String(255), nullable=True)
    by_user: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    on_behalf_of: Mapped[str | None] = mapped_column(String(255), nullable=True)


class TaskVoteModel(UUIDAuditMixin, MirrorBase):
    """One user's standing on one task: a quorum task's ballot, or a separation-of-duties bar.

    A listed voter has a ``pending`` row from the task's creation, which their vote turns
    ``approved`` or ``rejected``; a group member's vote adds its row. A user separation of
    duties keeps from deciding the task has an ``excluded`` row. One row per (task, user);
    the id derives from both (``sdk._approvals``), so replays converge on the same rows.

    Attributes:
        task_id: The task.
        instance_id: The task's instance, denormalized.
        voter: The user.
        state: A :class:`VoteState` value.
        approved: The vote (None until cast, and for exclusions).
        form_data: The step's form as submitted with the vote.
        comment: The vote's comment.
        voted_at: When the vote was cast (workflow time).
        on_behalf_of: The absent voter a substitute voted for (delegation).
        reason: Why a user is excluded.
    """

    __tablename__ = "workflow_task_votes"
    __table_args__ = (
        Index("ix_task_votes_task_id_voter", "task_id", "voter", unique=True),
        Index("ix_task_votes_voter_state", "voter", "state"),
        Index("ix_task_votes_instance_id", "instance_id"),
    )

    task_id: Mapped[UUID] = mapped_column(ForeignKey("workflow_human_tasks.id", ondelete="CASCADE"))
    instance_id: Mapped[UUID] = mapped_column(ForeignKey("workflow_instances.id", ondelete="CASCADE"))
    voter: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(20))
    approved: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    form_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    voted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    on_behalf_of: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class DelegationModel(UUIDAuditMixin, MirrorBase):
    """A user's substitute for a period (out of office), per tenant.

    Not a projection of Temporal's history: the application writes these rows (client or
    ``dwf delegations``); a human task created for ``user_id`` while a row is in force goes
    to ``substitute_id``, decided by a local activity whose answer the history records.

    Attributes:
        tenant_id: The tenant (None: an application without tenants).
        user_id: The absent user.
        substitute_id: Who stands in.
        starts_at: From when.
        ends_at: Until when (None: until ended).
        reason: Why, if given.
        created_by: Who set it (the user or an administrator).
        ended_at: When it was ended early (None: not ended).
        ended_by: Who ended it.
    """

    __tablename__ = "workflow_delegations"
    __table_args__ = (
        Index("ix_delegations_tenant_id_user_id_starts_at", "tenant_id", "user_id", "starts_at"),
    )

    tenant_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    user_id: Mapped[str] = mapped_column(String(255))
    substitute_id: Mapped[str] = mapped_column(String(255))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(255))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
