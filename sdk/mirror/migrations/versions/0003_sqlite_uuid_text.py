"""SQLite: UUID columns hold the canonical 36-character text (with dashes), not 32 hex digits.

The ids every tool prints (``dwf``, the client, the logs) have dashes; SQLAlchemy's ``Uuid``
stored them without on SQLite, so ``WHERE id = '<printed id>'`` found nothing there. This
revision declares every UUID column ``CHAR(36)`` and rewrites the stored values. PostgreSQL
keeps its native ``uuid`` type: nothing changes there.

The tables are rebuilt (SQLite cannot change a column's type in place); the migration runs with
foreign keys off, as SQLite requires for a rebuild, and checks them before it commits.

Written by hand and frozen: it does not import the models.

Revision ID: 0003_sqlite_uuid_text
Revises: 0001
Create Date: 2026-11-29 00:00:00
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_sqlite_uuid_text"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID_COLUMNS: dict[str, tuple[str, ...]] = {
    "workflow_definitions": ("id",),
    "workflow_instances": ("id", "definition_id"),
    "workflow_step_executions": ("id", "instance_id"),
    "workflow_human_tasks": ("id", "instance_id", "step_execution_id"),
    "workflow_task_comments": ("id", "task_id", "instance_id"),
    "workflow_task_assignments": ("id", "task_id"),
}
"""Every UUID column of the mirror, by table (parents before children)."""


def _dashed(column: sa.ColumnClause[str]) -> sa.ColumnElement[str]:
    """``0a1b...`` (32 hex digits) as ``0a1b2c3d-...`` (8-4-4-4-12), in lower case."""
    parts = [sa.func.substr(column, start, length) for start, length in ((1, 8), (9, 4), (13, 4), (17, 4))]
    dashed: sa.ColumnElement[str] = parts[0]
    for part in [*parts[1:], sa.func.substr(column, 21)]:
        dashed = dashed.concat("-").concat(part)
    return sa.func.lower(dashed)


def _hex(column: sa.ColumnClause[str]) -> sa.ColumnElement[str]:
    return sa.func.lower(sa.func.replace(column, "-", ""))


def _retype(old_length: int, new_length: int) -> None:
    if op.get_context().as_sql:
        # An offline script cannot reflect the tables to rebuild them; SQLite ignores a
        # CHAR length anyway, so the rewritten values fit the columns as declared.
        return
    for table, columns in UUID_COLUMNS.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            for column in columns:
                batch.alter_column(
                    column,
                    type_=sa.CHAR(new_length),
                    existing_type=sa.CHAR(old_length),
                    existing_nullable=False,
                )


def _rewrite(convert: Callable[[sa.ColumnClause[str]], sa.ColumnElement[str]], length: int) -> None:
    bind = op.get_bind()
    for table, columns in UUID_COLUMNS.items():
        for name in columns:
            column = sa.column(name, sa.String)
            stmt = (
                sa.update(sa.table(table, column))
                .values({name: convert(column)})
                .where(sa.func.length(column) == length)
            )
            bind.execute(stmt)


def _check_foreign_keys() -> None:
    if op.get_context().as_sql:
        return
    violations = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if violations:
        raise RuntimeError(f"UUID rewrite left foreign keys dangling: {violations[:5]}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _retype(32, 36)
    _rewrite(_dashed, 32)
    _check_foreign_keys()


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rewrite(_hex, 36)
    _retype(36, 32)
    _check_foreign_keys()
