"""Approval policies on the real dev server, with the mirror on SQLite and PostgreSQL.

Quorum votes (concurrent, each counted once; rejected once the quorum is unreachable),
separation of duties (the starter and earlier voters refused by the client and, for a raw
signed signal, by the workflow), priority and follow-up (computed, changed, sorted, audited),
and a delegation that starts and ends while tasks are open. Every test ends with a clean
audit of its instances against Temporal's history.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from sdk import (
    InstanceHandle,
    InstanceNotFoundError,
    InvalidInputError,
    PermissionDeniedError,
    TaskInfo,
    TaskNotPendingError,
    TaskStatus,
    WorkflowClient,
)
from sdk.mirror import (
    AssignmentAction,
    MirrorQueries,
    MirrorWriter,
    TaskVoteModel,
    VoteState,
    audit,
    rebuild,
)
from sdk.protocol import DELEGATION_PATCH
from tests.histories.record_policies import SCENARIOS, history_path
from tests.workflows import policies
from tests.workflows.policies import FINANCE, Purchase
from worker import sandbox_runner

DEFINITIONS = policies.DEFINITIONS
REPO = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).with_name("dwf")
DWF = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sdk._cli"]
Eventually = Callable[..., Awaitable[Any]]
PendingTask = Callable[..., Awaitable[TaskInfo]]


def _tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


async def _start(
    client: WorkflowClient, worker: Worker, definition: Any, tenant: str, **fields: Any
) -> InstanceHandle[Any]:
    purchase = Purchase(item=f"item-{uuid.uuid4().hex[:6]}", **fields)
    return await client.start(
        definition, purchase, tenant_id=tenant, created_by="ann", task_queue=worker.task_queue
    )


async def _audit_clean(client: WorkflowClient, writer: MirrorWriter, *handles: InstanceHandle[Any]) -> None:
    report = await audit(client.temporal, writer, [h.id for h in handles])
    assert report.checked == len(handles)
    assert report.clean, [str(m) for m in report.mismatches]


async def test_concurrent_votes_count_once_each_and_the_quorum_decides(
    mirror_client: WorkflowClient, worker: Worker, writer: MirrorWriter, pending_task: PendingTask
) -> None:
    tenant = _tenant()
    queries: MirrorQueries = mirror_client.queries
    handle = await _start(
        mirror_client, worker, policies.board, tenant, approvers=["ann", "vic", "wes", "xia", "yan"]
    )
    task = await pending_task(handle)
    # The starter is kept out of the voters (separation of duties), the others see the task.
    assert task.quorum == 2 and task.voters == ["vic", "wes", "xia", "yan"]
    assert task.excluded_users == {"ann": "started this instance"}
    for user, shown in (("vic", True), ("yan", True), ("ann", False), ("zed", False)):
        inbox = await queries.inbox(user, tenant_id=tenant)
        assert [row.id for row in inbox.items] == ([uuid.UUID(task.task_id)] if shown else []), user

    async def vote(user: str, approved: bool) -> TaskInfo | Exception:
        try:
            return await mirror_client.vote_task(
                task.task_id, {"approved": approved}, user=user, tenant_id=tenant
            )
        except (PermissionDeniedError, TaskNotPendingError, InstanceNotFoundError) as exc:
            return exc  # InstanceNotFoundError: the deciding vote ended the run first

    # One approval and one rejection at once, and the same voter twice at once.
    first = await asyncio.gather(vote("vic", True), vote("wes", False), vote("vic", True))
    accepted = [r for r in first if isinstance(r, TaskInfo)]
    refused = [r for r in first if not isinstance(r, TaskInfo)]
    assert len(accepted) == 2 and len(refused) == 1, first
    assert isinstance(refused[0], PermissionDeniedError) and "already voted" in str(refused[0])
    state = await handle.state()
    assert [(v.voter, v.approved) for v in state.tasks[0].votes] in (
        [("vic", True), ("wes", False)],
        [("wes", False), ("vic", True)],
    )
    assert state.tasks[0].status is TaskStatus.PENDING  # 1 approval, 2 voters left: reachable
    assert [r.id for r in (await queries.inbox("vic", tenant_id=tenant)).items] == []  # voted

    second = await asyncio.gather(vote("xia", True), vote("yan", True))
    assert any(isinstance(r, TaskInfo) for r in second)
    result = await handle.result()
    assert result["approved"] is True
    assert result["votes"]["vic"] is True and result["votes"]["wes"] is False
    assert sum(1 for approved in result["votes"].values() if approved) == 2

    rows = (await queries.task_votes(task.task_id, tenant_id=tenant)).items
    by_user = {row.voter: row for row in rows}
    assert set(by_user) == {"ann", "vic", "wes", "xia", "yan"}
    assert by_user["ann"].state is VoteState.EXCLUDED
    assert by_user["vic"].state is VoteState.APPROVED and by_user["wes"].state is VoteState.REJECTED
    cast = [row for row in rows if row.voted_at is not None]
    assert len(cast) == len(result["votes"]) == 3  # each counted once; the last vote was refused
    with pytest.raises(TaskNotPendingError):
        await mirror_client.vote_task(task.task_id, {"approved": True}, user="yan", tenant_id=tenant)
    await _audit_clean(mirror_client, writer, handle)


async def test_a_quorum_out_of_reach_is_rejected(
    mirror_client: WorkflowClient, worker: Worker, writer: MirrorWriter, pending_task: PendingTask
) -> None:
    tenant = _tenant()
    handle = await _start(mirror_client, worker, policies.board, tenant, approvers=["vic", "wes", "xia"])
    task = await pending_task(handle)
    await mirror_client.vote_task(task.task_id, {"approved": False}, user="vic", tenant_id=tenant)
    assert (await handle.state()).tasks[0].status is TaskStatus.PENDING
    closed = await mirror_client.vote_task(
        task.task_id, {"approved": False, "note": "too dear"}, user="wes", tenant_id=tenant
    )
    assert closed.status is TaskStatus.COMPLETED
    assert await handle.result() == {"approved": False, "votes": {"vic": False, "wes": False}}
    await _audit_clean(mirror_client, writer, handle)

    # Votes rebuild from the history: lost and altered vote rows are found and restored.
    votes = TaskVoteModel.__table__
    async with writer.engine.begin() as conn:
        await conn.execute(
            delete(votes).where(votes.c.task_id == uuid.UUID(task.task_id), votes.c.voter == "vic")
        )
        await conn.execute(update(votes).where(votes.c.voter == "wes").values(approved=True))
    report = await audit(mirror_client.temporal, writer, [handle.id])
    assert {(m.table, m.column) for m in report.mismatches} == {
        ("workflow_task_votes", "*"),
        ("workflow_task_votes", "approved"),
    }
    assert await rebuild(mirror_client.temporal, writer, [handle.id]) == 1
    await _audit_clean(mirror_client, writer, handle)


async def test_the_starter_may_not_approve_their_own_request(
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    pending_task: PendingTask,
    sign: Callable[..., dict[str, Any]],
    assert_eventually: Eventually,
) -> None:
    tenant = _tenant()
    queries: MirrorQueries = mirror_client.queries
    handle = await _start(mirror_client, worker, policies.four_eyes, tenant)
    task = await pending_task(handle)
    assert [r.id for r in (await queries.inbox("ann", [FINANCE], tenant_id=tenant)).items] == []
    assert len((await queries.inbox("bob", [FINANCE], tenant_id=tenant)).items) == 1

    # The client refuses before sending anything...
    with pytest.raises(PermissionDeniedError, match="separation of duties"):
        await mirror_client.vote_task(
            task.task_id, {"approved": True}, user="ann", groups=[FINANCE], tenant_id=tenant
        )
    assert (await handle.state()).rejections == []
    # ...and the workflow refuses a signed signal that bypasses the client, recording why.
    payload = {"task_id": task.task_id, "user": "ann", "groups": [FINANCE], "data": {"approved": True}}
    payload["tenant_id"] = tenant
    await handle.temporal.signal("vote_task", sign(handle.id, "vote", payload))

    async def rejected() -> None:
        state = await handle.state()
        assert [r.user for r in state.rejections] == ["ann"]
        assert "separation of duties" in state.rejections[0].reason
        assert state.tasks[0].votes == [] and state.tasks[0].status is TaskStatus.PENDING

    await assert_eventually(rejected)

    for user in ("bob", "cy"):
        await mirror_client.vote_task(
            task.task_id, {"approved": True}, user=user, groups=[FINANCE], tenant_id=tenant
        )
    sign_off = await pending_task(handle)
    assert sign_off.step_name == "final_sign_off"
    assert set(sign_off.excluded_users) == {"ann", "bob", "cy"}
    for user in ("ann", "bob"):
        with pytest.raises(PermissionDeniedError, match="separation of duties"):
            await mirror_client.complete_task(
                sign_off.task_id, {"approved": True}, user=user, groups=[FINANCE], tenant_id=tenant
            )
    await mirror_client.complete_task(
        sign_off.task_id, {"approved": True}, user="dee", groups=[FINANCE], tenant_id=tenant
    )
    assert await handle.result() is True
    await _audit_clean(mirror_client, writer, handle)


async def test_priority_and_follow_up_are_computed_changed_sorted_and_audited(
    mirror_client: WorkflowClient, worker: Worker, writer: MirrorWriter, pending_task: PendingTask
) -> None:
    tenant = _tenant()
    queries: MirrorQueries = mirror_client.queries
    calm = await _start(mirror_client, worker, policies.owned, tenant, owner="olga")
    urgent = await _start(mirror_client, worker, policies.owned, tenant, owner="olga", urgent=True)
    calm_task, urgent_task = await pending_task(calm), await pending_task(urgent)
    assert (calm_task.priority, urgent_task.priority) == (20, 80)

    by_priority = await queries.inbox("olga", tenant_id=tenant, order_by="priority")
    assert [r.id for r in by_priority.items] == [uuid.UUID(urgent_task.task_id), uuid.UUID(calm_task.task_id)]
    assert [r.priority for r in by_priority.items] == [80, 20]
    assert (await queries.inbox("olga", tenant_id=tenant, min_priority=50)).total == 1

    with pytest.raises(PermissionDeniedError):
        await mirror_client.prioritize_task(calm_task.task_id, user="eve", priority=99, tenant_id=tenant)
    with pytest.raises(InvalidInputError):
        await mirror_client.prioritize_task(calm_task.task_id, user="olga", priority=101, tenant_id=tenant)
    follow_up = datetime.now(UTC) + timedelta(minutes=5)
    changed = await mirror_client.prioritize_task(
        calm_task.task_id,
        user="olga",
        priority=95,
        follow_up_at=follow_up,
        reason="customer called",
        tenant_id=tenant,
    )
    assert changed.priority == 95
    await mirror_client.prioritize_task(
        urgent_task.task_id,
        user="root",
        admin=True,
        follow_up_at=follow_up + timedelta(hours=1),
        tenant_id=tenant,
    )
    by_priority = await queries.inbox("olga", tenant_id=tenant, order_by="priority")
    assert [r.priority for r in by_priority.items] == [95, 80]
    by_follow_up = await queries.pending_tasks(tenant_id=tenant, order_by="follow_up")
    assert [r.id for r in by_follow_up.items] == [
        uuid.UUID(calm_task.task_id),
        uuid.UUID(urgent_task.task_id),
    ]
    soon = await queries.pending_tasks(tenant_id=tenant, follow_up_before=follow_up + timedelta(minutes=1))
    assert [r.id for r in soon.items] == [uuid.UUID(calm_task.task_id)]
    trail = (await queries.task_assignments(calm_task.task_id)).items
    assert [(a.action, a.by_user) for a in trail] == [(AssignmentAction.PRIORITY, "olga")]
    assert (
        trail[0].reason is not None and "20 -> 95" in trail[0].reason and "customer called" in trail[0].reason
    )

    for handle, task in ((calm, calm_task), (urgent, urgent_task)):
        await mirror_client.complete_task(task.task_id, {"approved": True}, user="olga", tenant_id=tenant)
        assert await handle.result() is True
    await _audit_clean(mirror_client, writer, calm, urgent)


async def test_a_delegation_starts_and_ends_while_tasks_are_open(
    mirror_client: WorkflowClient, worker: Worker, writer: MirrorWriter, pending_task: PendingTask
) -> None:
    tenant = _tenant()
    queries: MirrorQueries = mirror_client.queries
    before = await _start(mirror_client, worker, policies.owned, tenant, owner="olga")
    before_task = await pending_task(before)
    assert before_task.assignee_id == "olga"

    with pytest.raises(PermissionDeniedError):
        await mirror_client.delegations.set("olga", "sam", by="eve", tenant_id=tenant)
    delegation = await mirror_client.delegations.set(
        "olga", "sam", reason="holiday", tenant_id=tenant, ends_at=datetime.now(UTC) + timedelta(days=7)
    )
    assert [d.id for d in await mirror_client.delegations.list(user="olga", tenant_id=tenant)] == [
        delegation.id
    ]

    during = await _start(mirror_client, worker, policies.owned, tenant, owner="olga")
    during_task = await pending_task(during)
    assert (during_task.assignee_id, during_task.on_behalf_of) == ("sam", "olga")
    moved = await mirror_client.delegations.hand_over("olga", "sam", tenant_id=tenant)
    assert [t.task_id for t in moved] == [before_task.task_id]
    sams = await queries.inbox("sam", tenant_id=tenant)
    assert {(r.id, r.on_behalf_of) for r in sams.items} == {
        (uuid.UUID(before_task.task_id), "olga"),
        (uuid.UUID(during_task.task_id), "olga"),
    }
    assert (await queries.inbox("olga", tenant_id=tenant)).total == 0
    trail = (await queries.task_assignments(before_task.task_id)).items
    assert [(a.action, a.by_user, a.on_behalf_of, a.to_assignee) for a in trail] == [
        (AssignmentAction.DELEGATE, "olga", "olga", "sam")
    ]
    created = (await queries.task_assignments(during_task.task_id)).items
    assert [(a.action, a.on_behalf_of, a.to_assignee) for a in created] == [
        (AssignmentAction.DELEGATE, "olga", "sam")
    ]

    ended = await mirror_client.delegations.end(delegation.id, by="olga", tenant_id=tenant)
    assert ended.ended_by == "olga" and ended.ended_at is not None
    after = await _start(mirror_client, worker, policies.owned, tenant, owner="olga")
    after_task = await pending_task(after)
    assert (after_task.assignee_id, after_task.on_behalf_of) == ("olga", None)

    for handle, task, user in (
        (before, before_task, "sam"),
        (during, during_task, "sam"),
        (after, after_task, "olga"),
    ):
        await mirror_client.complete_task(task.task_id, {"approved": True}, user=user, tenant_id=tenant)
        assert await handle.result() is True
    await _audit_clean(mirror_client, writer, before, during, after)


async def test_dwf_delegations_and_tasks_vote(
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    database_url: str,
    pending_task: PendingTask,
) -> None:
    tenant = _tenant()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWF_") or k == "DWF_SIGNING_KEY"}
    env.update(
        DWF_TEMPORAL_ADDRESS=mirror_client.temporal.service_client.config.target_host,
        DWF_DATABASE_URL=database_url,
        DWF_APP="tests.workflows.policies",
        PYTHONPATH=str(REPO),
    )

    async def dwf(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            *DWF, *args, "--tenant", tenant, cwd=REPO, env=env, stdout=PIPE, stderr=PIPE, stdin=DEVNULL
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, err = await dwf("--json", "delegations", "set", "olga", "sam", "--reason", "holiday")
    assert code == 0, err
    delegation_id = json.loads(out)["id"]
    handle = await _start(mirror_client, worker, policies.owned, tenant, owner="olga")
    board = await _start(mirror_client, worker, policies.board, tenant, approvers=["vic", "wes"])
    task, ballot = await pending_task(handle), await pending_task(board)
    assert (task.assignee_id, task.on_behalf_of) == ("sam", "olga")
    # Independent commands, run side by side (each dwf process takes a while to start).
    listed, delegations, voted = await asyncio.gather(
        dwf("--json", "tasks", "list", "--user", "sam", "--order-by", "priority"),
        dwf("--json", "delegations", "list", "--user", "olga"),
        dwf("tasks", "vote", ballot.task_id, "--user", "vic", "--data", '{"approved": true}'),
    )
    assert listed[0] == 0, listed[2]
    rows = [(t["id"], t["on_behalf_of"], t["priority"]) for t in json.loads(listed[1])]
    assert rows == [(task.task_id, "olga", 20)]
    assert delegations[0] == 0, delegations[2]
    assert [(d["id"], d["ended_at"]) for d in json.loads(delegations[1])] == [(delegation_id, None)]
    assert voted[0] == 0 and "1 vote(s) of 2 needed" in voted[1], voted[2]

    await mirror_client.complete_task(task.task_id, {"approved": True}, user="sam", tenant_id=tenant)
    await mirror_client.vote_task(ballot.task_id, {"approved": True}, user="wes", tenant_id=tenant)
    assert await handle.result() is True and (await board.result())["approved"] is True
    await _audit_clean(mirror_client, writer, handle, board)


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_recorded_policy_histories_replay(scenario: str) -> None:
    """Votes, a refused starter, a priority change and a delegation's recorded answer replay."""
    history = WorkflowHistory.from_json(scenario, history_path(scenario).read_text())
    replayer = Replayer(
        workflows=[d.workflow_class for d in DEFINITIONS],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
    text = history_path(scenario).read_text()
    if scenario == "delegated":  # the lookup happened once, live; its answer is in the history
        assert '"dwf.find_substitutes"' in json.dumps(_marker_data(history)) and DELEGATION_PATCH in _patches(
            history
        )
    else:
        assert "vote_task" in text and "final_sign_off" not in _patches(history)


def _patches(history: WorkflowHistory) -> list[str]:
    found = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            details = event.marker_recorded_event_attributes.details
            if "patch-data" in details:
                found.append(json.loads(details["patch-data"].payloads[0].data)["id"])
    return found


def _marker_data(history: WorkflowHistory) -> list[Any]:
    return [
        json.loads(event.marker_recorded_event_attributes.details["data"].payloads[0].data)
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and "data" in event.marker_recorded_event_attributes.details
    ]
