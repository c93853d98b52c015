"""The human task lifecycle on the real Temporal dev server, with the SQL mirror on SQLite and PostgreSQL.

Assignment, claims (and a race between two claimants), reassignment, comments, permissions
(checked by the client before sending and by the workflow on receipt), forms, deadlines with
second-long durations (reminder, escalation, expiry, completion with the default, overdue
queries), cancel/pause/resume, tenant isolation, and refusals that change nothing.

Each backend gets one worker (mirror on, event handler and notification hook capturing what
they receive) and one ``WorkflowClient`` connected with the database, shared by the module's
tests. Tests wait on conditions with ``assert_eventually``, never with sleeps.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from temporalio.api.enums.v1 import EventType

from sdk import (
    FormValidationError,
    InstanceHandle,
    InstanceNotFoundError,
    PermissionDeniedError,
    TaskClaimConflictError,
    TaskInfo,
    TaskNotFoundError,
    TaskNotPendingError,
    TaskStatus,
    WorkflowClient,
    WorkflowStatus,
    events,
)
from sdk.mirror import AssignmentAction, InstanceRow, MirrorQueries, MirrorWriter, TaskRow
from tests.integration.support import DatabaseFactory, commands_received
from tests.workflows import lifecycle
from tests.workflows.lifecycle import ANN, BOSS, CHIEFS, CLERKS, Resolution, Ticket, Verdict

Eventually = Callable[..., Awaitable[Any]]
Sign = Callable[..., dict[str, Any]]
E = TypeVar("E", bound=events.WorkflowEvent)

BOB = {"user": "bob", "groups": [CLERKS]}  # a clerk
CARA = {"user": "cara", "groups": [CLERKS]}  # another clerk
EVE = {"user": "eve", "groups": ["staff"]}  # neither assignee nor clerk
ROOT = {"user": "root", "admin": True}  # an administrator, as the application says


def _tenant() -> str:
    """A tenant of its own, so a test's inbox and overdue queries see only its own tasks."""
    return f"tenant-{uuid.uuid4().hex[:8]}"


@dataclass
class Lab:
    """One backend's database, worker and client, and what the worker's callbacks received."""

    backend: str
    client: WorkflowClient
    task_queue: str
    seen: list[events.WorkflowEvent] = field(default_factory=list)
    reminders: list[TaskInfo] = field(default_factory=list)

    @property
    def queries(self) -> MirrorQueries:
        queries: MirrorQueries = self.client.queries
        return queries

    async def start(
        self,
        route: lifecycle.Route = "group",
        *,
        tenant_id: str | None = None,
        gated: bool = False,
        **fields: Any,
    ) -> InstanceHandle[Any]:
        ticket = Ticket(subject=f"{route}-{uuid.uuid4().hex[:6]}", route=route, **fields)
        definition = lifecycle.lifecycle_gated if gated else lifecycle.lifecycle_task
        return await self.client.start(definition, ticket, tenant_id=tenant_id, task_queue=self.task_queue)

    async def pending_row(self, handle: InstanceHandle[Any], eventually: Eventually) -> TaskRow:
        """The instance's pending task as the mirror has it, once the workflow created it."""

        async def row() -> TaskRow:
            assert handle.instance_id is not None
            try:
                page = await self.queries.instance_tasks(handle.instance_id, status=TaskStatus.PENDING)
            except InstanceNotFoundError:
                raise AssertionError(f"instance {handle.id} not mirrored yet") from None
            assert len(page.items) == 1, page.items
            return page.items[0]

        found: TaskRow = await eventually(row)
        return found

    async def row(self, task_id: uuid.UUID | str) -> TaskRow:
        return await self.queries.get_task(task_id)

    async def instance_row(self, handle: InstanceHandle[Any]) -> InstanceRow:
        assert handle.instance_id is not None
        return await self.queries.get_instance(handle.instance_id)

    def events_of(self, handle: InstanceHandle[Any], kind: type[E]) -> list[E]:
        return [e for e in self.seen if isinstance(e, kind) and e.instance_id == handle.instance_id]


@pytest.fixture(name="lab", scope="module")
async def fixture_lab(
    backend: str, database_factory: DatabaseFactory, server: Any, new_worker: Any
) -> AsyncIterator[Lab]:
    url = await database_factory.create(backend)
    writer = MirrorWriter.from_url(url)
    await writer.upgrade_schema()
    seen: list[events.WorkflowEvent] = []
    reminders: list[TaskInfo] = []
    worker = new_worker(
        lifecycle.lifecycle_task,
        lifecycle.lifecycle_gated,
        mirror=writer,
        event_handlers=[seen.append],
        notification_hook=reminders.append,
    )
    client = await WorkflowClient.connect(server.target, database_url=url, task_queue=worker.task_queue)
    try:
        async with worker:
            yield Lab(backend, client, worker.task_queue, seen, reminders)
    finally:
        await client.close()
        await writer.close()


async def _activity_types(handle: InstanceHandle[Any]) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        async for e in handle.temporal.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def _recent(moment: datetime | None) -> bool:
    now = datetime.now(UTC)
    return moment is not None and now - timedelta(minutes=1) <= moment <= now + timedelta(seconds=5)


# -- 1. assignment ------------------------------------------------------------------------------------


async def test_assignment_fixed_or_computed_is_on_the_task_row(
    lab: Lab, assert_eventually: Eventually
) -> None:
    tenant = _tenant()
    cases: list[tuple[lifecycle.Route, dict[str, Any], tuple[str | None, str | None]]] = [
        ("user", {}, (ANN, None)),
        ("group", {}, (None, CLERKS)),
        ("both", {}, (ANN, CLERKS)),
        ("computed", {"owner": "zoe", "team": "auditors"}, ("zoe", "auditors")),
        ("computed", {"team": "auditors"}, (None, "auditors")),
    ]
    handles = [await lab.start(route, tenant_id=tenant, **fields) for route, fields, _ in cases]
    rows = [await lab.pending_row(h, assert_eventually) for h in handles]
    for handle, row, (route, _, expected) in zip(handles, rows, cases, strict=True):
        assert (row.assignee_id, row.assignee_group) == expected, route
        assert (row.tenant_id, row.workflow_id, row.claimed_by) == (tenant, handle.id, None)
        assert row.title.startswith(f"Handle {route}-")
        state = await handle.state()
        (task,) = state.pending_tasks
        assert str(row.id) == task.task_id
        assert (task.assignee_id, task.assignee_group) == expected
        (created,) = lab.events_of(handle, events.HumanTaskCreated)
        assert (created.assignee_id, created.assignee_group) == expected
        assert created.assignee == (expected[0] or expected[1])

    # The inboxes follow the assignment: ann's own tasks, and the clerks' group tasks.
    ann_inbox = await lab.queries.inbox(ANN, tenant_id=tenant)
    assert {t.id for t in ann_inbox.items} == {rows[0].id, rows[2].id}
    clerk_inbox = await lab.queries.inbox("bob", [CLERKS], tenant_id=tenant)
    assert {t.id for t in clerk_inbox.items} == {rows[1].id, rows[2].id}
    zoe_inbox = await lab.queries.inbox("zoe", ["auditors"], tenant_id=tenant)
    assert {t.id for t in zoe_inbox.items} == {rows[3].id, rows[4].id}
    by_group = await lab.queries.pending_tasks(tenant_id=tenant, group="auditors", assignee_id="zoe")
    assert [t.id for t in by_group.items] == [rows[3].id]


# -- 2. claim and release -----------------------------------------------------------------------------


async def test_claim_and_release_by_a_group_member_are_audited(
    lab: Lab, assert_eventually: Eventually
) -> None:
    handle = await lab.start("group")
    row = await lab.pending_row(handle, assert_eventually)
    task_id = row.id

    with pytest.raises(
        PermissionDeniedError, match=r"'eve' may not act on task .*: it is assigned to group 'clerks'"
    ):
        await lab.client.claim_task(task_id, **EVE)
    assert await lab.row(task_id) == row

    claimed = await lab.client.claim_task(task_id, **BOB)
    assert claimed.claimed_by == "bob"
    # The update answers after the mirror has the change.
    after_claim = await lab.row(task_id)
    assert after_claim.claimed_by == "bob"
    assert _recent(after_claim.claimed_at)

    with pytest.raises(TaskClaimConflictError, match="already claimed by 'bob'"):
        await lab.client.claim_task(task_id, **CARA)
    with pytest.raises(PermissionDeniedError, match="claimed by 'bob'"):
        await lab.client.complete_task(task_id, {"approved": True}, **CARA)
    with pytest.raises(PermissionDeniedError, match="does not hold the claim"):
        await lab.client.release_task(task_id, **CARA)
    assert await lab.row(task_id) == after_claim

    released = await lab.client.release_task(task_id, **BOB)
    assert released.claimed_by is None
    after_release = await lab.row(task_id)
    assert (after_release.claimed_by, after_release.claimed_at, after_release.status) == (
        None,
        None,
        TaskStatus.PENDING,
    )

    audit = (await lab.queries.task_assignments(task_id)).items
    assert [(a.action, a.from_assignee, a.to_assignee, a.by_user) for a in audit] == [
        (AssignmentAction.CLAIM, None, "bob", "bob"),
        (AssignmentAction.RELEASE, "bob", None, "bob"),
    ]
    assert audit[0].at <= audit[1].at and all(_recent(a.at) for a in audit)
    assert [e.claimed_by for e in lab.events_of(handle, events.HumanTaskClaimed)] == ["bob"]
    (release_event,) = lab.events_of(handle, events.HumanTaskReleased)
    assert (release_event.released_by, release_event.previous_claimant) == ("bob", "bob")

    # Released, the task is open to the group again: cara claims and completes it.
    await lab.client.claim_task(task_id, **CARA)
    await lab.client.complete_task(task_id, {"approved": True, "score": 4}, **CARA)
    assert await handle.result() == Resolution(outcome="answered", approved=True, score=4, note="")
    done = await lab.row(task_id)
    assert (done.status, done.completed_by, done.claimed_by) == (TaskStatus.COMPLETED, "cara", "cara")
    assert (await handle.state()).rejections == []


async def test_two_simultaneous_claims_exactly_one_wins(lab: Lab, assert_eventually: Eventually) -> None:
    handles = [await lab.start("group") for _ in range(3)]
    rows = [await lab.pending_row(h, assert_eventually) for h in handles]
    for handle, row in zip(handles, rows, strict=True):
        outcomes = await asyncio.gather(
            lab.client.claim_task(row.id, **BOB),
            lab.client.claim_task(row.id, **CARA),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if isinstance(o, TaskInfo)]
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(winners) == 1, outcomes
        assert len(losers) == 1 and isinstance(losers[0], TaskClaimConflictError), outcomes
        winner = winners[0].claimed_by
        assert winner in {"bob", "cara"}
        assert (await lab.row(row.id)).claimed_by == winner
        assert (await handle.task(row.id)).claimed_by == winner
        audit = (await lab.queries.task_assignments(row.id)).items
        assert [(a.action, a.by_user) for a in audit] == [(AssignmentAction.CLAIM, winner)]
        assert [e.claimed_by for e in lab.events_of(handle, events.HumanTaskClaimed)] == [winner]


async def test_require_claim_blocks_completion_until_claimed(
    lab: Lab, assert_eventually: Eventually, sign: Sign
) -> None:
    handle = await lab.start("claim_first")
    row = await lab.pending_row(handle, assert_eventually)
    assert row.require_claim is True

    before = await commands_received(handle)
    with pytest.raises(PermissionDeniedError, match="must be claimed before it is completed"):
        await lab.client.complete_task(row.id, {"approved": True}, **BOB)
    assert await commands_received(handle) == before
    assert await lab.row(row.id) == row

    # The workflow enforces it too, against a trusted client that skips the check.
    forged = {"task_id": str(row.id), "data": {"approved": True}, **BOB}
    await handle.temporal.signal("complete_task", sign(handle.id, "complete", forged))

    async def refused() -> None:
        rejections = (await handle.state()).rejections
        assert len(rejections) == 1, rejections  # signals are applied a moment later
        (rejection,) = rejections
        assert rejection.reason.startswith("PermissionDeniedError"), rejection
        assert "must be claimed" in rejection.reason

    await assert_eventually(refused)
    assert (await lab.row(row.id)).status is TaskStatus.PENDING

    await lab.client.claim_task(row.id, **BOB)
    await lab.client.complete_task(row.id, {"approved": False}, **BOB)
    assert (await handle.result()).outcome == "answered"
    assert (await lab.row(row.id)).completed_by == "bob"


# -- 3. reassignment ----------------------------------------------------------------------------------


async def test_reassignment_by_assignee_and_admin_is_audited(lab: Lab, assert_eventually: Eventually) -> None:
    handle = await lab.start("user")
    row = await lab.pending_row(handle, assert_eventually)
    task_id = row.id
    started = datetime.now(UTC) - timedelta(seconds=5)

    with pytest.raises(PermissionDeniedError, match="only the assignee or an administrator"):
        await lab.client.reassign_task(task_id, to_user="eve", reason="mine now", **EVE)
    with pytest.raises(PermissionDeniedError):
        await lab.client.reassign_task(task_id, to_user="bob", reason="mine now", **BOB)
    with pytest.raises(ValueError, match="needs a reason"):
        await lab.client.reassign_task(task_id, to_user="carl", reason=" ", user=ANN)
    assert await lab.row(task_id) == row
    assert (await handle.state()).rejections == []

    moved = await lab.client.reassign_task(task_id, to_user="carl", reason="ann is on leave", user=ANN)
    assert moved.assignee_id == "carl"
    assert (await lab.row(task_id)).assignee_id == "carl"
    with pytest.raises(PermissionDeniedError):  # ann no longer holds it
        await lab.client.complete_task(task_id, {"approved": True}, user=ANN)

    await lab.client.reassign_task(task_id, to_user="dana", reason="carl is overloaded", **ROOT)
    row_after = await lab.row(task_id)
    assert (row_after.assignee_id, row_after.assignee_group) == ("dana", None)

    reassigned = lab.events_of(handle, events.HumanTaskReassigned)
    assert [(e.from_assignee, e.to_assignee, e.reassigned_by, e.reason) for e in reassigned] == [
        (ANN, "carl", ANN, "ann is on leave"),
        ("carl", "dana", "root", "carl is overloaded"),
    ]
    audit = (await lab.queries.task_assignments(task_id)).items
    assert [(a.action, a.from_assignee, a.to_assignee, a.by_user, a.reason) for a in audit] == [
        (AssignmentAction.REASSIGN, ANN, "carl", ANN, "ann is on leave"),
        (AssignmentAction.REASSIGN, "carl", "dana", "root", "carl is overloaded"),
    ]
    assert started <= audit[0].at <= audit[1].at <= datetime.now(UTC)
    assert [a.at for a in audit] == [e.timestamp for e in reassigned]

    await lab.client.complete_task(task_id, {"approved": True}, user="dana")
    assert (await handle.result()).approved is True


# -- 4. comments --------------------------------------------------------------------------------------


async def test_comments_are_kept_in_order_in_sql_and_on_the_task(
    lab: Lab, assert_eventually: Eventually
) -> None:
    handle = await lab.start("both")
    row = await lab.pending_row(handle, assert_eventually)
    said = [(ANN, "first look: fine", {}), ("bob", "agreed", {"groups": [CLERKS]}), ("root", "ok", ROOT)]
    for author, body, identity in said:
        await lab.client.comment_task(row.id, body, **{"user": author, **identity})

    with pytest.raises(PermissionDeniedError, match="may not see task"):
        await lab.client.comment_task(row.id, "let me in", **EVE)
    with pytest.raises(ValueError, match="non-empty body"):
        await lab.client.comment_task(row.id, "   ", user=ANN)

    in_sql = (await lab.queries.task_comments(row.id)).items
    assert [(c.author, c.body) for c in in_sql] == [(a, b) for a, b, _ in said]
    assert all(c.task_id == row.id and c.instance_id == handle.instance_id for c in in_sql)
    assert in_sql[0].posted_at <= in_sql[1].posted_at <= in_sql[2].posted_at
    assert all(_recent(c.posted_at) for c in in_sql)

    on_task = (await handle.task(row.id)).comments
    assert [(c.author, c.body, c.posted_at) for c in on_task] == [
        (c.author, c.body, c.posted_at) for c in in_sql
    ]
    assert [c.comment_id for c in on_task] == [str(c.id) for c in in_sql]
    assert [(e.author, e.body) for e in lab.events_of(handle, events.HumanTaskCommented)] == [
        (a, b) for a, b, _ in said
    ]
    assert (await handle.state()).rejections == []
    assert (await lab.row(row.id)).status is TaskStatus.PENDING


# -- 5. permissions -----------------------------------------------------------------------------------


async def test_client_refuses_unpermitted_users_before_sending(
    lab: Lab, assert_eventually: Eventually
) -> None:
    handle = await lab.start("group")
    row = await lab.pending_row(handle, assert_eventually)
    before = await commands_received(handle)

    with pytest.raises(PermissionDeniedError):
        await lab.client.complete_task(row.id, {"approved": True}, **EVE)
    with pytest.raises(PermissionDeniedError):
        await lab.client.claim_task(row.id, **EVE)
    with pytest.raises(PermissionDeniedError):
        await lab.client.reassign_task(row.id, to_user="eve", reason="r", **EVE)
    with pytest.raises(PermissionDeniedError):  # a group member is not the assignee
        await lab.client.reassign_task(row.id, to_user="bob", reason="r", **BOB)
    with pytest.raises(PermissionDeniedError):  # being called "ann" is not being in the group
        await lab.client.complete_task(row.id, {"approved": True}, user=ANN)

    assert await commands_received(handle) == before
    state = await handle.state()
    assert state.rejections == []
    assert [t.task_id for t in state.pending_tasks] == [str(row.id)]
    assert await lab.row(row.id) == row

    # The permitted: a clerk may complete without claiming (the step does not require it).
    await lab.client.complete_task(row.id, {"approved": True}, **BOB)
    assert (await lab.row(row.id)).completed_by == "bob"


async def test_workflow_refuses_forged_signals_from_unpermitted_users(
    lab: Lab, assert_eventually: Eventually, sign: Sign
) -> None:
    handle = await lab.start("both")
    row = await lab.pending_row(handle, assert_eventually)
    raw = lab.client.temporal.get_workflow_handle(handle.id)
    task_id = str(row.id)

    # Signed by the application's key (a trusted client skipping the SDK's checks): the
    # workflow's own policy check refuses each.
    await raw.signal(
        "complete_task", sign(raw.id, "complete", {"task_id": task_id, "data": {"approved": True}, **EVE})
    )
    await raw.signal("claim_task", sign(raw.id, "claim", {"task_id": task_id, **EVE}))
    reassign = {"task_id": task_id, "to_user": "eve", "reason": "r", **EVE}
    await raw.signal("reassign_task", sign(raw.id, "reassign", reassign))
    await raw.signal("comment_task", sign(raw.id, "comment", {"task_id": task_id, "body": "hello", **EVE}))

    async def four_rejections() -> list[Any]:
        rejections = (await handle.state()).rejections
        assert len(rejections) == 4, rejections
        return rejections

    rejections = await assert_eventually(four_rejections)
    assert [(r.task_id, r.user) for r in rejections] == [(task_id, "eve")] * 4
    assert all(r.reason.startswith("PermissionDeniedError") for r in rejections), rejections
    state = await handle.state()
    assert [(t.task_id, t.status, t.claimed_by, t.assignee_id) for t in state.tasks] == [
        (task_id, TaskStatus.PENDING, None, ANN)
    ]
    assert state.tasks[0].comments == []
    assert await lab.row(row.id) == row
    assert (await lab.queries.task_comments(row.id)).items == []
    assert (await lab.queries.task_assignments(row.id)).items == []

    # An administrator's signal is accepted.
    await raw.signal(
        "complete_task", sign(raw.id, "complete", {"task_id": task_id, "data": {"approved": False}, **ROOT})
    )
    assert await handle.result() == Resolution(outcome="answered", approved=False, score=3, note="")
    assert (await lab.row(row.id)).completed_by == "root"


# -- 6. forms -----------------------------------------------------------------------------------------


async def test_form_schema_is_stored_and_invalid_data_lists_each_field(
    lab: Lab, assert_eventually: Eventually, sign: Sign
) -> None:
    handle = await lab.start("group")
    row = await lab.pending_row(handle, assert_eventually)
    assert row.form_schema == Verdict.model_json_schema()
    assert row.form_schema is not None and row.form_schema["required"] == ["approved"]
    assert set(row.form_schema["properties"]) == {"approved", "score", "note"}
    before = await commands_received(handle)

    with pytest.raises(FormValidationError) as invalid:
        await lab.client.complete_task(row.id, {"approved": "perhaps", "score": 9, "note": "x" * 41}, **BOB)
    assert invalid.value.form_name == "Verdict"
    assert sorted(e["field"] for e in invalid.value.errors) == ["approved", "note", "score"]
    for name in ("approved", "note", "score"):
        assert name in str(invalid.value)
    with pytest.raises(FormValidationError) as missing:
        await lab.client.complete_task(row.id, {"score": 2}, **BOB)
    assert [(e["field"], e["type"]) for e in missing.value.errors] == [("approved", "missing")]

    assert await commands_received(handle) == before
    assert (await handle.state()).rejections == []
    assert await lab.row(row.id) == row

    # A forged completion with bad data is refused by the workflow, naming the same fields.
    forged = {"task_id": str(row.id), "data": {"approved": "perhaps", "score": 0}, **BOB}
    await handle.temporal.signal("complete_task", sign(handle.id, "complete", forged))

    async def refused() -> Any:
        rejections = (await handle.state()).rejections
        assert len(rejections) == 1, rejections  # signals are applied a moment later
        (rejection,) = rejections
        return rejection

    rejection = await assert_eventually(refused)
    assert rejection.reason.startswith("FormValidationError")
    assert sorted(e["field"] for e in rejection.errors) == ["approved", "score"]
    assert (await lab.row(row.id)).status is TaskStatus.PENDING

    await lab.client.complete_task(row.id, Verdict(approved=True, score=5, note="good"), **BOB)
    done = await lab.row(row.id)
    assert done.form_data == {"approved": True, "score": 5, "note": "good"}


# -- 7. deadlines -------------------------------------------------------------------------------------


async def test_reminder_calls_the_notification_hook(lab: Lab, assert_eventually: Eventually) -> None:
    handle = await lab.start("reminded")
    row = await lab.pending_row(handle, assert_eventually)
    assert row.reminder_at is not None and row.due_at is not None
    assert row.reminder_at - row.created_at == timedelta(seconds=1)
    assert row.due_at - row.created_at == timedelta(hours=1)

    def reminded() -> TaskInfo:
        mine = [t for t in lab.reminders if t.task_id == str(row.id)]
        assert len(mine) == 1, mine
        return mine[0]

    reminder = await assert_eventually(reminded, timeout=20)
    assert (reminder.title, reminder.assignee_id, reminder.due_at) == (row.title, ANN, row.due_at)
    assert (await lab.row(row.id)).status is TaskStatus.PENDING  # a reminder changes nothing

    await lab.client.complete_task(row.id, {"approved": True}, user=ANN)
    assert (await handle.result()).outcome == "answered"
    assert len([t for t in lab.reminders if t.task_id == str(row.id)]) == 1
    assert "dwf.send_reminder" in await _activity_types(handle)


async def test_due_in_sets_due_at_and_overdue_tasks_are_queryable(
    lab: Lab, assert_eventually: Eventually
) -> None:
    tenant = _tenant()
    handle = await lab.start("overdue", tenant_id=tenant)
    row = await lab.pending_row(handle, assert_eventually)
    assert row.due_at is not None and row.due_at - row.created_at == timedelta(seconds=1)
    assert row.reminder_at is None

    not_yet = await lab.queries.overdue_tasks(tenant_id=tenant, now=row.due_at)
    assert not_yet.items == []
    later = await lab.queries.overdue_tasks(tenant_id=tenant, now=row.due_at + timedelta(milliseconds=1))
    assert [t.id for t in later.items] == [row.id]

    async def overdue_now() -> None:
        page = await lab.queries.overdue_tasks(tenant_id=tenant, group=CLERKS)
        assert [t.id for t in page.items] == [row.id]

    await assert_eventually(overdue_now, timeout=20)
    # No due policy: the task stays pending, and an overdue task can still be completed.
    assert (await lab.row(row.id)).status is TaskStatus.PENDING
    await lab.client.complete_task(row.id, {"approved": True}, **BOB, tenant_id=tenant)
    assert (await lab.queries.overdue_tasks(tenant_id=tenant)).items == []


async def test_due_policy_escalate_reassigns_with_event_and_audit_row(
    lab: Lab, assert_eventually: Eventually
) -> None:
    handle = await lab.start("escalating")
    row = await lab.pending_row(handle, assert_eventually)
    assert (row.assignee_id, row.assignee_group) == (ANN, None)

    async def escalated() -> TaskRow:
        current = await lab.row(row.id)
        assert (current.assignee_id, current.assignee_group) == (BOSS, CHIEFS), current
        return current

    current = await assert_eventually(escalated, timeout=20)
    assert current.status is TaskStatus.PENDING
    (event,) = lab.events_of(handle, events.HumanTaskReassigned)
    assert (event.from_assignee, event.to_assignee, event.to_assignee_id, event.to_assignee_group) == (
        ANN,
        BOSS,
        BOSS,
        CHIEFS,
    )
    assert event.reassigned_by == "system"
    assert event.reason is not None and "overdue" in event.reason
    assert row.due_at is not None and event.timestamp >= row.due_at
    (audit,) = (await lab.queries.task_assignments(row.id)).items
    assert (audit.action, audit.from_assignee, audit.to_assignee, audit.by_user, audit.reason) == (
        AssignmentAction.ESCALATE,
        ANN,
        BOSS,
        "system",
        event.reason,
    )
    assert audit.at == event.timestamp

    with pytest.raises(PermissionDeniedError):  # the task left ann
        await lab.client.complete_task(row.id, {"approved": True}, user=ANN)
    await lab.client.complete_task(
        row.id, {"approved": True, "note": "chief says yes"}, user="cid", groups=[CHIEFS]
    )
    assert (await handle.result()).note == "chief says yes"


async def test_due_policy_expire_raises_an_exception_the_workflow_catches(
    lab: Lab, assert_eventually: Eventually
) -> None:
    handle = await lab.start("expiring")
    row = await lab.pending_row(handle, assert_eventually)

    result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result == Resolution(outcome="expired", expired_task_id=str(row.id))
    expired = await lab.row(row.id)
    assert expired.status is TaskStatus.EXPIRED
    assert expired.completed_at is not None and row.due_at is not None and expired.completed_at >= row.due_at
    assert expired.form_data is None
    (task,) = (await handle.state()).tasks
    assert task.status is TaskStatus.EXPIRED

    with pytest.raises(TaskNotPendingError) as not_pending:
        await lab.client.complete_task(row.id, {"approved": True}, user=ANN)
    assert not_pending.value.status == "expired"
    assert await lab.row(row.id) == expired

    async def instance_done() -> None:
        assert (await lab.instance_row(handle)).status is WorkflowStatus.COMPLETED

    await assert_eventually(instance_done)


async def test_due_policy_complete_uses_the_default_value(lab: Lab, assert_eventually: Eventually) -> None:
    handle = await lab.start("defaulting")
    row = await lab.pending_row(handle, assert_eventually)

    result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result == Resolution(outcome="answered", approved=False, score=1, note="no answer in time")
    done = await lab.row(row.id)
    assert (done.status, done.completed_by) == (TaskStatus.COMPLETED, "system")
    assert done.form_data == {"approved": False, "score": 1, "note": "no answer in time"}
    (completed,) = lab.events_of(handle, events.HumanTaskCompleted)
    assert completed.completed_by == "system"


# -- 8. instance control ------------------------------------------------------------------------------


async def test_cancel_marks_pending_tasks_canceled_in_sql_and_in_state(
    lab: Lab, assert_eventually: Eventually
) -> None:
    tenant = _tenant()
    handle = await lab.start("group", tenant_id=tenant)
    row = await lab.pending_row(handle, assert_eventually)
    assert [t.id for t in (await lab.queries.inbox("bob", [CLERKS], tenant_id=tenant)).items] == [row.id]

    await lab.client.cancel(handle.id, reason="duplicate", by="ops", tenant_id=tenant)

    async def canceled() -> TaskRow:
        current = await lab.row(row.id)
        assert current.status is TaskStatus.CANCELED, current
        instance = await lab.instance_row(handle)
        assert instance.status is WorkflowStatus.CANCELED, instance
        assert instance.error == "canceled: duplicate (by ops)"
        return current

    current = await assert_eventually(canceled)
    assert current.completed_by is None
    state = await handle.state()
    assert state.status is WorkflowStatus.CANCELED
    assert [(t.task_id, t.status) for t in state.tasks] == [(str(row.id), TaskStatus.CANCELED)]
    (event,) = lab.events_of(handle, events.WorkflowCanceled)
    assert (event.reason, event.canceled_by, event.current_step) == ("duplicate", "ops", "lc_to_group")
    # Documented: a canceled instance keeps the step where it stopped, in SQL and in the state.
    assert (await lab.instance_row(handle)).current_step == state.current_step == "lc_to_group"

    with pytest.raises(TaskNotPendingError, match="canceled"):
        await lab.client.complete_task(row.id, {"approved": True}, **BOB, tenant_id=tenant)
    assert (await lab.queries.inbox("bob", [CLERKS], tenant_id=tenant)).items == []


async def test_pause_holds_before_the_next_step_and_resume_continues(
    lab: Lab, assert_eventually: Eventually
) -> None:
    handle = await lab.start(gated=True)
    row = await lab.pending_row(handle, assert_eventually)

    async def instance_status(expected: WorkflowStatus) -> None:
        instance = await lab.instance_row(handle)
        assert instance.status is expected, instance

    await handle.pause(by="ops", reason="audit")
    await handle.pause(by="ops", reason="audit")  # a second pause changes nothing
    await assert_eventually(lambda: instance_status(WorkflowStatus.PAUSED))
    state = await handle.state()
    assert (state.status, state.paused, state.current_step) == (WorkflowStatus.PAUSED, True, "lc_gate")
    (paused,) = lab.events_of(handle, events.WorkflowPaused)
    assert (paused.reason, paused.paused_at_step) == ("audit", "lc_gate")

    # A paused instance still takes the answer to its current task, but holds before its next step.
    await lab.client.complete_task(row.id, {"approved": True}, **BOB)
    assert (await lab.row(row.id)).status is TaskStatus.COMPLETED
    state = await handle.state()
    assert (state.status, state.paused, state.current_step) == (WorkflowStatus.PAUSED, True, "lc_gate")
    assert state.pending_tasks == []
    assert "lc_after_gate" not in await _activity_types(handle)
    assert [e.step_name for e in lab.events_of(handle, events.StepStarted)] == ["lc_gate"]
    assert handle.instance_id is not None
    steps = (await lab.queries.step_history(handle.instance_id)).items
    assert [s.step_name for s in steps] == ["lc_gate"]
    await instance_status(WorkflowStatus.PAUSED)

    await handle.resume(by="ops")
    subject = row.title.removeprefix("Gate ")
    assert await asyncio.wait_for(handle.result(), timeout=30) == f"processed {subject}: approved=True"
    (resumed,) = lab.events_of(handle, events.WorkflowResumed)
    assert (resumed.resumed_by, resumed.resuming_at_step) == ("ops", "lc_gate")
    await assert_eventually(lambda: instance_status(WorkflowStatus.COMPLETED))
    steps = (await lab.queries.step_history(handle.instance_id)).items
    assert [s.step_name for s in steps] == ["lc_gate", "lc_after_gate"]
    assert steps[1].started_at >= resumed.timestamp


async def test_resume_sets_the_instance_running_again(lab: Lab, assert_eventually: Eventually) -> None:
    handle = await lab.start(gated=True)
    row = await lab.pending_row(handle, assert_eventually)

    async def instance_status(expected: set[WorkflowStatus]) -> None:
        instance = await lab.instance_row(handle)
        assert instance.status in expected, instance

    await handle.pause(by="ops")
    await assert_eventually(lambda: instance_status({WorkflowStatus.PAUSED}))
    await handle.resume(by="ops")
    # Resumed while still waiting on its task: running (or waiting on the human), not paused.
    await assert_eventually(lambda: instance_status({WorkflowStatus.RUNNING, WorkflowStatus.WAITING}))
    state = await handle.state()
    assert (state.status, state.paused) == (WorkflowStatus.WAITING, False)  # its task is still out
    assert len(lab.events_of(handle, events.WorkflowResumed)) == 1

    await lab.client.complete_task(row.id, {"approved": False}, **BOB)
    assert (await handle.result()).endswith("approved=False")
    await assert_eventually(lambda: instance_status({WorkflowStatus.COMPLETED}))


# -- 9. multi-tenancy ---------------------------------------------------------------------------------


async def test_tenants_see_and_touch_only_their_own_tasks_and_instances(
    lab: Lab, assert_eventually: Eventually, sign: Sign
) -> None:
    acme, globex = _tenant(), _tenant()
    mine = await lab.start("group", tenant_id=acme)
    theirs = await lab.start("group", tenant_id=globex)
    row = await lab.pending_row(mine, assert_eventually)
    other_row = await lab.pending_row(theirs, assert_eventually)
    assert (row.tenant_id, other_row.tenant_id) == (acme, globex)
    assert mine.instance_id is not None

    # Every query is scoped.
    assert [t.id for t in (await lab.queries.inbox("bob", [CLERKS], tenant_id=acme)).items] == [row.id]
    assert [t.id for t in (await lab.queries.inbox("bob", [CLERKS], tenant_id=globex)).items] == [
        other_row.id
    ]
    assert [t.id for t in (await lab.queries.pending_tasks(tenant_id=acme)).items] == [row.id]
    assert [i.workflow_id for i in (await lab.queries.instances(tenant_id=acme)).items] == [mine.id]
    for read in (lab.queries.get_task, lab.queries.task_comments, lab.queries.task_assignments):
        with pytest.raises(TaskNotFoundError):
            await read(row.id, tenant_id=globex)
    with pytest.raises(InstanceNotFoundError):
        await lab.queries.get_instance(mine.instance_id, tenant_id=globex)
    with pytest.raises(InstanceNotFoundError):
        await lab.queries.instance_tasks(mine.instance_id, tenant_id=globex)
    assert (await lab.queries.get_task(row.id, tenant_id=acme)) == row

    # Commands on the other tenant's task are refused as not found, found by id or by workflow id.
    before = await commands_received(mine)
    instance_before = await lab.instance_row(mine)
    for workflow_id in (None, mine.id):
        scope = {"tenant_id": globex, "workflow_id": workflow_id}
        with pytest.raises(TaskNotFoundError):
            await lab.client.complete_task(row.id, {"approved": True}, **BOB, **scope)
        with pytest.raises(TaskNotFoundError):
            await lab.client.claim_task(row.id, **BOB, **scope)
        with pytest.raises(TaskNotFoundError):
            await lab.client.comment_task(row.id, "hi", **BOB, **scope)
        with pytest.raises(TaskNotFoundError):
            await lab.client.reassign_task(row.id, to_user="x", reason="r", **ROOT, **scope)
    foreign = lab.client.get_instance(mine.id, tenant_id=globex)
    for command in (foreign.cancel, foreign.pause, foreign.resume, foreign.state, foreign.describe):
        with pytest.raises(InstanceNotFoundError):
            await command()
    with pytest.raises(InstanceNotFoundError):
        await lab.client.cancel(mine.id, tenant_id=globex)

    assert await commands_received(mine) == before
    state = await mine.state()
    assert (state.status, state.paused, state.rejections) == (WorkflowStatus.WAITING, False, [])
    assert await lab.row(row.id) == row
    assert await lab.instance_row(mine) == instance_before

    # A forged command naming the wrong tenant is refused by the workflow as not found.
    forged = {"task_id": str(row.id), "data": {"approved": True}, "tenant_id": globex, **ROOT}
    await mine.temporal.signal("complete_task", sign(mine.id, "complete", forged))

    async def refused() -> Any:
        rejections = (await mine.state()).rejections
        assert len(rejections) == 1, rejections  # signals are applied a moment later
        (rejection,) = rejections
        return rejection

    assert (await assert_eventually(refused)).reason.startswith("TaskNotFoundError")
    assert (await lab.row(row.id)).status is TaskStatus.PENDING

    # Its own tenant may act.
    await lab.client.complete_task(row.id, {"approved": True}, **BOB, tenant_id=acme)
    assert (await mine.result()).approved is True
    assert (await lab.row(other_row.id)).status is TaskStatus.PENDING
    await lab.client.get_instance(theirs.id, tenant_id=globex).cancel(reason="done testing")


# -- 10. clear errors, nothing changed ----------------------------------------------------------------


async def test_each_refusal_raises_its_own_error_and_changes_nothing(
    lab: Lab, assert_eventually: Eventually
) -> None:
    tenant = _tenant()
    handle = await lab.start("group", tenant_id=tenant)
    row = await lab.pending_row(handle, assert_eventually)
    instance_before = await lab.instance_row(handle)
    before = await commands_received(handle)

    own = {"tenant_id": tenant}
    refusals: list[tuple[type[Exception], Callable[[], Awaitable[Any]]]] = [
        (TaskNotFoundError, lambda: lab.client.complete_task(uuid.uuid4(), {"approved": True}, **BOB, **own)),
        (
            TaskNotFoundError,
            lambda: lab.client.complete_task("not-a-task-id", {"approved": True}, **BOB, **own),
        ),
        (TaskNotFoundError, lambda: lab.client.claim_task(uuid.uuid4(), **BOB, **own)),
        (PermissionDeniedError, lambda: lab.client.complete_task(row.id, {"approved": True}, **EVE, **own)),
        (PermissionDeniedError, lambda: lab.client.complete_task(row.id, {"approved": True}, user="", **own)),
        # Leaving the tenant out does not switch tenancy off: the task is not found.
        (TaskNotFoundError, lambda: lab.client.complete_task(row.id, {"approved": True}, **BOB)),
        (
            TaskNotFoundError,
            lambda: lab.client.complete_task(row.id, {"approved": True}, **BOB, tenant_id="other"),
        ),
        (FormValidationError, lambda: lab.client.complete_task(row.id, {"approved": "maybe"}, **BOB, **own)),
    ]
    for expected, attempt in refusals:
        with pytest.raises(expected):
            await attempt()
    assert await commands_received(handle) == before
    state = await handle.state()
    assert state.rejections == []
    assert [(t.task_id, t.status) for t in state.tasks] == [(str(row.id), TaskStatus.PENDING)]
    assert await lab.row(row.id) == row
    assert await lab.instance_row(handle) == instance_before

    await lab.client.complete_task(row.id, {"approved": True}, **BOB, tenant_id=tenant)
    assert (await handle.result()).approved is True
    done = await lab.row(row.id)
    commands = await commands_received(handle)

    # A second completion, by the same user or anyone else, and any other command: not pending.
    again: list[Callable[[], Awaitable[Any]]] = [
        lambda: lab.client.complete_task(row.id, {"approved": False}, **BOB, tenant_id=tenant),
        lambda: lab.client.complete_task(row.id, {"approved": False}, **ROOT, tenant_id=tenant),
        lambda: lab.client.claim_task(row.id, **CARA, tenant_id=tenant),
        lambda: lab.client.release_task(row.id, **BOB, tenant_id=tenant),
        lambda: lab.client.reassign_task(row.id, to_user="x", reason="late", **ROOT, tenant_id=tenant),
    ]
    for attempt in again:
        with pytest.raises(TaskNotPendingError) as not_pending:
            await attempt()
        assert not_pending.value.status == "completed"
    assert await lab.row(row.id) == done
    assert await commands_received(handle) == commands
    assert (await handle.state()).rejections == []


async def test_completing_the_last_task_answers_the_caller(lab: Lab, assert_eventually: Eventually) -> None:
    # The completion that lets the workflow finish must still be answered as accepted: the
    # workflow may not complete while the update that completed the task is still running.
    handles = [await lab.start("user") for _ in range(12)]
    rows = [await lab.pending_row(h, assert_eventually) for h in handles]
    answers: list[Any] = []
    for row in rows:
        try:
            answers.append(await lab.client.complete_task(row.id, {"approved": True}, user=ANN))
        except Exception as exc:  # collected, to report every failure at once
            answers.append(exc)
    assert [(a.status, a.completed_by) if isinstance(a, TaskInfo) else repr(a) for a in answers] == [
        (TaskStatus.COMPLETED, ANN)
    ] * len(rows)
    for handle, row in zip(handles, rows, strict=True):
        assert (await handle.result()).approved is True
        assert (await lab.row(row.id)).status is TaskStatus.COMPLETED
