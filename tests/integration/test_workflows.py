"""Compiled workflows on the real Temporal dev server: retries, timeouts, human tasks,
the official CLI, cancellation, versions side by side, and client-side refusals."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutType
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

from sdk import (
    DevServer,
    FormValidationError,
    InstanceHandle,
    InstanceNotFoundError,
    PermissionDeniedError,
    TaskInfo,
    TaskNotFoundError,
    TaskNotPendingError,
    TaskStatus,
    WorkflowClient,
    WorkflowNotFoundError,
    WorkflowStatus,
    events,
    find_temporal_cli,
)
from tests.workflows import approvals, machine
from tests.workflows.approvals import Decision, Outcome, Request

PendingTask = Callable[..., Awaitable[TaskInfo]]
Eventually = Callable[..., Awaitable[Any]]


async def history_event_types(handle: InstanceHandle[Any]) -> list[int]:
    return [event.event_type async for event in handle.temporal.fetch_history_events()]


async def activity_attempts(handle: InstanceHandle[Any], activity_type: str) -> list[int]:
    """Attempt numbers of the started events of ``activity_type`` in the instance's history."""
    scheduled: dict[int, str] = {}
    attempts: list[int] = []
    async for event in handle.temporal.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            if scheduled[attrs.scheduled_event_id] == activity_type:
                attempts.append(attrs.attempt)
    return attempts


async def temporal_cli(server_target: str, *args: str) -> str:
    """Run the official ``temporal`` CLI against the test server (without blocking the worker)."""
    process = await asyncio.create_subprocess_exec(
        find_temporal_cli(),
        *args,
        "--address",
        server_target,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, f"temporal {' '.join(args)} failed: {stderr.decode()}"
    return stdout.decode()


# -- retries and timeouts of machine steps ---------------------------------------------------------


async def test_failing_machine_step_is_retried_until_it_succeeds(
    client: WorkflowClient, new_worker: Any
) -> None:
    async with new_worker(machine.retrying) as worker:
        handle = await client.start(
            machine.retrying, machine.FlakyPlan(failures=2), task_queue=worker.task_queue
        )
        report = await handle.result()
    assert report == machine.StepReport(attempt=3)
    # Temporal records the last attempt's start; two failures came before it.
    assert await activity_attempts(handle, "tests.flaky_step") == [3]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED not in await history_event_types(handle)
    assert (await handle.describe()).status is WorkflowStatus.COMPLETED


async def test_retries_stop_at_max_attempts_and_fail_the_workflow(
    client: WorkflowClient, new_worker: Any
) -> None:
    seen: list[events.WorkflowEvent] = []
    async with new_worker(machine.retrying, event_handlers=[seen.append]) as worker:
        handle = await client.start(
            machine.retrying, machine.FlakyPlan(failures=99), task_queue=worker.task_queue
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    assert isinstance(activity_error.cause, ApplicationError)
    assert activity_error.cause.type == "ConnectionError"
    assert activity_error.cause.message == "attempt 3 failed"  # max_attempts=3
    assert activity_error.retry_state is not None
    assert activity_error.retry_state.name == "MAXIMUM_ATTEMPTS_REACHED"
    assert await activity_attempts(handle, "tests.flaky_step") == [3]
    step_failed = [e for e in seen if isinstance(e, events.StepFailed)]
    assert [(e.step_name, e.error_type) for e in step_failed] == [("tests.flaky_step", "ConnectionError")]
    workflow_failed = [e for e in seen if isinstance(e, events.WorkflowFailed)]
    assert [(e.failed_step, e.error_type) for e in workflow_failed] == [
        ("tests.flaky_step", "ConnectionError")
    ]


async def test_non_retryable_error_is_not_retried(client: WorkflowClient, new_worker: Any) -> None:
    async with new_worker(machine.retrying) as worker:
        handle = await client.start(
            machine.retrying, machine.FlakyPlan(permanent=True), task_queue=worker.task_queue
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "PermanentError"
    assert cause.cause.message == "permanent failure on attempt 1"
    assert await activity_attempts(handle, "tests.flaky_step") == [1]


async def test_step_exceeding_its_start_to_close_timeout_fails_the_workflow(
    client: WorkflowClient, new_worker: Any
) -> None:
    seen: list[events.WorkflowEvent] = []
    async with new_worker(machine.slow, event_handlers=[seen.append]) as worker:
        handle = await client.start(machine.slow, 30.0, task_queue=worker.task_queue)
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(handle.result(), timeout=20)
    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    assert activity_error.activity_type == "tests.slow_step"
    timeout = activity_error.cause
    assert isinstance(timeout, TemporalTimeoutError)
    assert timeout.type is TimeoutType.START_TO_CLOSE
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT in await history_event_types(handle)
    assert (await handle.describe()).status is WorkflowStatus.FAILED
    assert [(e.step_name, e.error_type) for e in seen if isinstance(e, events.StepFailed)] == [
        ("tests.slow_step", "TimeoutError")
    ]


# -- human tasks: decisions through the update and the plain signal --------------------------------


async def test_approve_with_client_complete_task(
    client: WorkflowClient, new_worker: Any, pending_task: PendingTask
) -> None:
    seen: list[events.WorkflowEvent] = []
    async with new_worker(approvals.review_workflow, event_handlers=[seen.append]) as worker:
        handle = await client.start(
            approvals.review_workflow,
            Request(subject="laptop", amount=1200),
            task_queue=worker.task_queue,
            tenant_id="acme",
            created_by="ann",
        )
        task = await pending_task(handle)
        assert task.title == "Review laptop"
        assert task.description == "amount 1200"
        assert task.assignee_group == "reviewers"
        assert task.form_name == "Decision"
        assert task.form_schema["required"] == ["approved"]
        state = await handle.state()
        assert state.current_step == "tests.review_step"
        assert state.status is WorkflowStatus.WAITING  # the mirror's word for it
        assert (state.tenant_id, state.created_by) == ("acme", "ann")

        completed = await client.complete_task(
            task.task_id,
            Decision(approved=True, priority=2),
            user="bob",
            groups=["reviewers"],
            comment="fine",
            workflow_id=handle.id,
        )
        # The update answers once the workflow accepted the completion.
        assert completed.status is TaskStatus.COMPLETED
        assert completed.completed_by == "bob"
        assert completed.form_data == {"approved": True, "priority": 2, "comment": None}
        assert completed.comment == "fine"
        assert await handle.result() == Outcome(approved=True, priority=2)

    types = await history_event_types(handle)
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED in types
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED not in types
    task_events = [
        type(e).__name__ for e in seen if isinstance(e, events.HumanTaskCreated | events.HumanTaskCompleted)
    ]
    assert task_events == ["HumanTaskCreated", "HumanTaskCompleted"]
    done = next(e for e in seen if isinstance(e, events.HumanTaskCompleted))
    assert (str(done.task_id), done.completed_by, done.comment) == (task.task_id, "bob", "fine")


@pytest.mark.parametrize("approved", [True, False], ids=["approve", "reject"])
@pytest.mark.parametrize("via", ["update", "sdk_signal", "raw_signal"])
async def test_decision_through_update_or_plain_signal(
    client: WorkflowClient, new_worker: Any, pending_task: PendingTask, via: str, approved: bool
) -> None:
    async with new_worker(approvals.review_workflow) as worker:
        handle = await client.start(
            approvals.review_workflow, Request(subject="yacht", amount=900), task_queue=worker.task_queue
        )
        task = await pending_task(handle)
        data = {"approved": approved, "comment": "decided"}
        if via == "update":
            await handle.complete_task(task.task_id, data, user="carol", groups=["reviewers"])
        elif via == "sdk_signal":
            await handle.signal_complete_task(task.task_id, data, user="carol", groups=["reviewers"])
        else:  # what any Temporal client can send
            payload = {"task_id": task.task_id, "user": "carol", "groups": ["reviewers"], "data": data}
            await handle.temporal.signal("complete_task", payload)
        assert await handle.result() == Outcome(approved=approved, priority=3)
        state = await handle.state()  # answered by replaying the closed workflow's history
    assert state.status is WorkflowStatus.COMPLETED
    assert state.pending_tasks == []
    assert state.rejections == []
    (done,) = state.tasks
    assert (done.status, done.completed_by, done.form_data) == (
        TaskStatus.COMPLETED,
        "carol",
        {"approved": approved, "priority": 3, "comment": "decided"},
    )
    types = await history_event_types(handle)
    signaled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED in types
    updated = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED in types
    assert (signaled, updated) == ((False, True) if via == "update" else (True, False))


# -- workflow code that raises ---------------------------------------------------------------------


async def test_an_error_raised_by_workflow_code_fails_the_workflow_not_the_task(
    client: WorkflowClient, new_worker: Any
) -> None:
    # A plain exception in workflow code would fail only the workflow task, which Temporal
    # retries forever (docs/temporal-facts.md); the runtime turns it into a workflow failure.
    seen: list[events.WorkflowEvent] = []
    async with new_worker(machine.refuses, event_handlers=[seen.append]) as worker:
        handle = await client.start(machine.refuses, "nothing to do", task_queue=worker.task_queue)
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(handle.result(), timeout=20)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.message, cause.non_retryable) == (
        "ValueError",
        "ValueError: nothing to do",
        True,
    )
    assert (await handle.describe()).status is WorkflowStatus.FAILED
    failures = [(e.error_type, e.error) for e in seen if isinstance(e, events.WorkflowFailed)]
    assert failures == [("ValueError", "nothing to do")]


# -- the official temporal CLI ---------------------------------------------------------------------


async def test_operating_with_the_temporal_cli(
    server: DevServer,
    client: WorkflowClient,
    new_worker: Any,
    pending_task: PendingTask,
    assert_eventually: Eventually,
) -> None:
    async with new_worker(approvals.review_workflow) as worker:
        handle = await client.start(
            approvals.review_workflow, Request(subject="desk", amount=300), task_queue=worker.task_queue
        )
        task = await pending_task(handle)

        queried = json.loads(
            await temporal_cli(
                server.target,
                "workflow",
                "query",
                "--workflow-id",
                handle.id,
                "--type",
                "state",
                "--output",
                "json",
            )
        )
        (cli_state,) = queried["queryResult"]
        assert [t["task_id"] for t in cli_state["pending_tasks"]] == [task.task_id]
        assert cli_state["pending_tasks"][0]["status"] == "pending"
        assert cli_state["workflow_name"] == "tests.review"

        def signal(payload: dict[str, Any]) -> Awaitable[str]:
            return temporal_cli(
                server.target,
                "workflow",
                "signal",
                "--workflow-id",
                handle.id,
                "--name",
                "complete_task",
                "--input",
                json.dumps(payload),
            )

        base = {"task_id": task.task_id, "user": "dave", "groups": ["reviewers"]}
        await signal({**base, "data": {"approved": "perhaps", "priority": 9}})

        async def rejected(count: int) -> Any:
            state = await handle.state()
            assert len(state.rejections) == count, state.rejections
            return state

        state = await assert_eventually(lambda: rejected(1))
        (rejection,) = state.rejections
        assert (rejection.task_id, rejection.user) == (task.task_id, "dave")
        assert rejection.reason.startswith("FormValidationError")
        assert {e["field"] for e in rejection.errors} == {"approved", "priority"}
        assert [t.task_id for t in state.pending_tasks] == [task.task_id]

        # A user outside the group, and a payload that is not a completion at all.
        await signal({**base, "user": "eve", "groups": ["staff"], "data": {"approved": True}})
        await signal({"task": task.task_id})
        state = await assert_eventually(lambda: rejected(3))
        assert state.rejections[1].reason.startswith("PermissionDeniedError")
        assert state.rejections[1].user == "eve"
        assert state.rejections[2].reason.startswith("InvalidCommandError")
        assert state.pending_tasks[0].status is TaskStatus.PENDING

        text = await temporal_cli(
            server.target, "workflow", "query", "--workflow-id", handle.id, "--type", "state"
        )
        assert task.task_id in text
        assert "FormValidationError" in text

        await signal({**base, "data": {"approved": True, "priority": 1}})
        assert await handle.result() == Outcome(approved=True, priority=1)


# -- cancellation ----------------------------------------------------------------------------------


async def test_cancel_marks_the_pending_task_canceled_and_the_instance_canceled(
    client: WorkflowClient, new_worker: Any, pending_task: PendingTask
) -> None:
    seen: list[events.WorkflowEvent] = []
    async with new_worker(approvals.review_workflow, event_handlers=[seen.append]) as worker:
        handle = await client.start(
            approvals.review_workflow, Request(subject="chair", amount=80), task_queue=worker.task_queue
        )
        task = await pending_task(handle)
        await handle.cancel(reason="duplicate request", by="ops")
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        assert isinstance(failed.value.cause, CancelledError)
        description = await handle.describe()
        state = await handle.state()
        with pytest.raises(TaskNotPendingError, match="is canceled, not pending"):
            await handle.complete_task(task.task_id, {"approved": True}, user="bob", groups=["reviewers"])
    assert description.status is WorkflowStatus.CANCELED
    assert description.close_time is not None
    assert state.status is WorkflowStatus.CANCELED
    assert state.pending_tasks == []
    assert [(t.task_id, t.status) for t in state.tasks] == [(task.task_id, TaskStatus.CANCELED)]
    canceled = [e for e in seen if isinstance(e, events.WorkflowCanceled)]
    assert [(e.reason, e.canceled_by, e.current_step) for e in canceled] == [
        ("duplicate request", "ops", "tests.review_step")
    ]


# -- two versions of one workflow on one worker ----------------------------------------------------


async def test_two_versions_run_side_by_side_on_one_worker(
    client: WorkflowClient, new_worker: Any, pending_task: PendingTask
) -> None:
    async with new_worker(approvals.versioned_v1, approvals.versioned_v2) as worker:
        old = await client.start(
            approvals.versioned_v1, Request(subject="old", amount=1), task_queue=worker.task_queue
        )
        old_task = await pending_task(old)
        new = await client.start(
            "tests.versioned", {"subject": "new", "amount": 2}, task_queue=worker.task_queue
        )
        new_task = await pending_task(new)
        assert (await old.describe()).workflow_type == "tests.versioned@1.0.0"
        assert (await new.describe()).workflow_type == "tests.versioned@2.0.0"
        assert (await old.state()).workflow_version == "1.0.0"
        assert (await new.state()).workflow_version == "2.0.0"
        assert new_task.title == "Gate NEW"  # v2's extra step ran before the gate
        assert old_task.title == "Gate old"

        # Finish the newer instance first: each keeps running its own version's code.
        await new.complete_task(new_task.task_id, {"approved": True}, user="bob", groups=["reviewers"])
        await old.complete_task(old_task.task_id, {"approved": False}, user="bob", groups=["reviewers"])
        assert await new.result() == "v2:NEW:True"
        assert await old.result() == "v1:old:False"
        assert await activity_attempts(new, "tests.shout_subject") == [1]
        assert await activity_attempts(old, "tests.shout_subject") == []

        explicit = await client.start(
            "tests.versioned",
            {"subject": "pinned", "amount": 3},
            version="1.0.0",
            task_queue=worker.task_queue,
        )
        assert (await explicit.describe()).workflow_version == "1.0.0"
        await explicit.cancel()


# -- client-side refusals change nothing -----------------------------------------------------------


async def _no_commands_reached(handle: InstanceHandle[Any]) -> None:
    types = await history_event_types(handle)
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED not in types
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED not in types
    state = await handle.state()
    assert state.rejections == []
    assert [t.status for t in state.tasks] == [TaskStatus.PENDING]


async def test_client_refusals_raise_specific_errors_and_send_nothing(
    client: WorkflowClient, new_worker: Any, pending_task: PendingTask
) -> None:
    async with new_worker(approvals.review_workflow) as worker:
        handle = await client.start(
            approvals.review_workflow, Request(subject="phone", amount=700), task_queue=worker.task_queue
        )
        task = await pending_task(handle)

        with pytest.raises(FormValidationError) as invalid:
            await handle.complete_task(
                task.task_id, {"approved": "perhaps", "priority": 9}, user="bob", groups=["reviewers"]
            )
        assert invalid.value.form_name == "Decision"
        assert {e["field"] for e in invalid.value.errors} == {"approved", "priority"}
        assert "approved" in str(invalid.value)
        with pytest.raises(FormValidationError):
            await handle.signal_complete_task(task.task_id, {}, user="bob", groups=["reviewers"])

        with pytest.raises(TaskNotFoundError):
            await handle.complete_task(
                str(uuid.uuid4()), {"approved": True}, user="bob", groups=["reviewers"]
            )

        with pytest.raises(PermissionDeniedError, match="'eve' is not the assignee nor in group 'reviewers'"):
            await handle.complete_task(task.task_id, {"approved": True}, user="eve", groups=["staff"])
        with pytest.raises(PermissionDeniedError):
            await handle.complete_task(task.task_id, {"approved": True}, user="", groups=["reviewers"])

        await _no_commands_reached(handle)

        await handle.complete_task(task.task_id, {"approved": True}, user="bob", groups=["reviewers"])
        with pytest.raises(TaskNotPendingError) as not_pending:
            await handle.complete_task(task.task_id, {"approved": False}, user="bob", groups=["reviewers"])
        assert not_pending.value.status == "completed"
        assert await handle.result() == Outcome(approved=True, priority=3)


async def test_completed_task_is_refused_while_the_instance_still_runs(
    client: WorkflowClient, new_worker: Any, pending_task: PendingTask
) -> None:
    async with new_worker(approvals.two_reviews) as worker:
        handle = await client.start(
            approvals.two_reviews, Request(subject="budget", amount=5), task_queue=worker.task_queue
        )
        first = await pending_task(handle)
        await handle.complete_task(first.task_id, {"approved": True}, user="bob", groups=["reviewers"])
        second = await pending_task(handle)
        assert second.task_id != first.task_id

        with pytest.raises(TaskNotPendingError, match=f"task {first.task_id} is completed, not pending"):
            await handle.complete_task(first.task_id, {"approved": False}, user="bob", groups=["reviewers"])
        # A client that skips the SDK's checks reaches the workflow's update validator, which
        # refuses too, before anything is written to history.
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.temporal.execute_update(
                "complete_task_update",
                {
                    "task_id": first.task_id,
                    "user": "bob",
                    "groups": ["reviewers"],
                    "data": {"approved": False},
                },
            )
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == "TaskNotPendingError"

        await handle.complete_task(second.task_id, {"approved": False}, user="bob", groups=["reviewers"])
        assert await handle.result() == [True, False]
    update_accepted = [
        t
        for t in await history_event_types(handle)
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert len(update_accepted) == 2  # the two real completions, not the refused one


async def test_start_with_invalid_input_starts_nothing(client: WorkflowClient, new_worker: Any) -> None:
    workflow_id = f"tests-invalid-start-{uuid.uuid4()}"
    with pytest.raises(FormValidationError) as invalid:
        await client.start(
            approvals.review_workflow, {"subject": "x", "amount": -1}, id=workflow_id, task_queue="unused"
        )
    assert invalid.value.form_name == "Request"
    assert [e["field"] for e in invalid.value.errors] == ["amount"]
    with pytest.raises(FormValidationError):
        await client.start("tests.review", {"amount": 1}, id=workflow_id, task_queue="unused")
    with pytest.raises(InstanceNotFoundError):
        await client.describe(workflow_id)
    with pytest.raises(WorkflowNotFoundError):
        await client.start("tests.no_such_workflow", {}, id=workflow_id)
    with pytest.raises(WorkflowNotFoundError):
        await client.start("tests.versioned", {"subject": "x", "amount": 1}, version="3.0.0", id=workflow_id)
    with pytest.raises(TypeError, match="takes 1 argument"):
        await client.start(approvals.review_workflow, id=workflow_id)
    with pytest.raises(InstanceNotFoundError):
        await client.describe(workflow_id)


async def test_unknown_version_of_a_registered_workflow_lists_the_registered_versions(
    client: WorkflowClient,
) -> None:
    with pytest.raises(WorkflowNotFoundError, match=r"no version '3\.0\.0' \(registered: 1\.0\.0, 2\.0\.0\)"):
        await client.start("tests.versioned", {"subject": "x", "amount": 1}, version="3.0.0")
