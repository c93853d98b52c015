"""The projection of domain events to rows: each event type's statements, planned per batch.

Rows are keyed by the deterministic ids of ``sdk._ids``; inserts are ``ON CONFLICT``
upserts, and instance-level changes apply only when their event is newer than the row's
``last_event_seq``. Replays, retried batches and crashed workers therefore converge on the
same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table

from sdk import StepStatus, StepType, TaskStatus, WorkflowStatus, registry
from sdk import events as ev
from sdk.runtime import EventBatch

from ._approval_rows import ApprovalProjection
from ._metrics import MirrorMetrics
from ._models import (
    HumanTaskModel,
    StepExecutionModel,
    TaskAssignmentModel,
    TaskCommentModel,
)
from ._plan import BatchPlan
from ._statements import KEEP_PAUSED, Statements

__all__ = ["Projection", "definition_id_for"]

_DEFINITION_NAMESPACE = uuid.UUID("0b6f6c8e-54a4-5a4e-9d39-4d7f4f1d2a60")
_steps = cast(Table, StepExecutionModel.__table__)
_tasks = cast(Table, HumanTaskModel.__table__)
_assignments = cast(Table, TaskAssignmentModel.__table__)
_comments = cast(Table, TaskCommentModel.__table__)


def definition_id_for(workflow_type: str) -> uuid.UUID:
    """The row id of a definition: deterministic, so instances reference it without a lookup."""
    return uuid.uuid5(_DEFINITION_NAMESPACE, workflow_type)


def _now() -> datetime:
    return datetime.now(UTC)


class Projection(ApprovalProjection):
    """Turns batches of events into :class:`BatchPlan` s for one dialect."""

    def __init__(self, sql: Statements, metrics: MirrorMetrics) -> None:
        self._sql = sql
        self._metrics = metrics
        # Definitions known to have a row: an instance's first batch skips the insert.
        self.known_definitions: set[uuid.UUID] = set()

    def plan_batch(self, batch: EventBatch, events: Sequence[ev.WorkflowEvent]) -> BatchPlan:
        """The statements that apply ``events``: instance changes folded into one, then rows."""
        plan = BatchPlan(self._sql, self._metrics)
        seqs = [int(item.get("seq", 0)) for item in batch.events]
        positions = [(int(item.get("pos", 0)), int(item.get("clock", 0))) for item in batch.events]
        # A human step's row takes its assignee from the task created with it.
        for event in events:
            if isinstance(event, ev.HumanTaskCreated) and event.step_execution_id is not None:
                plan.assigned[event.step_execution_id] = event.assignee_id or event.assignee_group
        for event, seq, position in zip(events, seqs, positions, strict=True):
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                plan.position = position
                handler(self, plan, batch, event, seq)
        return plan

    def _ensure_definition(self, plan: BatchPlan, batch: EventBatch) -> uuid.UUID:
        row_id = definition_id_for(batch.workflow_type)
        if row_id in self.known_definitions:
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
        plan.on_commit.append(lambda: self.known_definitions.add(row_id))
        return row_id

    def _on_workflow_started(
        self, plan: BatchPlan, batch: EventBatch, event: ev.WorkflowStarted, seq: int
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
        self, plan: BatchPlan, batch: EventBatch, event: ev.WorkflowCompleted, seq: int
    ) -> None:
        plan.instance(
            event.instance_id,
            seq,
            status=WorkflowStatus.COMPLETED,
            current_step=None,
            completed_at=event.timestamp,
            context_data={"result": event.result, "final_step": event.final_step},
        )

    def _on_workflow_failed(
        self, plan: BatchPlan, batch: EventBatch, event: ev.WorkflowFailed, seq: int
    ) -> None:
        plan.instance(
            event.instance_id,
            seq,
            status=WorkflowStatus.FAILED,
            error=f"{event.error_type}: {event.error}" if event.error_type else event.error,
            completed_at=event.timestamp,
        )
        self._close_open_work(plan, event.instance_id, event.timestamp)

    def _on_workflow_canceled(
        self, plan: BatchPlan, batch: EventBatch, event: ev.WorkflowCanceled, seq: int
    ) -> None:
        plan.instance(
            event.instance_id,
            seq,
            status=WorkflowStatus.CANCELED,
            error=f"canceled: {event.reason}" + (f" (by {event.canceled_by})" if event.canceled_by else ""),
            completed_at=event.timestamp,
        )
        self._close_open_work(plan, event.instance_id, event.timestamp)

    def _close_open_work(self, plan: BatchPlan, instance_id: uuid.UUID, at: datetime) -> None:
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

    def _on_paused(self, plan: BatchPlan, batch: EventBatch, event: ev.WorkflowPaused, seq: int) -> None:
        plan.instance(event.instance_id, seq, status=WorkflowStatus.PAUSED)

    def _on_resumed(self, plan: BatchPlan, batch: EventBatch, event: ev.WorkflowResumed, seq: int) -> None:
        plan.instance(event.instance_id, seq, status=WorkflowStatus.RUNNING)

    def _upsert_step(
        self,
        plan: BatchPlan,
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

    def _on_step_started(self, plan: BatchPlan, batch: EventBatch, event: ev.StepStarted, seq: int) -> None:
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
        plan: BatchPlan,
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

    def _on_step_completed(
        self, plan: BatchPlan, batch: EventBatch, event: ev.StepCompleted, seq: int
    ) -> None:
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

    def _on_step_failed(self, plan: BatchPlan, batch: EventBatch, event: ev.StepFailed, seq: int) -> None:
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

    def _on_step_skipped(self, plan: BatchPlan, batch: EventBatch, event: ev.StepSkipped, seq: int) -> None:
        self._finish_step(
            plan,
            batch,
            event,
            event.step_execution_id or uuid.uuid5(event.instance_id, f"skip/{seq}"),
            event.step_name,
            status=StepStatus.SKIPPED,
            error=event.reason,
        )

    def _on_task_created(
        self, plan: BatchPlan, batch: EventBatch, event: ev.HumanTaskCreated, seq: int
    ) -> None:
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
                "quorum": event.quorum,
                "reject_on": event.reject_on,
                "voters": event.voters,
                "excluded_users": event.excluded_users,
                "priority": event.priority,
                "follow_up_at": event.follow_up_at,
                "on_behalf_of": event.on_behalf_of,
                "voters_on_behalf": event.voters_on_behalf,
                "history_position": plan.position[0],
                "history_clock": plan.position[1],
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
        self._task_parties(plan, event, seq)

    def _on_task_completed(
        self, plan: BatchPlan, batch: EventBatch, event: ev.HumanTaskCompleted, seq: int
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
                "v_history_position": plan.position[0],
                "v_history_clock": plan.position[1],
                "b_pos": plan.position[0],
                "b_clock": plan.position[1],
                "v_updated_at": _now(),
            },
        )
        # A task answered while the instance is paused leaves it paused.
        plan.instance(event.instance_id, seq, status=KEEP_PAUSED)

    def _on_task_reassigned(
        self, plan: BatchPlan, batch: EventBatch, event: ev.HumanTaskReassigned, seq: int
    ) -> None:
        changes: dict[str, Any] = {
            "claimed_by": None,
            "claimed_at": None,
            "on_behalf_of": event.on_behalf_of,
            "updated_at": _now(),
        }
        if event.to_assignee_id is not None or event.replaces_assignment:
            changes["assignee_id"] = event.to_assignee_id
        if event.to_assignee_group is not None or event.replaces_assignment:
            changes["assignee_group"] = event.to_assignee_group
        if event.due_at is not None:  # an escalation link's new due time
            changes["due_at"] = event.due_at
        self._update_task(plan, event.task_id, changes)
        self._audit_assignment(
            plan,
            event,
            seq,
            event.task_id,
            # By the chain at a due time ("system"), or a link applied early by a user's command;
            # a delegation's handover is on someone's behalf.
            action=(
                "escalate"
                if event.reassigned_by == "system" or event.escalation_level
                else "delegate"
                if event.on_behalf_of
                else "reassign"
            ),
            from_assignee=event.from_assignee,
            to_assignee=event.to_assignee,
            by_user=event.reassigned_by,
            reason=event.reason,
            on_behalf_of=event.on_behalf_of,
        )

    def _update_task(self, plan: BatchPlan, task_id: uuid.UUID, changes: dict[str, Any]) -> None:
        params: dict[str, Any] = {"b_id": task_id}
        params.update({f"v_{col}": value for col, value in changes.items()})
        plan.add(self._sql.update_by_id(_tasks, tuple(changes)), params)

    def _audit_assignment(
        self, plan: BatchPlan, event: ev.WorkflowEvent, seq: int, task_id: uuid.UUID, **values: Any
    ) -> None:
        row = {
            "id": uuid.uuid5(event.instance_id, f"assignment/{seq}"),
            "task_id": task_id,
            "at": event.timestamp,
            "from_assignee": None,
            "to_assignee": None,
            "reason": None,
            "on_behalf_of": None,
            "created_at": _now(),
            "updated_at": _now(),
            **values,
        }
        plan.add(self._sql.insert_ignore(_assignments), row)

    def _on_task_claimed(
        self, plan: BatchPlan, batch: EventBatch, event: ev.HumanTaskClaimed, seq: int
    ) -> None:
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
        self, plan: BatchPlan, batch: EventBatch, event: ev.HumanTaskReleased, seq: int
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
        self, plan: BatchPlan, batch: EventBatch, event: ev.HumanTaskCommented, seq: int
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


_HANDLERS: dict[type[ev.WorkflowEvent], Any] = {
    ev.WorkflowStarted: Projection._on_workflow_started,
    ev.WorkflowCompleted: Projection._on_workflow_completed,
    ev.WorkflowFailed: Projection._on_workflow_failed,
    ev.WorkflowCanceled: Projection._on_workflow_canceled,
    ev.WorkflowPaused: Projection._on_paused,
    ev.WorkflowResumed: Projection._on_resumed,
    ev.StepStarted: Projection._on_step_started,
    ev.StepCompleted: Projection._on_step_completed,
    ev.StepFailed: Projection._on_step_failed,
    ev.StepSkipped: Projection._on_step_skipped,
    ev.HumanTaskCreated: Projection._on_task_created,
    ev.HumanTaskCompleted: Projection._on_task_completed,
    ev.HumanTaskReassigned: Projection._on_task_reassigned,
    ev.HumanTaskClaimed: Projection._on_task_claimed,
    ev.HumanTaskReleased: Projection._on_task_released,
    ev.HumanTaskCommented: Projection._on_task_commented,
    ev.HumanTaskVoted: ApprovalProjection._on_task_voted,
    ev.HumanTaskPrioritized: ApprovalProjection._on_task_prioritized,
}
