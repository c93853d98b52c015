"""``InstanceHandle.next_task``: right after ``start`` there is no task yet; it waits for one.

Without a mirror it polls the ``state`` query (``test_mirror_checks`` covers the mirror).
"""

from __future__ import annotations

from typing import Any

import pytest

from sdk import InstanceNotFoundError, TaskNotFoundError, TaskStatus, WorkflowClient
from tests.workflows import approvals, machine
from tests.workflows.approvals import Decision, Request

REVIEWER = {"user": "bob", "groups": [approvals.REVIEWERS]}


async def test_next_task_waits_for_each_task_in_turn(client: WorkflowClient, new_worker: Any) -> None:
    async with new_worker(approvals.two_reviews) as worker:
        handle = await client.start(
            approvals.two_reviews, Request(subject="desk", amount=300), task_queue=worker.task_queue
        )
        first = await handle.next_task(timeout=15)  # no wait before: the task does not exist yet
        assert (first.title, first.assignee_group, first.status) == (
            "Review desk",
            approvals.REVIEWERS,
            TaskStatus.PENDING,
        )
        assert [t.task_id for t in (await handle.state()).pending_tasks] == [first.task_id]
        await handle.complete_task(first.task_id, Decision(approved=True), **REVIEWER)

        second = await handle.next_task(timeout=15)  # the completed one is no longer pending
        assert second.task_id != first.task_id and second.step_name == first.step_name
        await handle.complete_task(second.task_id, Decision(approved=False), **REVIEWER)
        assert await handle.result() == [True, False]

        with pytest.raises(TaskNotFoundError, match=r"is COMPLETED and has no pending task: none will come"):
            await handle.next_task(timeout=15)


async def test_next_task_times_out_and_reports_an_ended_instance(
    client: WorkflowClient, new_worker: Any
) -> None:
    async with new_worker(machine.slow, machine.refuses) as worker:
        # A machine step of 0.4 s: nothing to wait for within 0.2 s.
        slow = await client.start(machine.slow, 0.4, task_queue=worker.task_queue)
        with pytest.raises(TimeoutError, match=r"has no pending task after 0.2 s"):
            await slow.next_task(timeout=0.2, poll_interval=0.05)
        assert await slow.result() == "finished"

        refused = await client.start(machine.refuses, "no", task_queue=worker.task_queue)
        with pytest.raises(TaskNotFoundError, match="is FAILED"):
            await refused.next_task(timeout=15)

    with pytest.raises(InstanceNotFoundError):
        await client.get_instance("no-such-workflow-id").next_task(timeout=5)
