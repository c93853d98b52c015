"""policy.denial_reason: who may complete, claim, release, reassign and comment on a task."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sdk import TaskInfo
from sdk._policy import denial_reason
from sdk._types import TaskAction

COMPLETE, CLAIM, RELEASE, REASSIGN, COMMENT = (
    TaskAction.COMPLETE,
    TaskAction.CLAIM,
    TaskAction.RELEASE,
    TaskAction.REASSIGN,
    TaskAction.COMMENT,
)


def _task(**fields: Any) -> TaskInfo:
    base: dict[str, Any] = {
        "task_id": "t-1",
        "step_execution_id": "s-1",
        "step_name": "approve",
        "title": "Approve",
        "form_name": "Approval",
        "form_schema": {},
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return TaskInfo(**{**base, **fields})


GROUP_TASK = _task(assignee_group="managers")
USER_TASK = _task(assignee_id="ann")
OPEN_TASK = _task()
CLAIMED_BY_BOB = _task(assignee_group="managers", claimed_by="bob")
MUST_CLAIM = _task(assignee_group="managers", require_claim=True)
MUST_CLAIM_CLAIMED = _task(assignee_group="managers", require_claim=True, claimed_by="bob")


@pytest.mark.parametrize(
    ("task", "action", "user", "groups"),
    [
        (USER_TASK, COMPLETE, "ann", ()),
        (GROUP_TASK, COMPLETE, "bob", ("managers",)),
        (GROUP_TASK, COMPLETE, "bob", ("staff", "managers")),
        (OPEN_TASK, COMPLETE, "anyone", ()),
        (MUST_CLAIM_CLAIMED, COMPLETE, "bob", ("managers",)),
        (CLAIMED_BY_BOB, COMPLETE, "bob", ()),  # the claim holder, even outside the group
        (GROUP_TASK, CLAIM, "bob", ("managers",)),
        (USER_TASK, CLAIM, "ann", ()),
        (OPEN_TASK, CLAIM, "anyone", ()),
        (CLAIMED_BY_BOB, CLAIM, "bob", ("managers",)),  # claiming again is harmless
        (CLAIMED_BY_BOB, RELEASE, "bob", ()),
        (USER_TASK, REASSIGN, "ann", ()),
        (CLAIMED_BY_BOB, REASSIGN, "bob", ()),
        (GROUP_TASK, COMMENT, "bob", ("managers",)),
        (USER_TASK, COMMENT, "ann", ()),
        (OPEN_TASK, COMMENT, "anyone", ()),
    ],
)
def test_allowed(task: TaskInfo, action: TaskAction, user: str, groups: tuple[str, ...]) -> None:
    assert denial_reason(task, action, user, groups) is None


@pytest.mark.parametrize(
    ("task", "action", "user", "groups", "reason"),
    [
        (USER_TASK, COMPLETE, "bob", (), "user 'bob' may not act on task t-1: it is assigned to 'ann'"),
        (GROUP_TASK, COMPLETE, "eve", ("staff",), "user 'eve' may not act on task t-1: it is assigned to group 'managers'"),
        (CLAIMED_BY_BOB, COMPLETE, "carl", ("managers",), "task t-1 is claimed by 'bob'"),
        (MUST_CLAIM, COMPLETE, "bob", ("managers",), "task t-1 must be claimed before it is completed"),
        (CLAIMED_BY_BOB, CLAIM, "carl", ("managers",), "task t-1 is already claimed by 'bob'"),
        (GROUP_TASK, CLAIM, "eve", (), "user 'eve' may not act on task t-1: it is assigned to group 'managers'"),
        (GROUP_TASK, RELEASE, "bob", ("managers",), "user 'bob' does not hold the claim on task t-1"),
        (CLAIMED_BY_BOB, RELEASE, "carl", ("managers",), "user 'carl' does not hold the claim on task t-1"),
        (GROUP_TASK, REASSIGN, "bob", ("managers",), "only the assignee or an administrator may reassign"),
        (USER_TASK, COMMENT, "eve", (), "user 'eve' may not see task t-1"),
    ],
)
def test_denied_with_a_reason(
    task: TaskInfo, action: TaskAction, user: str, groups: tuple[str, ...], reason: str
) -> None:
    denied = denial_reason(task, action, user, groups)
    assert denied is not None
    assert reason in denied


@pytest.mark.parametrize("action", list(TaskAction))
@pytest.mark.parametrize("task", [USER_TASK, GROUP_TASK, CLAIMED_BY_BOB, MUST_CLAIM])
def test_an_administrator_may_do_anything(task: TaskInfo, action: TaskAction) -> None:
    assert denial_reason(task, action, "root", ()) is not None  # the same user, without the flag
    assert denial_reason(task, action, "root", (), admin=True) is None


def test_group_membership_is_exact() -> None:
    assert denial_reason(GROUP_TASK, COMPLETE, "bob", ("manager", "Managers")) is not None
