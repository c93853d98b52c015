"""The names by which workers, activities and the mirror meet the SDK's workflows.

Activity types and headers the runtime uses. Changing one is a protocol change: running
instances and recorded histories use these names.
"""

from __future__ import annotations

__all__ = ["CARRY_HEADER", "CARRY_PATCH", "PUBLISH_ACTIVITY", "REMINDER_ACTIVITY"]

PUBLISH_ACTIVITY = "dwf.publish_events"
"""The local activity that hands a batch of events to the mirror and the event handlers."""
CARRY_HEADER = "dwf-events"
"""Activity header holding the events a step activity carries (an ``EventBatch``)."""
CARRY_PATCH = "dwf-carry-events"
"""Patch marker of instances whose step activities carry events."""
REMINDER_ACTIVITY = "dwf.send_reminder"
"""The activity that sends a human task's reminder."""
