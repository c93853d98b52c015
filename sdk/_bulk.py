"""Bulk actions: one command applied to every task or instance a mirror query matches.

The matching rows are read first (all pages, so acting on a task that then leaves the filter
never shifts a page), then each item goes through the client's own single command, with its
checks (permission, tenant, the task still pending), its signature and the workflow's checks
on receipt. A refused item never stops the others: the result lists what succeeded and what
was refused, and why. A dry run reads and counts, and sends nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, Field

from ._errors import InvalidInputError
from ._identity import ALL_TENANTS
from ._types import WorkflowStatus

if TYPE_CHECKING:
    from ._client import WorkflowClient

__all__ = [
    "BULK_LIMIT",
    "BulkCommands",
    "BulkItem",
    "BulkResult",
    "InstanceBulkAction",
    "TaskBulkAction",
]

BULK_LIMIT = 10_000
"""The most items one bulk action touches; narrow the filter (or repeat) beyond it."""

TaskBulkAction = Literal["reassign", "comment", "escalate", "cancel"]
"""What a bulk action on tasks does (``cancel`` cancels each task's instance)."""
InstanceBulkAction = Literal["cancel", "pause", "resume"]
"""What a bulk action on instances does."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after each item."""


class BulkItem(BaseModel):
    """One item of a bulk action and what became of it.

    Attributes:
        id: The task id, or the instance's workflow id.
        workflow_id: The instance's workflow id.
        error: The exception's class name when the item was refused (None: it succeeded).
        message: Why it was refused.
    """

    id: str
    workflow_id: str
    error: str | None = None
    message: str | None = None


class BulkResult(BaseModel):
    """What a bulk action did.

    Attributes:
        action: The action.
        dry_run: True when nothing was sent (``matched`` counts what would be).
        matched: How many items the filter matched.
        succeeded: Items the action was applied to.
        refused: Items refused, each with the error and its message.
    """

    action: str
    dry_run: bool
    matched: int
    succeeded: list[BulkItem] = Field(default_factory=list)
    refused: list[BulkItem] = Field(default_factory=list)

    def refusals_by_error(self) -> dict[str, int]:
        """How many items were refused, by error class name."""
        return dict(Counter(item.error or "error" for item in self.refused))


def _scope(client: WorkflowClient, tenant_id: str | None) -> str | None:
    scope = client._scope(tenant_id)  # a client bound to a tenant stays in it
    return None if scope == ALL_TENANTS else scope


async def _all_pages(fetch: Callable[[int], Awaitable[Any]]) -> list[Any]:
    rows: list[Any] = []
    while len(rows) < BULK_LIMIT:
        page = await fetch(len(rows))
        rows += page.items
        if not page.has_more or not page.items:
            break
    return rows[:BULK_LIMIT]


async def _run(
    action: str,
    items: Sequence[tuple[str, str]],
    apply: Callable[[str, str], Awaitable[None]],
    dry_run: bool,
    progress: Progress | None,
) -> BulkResult:
    result = BulkResult(action=action, dry_run=dry_run, matched=len(items))
    if dry_run:
        result.succeeded = [BulkItem(id=item_id, workflow_id=wf) for item_id, wf in items]
        return result
    for done, (item_id, workflow_id) in enumerate(items, start=1):
        try:
            await apply(item_id, workflow_id)
        except Exception as exc:  # each item's refusal is reported, the others go on
            result.refused.append(
                BulkItem(id=item_id, workflow_id=workflow_id, error=type(exc).__name__, message=str(exc))
            )
        else:
            result.succeeded.append(BulkItem(id=item_id, workflow_id=workflow_id))
        if progress is not None:
            progress(done, len(items))
    return result


class BulkCommands:
    """The bulk actions of :class:`sdk.WorkflowClient` (one of its bases)."""

    def _as_client(self) -> WorkflowClient:
        return cast("WorkflowClient", self)

    async def bulk_tasks(
        self,
        action: TaskBulkAction,
        *,
        user: str,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
        tenant_id: str | None = None,
        assignee_id: str | None = None,
        group: str | Sequence[str] | None = None,
        due_before: datetime | None = None,
        to_user: str | None = None,
        to_group: str | None = None,
        reason: str | None = None,
        body: str | None = None,
        dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> BulkResult:
        """Reassign, comment, escalate or cancel every pending task the filter matches.

        The filter is that of ``queries.pending_tasks`` (``assignee_id``, ``group``,
        ``due_before``, within the tenant). Each task then goes through the single command
        (:meth:`reassign_task`, :meth:`comment_task`, :meth:`escalate_task`, or :meth:`cancel`
        of its instance, once per instance) as ``user``, with every check and signature that
        command has; a refusal is recorded and the next task goes on.

        Args:
            action: ``"reassign"`` (``to_user``/``to_group`` and ``reason``), ``"comment"``
                (``body``), ``"escalate"`` (``reason`` optional) or ``"cancel"``.
            dry_run: Only count (and list) what matches; send nothing.
            progress: Called with (done, total) after each item.

        Returns:
            What matched, what succeeded and what was refused (error class and message).

        Raises:
            InvalidInputError: An unknown action, or one missing its arguments (nothing sent).
            MirrorUnavailableError: The client has no database to query.
        """
        client = self._as_client()
        if action not in ("reassign", "comment", "escalate", "cancel"):
            raise InvalidInputError(
                f"unknown bulk action on tasks {action!r}: reassign, comment, escalate or cancel"
            )
        if action == "reassign" and not ((to_user or to_group) and (reason or "").strip()):
            raise InvalidInputError("a bulk reassign needs to_user and/or to_group, and a reason")
        if action == "comment" and not (body or "").strip():
            raise InvalidInputError("a bulk comment needs a non-empty body")
        queries = client._require_queries("a bulk action")
        scope = _scope(client, tenant_id)
        rows = await _all_pages(
            lambda offset: queries.pending_tasks(
                tenant_id=scope,
                assignee_id=assignee_id,
                group=group,
                due_before=due_before,
                limit=500,
                offset=offset,
            )
        )
        who: dict[str, Any] = {"user": user, "groups": groups, "admin": admin, "tenant_id": tenant_id}
        if action == "cancel":  # one cancellation per instance, however many of its tasks match
            by_instance = {row.workflow_id: row.workflow_id for row in rows}
            items = [(wf, wf) for wf in by_instance]
        else:
            items = [(str(row.id), row.workflow_id) for row in rows]

        async def apply(item_id: str, workflow_id: str) -> None:
            if action == "reassign":
                await client.reassign_task(
                    item_id,
                    to_user=to_user,
                    to_group=to_group,
                    reason=reason or "",
                    workflow_id=workflow_id,
                    **who,
                )
            elif action == "comment":
                await client.comment_task(item_id, body or "", workflow_id=workflow_id, **who)
            elif action == "escalate":
                await client.escalate_task(item_id, reason=reason, workflow_id=workflow_id, **who)
            else:
                await client.cancel(workflow_id, reason=reason, by=user, tenant_id=tenant_id)

        return await _run(action, items, apply, dry_run, progress)

    async def bulk_instances(
        self,
        action: InstanceBulkAction,
        *,
        by: str,
        reason: str | None = None,
        tenant_id: str | None = None,
        status: WorkflowStatus | Sequence[WorkflowStatus] | None = None,
        workflow_name: str | None = None,
        workflow_version: str | None = None,
        created_by: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> BulkResult:
        """Cancel, pause or resume every instance the filter of ``queries.instances`` matches.

        Each instance goes through the single command (:meth:`InstanceHandle.cancel`,
        ``pause``, ``resume``) as ``by``, with its checks and signature; see :meth:`bulk_tasks`.
        """
        client = self._as_client()
        if action not in ("cancel", "pause", "resume"):
            raise InvalidInputError(f"unknown bulk action on instances {action!r}: cancel, pause or resume")
        queries = client._require_queries("a bulk action")
        rows = await _all_pages(
            lambda offset: queries.instances(
                tenant_id=_scope(client, tenant_id),
                status=status,
                workflow_name=workflow_name,
                workflow_version=workflow_version,
                created_by=created_by,
                created_after=created_after,
                created_before=created_before,
                limit=500,
                offset=offset,
            )
        )
        items = list({row.workflow_id: (row.workflow_id, row.workflow_id) for row in rows}.values())

        async def apply(item_id: str, workflow_id: str) -> None:
            handle = client.get_instance(workflow_id, tenant_id=tenant_id)
            if action == "cancel":
                await handle.cancel(reason=reason, by=by)
            elif action == "pause":
                await handle.pause(by=by, reason=reason)
            else:
                await handle.resume(by=by)

        return await _run(action, items, apply, dry_run, progress)
