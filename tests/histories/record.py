"""Record Temporal histories of the expense example for the replay tests.

Run from the repository root, in the virtualenv, after a deliberate change of the workflow
runtime's commands (a change that makes the stored histories fail to replay)::

    python -m tests.histories.record [SUFFIX]

It starts a dev server, runs each scenario below to completion, and writes
``tests/histories/<workflow type>-<scenario>[-SUFFIX].json`` (``WorkflowHistory.to_json()``).
Give a suffix to keep the histories of older code next to the new ones (``signed``: commands
signed by the client, signals verified in a recorded local activity).
The replay tests also run the scenarios afresh, through :func:`run_scenarios`.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from examples.expense_approval import Expense, expense_approval
from sdk import DevServer, InstanceHandle, TaskInfo, WorkflowClient, generate_signing_key
from worker import create_worker

HISTORY_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Scenario:
    """One run of the expense workflow: the claim, the manager's answer, how it is sent."""

    name: str
    expense: Expense
    decision: dict[str, Any]
    via_signal: bool = False
    expected_status: str = "paid"
    repeated_comment: bool = False
    """Send one signed comment signal twice first (the repeat is refused: replay protection)."""


SCENARIOS = (
    Scenario(
        "approved", Expense(employee="Ann", amount=120.0, description="Train to Lyon"), {"approved": True}
    ),
    Scenario(
        "rejected",
        Expense(employee="Ben", amount=4800.0, description="Espresso machine"),
        {"approved": False, "comment": "not a business expense"},
        via_signal=True,
        expected_status="rejected",
    ),
    Scenario(
        "retried_payment",
        Expense(employee="Cat", amount=310.5, description="Conference hotel", flaky_bank=True),
        {"approved": True, "comment": "ok"},
    ),
    Scenario(
        "commented_twice",
        Expense(employee="Dan", amount=42.0, description="Taxi"),
        {"approved": True},
        repeated_comment=True,
    ),
)


def history_path(scenario: Scenario, suffix: str = "") -> Path:
    tail = f"-{suffix}" if suffix else ""
    return HISTORY_DIR / f"{expense_approval.workflow_type.replace('@', '-')}-{scenario.name}{tail}.json"


async def _pending_task(handle: InstanceHandle[Any], timeout: float = 15.0) -> TaskInfo:
    deadline = time.monotonic() + timeout
    while True:
        state = await handle.state()
        if state.pending_tasks:
            return state.pending_tasks[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{handle.id} created no task within {timeout}s")
        await asyncio.sleep(0.05)


async def run_scenario(client: WorkflowClient, task_queue: str, scenario: Scenario) -> WorkflowHistory:
    """Run one scenario to completion on ``task_queue`` (a worker must poll it); its history."""
    handle = await client.start(
        expense_approval,
        scenario.expense,
        id=f"expense-{scenario.name}-{uuid.uuid4()}",
        task_queue=task_queue,
        tenant_id="acme",
        created_by=scenario.expense.employee.lower(),
    )
    task = await _pending_task(handle)
    if scenario.repeated_comment:
        await _comment_twice(client, handle, task)
    complete = handle.signal_complete_task if scenario.via_signal else handle.complete_task
    await complete(task.task_id, scenario.decision, user="maria", groups=["managers"])
    outcome = await handle.result()
    if outcome.status != scenario.expected_status:
        raise AssertionError(
            f"scenario {scenario.name} ended {outcome.status}, not {scenario.expected_status}"
        )
    return await handle.temporal.fetch_history()


async def _comment_twice(client: WorkflowClient, handle: InstanceHandle[Any], task: TaskInfo) -> None:
    """One signed comment, sent twice byte for byte (as a raw client could): one is refused."""
    comment = {"task_id": task.task_id, "user": "maria", "groups": ["managers"], "tenant_id": "acme"}
    comment["body"] = "hi"
    signed = client._trust.sign("comment", handle.id, handle.run_id, comment)
    await handle.temporal.signal("comment_task", signed)
    await handle.temporal.signal("comment_task", signed)
    deadline = time.monotonic() + 15
    while not (await handle.state()).rejections:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{handle.id}: the repeated comment was not refused")
        await asyncio.sleep(0.05)


async def run_scenarios(client: WorkflowClient, task_queue: str) -> dict[str, WorkflowHistory]:
    """Every scenario, one after the other, by name."""
    return {scenario.name: await run_scenario(client, task_queue, scenario) for scenario in SCENARIOS}


async def record(suffix: str = "") -> list[Path]:
    """Run the scenarios on a fresh dev server and write their histories."""
    written: list[Path] = []
    key = generate_signing_key("record")
    async with DevServer() as server:
        client = await WorkflowClient.connect(server.target, signing_key=key)
        task_queue = f"record-{uuid.uuid4()}"
        worker = create_worker(
            client, task_queue=task_queue, workflows=[expense_approval], command_keys=key.public_key
        )
        async with worker:
            histories = await run_scenarios(client, task_queue)
        for scenario in SCENARIOS:
            path = history_path(scenario, suffix)
            history = histories[scenario.name]
            path.write_text(history.to_json() + "\n")
            written.append(path)
    await asyncio.sleep(1.0)  # let temporalio's threads wind down (docs/temporal-facts.md)
    return written


if __name__ == "__main__":
    for path in asyncio.run(record(sys.argv[1] if len(sys.argv) > 1 else "")):
        print(f"wrote {path}")
