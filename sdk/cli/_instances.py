"""``dwf start`` and ``dwf instances list|show``.

``start`` finds the workflow among the definitions imported with ``--app`` (validating the
input against its model before anything is sent), else in the mirror's
``workflow_definitions`` (the worker registers them). ``instances`` reads the mirror; ``show``
takes a unique start of an id too, adds a completed run's result (from Temporal: the mirror
keeps none), and falls back to Temporal's own description for an instance the mirror does not
have.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sdk import (
    ALL_TENANTS,
    InstanceNotFoundError,
    WorkflowDefinition,
    WorkflowNotFoundError,
    WorkflowStatus,
    registry,
)

from ._context import Context
from ._exit import CommandError, ExitCode, UsageError, one_line
from ._output import Column, attr
from ._prefix import instance_key, is_uuid
from ._target import CONNECT_TIMEOUT, open_client, open_queries, sqlite_path

__all__ = ["NO_INPUT", "list_instances", "show_instance", "start_workflow", "workflow_arguments"]

NO_INPUT: Any = object()
"""The default of ``--input``: nothing given (``null`` is a valid input)."""

INSTANCE_COLUMNS = (
    Column("WORKFLOW ID", attr("workflow_id"), key=True),
    Column("WORKFLOW", lambda r: f"{r.workflow_name}@{r.workflow_version}"),
    Column("STATUS", attr("status")),
    Column("STEP", attr("current_step")),
    Column("TENANT", attr("tenant_id")),
    Column("CREATED BY", attr("created_by")),
    Column("STARTED", attr("started_at")),
    Column("COMPLETED", attr("completed_at")),
)
STEP_COLUMNS = (
    Column("SEQ", attr("step_seq")),
    Column("STEP", attr("step_name")),
    Column("TYPE", attr("step_type")),
    Column("STATUS", attr("status")),
    Column("ATTEMPTS", attr("attempts")),
    Column("STARTED", attr("started_at")),
    Column("COMPLETED", attr("completed_at")),
    Column("BY", lambda r: r.completed_by or r.assigned_to),
    Column("ERROR", attr("error"), 60),
)
INSTANCE_TASK_COLUMNS = (
    Column("ID", attr("id"), key=True),
    Column("TITLE", attr("title"), 40),
    Column("STATUS", attr("status")),
    Column("ASSIGNEE", lambda r: r.assignee_id or (r.assignee_group and f"group {r.assignee_group}")),
    Column("CLAIMED BY", attr("claimed_by")),
    Column("DUE", attr("due_at")),
    Column("COMPLETED BY", attr("completed_by")),
)


def _local_definition(name: str, version: str | None) -> WorkflowDefinition[..., Any] | None:
    try:
        return registry.get(name, version)
    except WorkflowNotFoundError:
        return None


def workflow_arguments(definition: WorkflowDefinition[..., Any] | None, value: Any) -> list[Any]:
    """The workflow's positional arguments from ``--input``.

    The input is the single argument of a one-argument workflow; a workflow with several takes
    a JSON array of them. Without a local definition the input is passed as the one argument.

    Raises:
        UsageError: The input does not fit the workflow's parameter count.
    """
    given = value is not NO_INPUT
    if definition is None:
        return [value] if given else []
    count = len(definition.param_types)
    if count == 1 and given:
        return [value]
    if count == 0 and (not given or value == []):
        return []
    if given and isinstance(value, list) and len(value) == count:
        return value
    expected = "no --input" if count == 0 else "--input JSON" if count == 1 else f"--input [{count} values]"
    raise UsageError(f"workflow {definition.name!r} takes {count} argument(s): pass {expected}")


def _failure(exc: BaseException) -> tuple[str, str]:
    """The closing status and the innermost message of a ``WorkflowFailureError``."""
    from temporalio.exceptions import CancelledError, TerminatedError, TimeoutError

    cause: BaseException = exc
    while getattr(cause, "cause", None) is not None:
        cause = cause.cause  # type: ignore[attr-defined]
    status = {CancelledError: "CANCELED", TerminatedError: "TERMINATED", TimeoutError: "TIMED_OUT"}
    found = next((s for t, s in status.items() if isinstance(getattr(exc, "cause", None), t)), "FAILED")
    return found, one_line(getattr(cause, "message", None) or cause)


async def start_workflow(ctx: Context) -> int:
    """Start an instance; with ``--wait``, wait for its result (exit 1 when it does not complete)."""
    from temporalio.client import WorkflowFailureError

    a = ctx.args
    definition = _local_definition(a.workflow, a.version)
    arguments = workflow_arguments(definition, a.input)
    use_mirror = definition is None
    if use_mirror:
        path = sqlite_path(ctx.target.database_url)
        if path is not None and not path.exists():
            raise WorkflowNotFoundError(
                f"no workflow named {a.workflow!r} is registered in this process and there is no mirror "
                f"at {path} to look it up in: pass --app MODULE (the module that defines it)"
            )
    async with open_client(ctx.target, database=use_mirror) as client:
        handle = await client.start(
            definition or a.workflow,
            *arguments,
            id=a.id,
            version=a.version,
            tenant_id=a.tenant,
            created_by=a.created_by,
        )
        started: dict[str, Any] = {
            "workflow_id": handle.id,
            "run_id": handle.run_id,
            "instance_id": handle.instance_id,
            "task_queue": ctx.target.task_queue,
        }
        if not ctx.out.json_mode:
            ctx.out.line(f"started {handle.id} (run {handle.run_id})")
        if not a.wait:
            if ctx.out.json_mode:
                ctx.out.json(started)
            return ExitCode.OK
        try:
            result = await handle.result()
        except WorkflowFailureError as exc:
            status, message = _failure(exc)
            if ctx.out.json_mode:
                ctx.out.json({**started, "status": status, "error": message})
            raise CommandError(f"workflow {handle.id} {status.lower().replace('_', ' ')}: {message}") from exc
    if ctx.out.json_mode:
        ctx.out.json({**started, "status": "COMPLETED", "result": result})
    else:
        ctx.out.line(f"completed: {ctx.out.compact(result)}")
    return ExitCode.OK


FAILING_COLUMNS = (
    Column("WORKFLOW ID", attr("workflow_id"), key=True),
    Column("WORKFLOW", attr("workflow_type")),
    Column("ATTEMPTS", attr("attempts")),
    Column("FAILING SINCE", attr("since")),
    Column("TENANT", attr("tenant_id")),
    Column("ERROR", attr("error"), 70),
)


async def list_failing(ctx: Context) -> int:
    """Running instances whose workflow task keeps failing, as Temporal describes them."""
    from sdk import failing_instances

    a = ctx.args
    mirror_only = {"--status": a.status, "--created-by": a.created_by, "--since": a.since, "--until": a.until}
    given = [name for name, value in mirror_only.items() if value is not None] + (
        ["--offset"] if a.offset else []
    )
    if given:
        raise UsageError(f"--failing-task asks Temporal, not the mirror: {', '.join(given)} do not apply")
    async with open_client(ctx.target, database=False) as client:
        # --limit caps the running instances looked at (one describe call each), 1000 at least.
        found = await failing_instances(
            client, workflow_name=a.workflow, tenant_id=a.tenant, limit=max(a.limit, 1000)
        )
    if ctx.out.json_mode:
        ctx.out.json([vars(f) for f in found])
    else:
        ctx.out.table(found, FAILING_COLUMNS, empty="no instance has a failing workflow task")
    return ExitCode.OK


async def list_instances(ctx: Context) -> int:
    """Instances from the mirror, newest first, filtered by every option given."""
    a = ctx.args
    if getattr(a, "failing_task", False):
        return await list_failing(ctx)
    async with open_queries(ctx.target) as queries:
        page = await queries.instances(
            tenant_id=a.tenant,
            status=a.status,
            workflow_name=a.workflow,
            created_by=a.created_by,
            created_after=a.since,
            created_before=a.until,
            limit=a.limit,
            offset=a.offset,
        )
    ctx.out.page(page, INSTANCE_COLUMNS, noun="instances")
    return ExitCode.OK


async def _from_mirror(ctx: Context, key: str) -> tuple[Any, Any, Any] | None:
    path = sqlite_path(ctx.target.database_url)
    if path is not None and not path.exists():
        return None
    tenant = ctx.args.tenant
    key = await instance_key(ctx.target, key, tenant)
    async with open_queries(ctx.target) as queries:
        try:
            if is_uuid(key):
                try:
                    row = await queries.get_instance(key, tenant_id=tenant)
                except InstanceNotFoundError:
                    row = await queries.instance_by_workflow_id(key, tenant_id=tenant)
            else:
                row = await queries.instance_by_workflow_id(key, tenant_id=tenant)
        except InstanceNotFoundError:
            return None
        steps = await queries.step_history(row.id)
        tasks = await queries.instance_tasks(row.id, limit=500)
    return row, steps.items, tasks.items


async def _result(ctx: Context, status: Any, workflow_id: str, run_id: str | None) -> Any:
    """A completed run's result, from Temporal (the mirror does not keep results); else None."""
    if status != WorkflowStatus.COMPLETED:
        return None
    try:
        async with open_client(ctx.target, database=False) as client:
            handle = client.temporal.get_workflow_handle(workflow_id, run_id=run_id)
            return await asyncio.wait_for(handle.result(), CONNECT_TIMEOUT)
    except Exception as exc:  # the rest of the instance is still worth showing
        ctx.out.note(f"the result is not available: {one_line(exc)}")
        return None


async def show_instance(ctx: Context) -> int:
    """One instance by workflow id or instance id: mirror row, steps and tasks; else Temporal's view."""
    key = ctx.args.id
    found = await _from_mirror(ctx, key)
    out = ctx.out
    if found is None:
        async with open_client(ctx.target, database=False) as client:
            try:
                # Like the mirror's reads here: without --tenant, an operator sees every tenant.
                description = await client.describe(key, tenant_id=ctx.args.tenant or ALL_TENANTS)
            except InstanceNotFoundError:
                raise InstanceNotFoundError(
                    f"no workflow instance {key!r} in the mirror or in Temporal"
                ) from None
        result = await _result(ctx, description.status, description.workflow_id, description.run_id)
        if out.json_mode:
            out.json({"source": "temporal", **description.__dict__, "result": result})
            return ExitCode.OK
        out.note("not in the mirror: showing Temporal's description")
        out.fields(
            [
                ("Workflow ID", description.workflow_id),
                ("Run ID", description.run_id),
                ("Instance", description.instance_id),
                ("Workflow", description.workflow_type),
                ("Status", description.status),
                ("Current step", description.current_step),
                ("Tenant", description.tenant_id),
                ("Created by", description.created_by),
                ("Started", description.start_time),
                ("Closed", description.close_time),
                ("Result", result),
            ]
        )
        out.line()
        out.line("Pending tasks")
        pending_columns = (
            Column("ID", attr("task_id"), key=True),
            *[c for c in INSTANCE_TASK_COLUMNS if c.header not in ("ID", "COMPLETED BY")],
        )
        out.table(description.pending_tasks, pending_columns, empty="no pending tasks")
        return ExitCode.OK
    row, steps, tasks = found
    result = await _result(ctx, row.status, row.workflow_id, row.run_id)
    if out.json_mode:
        out.json({"source": "mirror", **row.model_dump(), "steps": steps, "tasks": tasks, "result": result})
        return ExitCode.OK
    out.fields(
        [
            ("Workflow ID", row.workflow_id),
            ("Run ID", row.run_id),
            ("Instance", row.id),
            ("Workflow", f"{row.workflow_name}@{row.workflow_version}"),
            ("Status", row.status),
            ("Current step", row.current_step),
            ("Tenant", row.tenant_id),
            ("Created by", row.created_by),
            ("Task queue", row.task_queue),
            ("Started", row.started_at),
            ("Completed", row.completed_at),
            ("Error", row.error),
            ("Result", result),
        ]
    )
    out.line()
    out.line("Steps")
    out.table(steps, STEP_COLUMNS, empty="no steps yet")
    out.line()
    out.line("Tasks")
    out.table(tasks, INSTANCE_TASK_COLUMNS, empty="no human tasks")
    return ExitCode.OK
