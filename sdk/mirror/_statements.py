"""The mirror writer's statements, built once per shape and executed with parameters.

Building an ``INSERT ... ON CONFLICT`` or an ``UPDATE`` with literal values costs SQLAlchemy
a new statement object and a fresh cache key on every call: in the benchmark that was a
large share of the writer's CPU. Here each statement shape (table, columns, conflict rule)
is built once per writer and memoized; a write binds its values as parameters. Insert
parameters are keyed by column name; update statements bind their new values as
``v_<column>`` and their conditions as ``b_<name>``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Table, and_, bindparam, case, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import Insert, Update

from sdk import StepStatus, TaskStatus, WorkflowStatus

from ._models import (
    HumanTaskModel,
    StepExecutionModel,
    WorkflowDefinitionModel,
    WorkflowInstanceModel,
)

__all__ = ["FINAL_STEP", "OPEN_INSTANCE", "Statements", "instances", "steps", "tasks"]

instances = cast(Table, WorkflowInstanceModel.__table__)
steps = cast(Table, StepExecutionModel.__table__)
tasks = cast(Table, HumanTaskModel.__table__)
definitions = cast(Table, WorkflowDefinitionModel.__table__)

OPEN_INSTANCE = (
    WorkflowStatus.RUNNING,
    WorkflowStatus.WAITING,
    WorkflowStatus.PAUSED,
    WorkflowStatus.PENDING,
)
FINAL_STEP = (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELED)

KEEP_PAUSED = "__keep_paused__"
"""An instance ``status`` change meaning "RUNNING, unless the instance is paused"."""

_S = TypeVar("_S")


def _values(table: Table, columns: Sequence[str]) -> dict[str, Any]:
    return {col: bindparam(f"v_{col}", type_=table.c[col].type) for col in columns}


def _id_is(table: Table) -> ColumnElement[bool]:
    return table.c.id == bindparam("b_id", type_=table.c.id.type)


def _older_than() -> ColumnElement[bool]:
    """The instance row holds only events older than (``:b_pos``, ``:b_clock``, ``:b_seq``).

    Row versions are ordered by the history position and clock of the workflow task that
    wrote them, then by event sequence number: a retried workflow task repeats the lost
    one's sequence numbers at a greater position, or at the same one later.
    """
    pos = bindparam("b_pos", type_=instances.c.history_position.type)
    clock = bindparam("b_clock", type_=instances.c.history_clock.type)
    seq = bindparam("b_seq", type_=instances.c.last_event_seq.type)
    same_position = instances.c.history_position == pos
    return or_(
        instances.c.history_position < pos,
        and_(same_position, instances.c.history_clock < clock),
        and_(same_position, instances.c.history_clock == clock, instances.c.last_event_seq < seq),
    )


class Statements:
    """Memoized statements for one dialect (``postgresql`` or ``sqlite``)."""

    def __init__(self, dialect: str) -> None:
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._cache: dict[Hashable, Any] = {}

    def _memo(self, key: Hashable, build: Callable[[], _S]) -> _S:
        stmt = self._cache.get(key)
        if stmt is None:
            stmt = self._cache[key] = build()
        return cast(_S, stmt)

    def insert_ignore(self, table: Table) -> Insert:
        """``INSERT`` that does nothing when the id exists (parameters: the row)."""
        return self._memo(("ignore", table.name), lambda: self._insert(table).on_conflict_do_nothing())

    def upsert(self, table: Table, update_cols: Sequence[str]) -> Insert:
        """``INSERT``, or overwrite ``update_cols`` when the id exists (parameters: the row)."""
        cols = tuple(update_cols)

        def build() -> Insert:
            stmt = self._insert(table)
            return stmt.on_conflict_do_update(
                index_elements=["id"], set_={col: stmt.excluded[col] for col in cols}
            )

        return self._memo(("upsert", table.name, cols), build)

    def update_by_id(self, table: Table, columns: Sequence[str]) -> Update:
        """``UPDATE table SET columns WHERE id = :b_id``."""
        cols = tuple(columns)
        return self._memo(
            ("by_id", table.name, cols),
            lambda: table.update().where(_id_is(table)).values(_values(table, cols)),
        )

    # -- instances ---------------------------------------------------------------------

    def instance_upsert(self, columns: Sequence[str]) -> Insert:
        """Insert an instance row, or overwrite it when the row is older than the oldest event
        the values fold in (see :func:`_older_than`)."""
        cols = tuple(columns)

        def build() -> Insert:
            stmt = self._insert(instances)
            return stmt.on_conflict_do_update(
                index_elements=["id"],
                set_={k: stmt.excluded[k] for k in cols if k not in ("id", "created_at")},
                where=_older_than(),
            )

        return self._memo(("instance_upsert", cols), build)

    def instance_update(self, columns: Sequence[str]) -> Update:
        """Update an instance row if it is older than the event (see :func:`_older_than`).

        A ``status`` of :data:`KEEP_PAUSED` is bound as ``v_status`` and applied only when the
        instance is not paused.
        """
        cols = tuple(columns)

        def build() -> Update:
            values = _values(instances, cols)
            if "status" in values:
                values["status"] = case(
                    (
                        and_(
                            bindparam("b_keep_paused", type_=instances.c.last_event_seq.type) == 1,
                            instances.c.status == WorkflowStatus.PAUSED,
                        ),
                        instances.c.status,
                    ),
                    else_=bindparam("v_status", type_=instances.c.status.type),
                )
            return instances.update().where(and_(_id_is(instances), _older_than())).values(values)

        return self._memo(("instance_update", cols), build)

    def instance_current_step(self) -> Update:
        """Set ``current_step`` of an open instance (a machine step's attempt began)."""
        return self._memo(
            "instance_current_step",
            lambda: (
                instances.update()
                .where(and_(_id_is(instances), instances.c.status.in_(OPEN_INSTANCE)))
                .values(_values(instances, ("current_step", "updated_at")))
            ),
        )

    # -- steps -------------------------------------------------------------------------

    def step_upsert(self, update_cols: Sequence[str], *, keep_earliest_start: bool) -> Insert:
        """Insert a step row, or overwrite ``update_cols`` (and ``updated_at``) of the existing one.

        With ``keep_earliest_start`` an existing row keeps the earlier ``started_at``.
        """
        cols = tuple(update_cols)

        def build() -> Insert:
            stmt = self._insert(steps)
            set_: dict[str, Any] = {col: stmt.excluded[col] for col in (*cols, "updated_at")}
            if keep_earliest_start:
                set_["started_at"] = case(
                    (steps.c.started_at > stmt.excluded.started_at, stmt.excluded.started_at),
                    else_=steps.c.started_at,
                )
            return stmt.on_conflict_do_update(index_elements=["id"], set_=set_)

        return self._memo(("step_upsert", cols, keep_earliest_start), build)

    def attempt_started(self) -> Insert:
        """Insert a machine step's row as an attempt starts.

        An existing row takes it unless it holds a later attempt, or this attempt already
        ended. A later attempt overrides an earlier one's final row: that attempt's result
        never reached Temporal (its worker died first), since Temporal started another.
        """

        def build() -> Insert:
            stmt = self._insert(steps)
            later = steps.c.attempts < stmt.excluded.attempts
            return stmt.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    "status": stmt.excluded.status,
                    "attempts": stmt.excluded.attempts,
                    "step_seq": stmt.excluded.step_seq,
                    "completed_at": case((later, None), else_=steps.c.completed_at),
                    "output_data": case((later, None), else_=steps.c.output_data),
                    "updated_at": stmt.excluded.updated_at,
                },
                where=or_(
                    and_(steps.c.status.not_in(FINAL_STEP), steps.c.attempts <= stmt.excluded.attempts),
                    later,
                ),
            )

        return self._memo("attempt_started", build)

    def attempt_finished(self, columns: Sequence[str]) -> Update:
        """Update a step row as attempt ``:b_attempt`` ends: unless the row holds a later
        attempt, or already this attempt's end."""
        cols = tuple(columns)
        attempt = bindparam("b_attempt", type_=steps.c.attempts.type)
        return self._memo(
            ("attempt_finished", cols),
            lambda: (
                steps.update()
                .where(
                    and_(
                        _id_is(steps),
                        or_(
                            and_(steps.c.status.not_in(FINAL_STEP), steps.c.attempts <= attempt),
                            steps.c.attempts < attempt,
                        ),
                    )
                )
                .values(_values(steps, cols))
            ),
        )

    def close_steps(self) -> Update:
        """Cancel the unfinished steps of an instance (``:b_instance_id``)."""
        return self._memo(
            "close_steps",
            lambda: (
                steps.update()
                .where(
                    and_(
                        steps.c.instance_id == bindparam("b_instance_id", type_=steps.c.instance_id.type),
                        steps.c.status.not_in(FINAL_STEP),
                    )
                )
                .values(_values(steps, ("status", "completed_at", "updated_at")))
            ),
        )

    # -- tasks -------------------------------------------------------------------------

    def task_insert(self) -> Insert:
        """Insert a task row; a pending one takes the retried workflow task's times."""

        def build() -> Insert:
            stmt = self._insert(tasks)
            return stmt.on_conflict_do_update(
                index_elements=["id"],
                set_={col: stmt.excluded[col] for col in ("created_at", "due_at", "reminder_at")},
                where=tasks.c.status == TaskStatus.PENDING.value,
            )

        return self._memo("task_insert", build)

    def task_complete(self) -> Update:
        """Close a task (completed, expired): a pending one, or one closed at an earlier
        (history position, clock) (``:b_pos``, ``:b_clock``) than this closing, which
        supersedes it: that closing came from a workflow task Temporal never recorded."""
        pos = bindparam("b_pos", type_=tasks.c.history_position.type)
        clock = bindparam("b_clock", type_=tasks.c.history_clock.type)
        earlier = or_(
            tasks.c.history_position < pos,
            and_(tasks.c.history_position == pos, tasks.c.history_clock < clock),
        )
        columns = (
            "status",
            "completed_at",
            "completed_by",
            "form_data",
            "comment",
            "history_position",
            "history_clock",
            "updated_at",
        )
        return self._memo(
            "task_complete",
            lambda: (
                tasks.update()
                .where(
                    and_(
                        _id_is(tasks),
                        or_(tasks.c.status == TaskStatus.PENDING.value, earlier),
                    )
                )
                .values(_values(tasks, columns))
            ),
        )

    def close_tasks(self) -> Update:
        """Cancel the pending tasks of an instance (``:b_instance_id``)."""
        return self._memo(
            "close_tasks",
            lambda: (
                tasks.update()
                .where(
                    and_(
                        tasks.c.instance_id == bindparam("b_instance_id", type_=tasks.c.instance_id.type),
                        tasks.c.status == TaskStatus.PENDING.value,
                    )
                )
                .values(_values(tasks, ("status", "completed_at", "updated_at")))
            ),
        )

    def definition_insert(self) -> Insert:
        """Insert a definition row unless it exists."""
        return self.insert_ignore(definitions)
