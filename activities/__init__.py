"""Built-in activities: everything that does I/O on the SDK's behalf, outside the sandbox."""

from ._interceptor import MirrorInterceptor
from ._mirror import MirrorMetrics, MirrorWriter, definition_id_for
from ._publish import EventHandler, EventPublisher, EventSink
from ._reconcile import AuditReport, Mismatch, audit, rebuild, rebuild_instance
from ._reminders import NotificationHook, ReminderSender, log_reminder
from ._steps import machine_step_activity

__all__ = [
    # Events from workflow code to the mirror and the application's handlers
    "EventHandler",
    "EventPublisher",
    "EventSink",
    # The SQL mirror
    "MirrorInterceptor",
    "MirrorMetrics",
    "MirrorWriter",
    "definition_id_for",
    # Audit and rebuild of the mirror from Temporal's history
    "AuditReport",
    "Mismatch",
    "audit",
    "rebuild",
    "rebuild_instance",
    # Reminders of human tasks
    "NotificationHook",
    "ReminderSender",
    "log_reminder",
    # Machine steps as activities
    "machine_step_activity",
]
