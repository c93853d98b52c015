"""Audit is exact in every state an instance can be in, and rebuild repairs what it reports.

One instance per state, on SQLite and on PostgreSQL: waiting on a task without timers, at its
second task (with a reminder and a due date pending), waiting after its reminder fired and its
task was escalated, paused, running a step, between two attempts of a failing step, completed,
failed, canceled, terminated and timed out. On the live mirror the audit finds nothing but the
timeout (which never reaches a worker); a rebuild repairs that; a second rebuild changes
nothing; and rows broken on purpose (deleted, duplicated, a wrong status) are each reported,
then repaired.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowExecutionStatus
from temporalio.worker import Worker

from sdk import InstanceHandle, TaskStatus, WorkflowClient
from sdk import WorkflowStatus as WS
from sdk.mirror import MirrorBase, MirrorWriter, audit, rebuild
from tests.integration.support import INSTANCES, TASKS, Eventually, fetch, task_rows
from tests.workflows import mirrored, states
from tests.workflows.mirrored import Order
from tests.workflows.states import Check, Ticket

DEFINITIONS = (*states.WORKFLOWS, mirrored.mirror_failing)
REVIEWER = {"user": "rita", "groups": ["reviewers"]}


async def _eventually(check: Callable[[], Awaitable[None]], *, timeout: float) -> None:
    """Call ``check`` until it stops raising ``AssertionError`` (the last one after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.1)


async def snapshot(db: AsyncEngine) -> dict[str, dict[str, dict[str, Any]]]:
    """Every mirror row by table and id, without ``updated_at`` (bumped by no-op writes)."""
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for table in MirrorBase.metadata.sorted_tables:
        rows = await fetch(db, table)
        tables[table.name] = {str(r["id"]): {k: v for k, v in r.items() if k != "updated_at"} for r in rows}
    return tables


@pytest.fixture(name="instances", scope="module")
async def fixture_instances(
    mirror_client: WorkflowClient, worker: Worker, writer: MirrorWriter
) -> AsyncIterator[dict[str, InstanceHandle[Any]]]:
    """One instance in each state (the gated step's gate is opened at the end)."""
    queue = worker.task_queue

    async def start(definition: Any, item: str) -> InstanceHandle[Any]:
        return await mirror_client.start(definition, Ticket(item=item), task_queue=queue)

    async def past_first_task(item: str) -> InstanceHandle[Any]:
        handle = await start(states.states_two_tasks, item)
        task = await handle.next_task()
        await handle.complete_task(task.task_id, Check(ok=True), **REVIEWER)
        await handle.next_task()  # the second task
        return handle

    found: dict[str, InstanceHandle[Any]] = {}
    found["waiting"] = await start(states.states_two_tasks, "waiting")
    await found["waiting"].next_task()
    found["second_task"] = await past_first_task("second")
    found["paused"] = await past_first_task("paused")
    await found["paused"].pause(by="ops", reason="audit")
    found["escalated"] = await start(states.states_urgent_flow, "urgent")
    found["running"] = await start(states.states_gated_flow, "running")
    found["retrying"] = await start(states.states_retrying, "retrying")
    completed = await past_first_task("completed")
    task = await completed.next_task()
    await completed.complete_task(task.task_id, Check(ok=True), **REVIEWER)
    assert await completed.result() == "done-completed"
    found["completed"] = completed
    found["failed"] = await mirror_client.start(mirrored.mirror_failing, Order(item="bad"), task_queue=queue)
    found["canceled"] = await past_first_task("canceled")
    await found["canceled"].cancel(reason="not needed", by="ops")
    found["terminated"] = await past_first_task("terminated")
    await mirror_client.temporal.get_workflow_handle(found["terminated"].id).terminate(reason="stuck")
    timed_out = await mirror_client.temporal.start_workflow(
        states.states_two_tasks.workflow_type,
        Ticket(item="late"),
        id=f"states-late-{uuid.uuid4()}",
        task_queue=queue,
        execution_timeout=timedelta(seconds=3),
    )
    found["timed_out"] = mirror_client.get_instance(timed_out.id)

    async def settled() -> None:
        for name, status in (
            ("failed", WorkflowExecutionStatus.FAILED),
            ("canceled", WorkflowExecutionStatus.CANCELED),
            ("timed_out", WorkflowExecutionStatus.TIMED_OUT),
        ):
            assert (await found[name].temporal.describe()).status == status, name
        escalated = (await found["escalated"].state()).pending_tasks
        assert escalated and escalated[0].assignee_group == "leads"
        retrying = (await found["retrying"].temporal.describe()).raw_description.pending_activities
        assert retrying and retrying[0].attempt == 2

    await _eventually(settled, timeout=30)
    yield found
    for handle in found.values():
        states.OPEN_GATES.add(handle.id)


async def test_audit_is_clean_in_every_state_but_the_unreported_timeout(
    mirror_client: WorkflowClient,
    writer: MirrorWriter,
    instances: dict[str, InstanceHandle[Any]],
    assert_eventually: Eventually,
) -> None:
    ids = [handle.id for handle in instances.values()]

    async def only_the_timeout_differs() -> None:
        report = await audit(mirror_client.temporal, writer, ids)
        assert report.checked == len(ids)
        found = {(m.workflow_id, m.table, m.column) for m in report.mismatches}
        late = instances["timed_out"].id
        assert found == {
            (late, "workflow_instances", "status"),
            (late, "workflow_instances", "error"),
            (late, "workflow_instances", "completed_at"),
            (late, "workflow_human_tasks", "status"),
            (late, "workflow_human_tasks", "completed_at"),
            (late, "workflow_step_executions", "status"),
            (late, "workflow_step_executions", "completed_at"),
        }, [str(m) for m in report.mismatches]

    # Rows of the last transitions (a step's end, the escalation) may still be on their way.
    await assert_eventually(only_the_timeout_differs, timeout=20)
    assert await rebuild(mirror_client.temporal, writer, ids) == len(ids)
    report = await audit(mirror_client.temporal, writer, ids)
    assert report.clean, [str(m) for m in report.mismatches]


async def test_rows_of_open_instances_are_what_the_workflow_holds(
    db: AsyncEngine, instances: dict[str, InstanceHandle[Any]]
) -> None:
    # What a wrong expectation used to write into the mirror: tasks canceled in 1970.
    for name in ("waiting", "second_task", "paused", "escalated"):
        handle = instances[name]
        rows = await task_rows(db, handle)
        pending = [row for row in rows if row["status"] == TaskStatus.PENDING.value]
        assert len(pending) == 1 and pending[0]["completed_at"] is None, (name, rows)
        held = (await handle.state()).pending_tasks
        assert [t.task_id for t in held] == [str(pending[0]["id"])]


async def test_rebuild_of_a_correct_mirror_changes_nothing(
    mirror_client: WorkflowClient,
    writer: MirrorWriter,
    db: AsyncEngine,
    instances: dict[str, InstanceHandle[Any]],
) -> None:
    ids = [handle.id for handle in instances.values() if handle is not instances["running"]]
    assert (await audit(mirror_client.temporal, writer, ids)).clean
    before = await snapshot(db)
    await rebuild(mirror_client.temporal, writer, ids)
    assert await snapshot(db) == before


async def test_audit_reports_each_broken_row_and_rebuild_repairs_it(
    mirror_client: WorkflowClient,
    writer: MirrorWriter,
    db: AsyncEngine,
    instances: dict[str, InstanceHandle[Any]],
) -> None:
    paused, second = instances["paused"], instances["second_task"]
    (first_task, *_) = sorted(await task_rows(db, paused), key=lambda row: row["created_at"])
    pending = next(row for row in await task_rows(db, second) if row["status"] == TaskStatus.PENDING.value)
    duplicate = {**pending, "id": uuid.uuid4()}
    async with db.begin() as conn:
        await conn.execute(delete(TASKS).where(TASKS.c.id == first_task["id"]))  # a deleted row
        await conn.execute(insert(TASKS).values(duplicate))  # a duplicate
        await conn.execute(  # a wrong status
            update(INSTANCES).where(INSTANCES.c.id == second.instance_id).values(status=WS.COMPLETED)
        )
    ids = [paused.id, second.id]
    report = await audit(mirror_client.temporal, writer, ids)
    found = {(m.table, m.row_id, m.column) for m in report.mismatches}
    assert found == {
        ("workflow_human_tasks", str(first_task["id"]), "*"),
        ("workflow_human_tasks", str(duplicate["id"]), "*"),
        ("workflow_instances", str(second.instance_id), "status"),
    }, [str(m) for m in report.mismatches]

    await rebuild(mirror_client.temporal, writer, ids)
    report = await audit(mirror_client.temporal, writer, ids)
    assert report.clean, [str(m) for m in report.mismatches]
    assert first_task["id"] in {row["id"] for row in await task_rows(db, paused)}
    assert len(await task_rows(db, second)) == 2
