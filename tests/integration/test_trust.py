"""Only a trusted client acts as a user, and no payload jams an instance (both databases).

Each backend gets one worker with the mirror on and one SDK client, both using the session's
key (``tests/conftest.py``). Forged commands come from the same Temporal namespace through a raw
temporalio handle and the official ``temporal`` CLI: unsigned, signed with another key, altered
after signing, signed for another instance, too old. Each is refused, recorded (a signal) or
answered with a typed failure (an update), and nothing changes: not the workflow's state, not
the mirror's rows. Then a payload of every wrong shape goes to every signal and update name, and
the instance still answers queries and takes a valid command.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from sdk import (
    ALL_TENANTS,
    ErrorKind,
    InstanceHandle,
    TaskStatus,
    find_temporal_cli,
    generate_signing_key,
)
from sdk._types import TaskAction
from sdk.mirror import TaskRow
from sdk.protocol import task_signal, task_update
from tests.integration.support import commands_received
from tests.integration.trust_bench import Bench, fixture_bench  # noqa: F401  (the bench fixture)
from tests.workflows import lifecycle
from tests.workflows.lifecycle import CLERKS, Ticket

Eventually = Callable[..., Awaitable[Any]]
Sign = Callable[..., dict[str, Any]]

BOB = {"user": "bob", "groups": [CLERKS]}
EVE = {"user": "eve", "groups": ["staff"]}
SIGNALS = [task_signal(a) for a in TaskAction] + ["pause", "resume", "cancel_requested"]
UPDATES = [task_update(a) for a in TaskAction]
_FAILED_TASK = EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED


def _tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


async def _failed_workflow_tasks(handle: InstanceHandle[Any]) -> int:
    return len([e async for e in handle.temporal.fetch_history_events() if e.event_type == _FAILED_TASK])


async def _temporal_cli(target: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        find_temporal_cli(),
        *args,
        "--address",
        target,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, f"temporal {' '.join(args)} failed: {stderr.decode()}"
    return stdout.decode()


# -- forged identities ----------------------------------------------------------------------------


async def test_forged_commands_are_refused_recorded_and_change_nothing(
    bench: Bench, assert_eventually: Eventually, sign: Sign
) -> None:
    tenant = _tenant()
    handle = await bench.start(tenant)
    row = await bench.pending_row(handle, assert_eventually)
    raw = bench.client.temporal.get_workflow_handle(handle.id)
    task_id = str(row.id)
    rogue = generate_signing_key("tests-session")  # the right key id, the wrong key
    unknown = generate_signing_key("rogue")
    admin_completion = {"task_id": task_id, "user": "mallory", "admin": True, "tenant_id": tenant}
    admin_completion["data"] = {"approved": True}

    def altered() -> dict[str, Any]:
        signed = sign(handle.id, "complete", {"task_id": task_id, **EVE, "tenant_id": tenant, "data": {}})
        return {**signed, "admin": True, "data": {"approved": True}}  # changed after signing

    long_ago = datetime.now(UTC) - timedelta(minutes=30)
    ahead = datetime.now(UTC) + timedelta(minutes=30)
    forgeries: list[dict[str, Any]] = [
        admin_completion,  # unsigned, claiming to be an administrator
        sign(handle.id, "complete", admin_completion, key=rogue),
        sign(handle.id, "complete", admin_completion, key=unknown),
        altered(),
        sign("another-workflow", "complete", admin_completion),  # signed for another instance
        sign(handle.id, "claim", admin_completion),  # signed for another action
        sign(handle.id, "complete", admin_completion, issued_at=long_ago),  # too old
        sign(handle.id, "complete", admin_completion, issued_at=ahead),  # from the future
    ]
    for forged in forgeries:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await raw.execute_update(task_update(TaskAction.COMPLETE), forged)
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == ErrorKind.UNAUTHENTICATED.value, refused.value.cause
        await raw.signal(task_signal(TaskAction.COMPLETE), forged)
    # Every other command acting as a user, unsigned.
    unsigned = {"task_id": task_id, "user": "mallory", "admin": True, "tenant_id": tenant}
    for action, extra in (
        (TaskAction.CLAIM, {}),
        (TaskAction.RELEASE, {}),
        (TaskAction.REASSIGN, {"to_user": "mallory", "reason": "mine now"}),
        (TaskAction.COMMENT, {"body": "written as anyone"}),
    ):
        with pytest.raises(WorkflowUpdateFailedError):
            await raw.execute_update(task_update(action), {**unsigned, **extra})
        await raw.signal(task_signal(action), {**unsigned, **extra})
    control = {"user": "mallory", "admin": True, "tenant_id": tenant, "reason": "forged"}
    for name in ("pause", "resume", "cancel_requested"):
        await raw.signal(name, control)

    expected = len(forgeries) + 4 + 3

    async def all_recorded() -> Any:
        state = await handle.state()
        assert len(state.rejections) == expected, state.rejections
        return state

    state = await assert_eventually(all_recorded)
    assert {r.kind for r in state.rejections} == {ErrorKind.UNAUTHENTICATED.value}
    assert (state.paused, state.status.value) == (False, "WAITING")
    (task,) = state.tasks
    assert (task.status, task.claimed_by, task.assignee_id, task.comments) == (
        TaskStatus.PENDING,
        None,
        None,
        [],
    )
    assert await bench.queries.get_task(row.id) == row
    assert (await bench.queries.task_comments(row.id)).items == []
    assert await _failed_workflow_tasks(handle) == 0

    # The application's client still acts, and a raw sender holding its key is believed.
    await bench.client.claim_task(row.id, **BOB, tenant_id=tenant)
    comment = sign(handle.id, "comment", {"task_id": task_id, **BOB, "tenant_id": tenant, "body": "ok"})
    await raw.execute_update(task_update(TaskAction.COMMENT), comment)
    await bench.client.complete_task(row.id, {"approved": True}, **BOB, tenant_id=tenant)
    assert (await handle.result()).approved is True
    done = await bench.queries.get_task(row.id)
    assert (done.status, done.completed_by, done.claimed_by) == (TaskStatus.COMPLETED, "bob", "bob")


# -- payload shapes -------------------------------------------------------------------------------


async def test_no_payload_shape_on_any_name_jams_the_instance(
    bench: Bench, assert_eventually: Eventually, sign: Sign
) -> None:
    tenant = _tenant()
    handle = await bench.start(tenant)
    row = await bench.pending_row(handle, assert_eventually)
    raw = bench.client.temporal.get_workflow_handle(handle.id)
    undecodable = RawValue(Payload(metadata={"encoding": b"binary/unknown"}, data=b"\x00\xff"))
    broken_json = RawValue(Payload(metadata={"encoding": b"json/plain"}, data=b"{not json"))
    big = sign(
        handle.id, "comment", {"task_id": str(row.id), **BOB, "tenant_id": tenant, "body": "x" * 300_000}
    )

    for name in SIGNALS:
        # The official CLI, with two arguments where one is expected (this used to freeze it).
        await _temporal_cli(
            bench.target, "workflow", "signal", "--workflow-id", handle.id, "--name", name,
            "--input", '{"task_id": "x"}', "--input", '{"task_id": "x"}',
        )  # fmt: skip
        await raw.signal(name)  # no argument at all
        await raw.signal(name, args=["a", "b", "c"])
        for shape in ("text", 42, [1, 2], None, {"task_id": 7, "user": ["x"]}):
            await raw.signal(name, shape)
        await raw.signal(name, undecodable)
        await raw.signal(name, broken_json)
    await raw.signal(task_signal(TaskAction.COMMENT), big)
    for name in UPDATES:
        for args in ([], ["a", "b"], [42], [{"task_id": str(row.id)}]):
            with pytest.raises(WorkflowUpdateFailedError):
                await raw.execute_update(name, args=args)
    with pytest.raises(WorkflowUpdateFailedError) as too_big:
        await raw.execute_update(task_update(TaskAction.COMMENT), big)
    assert isinstance(too_big.value.cause, ApplicationError)
    assert too_big.value.cause.type == ErrorKind.PAYLOAD_TOO_LARGE.value

    # Still alive: it answers queries, recorded what it could attribute, and takes a command.
    async def recorded() -> Any:
        state = await handle.state()
        assert len(state.rejections) >= 20, len(state.rejections)
        return state

    state = await assert_eventually(recorded)
    kinds = {r.kind for r in state.rejections}
    assert kinds <= {k.value for k in ErrorKind}, kinds
    assert ErrorKind.INVALID_COMMAND.value in kinds
    assert (await bench.queries.get_task(row.id)) == row
    assert await _failed_workflow_tasks(handle) == 0
    await bench.client.complete_task(row.id, {"approved": False}, **BOB, tenant_id=tenant)
    assert (await handle.result()).approved is False
    assert await _failed_workflow_tasks(handle) == 0


# -- what a database cannot store -----------------------------------------------------------------


UNSTORABLE_FORMS: list[dict[str, Any]] = [
    {"approved": True, "note": "nul\x00byte"},
    {"approved": True, "note": "lone \ud800 surrogate"},
    {"approved": True, "weight": float("nan")},
    {"approved": True, "weight": float("inf")},
    {"approved": True, "weight": 1e308},
    {"approved": True, "count": 2**70},
    {"approved": True, "nested": {"k\x00ey": 1}},
]


async def test_unstorable_values_are_refused_before_sending_and_on_receipt(
    bench: Bench, assert_eventually: Eventually, sign: Sign
) -> None:
    from sdk import FormValidationError, InvalidInputError

    tenant = _tenant()
    handle = await bench.start(tenant)
    row = await bench.pending_row(handle, assert_eventually)
    commands_before = await commands_received(handle)

    for data in UNSTORABLE_FORMS:
        with pytest.raises(FormValidationError) as refused:
            await bench.client.complete_task(row.id, data, **BOB, tenant_id=tenant)
        assert {e["type"] for e in refused.value.errors} == {"unstorable"}, refused.value.errors
    with pytest.raises(InvalidInputError):
        await bench.client.complete_task(
            row.id, {"approved": True}, **BOB, tenant_id=tenant, comment="a\x00b"
        )
    with pytest.raises(InvalidInputError):
        await bench.client.complete_task(row.id, {"approved": True}, user="b\x00b", tenant_id=tenant)
    with pytest.raises(InvalidInputError):
        await bench.client.complete_task(row.id, {"approved": True}, **BOB, tenant_id="t\x00")
    with pytest.raises(InvalidInputError):
        await bench.client.comment_task(row.id, "hello\x00", **BOB, tenant_id=tenant)
    with pytest.raises(InvalidInputError):
        await bench.client.reassign_task(
            row.id, to_user="z\x00", reason="r", user="root", admin=True, tenant_id=tenant
        )
    with pytest.raises(InvalidInputError):
        await bench.start("tenant\x00")
    with pytest.raises(InvalidInputError):
        await bench.client.start(
            lifecycle.lifecycle_task, Ticket(subject="nul\x00", route="group"), task_queue=bench.task_queue
        )
    assert await commands_received(handle) == commands_before
    assert await bench.queries.get_task(row.id) == row

    # A signed sender that skips the client's checks: the workflow refuses the same values.
    raw = bench.client.temporal.get_workflow_handle(handle.id)
    base = {"task_id": str(row.id), **BOB, "tenant_id": tenant}
    # (JSON cannot carry NaN, infinity or a lone surrogate: those go as raw bytes below.)
    for data in (UNSTORABLE_FORMS[0], UNSTORABLE_FORMS[5], UNSTORABLE_FORMS[6]):
        await raw.signal("complete_task", sign(handle.id, "complete", {**base, "data": data}))
    await raw.signal("comment_task", sign(handle.id, "comment", {**base, "body": "nul\x00"}))
    await raw.signal(
        "complete_task", sign(handle.id, "complete", {**base, "data": {"approved": True, "w": 1e308}})
    )
    nan_payload = json.dumps({**base, "data": {"approved": True, "w": float("nan")}}).encode()
    await raw.signal(
        "complete_task", RawValue(Payload(metadata={"encoding": b"json/plain"}, data=nan_payload))
    )

    async def refused_all() -> Any:
        state = await handle.state()
        assert len(state.rejections) == 6, state.rejections
        return state

    state = await assert_eventually(refused_all)
    assert all(
        r.kind in {"FormValidationError", "InvalidInputError", "UnauthenticatedCommandError"}
        for r in state.rejections
    )
    assert await bench.queries.get_task(row.id) == row
    assert await _failed_workflow_tasks(handle) == 0

    # The instance goes on, and what it stores comes back as sent.
    await bench.client.complete_task(
        row.id, {"approved": True, "note": "ünïcode ✓", "score": 5}, **BOB, tenant_id=tenant, comment="done"
    )
    done = await assert_eventually(lambda: _completed(bench, row.id))
    assert done.form_data == {"approved": True, "score": 5, "note": "ünïcode ✓"}


async def _completed(bench: Bench, task_id: Any) -> TaskRow:
    row = await bench.queries.get_task(task_id)
    assert row.status is TaskStatus.COMPLETED, row
    return row


async def test_oversized_commands_name_the_limit_before_the_rpc(
    bench: Bench, assert_eventually: Eventually
) -> None:
    from sdk import MAX_PAYLOAD_BYTES, PayloadTooLargeError

    tenant = _tenant()
    handle = await bench.start(tenant)
    row = await bench.pending_row(handle, assert_eventually)
    commands_before = await commands_received(handle)
    with pytest.raises(PayloadTooLargeError, match=f"{MAX_PAYLOAD_BYTES:,} bytes"):
        await bench.client.comment_task(row.id, "x" * (5 * 1024 * 1024), **BOB, tenant_id=tenant)
    with pytest.raises(PayloadTooLargeError, match="MAX_PAYLOAD_BYTES"):
        await bench.client.start(
            lifecycle.lifecycle_task, Ticket(subject="y" * MAX_PAYLOAD_BYTES), task_queue=bench.task_queue
        )
    with pytest.raises(PayloadTooLargeError):
        await handle.pause(by="ops", reason="z" * MAX_PAYLOAD_BYTES)
    assert await commands_received(handle) == commands_before
    await bench.client.get_instance(handle.id, tenant_id=tenant).cancel(reason="test over", by="ops")


# -- start input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "memo"),
    [
        ([{"subject": 42, "route": "nowhere"}], None),  # wrong types
        ([{"subject": "a\x00b"}], None),  # unstorable
        ([{"subject": "ok"}, {"extra": True}], None),  # one argument too many
        ([], None),  # none at all
        ([{"subject": "ok"}], {"tenant_id": "t\x00"}),  # a tenant no database can store
    ],
    ids=["wrong-types", "nul", "extra-argument", "no-argument", "nul-tenant"],
)
async def test_undecodable_start_input_fails_the_instance_cleanly(
    bench: Bench, assert_eventually: Eventually, args: list[Any], memo: dict[str, Any] | None
) -> None:
    # What any Temporal client (or ``temporal workflow start --input``) can send.
    raw = await bench.client.temporal.start_workflow(
        lifecycle.lifecycle_task.workflow_type,
        args=args,
        id=f"raw-start-{uuid.uuid4()}",
        task_queue=bench.task_queue,
        memo=memo,
    )
    # An administrator's scope: the memo may name a tenant (reads are scoped to it).
    handle = bench.client.get_instance(raw.id, raw.first_execution_run_id, tenant_id=ALL_TENANTS)

    async def failed() -> Any:
        assert handle.instance_id is not None
        try:
            row = await bench.queries.get_instance(handle.instance_id)
        except LookupError:
            raise AssertionError("not mirrored yet") from None
        assert row.status.value == "FAILED", row
        return row

    row = await assert_eventually(failed)
    assert row.error is not None and ("argument" in row.error or "store" in row.error), row.error
    assert row.tenant_id is None or "\x00" not in row.tenant_id
    assert await _failed_workflow_tasks(handle) == 0
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == ErrorKind.INVALID_INPUT.value


async def test_start_without_the_definition_validates_against_the_stored_schema(bench: Bench) -> None:
    # A caller that did not import the workflow (``dwf start`` without ``--app``): the
    # mirror's stored definition, with its input schemas, is all it knows.
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from sdk import FormValidationError
    from sdk.mirror import WorkflowDefinitionModel

    stored = lifecycle.lifecycle_task.to_json()
    assert stored["input_schema"] == [Ticket.model_json_schema()]
    name = f"tests.unimported-{uuid.uuid4().hex[:6]}"
    async with async_sessionmaker(bench.client._engine)() as session:
        session.add(
            WorkflowDefinitionModel(
                name=name,
                version="1.0.0",
                definition_json=stored,
                workflow_type=lifecycle.lifecycle_task.workflow_type,
            )
        )
        await session.commit()
    with pytest.raises(FormValidationError) as invalid:
        await bench.client.start(name, {"subject": 42, "route": "nowhere"}, task_queue=bench.task_queue)
    assert {e["field"] for e in invalid.value.errors} == {"subject", "route"}
    with pytest.raises(TypeError, match="takes 1 argument"):
        await bench.client.start(name, {"subject": "a"}, {"b": 1}, task_queue=bench.task_queue)
    handle = await bench.client.start(name, {"subject": "fine"}, task_queue=bench.task_queue)
    assert (await handle.state()).workflow_name == lifecycle.lifecycle_task.name
    await handle.cancel(reason="test over", by="ops")
