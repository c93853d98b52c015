"""The query API: what is waiting for whom, and what happened to an instance, in one SQL query each.

Reads only. Every method opens its own session (one unit of work, never shared between tasks),
returns detached rows (:mod:`sdk.mirror._rows`) and orders them totally (ties broken by ``id``),
so ``limit``/``offset`` pages neither repeat nor skip rows.

Tenancy: when ``tenant_id`` is given, only that tenant's rows exist for the call; a task or
instance of another tenant is reported exactly like one that does not exist. ``tenant_id=None``
means "no tenant filter" (single-tenant applications and operators), not "rows without tenant".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import ColumnElement, Select, UnaryExpression, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import raiseload

from sdk._errors import InstanceNotFoundError, TaskNotFoundError
from sdk._types import TaskStatus, WorkflowStatus

from ._base import MirrorBase, utcnow
from ._models import (
    HumanTaskModel,
    StepExecutionModel,
    TaskAssignmentModel,
    TaskCommentModel,
    WorkflowInstanceModel,
)
from ._rows import AssignmentRow, CommentRow, InstanceRow, Page, StepRow, TaskRow

__all__ = ["DEFAULT_LIMIT", "MirrorQueries"]

DEFAULT_LIMIT = 50
"""Page size when a method is called without ``limit``."""

M = TypeVar("M", bound=MirrorBase)
R = TypeVar("R")

_PENDING = TaskStatus.PENDING.value

# Total orders. Tasks: soonest due first, undated last (PostgreSQL's default for an ascending
# index, so ix_human_tasks_tenant_id_status_due_at serves it). Instances: newest first.
_TASK_ORDER = (
    HumanTaskModel.due_at.asc().nulls_last(),
    HumanTaskModel.created_at.asc(),
    HumanTaskModel.id.asc(),
)
_INSTANCE_TASK_ORDER = (HumanTaskModel.created_at.asc(), HumanTaskModel.id.asc())
_INSTANCE_ORDER = (WorkflowInstanceModel.created_at.desc(), WorkflowInstanceModel.id.desc())
_STEP_ORDER = (
    StepExecutionModel.started_at.asc(),
    StepExecutionModel.step_seq.asc().nulls_last(),
    StepExecutionModel.id.asc(),
)
_COMMENT_ORDER = (
    TaskCommentModel.posted_at.asc(),
    TaskCommentModel.created_at.asc(),
    TaskCommentModel.id.asc(),
)
_ASSIGNMENT_ORDER = (
    TaskAssignmentModel.at.asc(),
    TaskAssignmentModel.created_at.asc(),
    TaskAssignmentModel.id.asc(),
)


def _as_uuid(value: UUID | str) -> UUID | None:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(value)
    except (TypeError, ValueError, AttributeError):
        return None


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


def _check_page(limit: int, offset: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must not be negative, got {offset}")


def _one_or_many(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class MirrorQueries:
    """Reads of the SQL mirror: inboxes, task and instance lists, histories.

    Args:
        session_factory: Where sessions come from, e.g.
            ``sdk.mirror.session_factory(sdk.mirror.create_engine(url))``.

    Every method that lists returns a :class:`~sdk.mirror.Page`; ``limit`` must be at least 1
    and ``offset`` at least 0 (``ValueError`` otherwise). Datetimes must be timezone-aware.
    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    # -- human tasks ---------------------------------------------------------------------------

    async def inbox(
        self,
        user: str,
        groups: Sequence[str] = (),
        *,
        tenant_id: str | None = None,
        due_before: datetime | None = None,
        include_claimed_by_others: bool = True,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> Page[TaskRow]:
        """The pending tasks a user may act on: assigned to them, or to any of their groups.

        Args:
            user: The user id (matched against ``assignee_id``).
            groups: The user's groups (matched against ``assignee_group``).
            tenant_id: Only this tenant's tasks.
            due_before: Only tasks due strictly before this time.
            include_claimed_by_others: With False, a group task another member has claimed
                is left out (the claimer still sees it).
            limit: Page size.
            offset: Rows to skip.

        Returns:
            Tasks ordered by due time (undated last), then creation time.
        """
        group_list = list(groups)
        mine: list[ColumnElement[bool]] = [HumanTaskModel.assignee_id == user]
        if group_list:
            in_group: ColumnElement[bool] = HumanTaskModel.assignee_group.in_(group_list)
            if not include_claimed_by_others:
                in_group = in_group & or_(
                    HumanTaskModel.claimed_by.is_(None), HumanTaskModel.claimed_by == user
                )
            mine.append(in_group)
        filters = [HumanTaskModel.status == _PENDING, or_(*mine)]
        filters += self._task_filters(tenant_id=tenant_id, due_before=_aware(due_before, "due_before"))
        return await self._page(HumanTaskModel, filters, _TASK_ORDER, TaskRow.model_validate, limit, offset)

    async def pending_tasks(
        self,
        *,
        tenant_id: str | None = None,
        assignee_id: str | None = None,
        group: str | Sequence[str] | None = None,
        due_before: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> Page[TaskRow]:
        """Pending tasks, filtered by every criterion given (all must hold).

        Args:
            tenant_id: Only this tenant's tasks.
            assignee_id: Only tasks assigned to this user.
            group: Only tasks assigned to this group (or to any of these groups).
            due_before: Only tasks due strictly before this time (undated tasks never match).
            limit: Page size.
            offset: Rows to skip.

        Returns:
            Tasks ordered by due time (undated last), then creation time.
        """
        filters = [HumanTaskModel.status == _PENDING]
        filters += self._task_filters(
            tenant_id=tenant_id,
            assignee_id=assignee_id,
            group=group,
            due_before=_aware(due_before, "due_before"),
        )
        return await self._page(HumanTaskModel, filters, _TASK_ORDER, TaskRow.model_validate, limit, offset)

    async def overdue_tasks(
        self,
        *,
        now: datetime | None = None,
        tenant_id: str | None = None,
        assignee_id: str | None = None,
        group: str | Sequence[str] | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> Page[TaskRow]:
        """Pending tasks whose due time has passed (``due_at < now``), most overdue first.

        Args:
            now: The reference time (default: the current time).
            tenant_id: Only this tenant's tasks.
            assignee_id: Only tasks assigned to this user.
            group: Only tasks assigned to this group (or to any of these groups).
            limit: Page size.
            offset: Rows to skip.
        """
        return await self.pending_tasks(
            tenant_id=tenant_id,
            assignee_id=assignee_id,
            group=group,
            due_before=_aware(now, "now") or utcnow(),
            limit=limit,
            offset=offset,
        )

    async def get_task(self, task_id: UUID | str, *, tenant_id: str | None = None) -> TaskRow:
        """One task by id.

        Raises:
            TaskNotFoundError: No such task, or it belongs to another tenant.
        """
        async with self._sessions() as session:
            return TaskRow.model_validate(await self._task(session, task_id, tenant_id))

    async def instance_tasks(
        self,
        instance_id: UUID | str,
        *,
        tenant_id: str | None = None,
        status: TaskStatus | Sequence[TaskStatus] | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> Page[TaskRow]:
        """The tasks of one instance, in creation order, optionally only those in ``status``.

        Raises:
            InstanceNotFoundError: No such instance, or it belongs to another tenant.
        """
        key = await self._visible_instance_id(instance_id, tenant_id)
        filters = [HumanTaskModel.instance_id == key]
        if status is not None:
            filters.append(HumanTaskModel.status.in_(_one_or_many(status)))
        return await self._page(
            HumanTaskModel, filters, _INSTANCE_TASK_ORDER, TaskRow.model_validate, limit, offset
        )

    async def task_comments(
        self,
        task_id: UUID | str,
        *,
        tenant_id: str | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> Page[CommentRow]:
        """The comments on a task, oldest first.

        Raises:
            TaskNotFoundError: No such task, or it belongs to another tenant.
        """
        async with self._sessions() as session:
            task = await self._task(session, task_id, tenant_id)
        return await self._page(
            TaskCommentModel,
            [TaskCommentModel.task_id == task.id],
            _COMMENT_ORDER,
            CommentRow.model_validate,
            limit,
            offset,
        )

    async def task_assignments(
        self,
        task_id: UUID | str,
        *,
        tenant_id: str | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> Page[AssignmentRow]:
        """Who held a task when: its claims, releases, reassignments and escalations, oldest first.

        Raises:
            TaskNotFoundError: No such task, or it belongs to another tenant.
        """
        async with self._sessions() as session:
            task = await self._task(session, task_id, tenant_id)
        return await self._page(
            TaskAssignmentModel,
            [TaskAssignmentModel.task_id == task.id],
            _ASSIGNMENT_ORDER,
            AssignmentRow.model_validate,
            limit,
            offset,
        )

    # -- instances -----------------------------------------------------------------------------

    async def instances(
        self,
        *,
        tenant_id: str | None = None,
        status: WorkflowStatus | Sequence[WorkflowStatus] | None = None,
        workflow_name: str | None = None,
        workflow_version: str | None = None,
        created_by: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> Page[InstanceRow]:
        """Instances matching every criterion given, newest first.

        Time ranges are half open: ``created_after <= created_at < created_before`` (and the
        same for ``started_at``).

        Args:
            tenant_id: Only this tenant's instances.
            status: Only instances in this status (or in any of these).
            workflow_name: Only instances of this workflow.
            workflow_version: Only instances of this version.
            created_by: Only instances this user started.
            created_after: Lower bound (inclusive) of ``created_at``.
            created_before: Upper bound (exclusive) of ``created_at``.
            started_after: Lower bound (inclusive) of ``started_at``.
            started_before: Upper bound (exclusive) of ``started_at``.
            limit: Page size.
            offset: Rows to skip.
        """
        model = WorkflowInstanceModel
        filters: list[ColumnElement[bool]] = []
        if tenant_id is not None:
            filters.append(model.tenant_id == tenant_id)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            filters.append(model.status.in_([WorkflowStatus(s) for s in statuses]))
        if workflow_name is not None:
            filters.append(model.workflow_name == workflow_name)
        if workflow_version is not None:
            filters.append(model.workflow_version == workflow_version)
        if created_by is not None:
            filters.append(model.created_by == created_by)
        for column, lower, upper, names in (
            (model.created_at, created_after, created_before, ("created_after", "created_before")),
            (model.started_at, started_after, started_before, ("started_after", "started_before")),
        ):
            if _aware(lower, names[0]) is not None:
                filters.append(column >= lower)
            if _aware(upper, names[1]) is not None:
                filters.append(column < upper)
        return await self._page(model, filters, _INSTANCE_ORDER, InstanceRow.model_validate, limit, offset)

    async def get_instance(self, instance_id: UUID | str, *, tenant_id: str | None = None) -> InstanceRow:
        """One instance by id.

        Raises:
            InstanceNotFoundError: No such instance, or it belongs to another tenant.
        """
        key = _as_uuid(instance_id)
        async with self._sessions() as session:
            row = None
            if key is not None:
                stmt = self._select(WorkflowInstanceModel).where(WorkflowInstanceModel.id == key)
                if tenant_id is not None:
                    stmt = stmt.where(WorkflowInstanceModel.tenant_id == tenant_id)
                row = await session.scalar(stmt)
        if row is None:
            raise InstanceNotFoundError(f"workflow instance {instance_id} not found")
        return InstanceRow.model_validate(row)

    async def instance_by_workflow_id(self, workflow_id: str, *, tenant_id: str | None = None) -> InstanceRow:
        """The latest run of a Temporal workflow id (a workflow id is reused across its runs).

        Raises:
            InstanceNotFoundError: No run of that workflow id, or it belongs to another tenant.
        """
        stmt = self._select(WorkflowInstanceModel).where(WorkflowInstanceModel.workflow_id == workflow_id)
        if tenant_id is not None:
            stmt = stmt.where(WorkflowInstanceModel.tenant_id == tenant_id)
        stmt = stmt.order_by(WorkflowInstanceModel.started_at.desc(), *_INSTANCE_ORDER).limit(1)
        async with self._sessions() as session:
            row = await session.scalar(stmt)
        if row is None:
            raise InstanceNotFoundError(f"no workflow instance with workflow id {workflow_id!r}")
        return InstanceRow.model_validate(row)

    async def step_history(
        self,
        instance_id: UUID | str,
        *,
        tenant_id: str | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> Page[StepRow]:
        """The step executions of an instance, in the order they started (then by step sequence).

        Raises:
            InstanceNotFoundError: No such instance, or it belongs to another tenant.
        """
        key = await self._visible_instance_id(instance_id, tenant_id)
        return await self._page(
            StepExecutionModel,
            [StepExecutionModel.instance_id == key],
            _STEP_ORDER,
            StepRow.model_validate,
            limit,
            offset,
        )

    # -- building blocks -----------------------------------------------------------------------

    @staticmethod
    def _select(model: type[M]) -> Select[M]:
        # Rows are converted to detached snapshots: no relationship may load (the seed's joined
        # instance -> definition included).
        return select(model).options(raiseload("*"))

    @staticmethod
    def _task_filters(
        *,
        tenant_id: str | None = None,
        assignee_id: str | None = None,
        group: str | Sequence[str] | None = None,
        due_before: datetime | None = None,
    ) -> list[ColumnElement[bool]]:
        filters: list[ColumnElement[bool]] = []
        if tenant_id is not None:
            filters.append(HumanTaskModel.tenant_id == tenant_id)
        if assignee_id is not None:
            filters.append(HumanTaskModel.assignee_id == assignee_id)
        if group is not None:
            filters.append(HumanTaskModel.assignee_group.in_(_one_or_many(group)))
        if due_before is not None:
            filters.append(HumanTaskModel.due_at < due_before)
        return filters

    async def _task(
        self, session: AsyncSession, task_id: UUID | str, tenant_id: str | None
    ) -> HumanTaskModel:
        key = _as_uuid(task_id)
        row = None
        if key is not None:
            stmt = self._select(HumanTaskModel).where(HumanTaskModel.id == key)
            if tenant_id is not None:
                stmt = stmt.where(HumanTaskModel.tenant_id == tenant_id)
            row = await session.scalar(stmt)
        if row is None:
            raise TaskNotFoundError(f"task {task_id} not found")
        return row

    async def _visible_instance_id(self, instance_id: UUID | str, tenant_id: str | None) -> UUID:
        key = _as_uuid(instance_id)
        found = None
        if key is not None:
            stmt = select(WorkflowInstanceModel.id).where(WorkflowInstanceModel.id == key)
            if tenant_id is not None:
                stmt = stmt.where(WorkflowInstanceModel.tenant_id == tenant_id)
            async with self._sessions() as session:
                found = await session.scalar(stmt)
        if found is None:
            raise InstanceNotFoundError(f"workflow instance {instance_id} not found")
        return found

    async def _page(
        self,
        model: type[M],
        filters: Sequence[ColumnElement[bool]],
        order: Sequence[UnaryExpression[Any]],
        convert: Callable[[M], R],
        limit: int,
        offset: int,
    ) -> Page[R]:
        _check_page(limit, offset)
        stmt = self._select(model).where(*filters).order_by(*order).limit(limit).offset(offset)
        async with self._sessions() as session:
            rows = list((await session.scalars(stmt)).all())
            if (rows and len(rows) < limit) or (not rows and offset == 0):
                # The page is the tail of the result: its end is the total, no COUNT needed.
                total = offset + len(rows)
            else:
                count = select(func.count()).select_from(model).where(*filters)
                total = (await session.scalar(count)) or 0
        return Page(items=[convert(row) for row in rows], total=total, limit=limit, offset=offset)
