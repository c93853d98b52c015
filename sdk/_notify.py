"""Task notifications: what a notifier receives, and the workflow that delivers it.

A notification is one task lifecycle event (created, assigned, claimed, reminder, escalated,
completed, expired, canceled) for the notifiers a worker holds. The worker's event publisher
starts one :class:`NotificationDelivery` workflow per notification (its workflow id derives
from the event, so a batch published twice starts it once); that workflow runs one
``dwf.deliver_notification`` activity per notifier, retried by Temporal, and swallows the
failure of a notifier whose retries ran out. The instance the task belongs to never waits for
a notification and never fails because of one.

Workflow-side and sandbox safe: pydantic models and a workflow class, no I/O.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

__all__ = [
    "DELIVER_NOTIFICATION_ACTIVITY",
    "NOTIFY_WORKFLOW",
    "NotificationDelivery",
    "NotificationKind",
    "NotificationRequest",
    "TaskNotification",
]

NOTIFY_WORKFLOW = "dwf.notify"
"""The workflow type that delivers one notification to its notifiers."""
DELIVER_NOTIFICATION_ACTIVITY = "dwf.deliver_notification"
"""The activity that hands one notification to one notifier (retried by Temporal)."""


class NotificationKind(StrEnum):
    """What happened to the task."""

    CREATED = "created"
    ASSIGNED = "assigned"
    """Reassigned by a user (an escalation is ``escalated``)."""
    CLAIMED = "claimed"
    REMINDER = "reminder"
    ESCALATED = "escalated"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELED = "canceled"


class TaskNotification(BaseModel):
    """One task lifecycle event, as every notifier receives it (and a webhook's JSON body).

    Attributes:
        id: Unique per notification (the delivery workflow's id), for de-duplication.
        kind: What happened.
        at: When (workflow time, UTC).
        workflow_id, instance_id, tenant_id: The instance the task belongs to.
        task_id, step_name, title: The task (``title`` when known).
        actor: Who did it (``"system"`` for an escalation or a default completion).
        assignee_id, assignee_group, due_at: What the event says of the task's assignment and
            due time: all three when it is created and when an escalation link moves it; the
            side(s) a user's reassignment set (None: unchanged); None for other events.
        reason: The reason of a reassignment, escalation or cancellation; a completion comment.
        escalation_level: The escalation link (1 for the first), for ``escalated``.
        event: The domain event's fields, JSON-able (empty for a reminder).
    """

    id: str
    kind: NotificationKind
    at: datetime
    workflow_id: str
    instance_id: str
    tenant_id: str | None = None
    task_id: str
    step_name: str
    title: str | None = None
    actor: str | None = None
    assignee_id: str | None = None
    assignee_group: str | None = None
    due_at: datetime | None = None
    reason: str | None = None
    escalation_level: int = 0
    event: dict[str, Any] = Field(default_factory=dict)


class NotificationRequest(BaseModel):
    """The input of :class:`NotificationDelivery`: a notification and who gets it."""

    notification: TaskNotification
    notifiers: list[str]
    max_attempts: int = 10
    initial_interval_seconds: float = 1.0
    maximum_interval_seconds: float = 60.0
    timeout_seconds: float = 30.0


@workflow.defn(name=NOTIFY_WORKFLOW, sandboxed=True)
class NotificationDelivery:
    """Deliver one notification to each named notifier; a notifier's failure is logged, not raised."""

    @workflow.run
    async def run(self, request: NotificationRequest) -> dict[str, str]:
        """Returns each notifier's outcome: ``"delivered"`` or ``"failed: <why>"``."""
        retry = RetryPolicy(
            maximum_attempts=request.max_attempts,
            initial_interval=timedelta(seconds=request.initial_interval_seconds),
            maximum_interval=timedelta(seconds=request.maximum_interval_seconds),
        )

        async def deliver(name: str) -> str:
            try:
                await workflow.execute_activity(
                    DELIVER_NOTIFICATION_ACTIVITY,
                    args=[name, request.notification],
                    start_to_close_timeout=timedelta(seconds=request.timeout_seconds),
                    retry_policy=retry,
                )
            except ActivityError as err:
                cause = err.cause or err
                workflow.logger.warning(
                    "notification %s (%s) to %s failed after its retries: %s",
                    request.notification.id,
                    request.notification.kind.value,
                    name,
                    cause,
                )
                return f"failed: {cause}"
            return "delivered"

        outcomes = await asyncio.gather(*(deliver(name) for name in request.notifiers))
        return dict(zip(request.notifiers, outcomes, strict=True))
