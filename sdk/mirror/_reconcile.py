"""Audit and rebuild: the mirror checked against, and recomputed from, Temporal's history.

The workflow code is deterministic, so replaying an instance's history with ``Replayer``
produces exactly the event batches the workflow published. :class:`EventCapture` collects
them (a workflow outbound interceptor that watches the publish local activity), and
:func:`rebuild_instance` feeds them to a :class:`MirrorWriter`, whose idempotent upserts
restore missing rows. Attempt counts come from the history's activity events; closings the
workflow could not report (terminate, execution timeout) come from ``describe()``.

:func:`audit` rebuilds every instance into an in-memory SQLite mirror and compares it, row
by row, with the real one: what differs is a mismatch.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, select, update
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from sdk import WorkflowStatus, registry
from sdk.events import event_from_dict
from sdk.protocol import PUBLISH_ACTIVITY
from sdk.runtime import (
    EventBatch,
    instance_id_for,
    sandbox_runner,
    seq_from_activity_id,
    step_execution_id_for,
    take_carried,
)

from ._base import MirrorBase
from ._closing import TIMEOUT_ERROR, close_instances, termination_error
from ._database import create_engine
from ._models import (
    HumanTaskModel,
    StepExecutionModel,
    TaskAssignmentModel,
    TaskCommentModel,
    WorkflowInstanceModel,
)
from ._writer import MirrorWriter

__all__ = ["AuditReport", "EventCapture", "Mismatch", "audit", "rebuild", "rebuild_instance"]

_CLOSED_BY_SERVER = {
    WorkflowExecutionStatus.TERMINATED: WorkflowStatus.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT: WorkflowStatus.TIMED_OUT,
}
_instances = cast(Table, WorkflowInstanceModel.__table__)
_steps = cast(Table, StepExecutionModel.__table__)
_tasks = cast(Table, HumanTaskModel.__table__)


class EventCapture(Interceptor):
    """Collects the event batches a replayed workflow hands to the publish activity.

    Also those its step activities carry in their headers (see ``sdk._runtime``).
    """

    def __init__(self) -> None:
        self.batches: list[EventBatch] = []

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        capture = self

        class _Outbound(WorkflowOutboundInterceptor):
            def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
                if input.activity == PUBLISH_ACTIVITY and input.args:
                    batch = input.args[0]
                    capture.batches.append(
                        batch if isinstance(batch, EventBatch) else EventBatch.model_validate(batch)
                    )
                return self.next.start_local_activity(input)

            def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
                batch = take_carried(input)
                if batch is not None:
                    capture.batches.append(batch)
                return self.next.start_activity(input)

        class _Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(_Outbound(outbound))

        return _Inbound


async def replay_batches(history: WorkflowHistory) -> list[EventBatch]:
    """Replay one history and return the event batches its workflow published, in order."""
    capture = EventCapture()
    replayer = Replayer(
        workflows=list(dict.fromkeys(d.workflow_class for d in registry.workflows.values())),
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
        interceptors=[capture],
    )
    await replayer.replay_workflow(history, raise_on_replay_failure=True)
    return capture.batches


@dataclass
class _Attempts:
    step_name: str
    attempts: int = 0


def _history_attempts(history: WorkflowHistory) -> dict[int, _Attempts]:
    """Attempts of each SDK-scheduled activity, by step sequence number."""
    by_event: dict[int, int] = {}
    found: dict[int, _Attempts] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            seq = seq_from_activity_id(attrs.activity_id)
            if seq is not None:
                by_event[event.event_id] = seq
                found[seq] = _Attempts(attrs.activity_type.name)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            seq_started = by_event.get(started.scheduled_event_id)
            if seq_started is not None:
                found[seq_started].attempts = started.attempt
    return found


async def rebuild_instance(
    client: Client, writer: MirrorWriter, workflow_id: str, run_id: str | None = None
) -> uuid.UUID:
    """Recompute one instance's rows from Temporal and upsert them; returns its instance id."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    history = await handle.fetch_history()
    description = await handle.describe()
    instance_id = instance_id_for(description.run_id)
    async with writer.engine.begin() as conn:
        # Let every replayed event apply again, so instance columns are repaired too.
        await conn.execute(update(_instances).where(_instances.c.id == instance_id).values(last_event_seq=0))
    for replayed in await replay_batches(history):
        # The replayer runs in a namespace and task queue of its own; the real ones are here.
        batch = replayed.model_copy(
            update={"namespace": client.namespace, "task_queue": description.task_queue}
        )
        events = [event_from_dict(item) for item in batch.events]
        await writer.write_batch(batch, events)
    async with writer.engine.begin() as conn:
        for seq, attempts in _history_attempts(history).items():
            await conn.execute(
                update(_steps)
                .where(_steps.c.id == step_execution_id_for(instance_id, seq))
                .values(attempts=attempts.attempts, step_seq=seq)
            )
        closed = _CLOSED_BY_SERVER.get(description.status) if description.status else None
        if closed is not None:
            at = description.close_time or datetime.now(UTC)
            await close_instances(conn, [instance_id], closed, at, _server_close_error(closed, history))
    return instance_id


def _server_close_error(status: WorkflowStatus, history: WorkflowHistory) -> str:
    """The instance error for a close the workflow could not report (as the client writes it)."""
    if status is WorkflowStatus.TERMINATED:
        reason = ""
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
                reason = event.workflow_execution_terminated_event_attributes.reason
        return termination_error(reason)
    return TIMEOUT_ERROR


async def _sdk_workflow_ids(client: Client) -> AsyncIterator[tuple[str, str]]:
    """(workflow id, run id) of every execution of a registered workflow type."""
    types = sorted({d.workflow_type for d in registry.workflows.values()})
    if not types:
        return
    quoted = ", ".join(f"'{t}'" for t in types if "'" not in t)
    async for execution in client.list_workflows(f"WorkflowType IN ({quoted})"):
        yield execution.id, execution.run_id


async def rebuild(
    client: Client,
    writer: MirrorWriter,
    workflow_ids: Sequence[str] | None = None,
    progress: Callable[[int, str], None] | None = None,
) -> int:
    """Rebuild the given instances (default: every execution of a registered workflow type).

    Returns how many were rebuilt; ``progress(n, workflow_id)`` is called after each.
    """
    count = 0
    if workflow_ids is not None:
        targets: list[tuple[str, str | None]] = [(w, None) for w in workflow_ids]
    else:
        targets = [pair async for pair in _sdk_workflow_ids(client)]
    for workflow_id, run_id in targets:
        await rebuild_instance(client, writer, workflow_id, run_id)
        count += 1
        if progress is not None:
            progress(count, workflow_id)
    return count


@dataclass(frozen=True)
class Mismatch:
    """One difference between the mirror and what Temporal's history implies."""

    workflow_id: str
    table: str
    row_id: str
    column: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        return (
            f"{self.workflow_id} {self.table} {self.row_id} {self.column}: "
            f"expected {self.expected!r}, mirror has {self.actual!r}"
        )


@dataclass
class AuditReport:
    """What :func:`audit` found."""

    checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.mismatches


_IGNORED = {"created_at", "updated_at", "last_event_seq"}
_TABLES = (
    ("workflow_instances", cast(Table, WorkflowInstanceModel.__table__), "id"),
    ("workflow_step_executions", cast(Table, StepExecutionModel.__table__), "instance_id"),
    ("workflow_human_tasks", cast(Table, HumanTaskModel.__table__), "instance_id"),
    ("workflow_task_assignments", cast(Table, TaskAssignmentModel.__table__), "task_id"),
    ("workflow_task_comments", cast(Table, TaskCommentModel.__table__), "task_id"),
)


_TIME_TOLERANCE_SECONDS = 1.0
"""Workflow time can differ by some milliseconds between a live run and its replay (the first
workflow task's clock), and an attempt's start is stamped by the activity's own clock."""


def _normalize(value: Any) -> Any:
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, datetime) and isinstance(actual, datetime):
        return abs((expected - actual).total_seconds()) <= _TIME_TOLERANCE_SECONDS
    return bool(expected == actual)


async def _rows(writer: MirrorWriter, instance_id: uuid.UUID) -> dict[tuple[str, str], dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    async with writer.engine.connect() as conn:
        task_ids = [
            r[0] for r in await conn.execute(select(_tasks.c.id).where(_tasks.c.instance_id == instance_id))
        ]
        for name, table, key in _TABLES:
            where: ColumnElement[bool]
            if key == "task_id":
                if not task_ids:
                    continue
                where = table.c.task_id.in_(task_ids)
            else:
                where = table.c[key] == instance_id
            for row in (await conn.execute(select(table).where(where))).mappings():
                rows[(name, str(row["id"]))] = {k: _normalize(v) for k, v in row.items() if k not in _IGNORED}
    return rows


async def audit(
    client: Client,
    writer: MirrorWriter,
    workflow_ids: Sequence[str] | None = None,
    progress: Callable[[int, str], None] | None = None,
) -> AuditReport:
    """Compare the mirror with Temporal for the given instances (default: all SDK executions)."""
    report = AuditReport()
    expected_writer = MirrorWriter(create_engine("sqlite+aiosqlite://"))
    async with expected_writer.engine.begin() as conn:
        await conn.run_sync(MirrorBase.metadata.create_all)
    try:
        if workflow_ids is not None:
            targets: list[tuple[str, str | None]] = [(w, None) for w in workflow_ids]
        else:
            targets = [pair async for pair in _sdk_workflow_ids(client)]
        for workflow_id, run_id in targets:
            instance_id = await rebuild_instance(client, expected_writer, workflow_id, run_id)
            expected = await _rows(expected_writer, instance_id)
            actual = await _rows(writer, instance_id)
            for key, want in expected.items():
                have = actual.get(key)
                if have is None:
                    report.mismatches.append(Mismatch(workflow_id, key[0], key[1], "*", "row", None))
                    continue
                for column, value in want.items():
                    if not _same(value, have.get(column)):
                        report.mismatches.append(
                            Mismatch(workflow_id, key[0], key[1], column, value, have.get(column))
                        )
            for key in actual.keys() - expected.keys():
                report.mismatches.append(Mismatch(workflow_id, key[0], key[1], "*", None, "row"))
            report.checked += 1
            if progress is not None:
                progress(report.checked, workflow_id)
    finally:
        await expected_writer.close()
    return report
