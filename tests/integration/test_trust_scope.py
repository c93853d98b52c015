"""Reads are scoped to a tenant like commands, and a signed command is accepted once (both databases).

One worker with the mirror per backend. Reads: a handle or client call that leaves the tenant
out reaches only instances started without one, through every read path (state, describe,
task, result, next_task, a task found by id); the instance's tenant and ``ALL_TENANTS`` read it.
Replays: a captured signed signal or update sent again from a raw temporalio handle, within its
time window, is refused and recorded, changes nothing, and the history still replays.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from sdk import (
    ALL_TENANTS,
    Identity,
    InstanceHandle,
    InstanceNotFoundError,
    PermissionDeniedError,
    TaskInfo,
    TaskNotFoundError,
    TaskStatus,
    WorkflowClient,
)
from tests.integration.trust_bench import Bench, fixture_bench  # noqa: F401  (the bench fixture)
from tests.workflows import lifecycle
from tests.workflows.lifecycle import CLERKS, Ticket
from worker import sandbox_runner

Eventually = Callable[..., Awaitable[Any]]
Sign = Callable[..., dict[str, Any]]

BOB = {"user": "bob", "groups": [CLERKS]}


def _tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


# -- tenant scope of reads ------------------------------------------------------------------------


async def test_leaving_the_tenant_out_reads_no_other_tenants_instance(
    bench: Bench, assert_eventually: Eventually
) -> None:
    tenant = _tenant()
    handle = await bench.start(tenant)
    row = await bench.pending_row(handle, assert_eventually)
    client = bench.client  # connected without a tenant
    for scoped in (client.get_instance(handle.id), client.get_instance(handle.id, tenant_id="other")):
        with pytest.raises(InstanceNotFoundError):
            await scoped.state()
        with pytest.raises(InstanceNotFoundError):
            await scoped.describe()
        with pytest.raises(TaskNotFoundError):
            await scoped.task(row.id)
        with pytest.raises(InstanceNotFoundError):
            await scoped.next_task(timeout=5)  # the mirror shows the task; the scope refuses it
        with pytest.raises(InstanceNotFoundError):
            await scoped.result()
    with pytest.raises(InstanceNotFoundError):
        await client.describe(handle.id)
    with pytest.raises(InstanceNotFoundError):
        await client.result(handle.id)
    with pytest.raises(TaskNotFoundError):
        await client.task_handle(row.id)  # found in the mirror, but another tenant's

    # The instance's own tenant and an administrator's ALL_TENANTS read it.
    own = client.get_instance(handle.id, tenant_id=tenant)
    assert (await own.state()).tenant_id == tenant
    assert (await own.next_task(timeout=5)).task_id == str(row.id)
    assert (await client.describe(handle.id, tenant_id=ALL_TENANTS)).tenant_id == tenant
    assert (await client.task_handle(row.id, tenant_id=tenant)).id == handle.id
    await own.cancel(reason="test over", by="ops")
    untenanted = await bench.start(None)  # without a tenant: an unscoped handle reads it
    assert (await client.get_instance(untenanted.id).next_task(timeout=10)).status is TaskStatus.PENDING
    await untenanted.cancel(reason="test over", by="ops")


async def test_a_client_with_an_identity_provider_reads_its_tenant_only(
    bench: Bench, assert_eventually: Eventually
) -> None:
    tenant = _tenant()
    users = {"bob": Identity(user="bob", groups=(CLERKS,), tenant_id=tenant)}
    app = await WorkflowClient.connect(
        bench.target,
        database_url=bench.database_url,
        task_queue=bench.task_queue,
        identity_provider=users.__getitem__,
        tenant_id=tenant,
    )
    try:
        mine = await app.start(lifecycle.lifecycle_task, Ticket(subject="mine", route="group"))
        other = _tenant()
        theirs = await bench.start(other)
        task = await app.get_instance(mine.id).next_task(timeout=10)
        assert (await app.describe(mine.id)).tenant_id == tenant
        with pytest.raises(InstanceNotFoundError):
            await app.describe(theirs.id)
        with pytest.raises(InstanceNotFoundError):
            await app.get_instance(theirs.id).state()
        for named in (other, ALL_TENANTS):  # a client bound to a tenant stays in it
            with pytest.raises(PermissionDeniedError, match="acts for tenant"):
                app.get_instance(theirs.id, tenant_id=named)
            with pytest.raises(PermissionDeniedError):
                await app.describe(theirs.id, tenant_id=named)
        # Its SQL queries too: the tenant left out means the client's, never "all".
        await bench.pending_row(theirs, assert_eventually)  # the other tenant's rows are there
        assert {row.tenant_id for row in (await app.queries.instances(limit=200)).items} == {tenant}
        with pytest.raises(InstanceNotFoundError):
            await app.queries.instance_by_workflow_id(theirs.id)
        with pytest.raises(PermissionDeniedError):
            await app.queries.instances(tenant_id=other)
        await app.complete_task(task.task_id, {"approved": True}, user="bob")
        assert (await app.result(mine.id))["approved"] is True  # no result type by id
        with pytest.raises(InstanceNotFoundError):
            await app.result(theirs.id)
    finally:
        await app.close()
    await bench.client.get_instance(theirs.id, tenant_id=other).cancel(reason="test over", by="ops")


# -- replayed signed commands ---------------------------------------------------------------------


async def test_a_signed_signal_sent_twice_is_accepted_once(
    bench: Bench, assert_eventually: Eventually, sign: Sign
) -> None:
    tenant = _tenant()
    handle = await bench.start(tenant)
    row = await bench.pending_row(handle, assert_eventually)
    raw = handle.temporal  # any Temporal client with namespace access
    captured = sign(
        handle.id, "comment", {"task_id": str(row.id), **BOB, "tenant_id": tenant, "body": "once"}
    )
    await raw.signal("comment_task", captured)
    await raw.signal("comment_task", captured)  # the same bytes, within the 5 minutes

    async def settled() -> Any:
        state = await bench.client.get_instance(handle.id, tenant_id=tenant).state()
        assert len(state.rejections) == 1, state.rejections
        return state

    state = await assert_eventually(settled, timeout=20)
    (task,) = state.tasks
    assert [c.body for c in task.comments] == ["once"]
    assert state.rejections[0].kind == "UnauthenticatedCommandError"
    assert "received before" in state.rejections[0].reason
    comments = await bench.queries.task_comments(row.id)
    assert [c.body for c in comments.items] == ["once"]  # the mirror holds one comment too
    # A fresh signature for the same content is a new command.
    again = sign(handle.id, "comment", {"task_id": str(row.id), **BOB, "tenant_id": tenant, "body": "once"})
    await raw.signal("comment_task", again)

    async def two() -> None:
        (current,) = (await bench.client.get_instance(handle.id, tenant_id=tenant).state()).tasks
        assert len(current.comments) == 2

    await assert_eventually(two, timeout=20)
    await bench.client.get_instance(handle.id, tenant_id=tenant).cancel(reason="test over", by="ops")
    await _replays(handle)


async def test_a_signed_update_sent_again_is_refused_and_changes_nothing(
    bench: Bench, assert_eventually: Eventually, sign: Sign
) -> None:
    tenant = _tenant()
    handle = await bench.start(tenant)
    row = await bench.pending_row(handle, assert_eventually)
    raw = handle.temporal
    base = {"task_id": str(row.id), **BOB, "tenant_id": tenant}
    claim = sign(handle.id, "claim", base)
    claimed = await raw.execute_update("claim_task_update", claim, result_type=TaskInfo)
    assert claimed.claimed_by == "bob"
    await raw.execute_update("release_task_update", sign(handle.id, "release", base), result_type=TaskInfo)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await raw.execute_update("claim_task_update", claim, result_type=TaskInfo)  # replayed
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "UnauthenticatedCommandError"
    await raw.signal("claim_task", claim)  # the captured update's payload, as a signal

    async def rejected() -> Any:
        state = await bench.client.get_instance(handle.id, tenant_id=tenant).state()
        assert len(state.rejections) == 1, state.rejections
        return state

    state = await assert_eventually(rejected, timeout=20)
    assert state.tasks[0].claimed_by is None  # neither replay took the claim back
    assert "received before" in state.rejections[0].reason
    await bench.client.get_instance(handle.id, tenant_id=tenant).cancel(reason="test over", by="ops")
    await _replays(handle)


async def _replays(handle: InstanceHandle[Any]) -> None:
    """The history, refusals included, replays against the current code."""
    history = await handle.temporal.fetch_history()
    replayer = Replayer(
        workflows=[lifecycle.lifecycle_task.workflow_class],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
