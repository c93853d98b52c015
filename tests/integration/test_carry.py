"""Events carried by step activities: fewer local activities, the same rows, as promptly.

A machine step's activity carries the events buffered before it in its ``dwf-events`` header,
and the activity-side interceptor writes them before the step's code runs; urgent events with
no step to carry them are published by local activity before the workflow task ends. On both
databases, against the real dev server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import HeaderCodecBehavior
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadCodec, SerializationContext, WithSerializationContext
from temporalio.plugin import SimplePlugin
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartLocalActivityInput,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from activities import EventPublisher
from examples.expense_approval import Approval, Expense, ExpenseOutcome, expense_approval
from sdk import DevServer, InstanceHandle, StepStatus, TaskStatus, WorkflowClient, events
from sdk import WorkflowStatus as WS
from sdk._types import EventBatch
from sdk.mirror import MirrorWriter
from sdk.protocol import CARRY_HEADER, PUBLISH_ACTIVITY
from tests.integration.support import Eventually, PendingTask, instance_row, step_rows, task_rows
from tests.workflows import carrying, mirrored
from tests.workflows.mirrored import CLERKS, Order
from worker import create_worker, sandbox_runner, worker_components

DEFINITIONS = (expense_approval, *mirrored.WORKFLOWS, *carrying.WORKFLOWS)
"""What this module's writer registers and its worker runs (see ``test_mirror``'s fixtures)."""


async def start_and_review(
    client: WorkflowClient, worker: Worker, pending_task: PendingTask, definition: Any, *, approved: bool
) -> InstanceHandle[Any]:
    """Start ``definition`` for a vase and have a clerk answer its review by signal."""
    handle: InstanceHandle[Any] = await client.start(
        definition, Order(item="vase"), task_queue=worker.task_queue
    )
    task = await pending_task(handle)
    await handle.signal_complete_task(task.task_id, {"approved": approved}, user="erin", groups=[CLERKS])
    return handle


async def task_completed(db: Any, handle: InstanceHandle[Any]) -> None:
    ((row),) = await task_rows(db, handle)
    assert row["status"] == TaskStatus.COMPLETED.value, row["status"]


def type_names(batch: EventBatch) -> list[str]:
    return [item["type"] for item in batch.events]


async def history_profile(handle: InstanceHandle[Any]) -> tuple[int, list[str], dict[str, list[str]]]:
    """From the history: publish local activities, patch markers and search-attribute updates,
    and the event types each activity carried, by activity type."""
    publishes, patches, carried = 0, [], {}
    async for event in handle.temporal.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            attrs = event.marker_recorded_event_attributes
            if attrs.marker_name == "core_local_activity" and PUBLISH_ACTIVITY in str(attrs.details):
                publishes += 1
            elif attrs.marker_name == "core_patch":
                patches.append("marker")
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            patches.append("search attributes")
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            payload = attrs.header.fields[CARRY_HEADER]
            batch = pydantic_data_converter.payload_converter.from_payload(payload, EventBatch)
            carried[attrs.activity_type.name] = type_names(batch)
    return publishes, patches, carried


class LocalActivityCounter(Interceptor):
    """Counts the local activities a replayed workflow starts."""

    def __init__(self) -> None:
        self.started = 0

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        counter = self

        class Outbound(WorkflowOutboundInterceptor):
            def start_local_activity(self, input: StartLocalActivityInput) -> Any:
                counter.started += 1
                return self.next.start_local_activity(input)

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

        return Inbound


async def test_commands_do_not_depend_on_the_interceptor(
    mirror_client: WorkflowClient, worker: Worker, db: Any
) -> None:
    # Run with the interceptor, replayed without: a failed step's events and the next step's
    # carry must give the same commands either way.
    handle = await mirror_client.start(
        carrying.carry_past_a_failure, Order(item="kite"), task_queue=worker.task_queue
    )
    assert await asyncio.wait_for(handle.result(), 60) == "kite+kite"
    history = await handle.temporal.fetch_history()
    counter = LocalActivityCounter()  # counts, and leaves the headers alone
    bare = Replayer(
        workflows=[carrying.carry_past_a_failure.workflow_class],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
        interceptors=[counter],
    )
    assert (await bare.replay_workflow(history)).replay_failure is None
    publishes, _, _ = await history_profile(handle)
    assert counter.started == publishes
    assert [(s["step_name"], s["status"]) for s in await step_rows(db, handle)] == [
        ("carry_echo", StepStatus.SUCCEEDED),
        ("carry_fail", StepStatus.FAILED),
        ("carry_echo", StepStatus.SUCCEEDED),
    ]
    assert (await instance_row(db, handle))["status"] == WS.COMPLETED


async def test_signal_path_publishes_twice_and_steps_carry_the_rest(
    mirror_client: WorkflowClient, worker: Worker, db: Any, pending_task: PendingTask
) -> None:
    expense = Expense(employee="ann", amount=80.0, description="train")
    handle = await mirror_client.start(expense_approval, expense, task_queue=worker.task_queue)
    task = await pending_task(handle)
    await handle.signal_complete_task(task.task_id, Approval(approved=True), user="mia", groups=["managers"])
    outcome = await handle.result()
    assert isinstance(outcome, ExpenseOutcome) and outcome.status == "paid"

    publishes, patches, carried = await history_profile(handle)
    # Two local activities: the task row before the wait, and the end. The rest rides along.
    # The patch marker (and the search attribute Temporal updates with it) tells these
    # instances from those started before events could ride along; the first signal adds
    # the marker of instances whose signals are verified (their verdicts in history).
    assert (publishes, patches) == (2, ["marker", "search attributes"] * 2)
    assert carried == {
        "validate_expense": ["WorkflowStarted", "StepStarted"],
        "pay_expense": ["HumanTaskCompleted", "StepCompleted", "StepStarted"],
    }
    instance = await instance_row(db, handle)
    assert (instance["status"], instance["current_step"], instance["last_event_seq"]) == (
        WS.COMPLETED,
        None,
        10,
    )
    steps = await step_rows(db, handle)
    assert [(s["step_name"], s["status"]) for s in steps] == [
        ("validate_expense", StepStatus.SUCCEEDED),
        ("manager_approval", StepStatus.SUCCEEDED),
        ("pay_expense", StepStatus.SUCCEEDED),
    ]
    assert steps[2]["input_data"] is not None and steps[1]["completed_by"] == "mia"
    ((row),) = await task_rows(db, handle)
    assert (row["status"], row["completed_by"]) == (TaskStatus.COMPLETED.value, "mia")


async def test_the_next_step_writes_the_completion_before_its_code_runs(
    mirror_client: WorkflowClient,
    worker: Worker,
    db: Any,
    pending_task: PendingTask,
    assert_eventually: Eventually,
) -> None:
    handle = await start_and_review(
        mirror_client, worker, pending_task, carrying.carry_then_hold, approved=True
    )

    async def completed_while_holding() -> None:
        await task_completed(db, handle)
        instance = await instance_row(db, handle)
        assert (instance["status"], instance["current_step"]) == (WS.RUNNING, "carry_hold")
        hold = [s for s in await step_rows(db, handle) if s["step_name"] == "carry_hold"]
        assert [s["status"] for s in hold] == [StepStatus.RUNNING]

    try:
        await assert_eventually(completed_while_holding)  # the step is still waiting here
    finally:
        carrying.RELEASE.setdefault(handle.id, asyncio.Event()).set()
    assert await handle.result() == "held-vase"


async def test_a_completion_no_step_carries_is_published_before_the_timer(
    mirror_client: WorkflowClient,
    worker: Worker,
    db: Any,
    pending_task: PendingTask,
    assert_eventually: Eventually,
) -> None:
    handle = await start_and_review(
        mirror_client, worker, pending_task, carrying.carry_then_sleep, approved=False
    )
    await assert_eventually(lambda: task_completed(db, handle))  # the workflow now sleeps for a day
    await handle.cancel(reason="test over", by="erin")
    await assert_eventually(lambda: _status_is(db, handle, WS.CANCELED))


async def _status_is(db: Any, handle: Any, status: WS) -> None:
    assert (await instance_row(db, handle))["status"] == status


async def test_a_worker_without_the_interceptor_still_mirrors_every_row(
    mirror_client: WorkflowClient, writer: MirrorWriter, db: Any, pending_task: PendingTask
) -> None:
    # Built by hand from the public parts, without create_worker: no activity carries
    # anything, and what the steps were given comes with the next local activity instead.
    classes, step_activities = worker_components(DEFINITIONS, publisher=EventPublisher((), writer))
    async with Worker(
        mirror_client.temporal,
        task_queue=f"tests-bare-{id(writer)}",
        workflows=classes,
        activities=step_activities,
        workflow_runner=sandbox_runner(),
    ) as bare:
        handle = await mirror_client.start(
            mirrored.mirror_order, Order(item="Chair"), task_queue=bare.task_queue
        )
        task = await pending_task(handle)
        await handle.signal_complete_task(task.task_id, {"approved": True}, user="erin", groups=[CLERKS])
        assert await asyncio.wait_for(handle.result(), 60) == "shipped-chair-1"
    instance = await instance_row(db, handle)
    assert (instance["status"], instance["last_event_seq"]) == (WS.COMPLETED, 10)
    assert [(s["step_name"], s["status"], s["step_seq"]) for s in await step_rows(db, handle)] == [
        ("mirror_prepare", StepStatus.SUCCEEDED, 1),
        ("mirror_review", StepStatus.SUCCEEDED, 2),
        ("mirror_ship", StepStatus.SUCCEEDED, 3),
    ]


async def test_handlers_without_a_mirror_see_each_carried_event_once(
    client: WorkflowClient, new_worker: Any, pending_task: PendingTask
) -> None:
    seen: list[events.WorkflowEvent] = []
    async with new_worker(*DEFINITIONS, event_handlers=[seen.append]) as plain:
        # The first step fails once: its retry must not hand the carried events over again.
        handle = await client.start(
            mirrored.mirror_order, Order(item="Desk", fail_times=1), task_queue=plain.task_queue
        )
        task = await pending_task(handle)
        await handle.signal_complete_task(task.task_id, {"approved": True}, user="erin", groups=[CLERKS])
        assert await handle.result() == "shipped-desk-1"
    mine = [e for e in seen if e.instance_id == handle.instance_id]
    assert [type(e).__name__ for e in mine] == mirrored.ORDER_EVENTS


class _PassThroughCodec(PayloadCodec):
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


async def test_a_client_whose_codec_skips_headers_is_refused(server: DevServer) -> None:
    # Carried events (form data included) travel in a header: a codec must cover headers too.
    converter = dataclasses.replace(pydantic_data_converter, payload_codec=_PassThroughCodec())
    plain = await Client.connect(server.target, data_converter=converter)
    with pytest.raises(ValueError, match="header_codec_behavior"):
        create_worker(plain, task_queue="codec-refused", workflows=[expense_approval])
    covered = await Client.connect(
        server.target, data_converter=converter, header_codec_behavior=HeaderCodecBehavior.CODEC
    )
    assert create_worker(covered, task_queue="codec-covered", workflows=[expense_approval]).task_queue
    # A codec a client plugin adds is the client's codec too.
    plugged = await Client.connect(
        server.target,
        data_converter=pydantic_data_converter,
        plugins=[SimplePlugin("codec", data_converter=converter)],
    )
    with pytest.raises(ValueError, match="header_codec_behavior"):
        create_worker(plugged, task_queue="codec-plugged", workflows=[expense_approval])


class _RecordingCodec(PayloadCodec, WithSerializationContext):
    """Passes payloads through; records the context temporalio binds it to for each command."""

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    def with_context(self, context: SerializationContext) -> _RecordingCodec:
        self.seen.append(type(context).__name__)
        return self

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


async def test_a_codec_is_bound_to_each_command_s_context_and_without_one_none_is_computed(
    server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a codec (or external storage) the worker skips temporalio's per-payload context
    # lookups, which change nothing then; a codec must still get each activity's own context
    # on the workflow side (the step's input encoded, its result decoded), on top of the
    # contexts the activity worker binds it to.
    import worker._build as build
    from tests.workflows import machine

    seen: list[str] = []
    converter = dataclasses.replace(pydantic_data_converter, payload_codec=_RecordingCodec(seen))
    coded = await Client.connect(
        server.target, data_converter=converter, header_codec_behavior=HeaderCodecBehavior.CODEC
    )
    plain = await Client.connect(server.target, data_converter=pydantic_data_converter)
    assert (
        create_worker(plain, task_queue="contexts-plain").config()["workflow_runner"].contexts_matter is False
    )
    # A codec a client plugin adds counts too: the worker reads the converter in use.
    plugged = await Client.connect(
        server.target,
        data_converter=pydantic_data_converter,
        header_codec_behavior=HeaderCodecBehavior.CODEC,
        plugins=[SimplePlugin("codec", data_converter=converter)],
    )
    assert create_worker(plugged, task_queue="contexts-plugged").config()["workflow_runner"].contexts_matter

    async def activity_contexts(contexts_matter: bool | None) -> int:
        seen.clear()
        with monkeypatch.context() as patch:
            if contexts_matter is not None:
                patch.setattr(build, "_contexts_matter", lambda client: contexts_matter)
            built = create_worker(coded, task_queue=f"contexts-{uuid.uuid4()}", workflows=[machine.retrying])
        assert built.config()["workflow_runner"].contexts_matter is (contexts_matter is not False)
        async with built:
            report = await coded.execute_workflow(
                machine.retrying.workflow_type,
                machine.FlakyPlan(failures=0),
                id=f"contexts-{uuid.uuid4()}",
                task_queue=built.task_queue,
            )
        assert report["attempt"] == 1
        return seen.count("ActivitySerializationContext")

    computed, skipped = await activity_contexts(None), await activity_contexts(False)
    assert computed >= skipped + 2, (computed, skipped)
