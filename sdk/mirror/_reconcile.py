"""Audit and rebuild: the mirror checked against, and repaired from, Temporal's history.

Both start from the same expectation: the rows an instance's history implies, computed by
replaying it into a scratch in-memory SQLite mirror (:func:`sdk.mirror._replay.expected_rows`).
:func:`audit` compares them, row by row and column by column, with the real mirror: what
differs is a :class:`Mismatch`. :func:`rebuild` applies exactly those differences to the real
mirror, per instance in one transaction: it inserts missing rows, overwrites differing
columns and deletes rows the history does not imply. So a rebuild repairs every mismatch an
audit reports, and on a correct mirror it changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.client import Client

from sdk import registry
from sdk.protocol import GRAPH_WORKFLOW

from ._base import MirrorBase
from ._database import create_engine
from ._models import (
    HumanTaskModel,
    StepExecutionModel,
    TaskAssignmentModel,
    TaskCommentModel,
    TaskVoteModel,
    WorkflowDefinitionModel,
    WorkflowInstanceModel,
)
from ._replay import EventCapture, expected_rows, replay_batches
from ._writer import MirrorWriter

__all__ = [
    "AuditReport",
    "EventCapture",
    "Mismatch",
    "audit",
    "rebuild",
    "rebuild_instance",
    "replay_batches",
]

_tasks = cast(Table, HumanTaskModel.__table__)
_definitions = cast(Table, WorkflowDefinitionModel.__table__)
_TABLES = (
    ("workflow_instances", cast(Table, WorkflowInstanceModel.__table__), "id"),
    ("workflow_step_executions", cast(Table, StepExecutionModel.__table__), "instance_id"),
    ("workflow_human_tasks", _tasks, "instance_id"),
    ("workflow_task_assignments", cast(Table, TaskAssignmentModel.__table__), "task_id"),
    ("workflow_task_comments", cast(Table, TaskCommentModel.__table__), "task_id"),
    ("workflow_task_votes", cast(Table, TaskVoteModel.__table__), "task_id"),
)
_BY_NAME = {name: table for name, table, _ in _TABLES}
_IGNORED = {"created_at", "updated_at", "last_event_seq", "history_position", "history_clock"}
"""Columns that record how a row was written, not what Temporal recorded."""

_TIME_TOLERANCE_SECONDS = 1.0
"""Workflow time can differ by some milliseconds between a live run and its replay (the first
workflow task's clock), and an attempt's start is stamped by the activity's own clock."""

Rows = dict[tuple[str, str], dict[str, Any]]


@dataclass(frozen=True)
class Mismatch:
    """One difference between the mirror and what Temporal's history implies."""

    workflow_id: str
    table: str
    row_id: str
    column: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        return (
            f"{self.workflow_id} {self.table} {self.row_id} {self.column}: "
            f"expected {self.expected!r}, mirror has {self.actual!r}"
        )


@dataclass
class AuditReport:
    """What :func:`audit` found."""

    checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.mismatches


def _normalize(value: Any) -> Any:
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _same(expected: Any, actual: Any) -> bool:
    expected, actual = _normalize(expected), _normalize(actual)
    if isinstance(expected, datetime) and isinstance(actual, datetime):
        return abs((expected - actual).total_seconds()) <= _TIME_TOLERANCE_SECONDS
    return bool(expected == actual)


async def _rows(engine: AsyncEngine, instance_id: uuid.UUID) -> Rows:
    """Every row of one instance, by (table, id), with all its columns."""
    async with engine.connect() as conn:
        return await _rows_in(conn, instance_id)


def _compare(workflow_id: str, expected: Rows, actual: Rows) -> list[Mismatch]:
    found: list[Mismatch] = []
    for key, want in expected.items():
        have = actual.get(key)
        if have is None:
            found.append(Mismatch(workflow_id, key[0], key[1], "*", "row", None))
            continue
        for column, value in want.items():
            if column not in _IGNORED and not _same(value, have.get(column)):
                found.append(
                    Mismatch(
                        workflow_id, key[0], key[1], column, _normalize(value), _normalize(have.get(column))
                    )
                )
    for key in actual.keys() - expected.keys():
        found.append(Mismatch(workflow_id, key[0], key[1], "*", None, "row"))
    return found


async def _sdk_workflow_ids(client: Client) -> AsyncIterator[tuple[str, str]]:
    """(workflow id, run id) of every execution of a registered workflow type."""
    types = sorted({d.workflow_type for d in registry.workflows.values()} | {GRAPH_WORKFLOW})
    if not types:
        return
    quoted = ", ".join(f"'{t}'" for t in types if "'" not in t)
    async for execution in client.list_workflows(f"WorkflowType IN ({quoted})"):
        yield execution.id, execution.run_id


class _Scratch:
    """An in-memory mirror that holds the expected rows."""

    async def __aenter__(self) -> MirrorWriter:
        self.writer = MirrorWriter(create_engine("sqlite+aiosqlite://"))
        async with self.writer.engine.begin() as conn:
            await conn.run_sync(MirrorBase.metadata.create_all)
        return self.writer

    async def __aexit__(self, *exc: object) -> None:
        await self.writer.close()


async def _targets(client: Client, workflow_ids: Sequence[str] | None) -> list[tuple[str, str | None]]:
    if workflow_ids is not None:
        return [(w, None) for w in workflow_ids]
    return [pair async for pair in _sdk_workflow_ids(client)]


async def _apply(conn: AsyncConnection, scratch: AsyncEngine, expected: Rows, actual: Rows) -> None:
    """Make the mirror's rows of one instance what ``expected`` says (parents first)."""
    order = [name for name, _, _ in _TABLES]
    for key, want in sorted(expected.items(), key=lambda item: order.index(item[0][0])):
        table = _BY_NAME[key[0]]
        have = actual.get(key)
        if have is None:
            if key[0] == "workflow_instances":
                await _copy_definition(conn, scratch, want["definition_id"])
            await conn.execute(table.insert().values(want))
            continue
        changed = {c: v for c, v in want.items() if c not in _IGNORED and not _same(v, have.get(c))}
        if changed:
            # The ordering columns follow, so later live writes compare against the repair.
            for column in ("last_event_seq", "history_position", "history_clock"):
                if column in want:
                    changed[column] = want[column]
            changed["updated_at"] = datetime.now(UTC)
            await conn.execute(update(table).where(table.c.id == want["id"]).values(changed))
    for key in sorted(actual.keys() - expected.keys(), key=lambda k: -order.index(k[0])):
        table = _BY_NAME[key[0]]
        await conn.execute(delete(table).where(table.c.id == actual[key]["id"]))


async def _copy_definition(conn: AsyncConnection, scratch: AsyncEngine, definition_id: Any) -> None:
    found = await conn.execute(select(_definitions.c.id).where(_definitions.c.id == definition_id))
    if found.first() is not None:
        return
    async with scratch.connect() as source:
        found = await source.execute(select(_definitions).where(_definitions.c.id == definition_id))
        values = found.mappings().first()
    if values is not None:
        await conn.execute(_definitions.insert().values(dict(values)))


async def rebuild_instance(
    client: Client, writer: MirrorWriter, workflow_id: str, run_id: str | None = None
) -> uuid.UUID:
    """Make one instance's rows what Temporal's history implies; returns its instance id."""
    async with _Scratch() as scratch:
        instance_id = await expected_rows(client, scratch, workflow_id, run_id)
        expected = await _rows(scratch.engine, instance_id)
        async with writer.engine.begin() as conn:
            actual = await _rows_in(conn, instance_id)
            await _apply(conn, scratch.engine, expected, actual)
    return instance_id


async def _rows_in(conn: AsyncConnection, instance_id: uuid.UUID) -> Rows:
    """:func:`_rows` inside the repair's transaction."""
    rows: Rows = {}
    of_instance = select(_tasks.c.id).where(_tasks.c.instance_id == instance_id)
    task_ids = [r[0] for r in await conn.execute(of_instance)]
    for name, table, key in _TABLES:
        if key == "task_id" and not task_ids:
            continue
        where: ColumnElement[bool] = (
            table.c.task_id.in_(task_ids) if key == "task_id" else table.c[key] == instance_id
        )
        for row in (await conn.execute(select(table).where(where))).mappings():
            rows[(name, str(row["id"]))] = dict(row)
    return rows


async def rebuild(
    client: Client,
    writer: MirrorWriter,
    workflow_ids: Sequence[str] | None = None,
    progress: Callable[[int, str], None] | None = None,
) -> int:
    """Rebuild the given instances (default: every execution of a registered workflow type).

    Returns how many were rebuilt; ``progress(n, workflow_id)`` is called after each.
    """
    count = 0
    for workflow_id, run_id in await _targets(client, workflow_ids):
        await rebuild_instance(client, writer, workflow_id, run_id)
        count += 1
        if progress is not None:
            progress(count, workflow_id)
    return count


async def audit(
    client: Client,
    writer: MirrorWriter,
    workflow_ids: Sequence[str] | None = None,
    progress: Callable[[int, str], None] | None = None,
) -> AuditReport:
    """Compare the mirror with Temporal for the given instances (default: all SDK executions)."""
    report = AuditReport()
    async with _Scratch() as scratch:
        for workflow_id, run_id in await _targets(client, workflow_ids):
            instance_id = await expected_rows(client, scratch, workflow_id, run_id)
            expected = await _rows(scratch.engine, instance_id)
            actual = await _rows(writer.engine, instance_id)
            report.mismatches += _compare(workflow_id, expected, actual)
            report.checked += 1
            if progress is not None:
                progress(report.checked, workflow_id)
    return report
