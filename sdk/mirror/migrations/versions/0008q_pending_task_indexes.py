"""Partial indexes for the inbox and pending-task queries.

``MirrorQueries.inbox`` and ``pending_tasks`` read pending tasks of one tenant, for one user or
some groups, soonest due first. Two indexes restricted to pending tasks (the few rows those
queries read, however many completed tasks the table holds) serve them in that order: by
tenant and assignee, and by tenant and group, then due date, creation time and id (the
queries' order, so a page is read off the index without sorting every match). Both SQLite and
PostgreSQL support partial indexes.

Written by hand and frozen: it does not import the models.

Revision ID: 0008q_pending_task_indexes
Revises: 0006v_approval_policies
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008q_pending_task_indexes"
down_revision: str | Sequence[str] | None = "0006v_approval_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = sa.text("status = 'pending'")
INDEXES = {
    "ix_human_tasks_pending_tenant_assignee_due": ["tenant_id", "assignee_id", "due_at", "created_at", "id"],
    "ix_human_tasks_pending_tenant_group_due": ["tenant_id", "assignee_group", "due_at", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(
            name, "workflow_human_tasks", columns, postgresql_where=_PENDING, sqlite_where=_PENDING
        )


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="workflow_human_tasks")
