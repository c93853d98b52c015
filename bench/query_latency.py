"""Inbox query latency with many task rows: synthetic rows seeded, the queries timed and explained."""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.environment import Env
from bench.figures import QueryResult

N_TENANTS, N_GROUPS, N_USERS = 10, 40, 1000
TENANT_WEIGHTS = [1 / (k + 1) for k in range(N_TENANTS)]  # tenant-0 is the biggest


def user_groups(user: int) -> list[str]:
    return sorted({f"group-{(user * m + c) % N_GROUPS:02d}" for m, c in ((1, 0), (7, 3), (13, 5))})


def synthetic_rows(
    rng: random.Random, count: int, definition_id: uuid.UUID, form_schema: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Instances, step rows and tasks: varied tenants, assignees, groups, statuses, due dates."""
    from sdk import StepStatus, StepType, TaskStatus, WorkflowStatus

    now = datetime.now(UTC)
    instances, steps, tasks = [], [], []
    tenants = rng.choices(range(N_TENANTS), TENANT_WEIGHTS, k=count)
    for k in range(count):
        instance_id, step_id, task_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        tenant = f"tenant-{tenants[k]}"
        created = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
        user = rng.randrange(N_USERS)
        roll = rng.random()
        status = (
            TaskStatus.PENDING
            if roll < 0.25
            else TaskStatus.COMPLETED
            if roll < 0.9
            else TaskStatus.CANCELED
            if roll < 0.95
            else TaskStatus.EXPIRED
        )
        done = status is not TaskStatus.PENDING
        completed_at = created + timedelta(hours=rng.uniform(0.1, 72)) if done else None
        if rng.random() < 0.3:  # assigned to a person (sometimes within a group)
            assignee_id = f"user-{user:04d}"
            assignee_group = rng.choice(user_groups(user)) if rng.random() < 0.5 else None
        else:
            assignee_id, assignee_group = None, f"group-{rng.randrange(N_GROUPS):02d}"
        due_at = created + timedelta(days=rng.uniform(1, 14)) if rng.random() < 0.8 else None
        workflow_id = f"seed-{instance_id}"
        wf_status, step_status = {
            TaskStatus.PENDING: (WorkflowStatus.WAITING, StepStatus.WAITING),
            TaskStatus.COMPLETED: (WorkflowStatus.COMPLETED, StepStatus.SUCCEEDED),
            TaskStatus.CANCELED: (WorkflowStatus.CANCELED, StepStatus.CANCELED),
            TaskStatus.EXPIRED: (WorkflowStatus.FAILED, StepStatus.FAILED),
        }[status]
        amount = round(rng.uniform(5, 5000), 2)
        expense = {"employee": f"emp{user}", "amount": amount, "description": "seeded", "flaky_bank": False}
        instances.append(
            {
                "id": instance_id,
                "definition_id": definition_id,
                "workflow_name": "expense_approval",
                "workflow_version": "1.0.0",
                "status": wf_status,
                "current_step": None if done else "manager_approval",
                "context_data": {},
                "metadata": {"input": expense, "workflow_type": "expense_approval@1.0.0"},
                "error": None,
                "started_at": created,
                "completed_at": completed_at,
                "tenant_id": tenant,
                "created_by": f"user-{rng.randrange(N_USERS):04d}",
                "workflow_id": workflow_id,
                "run_id": str(instance_id),
                "task_queue": "seed",
                "last_event_seq": 3,
                "created_at": created,
                "updated_at": completed_at or created,
            }
        )
        completer = f"user-{rng.randrange(N_USERS):04d}" if status is TaskStatus.COMPLETED else None
        steps.append(
            {
                "id": step_id,
                "instance_id": instance_id,
                "step_name": "manager_approval",
                "step_type": StepType.HUMAN,
                "status": step_status,
                "input_data": expense,
                "output_data": {"approved": True, "comment": None} if completer else None,
                "error": None,
                "started_at": created,
                "completed_at": completed_at,
                "assigned_to": assignee_id or assignee_group,
                "completed_by": completer,
                "step_seq": 2,
                "attempts": 0,
                "workflow_id": workflow_id,
                "created_at": created,
                "updated_at": completed_at or created,
            }
        )
        tasks.append(
            {
                "id": task_id,
                "instance_id": instance_id,
                "step_execution_id": step_id,
                "step_name": "manager_approval",
                "title": f"Approve {amount:.2f} for emp{user}",
                "description": "seeded",
                "form_schema": form_schema,
                "assignee_id": assignee_id,
                "assignee_group": assignee_group,
                "due_at": due_at,
                "reminder_at": due_at - timedelta(days=1) if due_at else None,
                "status": status.value,
                "completed_at": completed_at,
                "completed_by": completer,
                "tenant_id": tenant,
                "workflow_id": workflow_id,
                "claimed_by": None,
                "claimed_at": None,
                "form_data": {"approved": True, "comment": None} if completer else None,
                "comment": None,
                "require_claim": False,
                "created_at": created,
                "updated_at": completed_at or created,
            }
        )
    return instances, steps, tasks


async def seed(engine: Any, total: int, definition_id: uuid.UUID, rng: random.Random) -> tuple[int, float]:
    """Fill workflow_human_tasks up to ``total`` rows (Core inserts in chunks); ANALYZE."""
    from sqlalchemy import func, insert, select, text

    from examples.expense_approval import Approval
    from sdk.mirror import HumanTaskModel, StepExecutionModel, WorkflowInstanceModel

    tables = [m.__table__ for m in (WorkflowInstanceModel, StepExecutionModel, HumanTaskModel)]
    started = time.perf_counter()
    async with engine.connect() as conn:
        existing = (await conn.execute(select(func.count()).select_from(HumanTaskModel))).scalar_one()
    missing = max(0, total - existing)
    form_schema = Approval.model_json_schema()
    chunk = 5000
    for offset in range(0, missing, chunk):
        rows = synthetic_rows(rng, min(chunk, missing - offset), definition_id, form_schema)
        async with engine.begin() as conn:
            for table, table_rows in zip(tables, rows, strict=True):
                await conn.execute(insert(table), table_rows)
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(HumanTaskModel))).scalar_one()
    return count, time.perf_counter() - started


async def explain(engine: Any, call: Callable[[], Awaitable[Any]]) -> list[str]:
    """EXPLAIN ANALYZE every statement ``call`` runs (captured as the driver receives it)."""
    from sqlalchemy import event

    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await call()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    lines: list[str] = []
    async with engine.connect() as conn:
        for statement, parameters in captured:
            plan = await conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters
            )
            lines.append(
                "    "
                + re.sub(r"^SELECT (\S+, ){3,}\S+ FROM", "SELECT <columns> FROM", " ".join(statement.split()))
            )
            lines.append(f"    parameters: {parameters}")
            lines += ["      " + row[0] for row in plan]
    return lines


async def query_bench(
    env: Env, backend: str, write_engine: Any, read_engine: Any, queries: Any, definition_id: uuid.UUID
) -> QueryResult:
    rng = random.Random(4)
    result = QueryResult()
    print(f"  [{backend}] seeding workflow_human_tasks to {env.args.query_rows:,} rows ...", flush=True)
    result.rows, result.seed_seconds = await seed(write_engine, env.args.query_rows, definition_id, rng)

    def inbox_call() -> Callable[[], Awaitable[Any]]:
        user = rng.randrange(N_USERS)
        tenant = f"tenant-{rng.choices(range(N_TENANTS), TENANT_WEIGHTS)[0]}"
        return lambda: queries.inbox(f"user-{user:04d}", user_groups(user), tenant_id=tenant)

    def pending_call() -> Callable[[], Awaitable[Any]]:
        group = f"group-{rng.randrange(N_GROUPS):02d}"
        tenant = f"tenant-{rng.choices(range(N_TENANTS), TENANT_WEIGHTS)[0]}"
        return lambda: queries.pending_tasks(group=group, tenant_id=tenant)

    from sqlalchemy import event

    in_driver = [0.0, 0.0, 0]  # statement start, seconds inside the driver, statements

    def before(*_: Any) -> None:
        in_driver[0] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        in_driver[1] += time.perf_counter() - in_driver[0]
        in_driver[2] += statement.lstrip().upper().startswith("SELECT")  # not SQLite's BEGIN

    for make, times, rows, sql, statements in (
        (inbox_call, result.inbox, result.inbox_rows, result.inbox_sql, result.inbox_statements),
        (pending_call, result.pending, result.pending_rows, result.pending_sql, result.pending_statements),
    ):
        for _ in range(10):  # warm the pool, the statement caches and the database's buffers
            await make()()
        event.listen(read_engine.sync_engine, "before_cursor_execute", before)
        event.listen(read_engine.sync_engine, "after_cursor_execute", after)
        try:
            for _ in range(env.args.query_runs):
                call = make()
                in_driver[1:] = [0.0, 0]
                started = time.perf_counter()
                page = await call()
                times.append(time.perf_counter() - started)
                rows.append(len(page.items))
                sql.append(in_driver[1])
                statements.append(in_driver[2])
        finally:
            event.remove(read_engine.sync_engine, "before_cursor_execute", before)
            event.remove(read_engine.sync_engine, "after_cursor_execute", after)
    if backend == "postgresql":
        # The biggest tenant: the case most likely to miss an index.
        user = 7
        result.explain.append(f"  EXPLAIN inbox('user-0007', {user_groups(user)}, tenant_id='tenant-0'):")
        result.explain += await explain(
            read_engine, lambda: queries.inbox("user-0007", user_groups(user), tenant_id="tenant-0")
        )
        result.explain.append("  EXPLAIN pending_tasks(group='group-03', tenant_id='tenant-0'):")
        result.explain += await explain(
            read_engine, lambda: queries.pending_tasks(group="group-03", tenant_id="tenant-0")
        )
    return result
