"""Task notifications: from domain events to a delivery workflow per notification.

:class:`NotificationDispatcher` is called by the event publisher with each batch of events
(published by the ``dwf.publish_events`` local activity or carried by a step activity), and by
the reminder activity. For each task lifecycle event some notifier wants, it starts the
``dwf.notify`` workflow (:class:`sdk.runtime.NotificationDelivery`) under an id derived from
the event, so publishing a batch again starts nothing new. That workflow runs
:meth:`NotificationDispatcher.deliver_notification` once per notifier, retried by Temporal.

The instance the task belongs to never waits for a delivery and never fails because of one:
starting the delivery is one RPC, and a failure to start is logged, never raised (it would
otherwise fail a publish, or a machine step's attempt carrying the events).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from temporalio import activity
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from sdk import HumanStep, NotificationKind, TaskInfo, TaskNotification, registry
from sdk import events as ev
from sdk.runtime import (
    DELIVER_NOTIFICATION_ACTIVITY,
    NOTIFY_WORKFLOW,
    SYSTEM_USER,
    EventBatch,
    NotificationRequest,
)

from ._notifiers import Notifier

__all__ = ["NotificationDispatcher", "notification_for"]

logger = logging.getLogger("dwf.notifications")


def notification_for(batch: EventBatch, event: ev.WorkflowEvent, seq: int) -> TaskNotification | None:
    """The notification a domain event makes (None: not a task lifecycle event)."""
    base: dict[str, Any] = {
        "at": event.timestamp,
        "workflow_id": batch.workflow_id,
        "instance_id": str(event.instance_id),
        "tenant_id": batch.tenant_id,
        "event": ev.event_to_dict(event)["data"],
    }
    if isinstance(event, ev.HumanTaskCreated):
        kind = NotificationKind.CREATED
        fields: dict[str, Any] = {
            "title": event.title,
            "assignee_id": event.assignee_id,
            "assignee_group": event.assignee_group,
            "due_at": event.due_at,
        }
    elif isinstance(event, ev.HumanTaskReassigned):
        escalated = event.reassigned_by == SYSTEM_USER
        kind = NotificationKind.ESCALATED if escalated else NotificationKind.ASSIGNED
        fields = {
            "actor": event.reassigned_by,
            "assignee_id": event.to_assignee_id,
            "assignee_group": event.to_assignee_group,
            "due_at": event.due_at,
            "reason": event.reason,
            "escalation_level": event.escalation_level,
        }
    elif isinstance(event, ev.HumanTaskClaimed):
        kind, fields = NotificationKind.CLAIMED, {"actor": event.claimed_by}
    elif isinstance(event, ev.HumanTaskCompleted):
        expired = event.status == "expired"
        kind = NotificationKind.EXPIRED if expired else NotificationKind.COMPLETED
        fields = {"actor": event.completed_by, "reason": event.comment}
    elif isinstance(event, ev.HumanTaskCanceled):
        kind, fields = NotificationKind.CANCELED, {"actor": event.canceled_by, "reason": event.reason}
    else:
        return None
    return TaskNotification(
        id=f"dwf-notify-{event.instance_id}-{seq}",
        kind=kind,
        task_id=str(event.task_id),
        step_name=event.step_name,
        **base,
        **fields,
    )


class NotificationDispatcher:
    """The worker's notifiers, and how notifications reach them.

    Args:
        notifiers: Each with a unique ``name`` (see :class:`activities.Notifier`).
        queries: The mirror's queries (``sdk.mirror.MirrorQueries``), to fill in what an event
            does not say (a reassignment's title): None leaves those fields empty.
        max_attempts: Delivery attempts per notifier before its failure is logged and dropped.
        initial_interval: Seconds before the first retry (doubling up to a minute).
    """

    def __init__(
        self,
        notifiers: Sequence[Notifier],
        *,
        queries: Any = None,
        max_attempts: int = 10,
        initial_interval: float = 1.0,
    ) -> None:
        self.notifiers = {n.name: n for n in notifiers}
        if len(self.notifiers) != len(notifiers):
            raise ValueError(f"notifier names must be unique, got {[n.name for n in notifiers]}")
        self.queries = queries
        self.max_attempts = max_attempts
        self.initial_interval = initial_interval

    def targets(self, notification: TaskNotification) -> list[str]:
        """The names of the notifiers that want ``notification``."""
        step = registry.steps.get(notification.step_name)
        named = step.options.notify if isinstance(step, HumanStep) else ()
        return [
            name
            for name, notifier in self.notifiers.items()
            if (notifier.every_step or name in named)
            and (notifier.kinds is None or notification.kind in notifier.kinds)
        ]

    async def dispatch(self, batch: EventBatch, events: Sequence[ev.WorkflowEvent]) -> None:
        """Start a delivery for each task lifecycle event of ``batch`` some notifier wants."""
        for event, item in zip(events, batch.events, strict=True):
            notification = notification_for(batch, event, int(item.get("seq", 0)))
            if notification is not None:
                await self.start(notification)

    async def remind(self, task: TaskInfo, workflow_id: str, instance_id: str, tenant_id: str | None) -> None:
        """Start the delivery of a task's reminder (from the reminder activity)."""
        await self.start(
            TaskNotification(
                id=f"dwf-notify-{task.task_id}-reminder",
                kind=NotificationKind.REMINDER,
                at=task.reminder_at or task.created_at,
                workflow_id=workflow_id,
                instance_id=instance_id,
                tenant_id=tenant_id,
                task_id=task.task_id,
                step_name=task.step_name,
                title=task.title,
                assignee_id=task.assignee_id,
                assignee_group=task.assignee_group,
                due_at=task.due_at,
            )
        )

    async def start(self, notification: TaskNotification) -> None:
        """Start the ``dwf.notify`` workflow for ``notification`` (once per id); never raises."""
        names = self.targets(notification)
        if not names:
            return
        request = NotificationRequest(
            notification=notification,
            notifiers=names,
            max_attempts=self.max_attempts,
            initial_interval_seconds=self.initial_interval,
        )
        try:
            await activity.client().start_workflow(
                NOTIFY_WORKFLOW,
                request,
                id=notification.id,
                task_queue=activity.info().task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass  # the same event published again: its delivery is under way or done
        except Exception:
            logger.exception("could not start the delivery of notification %s", notification.id)

    @activity.defn(name=DELIVER_NOTIFICATION_ACTIVITY)
    async def deliver_notification(self, name: str, notification: TaskNotification) -> None:
        """Hand ``notification`` to the notifier ``name`` (raises to be retried)."""
        notifier = self.notifiers.get(name)
        if notifier is None:
            raise ApplicationError(
                f"this worker has no notifier named {name!r}", type="UnknownNotifier", non_retryable=True
            )
        await notifier.send(await self._filled_in(notification))

    async def _filled_in(self, notification: TaskNotification) -> TaskNotification:
        """The notification with the task's title and tenant from the mirror, when the event
        does not carry them. Only what never changes for a task is filled in, so every attempt
        of a delivery sends the same notification."""
        if self.queries is None or (notification.title and notification.tenant_id):
            return notification
        try:
            row = await self.queries.get_task(notification.task_id)
        except Exception:  # not mirrored (yet), or the database is away: send what is known
            return notification
        return notification.model_copy(
            update={
                "title": notification.title or row.title,
                "tenant_id": notification.tenant_id or row.tenant_id,
            }
        )
