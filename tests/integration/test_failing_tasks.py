"""An instance whose workflow task keeps failing is reported once, counted, and listed.

A waiting expense claim meets a worker whose code was edited in place (``tests.workflows.drifted``:
one more step before the wait): every attempt of its next workflow task fails with a
nondeterminism error and Temporal retries it. The worker logs one line for the instance, not one
per attempt, exports it as ``dwf_workflow_tasks_failing``, and ``dwf instances list
--failing-task`` lists it. Once the right code runs again the instance moves on and leaves the list.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio.service import RPCError

from examples.expense_approval import Expense, expense_approval
from sdk import DevServer, WorkflowClient, failing_instances
from tests.integration.support import Eventually, PendingTask
from tests.workflows.drifted import DRIFTED_DEFINITION, DRIFTED_WORKFLOW_CLASS
from worker import FailingWorkflowTasks, create_worker
from worker._metrics import render_metrics

REPO = Path(__file__).resolve().parents[2]


async def _dwf(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWF_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sdk._cli", *args, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_failing_workflow_task_is_reported_once_counted_and_listed(
    server: DevServer,
    client: WorkflowClient,
    new_worker: Any,
    pending_task: PendingTask,
    assert_eventually: Eventually,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dwf.worker")
    async with new_worker(expense_approval) as first:
        handle = await client.start(
            expense_approval, Expense(employee="ann", amount=10), task_queue=first.task_queue
        )
        task = await pending_task(handle)  # waiting on a person, as instances do for days
    queue = first.task_queue

    drifted = dataclasses.replace(DRIFTED_DEFINITION, workflow_class=DRIFTED_WORKFLOW_CLASS)
    tracker = FailingWorkflowTasks()
    async with create_worker(client, task_queue=queue, workflows=[drifted], failing_tasks=tracker):
        await handle.temporal.signal("comment_task", {})  # any event: a workflow task to replay

        async def retried() -> None:
            assert len(tracker.tasks) == 1, tracker.tasks
            (failing,) = tracker.tasks
            assert failing.run_id == handle.run_id and failing.failures >= 2, tracker.tasks

        await assert_eventually(retried, timeout=60, interval=0.2)
        (failing,) = tracker.tasks
        assert "nondetermin" in failing.error.lower(), failing.error
        lines = [r for r in caplog.records if r.name == "dwf.worker" and handle.id in r.getMessage()]
        assert len(lines) == 1, [r.getMessage() for r in lines]  # one line, not one per attempt
        assert "is failing" in lines[0].getMessage()

        page = render_metrics(worker_up=True, info={}, failing=tracker.tasks)
        assert "dwf_workflow_tasks_failing 1.0" in page
        assert f'workflow_id="{handle.id}"' in page

        (listed,) = await failing_instances(client, query=f"TaskQueue = '{queue}'")
        assert (listed.workflow_id, listed.run_id) == (handle.id, handle.run_id)
        assert listed.attempts >= 2 and listed.error is not None and "NON_DETERMINISTIC" in listed.error
        code, out, err = await _dwf(
            "--address",
            server.target,
            "--json",
            "instances",
            "list",
            "--failing-task",
            "--workflow",
            "expense_approval",
        )
        assert code == 0, err
        assert handle.id in [row["workflow_id"] for row in json.loads(out)]
        code, _, err = await _dwf(
            "--address", server.target, "instances", "list", "--failing-task", "--status", "RUNNING"
        )
        assert code == 2 and "--status" in err

    # The right code again: the retried task succeeds, the instance moves, nothing is listed.
    async with create_worker(client, task_queue=queue, workflows=[expense_approval], failing_tasks=tracker):

        async def answers() -> None:  # the next retry (after Temporal's backoff) succeeds
            try:
                await handle.state()
            except RPCError as exc:
                raise AssertionError(str(exc)) from None

        await assert_eventually(answers, timeout=60, interval=0.5)
        await handle.complete_task(task.task_id, {"approved": False}, user="bob", groups=["managers"])
        assert (await handle.result()).status == "rejected"
        assert tracker.tasks == [], tracker.tasks
    assert await failing_instances(client, query=f"TaskQueue = '{queue}'") == []
    assert any("succeeds again" in r.getMessage() for r in caplog.records if r.name == "dwf.worker")
