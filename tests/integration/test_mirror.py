"""The SQL mirror on the real dev server, on SQLite and on PostgreSQL.

Each backend gets one fresh database, migrated by ``MirrorWriter.upgrade_schema``, and one
worker built by ``create_worker(..., mirror=writer)`` on its own task queue; a client
connected with ``database_url`` starts instances and reads the query API. The tests check
the rows after approval, rejection, failure, retries and cancellation; that replays
(a Replayer-driven rebuild, a worker without a workflow cache, duplicated batches) and
activity retries neither duplicate nor change rows; that audit finds what plain SQL broke
and rebuild repairs it; terminations; and the query API over live rows.

Some tests put a :class:`SlowSink` in front of the writer to make a race certain rather than
occasional: a query arriving while a run's first workflow task publishes, an update's
publish finishing after the workflow's last one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, delete, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError
from temporalio.worker import Worker

from examples.expense_approval import Approval, Expense, ExpenseOutcome, expense_approval
from sdk import InstanceHandle, StepStatus, StepType, TaskInfo, TaskStatus, WorkflowClient, events
from sdk import WorkflowStatus as WS
from sdk._types import EventBatch
from sdk.events import event_from_dict
from sdk.mirror import (
    HumanTaskModel,
    MirrorWriter,
    StepExecutionModel,
    TaskAssignmentModel,
    TaskCommentModel,
    WorkflowDefinitionModel,
    WorkflowInstanceModel,
    audit,
    definition_id_for,
    rebuild,
    rebuild_instance,
    replay_batches,
)
from tests.integration.support import (
    INSTANCES,
    STEPS,
    TASKS,
    Eventually,
    PendingTask,
    Row,
    fetch,
    instance_row,
    step_rows,
    task_rows,
)
from tests.workflows import mirrored
from tests.workflows.mirrored import Order

DEFINITIONS = (expense_approval, *mirrored.WORKFLOWS)
ALL_TABLES: tuple[Table, ...] = tuple(
    m.__table__  # type: ignore[misc]
    for m in (
        WorkflowDefinitionModel,
        WorkflowInstanceModel,
        StepExecutionModel,
        HumanTaskModel,
        TaskCommentModel,
        TaskAssignmentModel,
    )
)


# -- helpers ---------------------------------------------------------------------------------------


async def snapshot(db: AsyncEngine) -> dict[str, dict[str, Row]]:
    """Every row of every mirror table by id, without ``updated_at`` (bumped by no-op upserts)."""
    tables: dict[str, dict[str, Row]] = {}
    for table in ALL_TABLES:
        rows = await fetch(db, table)
        tables[table.name] = {str(r["id"]): {k: v for k, v in r.items() if k != "updated_at"} for r in rows}
    return tables


def changes(before: dict[str, dict[str, Row]], after: dict[str, dict[str, Row]]) -> list[str]:
    """What differs between two snapshots, one line per added, removed or changed value."""
    found: list[str] = []
    for table in before.keys() | after.keys():
        old, new = before.get(table, {}), after.get(table, {})
        found += [f"{table} {row_id}: added" for row_id in new.keys() - old.keys()]
        found += [f"{table} {row_id}: removed" for row_id in old.keys() - new.keys()]
        for row_id in old.keys() & new.keys():
            found += [
                f"{table} {row_id} {column}: {old[row_id][column]!r} -> {new[row_id].get(column)!r}"
                for column in old[row_id]
                if old[row_id][column] != new[row_id].get(column)
            ]
    return sorted(found)


def without(row: Row, *columns: str) -> Row:
    return {k: v for k, v in row.items() if k not in columns}


def differing(restored: Row, original: Row) -> list[str]:
    """Columns whose values differ; times may differ by audit's tolerance (one second), since a
    run's workflow clock and its replay's can differ by milliseconds."""
    found = []
    for column, value in original.items():
        other = restored.get(column)
        if isinstance(value, datetime) and isinstance(other, datetime):
            if abs((value - other).total_seconds()) <= 1.0:
                continue
        elif value == other:
            continue
        found.append(f"{column}: {value!r} -> {other!r}")
    return found


class SlowSink:
    """The writer behind a delay for batches holding one of ``slow`` event types.

    Makes the publish local activity of a run's first workflow task slow, so that a query sent
    right after the start reliably arrives while it runs (which also happens, by chance, with a
    fast database and a client polling the instance).
    """

    def __init__(self, writer: MirrorWriter, *slow: type[events.WorkflowEvent], delay: float = 0.5) -> None:
        self.writer = writer
        self.slow = slow
        self.delay = delay

    async def write_batch(self, batch: EventBatch, batch_events: Sequence[events.WorkflowEvent]) -> None:
        if any(isinstance(event, self.slow) for event in batch_events):
            await asyncio.sleep(self.delay)
        await self.writer.write_batch(batch, batch_events)


async def start_expense(
    client: WorkflowClient, worker: Worker, tenant: str, *, amount: float = 120.5, user: str = "ann"
) -> InstanceHandle[ExpenseOutcome]:
    expense = Expense(employee=f" {user.title()} ", amount=amount, description="taxi to the airport")
    return await client.start(
        expense_approval, expense, task_queue=worker.task_queue, tenant_id=tenant, created_by=user
    )


def new_tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


# -- 1, 2: approval and rejection; the rows against what the workflow shows ------------------------


async def test_rows_while_waiting_and_after_approval(
    mirror_client: WorkflowClient, worker: Worker, db: AsyncEngine, pending_task: PendingTask
) -> None:
    tenant = new_tenant()
    handle = await start_expense(mirror_client, worker, tenant)
    task = await pending_task(handle)

    # The workflow waits on the task now: its row must already be committed, no polling.
    (waiting_task,) = await task_rows(db, handle)
    assert waiting_task["id"] == uuid.UUID(task.task_id)
    assert waiting_task["status"] == TaskStatus.PENDING.value
    assert waiting_task["tenant_id"] == tenant
    assert waiting_task["assignee_group"] == "managers"
    assert waiting_task["title"] == "Approve 120.50 for ann"
    assert waiting_task["form_schema"] == Approval.model_json_schema()
    assert waiting_task["due_at"] - waiting_task["created_at"] == timedelta(days=2)
    waiting = await instance_row(db, handle)
    assert (waiting["status"], waiting["current_step"]) == (WS.WAITING, "manager_approval")
    assert [(s["step_name"], s["status"]) for s in await step_rows(db, handle)] == [
        ("validate_expense", StepStatus.SUCCEEDED),
        ("manager_approval", StepStatus.WAITING),
    ]

    await mirror_client.complete_task(
        task.task_id, {"approved": True}, user="bob", groups=["managers"], comment="fine", tenant_id=tenant
    )
    outcome = await handle.result()
    assert outcome == ExpenseOutcome(status="paid", payment_id="pay-ann-12050")

    # The final batch is committed before Temporal records the completion: no polling either.
    instance = await instance_row(db, handle)
    assert instance["status"] == WS.COMPLETED
    assert instance["context_data"] == {
        "result": outcome.model_dump(mode="json"),
        "final_step": "pay_expense",
    }
    assert instance["current_step"] is None and instance["error"] is None
    assert instance["completed_at"] is not None and instance["completed_at"] >= instance["started_at"]
    assert (instance["tenant_id"], instance["created_by"]) == (tenant, "ann")
    assert (instance["workflow_id"], instance["run_id"]) == (handle.id, handle.run_id)
    assert (instance["workflow_name"], instance["workflow_version"]) == ("expense_approval", "1.0.0")
    assert instance["task_queue"] == worker.task_queue
    assert instance["metadata"]["input"] == {
        "employee": " Ann ",
        "amount": 120.5,
        "description": "taxi to the airport",
        "flaky_bank": False,
    }

    (definition,) = await fetch(
        db,
        WorkflowDefinitionModel.__table__,
        WorkflowDefinitionModel.__table__.c.id == instance["definition_id"],
    )
    assert definition["id"] == definition_id_for("expense_approval@1.0.0")
    assert (definition["name"], definition["version"], definition["is_active"]) == (
        "expense_approval",
        "1.0.0",
        True,
    )
    steps_json = {s["name"]: s for s in definition["definition_json"]["steps"]}
    assert set(steps_json) == {"validate_expense", "manager_approval", "pay_expense"}
    assert steps_json["manager_approval"]["type"] == "HUMAN"
    assert steps_json["manager_approval"]["form_schema"] == Approval.model_json_schema()
    assert steps_json["pay_expense"]["options"]["max_attempts"] == 5

    validate, approval, pay = await step_rows(db, handle)
    normalized = {
        "employee": "ann",
        "amount": 120.5,
        "description": "taxi to the airport",
        "flaky_bank": False,
    }
    assert (validate["step_name"], validate["step_type"], validate["status"]) == (
        "validate_expense",
        StepType.MACHINE,
        StepStatus.SUCCEEDED,
    )
    assert validate["attempts"] == 1 and validate["error"] is None
    assert validate["input_data"] == instance["metadata"]["input"]
    assert validate["output_data"] == normalized
    assert (approval["step_name"], approval["step_type"], approval["status"]) == (
        "manager_approval",
        StepType.HUMAN,
        StepStatus.SUCCEEDED,
    )
    assert (approval["assigned_to"], approval["completed_by"]) == ("managers", "bob")
    assert approval["input_data"] == normalized
    assert approval["output_data"] == {"approved": True, "comment": None}
    assert (pay["step_name"], pay["status"], pay["attempts"]) == ("pay_expense", StepStatus.SUCCEEDED, 1)
    assert pay["output_data"] == {"value": "pay-ann-12050"}
    for step in (validate, approval, pay):
        assert step["workflow_id"] == handle.id
        assert step["completed_at"] is not None and step["completed_at"] >= step["started_at"]

    (done,) = await task_rows(db, handle)
    assert done["status"] == TaskStatus.COMPLETED.value
    assert done["form_data"] == {"approved": True, "comment": None}
    assert (done["completed_by"], done["comment"], done["tenant_id"]) == ("bob", "fine", tenant)
    assert done["step_execution_id"] == approval["id"]
    assert done["completed_at"] is not None
    # Every step row carries its sequence number (its id derives from it), human steps too.
    assert [step["step_seq"] for step in (validate, approval, pay)] == [1, 2, 3]


async def test_rows_after_rejection(
    mirror_client: WorkflowClient, worker: Worker, db: AsyncEngine, pending_task: PendingTask
) -> None:
    tenant = new_tenant()
    handle = await start_expense(mirror_client, worker, tenant)
    task = await pending_task(handle)
    await mirror_client.complete_task(
        task.task_id, Approval(approved=False, comment="no receipt"), user="bob", groups=["managers"]
    )
    assert await handle.result() == ExpenseOutcome(status="rejected")

    instance = await instance_row(db, handle)
    assert instance["status"] == WS.COMPLETED
    assert instance["context_data"] == {
        "result": {"status": "rejected", "payment_id": None},
        "final_step": "manager_approval",
    }
    steps = await step_rows(db, handle)
    assert [(s["step_name"], s["status"]) for s in steps] == [
        ("validate_expense", StepStatus.SUCCEEDED),
        ("manager_approval", StepStatus.SUCCEEDED),
    ]
    assert steps[1]["output_data"] == {"approved": False, "comment": "no receipt"}
    (done,) = await task_rows(db, handle)
    assert (done["status"], done["completed_by"]) == (TaskStatus.COMPLETED.value, "bob")
    assert done["form_data"] == {"approved": False, "comment": "no receipt"}


async def test_completing_the_last_steps_task_returns_and_is_mirrored(
    mirror_client: WorkflowClient,
    new_worker: Any,
    writer: MirrorWriter,
    db: AsyncEngine,
    pending_task: PendingTask,
) -> None:
    # The completing update publishes the task's completion while the workflow, free to go
    # on, publishes its own end. The update's write is the slower one here (on PostgreSQL
    # the two also run in parallel, and either can finish first): the workflow must not
    # complete before the update has answered and its batch is written.
    sink = SlowSink(writer, events.HumanTaskCompleted, delay=0.3)
    async with new_worker(mirrored.mirror_intake, mirror=writer, event_sink=sink) as slow:
        handle = await mirror_client.start(
            mirrored.mirror_intake, Order(item="Stool"), task_queue=slow.task_queue
        )
        task = await pending_task(handle)
        done = await handle.complete_task(
            task.task_id, {"approved": True}, user="erin", groups=[mirrored.CLERKS]
        )
        assert (done.status, done.completed_by) == (TaskStatus.COMPLETED, "erin")
        assert await handle.result() == "accepted"
    (row,) = await task_rows(db, handle)
    assert (row["status"], row["completed_by"]) == (TaskStatus.COMPLETED.value, "erin")
    (step,) = await step_rows(db, handle)
    assert (step["status"], step["completed_by"]) == (StepStatus.SUCCEEDED, "erin")
    assert (await instance_row(db, handle))["status"] == WS.COMPLETED


async def test_task_row_exists_when_the_first_workflow_task_shows_the_task(
    mirror_client: WorkflowClient,
    new_worker: Any,
    writer: MirrorWriter,
    db: AsyncEngine,
    assert_eventually: Eventually,
) -> None:
    # A human step first: its task is created in the first workflow task, and the client asks
    # for it while that task's row is still being written.
    sink = SlowSink(writer, events.HumanTaskCreated)
    async with new_worker(mirrored.mirror_intake, mirror=writer, event_sink=sink) as slow:
        handle = await mirror_client.start(
            mirrored.mirror_intake, Order(item="Sofa"), task_queue=slow.task_queue
        )

        async def shown_task() -> tuple[TaskInfo, list[Row]]:
            state = await handle.state()
            assert state.pending_tasks, "no pending task yet"
            return state.pending_tasks[0], await task_rows(db, handle)  # read at once, no polling

        task, rows = await assert_eventually(shown_task)
        assert [(r["id"], r["status"]) for r in rows] == [
            (uuid.UUID(task.task_id), TaskStatus.PENDING.value)
        ], "the state query shows a task whose row is not committed"
        await handle.complete_task(task.task_id, {"approved": True}, user="erin", groups=[mirrored.CLERKS])
        assert await handle.result() == "accepted"
    (row,) = await task_rows(db, handle)
    assert (row["status"], row["completed_by"]) == (TaskStatus.COMPLETED.value, "erin")


async def activity_outcome(handle: InstanceHandle[Any], activity_type: str) -> str:
    """How the activity ended, from the history: "completed", or its last failure's message."""
    scheduled: set[int] = set()
    async for event in handle.temporal.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == activity_type:
                scheduled.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            if event.activity_task_completed_event_attributes.scheduled_event_id in scheduled:
                return "completed"
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            attrs = event.activity_task_failed_event_attributes
            if attrs.scheduled_event_id in scheduled:
                return attrs.failure.message
    raise AssertionError(f"{activity_type} has not finished in {handle.id}")


async def test_parallel_step_keeps_its_attempt_when_the_instance_row_lags(
    mirror_client: WorkflowClient,
    new_worker: Any,
    writer: MirrorWriter,
    db: AsyncEngine,
    pending_task: PendingTask,
    assert_eventually: Eventually,
) -> None:
    # A review and a single-attempt step start together in the first workflow task. A query
    # during its (slow) publish makes the worker send the step's activity before the instance
    # row exists; recording the attempt must not cost the step its only attempt.
    sink = SlowSink(writer, events.WorkflowStarted)
    async with new_worker(mirrored.mirror_parallel, mirror=writer, event_sink=sink) as slow:
        handle = await mirror_client.start(
            mirrored.mirror_parallel, Order(item="Bed"), task_queue=slow.task_queue
        )
        task = await pending_task(handle)
        outcome = await assert_eventually(lambda: activity_outcome(handle, "mirror_label"))
        assert outcome == "completed", f"mirror_label lost its only attempt: {outcome}"
        await handle.complete_task(task.task_id, {"approved": True}, user="erin", groups=[mirrored.CLERKS])
        assert await handle.result() == "label-Bed:True"
    steps = {s["step_name"]: s for s in await step_rows(db, handle)}
    label = steps["mirror_label"]
    assert (label["status"], label["attempts"], label["error"]) == (StepStatus.SUCCEEDED, 1, None)
    assert (await instance_row(db, handle))["status"] == WS.COMPLETED


# -- 3, 4, 5: failure, retry, cancellation -----------------------------------------------------


async def test_non_retryable_step_failure_fails_step_and_instance(
    mirror_client: WorkflowClient, worker: Worker, db: AsyncEngine
) -> None:
    handle = await start_expense(mirror_client, worker, new_tenant(), amount=20_000)
    with pytest.raises(WorkflowFailureError):
        await handle.result()

    instance = await instance_row(db, handle)
    assert instance["status"] == WS.FAILED
    assert instance["error"] == "LimitExceeded: amount above the 10,000 limit"
    assert instance["completed_at"] is not None
    (validate,) = await step_rows(db, handle)
    assert (validate["step_name"], validate["status"], validate["attempts"]) == (
        "validate_expense",
        StepStatus.FAILED,
        1,
    )
    assert validate["error"] == "LimitExceeded: amount above the 10,000 limit"
    assert validate["output_data"] is None and validate["completed_at"] is not None
    assert await task_rows(db, handle) == []


async def test_exhausted_retries_fail_instance_and_cancel_its_open_task(
    mirror_client: WorkflowClient, worker: Worker, db: AsyncEngine
) -> None:
    handle = await mirror_client.start(
        mirrored.mirror_failing, Order(item="Crate"), task_queue=worker.task_queue
    )
    with pytest.raises(WorkflowFailureError):
        await handle.result()

    instance = await instance_row(db, handle)
    assert instance["status"] == WS.FAILED
    assert instance["error"] == "ValueError: cannot ship Crate (attempt 2)"
    steps = {s["step_name"]: s for s in await step_rows(db, handle)}
    assert set(steps) == {"mirror_review", "mirror_explode"}
    explode = steps["mirror_explode"]
    assert (explode["status"], explode["attempts"]) == (StepStatus.FAILED, 2)
    assert explode["error"] == "ValueError: cannot ship Crate (attempt 2)"
    review = steps["mirror_review"]
    assert review["status"] == StepStatus.CANCELED and review["completed_at"] is not None
    (task,) = await task_rows(db, handle)
    assert task["status"] == TaskStatus.CANCELED.value
    assert task["completed_at"] is not None and task["completed_by"] is None


async def test_retried_step_has_one_row_with_its_attempts(
    mirror_client: WorkflowClient, worker: Worker, db: AsyncEngine
) -> None:
    # Also the "idempotent under activity retries" case: three attempts, one row.
    handle = await mirror_client.start(
        mirrored.mirror_flaky, Order(item=" Widget ", fail_times=2), task_queue=worker.task_queue
    )
    assert await handle.result() == "widget"

    (step,) = await step_rows(db, handle)
    assert (step["step_name"], step["status"], step["attempts"]) == (
        "mirror_prepare",
        StepStatus.SUCCEEDED,
        3,
    )
    assert step["error"] is None  # the failed attempts' error is cleared by the success
    assert step["output_data"] == {"item": "widget", "quantity": 1, "fail_times": 2}
    assert step["step_seq"] == 1
    assert (await instance_row(db, handle))["status"] == WS.COMPLETED


async def test_cancellation_cancels_instance_task_and_waiting_step(
    mirror_client: WorkflowClient, worker: Worker, db: AsyncEngine, pending_task: PendingTask
) -> None:
    handle = await start_expense(mirror_client, worker, new_tenant())
    await pending_task(handle)
    await handle.cancel(reason="duplicate claim", by="carol")
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert isinstance(failed.value.cause, CancelledError)

    instance = await instance_row(db, handle)
    assert instance["status"] == WS.CANCELED
    assert instance["error"] == "canceled: duplicate claim (by carol)"
    assert instance["completed_at"] is not None
    assert [(s["step_name"], s["status"]) for s in await step_rows(db, handle)] == [
        ("validate_expense", StepStatus.SUCCEEDED),
        ("manager_approval", StepStatus.CANCELED),
    ]
    (task,) = await task_rows(db, handle)
    assert task["status"] == TaskStatus.CANCELED.value and task["completed_at"] is not None


# -- 6: idempotency under replays and duplicated batches -------------------------------------------


async def test_rebuild_and_repeated_batches_leave_rows_unchanged(
    mirror_client: WorkflowClient,
    new_worker: Any,
    writer: MirrorWriter,
    db: AsyncEngine,
    pending_task: PendingTask,
) -> None:
    # The client polls the instance from its start, so a query lands while the first workflow
    # task publishes (made slow here to make that certain). The worker then completes that
    # task early, and the live run's clock differs from its replay's: a rebuild must still
    # leave every row as it is.
    sink = SlowSink(writer, events.WorkflowStarted)
    async with new_worker(mirrored.mirror_order, mirror=writer, event_sink=sink) as slow:
        handle = await mirror_client.start(
            mirrored.mirror_order, Order(item="Lamp", quantity=2, fail_times=1), task_queue=slow.task_queue
        )
        task = await pending_task(handle)
        await handle.complete_task(task.task_id, {"approved": True}, user="erin", groups=[mirrored.CLERKS])
        assert await handle.result() == "shipped-lamp-2"
    before = await snapshot(db)
    assert [s["attempts"] for s in await step_rows(db, handle)] == [2, 0, 1]

    # (a) The whole history replayed through the writer (what `dwf mirror rebuild` does).
    assert await rebuild_instance(mirror_client.temporal, writer, handle.id) == handle.instance_id
    assert changes(before, await snapshot(db)) == []

    # (d) The same batches written again, each twice: nothing changes, nothing is added.
    batches = await replay_batches(await handle.temporal.fetch_history())
    seqs = [item["seq"] for batch in batches for item in batch.events]
    assert seqs == list(range(1, len(seqs) + 1))
    for batch in batches:
        for _ in range(2):
            await writer.write_batch(batch, [event_from_dict(item) for item in batch.events])
    assert changes(before, await snapshot(db)) == []


async def test_worker_without_workflow_cache_writes_each_row_once(
    mirror_client: WorkflowClient,
    new_worker: Any,
    writer: MirrorWriter,
    db: AsyncEngine,
    pending_task: PendingTask,
) -> None:
    seen: list[events.WorkflowEvent] = []
    # Every workflow task replays the run from its start: replayed code must not publish again.
    async with new_worker(
        mirrored.mirror_order, mirror=writer, event_handlers=[seen.append], max_cached_workflows=0
    ) as uncached:
        handle = await mirror_client.start(
            mirrored.mirror_order, Order(item="Desk", fail_times=1), task_queue=uncached.task_queue
        )
        task = await pending_task(handle)
        await handle.complete_task(task.task_id, {"approved": True}, user="erin", groups=[mirrored.CLERKS])
        assert await handle.result() == "shipped-desk-1"

    steps = await step_rows(db, handle)
    assert [(s["step_name"], s["status"], s["attempts"]) for s in steps] == [
        ("mirror_prepare", StepStatus.SUCCEEDED, 2),
        ("mirror_review", StepStatus.SUCCEEDED, 0),
        ("mirror_ship", StepStatus.SUCCEEDED, 1),
    ]
    (task_row,) = await task_rows(db, handle)
    assert (task_row["status"], task_row["completed_by"]) == (TaskStatus.COMPLETED.value, "erin")
    instance = await instance_row(db, handle)
    assert (instance["status"], instance["context_data"]["result"]) == (WS.COMPLETED, "shipped-desk-1")
    assert [type(e).__name__ for e in seen] == mirrored.ORDER_EVENTS


# -- 7: audit and rebuild --------------------------------------------------------------------------


async def test_audit_finds_deleted_and_altered_rows_and_rebuild_restores_them(
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    pending_task: PendingTask,
) -> None:
    temporal = mirror_client.temporal
    handle = await start_expense(mirror_client, worker, new_tenant())
    task = await pending_task(handle)
    await mirror_client.complete_task(task.task_id, {"approved": True}, user="bob", groups=["managers"])
    await handle.result()

    report = await audit(temporal, writer, [handle.id])
    assert report.checked == 1
    assert report.clean, [str(m) for m in report.mismatches]

    (task_before,) = await task_rows(db, handle)
    pay_before = (await step_rows(db, handle))[2]
    async with db.begin() as conn:
        await conn.execute(delete(TASKS).where(TASKS.c.id == task_before["id"]))
        await conn.execute(delete(STEPS).where(STEPS.c.id == pay_before["id"]))
    report = await audit(temporal, writer, [handle.id])
    assert {(m.workflow_id, m.table, m.row_id, m.column) for m in report.mismatches} == {
        (handle.id, "workflow_human_tasks", str(task_before["id"]), "*"),
        (handle.id, "workflow_step_executions", str(pay_before["id"]), "*"),
    }

    assert await rebuild(temporal, writer, [handle.id]) == 1
    report = await audit(temporal, writer, [handle.id])
    assert report.clean, [str(m) for m in report.mismatches]
    (task_after,) = await task_rows(db, handle)
    assert differing(without(task_after, "updated_at"), without(task_before, "updated_at")) == []
    pay_after = (await step_rows(db, handle))[2]
    assert differing(pay_after, without(pay_before, "created_at", "updated_at")) == []

    async with db.begin() as conn:
        await conn.execute(
            update(INSTANCES).where(INSTANCES.c.id == handle.instance_id).values(status=WS.FAILED)
        )
    report = await audit(temporal, writer, [handle.id])
    assert [(m.table, m.row_id, m.column, m.expected, m.actual) for m in report.mismatches] == [
        ("workflow_instances", str(handle.instance_id), "status", WS.COMPLETED, WS.FAILED)
    ]
    await rebuild(temporal, writer, [handle.id])
    report = await audit(temporal, writer, [handle.id])
    assert report.clean, [str(m) for m in report.mismatches]
    assert (await instance_row(db, handle))["status"] == WS.COMPLETED


# -- 8: terminations -------------------------------------------------------------------------------


async def test_terminate_through_client_with_database_is_recorded(
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    pending_task: PendingTask,
) -> None:
    handle = await start_expense(mirror_client, worker, new_tenant())
    await pending_task(handle)
    await mirror_client.temporal.get_workflow_handle(handle.id).terminate(reason="stuck")

    # The client interceptor writes the row before terminate() returns.
    instance = await instance_row(db, handle)
    assert instance["status"] == WS.TERMINATED and instance["completed_at"] is not None
    assert instance["error"] == "terminated: stuck"
    (task,) = await task_rows(db, handle)
    assert task["status"] == TaskStatus.CANCELED.value
    assert [(s["step_name"], s["status"]) for s in await step_rows(db, handle)] == [
        ("validate_expense", StepStatus.SUCCEEDED),
        ("manager_approval", StepStatus.CANCELED),
    ]
    # What the client recorded is what Temporal's history implies: the audit agrees.
    report = await audit(mirror_client.temporal, writer, [handle.id])
    assert report.clean, [str(m) for m in report.mismatches]


async def test_rebuild_records_termination_by_a_client_without_database(
    client: WorkflowClient,
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    pending_task: PendingTask,
) -> None:
    handle = await start_expense(mirror_client, worker, new_tenant())
    await pending_task(handle)
    await client.temporal.get_workflow_handle(handle.id).terminate(reason="by an operator")
    # Terminations never reach a worker: the mirror cannot know until it is rebuilt.
    assert (await instance_row(db, handle))["status"] == WS.WAITING
    assert not (await audit(client.temporal, writer, [handle.id])).clean

    assert await rebuild(client.temporal, writer, [handle.id]) == 1
    instance = await instance_row(db, handle)
    assert instance["status"] == WS.TERMINATED and instance["completed_at"] is not None
    assert instance["error"] == "terminated: by an operator"  # the reason, as the client records it
    (task,) = await task_rows(db, handle)
    assert task["status"] == TaskStatus.CANCELED.value
    assert [(s["step_name"], s["status"]) for s in await step_rows(db, handle)] == [
        ("validate_expense", StepStatus.SUCCEEDED),
        ("manager_approval", StepStatus.CANCELED),
    ]
    report = await audit(client.temporal, writer, [handle.id])
    assert report.clean, [str(m) for m in report.mismatches]


# -- 9: the query API over live rows -------------------------------------------------------------


async def test_queries_on_live_rows(
    mirror_client: WorkflowClient, worker: Worker, pending_task: PendingTask
) -> None:
    queries = mirror_client.queries
    tenant, other = new_tenant(), new_tenant()
    first = await start_expense(mirror_client, worker, tenant, user="ann")
    second = await start_expense(mirror_client, worker, tenant, user="bea", amount=80)
    foreign = await start_expense(mirror_client, worker, other, user="cid")
    order = await mirror_client.start(
        mirrored.mirror_order, Order(item="Chair"), task_queue=worker.task_queue, tenant_id=tenant
    )
    handles = [first, second, foreign, order]
    try:
        tasks = [await pending_task(h) for h in handles]
        ids = [uuid.UUID(t.task_id) for t in tasks]

        inbox = await queries.inbox("carol", ["managers"], tenant_id=tenant)
        assert {t.id for t in inbox.items} == {ids[0], ids[1]} and inbox.total == 2
        assert all(t.status is TaskStatus.PENDING for t in inbox.items)
        assert (await queries.inbox("dave", ["engineers"], tenant_id=tenant)).total == 0
        assert [t.id for t in (await queries.inbox("carol", ["managers"], tenant_id=other)).items] == [ids[2]]
        assert [t.id for t in (await queries.inbox("erin", [mirrored.CLERKS], tenant_id=tenant)).items] == [
            ids[3]
        ]
        assert (await queries.inbox("carol", ["managers"], tenant_id="no-such-tenant")).total == 0

        waiting = await queries.instances(
            tenant_id=tenant, status=WS.WAITING, workflow_name="expense_approval"
        )
        assert {i.workflow_id for i in waiting.items} == {first.id, second.id} and waiting.total == 2
        assert (await queries.instances(tenant_id=tenant, workflow_name="tests.mirror_order")).total == 1
        assert (await queries.instances(tenant_id=tenant, status=WS.COMPLETED)).total == 0
        assert (await queries.instances(tenant_id=other)).total == 1

        await mirror_client.complete_task(
            ids[0], {"approved": True}, user="carol", groups=["managers"], tenant_id=tenant
        )
        await first.result()
        completed = await queries.instances(
            tenant_id=tenant, status=WS.COMPLETED, workflow_name="expense_approval"
        )
        assert [i.workflow_id for i in completed.items] == [first.id]
        assert (await queries.instances(tenant_id=tenant, status=WS.WAITING)).total == 2
        assert [t.id for t in (await queries.inbox("carol", ["managers"], tenant_id=tenant)).items] == [
            ids[1]
        ]

        history = await queries.step_history(first.instance_id, tenant_id=tenant)
        assert [(s.step_name, s.status) for s in history.items] == [
            ("validate_expense", StepStatus.SUCCEEDED),
            ("manager_approval", StepStatus.SUCCEEDED),
            ("pay_expense", StepStatus.SUCCEEDED),
        ]
        assert history.total == 3
        assert [s.started_at for s in history.items] == sorted(s.started_at for s in history.items)
        assert [s.step_seq for s in history.items] == [1, 2, 3]
    finally:
        for handle in handles[1:]:
            await handle.temporal.cancel()
