"""Deterministic ids: the same workflow history always yields the same row ids.

Workflow code, the activity-side interceptor and a rebuild from history all derive ids
with these functions, so every writer upserts the same rows.
"""

from __future__ import annotations

from uuid import UUID, uuid5

__all__ = [
    "instance_id_for",
    "seq_from_activity_id",
    "step_activity_id",
    "step_execution_id_for",
    "task_id_for",
    "vote_id_for",
]

_NAMESPACE = UUID("6f1c2c1e-3f0a-5b7e-9a55-2f5d0c8f0d11")


def instance_id_for(run_id: str) -> UUID:
    """The instance id of one workflow run: its Temporal run id (a UUID)."""
    try:
        return UUID(run_id)
    except ValueError:
        return uuid5(_NAMESPACE, run_id)


def step_execution_id_for(instance_id: UUID, seq: int) -> UUID:
    """The id of the ``seq``-th step execution of an instance."""
    return uuid5(instance_id, f"step/{seq}")


def task_id_for(instance_id: UUID, seq: int) -> UUID:
    """The id of the human task created by the ``seq``-th step execution."""
    return uuid5(instance_id, f"task/{seq}")


def step_activity_id(seq: int) -> str:
    """The Temporal activity id of the ``seq``-th step (read back by the activity side)."""
    return f"step-{seq}"


def seq_from_activity_id(activity_id: str) -> int | None:
    """Invert :func:`step_activity_id`; None for activities the SDK did not schedule."""
    prefix, _, number = activity_id.partition("-")
    if prefix != "step" or not number.isdigit():
        return None
    return int(number)


def vote_id_for(task_id: UUID, user: str) -> UUID:
    """The id of ``user``'s row on a task: their ballot, vote or exclusion (one per user)."""
    return uuid5(task_id, f"vote/{user}")
