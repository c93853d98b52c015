"""The rules every command must pass: one pure implementation for the client and the workflow.

The client checks before it sends anything; the workflow checks again on receipt with the same
functions, because a signal or an update can come from any Temporal client. Each refusal is a
:class:`sdk.Refusal` with an :class:`sdk.ErrorKind`: the client raises the matching SDK exception,
the workflow answers an update with it or records it as a rejection.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from ._errors import ErrorKind, Refusal, field_errors
from ._identity import Identity
from ._storable import MAX_PAYLOAD_BYTES, payload_size, unstorable
from ._types import TaskAction, TaskInfo, TaskStatus

__all__ = [
    "check_control",
    "check_form",
    "check_priority",
    "check_size",
    "check_task_command",
    "check_text",
    "denial_reason",
    "separation_reason",
    "vote_denial",
]


def denial_reason(
    task: TaskInfo,
    action: TaskAction,
    user: str,
    groups: Collection[str] = (),
    admin: bool = False,
) -> str | None:
    """Why ``user`` may not perform ``action`` on ``task``, or None when they may.

    Rules: an administrator may do anything. The assignee may complete, release, reassign,
    escalate and comment. A member of the assigned group may claim an unclaimed task, comment, and
    complete it (after claiming it when the step says ``require_claim``). Whoever holds
    the claim may complete, release and reassign. A task with neither assignee nor group is
    open to everyone. The assignee, the claim holder or an administrator may change the
    priority and follow-up date.

    A vote on a quorum task is personal: the user must be one of the task's voters (or, when
    the step lists none, a member of its group) and not have voted yet; an administrator has
    no vote of their own. Separation of duties (:func:`separation_reason`) is checked apart.
    """
    if action is TaskAction.VOTE:
        return vote_denial(task, user, groups)
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
        return None if is_assignee or in_group or unassigned else _not_assigned(task, user)
    if action is TaskAction.RELEASE:
        return None if holds_claim else f"user {user!r} does not hold the claim on task {task.task_id}"
    if action is TaskAction.REASSIGN:
        ok = is_assignee or holds_claim
        return None if ok else f"only the assignee or an administrator may reassign task {task.task_id}"
    if action is TaskAction.PRIORITIZE:
        ok = is_assignee or holds_claim
        return (
            None
            if ok
            else f"only the assignee or an administrator may change the priority of task {task.task_id}"
        )
    if action is TaskAction.ESCALATE:
        ok = is_assignee or holds_claim
        return None if ok else f"only the assignee or an administrator may escalate task {task.task_id}"
    # COMPLETE
    if task.claimed_by is not None and not holds_claim:
        return f"task {task.task_id} is claimed by {task.claimed_by!r}"
    if is_assignee or holds_claim or unassigned:
        return None
    if in_group:
        if task.require_claim:
            return f"task {task.task_id} must be claimed before it is completed"
        return None
    return _not_assigned(task, user)


def vote_denial(task: TaskInfo, user: str, groups: Collection[str] = ()) -> str | None:
    """Why ``user`` may not vote on ``task`` now, or None when they may."""
    if task.quorum is None:
        return f"task {task.task_id} takes a completion, not votes"
    if any(vote.voter == user for vote in task.votes):
        return f"user {user!r} already voted on task {task.task_id}"
    if task.voters is not None:
        eligible = user in task.voters
    else:
        eligible = task.assignee_group is not None and task.assignee_group in groups
    return None if eligible else f"user {user!r} is not one of the voters of task {task.task_id}"


def separation_reason(task: TaskInfo, user: str) -> str | None:
    """Why separation of duties keeps ``user`` from deciding ``task``, or None.

    The step names who may not complete or vote on its task: the instance's starter and
    whoever completed (or voted on) named earlier steps; the workflow lists them when it
    creates the task (``TaskInfo.excluded_users``). It binds administrators too.
    """
    why = task.excluded_users.get(user)
    if why is None:
        return None
    return f"separation of duties: user {user!r} {why}, so may not decide task {task.task_id}"


def _not_assigned(task: TaskInfo, user: str) -> str:
    """Name what the task is assigned to: a user, a group, or both."""
    if task.assignee_id is not None and task.assignee_group is not None:
        to = f"assigned to {task.assignee_id!r} and group {task.assignee_group!r}"
    elif task.assignee_id is not None:
        to = f"assigned to {task.assignee_id!r}"
    else:
        to = f"assigned to group {task.assignee_group!r}"
    return f"user {user!r} may not act on task {task.task_id}: it is {to}"


def check_text(**fields: Any) -> None:
    """Refuse (INVALID_INPUT) any named string, or list of strings, no mirror can store."""
    errors = [e for name, value in fields.items() if value is not None for e in unstorable(value, name)]
    if errors:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Refusal(ErrorKind.INVALID_INPUT, f"unstorable input: {detail}", errors)


def check_size(payload: Any, what: str) -> None:
    """Refuse (PAYLOAD_TOO_LARGE) a payload over :data:`sdk.MAX_PAYLOAD_BYTES`."""
    size = payload_size(payload)
    if size > MAX_PAYLOAD_BYTES:
        raise Refusal(
            ErrorKind.PAYLOAD_TOO_LARGE,
            f"{what} is {size:,} bytes; the limit is {MAX_PAYLOAD_BYTES:,} bytes (sdk.MAX_PAYLOAD_BYTES)",
            size=size,
            limit=MAX_PAYLOAD_BYTES,
        )


def check_identity(identity: Identity) -> None:
    """Refuse an identity whose strings no mirror can store."""
    check_text(user=identity.user, groups=list(identity.groups), tenant_id=identity.tenant_id)


def check_task_command(
    task_id: str,
    task: TaskInfo | None,
    action: TaskAction,
    identity: Identity,
    *,
    instance_tenant_id: str | None,
    to_user: str | None = None,
    to_group: str | None = None,
    reason: str | None = None,
    body: str | None = None,
    on_behalf_of: str | None = None,
) -> TaskInfo:
    """The task, when ``identity`` may perform ``action`` on it; else raise :class:`Refusal`.

    ``task`` is None when the instance has no such task. Another tenant's task is refused
    exactly like a task that does not exist. Form data is checked by :func:`check_form`.
    """
    check_identity(identity)
    check_text(to_user=to_user, to_group=to_group, reason=reason, body=body, on_behalf_of=on_behalf_of)
    if task is None or not identity.sees_tenant(instance_tenant_id):
        raise Refusal(ErrorKind.TASK_NOT_FOUND, f"no task {task_id} in this instance")
    if action is not TaskAction.COMMENT and task.status is not TaskStatus.PENDING:
        raise Refusal(
            ErrorKind.TASK_NOT_PENDING,
            f"task {task.task_id} is {task.status.value}, not pending",
            task_id=task.task_id,
            status=task.status.value,
        )
    if action is TaskAction.CLAIM and task.claimed_by not in (None, identity.user):
        raise Refusal(
            ErrorKind.CLAIM_CONFLICT, f"task {task.task_id} is already claimed by {task.claimed_by!r}"
        )
    if action in (TaskAction.COMPLETE, TaskAction.VOTE, TaskAction.CLAIM):
        separated = separation_reason(task, identity.user)
        if separated is not None:
            raise Refusal(ErrorKind.PERMISSION_DENIED, separated, rule="separation_of_duties")
    if action is TaskAction.CLAIM and task.quorum is not None:
        raise Refusal(ErrorKind.INVALID_INPUT, f"task {task.task_id} is voted on, not claimed")
    if action is TaskAction.COMPLETE and task.quorum is not None:
        raise Refusal(
            ErrorKind.INVALID_INPUT,
            f"task {task.task_id} takes {task.quorum} approvals: vote on it (vote_task), do not complete it",
        )
    denied = denial_reason(task, action, identity.user, identity.groups, identity.admin)
    if denied is not None:
        raise Refusal(ErrorKind.PERMISSION_DENIED, denied)
    if action is TaskAction.REASSIGN:
        if not (to_user or to_group):
            raise Refusal(ErrorKind.INVALID_INPUT, "reassign needs to_user or to_group")
        if not (reason or "").strip():
            raise Refusal(ErrorKind.INVALID_INPUT, "reassign needs a reason")
        if on_behalf_of is not None and on_behalf_of != task.assignee_id:
            raise Refusal(
                ErrorKind.INVALID_INPUT,
                f"a handover on behalf of {on_behalf_of!r} needs task {task.task_id} assigned to them",
            )
    if action is TaskAction.COMMENT and not (body or "").strip():
        raise Refusal(ErrorKind.INVALID_INPUT, "a comment needs a non-empty body")
    return task


def check_priority(priority: Any, follow_up_at: Any) -> None:
    """Refuse (INVALID_INPUT) a priority change that sets nothing or sets a bad value."""
    if priority is None and follow_up_at is None:
        raise Refusal(ErrorKind.INVALID_INPUT, "give a priority (0-100) and/or a follow-up date")
    if priority is not None and (
        not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 100
    ):
        raise Refusal(ErrorKind.INVALID_INPUT, f"priority must be an int from 0 to 100, got {priority!r}")
    if follow_up_at is not None and (
        not isinstance(follow_up_at, datetime) or follow_up_at.utcoffset() is None
    ):
        raise Refusal(ErrorKind.INVALID_INPUT, "follow_up_at must be a timezone-aware datetime")


def check_form(form: type[BaseModel], data: Any) -> BaseModel:
    """``data`` validated into ``form``; else raise :class:`Refusal` (FORM_VALIDATION).

    Values no mirror can store are refused like invalid fields, before the form sees them.
    """
    if not isinstance(data, dict):
        errors = [{"field": "__root__", "message": "form data must be an object", "type": "dict_type"}]
        raise Refusal(
            ErrorKind.FORM_VALIDATION, f"invalid data for form {form.__name__}", errors, form=form.__name__
        )
    errors = unstorable(data)
    if not errors:
        try:
            value = form.model_validate(data)
        except ValidationError as exc:
            errors = field_errors(exc)
        else:
            errors = unstorable(value.model_dump(mode="json"))
            if not errors:
                return value
    raise Refusal(
        ErrorKind.FORM_VALIDATION, f"invalid data for form {form.__name__}", errors, form=form.__name__
    )


def check_control(identity: Identity, *, instance_tenant_id: str | None, reason: str | None) -> None:
    """May ``identity`` pause, resume or cancel an instance of ``instance_tenant_id``?

    Any verified identity of the instance's tenant may (the application decides who reaches
    these commands); another tenant's instance is refused as not found.
    """
    check_identity(identity)
    check_text(reason=reason)
    if not identity.sees_tenant(instance_tenant_id):
        raise Refusal(ErrorKind.INSTANCE_NOT_FOUND, "no such workflow instance")
