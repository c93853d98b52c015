"""``dwf tasks bulk`` and ``dwf instances bulk``: one action on everything a filter matches.

Both go through ``sdk.WorkflowClient.bulk_tasks`` / ``bulk_instances``, so every item passes
the checks and is signed exactly as the single command would be. ``--dry-run`` counts what
matches and sends nothing. Progress shows on stderr (a Rich bar on a terminal); the summary
lists what was refused and why. Exit 0 when nothing was refused, 1 otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ._context import Context
from ._exit import ExitCode
from ._output import Column, Progress, attr
from ._target import open_client

__all__ = ["bulk_instances", "bulk_tasks"]

_VERBS = {
    "reassign": "reassigned",
    "comment": "commented",
    "escalate": "escalated",
    "cancel": "canceled",
    "pause": "paused",
    "resume": "resumed",
}
REFUSED_COLUMNS = (
    Column("ID", attr("id"), key=True),
    Column("WORKFLOW ID", attr("workflow_id"), key=True),
    Column("ERROR", attr("error")),
    Column("WHY", attr("message"), 80),
)
MATCHED_COLUMNS = (
    Column("ID", attr("id"), key=True),
    Column("WORKFLOW ID", attr("workflow_id"), key=True),
)


class _Bar:
    """The progress callback: a bar once the total is known."""

    def __init__(self, ctx: Context, verb: str) -> None:
        self.ctx, self.verb = ctx, verb
        self.bar: Progress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = Progress(self.verb, total, self.ctx.out.stderr)
        self.bar(done, "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _report(ctx: Context, result: Any, noun: str) -> int:
    out = ctx.out
    if out.json_mode:
        out.json({**result.model_dump(), "refusals_by_error": result.refusals_by_error()})
        return ExitCode.OK if not result.refused else ExitCode.FAILED
    if result.dry_run:
        out.line(f"dry run: {result.action} would apply to {result.matched} {noun}; nothing was sent")
        out.table(result.succeeded, MATCHED_COLUMNS, empty=f"no {noun} match")
        return ExitCode.OK
    verb = _VERBS.get(result.action, result.action)
    out.line(
        f"{result.matched} {noun} matched: {len(result.succeeded)} {verb}, {len(result.refused)} refused"
    )
    if result.refused:
        by_error = ", ".join(f"{n} {error}" for error, n in sorted(result.refusals_by_error().items()))
        out.line(f"refused: {by_error}")
        out.table(result.refused, REFUSED_COLUMNS, empty="")
    return ExitCode.OK if not result.refused else ExitCode.FAILED


async def bulk_tasks(ctx: Context) -> int:
    """Reassign, comment, escalate or cancel every pending task the filter matches."""
    a = ctx.args
    bar = _Bar(ctx, _VERBS[a.action])
    try:
        async with open_client(ctx.target) as client:
            result = await client.bulk_tasks(
                a.action,
                user=a.user,
                groups=a.user_groups or None,
                admin=a.admin or None,
                tenant_id=a.tenant,
                assignee_id=a.assignee,
                group=a.groups or None,
                due_before=datetime.now(UTC) if a.overdue else a.due_before,
                to_user=a.to_user,
                to_group=a.to_group,
                reason=a.reason,
                body=a.body,
                dry_run=a.dry_run,
                progress=bar,
            )
    finally:
        bar.close()
    return _report(ctx, result, "tasks")


async def bulk_instances(ctx: Context) -> int:
    """Cancel, pause or resume every instance the filter matches."""
    a = ctx.args
    bar = _Bar(ctx, _VERBS[a.action])
    try:
        async with open_client(ctx.target) as client:
            result = await client.bulk_instances(
                a.action,
                by=a.by,
                reason=a.reason,
                tenant_id=a.tenant,
                status=a.status,
                workflow_name=a.workflow,
                created_by=a.created_by,
                created_after=a.since,
                created_before=a.until,
                dry_run=a.dry_run,
                progress=bar,
            )
    finally:
        bar.close()
    return _report(ctx, result, "instances")
