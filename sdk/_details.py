"""What an instance tells Temporal's UI and CLI about itself: its summary and current details.

Temporal keeps two kinds of user metadata for a workflow execution: a fixed summary given when
it starts (recorded in the start event) and current details that workflow code sets as it goes
(answered by the built-in ``__temporal_workflow_metadata`` query, never recorded in history, so
setting them issues no command and replays identically). The official Temporal UI and
``temporal workflow describe`` / ``temporal workflow metadata`` show both, so an operator sees
what every instance is waiting for without the SDK.

Pure functions of the instance's state: deterministic and safe inside the workflow sandbox.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._types import TaskInfo, TaskStatus, WorkflowStatus

__all__ = ["MAX_DETAIL_CHARS", "current_details", "instance_summary", "task_line"]

MAX_DETAIL_CHARS = 2000
"""Current details are cut to this length (Temporal shows them in lists and tooltips)."""
_MAX_TITLE = 200


def _one_line(text: str, limit: int = _MAX_TITLE) -> str:
    # Titles come from workflow input: one line each, so every task keeps its own line.
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def instance_summary(name: str, version: str, *, tenant_id: str | None, created_by: str | None) -> str:
    """The fixed one-line summary set when an instance starts.

    >>> instance_summary("expense_approval", "1.0.0", tenant_id="acme", created_by="ann")
    'expense_approval 1.0.0, tenant acme, started by ann'
    """
    parts = [f"{name} {version}"]
    if tenant_id is not None:
        parts.append(f"tenant {_one_line(tenant_id)}")
    if created_by is not None:
        parts.append(f"started by {_one_line(created_by)}")
    return ", ".join(parts)


def task_line(task: TaskInfo) -> str:
    """One pending task as the details show it: its title, then who may act on it.

    For example ``waiting on: Approve 120.00 for ann, group managers``.
    """
    who: list[str] = []
    if task.claimed_by is not None:
        who.append(f"claimed by {_one_line(task.claimed_by)}")
    if task.assignee_id is not None and task.assignee_id != task.claimed_by:
        who.append(f"user {_one_line(task.assignee_id)}")
    if task.assignee_group is not None:
        who.append(f"group {_one_line(task.assignee_group)}")
    if task.due_at is not None:
        who.append(f"due {task.due_at.strftime('%Y-%m-%d %H:%M UTC')}")
    return ", ".join([f"waiting on: {_one_line(task.title)}", *who])


def current_details(status: WorkflowStatus, current_step: str | None, tasks: Iterable[TaskInfo]) -> str:
    """The instance's current details: its pending tasks, else what it is doing or how it ended."""
    pending = [t for t in tasks if t.status is TaskStatus.PENDING]
    step = f": {current_step}" if current_step else ""
    if status is WorkflowStatus.PAUSED:
        lines = [f"paused{step}", *(task_line(t) for t in pending)]
    elif pending and status in (WorkflowStatus.RUNNING, WorkflowStatus.WAITING):
        lines = [task_line(t) for t in pending]
    elif status is WorkflowStatus.RUNNING:
        lines = [f"running{step}"]
    elif status is WorkflowStatus.FAILED:
        lines = [f"failed{step}"]
    else:
        lines = [status.value.lower()]
    text = "\n".join(lines)
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"
