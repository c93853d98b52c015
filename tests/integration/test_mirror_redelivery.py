"""A workflow task that published and was then lost: the retried task's events win.

When a worker dies after the publish local activity committed but before its workflow task
completed, Temporal retries the workflow task and the workflow creates the same task again
(same deterministic ids) with the retried task's clock, which is what the history holds.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from sdk import events
from sdk._types import EventBatch
from sdk.mirror import HumanTaskModel, MirrorWriter, StepExecutionModel, WorkflowInstanceModel


def _batch(
    run_id: str, *items: events.WorkflowEvent, first_seq: int, seqs: tuple[int, ...] = ()
) -> tuple[EventBatch, list[events.WorkflowEvent]]:
    payload = []
    for offset, event in enumerate(items):
        data = events.event_to_dict(event)
        data["seq"] = seqs[offset] if seqs else first_seq + offset
        payload.append(data)
    batch = EventBatch(
        workflow_id="wf-redelivery",
        run_id=run_id,
        namespace="default",
        task_queue="q",
        workflow_type="redelivery@1.0.0",
        workflow_name="redelivery",
        workflow_version="1.0.0",
        tenant_id="acme",
        events=payload,
    )
    return batch, list(items)


def _task_created(
    instance: uuid.UUID, at: datetime, task_id: uuid.UUID, step_id: uuid.UUID
) -> list[events.WorkflowEvent]:
    return [
        events.StepStarted(
            instance_id=instance,
            timestamp=at,
            step_name="approve",
            step_type="HUMAN",
            step_execution_id=step_id,
            step_seq=1,
        ),
        events.HumanTaskCreated(
            instance_id=instance,
            timestamp=at,
            step_name="approve",
            task_id=task_id,
            title="Approve",
            due_at=at + timedelta(days=2),
            reminder_at=at + timedelta(days=1),
            step_execution_id=step_id,
            assignee_group="managers",
        ),
    ]


async def test_retried_workflow_task_replaces_the_lost_tasks_times(empty_database_url: str) -> None:
    writer = MirrorWriter.from_url(empty_database_url)
    await writer.upgrade_schema()
    run_id = str(uuid.uuid4())
    instance = uuid.UUID(run_id)
    task_id, step_id = uuid.uuid4(), uuid.uuid4()
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    lost, retried = start + timedelta(seconds=1), start + timedelta(seconds=11)
    try:
        started = events.WorkflowStarted(
            instance_id=instance, timestamp=start, workflow_name="redelivery", workflow_version="1.0.0"
        )
        await writer.write_batch(*_batch(run_id, started, first_seq=1))
        # The lost workflow task published, then its worker died; the retry publishes again.
        await writer.write_batch(
            *_batch(run_id, *_task_created(instance, lost, task_id, step_id), first_seq=2)
        )
        await writer.write_batch(
            *_batch(run_id, *_task_created(instance, retried, task_id, step_id), first_seq=2)
        )

        async with writer.engine.connect() as conn:
            task = (await conn.execute(select(HumanTaskModel).where(HumanTaskModel.id == task_id))).one()
            step = (
                await conn.execute(select(StepExecutionModel).where(StepExecutionModel.id == step_id))
            ).one()
        assert (task.created_at, task.due_at, task.reminder_at) == (
            retried,
            retried + timedelta(days=2),
            retried + timedelta(days=1),
        )
        assert step.started_at == retried

        # Once the task is completed, a late copy of the creation changes nothing.
        done = events.HumanTaskCompleted(
            instance_id=instance,
            timestamp=retried + timedelta(minutes=5),
            step_name="approve",
            task_id=task_id,
            completed_by="bob",
            step_execution_id=step_id,
        )
        await writer.write_batch(*_batch(run_id, done, first_seq=4))
        await writer.write_batch(
            *_batch(run_id, *_task_created(instance, lost, task_id, step_id), first_seq=2)
        )
        async with writer.engine.connect() as conn:
            task = (await conn.execute(select(HumanTaskModel).where(HumanTaskModel.id == task_id))).one()
        assert (task.status, task.created_at, task.due_at) == (
            "completed",
            retried,
            retried + timedelta(days=2),
        )
    finally:
        await writer.close()


async def test_a_batch_older_in_part_than_the_row_applies_only_its_newer_events(
    empty_database_url: str,
) -> None:
    # Two steps run in parallel and each carries its StepStarted; the second one's batch is
    # written first. A later batch repeats the first step's start with a newer event: the row
    # must end as applying the events one by one would (the older start skipped).
    writer = MirrorWriter.from_url(empty_database_url)
    await writer.upgrade_schema()
    run_id = str(uuid.uuid4())
    instance = uuid.UUID(run_id)
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def started(name: str) -> events.StepStarted:
        return events.StepStarted(
            instance_id=instance,
            timestamp=at,
            step_name=name,
            step_type="MACHINE",
            step_execution_id=uuid.uuid5(instance, name),
        )

    try:
        begun = events.WorkflowStarted(
            instance_id=instance, timestamp=at, workflow_name="redelivery", workflow_version="1.0.0"
        )
        await writer.write_batch(*_batch(run_id, begun, first_seq=1))
        await writer.write_batch(*_batch(run_id, started("ship"), first_seq=3))  # the second step's
        paused = events.WorkflowPaused(instance_id=instance, timestamp=at)
        # seq 2 is older than the row, 4 newer
        await writer.write_batch(*_batch(run_id, started("pack"), paused, first_seq=0, seqs=(2, 4)))
        async with writer.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(WorkflowInstanceModel.current_step, WorkflowInstanceModel.status,
                           WorkflowInstanceModel.last_event_seq)
                    .where(WorkflowInstanceModel.id == instance)
                )
            ).one()  # fmt: skip
        assert tuple(row) == ("ship", "PAUSED", 4)
    finally:
        await writer.close()
