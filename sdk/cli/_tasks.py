"""``dwf tasks``: list, show, claim, release, complete, reassign and comment on human tasks.

Lists and details read the SQL mirror only. A task id may be given as a unique start of one.
Actions go through ``sdk.WorkflowClient`` connected with the mirror, so a task id alone finds
its instance (within ``--tenant``) and the client's checks apply before anything is sent: the
task exists and is pending, the user may act, the data fits the form.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sdk import TaskInfo

from ._context import Context
from ._exit import ExitCode, UsageError
from ._output import Column, attr
from ._prefix import task_id
from ._target import open_client, open_queries

__all__ = [
    "claim_task",
    "comment_task",
    "complete_task",
    "escalate_task",
    "list_tasks",
    "reassign_task",
    "release_task",
    "show_task",
    "vote_task",
]

TASK_COLUMNS = (
    Column("ID", attr("id"), key=True),
    Column("TITLE", attr("title"), 40),
    Column("ASSIGNEE", attr("assignee_id")),
    Column("GROUP", attr("assignee_group")),
    Column("CLAIMED BY", attr("claimed_by")),
    Column("DUE", attr("due_at")),
    Column("PRIORITY", attr("priority")),
    Column("ON BEHALF OF", attr("on_behalf_of")),
    Column("TENANT", attr("tenant_id")),
    Column("WORKFLOW ID", attr("workflow_id"), key=True),
)
COMMENT_COLUMNS = (
    Column("POSTED", attr("posted_at")),
    Column("AUTHOR", attr("author")),
    Column("BODY", attr("body"), 80),
)
ASSIGNMENT_COLUMNS = (
    Column("AT", attr("at")),
    Column("ACTION", attr("action")),
    Column("FROM", attr("from_assignee")),
    Column("TO", attr("to_assignee")),
    Column("BY", attr("by_user")),
    Column("REASON", attr("reason"), 60),
)


async def list_tasks(ctx: Context) -> int:
    """Pending tasks: a user's inbox (``--user`` with ``--group``), or filtered by assignee/group."""
    a = ctx.args
    due_before = datetime.now(UTC) if a.overdue else a.due_before
    async with open_queries(ctx.target) as queries:
        if a.user is not None:
            page = await queries.inbox(
                a.user,
                a.groups,
                tenant_id=a.tenant,
                due_before=due_before,
                limit=a.limit,
                offset=a.offset,
                order_by=a.order_by,
                min_priority=a.min_priority,
            )
        else:
            page = await queries.pending_tasks(
                tenant_id=a.tenant,
                assignee_id=a.assignee,
                group=a.groups or None,
                due_before=due_before,
                limit=a.limit,
                offset=a.offset,
                order_by=a.order_by,
                min_priority=a.min_priority,
            )
    ctx.out.page(page, TASK_COLUMNS, noun="overdue tasks" if a.overdue else "pending tasks")
    return ExitCode.OK


async def show_task(ctx: Context) -> int:
    """One task from the mirror, with its comments and its assignment history."""
    a = ctx.args
    async with open_queries(ctx.target) as queries:
        task = await queries.get_task(await task_id(ctx.target, a.task_id, a.tenant), tenant_id=a.tenant)
        comments = await queries.task_comments(task.id, limit=500)
        assignments = await queries.task_assignments(task.id, limit=500)
    out = ctx.out
    if out.json_mode:
        out.json({**task.model_dump(), "comments": comments.items, "assignments": assignments.items})
        return ExitCode.OK
    out.fields(
        [
            ("Task", task.id),
            ("Title", task.title),
            ("Description", task.description),
            ("Status", task.status),
            ("Step", task.step_name),
            ("Workflow ID", task.workflow_id),
            ("Instance", task.instance_id),
            ("Tenant", task.tenant_id),
            ("Assignee", task.assignee_id),
            ("Group", task.assignee_group),
            ("Claimed by", task.claimed_by),
            ("Claimed at", task.claimed_at),
            ("Requires claim", task.require_claim),
            ("Due", task.due_at),
            ("Reminder", task.reminder_at),
            ("Created", task.created_at),
            ("Completed", task.completed_at),
            ("Completed by", task.completed_by),
            ("Form data", task.form_data),
            ("Comment", task.comment),
        ]
    )
    out.line()
    out.line("Comments")
    out.table(comments.items, COMMENT_COLUMNS, empty="no comments")
    out.line()
    out.line("Assignment history")
    out.table(assignments.items, ASSIGNMENT_COLUMNS, empty="no claims, releases or reassignments")
    return ExitCode.OK


def _report(ctx: Context, info: TaskInfo, summary: str) -> int:
    if ctx.out.json_mode:
        ctx.out.json(info)
    else:
        ctx.out.line(f"{summary}: task {info.task_id} ({info.title})")
    return ExitCode.OK


def _identity(ctx: Context) -> dict[str, Any]:
    a = ctx.args
    return {"user": a.user, "groups": a.groups, "admin": a.admin, "tenant_id": a.tenant}


async def _task(ctx: Context) -> str:
    return await task_id(ctx.target, ctx.args.task_id, ctx.args.tenant)


async def claim_task(ctx: Context) -> int:
    task = await _task(ctx)
    async with open_client(ctx.target) as client:
        info = await client.claim_task(task, **_identity(ctx))
    return _report(ctx, info, f"claimed by {info.claimed_by}")


async def release_task(ctx: Context) -> int:
    task = await _task(ctx)
    async with open_client(ctx.target) as client:
        info = await client.release_task(task, **_identity(ctx))
    holder = info.assignee_group or info.assignee_id
    return _report(ctx, info, f"released to {holder}" if holder else "released")


async def complete_task(ctx: Context) -> int:
    a, task = ctx.args, await _task(ctx)
    async with open_client(ctx.target) as client:
        info = await client.complete_task(task, a.data, comment=a.comment, **_identity(ctx))
    return _report(ctx, info, f"completed by {info.completed_by or a.user}")


async def reassign_task(ctx: Context) -> int:
    a = ctx.args
    if not (a.to_user or a.to_group):
        raise UsageError("tasks reassign: give --to-user USER and/or --to-group GROUP")
    task = await _task(ctx)
    async with open_client(ctx.target) as client:
        info = await client.reassign_task(
            task, to_user=a.to_user, to_group=a.to_group, reason=a.reason, **_identity(ctx)
        )
    to = " and ".join(
        x for x in (info.assignee_id, info.assignee_group and f"group {info.assignee_group}") if x
    )
    return _report(ctx, info, f"reassigned to {to or 'nobody'}")


async def escalate_task(ctx: Context) -> int:
    a, task = ctx.args, await _task(ctx)
    async with open_client(ctx.target) as client:
        info = await client.escalate_task(task, reason=a.reason, **_identity(ctx))
    to = " and ".join(
        x for x in (info.assignee_id, info.assignee_group and f"group {info.assignee_group}") if x
    )
    return _report(ctx, info, f"escalated to {to or 'nobody'}")


async def comment_task(ctx: Context) -> int:
    a, task = ctx.args, await _task(ctx)
    async with open_client(ctx.target) as client:
        info = await client.comment_task(task, a.body, **_identity(ctx))
    return _report(ctx, info, f"commented ({len(info.comments)} comment(s))")


async def vote_task(ctx: Context) -> int:
    """Vote on a quorum task with its form (``approved`` in the data is the vote)."""
    a, task = ctx.args, await _task(ctx)
    async with open_client(ctx.target) as client:
        info = await client.vote_task(
            task, a.data, user=a.user, groups=a.groups, comment=a.comment, tenant_id=a.tenant
        )
    counted = f"{len(info.votes)} vote(s) of {info.quorum} needed"
    return _report(ctx, info, f"voted ({counted}; task {info.status.value})")
