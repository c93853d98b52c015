"""Eager workflow start: ``WorkflowClient.start(..., eager=True)`` with the worker in this process.

The first workflow task comes back with the start's answer instead of through the task queue;
the instance and its rows are the same as after an ordinary start (audit clean), on both
databases.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.worker import Worker

from examples.expense_approval import Expense, ExpenseOutcome, expense_approval
from sdk import StepStatus, WorkflowClient
from sdk import WorkflowStatus as WS
from sdk.mirror import MirrorWriter, audit
from tests.integration.support import instance_row, step_rows

DEFINITIONS = (expense_approval,)


def _eagerly_started(handle: object) -> bool:
    # temporalio notes on the handle whether the server answered with the first workflow task.
    return bool(getattr(handle, "__temporal_eagerly_started", False))


async def test_eager_start_runs_the_first_step_here_and_mirrors_like_any_start(
    client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    pending_task: object,
) -> None:
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    expense = Expense(employee=" Eve ", amount=42.0, description="eager")
    # The worker polls through this same client: the only case where a start can be eager.
    eager = await client.start(
        expense_approval,
        expense,
        task_queue=worker.task_queue,
        tenant_id=tenant,
        created_by="eve",
        eager=True,
    )
    ordinary = await client.start(
        expense_approval, expense, task_queue=worker.task_queue, tenant_id=tenant, created_by="eve"
    )
    assert _eagerly_started(eager.temporal)
    assert not _eagerly_started(ordinary.temporal)

    for handle in (eager, ordinary):
        task = await pending_task(handle)  # type: ignore[operator]
        await handle.complete_task(task.task_id, {"approved": True}, user="bob", groups=["managers"])
        assert await handle.result() == ExpenseOutcome(status="paid", payment_id="pay-eve-4200")
        row = await instance_row(db, handle)
        assert (row["status"], row["tenant_id"], row["created_by"]) == (WS.COMPLETED, tenant, "eve")
        assert [(s["step_name"], s["status"]) for s in await step_rows(db, handle)] == [
            ("validate_expense", StepStatus.SUCCEEDED),
            ("manager_approval", StepStatus.SUCCEEDED),
            ("pay_expense", StepStatus.SUCCEEDED),
        ]

    report = await audit(client.temporal, writer, [eager.id, ordinary.id])
    assert report.checked == 2
    assert report.clean, [str(m) for m in report.mismatches]


async def test_eager_start_without_a_local_worker_is_an_ordinary_start(
    client: WorkflowClient, worker: Worker, writer: MirrorWriter, db: AsyncEngine
) -> None:
    # No worker of this process polls that queue: the server starts the instance as usual.
    queue = f"nobody-polls-{uuid.uuid4().hex[:8]}"
    handle = await client.start(
        expense_approval, Expense(employee="x", amount=1.0), task_queue=queue, tenant_id="t", eager=True
    )
    try:
        assert not _eagerly_started(handle.temporal)
        description = await handle.temporal.describe()
        assert description.task_queue == queue
    finally:
        await handle.temporal.terminate("test over")
