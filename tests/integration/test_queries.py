"""The query API on SQLite and PostgreSQL: filters, tenant scoping, total order, pages, counts.

One data set per backend is inserted directly with the models; every test only reads it. The
expected results are computed from the data set in Python, with the order the API documents.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sdk._errors import InstanceNotFoundError, NotFoundError, TaskNotFoundError
from sdk._types import StepStatus, StepType, TaskStatus, WorkflowStatus
from sdk.mirror import (
    AssignmentAction,
    HumanTaskModel,
    MirrorQueries,
    Page,
    StepExecutionModel,
    TaskAssignmentModel,
    TaskCommentModel,
    TaskRow,
    WorkflowDefinitionModel,
    WorkflowInstanceModel,
)

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
PENDING, COMPLETED = TaskStatus.PENDING.value, TaskStatus.COMPLETED.value


@dataclass
class DataSet:
    """What was inserted, by a short name, so tests can state expectations in Python."""

    instances: dict[str, WorkflowInstanceModel] = field(default_factory=dict)
    tasks: dict[str, HumanTaskModel] = field(default_factory=dict)
    steps: dict[str, StepExecutionModel] = field(default_factory=dict)
    comments: dict[str, TaskCommentModel] = field(default_factory=dict)
    assignments: dict[str, TaskAssignmentModel] = field(default_factory=dict)

    def task_names(self, rows: Sequence[TaskRow]) -> list[str]:
        by_id = {task.id: name for name, task in self.tasks.items()}
        return [by_id[row.id] for row in rows]

    def ordered_tasks(self, keep: Callable[[HumanTaskModel], bool]) -> list[str]:
        """Names of matching tasks in the documented order: due (undated last), created, id."""
        chosen = [(name, t) for name, t in self.tasks.items() if keep(t)]
        chosen.sort(
            key=lambda item: (item[1].due_at is None, item[1].due_at or T0, item[1].created_at, item[1].id)
        )
        return [name for name, _ in chosen]

    def instance_names(self, rows: Sequence[Any]) -> list[str]:
        by_id = {instance.id: name for name, instance in self.instances.items()}
        return [by_id[row.id] for row in rows]

    def ordered_instances(self, keep: Callable[[WorkflowInstanceModel], bool]) -> list[str]:
        """Names of matching instances, newest first (created_at, then id, descending)."""
        chosen = [(name, i) for name, i in self.instances.items() if keep(i)]
        chosen.sort(key=lambda item: (item[1].created_at, item[1].id), reverse=True)
        return [name for name, _ in chosen]


def _build() -> tuple[list[Any], DataSet]:
    data = DataSet()
    definitions = {
        name: WorkflowDefinitionModel(id=uuid.uuid4(), name=name, version="1.0.0")
        for name in ("expense", "onboarding")
    }

    def instance(
        name: str,
        workflow: str,
        tenant: str | None,
        status: WorkflowStatus,
        created_by: str | None,
        created: datetime,
        started: datetime | None = None,
        workflow_id: str | None = None,
    ) -> None:
        key = uuid.uuid4()
        data.instances[name] = WorkflowInstanceModel(
            id=key,
            definition_id=definitions[workflow].id,
            workflow_name=workflow,
            workflow_version="1.0.0",
            status=status,
            tenant_id=tenant,
            created_by=created_by,
            started_at=started or created,
            created_at=created,
            updated_at=created,
            workflow_id=workflow_id or f"{workflow}-{name}",
            run_id=str(key),
            metadata_={"name": name},
        )

    instance("i1", "expense", "acme", WorkflowStatus.RUNNING, "ann", T0)
    instance("i2", "expense", "acme", WorkflowStatus.COMPLETED, "bob", T0 + H)
    instance("i3", "onboarding", "acme", WorkflowStatus.WAITING, "ann", T0 + 2 * H, started=T0 + 5 * H)
    instance("i4", "expense", "acme", WorkflowStatus.RUNNING, "ann", T0 + 2 * H)  # ties i3 on created_at
    instance("g1", "expense", "globex", WorkflowStatus.RUNNING, "ann", T0 + H / 2)
    instance("n1", "expense", None, WorkflowStatus.FAILED, None, T0 + 3 * H)
    # A second run of i1's workflow id (continue-as-new): the newest run wins the lookup.
    instance("i1b", "expense", "acme", WorkflowStatus.RUNNING, "ann", T0 + 4 * H, workflow_id="expense-i1")

    step_of: dict[str, uuid.UUID] = {}
    for name in data.instances:
        step = StepExecutionModel(
            id=uuid.uuid4(),
            instance_id=data.instances[name].id,
            step_name="approve",
            step_type=StepType.HUMAN,
            status=StepStatus.WAITING,
            started_at=T0,
        )
        step_of[name] = step.id
        data.steps[f"{name}-approve"] = step

    # The history of i1: started_at first, then step_seq (undated sequence last), then id.
    for name, started, seq in (
        ("s3", T0 + 10 * H, 3),
        ("s2", T0 + 10 * H, 2),
        ("s0", T0 - H, None),
        ("snull", T0 + 10 * H, None),
        ("s4", T0 + 11 * H, 4),
    ):
        data.steps[name] = StepExecutionModel(
            id=uuid.uuid4(),
            instance_id=data.instances["i1"].id,
            step_name=name,
            step_type=StepType.MACHINE,
            status=StepStatus.SUCCEEDED,
            started_at=started,
            step_seq=seq,
            attempts=1,
        )

    def task(
        name: str,
        instance_name: str,
        *,
        user: str | None = None,
        group: str | None = None,
        due: datetime | None = None,
        created: datetime = T0,
        status: str = PENDING,
        claimed_by: str | None = None,
    ) -> None:
        owner = data.instances[instance_name]
        data.tasks[name] = HumanTaskModel(
            id=uuid.uuid4(),
            instance_id=owner.id,
            step_execution_id=step_of[instance_name],
            step_name="approve",
            title=f"Task {name}",
            assignee_id=user,
            assignee_group=group,
            due_at=due,
            status=status,
            tenant_id=owner.tenant_id,
            workflow_id=owner.workflow_id,
            claimed_by=claimed_by,
            created_at=created,
            updated_at=created,
            form_schema={"type": "object"},
        )

    task("t1", "i1", user="alice", due=T0 + 24 * H)
    task("t2", "i1", group="managers", due=T0 + 2 * H, created=T0)
    task("t10", "i2", group="managers", due=T0 + 2 * H, created=T0 + H)  # same due as t2, created later
    task("t11", "i2", group="managers", due=T0 + 2 * H, created=T0 + H)  # ties t10: id decides
    task("t12", "i2", group="managers", due=T0 + 2 * H, created=T0 + H)
    task("t3", "i1", group="managers")  # no due date: last
    task("t4", "i2", group="finance", due=T0 + H, claimed_by="bob")
    task("t5", "i2", user="bob", due=T0 + H / 2)
    task("t6", "i1", user="alice", due=T0 - 24 * H, status=COMPLETED)
    task("t7", "i3", group="managers", due=T0 - 2 * H)  # overdue at T0
    task("t13", "i3", group="managers", due=T0 + 3 * H, claimed_by="carol")
    task("t14", "i3", group="managers", due=T0 + 4 * H, claimed_by="alice")
    task("t15", "i4", user="alice", group="finance", due=T0 + 5 * H)
    task("t8", "g1", user="alice", due=T0 + H)
    task("t9", "g1", group="managers", due=T0 - H)
    task("tn", "n1", group="managers", due=T0 - 3 * H)

    for name, author, posted in (("c2", "bob", T0 + 2 * H), ("c1", "ann", T0 + H), ("c3", "cy", T0 + 2 * H)):
        data.comments[name] = TaskCommentModel(
            id=uuid.uuid4(),
            task_id=data.tasks["t2"].id,
            instance_id=data.instances["i1"].id,
            author=author,
            body=f"comment {name}",
            posted_at=posted,
            created_at=T0,
            updated_at=T0,
        )
    data.comments["cg"] = TaskCommentModel(
        task_id=data.tasks["t8"].id, instance_id=data.instances["g1"].id, author="x", body="y", posted_at=T0
    )
    for name, action, to, at in (
        ("a2", AssignmentAction.REASSIGN, "finance", T0 + 2 * H),
        ("a1", AssignmentAction.CLAIM, "bob", T0 + H),
        ("a3", AssignmentAction.ESCALATE, "ceo", T0 + 3 * H),
    ):
        data.assignments[name] = TaskAssignmentModel(
            id=uuid.uuid4(), task_id=data.tasks["t4"].id, action=action, to_assignee=to, by_user="bob", at=at
        )

    rows: list[Any] = [
        *definitions.values(),
        *data.instances.values(),
        *data.steps.values(),
        *data.tasks.values(),
        *data.comments.values(),
        *data.assignments.values(),
    ]
    return rows, data


@pytest.fixture(name="data", scope="module")
async def fixture_data(sessions: async_sessionmaker[AsyncSession]) -> DataSet:
    rows, data = _build()
    async with sessions() as session:
        for group in (rows[:2], [r for r in rows if isinstance(r, WorkflowInstanceModel)]):
            session.add_all(group)
            await session.flush()
        session.add_all([r for r in rows if isinstance(r, StepExecutionModel)])
        await session.flush()
        session.add_all([r for r in rows if isinstance(r, HumanTaskModel)])
        await session.flush()
        session.add_all([r for r in rows if isinstance(r, TaskCommentModel | TaskAssignmentModel)])
        await session.commit()
    return data


@pytest.fixture(name="queries", scope="module")
def fixture_queries(sessions: async_sessionmaker[AsyncSession]) -> MirrorQueries:
    return MirrorQueries(sessions)


async def _all_pages(fetch: Callable[[int, int], Any], size: int) -> tuple[list[Any], set[int]]:
    items: list[Any] = []
    totals: set[int] = set()
    offset = 0
    while True:
        page = await fetch(size, offset)
        assert len(page.items) <= size and (page.limit, page.offset) == (size, offset)
        items.extend(page.items)
        totals.add(page.total)
        if not page.has_more:
            return items, totals
        offset += size


# -- inbox and task lists --------------------------------------------------------------------


def _pending(tenant: str | None) -> Callable[[HumanTaskModel], bool]:
    return lambda t: t.status == PENDING and (tenant is None or t.tenant_id == tenant)


async def test_inbox_is_the_users_tasks_and_their_groups_tasks(data: DataSet, queries: MirrorQueries) -> None:
    page = await queries.inbox("alice", ["managers"], tenant_id="acme")
    expected = data.ordered_tasks(
        lambda t: _pending("acme")(t) and (t.assignee_id == "alice" or t.assignee_group == "managers")
    )
    assert data.task_names(page.items) == expected
    assert expected[:2] == ["t7", "t2"] and expected[-1] == "t3"
    assert page.total == len(expected) == 10
    assert not page.has_more


async def test_inbox_ties_break_by_created_at_then_id(data: DataSet, queries: MirrorQueries) -> None:
    names = data.task_names((await queries.inbox("nobody", ["managers"], tenant_id="acme")).items)
    same_due = [n for n in names if n in {"t2", "t10", "t11", "t12"}]
    tied = sorted(["t10", "t11", "t12"], key=lambda n: data.tasks[n].id)
    assert same_due == ["t2", *tied]


async def test_inbox_without_groups_or_tenant(data: DataSet, queries: MirrorQueries) -> None:
    direct = await queries.inbox("alice", tenant_id="acme")
    assert data.task_names(direct.items) == ["t15", "t1"]
    everywhere = await queries.inbox("alice")
    assert data.task_names(everywhere.items) == data.ordered_tasks(
        lambda t: t.status == PENDING and t.assignee_id == "alice"
    )
    assert "t8" in data.task_names(everywhere.items)
    assert (await queries.inbox("alice", ["nope"], tenant_id="globex")).total == 1


async def test_inbox_can_hide_tasks_claimed_by_others(data: DataSet, queries: MirrorQueries) -> None:
    shown = data.task_names((await queries.inbox("alice", ["managers"], tenant_id="acme")).items)
    assert {"t13", "t14"} <= set(shown)
    hidden = await queries.inbox("alice", ["managers"], tenant_id="acme", include_claimed_by_others=False)
    names = data.task_names(hidden.items)
    assert "t13" not in names and "t14" in names  # carol's claim hides t13; alice's own claim stays
    assert names == [n for n in shown if n != "t13"] and hidden.total == len(shown) - 1


async def test_inbox_due_before(data: DataSet, queries: MirrorQueries) -> None:
    page = await queries.inbox("alice", ["managers"], tenant_id="acme", due_before=T0 + 2 * H)
    assert data.task_names(page.items) == ["t7"]


async def test_inbox_pages_cover_the_result_exactly_once(data: DataSet, queries: MirrorQueries) -> None:
    full = await queries.inbox("alice", ["managers", "finance"], tenant_id="acme")
    for size in (1, 2, 3, 7):
        items, totals = await _all_pages(
            lambda limit, offset: queries.inbox(
                "alice", ["managers", "finance"], tenant_id="acme", limit=limit, offset=offset
            ),
            size,
        )
        assert [t.id for t in items] == [t.id for t in full.items]
        assert totals == {full.total}
    beyond = await queries.inbox("alice", ["managers"], tenant_id="acme", limit=5, offset=100)
    assert beyond.items == [] and beyond.total == 10 and not beyond.has_more


_ORDER_KEYS: dict[str, Callable[[HumanTaskModel], Any]] = {
    "due": lambda t: (t.due_at is None, t.due_at or T0, t.created_at, t.id),
    "priority": lambda t: (-t.priority, t.due_at is None, t.due_at or T0, t.created_at, t.id),
    "follow_up": lambda t: (t.follow_up_at is None, t.follow_up_at or T0, -t.priority, t.created_at, t.id),
}


def _inbox_pages(
    queries: MirrorQueries, user: str, groups: list[str], tenant: str | None, claimed: bool, order_by: Any
) -> Callable[[int, int], Any]:
    def fetch(limit: int, offset: int) -> Any:
        return queries.inbox(
            user,
            groups,
            tenant_id=tenant,
            include_claimed_by_others=claimed,
            order_by=order_by,
            limit=limit,
            offset=offset,
        )

    return fetch


@pytest.mark.parametrize("order_by", sorted(_ORDER_KEYS))
async def test_inbox_pages_in_every_order(data: DataSet, queries: MirrorQueries, order_by: Any) -> None:
    # On PostgreSQL a page is read arm by arm (the user's tasks, each group's, their ballots),
    # each arm's first offset + limit rows: the same rows as the one OR, for every page size,
    # and a task in two arms (t15: alice's, in finance) only once.
    for user, groups, tenant, claimed in (
        ("alice", ["managers", "finance"], "acme", True),
        ("alice", ["finance", "managers"], None, False),
        ("bob", ["finance"], "acme", True),
        ("carol", [], None, True),
    ):
        chosen = [
            t
            for t in data.tasks.values()
            if _pending(tenant)(t)
            and (
                t.assignee_id == user
                or (t.assignee_group in groups and (claimed or t.claimed_by in (None, user)))
            )
        ]
        expected = [t.id for t in sorted(chosen, key=_ORDER_KEYS[order_by])]
        for size in (1, 2, 5, 50):
            fetch = _inbox_pages(queries, user, groups, tenant, claimed, order_by)
            items, totals = await _all_pages(fetch, size)
            assert [t.id for t in items] == expected, (user, groups, tenant, claimed, size)
            assert totals == {len(expected)}


async def test_task_lists_count_up_to_the_cap(
    data: DataSet, sessions: async_sessionmaker[AsyncSession]
) -> None:
    capped = MirrorQueries(sessions, total_cap=3)
    managers = data.ordered_tasks(
        lambda t: _pending("acme")(t) and (t.assignee_id == "alice" or t.assignee_group == "managers")
    )
    assert len(managers) == 10

    def inbox(limit: int, offset: int) -> Any:
        return capped.inbox("alice", ["managers"], tenant_id="acme", limit=limit, offset=offset)

    first = await inbox(2, 0)
    assert (first.total, first.total_exact, first.has_more) == (3, False, True)
    deeper = await inbox(2, 4)  # counted past this page's end, whatever the cap
    assert (deeper.total, deeper.total_exact, deeper.has_more) == (7, False, True)
    last = await inbox(2, 8)  # a full last page: counted, and all of it is below the bound
    assert (last.total, last.total_exact, last.has_more) == (10, True, False)
    tail = await inbox(3, 9)  # the tail: its end is the total
    assert (tail.total, tail.total_exact, data.task_names(tail.items)) == (10, True, managers[9:])
    items, totals = await _all_pages(inbox, 2)
    assert data.task_names(items) == managers and totals == {3, 5, 7, 9, 10}
    group = await capped.pending_tasks(tenant_id="acme", group="managers", limit=1)
    assert (group.total, group.total_exact, group.has_more) == (3, False, True)
    uncapped = MirrorQueries(sessions, total_cap=None)
    exact = await uncapped.pending_tasks(tenant_id="acme", group="managers", limit=1)
    assert exact.total_exact and exact.total == len(
        data.ordered_tasks(lambda t: _pending("acme")(t) and t.assignee_group == "managers")
    )
    instances = await capped.instances(limit=1)  # only the task lists are capped
    assert (instances.total, instances.total_exact) == (len(data.instances), True)
    assert first.model_dump()["total_exact"] is False
    with pytest.raises(ValueError, match="total_cap"):
        MirrorQueries(sessions, total_cap=0)


async def test_pending_tasks_filters(data: DataSet, queries: MirrorQueries) -> None:
    managers = await queries.pending_tasks(tenant_id="acme", group="managers")
    assert data.task_names(managers.items) == data.ordered_tasks(
        lambda t: _pending("acme")(t) and t.assignee_group == "managers"
    )
    both = await queries.pending_tasks(tenant_id="acme", group=["managers", "finance"], limit=3)
    assert both.total == len(
        data.ordered_tasks(lambda t: _pending("acme")(t) and t.assignee_group in {"managers", "finance"})
    )
    assert len(both.items) == 3 and both.has_more
    alice = await queries.pending_tasks(assignee_id="alice")
    assert data.task_names(alice.items) == ["t8", "t15", "t1"]
    alice_finance = await queries.pending_tasks(assignee_id="alice", group="finance")
    assert data.task_names(alice_finance.items) == ["t15"]
    soon = await queries.pending_tasks(tenant_id="acme", due_before=T0 + H)
    assert data.task_names(soon.items) == ["t7", "t5"]  # strictly before: t4 (due T0+1h) is not
    every = await queries.pending_tasks(limit=100)
    assert every.total == len(data.ordered_tasks(_pending(None)))
    assert data.task_names(every.items) == data.ordered_tasks(_pending(None))


async def test_pending_tasks_every_combination_of_filters(data: DataSet, queries: MirrorQueries) -> None:
    # Each combination of filters is its own prepared statement: none may leak into another.
    criteria: dict[str, tuple[Any, Callable[[HumanTaskModel], bool]]] = {
        "tenant_id": ("acme", lambda t: t.tenant_id == "acme"),
        "assignee_id": ("alice", lambda t: t.assignee_id == "alice"),
        "group": (["managers", "finance"], lambda t: t.assignee_group in {"managers", "finance"}),
        "due_before": (T0 + 3 * H, lambda t: t.due_at is not None and t.due_at < T0 + 3 * H),
    }
    for size in range(len(criteria) + 1):
        for chosen in itertools.combinations(criteria, size):
            kwargs = {name: criteria[name][0] for name in chosen}
            keeps = [criteria[name][1] for name in chosen]
            expected = data.ordered_tasks(
                lambda t, keeps=keeps: t.status == PENDING and all(keep(t) for keep in keeps)
            )
            page = await queries.pending_tasks(**kwargs, limit=3)
            assert data.task_names(page.items) == expected[:3], kwargs
            assert page.total == len(expected), kwargs


async def test_inbox_without_groups_has_no_claims_to_hide(data: DataSet, queries: MirrorQueries) -> None:
    shown = await queries.inbox("alice", tenant_id="acme")
    hidden = await queries.inbox("alice", tenant_id="acme", include_claimed_by_others=False)
    assert hidden == shown and data.task_names(hidden.items) == ["t15", "t1"]


async def test_overdue_tasks(data: DataSet, queries: MirrorQueries) -> None:
    assert data.task_names((await queries.overdue_tasks(now=T0, tenant_id="acme")).items) == ["t7"]
    assert data.task_names((await queries.overdue_tasks(now=T0)).items) == ["tn", "t7", "t9"]
    assert data.task_names((await queries.overdue_tasks(now=T0, group="finance")).items) == []
    # Without "now", the current time: every dated pending task of 2025 is overdue.
    assert (await queries.overdue_tasks(tenant_id="globex")).total == 2


async def test_get_task_is_tenant_scoped(data: DataSet, queries: MirrorQueries) -> None:
    t8 = data.tasks["t8"]
    row = await queries.get_task(t8.id, tenant_id="globex")
    assert (row.id, row.title, row.status, row.tenant_id) == (t8.id, "Task t8", TaskStatus.PENDING, "globex")
    assert row.due_at == T0 + H and row.due_at.tzinfo is UTC
    assert row.form_schema == {"type": "object"} and row.require_claim is False
    assert (await queries.get_task(str(t8.id))).id == t8.id
    for task_id, tenant in ((t8.id, "acme"), (uuid.uuid4(), None), ("not-a-uuid", None)):
        with pytest.raises(TaskNotFoundError) as info:
            await queries.get_task(task_id, tenant_id=tenant)
        assert isinstance(info.value, NotFoundError) and isinstance(info.value, LookupError)
        assert "globex" not in str(info.value)


async def test_instance_tasks(data: DataSet, queries: MirrorQueries) -> None:
    i1 = data.instances["i1"]
    page = await queries.instance_tasks(i1.id, tenant_id="acme")
    expected = sorted(
        (n for n, t in data.tasks.items() if t.instance_id == i1.id),
        key=lambda n: (data.tasks[n].created_at, data.tasks[n].id),
    )
    assert data.task_names(page.items) == expected and page.total == 4
    done = await queries.instance_tasks(i1.id, status=TaskStatus.COMPLETED)
    assert data.task_names(done.items) == ["t6"]
    either = await queries.instance_tasks(i1.id, status=[TaskStatus.COMPLETED, TaskStatus.PENDING])
    assert either.total == 4
    with pytest.raises(InstanceNotFoundError):
        await queries.instance_tasks(i1.id, tenant_id="globex")
    with pytest.raises(InstanceNotFoundError):
        await queries.instance_tasks(uuid.uuid4())


async def test_task_comments_in_order(data: DataSet, queries: MirrorQueries) -> None:
    t2 = data.tasks["t2"]
    page = await queries.task_comments(t2.id, tenant_id="acme")
    tied = sorted(["c2", "c3"], key=lambda n: data.comments[n].id)
    assert [c.id for c in page.items] == [data.comments[n].id for n in ["c1", *tied]]
    assert page.items[0].author == "ann" and page.items[0].posted_at == T0 + H and page.total == 3
    second = await queries.task_comments(t2.id, limit=1, offset=1)
    assert second.items == page.items[1:2] and second.total == 3
    with pytest.raises(TaskNotFoundError):
        await queries.task_comments(t2.id, tenant_id="globex")
    assert (await queries.task_comments(data.tasks["t1"].id)).total == 0


async def test_task_assignments_in_order(data: DataSet, queries: MirrorQueries) -> None:
    page = await queries.task_assignments(data.tasks["t4"].id, tenant_id="acme")
    assert [a.id for a in page.items] == [data.assignments[n].id for n in ("a1", "a2", "a3")]
    assert [a.action for a in page.items] == [
        AssignmentAction.CLAIM,
        AssignmentAction.REASSIGN,
        AssignmentAction.ESCALATE,
    ]
    with pytest.raises(TaskNotFoundError):
        await queries.task_assignments(data.tasks["t4"].id, tenant_id="globex")


# -- instances ---------------------------------------------------------------------------------


async def test_instances_filters_and_order(data: DataSet, queries: MirrorQueries) -> None:
    acme = await queries.instances(tenant_id="acme")
    assert data.instance_names(acme.items) == data.ordered_instances(lambda i: i.tenant_id == "acme")
    assert data.instance_names(acme.items)[0] == "i1b" and acme.total == 5
    tied = sorted(["i3", "i4"], key=lambda n: data.instances[n].id, reverse=True)
    assert data.instance_names(acme.items)[1:3] == tied

    cases: list[tuple[dict[str, Any], Callable[[WorkflowInstanceModel], bool]]] = [
        ({"status": WorkflowStatus.RUNNING}, lambda i: i.status == WorkflowStatus.RUNNING),
        (
            {"status": [WorkflowStatus.COMPLETED, WorkflowStatus.FAILED]},
            lambda i: i.status in {WorkflowStatus.COMPLETED, WorkflowStatus.FAILED},
        ),
        ({"workflow_name": "onboarding"}, lambda i: i.workflow_name == "onboarding"),
        ({"workflow_version": "2.0.0"}, lambda i: False),
        (
            {"created_by": "ann", "tenant_id": "acme"},
            lambda i: i.created_by == "ann" and i.tenant_id == "acme",
        ),
        (
            {"created_after": T0 + H, "created_before": T0 + 3 * H},
            lambda i: T0 + H <= i.created_at < T0 + 3 * H,
        ),
        ({"started_after": T0 + 4 * H}, lambda i: i.started_at >= T0 + 4 * H),
        ({"started_before": T0 + H / 2}, lambda i: i.started_at < T0 + H / 2),
        (
            {"tenant_id": "acme", "status": WorkflowStatus.RUNNING, "workflow_name": "expense"},
            lambda i: (
                i.tenant_id == "acme" and i.status == WorkflowStatus.RUNNING and i.workflow_name == "expense"
            ),
        ),
    ]
    for kwargs, keep in cases:
        page = await queries.instances(**kwargs)
        expected = data.ordered_instances(keep)
        assert data.instance_names(page.items) == expected, kwargs
        assert page.total == len(expected), kwargs


async def test_instances_pages(data: DataSet, queries: MirrorQueries) -> None:
    full = await queries.instances()
    assert full.total == len(data.instances)
    items, totals = await _all_pages(lambda limit, offset: queries.instances(limit=limit, offset=offset), 2)
    assert [i.id for i in items] == [i.id for i in full.items] and totals == {full.total}


async def test_get_instance_and_by_workflow_id(data: DataSet, queries: MirrorQueries) -> None:
    i1 = data.instances["i1"]
    row = await queries.get_instance(i1.id, tenant_id="acme")
    assert (row.id, row.workflow_id, row.run_id, row.status) == (
        i1.id,
        "expense-i1",
        str(i1.id),
        WorkflowStatus.RUNNING,
    )
    assert row.metadata == {"name": "i1"} and row.context_data == {} and row.last_event_seq == 0
    assert row.started_at == T0 and row.started_at.tzinfo is UTC
    with pytest.raises(InstanceNotFoundError):
        await queries.get_instance(i1.id, tenant_id="globex")
    with pytest.raises(InstanceNotFoundError):
        await queries.get_instance("garbage")

    latest = await queries.instance_by_workflow_id("expense-i1", tenant_id="acme")
    assert latest.id == data.instances["i1b"].id
    with pytest.raises(InstanceNotFoundError):
        await queries.instance_by_workflow_id("expense-i1", tenant_id="globex")
    with pytest.raises(InstanceNotFoundError):
        await queries.instance_by_workflow_id("nope")


async def test_step_history_order(data: DataSet, queries: MirrorQueries) -> None:
    i1 = data.instances["i1"]
    page = await queries.step_history(i1.id, tenant_id="acme")
    by_id = {s.id: n for n, s in data.steps.items()}
    assert [by_id[s.id] for s in page.items] == ["s0", "i1-approve", "s2", "s3", "snull", "s4"]
    assert page.items[2].step_type == StepType.MACHINE and page.items[2].step_seq == 2
    assert page.items[1].status == StepStatus.WAITING
    second = await queries.step_history(i1.id, limit=2, offset=2)
    assert second.items == page.items[2:4] and second.total == 6 and second.has_more
    with pytest.raises(InstanceNotFoundError):
        await queries.step_history(i1.id, tenant_id="globex")


# -- contract ----------------------------------------------------------------------------------


async def test_bad_arguments_are_rejected(queries: MirrorQueries) -> None:
    with pytest.raises(ValueError, match="limit"):
        await queries.pending_tasks(limit=0)
    with pytest.raises(ValueError, match="offset"):
        await queries.instances(offset=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        await queries.pending_tasks(due_before=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="created_after"):
        await queries.instances(created_after=datetime(2025, 1, 1))


async def test_rows_are_frozen_snapshots(data: DataSet, queries: MirrorQueries) -> None:
    page = await queries.inbox("alice", ["managers"], tenant_id="acme", limit=1)
    assert isinstance(page, Page) and isinstance(page.items[0], TaskRow)
    with pytest.raises(pydantic.ValidationError):
        page.items[0].title = "changed"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        page.total = 0  # type: ignore[misc]
    assert page.model_dump()["items"][0]["title"] == "Task t7"
