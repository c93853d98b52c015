"""The task policy the client and the workflow share: who may act, tenancy, refusals, storable values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from sdk import ALL_TENANTS, ErrorKind, Identity, TaskInfo
from sdk._errors import Refusal
from sdk._policy import check_form, check_task_command, denial_reason
from sdk._storable import unstorable
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
        (
            GROUP_TASK,
            COMPLETE,
            "eve",
            ("staff",),
            "user 'eve' may not act on task t-1: it is assigned to group 'managers'",
        ),
        (CLAIMED_BY_BOB, COMPLETE, "carl", ("managers",), "task t-1 is claimed by 'bob'"),
        (MUST_CLAIM, COMPLETE, "bob", ("managers",), "task t-1 must be claimed before it is completed"),
        (CLAIMED_BY_BOB, CLAIM, "carl", ("managers",), "task t-1 is already claimed by 'bob'"),
        (
            GROUP_TASK,
            CLAIM,
            "eve",
            (),
            "user 'eve' may not act on task t-1: it is assigned to group 'managers'",
        ),
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


@pytest.mark.parametrize("action", [a for a in TaskAction if a is not TaskAction.VOTE])
@pytest.mark.parametrize("task", [USER_TASK, GROUP_TASK, CLAIMED_BY_BOB, MUST_CLAIM])
def test_an_administrator_may_do_anything(task: TaskInfo, action: TaskAction) -> None:
    assert denial_reason(task, action, "root", ()) is not None  # the same user, without the flag
    assert denial_reason(task, action, "root", (), admin=True) is None


def test_group_membership_is_exact() -> None:
    assert denial_reason(GROUP_TASK, COMPLETE, "bob", ("manager", "Managers")) is not None


# -- the whole check, as the client and the workflow both run it ------------------------------------


def _refusal(fn: Any, *args: Any, **kwargs: Any) -> Refusal:
    with pytest.raises(Refusal) as refused:
        fn(*args, **kwargs)
    return refused.value


def test_a_denial_names_what_the_task_is_assigned_to_never_none() -> None:
    both = _task(assignee_id="ann", assignee_group="managers")
    for task, expected in (
        (USER_TASK, "assigned to 'ann'"),
        (GROUP_TASK, "assigned to group 'managers'"),
        (both, "assigned to 'ann' and group 'managers'"),
    ):
        reason = denial_reason(task, COMPLETE, "eve", ())
        assert reason is not None and expected in reason and "None" not in reason


@pytest.mark.parametrize(
    ("identity", "instance_tenant", "sees"),
    [
        (Identity(user="bob", tenant_id="acme"), "acme", True),
        (Identity(user="bob", tenant_id="acme"), "globex", False),
        (Identity(user="bob"), "acme", False),  # no tenant does not mean every tenant
        (Identity(user="bob"), None, True),
        (Identity(user="root", admin=True, tenant_id=ALL_TENANTS), "globex", True),
        (Identity(user="root", admin=True), "globex", False),
    ],
)
def test_tenancy_cannot_be_switched_off_by_leaving_the_tenant_out(
    identity: Identity, instance_tenant: str | None, sees: bool
) -> None:
    assert identity.sees_tenant(instance_tenant) is sees
    if not sees:
        refusal = _refusal(
            check_task_command, "t-1", OPEN_TASK, COMPLETE, identity, instance_tenant_id=instance_tenant
        )
        assert refusal.kind is ErrorKind.TASK_NOT_FOUND


def test_all_tenants_is_for_administrators_only() -> None:
    with pytest.raises(ValueError, match="administrator"):
        Identity(user="bob", tenant_id=ALL_TENANTS)


@pytest.mark.parametrize(
    ("task", "action", "fields", "kind"),
    [
        (None, COMPLETE, {}, ErrorKind.TASK_NOT_FOUND),
        (_task(status="completed"), CLAIM, {}, ErrorKind.TASK_NOT_PENDING),
        (CLAIMED_BY_BOB, CLAIM, {}, ErrorKind.CLAIM_CONFLICT),
        (USER_TASK, COMPLETE, {}, ErrorKind.PERMISSION_DENIED),
        (_task(assignee_id="carl"), REASSIGN, {"reason": "r"}, ErrorKind.INVALID_INPUT),
        (_task(assignee_id="carl"), REASSIGN, {"to_user": "x"}, ErrorKind.INVALID_INPUT),
        (OPEN_TASK, COMMENT, {"body": "  "}, ErrorKind.INVALID_INPUT),
        (OPEN_TASK, COMMENT, {"body": "a\x00b"}, ErrorKind.INVALID_INPUT),
    ],
)
def test_each_refusal_has_its_kind(
    task: TaskInfo | None, action: TaskAction, fields: Any, kind: ErrorKind
) -> None:
    refusal = _refusal(
        check_task_command, "t-1", task, action, Identity(user="carl"), instance_tenant_id=None, **fields
    )
    assert refusal.kind is kind
    assert type(refusal.to_exception()).__name__ == kind.value or kind is ErrorKind.INVALID_COMMAND


def test_a_refusal_crosses_temporal_as_its_kind_and_comes_back_the_same() -> None:
    refusal = Refusal(
        ErrorKind.TASK_NOT_PENDING, "task t-1 is completed, not pending", task_id="t-1", status="completed"
    )
    back = Refusal.from_application_error(refusal.to_application_error())
    assert back is not None
    assert (back.kind, back.message, back.details) == (refusal.kind, refusal.message, refusal.details)
    error = back.to_exception()
    assert type(error).__name__ == "TaskNotPendingError" and error.status == "completed"  # type: ignore[attr-defined]


class _Form(BaseModel):
    amount: float
    note: str = ""


@pytest.mark.parametrize(
    "data",
    [
        {"amount": float("nan")},
        {"amount": float("inf")},
        {"amount": 1e308},
        {"amount": 1.0, "note": "a\x00"},
        {"amount": 1.0, "note": "\udc80"},
        {"amount": 1.0, "extra": [2**64]},
        {"amount": 1.0, "k\x00": 1},
    ],
)
def test_unstorable_form_values_are_field_errors(data: dict[str, Any]) -> None:
    refusal = _refusal(check_form, _Form, data)
    assert refusal.kind is ErrorKind.FORM_VALIDATION
    assert refusal.errors and {e["type"] for e in refusal.errors} == {"unstorable"}


def test_storable_values_pass_unchanged() -> None:
    value = check_form(_Form, {"amount": 2.0**53, "note": "ünïcode ✓ \u2028"})
    assert value.model_dump() == {"amount": 2.0**53, "note": "ünïcode ✓ \u2028"}
    assert unstorable({"ok": [1, -(2**63), 2**63 - 1, 1e-300, True, None, "x"]}) == []


def test_what_workflows_produce_is_made_storable_with_the_same_rules() -> None:
    from sdk._storable import REPLACEMENT, storable_copy

    value = {"a\x00": ["x\x00y", float("nan"), float("-inf"), 1e308, 2**70, 1.5, 3, None, True, "\ud800"]}
    fixed, changed = storable_copy(value)
    assert fixed == {
        f"a{REPLACEMENT}": [
            f"x{REPLACEMENT}y",
            "NaN",
            "-Infinity",
            "1e+308",
            str(2**70),
            1.5,
            3,
            None,
            True,
            REPLACEMENT,
        ]
    }
    assert unstorable(fixed) == []  # what the client would refuse is gone
    assert len(changed) == len(unstorable(value))  # and each value it would refuse was reported
    clean = {"k": [1, "ok", 2.5]}
    assert storable_copy(clean) == (clean, [])
