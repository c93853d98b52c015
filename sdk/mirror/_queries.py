"""The query API: what is waiting for whom, and what happened to an instance, in one SQL query each.

Reads only. Every method opens its own session (one unit of work, never shared between tasks),
returns detached rows (:mod:`sdk.mirror._rows`) and orders them totally (ties broken by ``id``),
so ``limit``/``offset`` pages neither repeat nor skip rows.

Tenancy: when ``tenant_id`` is given, only that tenant's rows exist for the call; a task or
instance of another tenant is reported exactly like one that does not exist. ``tenant_id=None``
means "no tenant filter" (single-tenant applications and operators), not "rows without tenant".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar, cast
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    UnaryExpression,
    and_,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sdk import InstanceNotFoundError, InvalidInputError, TaskNotFoundError, TaskStatus, WorkflowStatus

from ._among import among
from ._arms import page_of_arms
from ._base import utcnow
from ._models import (
    HumanTaskModel,
    StepExecutionModel,
    TaskAssignmentModel,
    TaskCommentModel,
    TaskVoteModel,
    VoteState,
    WorkflowInstanceModel,
)
from ._rows import AssignmentRow, CommentRow, InstanceRow, Page, StepRow, TaskRow, VoteRow

__all__ = ["DEFAULT_LIMIT", "DEFAULT_TOTAL_CAP", "MirrorQueries", "TaskOrder"]

TaskOrder = Literal["due", "priority", "follow_up"]
"""How task lists are sorted: soonest due, highest priority, or soonest follow-up first."""

DEFAULT_LIMIT = 50
"""Page size when a method is called without ``limit``."""

DEFAULT_TOTAL_CAP = 200
"""How many matches the task lists (``inbox``, ``pending_tasks``) count at most for a page's total.

Counting is the costly part of a page: every match is a heap row to read (the inbox's
eligibility reads ``quorum`` and ``claimed_by``), thousands for a busy group at a million task
rows. Past the cap, ``Page.total`` is a lower bound (``Page.total_exact`` is False)."""

R = TypeVar("R", bound=BaseModel)

# The statements are Core selects of the row models' columns (no ORM entities: nothing to load
# into an identity map, rows go straight into the pydantic models), built once per combination
# of filters with named parameters, so that a call neither builds a statement nor computes its
# cache key (SQLAlchemy memoizes it on the statement object).
_TASKS = cast(Table, HumanTaskModel.__table__)
_INSTANCES = cast(Table, WorkflowInstanceModel.__table__)
_STEPS = cast(Table, StepExecutionModel.__table__)
_COMMENTS = cast(Table, TaskCommentModel.__table__)
_ASSIGNMENTS = cast(Table, TaskAssignmentModel.__table__)
_VOTES = cast(Table, TaskVoteModel.__table__)

_PENDING = TaskStatus.PENDING.value
_LIMIT: BindParameter[int] = bindparam("limit", type_=Integer)
_OFFSET: BindParameter[int] = bindparam("offset", type_=Integer)
_COUNT_CAP: BindParameter[int] = bindparam("count_cap", type_=Integer)

# Total orders. Tasks: soonest due first, undated last (PostgreSQL's default for an ascending
# index, so ix_human_tasks_tenant_id_status_due_at serves it). Instances: newest first.
_TASK_ORDER = (
    _TASKS.c.due_at.asc().nulls_last(),
    _TASKS.c.created_at.asc(),
    _TASKS.c.id.asc(),
)
_PRIORITY_ORDER = (
    _TASKS.c.priority.desc(),
    _TASKS.c.due_at.asc().nulls_last(),
    _TASKS.c.created_at.asc(),
    _TASKS.c.id.asc(),
)
_FOLLOW_UP_ORDER = (
    _TASKS.c.follow_up_at.asc().nulls_last(),
    _TASKS.c.priority.desc(),
    _TASKS.c.created_at.asc(),
    _TASKS.c.id.asc(),
)
_INSTANCE_TASK_ORDER = (_TASKS.c.created_at.asc(), _TASKS.c.id.asc())
_INSTANCE_ORDER = (_INSTANCES.c.created_at.desc(), _INSTANCES.c.id.desc())
_STEP_ORDER = (
    _STEPS.c.started_at.asc(),
    _STEPS.c.step_seq.asc().nulls_last(),
    _STEPS.c.id.asc(),
)
_COMMENT_ORDER = (
    _COMMENTS.c.posted_at.asc(),
    _COMMENTS.c.created_at.asc(),
    _COMMENTS.c.id.asc(),
)
_ASSIGNMENT_ORDER = (
    _ASSIGNMENTS.c.at.asc(),
    _ASSIGNMENTS.c.created_at.asc(),
    _ASSIGNMENTS.c.id.asc(),
)


def _param(name: str, expanding: bool = False) -> BindParameter[Any]:
    return bindparam(name, expanding=expanding)


# Every filter a method may apply, by name, with named parameters: a call picks some (see
# _Listing) and passes the values of their parameters.
_USER = _TASKS.c.assignee_id == _param("user")
_IN_GROUPS = _TASKS.c.assignee_group.in_(_param("groups", expanding=True))
_UNCLAIMED_GROUPS = and_(
    _IN_GROUPS,
    or_(_TASKS.c.claimed_by.is_(None), _TASKS.c.claimed_by == _param("user")),
)


def _users_row(*states: ColumnElement[bool]) -> ColumnElement[bool]:
    """The user (``:user``) has a ``workflow_task_votes`` row on the task matching ``states``."""
    return exists().where(_VOTES.c.task_id == _TASKS.c.id, _VOTES.c.voter == _param("user"), *states)


def _eligible(mine: ColumnElement[bool], groups: bool) -> ColumnElement[bool]:
    """``mine`` for plain tasks; for quorum tasks, a listed voter's open ballot or (group
    quorum) membership; never a task the user voted on or is excluded from."""
    ballot = _users_row(_VOTES.c.state == VoteState.PENDING.value)
    if groups:
        ballot = or_(ballot, and_(_IN_GROUPS, not_(_users_row())))
    return and_(
        not_(_users_row(_VOTES.c.state != VoteState.PENDING.value)),
        or_(
            and_(_TASKS.c.quorum.is_(None), mine),
            and_(_TASKS.c.quorum.is_not(None), ballot),
        ),
    )


# Implied by every eligibility above (a superset of the tasks it admits), and written so that
# each arm is an index scan: the inbox ANDs it with its eligibility so PostgreSQL reads only the
# tasks of the user, of their groups and of their open ballots, not every pending task.
_MY_BALLOTS = among(
    _TASKS.c.id,
    select(_VOTES.c.task_id).where(
        _VOTES.c.voter == _param("user"), _VOTES.c.state == VoteState.PENDING.value
    ),
)
# The arms of each "reachable" filter, read one by one in index order for the inbox's page on
# PostgreSQL (sdk.mirror._arms): the user's tasks, their open ballots, and (a scan per group)
# their groups' tasks.
_ARMS: dict[str, tuple[tuple[ColumnElement[bool], ...], bool]] = {
    "reachable_user": ((_USER, _MY_BALLOTS), False),
    "reachable_user_or_groups": ((_USER, _MY_BALLOTS), True),
}
_TASK_FILTERS: dict[str, ColumnElement[bool]] = {
    # A literal, not a parameter: PostgreSQL's generic plan of a prepared statement (asyncpg
    # prepares every statement; after five runs PostgreSQL may switch to the generic plan) can
    # use the partial pending-task indexes only when it can prove ``status = 'pending'`` from
    # the SQL text itself (``literal_execute``: SQLAlchemy renders the constant into the
    # statement, quoted by the dialect). With a parameter, the COUNT of pending_tasks switched to a BitmapAnd
    # of two other indexes at a million rows: 28 ms instead of 2.5 ms.
    "pending": _TASKS.c.status == literal(_PENDING, String, literal_execute=True),
    "user": _USER,
    "user_or_groups": or_(_USER, _IN_GROUPS),
    "user_or_unclaimed_groups": or_(_USER, _UNCLAIMED_GROUPS),
    # The inbox: who may act now (quorum ballots, separation of duties).
    "eligible_user": _eligible(_USER, groups=False),
    "eligible_user_or_groups": _eligible(or_(_USER, _IN_GROUPS), groups=True),
    "eligible_user_or_unclaimed_groups": _eligible(or_(_USER, _UNCLAIMED_GROUPS), groups=True),
    "reachable_user": or_(_USER, _MY_BALLOTS),
    "reachable_user_or_groups": or_(_USER, _IN_GROUPS, _MY_BALLOTS),
    "min_priority": _TASKS.c.priority >= _param("min_priority"),
    "follow_up_before": _TASKS.c.follow_up_at < _param("follow_up_before"),
    "tenant_id": _TASKS.c.tenant_id == _param("tenant_id"),
    "assignee_id": _TASKS.c.assignee_id == _param("assignee_id"),
    "group": _TASKS.c.assignee_group.in_(_param("group", expanding=True)),
    "due_before": _TASKS.c.due_at < _param("due_before"),
    "instance_id": _TASKS.c.instance_id == _param("instance_id"),
    "status": _TASKS.c.status.in_(_param("status", expanding=True)),
    "id": _TASKS.c.id == _param("id"),
}
_INSTANCE_FILTERS: dict[str, ColumnElement[bool]] = {
    "id": _INSTANCES.c.id == _param("id"),
    "workflow_id": _INSTANCES.c.workflow_id == _param("workflow_id"),
    "tenant_id": _INSTANCES.c.tenant_id == _param("tenant_id"),
    "status": _INSTANCES.c.status.in_(_param("status", expanding=True)),
    "workflow_name": _INSTANCES.c.workflow_name == _param("workflow_name"),
    "workflow_version": _INSTANCES.c.workflow_version == _param("workflow_version"),
    "created_by": _INSTANCES.c.created_by == _param("created_by"),
    "created_after": _INSTANCES.c.created_at >= _param("created_after"),
    "created_before": _INSTANCES.c.created_at < _param("created_before"),
    "started_after": _INSTANCES.c.started_at >= _param("started_after"),
    "started_before": _INSTANCES.c.started_at < _param("started_before"),
}


class _Listing:
    """The statements of one kind of read: a row model's columns of one table, in one order.

    Each method gives the statement(s) for one combination of the named filters (ANDed in the
    order given), built on first use and reused afterwards.
    """

    def __init__(
        self,
        table: Table,
        row: type[BaseModel],
        filters: Mapping[str, ColumnElement[bool]],
        order: Sequence[UnaryExpression[Any]],
    ) -> None:
        self._table = table
        # The row model's columns, in the table's order.
        self._rows = select(*(column for column in table.c if column.name in row.model_fields))
        self._filters = filters
        self._order = tuple(order)
        self._built: dict[tuple[str, tuple[str, ...]], Select[Any]] = {}

    def _where(self, names: tuple[str, ...]) -> list[ColumnElement[bool]]:
        return [self._filters[name] for name in names]

    def _cached(self, kind: str, names: tuple[str, ...], build: Callable[[], Select[Any]]) -> Select[Any]:
        built = self._built.get((kind, names))
        if built is None:
            built = self._built[kind, names] = build()
        return built

    def page(self, names: tuple[str, ...]) -> Select[Any]:
        """A page of rows (parameters ``limit`` and ``offset``)."""
        return self._cached(
            "page",
            names,
            lambda: (
                self._rows.where(*self._where(names)).order_by(*self._order).limit(_LIMIT).offset(_OFFSET)
            ),
        )

    def arms_page(self, names: tuple[str, ...], arms: str) -> Select[Any]:
        """The same page, each arm of the filter named ``arms`` read on its own (PostgreSQL only:
        see :mod:`sdk.mirror._arms`; parameters ``top`` and ``group_array`` besides)."""
        conditions, per_group = _ARMS[arms]
        return self._cached(
            f"arms:{arms}",
            names,
            lambda: page_of_arms(
                self._rows,
                self._table,
                self._where(tuple(name for name in names if name != arms)),
                conditions,
                self._table.c.assignee_group if per_group else None,
                self._order,
                _LIMIT,
                _OFFSET,
            ),
        )

    def count(self, names: tuple[str, ...], capped: bool) -> Select[Any]:
        """The COUNT of all rows; ``capped``: of at most ``count_cap`` rows (a ``LIMIT``-ed
        subquery, so the database stops reading at the cap)."""
        if not capped:
            return self._cached(
                "count",
                names,
                lambda: select(func.count()).select_from(self._table).where(*self._where(names)),
            )
        return self._cached(
            "capped_count",
            names,
            lambda: select(func.count()).select_from(
                select(literal_column("1"))
                .select_from(self._table)
                .where(*self._where(names))
                .limit(_COUNT_CAP)
                .subquery()
            ),
        )

    def first(self, names: tuple[str, ...]) -> Select[Any]:
        """The first row in the order."""
        return self._cached(
            "first", names, lambda: self._rows.where(*self._where(names)).order_by(*self._order).limit(1)
        )

    def find(self, names: tuple[str, ...]) -> Select[Any]:
        """The rows, unordered (for lookups by a unique key)."""
        return self._cached("find", names, lambda: self._rows.where(*self._where(names)))


_TASK_LISTING = _Listing(_TASKS, TaskRow, _TASK_FILTERS, _TASK_ORDER)
_TASK_LISTINGS: dict[str, _Listing] = {
    "due": _TASK_LISTING,
    "priority": _Listing(_TASKS, TaskRow, _TASK_FILTERS, _PRIORITY_ORDER),
    "follow_up": _Listing(_TASKS, TaskRow, _TASK_FILTERS, _FOLLOW_UP_ORDER),
}
_INSTANCE_TASK_LISTING = _Listing(_TASKS, TaskRow, _TASK_FILTERS, _INSTANCE_TASK_ORDER)
_INSTANCE_LISTING = _Listing(_INSTANCES, InstanceRow, _INSTANCE_FILTERS, _INSTANCE_ORDER)
# The latest run of a workflow id: by start time, then the instance order.
_LATEST_RUN = _Listing(
    _INSTANCES, InstanceRow, _INSTANCE_FILTERS, (_INSTANCES.c.started_at.desc(), *_INSTANCE_ORDER)
)
_STEP_LISTING = _Listing(
    _STEPS, StepRow, {"instance_id": _STEPS.c.instance_id == _param("instance_id")}, _STEP_ORDER
)
_COMMENT_LISTING = _Listing(
    _COMMENTS, CommentRow, {"task_id": _COMMENTS.c.task_id == _param("task_id")}, _COMMENT_ORDER
)
_VOTE_LISTING = _Listing(
    _VOTES,
    VoteRow,
    {"task_id": _VOTES.c.task_id == _param("task_id")},
    (_VOTES.c.voted_at.asc().nulls_last(), _VOTES.c.voter.asc(), _VOTES.c.id.asc()),
)
_ASSIGNMENT_LISTING = _Listing(
    _ASSIGNMENTS,
    AssignmentRow,
    {"task_id": _ASSIGNMENTS.c.task_id == _param("task_id")},
    _ASSIGNMENT_ORDER,
)


def _id_lookup(table: Table) -> dict[bool, Select[Any]]:
    """The id of the row with id ``:id`` (if any), by whether it must be in tenant ``:tenant_id``."""
    by_id = select(table.c.id).where(table.c.id == _param("id"))
    return {False: by_id, True: by_id.where(table.c.tenant_id == _param("tenant_id"))}


_VISIBLE_INSTANCE = _id_lookup(_INSTANCES)
_VISIBLE_TASK = _id_lookup(_TASKS)


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

        total_cap: How many matches :meth:`inbox` and :meth:`pending_tasks` (and
            :meth:`overdue_tasks`) count at most for a page's ``total`` (default
            :data:`DEFAULT_TOTAL_CAP`); past it, ``total`` is a lower bound and
            ``total_exact`` is False. ``None``: count every match. Other lists always count
            exactly.

    Every method that lists returns a :class:`~sdk.mirror.Page`; ``limit`` must be at least 1
    and ``offset`` at least 0 (``ValueError`` otherwise). Datetimes must be timezone-aware.
    """

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], *, total_cap: int | None = DEFAULT_TOTAL_CAP
    ) -> None:
        if total_cap is not None and total_cap < 1:
            raise ValueError(f"total_cap must be at least 1 (or None), got {total_cap}")
        self._sessions = session_factory
        self._total_cap = total_cap

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
        order_by: TaskOrder = "due",
        min_priority: int | None = None,
        follow_up_before: datetime | None = None,
    ) -> Page[TaskRow]:
        """The pending tasks a user may act on: assigned to them, or to any of their groups.

        A quorum task shows to its voters (or its group's members) until they have voted; a
        task separation of duties keeps the user from deciding does not show.

        Args:
            user: The user id (matched against ``assignee_id``).
            groups: The user's groups (matched against ``assignee_group``).
            tenant_id: Only this tenant's tasks.
            due_before: Only tasks due strictly before this time.
            include_claimed_by_others: With False, a group task another member has claimed
                is left out (the claimer still sees it).
            limit: Page size.
            offset: Rows to skip.
            order_by: ``"due"`` (soonest due first, undated last), ``"priority"`` (highest
                first) or ``"follow_up"`` (soonest follow-up first, undated last).
            min_priority: Only tasks of at least this priority.
            follow_up_before: Only tasks whose follow-up date is strictly before this time.

        Returns:
            Tasks in the order asked for, then by creation time. ``total`` counts at most
            ``total_cap`` matches (see the class).
        """
        group_list = list(groups)
        params: dict[str, Any] = {"user": user}
        if group_list:
            mine = "user_or_groups" if include_claimed_by_others else "user_or_unclaimed_groups"
            params["groups"] = params["group_array"] = group_list
        else:
            mine = "user"
        reachable = "reachable_user_or_groups" if group_list else "reachable_user"
        names = (
            "pending",
            reachable,
            f"eligible_{mine}",
            *self._task_filters(params, tenant_id=tenant_id, due_before=due_before),
            *self._approval_filters(params, min_priority, follow_up_before),
        )
        return await self._task_page(order_by, names, params, limit, offset, arms=reachable)

    async def pending_tasks(
        self,
        *,
        tenant_id: str | None = None,
        assignee_id: str | None = None,
        group: str | Sequence[str] | None = None,
        due_before: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
        order_by: TaskOrder = "due",
        min_priority: int | None = None,
        follow_up_before: datetime | None = None,
    ) -> Page[TaskRow]:
        """Pending tasks, filtered by every criterion given (all must hold).

        Args:
            tenant_id: Only this tenant's tasks.
            assignee_id: Only tasks assigned to this user.
            group: Only tasks assigned to this group (or to any of these groups).
            due_before: Only tasks due strictly before this time (undated tasks never match).
            limit: Page size.
            offset: Rows to skip.
            order_by: ``"due"``, ``"priority"`` or ``"follow_up"`` (see :meth:`inbox`).
            min_priority: Only tasks of at least this priority.
            follow_up_before: Only tasks whose follow-up date is strictly before this time.

        Returns:
            Tasks in the order asked for (default: by due time, undated last), then creation
            time. ``total`` counts at most ``total_cap`` matches (see the class).
        """
        params: dict[str, Any] = {}
        names = (
            "pending",
            *self._task_filters(
                params, tenant_id=tenant_id, assignee_id=assignee_id, group=group, due_before=due_before
            ),
            *self._approval_filters(params, min_priority, follow_up_before),
        )
        return await self._task_page(order_by, names, params, limit, offset)

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
        return TaskRow.model_validate(await self._task(task_id, tenant_id))

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
        params: dict[str, Any] = {"instance_id": key}
        names: tuple[str, ...] = ("instance_id",)
        if status is not None:
            params["status"] = _one_or_many(status)
            names += ("status",)
        return await self._page(_INSTANCE_TASK_LISTING, names, params, TaskRow.model_validate, limit, offset)

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
        key = await self._visible_task_id(task_id, tenant_id)
        return await self._page(
            _COMMENT_LISTING, ("task_id",), {"task_id": key}, CommentRow.model_validate, limit, offset
        )

    async def task_votes(
        self,
        task_id: UUID | str,
        *,
        tenant_id: str | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> Page[VoteRow]:
        """A task's rows per user: votes in the order cast, then open ballots and exclusions.

        Raises:
            TaskNotFoundError: No such task, or it belongs to another tenant.
        """
        key = await self._visible_task_id(task_id, tenant_id)
        return await self._page(
            _VOTE_LISTING, ("task_id",), {"task_id": key}, VoteRow.model_validate, limit, offset
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
        key = await self._visible_task_id(task_id, tenant_id)
        return await self._page(
            _ASSIGNMENT_LISTING,
            ("task_id",),
            {"task_id": key},
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
        params: dict[str, Any] = {}
        if tenant_id is not None:
            params["tenant_id"] = tenant_id
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            params["status"] = [WorkflowStatus(s) for s in statuses]
        for name, value in (
            ("workflow_name", workflow_name),
            ("workflow_version", workflow_version),
            ("created_by", created_by),
        ):
            if value is not None:
                params[name] = value
        for name, moment in (
            ("created_after", created_after),
            ("created_before", created_before),
            ("started_after", started_after),
            ("started_before", started_before),
        ):
            if _aware(moment, name) is not None:
                params[name] = moment
        return await self._page(
            _INSTANCE_LISTING, tuple(params), params, InstanceRow.model_validate, limit, offset
        )

    async def get_instance(self, instance_id: UUID | str, *, tenant_id: str | None = None) -> InstanceRow:
        """One instance by id.

        Raises:
            InstanceNotFoundError: No such instance, or it belongs to another tenant.
        """
        key = _as_uuid(instance_id)
        row = None
        if key is not None:
            row = await self._first(_INSTANCE_LISTING.find, {"id": key}, tenant_id)
        if row is None:
            raise InstanceNotFoundError(f"workflow instance {instance_id} not found")
        return InstanceRow.model_validate(row)

    async def instance_by_workflow_id(self, workflow_id: str, *, tenant_id: str | None = None) -> InstanceRow:
        """The latest run of a Temporal workflow id (a workflow id is reused across its runs).

        Raises:
            InstanceNotFoundError: No run of that workflow id, or it belongs to another tenant.
        """
        row = await self._first(_LATEST_RUN.first, {"workflow_id": workflow_id}, tenant_id)
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
            _STEP_LISTING, ("instance_id",), {"instance_id": key}, StepRow.model_validate, limit, offset
        )

    # -- building blocks -----------------------------------------------------------------------

    @staticmethod
    def _task_filters(
        params: dict[str, Any],
        *,
        tenant_id: str | None = None,
        assignee_id: str | None = None,
        group: str | Sequence[str] | None = None,
        due_before: datetime | None = None,
    ) -> tuple[str, ...]:
        """The names of the task filters given (their values added to ``params``).

        Raises:
            ValueError: ``due_before`` is a naive datetime.
        """
        if _aware(due_before, "due_before") is not None:
            params["due_before"] = due_before
        if tenant_id is not None:
            params["tenant_id"] = tenant_id
        if assignee_id is not None:
            params["assignee_id"] = assignee_id
        if group is not None:
            params["group"] = _one_or_many(group)
        return tuple(name for name in ("tenant_id", "assignee_id", "group", "due_before") if name in params)

    @staticmethod
    def _approval_filters(
        params: dict[str, Any], min_priority: int | None, follow_up_before: datetime | None
    ) -> tuple[str, ...]:
        """The names of the priority and follow-up filters given (values added to ``params``)."""
        names: tuple[str, ...] = ()
        if min_priority is not None:
            params["min_priority"] = min_priority
            names += ("min_priority",)
        if _aware(follow_up_before, "follow_up_before") is not None:
            params["follow_up_before"] = follow_up_before
            names += ("follow_up_before",)
        return names

    async def _first(
        self,
        statement: Callable[[tuple[str, ...]], Select[Any]],
        params: dict[str, Any],
        tenant_id: str | None,
    ) -> dict[str, Any] | None:
        """The first row of ``statement`` for the filters named by ``params`` (and the tenant's)."""
        if tenant_id is not None:
            params["tenant_id"] = tenant_id
        _refuse_nul(params)
        async with self._sessions() as session:
            result = await session.execute(statement(tuple(params)), params)
            row = result.first()
        return None if row is None else dict(zip(result.keys(), row, strict=True))

    async def _task(self, task_id: UUID | str, tenant_id: str | None) -> dict[str, Any]:
        key = _as_uuid(task_id)
        row = None
        if key is not None:
            row = await self._first(_TASK_LISTING.find, {"id": key}, tenant_id)
        if row is None:
            raise TaskNotFoundError(f"task {task_id} not found")
        return row

    async def _visible_id(
        self, lookup: Mapping[bool, Select[Any]], row_id: UUID | str, tenant_id: str | None
    ) -> UUID | None:
        key = _as_uuid(row_id)
        if key is None:
            return None
        params: dict[str, Any] = {"id": key}
        if tenant_id is not None:
            params["tenant_id"] = tenant_id
        _refuse_nul(params)
        async with self._sessions() as session:
            found = (await session.execute(lookup[tenant_id is not None], params)).scalar()
        return cast(UUID | None, found)

    async def _visible_instance_id(self, instance_id: UUID | str, tenant_id: str | None) -> UUID:
        found = await self._visible_id(_VISIBLE_INSTANCE, instance_id, tenant_id)
        if found is None:
            raise InstanceNotFoundError(f"workflow instance {instance_id} not found")
        return found

    async def _visible_task_id(self, task_id: UUID | str, tenant_id: str | None) -> UUID:
        found = await self._visible_id(_VISIBLE_TASK, task_id, tenant_id)
        if found is None:
            raise TaskNotFoundError(f"task {task_id} not found")
        return found

    async def _task_page(
        self,
        order_by: TaskOrder,
        names: tuple[str, ...],
        params: dict[str, Any],
        limit: int,
        offset: int,
        *,
        arms: str | None = None,
    ) -> Page[TaskRow]:
        """A page of a task list whose total is capped (``total_cap``, see the class)."""
        return await self._page(
            _listing(order_by),
            names,
            params,
            TaskRow.model_validate,
            limit,
            offset,
            total_cap=self._total_cap,
            arms=arms,
        )

    async def _page(
        self,
        listing: _Listing,
        names: tuple[str, ...],
        params: dict[str, Any],
        convert: Callable[[dict[str, Any]], R],
        limit: int,
        offset: int,
        *,
        total_cap: int | None = None,
        arms: str | None = None,
    ) -> Page[R]:
        """A page of ``listing`` and its total: counted up to ``total_cap`` matches (``None``:
        all); with ``arms`` (the name of an ORed filter of ``_ARMS``), on PostgreSQL, the page
        read arm by arm (:mod:`sdk.mirror._arms`)."""
        _check_page(limit, offset)
        _refuse_nul(params)
        page_params = {**params, "limit": limit, "offset": offset}
        exact = True
        async with self._sessions() as session:
            rows_stmt = listing.page(names)
            if arms is not None and session.get_bind().dialect.name == "postgresql":
                rows_stmt = listing.arms_page(names, arms)
                page_params.update(top=offset + limit, group_array=params.get("group_array", []))
            result = await session.execute(rows_stmt, page_params)
            keys = tuple(result.keys())
            rows = result.all()
            if (rows and len(rows) < limit) or (not rows and offset == 0):
                # The page is the tail of the result: its end is the total, no COUNT needed.
                total = offset + len(rows)
            elif total_cap is None:
                total = (await session.execute(listing.count(names, capped=False), params)).scalar() or 0
            else:
                # Counted past this page's end, so ``has_more`` holds whatever the cap.
                bound = max(total_cap, offset + limit + 1)
                count = listing.count(names, capped=True)
                total = (await session.execute(count, {**params, "count_cap": bound})).scalar() or 0
                exact = total < bound
        # Plain dicts: pydantic validates them faster than row mappings or attribute access.
        items = [convert(dict(zip(keys, row, strict=True))) for row in rows]
        return Page(items=items, total=total, total_exact=exact, limit=limit, offset=offset)


def _listing(order_by: str) -> _Listing:
    listing = _TASK_LISTINGS.get(order_by)
    if listing is None:
        raise ValueError(f"order_by must be 'due', 'priority' or 'follow_up', got {order_by!r}")
    return listing


def _refuse_nul(params: Mapping[str, Any]) -> None:
    """A filter with a NUL character matches nothing SQLite stores and breaks PostgreSQL: refuse it."""
    for name, value in params.items():
        values = value if isinstance(value, (list, tuple)) else (value,)
        if any(isinstance(v, str) and "\x00" in v for v in values):
            raise InvalidInputError(f"the {name} filter contains a NUL character")
