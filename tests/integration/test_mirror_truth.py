"""A caller is told the truth: a completion answered "done" was recorded by Temporal.

The update that completes a task answers its caller once its events are handed to the mirror.
If the run fails meanwhile (the next step fails at once, while the mirror is slow), the run
lets the update answer first: without that, Temporal would tell the caller "the workflow
completed before the update completed" although the completion is in the history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError

from sdk import TaskStatus, WorkflowClient, events
from sdk._types import EventBatch
from tests.workflows import states
from tests.workflows.states import Check, Ticket


class SlowCompletions:
    """A sink that takes twelve seconds over batches that complete a task: longer than a
    workflow task may last, so Temporal lets the run go on meanwhile."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def write_batch(self, batch: EventBatch, batch_events: Sequence[events.WorkflowEvent]) -> None:
        if any(isinstance(event, events.HumanTaskCompleted) for event in batch_events):
            await asyncio.sleep(12.0)
        self.batches.append([type(event).__name__ for event in batch_events])


async def test_a_completion_is_answered_when_the_run_fails_before_its_update_returns(
    client: WorkflowClient, new_worker: Any
) -> None:
    sink = SlowCompletions()
    async with new_worker(states.states_review_then_fail, event_sink=sink) as worker:
        handle = await client.start(
            states.states_review_then_fail, Ticket(item="x"), task_queue=worker.task_queue
        )
        task = await handle.next_task()
        done = await handle.complete_task(task.task_id, Check(ok=True), user="rita", groups=["reviewers"])
        assert done.status is TaskStatus.COMPLETED and done.completed_by == "rita"
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    history = await handle.temporal.fetch_history()
    kinds = [event.event_type for event in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED in kinds
    assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    assert any("HumanTaskCompleted" in batch for batch in sink.batches)
