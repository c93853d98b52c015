"""The mirror writer: domain events and activity attempts become rows in the four tables.

Two writers feed it, both outside the sandbox:

- the ``dwf.publish_events`` local activity hands it every batch of workflow-side events
  (:meth:`MirrorWriter.write_batch`), in one transaction per batch;
- the activity-side interceptor records each machine-step attempt as it starts and ends
  (:meth:`MirrorWriter.step_attempt_started` / ``step_attempt_finished``), so a step's row
  is visible while it runs.

Every write is idempotent: rows are keyed by the deterministic ids of ``sdk._ids``, inserts
are ``ON CONFLICT`` upserts, and instance-level changes apply only when their event's
sequence number is newer than the row's ``last_event_seq``. Replays, retried batches and
crashed workers therefore converge on the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sdk import events as ev
from sdk._definition import WorkflowDefinition
from sdk._registry import registry
from sdk._types import EventBatch, StepStatus, StepType, TaskStatus, WorkflowStatus
from sdk.mirror._database import create_engine
from sdk.mirror._models import (
    HumanTaskModel,
    StepExecutionModel,
    TaskAssignmentModel,
    TaskCommentModel,
    WorkflowDefinitionModel,
)

from ._statements import KEEP_PAUSED, Statements

__all__ = ["MirrorMetrics", "MirrorWriter", "definition_id_for"]

_DEFINITION_NAMESPACE = uuid.UUID("0b6f6c8e-54a4-5a4e-9d39-4d7f4f1d2a60")
_steps = cast(Table, StepExecutionModel.__table__)
_tasks = cast(Table, HumanTaskModel.__table__)
_definitions = cast(Table, WorkflowDefinitionModel.__table__)
_assignments = cast(Table, TaskAssignmentModel.__table__)
_comments = cast(Table, TaskCommentModel.__table__)


_Work = Callable[[AsyncConnection], Awaitable[None]]
_GROUP_LIMIT = 256
"""Most writes committed in one transaction."""


def definition_id_for(workflow_type: str) -> uuid.UUID:
    """The row id of a definition: deterministic, so instances reference it without a lookup."""
    return uuid.uuid5(_DEFINITION_NAMESPACE, workflow_type)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class MirrorMetrics:
    """Counters the worker exports (``dwf_mirror_*``)."""

    rows_written: int = 0
    failures: int = 0
    batches: int = 0
    lag_seconds: list[float] = field(default_factory=list)
    _max_samples: int = 10_000

    def observe_lag(self, seconds: float) -> None:
        self.lag_seconds.append(seconds)
        if len(self.lag_seconds) > self._max_samples:
            del self.lag_seconds[: -self._max_samples // 2]

    def snapshot(self) -> dict[str, float]:
        """Current values: totals, and lag quantiles over recent samples."""
        lags = sorted(self.lag_seconds)

        def quantile(q: float) -> float:
            return lags[min(len(lags) - 1, int(q * len(lags)))] if lags else 0.0

        return {
            "rows_written_total": float(self.rows_written),
            "write_failures_total": float(self.failures),
            "batches_total": float(self.batches),
            "lag_seconds_p50": quantile(0.5),
            "lag_seconds_p95": quantile(0.95),
            "lag_seconds_count": float(len(lags)),
            "lag_seconds_sum": float(sum(lags)),
        }


class _Plan:
    """The statements that apply one batch of one instance's events, in order.

    Definition rows first, then the instance's changes folded into one statement (the
    insert when the batch starts the instance, else one update), applied when the row is
    older than all of them, which ends in the row that applying them one by one would; when
    the row holds some of them already, one by one, each if newer than the row. Then the
    step, task and audit rows in event order.
    """

    def __init__(self, writer: MirrorWriter) -> None:
        self._sql = writer._sql
        self._metrics = writer.metrics
        self.head: list[tuple[Any, dict[str, Any]]] = []
        self.ops: list[tuple[Any, dict[str, Any]]] = []
        self.assigned: dict[uuid.UUID, str | None] = {}
        self.started_steps: set[uuid.UUID] = set()  # machine steps a StepStarted inserts
        self.on_commit: list[Callable[[], None]] = []
        self._instance_id: uuid.UUID | None = None
        self._start: dict[str, Any] | None = None
        self._changes: dict[str, Any] = {}
        self._steps: list[tuple[int, dict[str, Any]]] = []  # each event's instance changes
        self._seq = 0

    def first(self, stmt: Any, params: dict[str, Any]) -> None:
        self.head.append((stmt, params))

    def add(self, stmt: Any, params: dict[str, Any]) -> None:
        self.ops.append((stmt, params))

    def _for(self, instance_id: uuid.UUID, seq: int) -> None:
        if self._instance_id is not None and self._instance_id != instance_id:
            raise ValueError(
                f"a batch holds the events of one instance, got {self._instance_id} and {instance_id}"
            )
        self._instance_id = instance_id
        self._seq = max(self._seq, seq)

    def start_instance(self, instance_id: uuid.UUID, seq: int, values: dict[str, Any]) -> None:
        self._for(instance_id, seq)
        self._start = values
        self._steps.append((seq, {}))

    def instance(self, instance_id: uuid.UUID, seq: int, **changes: Any) -> None:
        self._for(instance_id, seq)
        self._changes.update(changes)
        self._steps.append((seq, changes))

    def sets_current_step(self, step_name: str) -> bool:
        """Whether the batch leaves the instance's ``current_step`` at ``step_name``."""
        return self._changes.get("current_step", None) == step_name

    def _update(self, seq: int, newest: int, changes: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The guarded update applying ``changes``: if the row is older than ``seq``."""
        params: dict[str, Any] = {f"v_{col}": value for col, value in changes.items()}
        params.update(v_last_event_seq=newest, v_updated_at=_now(), b_id=self._instance_id, b_seq=seq)
        if "status" in changes:
            keep = changes["status"] == KEEP_PAUSED
            params["b_keep_paused"] = 1 if keep else 0
            if keep:
                params["v_status"] = WorkflowStatus.RUNNING
        return self._sql.instance_update((*changes, "last_event_seq", "updated_at")), params

    def _instance_statement(self) -> tuple[Any, dict[str, Any]] | None:
        """All the batch's instance changes in one statement, applied if the row is older
        than every one of them (the common case: a batch comes after the ones before it)."""
        if not self._steps:
            return None
        oldest = min(seq for seq, _ in self._steps)
        if self._start is not None:
            values = dict(self._start)
            values.update(self._changes)
            if values.get("status") == KEEP_PAUSED:
                values["status"] = WorkflowStatus.RUNNING
            values.update(last_event_seq=self._seq, updated_at=_now())
            stmt = self._sql.instance_upsert(tuple(values))
            return stmt, {**values, "b_seq": oldest}
        return self._update(oldest, self._seq, self._changes)

    async def execute(self, conn: AsyncConnection) -> None:
        instance = self._instance_statement()
        for stmt, params in self.head:
            await conn.execute(stmt, params)
        if instance is not None:
            result = await conn.execute(*instance)
            self._metrics.rows_written += max(result.rowcount or 0, 0)
            if not result.rowcount and len(self._steps) > 1:
                # The row already holds some of these events (batches that overlap, from
                # steps run in parallel): apply the changes one by one, each if newer.
                for seq, changes in self._steps:
                    if changes:
                        await conn.execute(*self._update(seq, seq, changes))
        for stmt, params in self.ops:
            result = await conn.execute(stmt, params)
            self._metrics.rows_written += max(result.rowcount or 0, 0)

    def committed(self) -> None:
        for callback in self.on_commit:
            callback()


class MirrorWriter:
    """Writes the mirror tables; implements ``activities.EventSink``.

    Create it with :meth:`from_url`; one writer per worker process. It owns an async engine
    (a small pool) and opens one connection per unit of work.
    """

    def __init__(self, engine: AsyncEngine, *, database_url: str | None = None) -> None:
        self.engine = engine
        self.database_url = database_url or engine.url.render_as_string(hide_password=False)
        self.metrics = MirrorMetrics()
        self._pending: list[tuple[_Work, asyncio.Future[None]]] = []
        self._wakeup: asyncio.Event | None = None
        self._committer: asyncio.Task[None] | None = None
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._sql = Statements(engine.dialect.name)
        # Definitions known to have a row: an instance's first batch skips the insert.
        self._known_definitions: set[uuid.UUID] = set()

    @classmethod
    def from_url(cls, database_url: str, **engine_options: Any) -> MirrorWriter:
        """A writer for ``database_url`` (``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``)."""
        engine_options.setdefault("sqlite_begin_immediate", True)
        return cls(create_engine(database_url, **engine_options), database_url=database_url)

    async def upgrade_schema(self) -> None:
        """Create or upgrade the tables (Alembic migrations to head)."""
        from sdk.mirror._migrate import upgrade

        await upgrade(self.database_url)

    async def close(self) -> None:
        """Wait for queued writes, then release the connections."""
        while self._pending and self._committer is not None and not self._committer.done():
            await asyncio.gather(*(future for _, future in self._pending), return_exceptions=True)
        for _, future in self._pending:
            if not future.done():
                future.set_exception(RuntimeError("the mirror writer was closed before this write ran"))
        self._pending = []
        if self._committer is not None and not self._committer.done():
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._committer
        self._committer = None
        await self.engine.dispose()

    # -- group commit -------------------------------------------------------------------------

    async def _transaction(self, work: _Work) -> None:
        """Run ``work`` in a transaction shared with the other writes queued meanwhile.

        Concurrent writers (hundreds of workflows publishing at once) would otherwise pay a
        transaction each and, on SQLite, queue on the write lock. One committer task takes
        everything queued, runs it in one transaction and wakes every writer after the
        commit; if the group fails, each write is retried alone so one bad write fails only
        its own caller. The caller returns only once its rows are committed.
        """
        loop = asyncio.get_running_loop()
        if self._committer is None or self._committer.done() or self._committer.get_loop() is not loop:
            self._wakeup = asyncio.Event()
            self._committer = loop.create_task(self._commit_loop(self._wakeup))
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((work, future))
        assert self._wakeup is not None
        self._wakeup.set()
        await future

    async def _commit_loop(self, wakeup: asyncio.Event) -> None:
        while True:
            await wakeup.wait()
            wakeup.clear()
            group, self._pending = self._pending[:_GROUP_LIMIT], self._pending[_GROUP_LIMIT:]
            if self._pending:
                wakeup.set()
            if not group:
                continue
            try:
                async with self.engine.begin() as conn:
                    for work, _ in group:
                        await work(conn)
            except Exception:
                self._known_definitions.clear()  # a definition row may have gone
                for work, future in group:
                    try:
                        async with self.engine.begin() as conn:
                            await work(conn)
                    except Exception as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(None)
                continue
            for _, future in group:
                if not future.done():
                    future.set_result(None)

    async def ping(self) -> bool:
        """True when the database answers."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(select(1))
            return True
        except Exception:
            return False

    # -- definitions ----------------------------------------------------------------------

    async def register_definitions(
        self, definitions: Iterable[WorkflowDefinition[..., Any]] | None = None
    ) -> dict[str, uuid.UUID]:
        """Upsert one row per (name, version) and mark each name's active version.

        Returns the row id of each definition by Temporal workflow type.
        """
        defs = list(registry.workflows.values()) if definitions is None else list(definitions)
        ids: dict[str, uuid.UUID] = {}
        async with self.engine.begin() as conn:
            for definition in defs:
                row_id = definition_id_for(definition.workflow_type)
                ids[definition.workflow_type] = row_id
                values = {
                    "id": row_id,
                    "name": definition.name,
                    "version": definition.version,
                    "workflow_type": definition.workflow_type,
                    "description": definition.description,
                    "definition_json": definition.to_json(),
                    "is_active": False,
                    "created_at": _now(),
                    "updated_at": _now(),
                }
                stmt = self._insert(_definitions).values(values)
                await conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["id"],
                        set_={
                            "description": stmt.excluded.description,
                            "definition_json": stmt.excluded.definition_json,
                            "updated_at": stmt.excluded.updated_at,
                        },
                    )
                )
            for name in {d.name for d in defs}:
                known = {d.version for d in registry.versions(name)} | {
                    d.version for d in defs if d.name == name
                }
                try:
                    active = registry.active(name).version
                except LookupError:
                    active = max(known)
                await conn.execute(
                    update(_definitions)
                    .where(_definitions.c.name == name)
                    .values(is_active=_definitions.c.version == active, updated_at=_now())
                )
        return ids

    # -- workflow-side events ---------------------------------------------------------------

    async def write_batch(self, batch: EventBatch, events: Sequence[ev.WorkflowEvent]) -> None:
        """Apply one batch of events in one transaction (the publish activity calls this)."""
        plan = self.plan_batch(batch, events)
        try:
            await self._transaction(plan.execute)
        except Exception:
            self.metrics.failures += 1
            raise
        self._committed(plan, batch, events)

    def _committed(self, plan: _Plan, batch: EventBatch, events: Sequence[ev.WorkflowEvent]) -> None:
        plan.committed()
        committed = _now()
        self.metrics.batches += 1
        for item, event in zip(batch.events, events, strict=True):
            # Non-urgent events ride along with a later flush; their rows were written earlier.
            if item.get("urgent", True):
                self.metrics.observe_lag(max(0.0, (committed - event.timestamp).total_seconds()))

    def plan_batch(self, batch: EventBatch, events: Sequence[ev.WorkflowEvent]) -> _Plan:
        """The statements that apply ``events``: instance changes folded into one, then rows."""
        plan = _Plan(self)
        seqs = [int(item.get("seq", 0)) for item in batch.events]
        # A human step's row takes its assignee from the task created with it.
        for event in events:
            if isinstance(event, ev.HumanTaskCreated) and event.step_execution_id is not None:
                plan.assigned[event.step_execution_id] = event.assignee_id or event.assignee_group
        for event, seq in zip(events, seqs, strict=True):
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, plan, batch, event, seq)
        return plan

    def _ensure_definition(self, plan: _Plan, batch: EventBatch) -> uuid.UUID:
        row_id = definition_id_for(batch.workflow_type)
        if row_id in self._known_definitions:
            return row_id
        definition = registry.by_type(batch.workflow_type)
        values = {
            "id": row_id,
            "name": batch.workflow_name,
            "version": batch.workflow_version,
            "workflow_type": batch.workflow_type,
            "description": definition.description if definition else None,
            "definition_json": definition.to_json() if definition else {},
            "is_active": True,
            "created_at": _now(),
            "updated_at": _now(),
        }
        plan.first(self._sql.definition_insert(), values)
        plan.on_commit.append(lambda: self._known_definitions.add(row_id))
        return row_id

    def _on_workflow_started(
        self, plan: _Plan, batch: EventBatch, event: ev.WorkflowStarted, seq: int
    ) -> None:
        definition_id = self._ensure_definition(plan, batch)
        plan.start_instance(
            event.instance_id,
            seq,
            {
                "id": event.instance_id,
                "definition_id": definition_id,
                "workflow_name": event.workflow_name,
                "workflow_version": event.workflow_version,
                "status": WorkflowStatus.RUNNING,
                "current_step": None,
                "context_data": {},
                "metadata": {
                    "input": event.initial_data,
                    "workflow_type": batch.workflow_type,
                    "namespace": batch.namespace,
                },
                "started_at": event.timestamp,
                "tenant_id": event.tenant_id,
                "created_by": event.user_id,
                "workflow_id": batch.workflow_id,
                "run_id": batch.run_id,
                "task_queue": batch.task_queue,
                "error": None,
                "completed_at": None,
                "created_at": _now(),
            },
        )

    def _on_workflow_completed(
        self, plan: _Plan, batch: EventBatch, event: ev.WorkflowCompleted, seq: int
    ) -> None:
        plan.instance(
            event.instance_id,
            seq,
            status=WorkflowStatus.COMPLETED,
            current_step=None,
            completed_at=event.timestamp,
            context_data={"result": event.result, "final_step": event.final_step},
        )

    def _on_workflow_failed(self, plan: _Plan, batch: EventBatch, event: ev.WorkflowFailed, seq: int) -> None:
        plan.instance(
            event.instance_id,
            seq,
            status=WorkflowStatus.FAILED,
            error=f"{event.error_type}: {event.error}" if event.error_type else event.error,
            completed_at=event.timestamp,
        )
        self._close_open_work(plan, event.instance_id, event.timestamp)

    def _on_workflow_canceled(
        self, plan: _Plan, batch: EventBatch, event: ev.WorkflowCanceled, seq: int
    ) -> None:
        plan.instance(
            event.instance_id,
            seq,
            status=WorkflowStatus.CANCELED,
            error=f"canceled: {event.reason}" + (f" (by {event.canceled_by})" if event.canceled_by else ""),
            completed_at=event.timestamp,
        )
        self._close_open_work(plan, event.instance_id, event.timestamp)

    def _close_open_work(self, plan: _Plan, instance_id: uuid.UUID, at: datetime) -> None:
        """Pending tasks become canceled and unfinished steps canceled when an instance ends."""
        plan.add(
            self._sql.close_tasks(),
            {
                "b_instance_id": instance_id,
                "v_status": TaskStatus.CANCELED.value,
                "v_completed_at": at,
                "v_updated_at": _now(),
            },
        )
        plan.add(
            self._sql.close_steps(),
            {
                "b_instance_id": instance_id,
                "v_status": StepStatus.CANCELED,
                "v_completed_at": at,
                "v_updated_at": _now(),
            },
        )

    def _on_paused(self, plan: _Plan, batch: EventBatch, event: ev.WorkflowPaused, seq: int) -> None:
        plan.instance(event.instance_id, seq, status=WorkflowStatus.PAUSED)

    def _on_resumed(self, plan: _Plan, batch: EventBatch, event: ev.WorkflowResumed, seq: int) -> None:
        plan.instance(event.instance_id, seq, status=WorkflowStatus.RUNNING)

    def _upsert_step(
        self,
        plan: _Plan,
        values: dict[str, Any],
        update_cols: Sequence[str],
        *,
        keep_earliest_start: bool = False,
    ) -> None:
        """Insert a step row, or overwrite ``update_cols`` of an existing one.

        Workflow-side events are the authority on a step (the activity side only sees
        attempts, and a timed-out attempt may still finish later), so they overwrite
        unconditionally; the activity side never overwrites a final status.
        """
        values.setdefault("created_at", _now())
        values["updated_at"] = _now()
        plan.add(self._sql.step_upsert(update_cols, keep_earliest_start=keep_earliest_start), values)

    def _on_step_started(self, plan: _Plan, batch: EventBatch, event: ev.StepStarted, seq: int) -> None:
        human = event.step_type == StepType.HUMAN.value
        if not human and event.step_execution_id is not None:
            plan.started_steps.add(event.step_execution_id)
        values: dict[str, Any] = {
            "id": event.step_execution_id,
            "instance_id": event.instance_id,
            "step_name": event.step_name,
            "step_type": StepType(event.step_type),
            "status": StepStatus.WAITING if human else StepStatus.RUNNING,
            "input_data": event.input_data,
            "started_at": event.timestamp,
            "workflow_id": batch.workflow_id,
            "attempts": 0 if human else 1,
            "step_seq": event.step_seq or None,
        }
        update_cols: tuple[str, ...] = ("started_at", "step_seq")
        if event.step_execution_id in plan.assigned:
            values["assigned_to"] = plan.assigned.pop(event.step_execution_id)
            update_cols += ("assigned_to",)
        # A machine step's row may already hold the activity's real start (keep the earlier);
        # a human step's start is the workflow's, from the task that committed.
        self._upsert_step(plan, values, update_cols, keep_earliest_start=not human)
        plan.instance(
            event.instance_id,
            seq,
            current_step=event.step_name,
            status=WorkflowStatus.WAITING if human else WorkflowStatus.RUNNING,
        )

    def _finish_step(
        self,
        plan: _Plan,
        batch: EventBatch,
        event: ev.WorkflowEvent,
        step_id: uuid.UUID | None,
        step_name: str,
        **final: Any,
    ) -> None:
        """Record a step's outcome from the workflow's own event (inserting the row if missing).

        ``final`` holds the outcome columns (status, and output/error/completed_by); they and
        ``completed_at`` overwrite an existing row, the rest only fill a missing one.
        """
        self._upsert_step(
            plan,
            {
                "id": step_id,
                "instance_id": event.instance_id,
                "step_name": step_name,
                "step_type": StepType.MACHINE,
                "started_at": event.timestamp,
                "completed_at": event.timestamp,
                "workflow_id": batch.workflow_id,
                **final,
            },
            update_cols=(*(k for k in final if k != "attempts"), "completed_at"),
        )

    def _on_step_completed(self, plan: _Plan, batch: EventBatch, event: ev.StepCompleted, seq: int) -> None:
        self._finish_step(
            plan,
            batch,
            event,
            event.step_execution_id,
            event.step_name,
            status=StepStatus.SUCCEEDED,
            output_data=event.output_data,
            completed_by=event.completed_by,
            attempts=1,
        )

    def _on_step_failed(self, plan: _Plan, batch: EventBatch, event: ev.StepFailed, seq: int) -> None:
        self._finish_step(
            plan,
            batch,
            event,
            event.step_execution_id,
            event.step_name,
            status=StepStatus.FAILED,
            error=f"{event.error_type}: {event.error}" if event.error_type else event.error,
            attempts=max(event.retry_count, 1),
        )

    def _on_step_skipped(self, plan: _Plan, batch: EventBatch, event: ev.StepSkipped, seq: int) -> None:
        self._finish_step(
            plan,
            batch,
            event,
            event.step_execution_id or uuid.uuid5(event.instance_id, f"skip/{seq}"),
            event.step_name,
            status=StepStatus.SKIPPED,
            error=event.reason,
        )

    def _on_task_created(self, plan: _Plan, batch: EventBatch, event: ev.HumanTaskCreated, seq: int) -> None:
        # A workflow task can publish and then be lost (its worker killed): the task is
        # created again by the retried workflow task, with that task's clock. Its times are
        # the ones in the history, so they replace the lost run's while the task is pending.
        plan.add(
            self._sql.task_insert(),
            {
                "id": event.task_id,
                "instance_id": event.instance_id,
                "step_execution_id": event.step_execution_id,
                "step_name": event.step_name,
                "title": (event.title or event.step_name)[:500],
                "description": event.description,
                "form_schema": event.form_schema,
                "assignee_id": event.assignee_id,
                "assignee_group": event.assignee_group,
                "due_at": event.due_at,
                "reminder_at": event.reminder_at,
                "status": TaskStatus.PENDING.value,
                "require_claim": event.require_claim,
                "tenant_id": batch.tenant_id,
                "workflow_id": batch.workflow_id,
                "created_at": event.timestamp,
                "updated_at": _now(),
            },
        )
        if event.step_execution_id in plan.assigned:  # its StepStarted is in another batch
            plan.add(
                self._sql.update_by_id(_steps, ("assigned_to",)),
                {
                    "b_id": event.step_execution_id,
                    "v_assigned_to": plan.assigned.pop(event.step_execution_id),
                },
            )

    def _on_task_completed(
        self, plan: _Plan, batch: EventBatch, event: ev.HumanTaskCompleted, seq: int
    ) -> None:
        expired = event.status == TaskStatus.EXPIRED.value
        plan.add(
            self._sql.task_complete(),
            {
                "b_id": event.task_id,
                "v_status": event.status,
                "v_completed_at": event.timestamp,
                "v_completed_by": None if expired else event.completed_by,
                "v_form_data": event.form_data,
                "v_comment": event.comment,
                "v_updated_at": _now(),
            },
        )
        # A task answered while the instance is paused leaves it paused.
        plan.instance(event.instance_id, seq, status=KEEP_PAUSED)

    def _on_task_reassigned(
        self, plan: _Plan, batch: EventBatch, event: ev.HumanTaskReassigned, seq: int
    ) -> None:
        changes: dict[str, Any] = {"claimed_by": None, "claimed_at": None, "updated_at": _now()}
        if event.to_assignee_id is not None:
            changes["assignee_id"] = event.to_assignee_id
        if event.to_assignee_group is not None:
            changes["assignee_group"] = event.to_assignee_group
        self._update_task(plan, event.task_id, changes)
        self._audit_assignment(
            plan,
            event,
            seq,
            event.task_id,
            action="escalate" if event.reassigned_by == "system" else "reassign",
            from_assignee=event.from_assignee,
            to_assignee=event.to_assignee,
            by_user=event.reassigned_by,
            reason=event.reason,
        )

    def _update_task(self, plan: _Plan, task_id: uuid.UUID, changes: dict[str, Any]) -> None:
        params: dict[str, Any] = {"b_id": task_id}
        params.update({f"v_{col}": value for col, value in changes.items()})
        plan.add(self._sql.update_by_id(_tasks, tuple(changes)), params)

    def _audit_assignment(
        self, plan: _Plan, event: ev.WorkflowEvent, seq: int, task_id: uuid.UUID, **values: Any
    ) -> None:
        row = {
            "id": uuid.uuid5(event.instance_id, f"assignment/{seq}"),
            "task_id": task_id,
            "at": event.timestamp,
            "from_assignee": None,
            "to_assignee": None,
            "reason": None,
            "created_at": _now(),
            "updated_at": _now(),
            **values,
        }
        plan.add(self._sql.insert_ignore(_assignments), row)

    def _on_task_claimed(self, plan: _Plan, batch: EventBatch, event: ev.HumanTaskClaimed, seq: int) -> None:
        self._update_task(
            plan,
            event.task_id,
            {"claimed_by": event.claimed_by, "claimed_at": event.timestamp, "updated_at": _now()},
        )
        self._audit_assignment(
            plan,
            event,
            seq,
            event.task_id,
            action="claim",
            to_assignee=event.claimed_by,
            by_user=event.claimed_by,
        )

    def _on_task_released(
        self, plan: _Plan, batch: EventBatch, event: ev.HumanTaskReleased, seq: int
    ) -> None:
        self._update_task(plan, event.task_id, {"claimed_by": None, "claimed_at": None, "updated_at": _now()})
        self._audit_assignment(
            plan,
            event,
            seq,
            event.task_id,
            action="release",
            from_assignee=event.previous_claimant,
            by_user=event.released_by,
        )

    def _on_task_commented(
        self, plan: _Plan, batch: EventBatch, event: ev.HumanTaskCommented, seq: int
    ) -> None:
        plan.add(
            self._sql.insert_ignore(_comments),
            {
                "id": event.comment_id,
                "task_id": event.task_id,
                "instance_id": event.instance_id,
                "author": event.author,
                "body": event.body,
                "posted_at": event.timestamp,
                "created_at": _now(),
                "updated_at": _now(),
            },
        )

    # -- activity-side attempts -------------------------------------------------------------

    async def step_attempt_started(
        self,
        *,
        step_execution_id: uuid.UUID,
        instance_id: uuid.UUID,
        workflow_id: str,
        step_name: str,
        step_seq: int,
        attempt: int,
        input_data: dict[str, Any] | None,
        started_at: datetime,
        carried: tuple[EventBatch, Sequence[ev.WorkflowEvent]] | None = None,
    ) -> None:
        """Record that an attempt of a machine step began (before the author's code runs).

        ``carried`` is the batch of events the step's activity carried in its header: it is
        applied first, in the same transaction.
        """
        values = {
            "id": step_execution_id,
            "instance_id": instance_id,
            "step_name": step_name,
            "step_type": StepType.MACHINE,
            "status": StepStatus.RUNNING,
            "input_data": input_data,
            "started_at": started_at,
            "workflow_id": workflow_id,
            "step_seq": step_seq,
            "attempts": attempt,
            "created_at": _now(),
            "updated_at": _now(),
        }

        plan = self.plan_batch(*carried) if carried is not None else None
        set_current_step = plan is None or not plan.sets_current_step(step_name)
        # The first attempt's row is the one the step's own StepStarted inserts, when carried.
        write_attempt = plan is None or attempt > 1 or step_execution_id not in plan.started_steps

        async def work(conn: AsyncConnection) -> None:
            if plan is not None:
                await plan.execute(conn)
            if write_attempt:
                result = await conn.execute(self._sql.attempt_started(), values)
                self.metrics.rows_written += result.rowcount or 0
            if set_current_step:
                await conn.execute(
                    self._sql.instance_current_step(),
                    {"b_id": instance_id, "v_current_step": step_name, "v_updated_at": _now()},
                )

        try:
            await self._transaction(work)
        except Exception:
            self.metrics.failures += 1
            raise
        if plan is not None and carried is not None:
            self._committed(plan, *carried)
        self.metrics.observe_lag(max(0.0, (_now() - started_at).total_seconds()))

    async def step_recorded(self, step_execution_id: uuid.UUID) -> bool:
        """Whether the step's row exists (a retried attempt asks: were its carried events written?)."""
        async with self.engine.connect() as conn:
            found = await conn.execute(select(_steps.c.id).where(_steps.c.id == step_execution_id))
            return found.first() is not None

    async def step_attempt_finished(
        self,
        *,
        step_execution_id: uuid.UUID,
        attempt: int,
        output_data: dict[str, Any] | None = None,
        error: str | None = None,
        final: bool = False,
    ) -> None:
        """Record the end of an attempt: success, or an error (final when not retried)."""
        t0 = time.monotonic()
        finished = _now()
        if error is None:
            values: dict[str, Any] = {
                "status": StepStatus.SUCCEEDED,
                "output_data": output_data,
                "completed_at": finished,
                "error": None,
            }
        else:
            values = {"error": error}
            if final:
                values.update(status=StepStatus.FAILED, completed_at=finished)
        values.update(attempts=attempt, updated_at=finished)

        stmt = self._sql.attempt_finished(tuple(values))
        params = {f"v_{col}": value for col, value in values.items()}
        params["b_id"] = step_execution_id

        async def work(conn: AsyncConnection) -> None:
            result = await conn.execute(stmt, params)
            self.metrics.rows_written += result.rowcount or 0

        try:
            await self._transaction(work)
        except Exception:
            self.metrics.failures += 1
            raise
        self.metrics.observe_lag(time.monotonic() - t0)


_HANDLERS: dict[type[ev.WorkflowEvent], Any] = {
    ev.WorkflowStarted: MirrorWriter._on_workflow_started,
    ev.WorkflowCompleted: MirrorWriter._on_workflow_completed,
    ev.WorkflowFailed: MirrorWriter._on_workflow_failed,
    ev.WorkflowCanceled: MirrorWriter._on_workflow_canceled,
    ev.WorkflowPaused: MirrorWriter._on_paused,
    ev.WorkflowResumed: MirrorWriter._on_resumed,
    ev.StepStarted: MirrorWriter._on_step_started,
    ev.StepCompleted: MirrorWriter._on_step_completed,
    ev.StepFailed: MirrorWriter._on_step_failed,
    ev.StepSkipped: MirrorWriter._on_step_skipped,
    ev.HumanTaskCreated: MirrorWriter._on_task_created,
    ev.HumanTaskCompleted: MirrorWriter._on_task_completed,
    ev.HumanTaskReassigned: MirrorWriter._on_task_reassigned,
    ev.HumanTaskClaimed: MirrorWriter._on_task_claimed,
    ev.HumanTaskReleased: MirrorWriter._on_task_released,
    ev.HumanTaskCommented: MirrorWriter._on_task_commented,
}
