"""Property-based fuzzing (hypothesis) of every entry point a sender controls, on both databases.

Marked ``fuzz`` (``-m "not fuzz"`` skips it); the examples are bounded (``DWF_FUZZ_EXAMPLES``,
default 100 per test and backend) so the module runs in about a minute. For each
backend one instance waits on a task; hypothesis then throws at it:

- client methods with arbitrary users, groups, tenants, ids, comments and form data;
- raw signals and updates on every name, signed or not, with arbitrary JSON payloads and
  argument counts;
- the mirror's query filters, with SQL metacharacters included.

Invariants: the client raises only the SDK's own errors; no workflow task ever fails; a refused
command changes no row; queries return rows or an SDK error, never a driver error; and the
instance still completes at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from sdk import DurableWorkflowError, InstanceHandle, TaskStatus, WorkflowClient, WorkflowStatus
from sdk.mirror import MirrorQueries, MirrorWriter, TaskRow
from tests.integration.support import DatabaseFactory
from tests.workflows import lifecycle
from tests.workflows.lifecycle import CLERKS, Ticket

pytestmark = pytest.mark.fuzz

Eventually = Callable[..., Awaitable[Any]]
Sign = Callable[..., dict[str, Any]]

SIGNALS = ["complete_task", "claim_task", "release_task", "reassign_task", "comment_task"]
SIGNALS += ["pause", "resume", "cancel_requested", "no_such_signal"]
UPDATES = [f"{name}_update" for name in SIGNALS[:5]]
FUZZ = settings(
    # 100 inputs per test and backend (800 in all) take about a minute; DWF_FUZZ_EXAMPLES says more.
    max_examples=int(os.environ.get("DWF_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text with what breaks databases and queries: NUL, quotes, SQL, wildcards, unicode.
nasty = st.sampled_from(["\x00", "'", '"', "%", "_", "\\", "; DROP TABLE x; --", "é", "✓", "\u2028", " "])
text = st.one_of(
    st.text(max_size=12), st.lists(st.one_of(nasty, st.text(max_size=3)), max_size=5).map("".join)
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_value = st.recursive(
    scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)


@dataclass
class Target:
    client: WorkflowClient
    queries: MirrorQueries
    handle: InstanceHandle[Any]
    row: TaskRow
    tenant: str


@pytest.fixture(name="target", scope="module")
async def fixture_target(
    backend: str, database_factory: DatabaseFactory, server: Any, new_worker: Any
) -> AsyncIterator[Target]:
    url = await database_factory.create(backend)
    writer = MirrorWriter.from_url(url)
    await writer.upgrade_schema()
    worker = new_worker(lifecycle.lifecycle_task, mirror=writer)
    client = await WorkflowClient.connect(server.target, database_url=url, task_queue=worker.task_queue)
    tenant = f"fuzz-{uuid.uuid4().hex[:6]}"
    try:
        async with worker:
            handle = await client.start(
                lifecycle.lifecycle_task, Ticket(subject="fuzz", route="group"), tenant_id=tenant
            )

            task = await handle.next_task(timeout=30)  # its row is committed before it waits
            row = await client.queries.get_task(task.task_id)
            yield Target(client, client.queries, handle, row, tenant)
            # Still alive after everything: a valid command completes it.
            assert await _failed_tasks(handle) == 0
            await client.complete_task(
                row.id, {"approved": True}, user="bob", groups=[CLERKS], tenant_id=tenant
            )
            assert (await handle.result()).approved is True
    finally:
        await client.close()
        await writer.close()


async def _failed_tasks(handle: InstanceHandle[Any]) -> int:
    failed = EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    return len([e async for e in handle.temporal.fetch_history_events() if e.event_type == failed])


async def _unchanged(target: Target) -> None:
    assert await target.queries.get_task(target.row.id) == target.row
    state = await target.handle.state()
    assert state.status is not WorkflowStatus.FAILED and not state.paused
    assert [t.status for t in state.tasks] == [TaskStatus.PENDING]


@FUZZ
@given(
    action=st.sampled_from(["complete", "claim", "release", "reassign", "comment"]),
    user=text,
    groups=st.lists(text, max_size=2),
    tenant=st.one_of(st.none(), text),
    data=st.dictionaries(text, json_value, max_size=3),
    body=text,
    own_task=st.booleans(),
)
async def test_client_methods_raise_only_sdk_errors_and_change_nothing(
    target: Target,
    action: str,
    user: str,
    groups: list[str],
    tenant: str | None,
    data: dict[str, Any],
    body: str,
    own_task: bool,
) -> None:
    task_id: Any = target.row.id if own_task else body
    client = target.client
    # No user of this module may act on the task (the group is "clerks"; "bob" is not used).
    groups = [g for g in groups if g != CLERKS]
    user = user if user != "bob" else "bobby"
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "complete": lambda: client.complete_task(task_id, data, user=user, groups=groups, tenant_id=tenant),
        "claim": lambda: client.claim_task(task_id, user=user, groups=groups, tenant_id=tenant),
        "release": lambda: client.release_task(task_id, user=user, groups=groups, tenant_id=tenant),
        "reassign": lambda: client.reassign_task(
            task_id, user=user, to_user=body, reason=body, groups=groups, tenant_id=tenant
        ),
        "comment": lambda: client.comment_task(task_id, body, user=user, groups=groups, tenant_id=tenant),
    }
    with pytest.raises(DurableWorkflowError):
        await calls[action]()
    await _unchanged(target)


@FUZZ
@given(
    name=st.sampled_from(SIGNALS),
    args=st.lists(json_value, max_size=3),
    signed=st.booleans(),
    fields=st.dictionaries(
        st.sampled_from(["task_id", "user", "groups", "admin", "tenant_id", "data", "body"]), json_value
    ),
)
async def test_raw_signals_never_fail_a_workflow_task(
    target: Target, sign: Sign, name: str, args: list[Any], signed: bool, fields: dict[str, Any]
) -> None:
    payload: dict[str, Any] = {"task_id": str(target.row.id), "user": "mallory", **fields}
    if signed:  # a signed sender without permission: the workflow's own checks refuse it
        payload = {**payload, "user": "mallory", "admin": False, "groups": []}
        payload = sign(target.handle.id, name.removesuffix("_task"), payload)
    raw = target.client.temporal.get_workflow_handle(target.handle.id)
    try:
        await raw.signal(name, args=[payload, *args] if args or not signed else [payload])
    except Exception as exc:  # only the client's own encoder may refuse (not JSON-able)
        assert "serializ" in str(exc).lower() or "encode" in str(exc).lower(), exc
    await _unchanged(target)
    assert await _failed_tasks(target.handle) == 0


@FUZZ
@given(name=st.sampled_from(UPDATES), args=st.lists(json_value, max_size=3))
async def test_raw_updates_are_refused_with_a_typed_failure(
    target: Target, name: str, args: list[Any]
) -> None:
    raw = target.client.temporal.get_workflow_handle(target.handle.id)
    try:
        await raw.execute_update(name, args=args)
    except WorkflowUpdateFailedError as exc:
        assert getattr(exc.cause, "type", None) is not None, exc.cause
    except Exception as exc:  # the client's own encoder
        assert "serializ" in str(exc).lower() or "encode" in str(exc).lower(), exc
    else:
        raise AssertionError(f"an unsigned update {name} was accepted")
    await _unchanged(target)


@FUZZ
@given(
    tenant=st.one_of(st.none(), text),
    name=st.one_of(st.none(), text),
    user=text,
    group=text,
)
async def test_query_filters_return_rows_or_sdk_errors(
    target: Target, tenant: str | None, name: str | None, user: str, group: str
) -> None:
    queries = target.queries
    for call in (
        lambda: queries.instances(tenant_id=tenant, workflow_name=name),
        lambda: queries.inbox(user, [group], tenant_id=tenant),
        lambda: queries.pending_tasks(tenant_id=tenant),
    ):
        try:
            page = await call()
        except DurableWorkflowError:
            continue
        # No filter value reaches another tenant's rows, nor injects SQL.
        if tenant is not None and tenant != target.tenant:
            assert page.items == [], page.items
    await _unchanged(target)
