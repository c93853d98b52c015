"""Built-in activities and the activity-side interceptor: what does I/O on the SDK's behalf.

Everything here runs outside the workflow sandbox and calls the SQL mirror (``sdk.mirror``)
through its public API.
"""

from ._delegation import substitutes_activity
from ._interceptor import MirrorInterceptor
from ._notifications import NotificationDispatcher
from ._notifiers import EmailNotifier, LogNotifier, Notifier, NotifierBase, WebhookNotifier
from ._publish import EventHandler, EventPublisher, EventSink
from ._reminders import NotificationHook, ReminderSender, log_reminder
from ._steps import machine_step_activity

__all__ = [
    # Events from workflow code to the mirror and the application's handlers
    "EventHandler",
    "EventPublisher",
    "EventSink",
    # Machine-step attempts mirrored as they happen, and the events steps carry
    "MirrorInterceptor",
    # Task notifications: the dispatcher (and its delivery activity) and the built-in notifiers
    "EmailNotifier",
    "LogNotifier",
    "NotificationDispatcher",
    "Notifier",
    "NotifierBase",
    "WebhookNotifier",
    # Reminders of human tasks
    "NotificationHook",
    "ReminderSender",
    "log_reminder",
    # Machine steps as activities
    "machine_step_activity",
    # Substitutes of absent users, read when a task is created
    "substitutes_activity",
]
