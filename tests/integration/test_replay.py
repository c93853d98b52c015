"""Determinism: recorded and fresh histories of the expense example replay without error.

The stored histories (``tests/histories/*.json``, written by ``python -m tests.histories.record``)
are what instances started by older code look like. If the compiler or the workflow runtime
changes the commands a workflow issues, these replays fail: running instances would break.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from examples.expense_approval import expense_approval
from sdk import WorkflowClient
from tests.histories.record import SCENARIOS, history_path, run_scenarios
from tests.integration.support import PendingTask
from tests.workflows import local
from tests.workflows.drifted import DRIFTED_WORKFLOW_CLASS
from tests.workflows.local_turned import TURNED_REGULAR_CLASS
from tests.workflows.mirrored import CLERKS, Order
from worker import sandbox_runner

HISTORY_FILES = sorted(Path(history_path(SCENARIOS[0])).parent.glob("*.json"))


def replayer(*workflow_classes: type) -> Replayer:
    return Replayer(
        workflows=list(workflow_classes),
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def started_attempts(events: list[HistoryEvent], activity_type: str) -> list[int]:
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    return [
        e.activity_task_started_event_attributes.attempt
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and scheduled[e.activity_task_started_event_attributes.scheduled_event_id] == activity_type
    ]


def test_every_scenario_has_a_recorded_history() -> None:
    assert {history_path(s) for s in SCENARIOS} <= set(HISTORY_FILES)


def test_recorded_histories_show_what_their_names_say() -> None:
    by_name = {s.name: load(history_path(s)).events for s in SCENARIOS}
    for events in by_name.values():
        started = events[0].workflow_execution_started_event_attributes
        assert started.workflow_type.name == "expense_approval@1.0.0"
        assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    assert started_attempts(by_name["approved"], "pay_expense") == [1]
    assert started_attempts(by_name["rejected"], "pay_expense") == []
    assert started_attempts(by_name["retried_payment"], "pay_expense") == [3]
    signaled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    assert any(e.event_type == signaled for e in by_name["rejected"])
    updated = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
    assert any(e.event_type == updated for e in by_name["approved"])
    # The repeated comment was refused: replay protection's patch marker, one signal per comment.
    markers = [
        e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data
        for e in by_name["commented_twice"]
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]
    assert any(b"dwf-replay-guard/" in m for m in markers), markers
    assert sum(e.event_type == signaled for e in by_name["commented_twice"]) == 2


@pytest.mark.parametrize("path", HISTORY_FILES, ids=lambda p: p.stem)
async def test_recorded_history_replays_without_determinism_error(path: Path) -> None:
    result = await replayer(expense_approval.workflow_class).replay_workflow(load(path))
    assert result.replay_failure is None


async def test_changed_workflow_code_fails_replay() -> None:
    # The replay test can fail: the same workflow type with one more step does not replay.
    history = load(history_path(SCENARIOS[0]))
    with pytest.raises(NondeterminismError, match="Nondeterminism error"):
        await replayer(DRIFTED_WORKFLOW_CLASS).replay_workflow(history)


async def test_fresh_histories_replay_without_determinism_error(
    client: WorkflowClient, new_worker: Any
) -> None:
    async with new_worker(expense_approval) as worker:
        histories = await run_scenarios(client, worker.task_queue)
    assert set(histories) == {s.name for s in SCENARIOS}
    assert started_attempts(histories["retried_payment"].events, "pay_expense") == [3]
    replay = replayer(expense_approval.workflow_class)
    for history in histories.values():
        result = await replay.replay_workflow(history)
        assert result.replay_failure is None


async def test_local_step_histories_replay_and_their_steps_are_markers(
    client: WorkflowClient, new_worker: Any, pending_task: PendingTask
) -> None:
    # Local steps' results (and their retries) come from markers on replay; the steps never run.
    async with new_worker(*local.WORKFLOWS) as worker:
        order = await client.start(
            local.local_order, Order(item="Vase", fail_times=1), task_queue=worker.task_queue
        )
        task = await pending_task(order)
        await order.signal_complete_task(task.task_id, {"approved": True}, user="erin", groups=[CLERKS])
        backoff = await client.start(
            local.local_backoff_flow, Order(item="kite", fail_times=1), task_queue=worker.task_queue
        )
        assert (await order.result(), await backoff.result()) == ("shipped-vase-1", "kite at attempt 2")
    histories = [await order.temporal.fetch_history(), await backoff.temporal.fetch_history()]
    for history in histories:
        kinds = {e.event_type for e in history.events}
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds
        assert EventType.EVENT_TYPE_MARKER_RECORDED in kinds
    replay = replayer(local.local_order.workflow_class, local.local_backoff_flow.workflow_class)
    for history in histories:
        assert (await replay.replay_workflow(history)).replay_failure is None
    # Turning the steps into regular activities changes the commands: a new version is needed.
    with pytest.raises(NondeterminismError, match="Nondeterminism error"):
        await replayer(TURNED_REGULAR_CLASS).replay_workflow(histories[0])


def test_signed_histories_record_the_signals_verdict() -> None:
    # Since commands are signed, a signal's verification runs as a local activity whose verdict
    # is a marker in the history: replay reads it, and never needs the keys.
    events = load(history_path(SCENARIOS[1], "signed")).events
    markers = [
        e.marker_recorded_event_attributes for e in events if e.HasField("marker_recorded_event_attributes")
    ]
    patches = [m.details["patch-data"].payloads[0].data for m in markers if m.marker_name == "core_patch"]
    assert any(b"dwf-signed-commands" in p for p in patches), patches
    verdicts = [m.details["data"].payloads[0].data for m in markers if m.marker_name == "core_local_activity"]
    assert any(b"dwf.verify_command" in v for v in verdicts), verdicts
    signaled = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
    payload = signaled[0].workflow_execution_signaled_event_attributes.input.payloads[0].data
    assert b'"auth"' in payload and b'"signature"' in payload
