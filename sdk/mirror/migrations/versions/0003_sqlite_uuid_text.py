"""SQLite: UUID columns hold the canonical 36-character text (with dashes), not 32 hex digits.

The ids every tool prints (``dwf``, the client, the logs) have dashes; SQLAlchemy's ``Uuid``
stored them without on SQLite, so ``WHERE id = '<printed id>'`` found nothing there. This
revision declares every UUID column ``CHAR(36)`` and rewrites the stored values. PostgreSQL
keeps its native ``uuid`` type: nothing changes there.

The declared types change in SQLite's schema table, the documented way for a change that
leaves every stored value as it is (``CHAR(32)`` and ``CHAR(36)`` are both TEXT affinity), so
no table is rebuilt; foreign keys are checked at the end of the rewrite, before it commits.

Written by hand and frozen: it does not import the models.

Revision ID: 0003_sqlite_uuid_text
Revises: 0002_history_position
Create Date: 2026-11-29 00:00:00
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_sqlite_uuid_text"
down_revision: str | Sequence[str] | None = "0002_history_position"
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
    """Change the declared type of every UUID column in ``sqlite_master`` (no data is touched)."""
    if op.get_context().as_sql:
        # An offline script cannot read the schema version; SQLite ignores a CHAR length,
        # so the rewritten values fit the columns as declared.
        return
    bind = op.get_bind()
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar_one())
    schema = sa.table(
        "sqlite_master",
        sa.column("type", sa.String),
        sa.column("name", sa.String),
        sa.column("sql", sa.String),
    )
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        bind.execute(
            sa.update(schema)
            .where(schema.c.type == "table", schema.c.name.in_(list(UUID_COLUMNS)))
            .values(sql=sa.func.replace(schema.c.sql, f" CHAR({old_length})", f" CHAR({new_length})"))
        )
        # Other connections (and this one) reload the schema when its version moves; a PRAGMA
        # takes no bind parameter, and the value is an int read just above.
        bind.exec_driver_sql(f"PRAGMA schema_version={version + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def _rewrite(convert: Callable[[sa.ColumnClause[str]], sa.ColumnElement[str]], length: int) -> None:
    """Rewrite every stored id of ``length`` characters; keys are checked when all are done."""
    bind = op.get_bind()
    if not op.get_context().as_sql:
        # Parents and children change one statement at a time: check the keys at commit.
        bind.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
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
