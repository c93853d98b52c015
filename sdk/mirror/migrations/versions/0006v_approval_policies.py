"""Approval policies: quorum votes, separation of duties, priority, follow-up, delegation.

Adds to ``workflow_human_tasks`` the quorum, its rule and voters, the users separation of
duties keeps from deciding the task, its priority (0-100, default 50) and follow-up date, and
the absent user a delegation handed it over for; adds ``on_behalf_of`` to the assignment
trail; creates ``workflow_task_votes`` (one row per task and user: a ballot, a vote or an
exclusion) and ``workflow_delegations`` (substitutes of absent users, per tenant).

Written by hand and frozen: it does not import the models.

Revision ID: 0006v_approval_policies
Revises: 0003_sqlite_uuid_text
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006v_approval_policies"
down_revision: str | Sequence[str] | None = "0003_sqlite_uuid_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# Native uuid on PostgreSQL; on SQLite the 36-character text every other UUID column holds.
UUID = sa.Uuid().with_variant(sa.CHAR(36), "sqlite")

_TASK_COLUMNS = (
    ("quorum", sa.Integer(), None),
    ("reject_on", sa.String(length=20), None),
    ("voters", JSON, None),
    ("excluded_users", JSON, None),
    ("priority", sa.Integer(), sa.text("50")),
    ("follow_up_at", sa.DateTime(timezone=True), None),
    ("on_behalf_of", sa.String(length=255), None),
    ("voters_on_behalf", JSON, None),
)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    for name, type_, default in _TASK_COLUMNS:
        op.add_column(
            "workflow_human_tasks",
            sa.Column(name, type_, server_default=default, nullable=default is None),
        )
    op.create_index("ix_human_tasks_status_priority", "workflow_human_tasks", ["status", "priority"])
    op.create_index("ix_human_tasks_status_follow_up_at", "workflow_human_tasks", ["status", "follow_up_at"])
    op.add_column(
        "workflow_task_assignments", sa.Column("on_behalf_of", sa.String(length=255), nullable=True)
    )

    op.create_table(
        "workflow_task_votes",
        sa.Column("id", UUID, nullable=False),
        sa.Column("task_id", UUID, nullable=False),
        sa.Column("instance_id", UUID, nullable=False),
        sa.Column("voter", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=True),
        sa.Column("form_data", JSON, nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("voted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("on_behalf_of", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["workflow_human_tasks.id"],
            name=op.f("fk_workflow_task_votes_task_id_workflow_human_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["workflow_instances.id"],
            name=op.f("fk_workflow_task_votes_instance_id_workflow_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_task_votes")),
    )
    op.create_index("ix_task_votes_task_id_voter", "workflow_task_votes", ["task_id", "voter"], unique=True)
    op.create_index("ix_task_votes_voter_state", "workflow_task_votes", ["voter", "state"])
    op.create_index("ix_task_votes_instance_id", "workflow_task_votes", ["instance_id"])

    op.create_table(
        "workflow_delegations",
        sa.Column("id", UUID, nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("substitute_id", sa.String(length=255), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=255), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_delegations")),
    )
    op.create_index(
        "ix_delegations_tenant_id_user_id_starts_at",
        "workflow_delegations",
        ["tenant_id", "user_id", "starts_at"],
    )


def downgrade() -> None:
    op.drop_table("workflow_delegations")
    op.drop_table("workflow_task_votes")
    # Columns are dropped in place (SQLite has ALTER TABLE ... DROP COLUMN since 3.35), never
    # by a batch rebuild: rebuilding a parent table drops it, and with foreign keys on, the
    # ON DELETE CASCADE of its children (comments, assignments) would delete their rows.
    op.drop_column("workflow_task_assignments", "on_behalf_of")
    op.drop_index("ix_human_tasks_status_follow_up_at", table_name="workflow_human_tasks")
    op.drop_index("ix_human_tasks_status_priority", table_name="workflow_human_tasks")
    for name, _, _ in reversed(_TASK_COLUMNS):
        op.drop_column("workflow_human_tasks", name)
