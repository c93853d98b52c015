"""The mirror converges to what Temporal recorded, and waits out database outages in order.

- Row versions are ordered by their position in the history: a workflow task Temporal never
  recorded (lost with its worker, or an update lost with a server restart) repeats its
  sequence numbers when retried, at a greater position, and the retry's rows supersede the
  lost task's; a late copy of the lost task's batch changes nothing.
- Attempts equal Temporal's: a later attempt's start supersedes an earlier attempt's final
  row (that attempt's result never reached Temporal), and a late end of an earlier attempt
  changes nothing.
- While the database is unavailable, writes wait in the writer's queue: the caller goes on
  after its bounded wait, the outage shows in the metrics, and the rows commit in order when
  the database returns. A bad write still fails its caller at once.

On SQLite and on PostgreSQL (the outage case on a locked SQLite file; the fault suite stops a
private PostgreSQL server).
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from sdk import StepStatus, events
from sdk._types import EventBatch
from sdk.mirror import HumanTaskModel, MirrorWriter, StepExecutionModel, WorkflowInstanceModel
from tests.integration.support import Eventually

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _batch(
    run_id: str, items: list[events.WorkflowEvent], *, first_seq: int, pos: int, clock: int = 0
) -> tuple[EventBatch, list[events.WorkflowEvent]]:
    payload = []
    for offset, event in enumerate(items):
        data = events.event_to_dict(event)
        data.update(seq=first_seq + offset, pos=pos, clock=clock)
        payload.append(data)
    batch = EventBatch(
        workflow_id="wf-convergence",
        run_id=run_id,
        namespace="default",
        task_queue="q",
        workflow_type="convergence@1.0.0",
        workflow_name="convergence",
        workflow_version="1.0.0",
        events=payload,
    )
    return batch, items


class _Run:
    def __init__(self) -> None:
        self.run_id = str(uuid.uuid4())
        self.instance = uuid.UUID(self.run_id)
        self.task_id, self.step_id = uuid.uuid4(), uuid.uuid4()

    def started(self) -> list[events.WorkflowEvent]:
        return [
            events.WorkflowStarted(
                instance_id=self.instance, timestamp=AT, workflow_name="convergence", workflow_version="1.0.0"
            ),
            events.StepStarted(
                instance_id=self.instance,
                timestamp=AT,
                step_name="approve",
                step_type="HUMAN",
                step_execution_id=self.step_id,
                step_seq=1,
            ),
            events.HumanTaskCreated(
                instance_id=self.instance,
                timestamp=AT,
                step_name="approve",
                task_id=self.task_id,
                title="Approve",
                step_execution_id=self.step_id,
                assignee_group="managers",
            ),
        ]

    def approved(self, by: str, at: datetime) -> list[events.WorkflowEvent]:
        return [
            events.HumanTaskCompleted(
                instance_id=self.instance,
                timestamp=at,
                step_name="approve",
                task_id=self.task_id,
                completed_by=by,
                form_data={"by": by},
                step_execution_id=self.step_id,
            ),
            events.WorkflowCompleted(instance_id=self.instance, timestamp=at, status="COMPLETED"),
        ]


async def _rows(writer: MirrorWriter, run: _Run) -> tuple[Any, Any]:
    async with writer.engine.connect() as conn:
        instance = (
            await conn.execute(select(WorkflowInstanceModel).where(WorkflowInstanceModel.id == run.instance))
        ).one()
        task = (await conn.execute(select(HumanTaskModel).where(HumanTaskModel.id == run.task_id))).one()
    return instance, task


async def _writer(url: str, **options: Any) -> MirrorWriter:
    writer = MirrorWriter.from_url(url, **options)
    await writer.upgrade_schema()
    return writer


async def test_the_recorded_workflow_task_supersedes_a_lost_ones_rows(empty_database_url: str) -> None:
    writer = await _writer(empty_database_url)
    run = _Run()
    lost_at, real_at = AT + timedelta(minutes=1), AT + timedelta(minutes=3)
    try:
        await writer.write_batch(*_batch(run.run_id, run.started(), first_seq=1, pos=3))
        # A workflow task at history length 8 completed the task and the run, published, and
        # was never recorded; Temporal's retry at length 11 repeats sequence numbers 4 and 5.
        lost = _batch(run.run_id, run.approved("mallory", lost_at), first_seq=4, pos=8)
        await writer.write_batch(*lost)
        await writer.write_batch(*_batch(run.run_id, run.approved("bob", real_at), first_seq=4, pos=11))

        instance, task = await _rows(writer, run)
        assert (task.status, task.completed_by, task.form_data, task.completed_at) == (
            "completed",
            "bob",
            {"by": "bob"},
            real_at,
        )
        assert (instance.status, instance.completed_at) == ("COMPLETED", real_at)

        await writer.write_batch(*lost)  # a late copy of the lost task's batch
        instance, task = await _rows(writer, run)
        assert (task.completed_by, task.completed_at, instance.completed_at) == ("bob", real_at, real_at)
    finally:
        await writer.close()


async def test_at_the_same_position_the_later_workflow_task_wins(empty_database_url: str) -> None:
    # The server lost the events before the lost workflow task too (a restart before they
    # were persisted): its retry runs at the same history length, but later.
    writer = await _writer(empty_database_url)
    run = _Run()
    lost_at, real_at = AT + timedelta(minutes=1), AT + timedelta(minutes=3)

    def clock(at: datetime) -> int:
        return int(at.timestamp() * 1_000_000)

    try:
        await writer.write_batch(*_batch(run.run_id, run.started(), first_seq=1, pos=3, clock=clock(AT)))
        lost = _batch(run.run_id, run.approved("mallory", lost_at), first_seq=4, pos=8, clock=clock(lost_at))
        await writer.write_batch(*lost)
        real = _batch(run.run_id, run.approved("bob", real_at), first_seq=4, pos=8, clock=clock(real_at))
        await writer.write_batch(*real)
        await writer.write_batch(*lost)  # and a late copy of the lost one
        instance, task = await _rows(writer, run)
        assert (task.completed_by, task.completed_at, instance.completed_at) == ("bob", real_at, real_at)
    finally:
        await writer.close()


async def test_a_later_attempt_supersedes_an_earlier_attempts_final_row(empty_database_url: str) -> None:
    writer = await _writer(empty_database_url)
    run = _Run()
    step_id = uuid.uuid4()

    async def start(attempt: int) -> None:
        await writer.step_attempt_started(
            step_execution_id=step_id,
            instance_id=run.instance,
            workflow_id="wf-convergence",
            step_name="charge",
            step_seq=2,
            attempt=attempt,
            input_data=None,
            started_at=AT,
        )

    async def step() -> Any:
        async with writer.engine.connect() as conn:
            return (
                await conn.execute(select(StepExecutionModel).where(StepExecutionModel.id == step_id))
            ).one()

    try:
        await writer.write_batch(*_batch(run.run_id, run.started()[:1], first_seq=1, pos=3))
        await start(1)
        # Attempt 1 succeeded, then its worker died before Temporal heard of it.
        await writer.step_attempt_finished(step_execution_id=step_id, attempt=1, output_data={"n": 1})
        assert ((await step()).status, (await step()).attempts) == (StepStatus.SUCCEEDED, 1)

        await start(2)  # Temporal ran attempt 2: the mirror shows it
        row = await step()
        assert (row.status, row.attempts, row.completed_at, row.output_data) == (
            StepStatus.RUNNING,
            2,
            None,
            None,
        )
        # A late end of attempt 1 (a zombie) changes nothing.
        await writer.step_attempt_finished(
            step_execution_id=step_id, attempt=1, error="Late: gone", final=True
        )
        assert ((await step()).status, (await step()).error) == (StepStatus.RUNNING, None)

        await writer.step_attempt_finished(step_execution_id=step_id, attempt=2, output_data={"n": 2})
        row = await step()
        assert (row.status, row.attempts, row.output_data) == (StepStatus.SUCCEEDED, 2, {"n": 2})
        await start(2)  # a redelivered start of the same attempt does not reopen it
        assert (await step()).status == StepStatus.SUCCEEDED
    finally:
        await writer.close()


async def test_writes_wait_out_a_locked_database_in_order(
    tmp_path: Path, assert_eventually: Eventually
) -> None:
    # SQLite's outage: a file nobody can write for a while (tests/faults also stops a private
    # PostgreSQL server under a running worker).
    path = tmp_path / "locked.db"
    writer = await _writer(f"sqlite+aiosqlite:///{path}", sqlite_busy_timeout=0.2)
    run = _Run()
    lock = sqlite3.connect(path, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")  # the database cannot be written meanwhile
        started = await writer.write_batch(*_batch(run.run_id, run.started(), first_seq=1, pos=3), wait=0.5)
        approved = await writer.write_batch(
            *_batch(run.run_id, run.approved("bob", AT), first_seq=4, pos=8), wait=0.5
        )
        assert (started, approved) == (False, False)  # both callers went on
        snapshot = writer.metrics.snapshot()
        assert snapshot["outage"] == 1.0 and snapshot["outages_total"] == 1.0
        assert snapshot["backlog"] == 2.0 and snapshot["deferred_writes_total"] == 2.0
        assert not writer.available

        lock.execute("ROLLBACK")  # the database returns: the rows catch up, in order

        async def caught_up() -> None:
            async with writer.engine.connect() as conn:
                count = await conn.scalar(select(func.count()).select_from(HumanTaskModel))
            assert count == 1, "not written yet"
            instance, task = await _rows(writer, run)
            assert (instance.status, task.status, task.completed_by) == ("COMPLETED", "completed", "bob")

        await assert_eventually(caught_up, timeout=15)
        await assert_eventually(lambda: _check(writer.metrics.snapshot()), timeout=5)
        assert writer.available
    finally:
        lock.close()
        await writer.close()


def _check(snapshot: dict[str, float]) -> None:
    assert snapshot["outage"] == 0.0 and snapshot["backlog"] == 0.0 and snapshot["outages_total"] == 1.0


async def test_a_bad_write_is_reported_at_once_and_never_retried(empty_database_url: str) -> None:
    writer = await _writer(empty_database_url)
    run = _Run()
    try:
        # A task of an instance that has no row: the database refuses it (not an outage). The
        # caller goes on (nothing retries it forever); what was refused is counted.
        assert await writer.write_batch(*_batch(run.run_id, run.started()[1:], first_seq=2, pos=3), wait=5)
        snapshot = writer.metrics.snapshot()
        assert writer.available and snapshot["backlog"] == 0.0 and snapshot["outages_total"] == 0.0
        assert snapshot["unwritable_batches_total"] == 1.0 and snapshot["dropped_writes_total"] >= 1.0
        await asyncio.sleep(0)
    finally:
        await writer.close()
