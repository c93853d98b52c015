"""Keys and identities: rotation keeps histories replaying, the application says who a user is.

These tests use their own key pairs (not the session's), so they also show what a worker does
with a key it does not hold, and with none at all.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from sdk import (
    ALL_TENANTS,
    DevServer,
    Identity,
    InstanceHandle,
    InvalidInputError,
    Keyring,
    PermissionDeniedError,
    TaskNotFoundError,
    UnauthenticatedCommandError,
    WorkflowClient,
    generate_signing_key,
)
from sdk.runtime import TrustInterceptor
from tests.workflows import lifecycle
from tests.workflows.lifecycle import CLERKS, Ticket
from worker import sandbox_runner

Eventually = Callable[..., Awaitable[Any]]
PendingTask = Callable[..., Awaitable[Any]]


def _ticket() -> Ticket:
    return Ticket(subject=f"keys-{uuid.uuid4().hex[:6]}", route="group")


async def test_histories_replay_after_the_signing_key_is_rotated_out(
    server: DevServer, new_worker: Any, pending_task: PendingTask, assert_eventually: Eventually
) -> None:
    old, new = generate_signing_key("2026-01"), generate_signing_key("2026-02")
    client = await WorkflowClient.connect(server.target, signing_key=old)
    histories = []
    async with new_worker(lifecycle.lifecycle_task, command_keys=Keyring([old.public_key])) as worker:
        by_signal = await client.start(lifecycle.lifecycle_task, _ticket(), task_queue=worker.task_queue)
        task = await pending_task(by_signal)
        await by_signal.temporal.signal("complete_task", {"task_id": task.task_id, "user": "x"})  # unsigned
        await by_signal.signal_complete_task(task.task_id, {"approved": True}, user="bob", groups=[CLERKS])
        assert (await by_signal.result()).approved is True
        assert len((await by_signal.state()).rejections) == 1

        by_update = await client.start(lifecycle.lifecycle_task, _ticket(), task_queue=worker.task_queue)
        task = await pending_task(by_update)
        await by_update.pause(by="ops", reason="audit")
        await assert_eventually(lambda: _paused(by_update, True))
        await by_update.resume(by="ops")
        await assert_eventually(lambda: _paused(by_update, False))
        await by_update.claim_task(task.task_id, user="bob", groups=[CLERKS])
        await by_update.comment_task(task.task_id, "looking", user="bob", groups=[CLERKS])
        await by_update.complete_task(task.task_id, {"approved": False}, user="bob", groups=[CLERKS])
        assert (await by_update.result()).approved is False
        for handle in (by_signal, by_update):
            histories.append(await handle.temporal.fetch_history())

    # The signals' verdicts are in the history, as local activity markers.
    markers = [e for e in histories[0].events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert len(markers) >= 2, [e.event_type for e in histories[0].events]

    # Replayed with the old key gone (rotated out), or with no keys at all: no determinism error.
    for keyring in (Keyring([new.public_key]), Keyring()):
        replayer = Replayer(
            workflows=[lifecycle.lifecycle_task.workflow_class],
            data_converter=pydantic_data_converter,
            workflow_runner=sandbox_runner(),
            interceptors=[TrustInterceptor(keyring)],
        )
        for history in histories:
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            assert result.replay_failure is None, result.replay_failure

    # A worker that no longer holds the old key refuses what it signs, and takes the new key.
    async with new_worker(lifecycle.lifecycle_task, command_keys=Keyring([new.public_key])) as worker:
        handle = await client.start(lifecycle.lifecycle_task, _ticket(), task_queue=worker.task_queue)
        task = await pending_task(handle)
        with pytest.raises(UnauthenticatedCommandError, match="unknown signing key '2026-01'"):
            await handle.complete_task(task.task_id, {"approved": True}, user="bob", groups=[CLERKS])
        rotated = await WorkflowClient.connect(server.target, signing_key=new)
        again = rotated.get_instance(handle.id)
        await again.complete_task(task.task_id, {"approved": True}, user="bob", groups=[CLERKS])
        assert (await handle.result()).approved is True


async def _paused(handle: InstanceHandle[Any], expected: bool) -> None:
    assert (await handle.state()).paused is expected


async def test_a_worker_without_keys_refuses_every_command_unless_told_otherwise(
    server: DevServer, new_worker: Any, pending_task: PendingTask
) -> None:
    connected = await WorkflowClient.connect(server.target)
    unsigned = WorkflowClient(connected.temporal)  # no signing key: its commands go unsigned
    async with new_worker(lifecycle.lifecycle_task, command_keys="") as worker:
        handle = await unsigned.start(lifecycle.lifecycle_task, _ticket(), task_queue=worker.task_queue)
        task = await pending_task(handle)
        with pytest.raises(UnauthenticatedCommandError, match="not signed"):
            await handle.complete_task(task.task_id, {"approved": True}, user="bob", groups=[CLERKS])
        await handle.cancel(reason="test over", by="ops")
    # Development: a worker told to accept unsigned commands believes what they claim.
    async with new_worker(lifecycle.lifecycle_task, command_keys="", allow_unsigned_commands=True) as worker:
        handle = await unsigned.start(lifecycle.lifecycle_task, _ticket(), task_queue=worker.task_queue)
        task = await pending_task(handle)
        await handle.complete_task(task.task_id, {"approved": True}, user="bob", groups=[CLERKS])
        assert (await handle.result()).approved is True


async def test_the_identity_provider_not_the_caller_says_groups_admin_and_tenant(
    server: DevServer, new_worker: Any, pending_task: PendingTask
) -> None:
    acme, globex = f"acme-{uuid.uuid4().hex[:6]}", f"globex-{uuid.uuid4().hex[:6]}"
    directory = {
        "bob": Identity(user="bob", groups=(CLERKS,), tenant_id=acme),
        "eve": Identity(user="eve", groups=("staff",), tenant_id=acme),
        "gus": Identity(user="gus", groups=(CLERKS,), tenant_id=globex),
        "root": Identity(user="root", admin=True, tenant_id=ALL_TENANTS),
    }

    async def lookup(user: str) -> Identity:
        return directory[user]

    app = await WorkflowClient.connect(server.target, identity_provider=lookup, tenant_id=acme)
    async with new_worker(lifecycle.lifecycle_task) as worker:
        handle = await app.start(lifecycle.lifecycle_task, _ticket(), task_queue=worker.task_queue)
        assert (await handle.state()).tenant_id == acme  # the client's tenant, without saying so
        task = await pending_task(handle)
        with pytest.raises(PermissionDeniedError, match="identity provider"):
            await handle.complete_task(task.task_id, {"approved": True}, user="eve", groups=[CLERKS])
        with pytest.raises(PermissionDeniedError, match="identity provider"):
            await handle.claim_task(task.task_id, user="eve", admin=True)
        with pytest.raises(PermissionDeniedError, match="may not act"):
            await handle.complete_task(task.task_id, {"approved": True}, user="eve")
        with pytest.raises(PermissionDeniedError, match="does not belong to tenant"):
            await handle.complete_task(task.task_id, {"approved": True}, user="gus")
        with pytest.raises(TaskNotFoundError):  # a client of another tenant does not see it
            other = await WorkflowClient.connect(server.target, identity_provider=lookup, tenant_id=globex)
            await other.get_instance(handle.id).claim_task(task.task_id, user="gus")
        await handle.claim_task(task.task_id, user="bob")
        # An administrator for all tenants, said so by the provider, acts on any tenant's task.
        admin = await WorkflowClient.connect(server.target, identity_provider=lookup, tenant_id=ALL_TENANTS)
        with pytest.raises(InvalidInputError, match="one tenant"):  # an instance has one tenant
            await admin.start(lifecycle.lifecycle_task, _ticket(), task_queue=worker.task_queue)
        await admin.get_instance(handle.id).complete_task(task.task_id, {"approved": False}, user="root")
        assert (await handle.result()).approved is False
        (done,) = (await handle.state()).tasks
        assert (done.completed_by, done.claimed_by) == ("root", "bob")


async def test_the_predeploy_check_names_running_instances_the_new_code_would_break(
    client: WorkflowClient, new_worker: Any, pending_task: PendingTask, assert_eventually: Eventually
) -> None:
    from examples.expense_approval import Expense, expense_approval
    from sdk import check_running_instances
    from tests.workflows.drifted import DRIFTED_DEFINITION, DRIFTED_WORKFLOW_CLASS

    drifted = dataclasses.replace(DRIFTED_DEFINITION, workflow_class=DRIFTED_WORKFLOW_CLASS)

    async with new_worker(expense_approval) as worker:
        handle = await client.start(
            expense_approval, Expense(employee="ann", amount=10), task_queue=worker.task_queue
        )
        await pending_task(handle)  # waiting on a person, as instances do for days
        mine = f"TaskQueue = '{worker.task_queue}'"

        async def listed() -> None:
            checked, problems = await check_running_instances(client, [expense_approval], query=mine)
            assert (checked, problems) == (1, [])  # the code it runs on replays it

        await assert_eventually(listed, timeout=20)
        checked, problems = await check_running_instances(client, [drifted], query=mine)
        assert checked == 1
        (problem,) = problems
        assert (problem.workflow_id, problem.workflow_type) == (handle.id, "expense_approval@1.0.0")
        assert "nondetermin" in problem.error.lower(), problem.error
        await handle.cancel(reason="test over", by="ops")


async def test_an_instance_from_before_signed_commands_verifies_every_later_signal(
    client: WorkflowClient,
    new_worker: Any,
    pending_task: PendingTask,
    assert_eventually: Eventually,
    sign: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sdk._commands import TaskCommands
    from worker import create_worker

    async def trusting(self: Any, action: str, payload: dict[str, Any]) -> None:
        return None  # what workers did before signals were verified: no marker, no activity

    monkeypatch.setattr(TaskCommands, "verify_recorded", trusting)
    async with new_worker(lifecycle.lifecycle_task) as old:
        handle = await client.start(lifecycle.lifecycle_task, _ticket(), task_queue=old.task_queue)
        task = await pending_task(handle)
        forged = {"task_id": task.task_id, "user": "mallory", "groups": [CLERKS]}
        await handle.temporal.signal("claim_task", forged)  # believed, as it was then

        async def claimed_by(user: str | None) -> None:
            (current,) = (await handle.state()).tasks
            assert current.claimed_by == user, current

        await assert_eventually(lambda: claimed_by("mallory"))
    monkeypatch.undo()

    # The new code takes over the same instance: the old signal replays as it ran, and every
    # signal after it is verified.
    deployed = create_worker(client, task_queue=old.task_queue, workflows=[lifecycle.lifecycle_task])
    async with deployed:
        await handle.temporal.signal("release_task", forged)  # unsigned: refused now
        note = sign(handle.id, "comment", {"task_id": task.task_id, **forged, "body": "mine"})
        await handle.temporal.signal("comment_task", note)  # signed: believed

        async def settled() -> Any:
            state = await handle.state()
            assert len(state.rejections) == 1 and len(state.tasks[0].comments) == 1, state
            return state

        state = await assert_eventually(settled, timeout=30)
        assert state.rejections[0].kind == "UnauthenticatedCommandError"
        assert state.tasks[0].claimed_by == "mallory"
        await handle.cancel(reason="test over", by="ops")
    history = await handle.temporal.fetch_history()
    replayer = Replayer(
        workflows=[lifecycle.lifecycle_task.workflow_class],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_dwf_makes_keys_and_checks_a_deploy(
    server: DevServer, client: WorkflowClient, new_worker: Any, pending_task: PendingTask
) -> None:
    import asyncio
    import json
    import os
    import sys
    from pathlib import Path

    from examples.expense_approval import Expense, expense_approval

    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWF_")}

    async def dwf(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sdk._cli", *args, cwd=repo, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, _ = await dwf("--json", "keys", "generate", "2026-03")
    made = json.loads(out)
    assert code == 0 and made["key_id"] == "2026-03"
    assert Keyring.parse(made["public_key"]).key_ids == ["2026-03"]

    async with new_worker(expense_approval) as worker:
        handle = await client.start(
            expense_approval, Expense(employee="cy", amount=3), task_queue=worker.task_queue
        )
        await pending_task(handle)
        code, out, err = await dwf(
            "--address", server.target, "--json", "deploy-check", "--app", "examples.expense_approval"
        )
        assert code == 0, err
        assert json.loads(out) == []
        code, out, err = await dwf("--address", server.target, "deploy-check")
        assert code == 2 and "--app" in err
        await handle.cancel(reason="test over", by="ops")
