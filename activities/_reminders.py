"""The ``dwf.send_reminder`` activity: a human task's reminder, through the application's hook."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

from temporalio import activity

from sdk import TaskInfo
from sdk.protocol import REMINDER_ACTIVITY
from sdk.runtime import instance_id_for

from ._notifications import NotificationDispatcher

__all__ = ["NotificationHook", "ReminderSender", "log_reminder"]

logger = logging.getLogger("dwf.reminders")

NotificationHook = Callable[[TaskInfo], Awaitable[None] | None]
"""Called once per reminder with the task; raise to have Temporal retry the reminder."""


def log_reminder(task: TaskInfo) -> None:
    """The default hook: log the reminder."""
    who = task.assignee_id or task.assignee_group or "anyone"
    logger.info("reminder: task %s %r for %s is due at %s", task.task_id, task.title, who, task.due_at)


class ReminderSender:
    """Holds the hook (and the worker's notifiers); :meth:`send_reminder` is the registered activity."""

    def __init__(
        self, hook: NotificationHook = log_reminder, *, notifications: NotificationDispatcher | None = None
    ) -> None:
        self.hook = hook
        self.notifications = notifications

    @activity.defn(name=REMINDER_ACTIVITY)
    async def send_reminder(self, task: TaskInfo) -> None:
        result = self.hook(task)
        if inspect.isawaitable(result):
            await result
        if self.notifications is not None:
            info = activity.info()
            run_id = info.workflow_run_id or ""
            await self.notifications.remind(task, info.workflow_id or "", str(instance_id_for(run_id)), None)
