"""Who may act on a human task. Pure functions, used by the client and by workflow code.

The client checks before it sends anything; the workflow checks again on receipt, because a
signal can come from any Temporal client.
"""

from __future__ import annotations

from collections.abc import Collection

from ._types import TaskAction, TaskInfo

__all__ = ["denial_reason"]


def denial_reason(
    task: TaskInfo,
    action: TaskAction,
    user: str,
    groups: Collection[str] = (),
    admin: bool = False,
) -> str | None:
    """Why ``user`` may not perform ``action`` on ``task``, or None when they may.

    Rules: an administrator may do anything. The assignee may complete, release, reassign
    and comment. A member of the assigned group may claim an unclaimed task, comment, and
    complete it (after claiming it when the step says ``require_claim``). Whoever holds
    the claim may complete, release and reassign. A task with neither assignee nor group is
    open to everyone.
    """
    if admin:
        return None
    is_assignee = task.assignee_id is not None and user == task.assignee_id
    in_group = task.assignee_group is not None and task.assignee_group in groups
    holds_claim = task.claimed_by is not None and task.claimed_by == user
    unassigned = task.assignee_id is None and task.assignee_group is None
    if action is TaskAction.COMMENT:
        ok = is_assignee or in_group or holds_claim or unassigned
        return None if ok else f"user {user!r} may not see task {task.task_id}"
    if action is TaskAction.CLAIM:
        if task.claimed_by is not None and not holds_claim:
            return f"task {task.task_id} is already claimed by {task.claimed_by!r}"
        ok = is_assignee or in_group or unassigned
        return None if ok else f"user {user!r} is not the assignee nor in group {task.assignee_group!r}"
    if action is TaskAction.RELEASE:
        return None if holds_claim else f"user {user!r} does not hold the claim on task {task.task_id}"
    if action is TaskAction.REASSIGN:
        ok = is_assignee or holds_claim
        return None if ok else f"only the assignee or an administrator may reassign task {task.task_id}"
    # COMPLETE
    if task.claimed_by is not None and not holds_claim:
        return f"task {task.task_id} is claimed by {task.claimed_by!r}"
    if is_assignee or holds_claim or unassigned:
        return None
    if in_group:
        if task.require_claim:
            return f"task {task.task_id} must be claimed before it is completed"
        return None
    return f"user {user!r} is not the assignee nor in group {task.assignee_group!r}"
