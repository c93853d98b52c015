"""Task rows checked against the workflow after a completion: a lost update leaves no trace.

An update's handler publishes its events (the task completed, by whom, with what data) while
its workflow task runs, before Temporal has recorded anything. If that workflow task is then
lost (the Temporal server restarted before persisting it, say), Temporal forgets the update
and the workflow still holds the task pending; nothing more happens in the instance until
someone acts on the task, which no inbox shows any more, since its row says completed.

So a while after each completion is published, :class:`CompletionCheck` asks the workflow
(its ``state`` query, answered from the recorded history) what the task's status is. When
the row and the workflow disagree, the instance's rows are rebuilt from the history.

An instance's end can be lost the same way: the workflow task that completed it ran and
published, then the server lost it with its unpersisted state, and the worker's retry of
that task reused the local activity's result instead of publishing again; the rows keep the
lost task's clock. So a while after an end is published, the check reads the history's close
event and the workflow task that produced it, and rebuilds the rows when the instance row's
``completed_at`` is not within that task (from its start to the close event: local steps
completing inside the task move the workflow clock on).

Each check retries with backoff while Temporal is unreachable, up to a limit; it costs one
query per completion and one history read per instance end.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Table, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from sdk import InstanceState
from sdk.mirror import HumanTaskModel, MirrorWriter, WorkflowInstanceModel, rebuild_instance

__all__ = ["CompletionCheck"]

logger = logging.getLogger("dwf.mirror")

_tasks: Table = HumanTaskModel.__table__  # type: ignore[assignment]
_instances: Table = WorkflowInstanceModel.__table__  # type: ignore[assignment]
_ENDS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
}
_TOLERANCE_SECONDS = 1.0
"""A replay's clock and a live run's can differ by milliseconds (as audit allows)."""


class CompletionCheck:
    """Checks completed task rows against their workflows, in the background.

    Args:
        writer: The mirror whose rows are checked (and rebuilt when wrong).
        delay: Seconds after a completion is published before it is checked.
        give_up: Seconds after which a check that could not reach Temporal is dropped.
        limit: Most checks waiting at once; beyond it new ones are dropped (and counted).
    """

    def __init__(
        self, writer: MirrorWriter, *, delay: float = 5.0, give_up: float = 600.0, limit: int = 10_000
    ) -> None:
        self.writer = writer
        self.delay, self.give_up, self.limit = delay, give_up, limit
        self.repaired = 0
        self.dropped = 0
        self._running: set[asyncio.Task[None]] = set()

    def schedule(
        self,
        client: Client,
        workflow_id: str,
        run_id: str,
        task_ids: Sequence[uuid.UUID] = (),
        instance_id: uuid.UUID | None = None,
    ) -> None:
        """Check these tasks of one run, and its end (``instance_id`` given), after
        :attr:`delay` seconds."""
        if len(self._running) >= self.limit:
            self.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(
            self._check(client, workflow_id, run_id, list(task_ids), instance_id)
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def close(self) -> None:
        """Stop the checks still waiting."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _check(
        self,
        client: Client,
        workflow_id: str,
        run_id: str,
        task_ids: list[uuid.UUID],
        instance_id: uuid.UUID | None,
    ) -> None:
        await asyncio.sleep(self.delay)
        loop = asyncio.get_running_loop()
        deadline, backoff = loop.time() + self.give_up, 1.0
        while True:
            try:
                wrong = bool(task_ids) and await self._disagree(client, workflow_id, run_id, task_ids)
                if instance_id is not None and not wrong:
                    wrong = await self._end_differs(client, workflow_id, run_id, instance_id)
                if wrong:
                    await rebuild_instance(client, self.writer, workflow_id, run_id)
                    self.repaired += 1
                    logger.warning(
                        "task rows of %s showed work Temporal never recorded; rebuilt from its history",
                        workflow_id,
                    )
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if loop.time() + backoff > deadline:
                    logger.warning("could not check the task rows of %s: %s", workflow_id, exc)
                    return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _end_differs(
        self, client: Client, workflow_id: str, run_id: str, instance_id: uuid.UUID
    ) -> bool:
        """Whether the instance row's end is not a time of the workflow task that ended it.

        The workflow clock starts at the task's start; a local activity that completes inside
        the task (a ``@machine_step(local=True)`` before the end) moves it on, up to the
        close event. A lost task's clock is earlier than the recorded task's start.
        """
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        task_started: datetime | None = None
        ended: tuple[datetime, datetime] | None = None
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                task_started = event.event_time.ToDatetime(tzinfo=UTC)
            elif event.event_type in _ENDS and task_started is not None:
                ended = task_started, event.event_time.ToDatetime(tzinfo=UTC)
        if ended is None:
            return False  # not ended by the workflow (terminated, timed out): not this check's
        async with self.writer.engine.connect() as conn:
            shown = await conn.scalar(select(_instances.c.completed_at).where(_instances.c.id == instance_id))
        if shown is None:
            return True
        at: datetime = shown if shown.tzinfo else shown.replace(tzinfo=UTC)
        earliest, latest = ended
        return (earliest - at).total_seconds() > _TOLERANCE_SECONDS or (
            at - latest
        ).total_seconds() > _TOLERANCE_SECONDS

    async def _disagree(
        self, client: Client, workflow_id: str, run_id: str, task_ids: list[uuid.UUID]
    ) -> bool:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        state = await handle.query("state", result_type=InstanceState)
        held = {task.task_id: task.status.value for task in state.tasks}
        async with self.writer.engine.connect() as conn:
            rows = await conn.execute(select(_tasks.c.id, _tasks.c.status).where(_tasks.c.id.in_(task_ids)))
            shown = {str(row_id): status for row_id, status in rows}
        return any(held.get(str(task_id)) != shown.get(str(task_id)) for task_id in task_ids)
