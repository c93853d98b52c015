"""Driving the fault suite's instances and checking the mirror afterwards.

- :class:`Driver` starts instances of ``tests/faults/app.py`` and completes their tasks as
  users would (from the mirror's pending rows, through the client), whatever fails meanwhile;
- :func:`converge` waits until the audit is clean; :func:`assert_exact_rows` checks the row
  counts; :func:`prove_the_check_fails` breaks rows on purpose and sees the audit catch them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType

from sdk import TaskNotFoundError, TaskNotPendingError, WorkflowClient
from sdk import WorkflowStatus as WS
from sdk.mirror import HumanTaskModel, MirrorWriter, StepExecutionModel, WorkflowInstanceModel, audit, rebuild
from tests.faults.app import FaultApproval, FaultOrder, faults_order

__all__ = [
    "Driver",
    "assert_exact_rows",
    "completing",
    "converge",
    "counts",
    "prove_the_check_fails",
    "retried_steps",
    "wait_for",
]

INSTANCES: Table = WorkflowInstanceModel.__table__  # type: ignore[assignment]
STEPS: Table = StepExecutionModel.__table__  # type: ignore[assignment]
TASKS: Table = HumanTaskModel.__table__  # type: ignore[assignment]


async def wait_for(probe: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Poll ``probe`` until it is true; returns the seconds it took (fails after ``timeout``)."""
    began = time.monotonic()
    last: BaseException | None = None
    while time.monotonic() - began < timeout:
        try:
            if await probe():
                return time.monotonic() - began
        except Exception as exc:
            last = exc
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")


class Driver:
    """Starts instances and completes their tasks, the way users would, whatever fails."""

    def __init__(self, client: WorkflowClient, engine: AsyncEngine, task_queue: str) -> None:
        self.client, self.engine, self.task_queue = client, engine, task_queue
        self.ids: list[str] = []
        self.completed: set[str] = set()
        self.refused_then_done = 0

    async def start(self, count: int) -> None:
        for n in range(count):
            handle = await self.client.start(
                faults_order, FaultOrder(item=f"item-{n}"), task_queue=self.task_queue
            )
            self.ids.append(handle.id)

    async def complete_tasks(self, stop: asyncio.Event) -> None:
        """Complete every pending task the mirror shows, until ``stop`` is set."""
        while not stop.is_set():
            try:
                async with self.engine.connect() as conn:
                    rows = (
                        await conn.execute(
                            select(TASKS.c.id, TASKS.c.workflow_id).where(TASKS.c.status == "pending")
                        )
                    ).all()
            except Exception:
                rows = []  # the mirror may be down: try again
            # Every pending row, also one tried before: a row repaired to pending (its first
            # completion was never recorded by Temporal) must be completed again.
            await asyncio.gather(*(self._complete(task_id, wf) for task_id, wf in rows[:20]))
            await asyncio.sleep(0.1)

    async def _complete(self, task_id: Any, workflow_id: str) -> None:
        handle = self.client.get_instance(workflow_id)
        try:
            await asyncio.wait_for(
                handle.complete_task(task_id, FaultApproval(ok=True), user="olga", groups=["ops"]), 20
            )
        except (TaskNotPendingError, TaskNotFoundError):
            self.completed.add(str(task_id))  # it went through in an earlier try
        except Exception:
            return  # a kill or an outage got in the way: the next round tries again
        else:
            self.completed.add(str(task_id))

    async def unfinished(self) -> str:
        """What the instances that have not completed look like (for a failure message)."""
        lines = []
        for workflow_id in self.ids:
            handle = self.client.temporal.get_workflow_handle(workflow_id)
            status = (await handle.describe()).status
            if status is not None and status.name == "COMPLETED":
                continue
            async with self.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(TASKS.c.id, TASKS.c.status).where(TASKS.c.workflow_id == workflow_id)
                    )
                ).all()
            try:
                held = [
                    (t.task_id, t.status.value)
                    for t in (await self.client.get_instance(workflow_id).state()).tasks
                ]
            except Exception as exc:
                held = [("query failed", repr(exc))]
            lines.append(f"{workflow_id} {status}: rows {rows}, workflow holds {held}")
        return "\n".join(lines)

    async def all_finished(self) -> bool:
        async def status(workflow_id: str) -> Any:
            return (await self.client.temporal.get_workflow_handle(workflow_id).describe()).status

        statuses = await asyncio.gather(*(status(w) for w in self.ids))
        return all(s is not None and s.name == "COMPLETED" for s in statuses)


@contextlib.asynccontextmanager
async def completing(driver: Driver) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(driver.complete_tasks(stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def counts(engine: AsyncEngine, ids: list[str]) -> dict[str, int]:
    """Rows per table for these instances."""
    found: dict[str, int] = {}
    async with engine.connect() as conn:
        for name, table in (("instances", INSTANCES), ("steps", STEPS), ("tasks", TASKS)):
            found[name] = int(
                await conn.scalar(select(func.count()).select_from(table).where(table.c.workflow_id.in_(ids)))
                or 0
            )
        found["completed"] = int(
            await conn.scalar(
                select(func.count())
                .select_from(INSTANCES)
                .where(INSTANCES.c.workflow_id.in_(ids), INSTANCES.c.status == WS.COMPLETED)
            )
            or 0
        )
    return found


async def retried_steps(engine: AsyncEngine, ids: list[str]) -> int:
    """Step rows that show more than one attempt (what a kill costs)."""
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(func.count()).select_from(STEPS).where(STEPS.c.workflow_id.in_(ids), STEPS.c.attempts > 1)
        )
    return int(found or 0)


async def converge(client: WorkflowClient, writer: MirrorWriter, ids: list[str], timeout: float) -> float:
    """Seconds until the audit of ``ids`` is clean (fails, listing mismatches, after ``timeout``)."""
    last: list[str] = []
    differing: list[str] = []

    async def clean() -> bool:
        report = await audit(client.temporal, writer, ids)
        last[:] = [str(m) for m in report.mismatches[:20]]
        differing[:] = list(dict.fromkeys(m.workflow_id for m in report.mismatches))
        return report.clean and report.checked == len(ids)

    try:
        return await wait_for(clean, timeout, "a clean audit")
    except AssertionError as exc:
        histories = [await _history(client, w) for w in differing[:2]]
        raise AssertionError("\n".join([str(exc), *last, *histories])) from None


async def _history(client: WorkflowClient, workflow_id: str) -> str:
    """A compact history (event id, time, type) for a failure message."""
    history = await client.temporal.get_workflow_handle(workflow_id).fetch_history()
    events = [
        f"{e.event_id} {e.event_time.ToDatetime().time()} {EventType.Name(e.event_type)[11:]}"
        for e in history.events
    ]
    return f"history of {workflow_id}:\n  " + "\n  ".join(events)


async def assert_exact_rows(engine: AsyncEngine, ids: list[str]) -> None:
    """One instance row each, three step rows (two machine steps, one human), one task row."""
    n = len(ids)
    assert await counts(engine, ids) == {"instances": n, "steps": 3 * n, "tasks": n, "completed": n}


async def prove_the_check_fails(client: WorkflowClient, writer: MirrorWriter, ids: list[str]) -> int:
    """Break three rows (delete a step, duplicate a task, a wrong status) and see audit report
    each; rebuild, and see it clean. Returns the mismatches the audit found."""
    victims = ids[:3]
    engine = writer.engine
    async with engine.begin() as conn:
        step_id = await conn.scalar(select(STEPS.c.id).where(STEPS.c.workflow_id == victims[0]).limit(1))
        task = (await conn.execute(select(TASKS).where(TASKS.c.workflow_id == victims[1]))).mappings().one()
        await conn.execute(delete(STEPS).where(STEPS.c.id == step_id))
        duplicate_id = uuid.uuid4()
        await conn.execute(insert(TASKS).values({**task, "id": duplicate_id}))
        await conn.execute(
            update(INSTANCES).where(INSTANCES.c.workflow_id == victims[2]).values(status=WS.FAILED)
        )
    report = await audit(client.temporal, writer, victims)
    found = {(m.table, m.row_id, m.column) for m in report.mismatches}
    assert ("workflow_step_executions", str(step_id), "*") in found
    assert ("workflow_human_tasks", str(duplicate_id), "*") in found
    assert any(t == "workflow_instances" and c == "status" for t, _, c in found)
    assert len(found) == 3, found
    await rebuild(client.temporal, writer, victims)
    after = await audit(client.temporal, writer, victims)
    assert after.clean, [str(m) for m in after.mismatches]
    return len(report.mismatches)
