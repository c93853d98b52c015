"""Ids in SQL: the documented queries find rows by the ids the tools print, on both databases.

The client, ``dwf`` and the logs print a UUID as ``str(uuid)``, the canonical dashed text. On
PostgreSQL the columns are native ``uuid``; on SQLite they hold that same text (revision
``0003_sqlite_uuid_text`` rewrote the 32 hex digits an older SQLite mirror stored).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sdk import StepStatus, StepType, TaskStatus, WorkflowStatus
from sdk.mirror import (
    HumanTaskModel,
    MirrorQueries,
    StepExecutionModel,
    WorkflowDefinitionModel,
    WorkflowInstanceModel,
    create_engine,
    current_revision,
    downgrade,
    head_revision,
    session_factory,
    upgrade,
)
from tests.integration.support import DatabaseFactory

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

# The documented SQL (docs/tables.md, "Examples"), with the id as a parameter.
ONE_TASK = sa.text("SELECT title, status FROM workflow_human_tasks WHERE id = :task_id")
TASKS_OF_A_WORKFLOW = sa.text(
    "SELECT t.id, t.title, t.status FROM workflow_human_tasks t"
    " JOIN workflow_instances i ON i.id = t.instance_id"
    " WHERE i.workflow_id = :workflow_id ORDER BY t.created_at"
)
STEP_INPUT = sa.text(
    "SELECT input_data, attempts FROM workflow_step_executions"
    " WHERE instance_id = :instance AND step_name = 'validate_expense'"
)


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, uuid.UUID]:
    """A definition, an instance, a step and a task, with fresh ids."""
    ids = {name: uuid.uuid4() for name in ("definition", "instance", "step", "task")}
    workflow_id = f"expense_approval-{ids['instance']}"
    async with sessions() as session:
        session.add(
            WorkflowDefinitionModel(
                id=ids["definition"],
                name=f"ids-{ids['definition']}",
                version="1.0.0",
                definition_json={},
                workflow_type="ids@1.0.0",
            )
        )
        await session.flush()
        session.add(
            WorkflowInstanceModel(
                id=ids["instance"],
                definition_id=ids["definition"],
                workflow_name="expense_approval",
                workflow_version="1.0.0",
                status=WorkflowStatus.WAITING,
                started_at=T0,
                workflow_id=workflow_id,
                run_id=str(uuid.uuid4()),
            )
        )
        await session.flush()
        session.add(
            StepExecutionModel(
                id=ids["step"],
                instance_id=ids["instance"],
                step_name="validate_expense",
                step_type=StepType.MACHINE,
                status=StepStatus.SUCCEEDED,
                started_at=T0,
                input_data={"amount": 120},
                attempts=2,
            )
        )
        await session.flush()
        session.add(
            HumanTaskModel(
                id=ids["task"],
                instance_id=ids["instance"],
                step_execution_id=ids["step"],
                step_name="approve",
                title="Approve 120.00 for ann",
                status=TaskStatus.PENDING,
                workflow_id=workflow_id,
            )
        )
        await session.commit()
    return ids


async def test_the_documented_queries_find_rows_by_the_printed_ids(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ids = await _rows(sessions)
    printed = {name: str(value) for name, value in ids.items()}  # what dwf and the client print
    assert all(len(text) == 36 and text.count("-") == 4 for text in printed.values())
    async with sessions() as session:
        (task,) = (await session.execute(ONE_TASK, {"task_id": printed["task"]})).all()
        assert tuple(task) == ("Approve 120.00 for ann", "pending")
        workflow_id = f"expense_approval-{printed['instance']}"
        listed = (await session.execute(TASKS_OF_A_WORKFLOW, {"workflow_id": workflow_id})).all()
        # The id a query returns is the printed text again (a UUID on PostgreSQL, text on SQLite).
        assert [(str(row.id), row.title) for row in listed] == [(printed["task"], "Approve 120.00 for ann")]
        (step,) = (await session.execute(STEP_INPUT, {"instance": printed["instance"]})).all()
        data = json.loads(step.input_data) if isinstance(step.input_data, str) else step.input_data
        assert (data, step.attempts) == ({"amount": 120}, 2)  # raw SQL: JSON text on SQLite
    # The query API takes the printed text as well as the UUID.
    queries = MirrorQueries(sessions)
    assert (await queries.get_task(printed["task"])).id == ids["task"]
    assert (await queries.get_instance(printed["instance"])).workflow_id.endswith(printed["instance"])


# -- the migration of an older SQLite mirror -----------------------------------------------------


def _old_rows(ids: dict[str, uuid.UUID]) -> list[tuple[str, dict[str, Any]]]:
    """Rows as revision 0001 left them on SQLite: every UUID as 32 hex digits."""
    common = {"created_at": T0.isoformat(), "updated_at": T0.isoformat()}
    return [
        (
            "workflow_definitions",
            {
                "id": ids["definition"].hex,
                "name": "old",
                "version": "1.0.0",
                "definition_json": "{}",
                "is_active": True,
                "workflow_type": "old@1.0.0",
                **common,
            },
        ),
        (
            "workflow_instances",
            {
                "id": ids["instance"].hex,
                "definition_id": ids["definition"].hex,
                "workflow_name": "old",
                "workflow_version": "1.0.0",
                "status": "WAITING",
                "context_data": "{}",
                "metadata": "{}",
                "started_at": T0.isoformat(),
                "workflow_id": "old-1",
                "run_id": "run-1",
                **common,
            },
        ),
        (
            "workflow_step_executions",
            {
                "id": ids["step"].hex,
                "instance_id": ids["instance"].hex,
                "step_name": "approve",
                "step_type": "HUMAN",
                "status": "WAITING",
                "started_at": T0.isoformat(),
                **common,
            },
        ),
        (
            "workflow_human_tasks",
            {
                "id": ids["task"].hex,
                "instance_id": ids["instance"].hex,
                "step_execution_id": ids["step"].hex,
                "step_name": "approve",
                "title": "Approve",
                "status": "pending",
                "workflow_id": "old-1",
                **common,
            },
        ),
        (
            "workflow_task_comments",
            {
                "id": ids["comment"].hex,
                "task_id": ids["task"].hex,
                "instance_id": ids["instance"].hex,
                "author": "ann",
                "body": "hi",
                "posted_at": T0.isoformat(),
                **common,
            },
        ),
        (
            "workflow_task_assignments",
            {
                "id": ids["assignment"].hex,
                "task_id": ids["task"].hex,
                "action": "claim",
                "to_assignee": "ann",
                "at": T0.isoformat(),
                **common,
            },
        ),
    ]


async def _raw(url: str, table: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(sa.select(sa.text("*")).select_from(sa.table(table)))
            return [dict(row._mapping) for row in result]
    finally:
        await engine.dispose()


async def test_the_migration_rewrites_an_old_sqlite_mirrors_ids(database_factory: DatabaseFactory) -> None:
    url = await database_factory.create("sqlite")
    await upgrade(url, "0001")
    names = ("definition", "instance", "step", "task", "comment", "assignment")
    ids = {name: uuid.uuid4() for name in names}
    engine = create_engine(url)
    async with engine.begin() as connection:
        for table, values in _old_rows(ids):
            columns = [sa.column(name) for name in values]
            await connection.execute(sa.insert(sa.table(table, *columns)).values(values))
    await engine.dispose()
    assert (await _raw(url, "workflow_human_tasks"))[0]["id"] == ids["task"].hex

    await upgrade(url)
    assert await current_revision(url) == head_revision()
    # Every UUID column now holds the dashed text; nothing was lost to a cascade on the way.
    tasks, comments = await _raw(url, "workflow_human_tasks"), await _raw(url, "workflow_task_comments")
    assert [(t["id"], t["instance_id"], t["step_execution_id"]) for t in tasks] == [
        (str(ids["task"]), str(ids["instance"]), str(ids["step"]))
    ]
    assert [(c["id"], c["task_id"], c["instance_id"]) for c in comments] == [
        (str(ids["comment"]), str(ids["task"]), str(ids["instance"]))
    ]
    assert [a["task_id"] for a in await _raw(url, "workflow_task_assignments")] == [str(ids["task"])]
    assert [i["definition_id"] for i in await _raw(url, "workflow_instances")] == [str(ids["definition"])]
    assert [s["instance_id"] for s in await _raw(url, "workflow_step_executions")] == [str(ids["instance"])]

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all() == []
            task = (await connection.execute(ONE_TASK, {"task_id": str(ids["task"])})).one()
            assert tuple(task) == ("Approve", "pending")
            columns = await connection.run_sync(
                lambda sync: sa.inspect(sync).get_columns("workflow_human_tasks")
            )
            declared = {column["name"]: str(column["type"]) for column in columns}
            assert (declared["id"], declared["step_execution_id"]) == ("CHAR(36)", "CHAR(36)")
        queries = MirrorQueries(session_factory(engine))
        assert [c.body for c in (await queries.task_comments(str(ids["task"]))).items] == ["hi"]
    finally:
        await engine.dispose()

    # Going back restores what 0001 stored.
    await downgrade(url, "0001")
    assert (await _raw(url, "workflow_task_comments"))[0]["task_id"] == ids["task"].hex
