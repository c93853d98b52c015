"""The projection of the approval policies' events: votes, exclusions, delegations, priorities.

A base of :class:`sdk.mirror._projection.Projection`. A new task's rows per user (a listed
voter's ``pending`` ballot, a separation-of-duties ``excluded`` row, a ``delegate`` entry in
the assignment trail for a substitute), a vote's row (keyed by task and voter, so a replayed
vote upserts the same row), and a priority change with its audit entry.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table

from sdk import events as ev
from sdk.runtime import EventBatch, vote_id_for

from ._models import TaskAssignmentModel, TaskVoteModel, VoteState
from ._plan import BatchPlan
from ._statements import Statements

__all__ = ["ApprovalProjection"]

_assignments = cast(Table, TaskAssignmentModel.__table__)
_votes = cast(Table, TaskVoteModel.__table__)
_VOTE_COLUMNS = ("state", "approved", "form_data", "comment", "voted_at", "on_behalf_of", "updated_at")


def _now() -> datetime:
    return datetime.now(UTC)


class ApprovalProjection:
    """The approval policies' statements (a base of the projection)."""

    _sql: Statements

    if TYPE_CHECKING:  # the projection's own helpers, which these handlers share

        def _update_task(self, plan: BatchPlan, task_id: uuid.UUID, changes: dict[str, Any]) -> None: ...

        def _audit_assignment(
            self, plan: BatchPlan, event: ev.WorkflowEvent, seq: int, task_id: uuid.UUID, **values: Any
        ) -> None: ...

    def _task_parties(self, plan: BatchPlan, event: ev.HumanTaskCreated, seq: int) -> None:
        """A new task's rows per user: listed voters' ballots, exclusions, delegations."""
        for voter in event.voters or ():
            self._vote_row(plan, event, voter, VoteState.PENDING, insert_only=True)
        for user, why in (event.excluded_users or {}).items():
            self._vote_row(plan, event, user, VoteState.EXCLUDED, insert_only=True, reason=why)
        handed = dict(event.voters_on_behalf or {})
        if event.on_behalf_of and event.assignee_id:
            handed[event.assignee_id] = event.on_behalf_of
        for n, (substitute, absent) in enumerate(sorted(handed.items())):
            row = {
                "id": uuid.uuid5(event.task_id, f"delegation/{n}/{absent}"),
                "task_id": event.task_id,
                "action": "delegate",
                "from_assignee": absent,
                "to_assignee": substitute,
                "by_user": "system",
                "reason": f"delegation: {substitute} stands in for {absent}",
                "on_behalf_of": absent,
                "at": event.timestamp,
                "created_at": _now(),
                "updated_at": _now(),
            }
            plan.add(self._sql.insert_ignore(_assignments), row)

    def _vote_row(
        self,
        plan: BatchPlan,
        event: ev.HumanTaskCreated | ev.HumanTaskVoted,
        user: str,
        state: VoteState,
        *,
        insert_only: bool = False,
        **values: Any,
    ) -> None:
        row = {
            "id": vote_id_for(event.task_id, user),
            "task_id": event.task_id,
            "instance_id": event.instance_id,
            "voter": user,
            "state": state.value,
            "approved": None,
            "form_data": None,
            "comment": None,
            "voted_at": None,
            "on_behalf_of": None,
            "reason": None,
            "created_at": _now(),
            "updated_at": _now(),
            **values,
        }
        statement = (
            self._sql.insert_ignore(_votes) if insert_only else self._sql.upsert(_votes, _VOTE_COLUMNS)
        )
        plan.add(statement, row)

    def _on_task_voted(self, plan: BatchPlan, batch: EventBatch, event: ev.HumanTaskVoted, seq: int) -> None:
        self._vote_row(
            plan,
            event,
            event.voter,
            VoteState.APPROVED if event.approved else VoteState.REJECTED,
            approved=event.approved,
            form_data=event.form_data,
            comment=event.comment,
            voted_at=event.timestamp,
            on_behalf_of=event.on_behalf_of,
        )

    def _on_task_prioritized(
        self, plan: BatchPlan, batch: EventBatch, event: ev.HumanTaskPrioritized, seq: int
    ) -> None:
        self._update_task(
            plan,
            event.task_id,
            {"priority": event.priority, "follow_up_at": event.follow_up_at, "updated_at": _now()},
        )
        change = f"priority {event.previous_priority} -> {event.priority}"
        if event.follow_up_at != event.previous_follow_up_at:
            shown = event.follow_up_at.isoformat() if event.follow_up_at else None
            change += f"; follow-up {shown}"
        self._audit_assignment(
            plan,
            event,
            seq,
            event.task_id,
            action="priority",
            by_user=event.changed_by,
            reason=f"{change}: {event.reason}" if event.reason else change,
        )
