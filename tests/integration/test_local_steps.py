"""Machine steps as local activities (``@machine_step(local=True)``), on both databases.

A local step must leave the mirror as a regular step does: one row per step with its
attempts, output or final error, written by the activity-side interceptor as each attempt
runs; the events buffered before it carried in its header; each event handed to the
application's handlers once. Against the real dev server; ``local_order`` is ``mirror_order``
with local steps, so the two runs' rows are compared column by column.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.worker import Worker

from activities._verify import CompletionCheck
from sdk import InstanceHandle, StepStatus, TaskStatus, WorkflowClient
from sdk import WorkflowStatus as WS
from sdk.mirror import MirrorWriter
from sdk.protocol import PUBLISH_ACTIVITY
from tests.integration.support import (
    INSTANCES,
    Eventually,
    PendingTask,
    Row,
    instance_row,
    step_rows,
    task_rows,
)
from tests.workflows import local, mirrored
from tests.workflows.mirrored import CLERKS, Order

DEFINITIONS = (*mirrored.WORKFLOWS, *local.WORKFLOWS)
"""What this module's writer registers and its worker runs (see ``test_mirror``'s fixtures)."""

_PER_RUN = ("id", "instance_id", "workflow_id", "started_at", "completed_at", "created_at", "updated_at")
"""Step-row columns that differ between two runs of the same steps."""


async def run_order(
    client: WorkflowClient, worker: Worker, pending_task: PendingTask, definition: Any, order: Order
) -> InstanceHandle[Any]:
    """Start ``definition`` and have a clerk approve its review by signal."""
    handle: InstanceHandle[Any] = await client.start(definition, order, task_queue=worker.task_queue)
    task = await pending_task(handle)
    await handle.signal_complete_task(task.task_id, {"approved": True}, user="erin", groups=[CLERKS])
    return handle


async def history_counts(handle: InstanceHandle[Any]) -> dict[str, int]:
    """Activity tasks scheduled, timers, and local-activity markers (publishes and the others)."""
    counts = {"activities": 0, "timers": 0, "publishes": 0, "other local": 0}
    async for event in handle.temporal.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            counts["activities"] += 1
        elif event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            counts["timers"] += 1
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            attrs = event.marker_recorded_event_attributes
            if attrs.marker_name == "core_local_activity":
                counts["publishes" if PUBLISH_ACTIVITY in str(attrs.details) else "other local"] += 1
    return counts


def comparable(row: Row) -> Row:
    return {k: v for k, v in row.items() if k not in _PER_RUN}


async def test_local_steps_leave_the_rows_regular_steps_leave(
    mirror_client: WorkflowClient, worker: Worker, db: Any, pending_task: PendingTask
) -> None:
    order = Order(item=" Vase ", fail_times=1)  # the first step fails once, then succeeds
    regular = await run_order(mirror_client, worker, pending_task, mirrored.mirror_order, order)
    handle = await run_order(mirror_client, worker, pending_task, local.local_order, order)
    assert await handle.result() == await regular.result() == "shipped-vase-1"

    steps, regular_steps = await step_rows(db, handle), await step_rows(db, regular)
    names = [s["step_name"] for s in steps]
    assert names == ["local_prepare", "mirror_review", "local_ship"]
    renamed = [{**comparable(s), "step_name": s["step_name"].replace("local_", "mirror_")} for s in steps]
    assert renamed == [comparable(s) for s in regular_steps]
    prepare = steps[0]
    assert (prepare["status"], prepare["attempts"], prepare["error"]) == (StepStatus.SUCCEEDED, 2, None)
    assert prepare["output_data"] == {"item": "vase", "quantity": 1, "fail_times": 1}
    instance = await instance_row(db, handle)
    assert (instance["status"], instance["last_event_seq"]) == (WS.COMPLETED, 10)
    assert instance["started_at"] <= prepare["started_at"] <= prepare["completed_at"]  # the attempt's time

    # No activity task at all; the steps' results are markers. The events before each step rode
    # in its header: the same two publishes as the regular run (the task row, the end).
    counts, regular_counts = await history_counts(handle), await history_counts(regular)
    assert counts == {"activities": 0, "timers": 0, "publishes": 2, "other local": 3}
    assert (regular_counts["activities"], regular_counts["publishes"]) == (2, 2)


async def test_a_failing_local_step_records_its_attempts_and_its_final_error(
    mirror_client: WorkflowClient, worker: Worker, db: Any
) -> None:
    handle = await mirror_client.start(local.local_failing, Order(item="Crate"), task_queue=worker.task_queue)
    with pytest.raises(WorkflowFailureError):
        await handle.result()

    instance = await instance_row(db, handle)
    assert (instance["status"], instance["current_step"]) == (WS.FAILED, "local_explode")
    assert instance["error"] == "ValueError: cannot ship Crate (attempt 2)"
    (step,) = await step_rows(db, handle)
    assert (step["step_name"], step["status"], step["attempts"]) == ("local_explode", StepStatus.FAILED, 2)
    assert step["error"] == "ValueError: cannot ship Crate (attempt 2)"
    assert step["output_data"] is None and step["completed_at"] is not None


async def test_a_local_step_writes_the_carried_completion_before_its_code_runs(
    mirror_client: WorkflowClient,
    worker: Worker,
    db: Any,
    pending_task: PendingTask,
    assert_eventually: Eventually,
) -> None:
    # While the local step holds, its workflow task is still open: nothing but the step's own
    # header can have brought the task's completion to the mirror.
    handle = await run_order(mirror_client, worker, pending_task, local.local_then_hold, Order(item="vase"))

    async def completed_while_holding() -> None:
        ((task),) = await task_rows(db, handle)
        assert (task["status"], task["completed_by"]) == (TaskStatus.COMPLETED.value, "erin")
        instance = await instance_row(db, handle)
        assert (instance["status"], instance["current_step"]) == (WS.RUNNING, "local_hold")
        hold = [s for s in await step_rows(db, handle) if s["step_name"] == "local_hold"]
        assert [(s["status"], s["attempts"]) for s in hold] == [(StepStatus.RUNNING, 1)]

    try:
        await assert_eventually(completed_while_holding)
    finally:
        local.RELEASE.setdefault(handle.id, asyncio.Event()).set()
    assert await handle.result() == "held-vase"
    assert [(s["step_name"], s["status"]) for s in await step_rows(db, handle)] == [
        ("mirror_review", StepStatus.SUCCEEDED),
        ("local_hold", StepStatus.SUCCEEDED),
    ]


async def test_retries_past_the_local_threshold_wait_on_timers_and_count_on(
    mirror_client: WorkflowClient, worker: Worker, db: Any
) -> None:
    handle = await mirror_client.start(
        local.local_backoff_flow, Order(item="kite", fail_times=2), task_queue=worker.task_queue
    )
    # Temporal's attempt number goes on across the timers: the third attempt succeeds.
    assert await handle.result() == "kite at attempt 3"
    (step,) = await step_rows(db, handle)
    assert (step["status"], step["attempts"], step["error"]) == (StepStatus.SUCCEEDED, 3, None)
    counts = await history_counts(handle)
    assert (counts["activities"], counts["timers"]) == (0, 2)


async def test_handlers_without_a_mirror_see_each_carried_event_once(
    client: WorkflowClient, new_worker: Any, pending_task: PendingTask
) -> None:
    seen: list[Any] = []
    async with new_worker(*DEFINITIONS, event_handlers=[seen.append]) as plain:
        # The first local step fails once: its retry must not hand the carried events over again.
        handle = await run_order(
            client, plain, pending_task, local.local_order, Order(item="Desk", fail_times=1)
        )
        assert await handle.result() == "shipped-desk-1"
    mine = [e for e in seen if e.instance_id == handle.instance_id]
    assert [type(e).__name__ for e in mine] == mirrored.ORDER_EVENTS


async def test_a_worker_polling_no_activity_tasks_still_runs_local_steps(
    client: WorkflowClient, new_worker: Any
) -> None:
    # Local steps run from the worker's own registry: no activity task queue is involved.
    async with new_worker(*local.WORKFLOWS, no_remote_activities=True) as workflows_only:
        handle = await client.start(
            local.local_backoff_flow, Order(item="kite"), task_queue=workflows_only.task_queue
        )
        assert await asyncio.wait_for(handle.result(), 30) == "kite at attempt 1"


async def test_the_end_check_takes_a_clock_a_local_step_moved_on(
    mirror_client: WorkflowClient, worker: Worker, writer: MirrorWriter, db: Any
) -> None:
    # The instance ends in the workflow task that ran a 1.5 s local step: the workflow clock
    # (and the row's end) is past that task's start. The completion verifier's end check must
    # not take that for a lost task, and must still find a lost task's earlier clock.
    handle = await mirror_client.start(local.local_slow_end, Order(item="kite"), task_queue=worker.task_queue)
    assert await handle.result() == "slow-kite"
    started = [
        event.event_time.ToDatetime(tzinfo=UTC)
        async for event in handle.temporal.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    ]
    ended_at = (await instance_row(db, handle))["completed_at"]
    assert ended_at - started[-1] > timedelta(seconds=1)
    check = CompletionCheck(writer)
    assert not await check._end_differs(mirror_client.temporal, handle.id, handle.run_id, handle.instance_id)

    async with db.begin() as conn:
        lost_clock = started[-1] - timedelta(seconds=5)
        await conn.execute(
            update(INSTANCES).where(INSTANCES.c.id == handle.instance_id).values(completed_at=lost_clock)
        )
    assert await check._end_differs(mirror_client.temporal, handle.id, handle.run_id, handle.instance_id)
