"""The names by which clients, workers, activities and the mirror meet the SDK's workflows.

Signal, update and query names, activity types, headers and patch markers. Changing one is a
protocol change: running instances, recorded histories and other Temporal clients (the
``temporal`` command line) use these names.
"""

from __future__ import annotations

from ._types import TaskAction

__all__ = [
    "CANCEL_SIGNAL",
    "CARRY_HEADER",
    "CARRY_PATCH",
    "COMPLETE_SIGNAL",
    "COMPLETE_UPDATE",
    "DELEGATION_ACTIVITY",
    "DELEGATION_PATCH",
    "EVENT_SIGNAL",
    "GRAPH_WORKFLOW",
    "PAUSE_SIGNAL",
    "PUBLISH_ACTIVITY",
    "REMINDER_ACTIVITY",
    "RESUME_SIGNAL",
    "REPLAY_GUARD_PATCH",
    "SIGNED_COMMANDS_PATCH",
    "STATE_QUERY",
    "VERIFY_ACTIVITY",
    "task_signal",
    "task_update",
]

PUBLISH_ACTIVITY = "dwf.publish_events"
"""The local activity that hands a batch of events to the mirror and the event handlers."""
CARRY_HEADER = "dwf-events"
"""Activity header holding the events a step activity carries (an ``EventBatch``)."""
CARRY_PATCH = "dwf-carry-events"
"""Patch marker of instances whose step activities carry events."""
REMINDER_ACTIVITY = "dwf.send_reminder"
"""The activity that sends a human task's reminder."""
VERIFY_ACTIVITY = "dwf.verify_command"
"""The local activity that verifies a signal's signature (its verdict is recorded in history)."""
DELEGATION_ACTIVITY = "dwf.find_substitutes"
"""The local activity that reads who stands in for absent users (its answer is recorded)."""
DELEGATION_PATCH = "dwf-delegation"
"""Patch marker of instances whose new tasks go to the substitutes of absent users."""
SIGNED_COMMANDS_PATCH = "dwf-signed-commands"
"""Patch marker of instances whose signals are verified; older signals replay as they ran."""
REPLAY_GUARD_PATCH = "dwf-replay-guard"
"""Patch marker of instances that refuse a repeated signed command; signals an instance received
before the deploy replay as they ran (as with :data:`SIGNED_COMMANDS_PATCH`)."""

COMPLETE_SIGNAL = "complete_task"
"""Signal completing a human task (a ``TaskCompletion`` payload)."""
COMPLETE_UPDATE = "complete_task_update"
"""Update completing a human task; answers with the task or a typed refusal."""
PAUSE_SIGNAL = "pause"
"""Signal holding the instance before its next step (a ``ControlCommand`` payload)."""
RESUME_SIGNAL = "resume"
"""Signal letting a paused instance go on (a ``ControlCommand`` payload)."""
CANCEL_SIGNAL = "cancel_requested"
"""Signal saying who cancels and why, sent just before Temporal's cancel."""
EVENT_SIGNAL = "external_event"
"""Signal delivering an external event ``{"event", "key", "payload"}`` to a waiting event step."""
GRAPH_WORKFLOW = "dwf.graph"
"""Workflow type of the interpreter that runs graph definitions (input: the definition, the data)."""
STATE_QUERY = "state"
"""Query answering the instance's ``InstanceState``."""


def task_signal(action: TaskAction) -> str:
    """The signal name of a task action (``claim_task``, ``complete_task``...)."""
    return f"{action.value}_task"


def task_update(action: TaskAction) -> str:
    """The update name of a task action (``claim_task_update``...)."""
    return f"{action.value}_task_update"
