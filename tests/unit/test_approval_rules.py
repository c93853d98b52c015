"""Approval policies without a server: the decorator's checks and the shared policy's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from sdk import DefinitionError, ErrorKind, Identity, TaskInfo, TaskVote, human_step
from sdk._errors import Refusal
from sdk._policy import check_priority, check_task_command, separation_reason, vote_denial
from sdk._types import TaskAction

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Vote(BaseModel):
    approved: bool


class NoVote(BaseModel):
    comment: str


def _task(**fields: Any) -> TaskInfo:
    base: dict[str, Any] = {
        "task_id": "t-1",
        "step_execution_id": "s-1",
        "step_name": "approve",
        "title": "Approve",
        "form_name": "Vote",
        "form_schema": {},
        "created_at": NOW,
    }
    return TaskInfo(**{**base, **fields})


def _vote(user: str, approved: bool = True) -> TaskVote:
    return TaskVote(vote_id=f"v-{user}", voter=user, approved=approved, voted_at=NOW)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"form": NoVote, "quorum": 2, "assignee_group": "g"}, "needs a boolean field 'approved'"),
        ({"form": Vote, "quorum": 2, "assignee": "ann"}, "not to one assignee="),
        ({"form": Vote, "quorum": 2}, "needs voters="),
        ({"form": Vote, "quorum": 2, "assignee_group": "g", "reject_on": "unreachable"}, "needs voters="),
        ({"form": Vote, "quorum": 2, "voters": ["a", "b"], "assignee_group": "g"}, "not both"),
        ({"form": Vote, "quorum": 3, "voters": ["a", "b"]}, "can never be reached"),
        ({"form": Vote, "quorum": 0, "assignee_group": "g"}, "quorum must be an int >= 1"),
        ({"form": Vote, "voters": ["a"]}, "voters= needs quorum="),
        ({"form": Vote, "quorum": 1, "voters": ["a"], "reject_on": "never"}, "reject_on must be"),
        ({"form": Vote, "priority": 101}, "priority must be an int from 0 to 100"),
        ({"form": Vote, "exclude_steps": "review"}, "sequence of step names"),
        ({"form": Vote, "follow_up_in": timedelta(0)}, "follow_up_in must be a positive"),
    ],
)
def test_the_decorator_refuses_unusable_policies(options: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        human_step(**options)(lambda x: "t")


def test_a_quorum_step_stores_its_policy_and_plain_steps_keep_their_json() -> None:
    @human_step(form=Vote, quorum=2, voters=["a", "b", "a"], exclude_starter=True, priority=70)
    def board(x: Any) -> str:
        return "t"

    @human_step(form=Vote, assignee_group="g")
    def plain(x: Any) -> str:
        return "t"

    options = board.to_json()["options"]
    assert (options["quorum"], options["voters"], options["reject_on"]) == (2, ["a", "b"], "first")
    assert (options["exclude_starter"], options["priority"]) == (True, 70)
    assert not {"quorum", "priority", "exclude_starter", "follow_up_in"} & set(plain.to_json()["options"])


def test_who_may_vote() -> None:
    listed = _task(quorum=2, voters=["vic", "wes"], votes=[_vote("vic")])
    assert vote_denial(listed, "wes") is None
    assert "already voted" in str(vote_denial(listed, "vic"))
    assert "not one of the voters" in str(vote_denial(listed, "zed", ("g",)))
    group = _task(quorum=2, assignee_group="finance")
    assert vote_denial(group, "bob", ("finance",)) is None
    assert vote_denial(group, "bob", ("sales",)) is not None
    assert "takes a completion" in str(vote_denial(_task(assignee_group="finance"), "bob", ("finance",)))


def test_an_administrator_has_no_vote_of_their_own() -> None:
    task = _task(quorum=1, voters=["vic"])
    with pytest.raises(Refusal) as refused:
        check_task_command(
            "t-1", task, TaskAction.VOTE, Identity(user="root", admin=True), instance_tenant_id=None
        )
    assert refused.value.kind is ErrorKind.PERMISSION_DENIED


@pytest.mark.parametrize("action", [TaskAction.COMPLETE, TaskAction.VOTE, TaskAction.CLAIM])
def test_separation_of_duties_binds_even_administrators(action: TaskAction) -> None:
    quorum = {"quorum": 1, "voters": ["ann"]} if action is TaskAction.VOTE else {}
    task = _task(assignee_group="finance", excluded_users={"ann": "started this instance"}, **quorum)
    for identity in (Identity(user="ann", groups=("finance",)), Identity(user="ann", admin=True)):
        with pytest.raises(Refusal, match="separation of duties: user 'ann' started this instance"):
            check_task_command("t-1", task, action, identity, instance_tenant_id=None)
    assert separation_reason(task, "bob") is None
    # Comments stay open to them.
    check_task_command(
        "t-1",
        task,
        TaskAction.COMMENT,
        Identity(user="ann", groups=("finance",)),
        instance_tenant_id=None,
        body="why?",
    )


def test_a_quorum_task_is_voted_on_not_completed_or_claimed() -> None:
    task = _task(quorum=2, assignee_group="finance")
    with pytest.raises(Refusal, match="not claimed"):
        check_task_command(
            "t-1", task, TaskAction.CLAIM, Identity(user="bob", groups=("finance",)), instance_tenant_id=None
        )
    with pytest.raises(Refusal, match="vote on it") as refused:
        check_task_command(
            "t-1",
            task,
            TaskAction.COMPLETE,
            Identity(user="bob", groups=("finance",)),
            instance_tenant_id=None,
        )
    assert refused.value.kind is ErrorKind.INVALID_INPUT


@pytest.mark.parametrize(
    ("priority", "follow_up", "message"),
    [
        (None, None, "give a priority"),
        (-1, None, "from 0 to 100"),
        (True, None, "from 0 to 100"),
        (None, datetime(2026, 1, 1), "timezone-aware"),
    ],
)
def test_priority_changes_are_checked(priority: Any, follow_up: Any, message: str) -> None:
    with pytest.raises(Refusal, match=message):
        check_priority(priority, follow_up)
    check_priority(0, None)
    check_priority(None, NOW)


def test_only_the_assignee_the_claimant_or_an_administrator_reprioritizes() -> None:
    task = _task(assignee_id="olga", assignee_group="g")
    for identity, allowed in (
        (Identity(user="olga"), True),
        (Identity(user="root", admin=True), True),
        (Identity(user="bob", groups=("g",)), False),
    ):
        if allowed:
            check_task_command("t-1", task, TaskAction.PRIORITIZE, identity, instance_tenant_id=None)
        else:
            with pytest.raises(Refusal, match="change the priority"):
                check_task_command("t-1", task, TaskAction.PRIORITIZE, identity, instance_tenant_id=None)


def test_a_handover_is_on_behalf_of_the_assignee() -> None:
    task = _task(assignee_id="olga")
    check_task_command(
        "t-1",
        task,
        TaskAction.REASSIGN,
        Identity(user="olga"),
        instance_tenant_id=None,
        to_user="sam",
        reason="away",
        on_behalf_of="olga",
    )
    with pytest.raises(Refusal, match="assigned to them"):
        check_task_command(
            "t-1",
            task,
            TaskAction.REASSIGN,
            Identity(user="olga"),
            instance_tenant_id=None,
            to_user="sam",
            reason="away",
            on_behalf_of="pat",
        )
