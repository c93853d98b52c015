"""Graph definitions on the real Temporal dev server, with the mirror on SQLite and PostgreSQL.

One worker per backend runs the interpreter and the module's code-first workflows; graphs
are started (and registered) while it runs, never restarting it. Every test ends with an
audit of its instances: the mirror equals what replaying Temporal's history implies.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from sdk import (
    DevServer,
    FormValidationError,
    GraphDefinition,
    InstanceHandle,
    InstanceNotFoundError,
    WorkflowClient,
    find_temporal_cli,
)
from sdk.mirror import MirrorWriter, audit, instance_diagram, load_graph
from sdk.protocol import EVENT_SIGNAL
from sdk.runtime import GraphWorkflow, sandbox_runner
from tests.integration.support import step_rows
from tests.workflows import graphs
from tests.workflows.graphs import REVIEWERS, claim_graph

DEFINITIONS = graphs.DEFINITIONS
REPO = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).parent / "dwf"
DWF = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sdk._cli"]
REVIEWER = {"user": "rita", "groups": [REVIEWERS]}


async def _steps(db: AsyncEngine, handle: InstanceHandle[Any]) -> list[tuple[str, str, str]]:
    rows = await step_rows(db, handle)
    return [
        (
            r["step_name"],
            str(getattr(r["step_type"], "value", r["step_type"])),
            str(getattr(r["status"], "value", r["status"])),
        )
        for r in rows
    ]


async def _audit_clean(
    mirror_client: WorkflowClient, writer: MirrorWriter, eventually: Any, *handles: InstanceHandle[Any]
) -> None:
    async def clean() -> None:
        report = await audit(mirror_client.temporal, writer, [h.id for h in handles])
        assert report.clean, str(report)

    await eventually(clean, timeout=20)


async def _start(
    mirror_client: WorkflowClient,
    worker: Worker,
    graph: GraphDefinition | str,
    data: dict[str, Any],
    **kw: Any,
) -> InstanceHandle[Any]:
    return await mirror_client.start_graph(graph, data, task_queue=worker.task_queue, **kw)


async def test_exclusive_gateway_takes_a_branch_and_skips_the_others(
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    assert_eventually: Any,
) -> None:
    handle = await _start(mirror_client, worker, claim_graph(), {"claim_id": "C-1", "amount": 500.0})
    result = await handle.result()
    assert result["pay"] == "paid 500.00" and result["assess"]["risk"] == 0
    rows = await _steps(db, handle)
    assert ("graph_assess", "MACHINE", "SUCCEEDED") in rows
    assert ("triage", "GATEWAY", "SUCCEEDED") in rows
    assert ("graph_pay", "MACHINE", "SUCCEEDED") in rows
    skipped = {name for name, _, status in rows if status == "SKIPPED"}
    assert skipped == {
        "checks",
        "graph_review",
        "graph_check_fraud",
        "checks_done",
        "decide",
        "partner",
        "graph_reject",
    }
    await _audit_clean(mirror_client, writer, assert_eventually, handle)


async def test_parallel_human_and_machine_join_then_an_external_event(
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    assert_eventually: Any,
    pending_task: Any,
) -> None:
    key = f"C-{uuid.uuid4().hex[:8]}"
    handle = await _start(mirror_client, worker, claim_graph(), {"claim_id": key, "amount": 5000.0})
    task = await pending_task(handle)
    await handle.complete_task(task.task_id, {"approved": True}, **REVIEWER)

    async def waiting() -> None:
        assert ("partner", "WEBHOOK", "RUNNING") in await _steps(db, handle)

    await assert_eventually(waiting)
    sent_to = await mirror_client.send_event("partner_report", key, {"estimate": 4800})
    assert sent_to == handle.id
    result = await handle.result()
    assert result["partner"] == {"estimate": 4800}
    assert result["review"]["approved"] is True and result["fraud"] == {"clean": True}
    rows = await _steps(db, handle)
    kinds = {kind for _, kind, _ in rows}
    assert {"MACHINE", "HUMAN", "GATEWAY", "WEBHOOK"} <= kinds
    assert ("checks_done", "GATEWAY", "SUCCEEDED") in rows
    assert ("graph_review", "HUMAN", "SUCCEEDED") in rows
    assert ("graph_reject", "MACHINE", "SKIPPED") in rows
    diagram = await instance_diagram(db, (await handle.describe()).instance_id)
    assert "class n_review succeeded" in diagram and "class n_reject skipped" in diagram
    await _audit_clean(mirror_client, writer, assert_eventually, handle)


async def test_events_stay_in_their_tenant_and_malformed_ones_are_refused(
    server: DevServer,
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    database_url: str,
    db: AsyncEngine,
    assert_eventually: Any,
) -> None:
    key = f"T-{uuid.uuid4().hex[:8]}"
    graph = graphs.small_graph(
        "graph_tenant_event",
        [
            {"id": "estimate", "kind": "event", "event": "estimate", "correlation": "data.claim_id"},
            {"id": "paid", "kind": "machine", "uses": "graph_pay"},
        ],
        [{"source": "estimate", "target": "paid"}],
        ["paid"],
    )
    handle = await _start(mirror_client, worker, graph, {"claim_id": key, "amount": 3.0}, tenant_id="acme")

    async def waiting() -> None:
        assert ("estimate", "WEBHOOK", "RUNNING") in await _steps(db, handle)

    await assert_eventually(waiting)
    other = await WorkflowClient.connect(server.target, database_url=database_url, tenant_id="globex")
    try:
        with pytest.raises(InstanceNotFoundError):
            await other.send_event("estimate", key, {"x": 1})
        with pytest.raises(InstanceNotFoundError):
            await other.send_event("estimate", key, {"x": 1}, workflow_id=handle.id)
    finally:
        await other.close()
    await handle.temporal.signal(EVENT_SIGNAL, {"event": "estimate"})  # no key: refused
    await handle.temporal.signal(EVENT_SIGNAL, {"event": "estimate", "key": "wrong"})  # kept, unused

    async def refused() -> None:
        state = await handle.state()
        assert len(state.rejections) == 1 and "malformed external event" in state.rejections[0].reason
        assert state.current_step == "estimate"

    await assert_eventually(refused)
    assert await mirror_client.send_event("estimate", key, {"x": 2}) == handle.id
    assert (await handle.result())["estimate"] == {"x": 2}
    await _audit_clean(mirror_client, writer, assert_eventually, handle)


async def test_start_data_that_does_not_fit_the_schema_starts_nothing(
    mirror_client: WorkflowClient, worker: Worker
) -> None:
    workflow_id = f"graph-bad-data-{uuid.uuid4()}"
    with pytest.raises(FormValidationError):
        await _start(mirror_client, worker, claim_graph(), {"claim_id": 7}, id=workflow_id)
    with pytest.raises(InstanceNotFoundError):
        await mirror_client.get_instance(workflow_id).describe()


async def test_event_timeout_takes_the_timeout_edge_and_a_timer_waits(
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    assert_eventually: Any,
) -> None:
    graph = graphs.waits_graph()
    handle = await _start(
        mirror_client,
        worker,
        graph,
        {"claim_id": "T-1", "amount": 1.0, "not_before": "2020-01-01T00:00:00+00:00"},
    )
    result = await handle.result()
    assert result["rejected"] == "rejected T-1" and "wait" not in result
    rows = await _steps(db, handle)
    assert ("pause", "TIMER", "SUCCEEDED") in rows and ("until", "TIMER", "SUCCEEDED") in rows
    assert ("wait", "WEBHOOK", "SUCCEEDED") in rows
    assert ("graph_pay", "MACHINE", "SKIPPED") in rows
    await _audit_clean(mirror_client, writer, assert_eventually, handle)


async def test_nested_gateways_and_a_join_on_the_first_branch(
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    assert_eventually: Any,
    pending_task: Any,
) -> None:
    graph = graphs.nested_graph()
    handle = await _start(mirror_client, worker, graph, {"claim_id": "N-1", "amount": 5000.0})

    async def two_tasks() -> list[Any]:
        state = await handle.state()
        assert len(state.pending_tasks) == 2
        return state.pending_tasks

    tasks = await assert_eventually(two_tasks)
    big = next(t for t in tasks if t.step_name == "graph_review")
    await handle.complete_task(big.task_id, {"approved": False, "comment": "too big"}, **REVIEWER)
    result = await handle.result()
    assert result["first"] == {"route": {"big": {"approved": False, "comment": "too big"}}}
    rows = await _steps(db, handle)
    assert ("graph_assess", "MACHINE", "SKIPPED") in rows  # the exclusive branch not taken
    assert ("graph_second_review", "HUMAN", "SKIPPED") in rows  # canceled once the join had one
    assert ("first", "GATEWAY", "SUCCEEDED") in rows
    await _audit_clean(mirror_client, writer, assert_eventually, handle)


async def test_canceling_an_instance_cancels_its_branches(
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    assert_eventually: Any,
) -> None:
    handle = await _start(mirror_client, worker, graphs.nested_graph(), {"claim_id": "X-1", "amount": 5000.0})

    async def two_tasks() -> None:
        assert len((await handle.state()).pending_tasks) == 2

    await assert_eventually(two_tasks)
    await handle.cancel(reason="withdrawn", by="ops")
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert (await handle.describe()).status.value == "CANCELED"
    await _audit_clean(mirror_client, writer, assert_eventually, handle)


async def test_sub_workflows_graph_and_code(
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    assert_eventually: Any,
) -> None:
    await mirror_client.register_graph(graphs.child_graph())
    parent = graphs.parent_graph()
    handle = await _start(mirror_client, worker, parent, {"claim_id": "S-1", "amount": 2500.0})
    result = await handle.result()
    assert result["as_graph"]["score"] == {"risk": 2, "note": "assessed S-1"}
    assert result["as_code"] == "paid 2500.00"
    rows = await _steps(db, handle)
    assert ("as_graph", "MACHINE", "SUCCEEDED") in rows and ("as_code", "MACHINE", "SUCCEEDED") in rows
    child_handle = mirror_client.get_instance(f"{handle.id}.as_graph")
    code_handle = mirror_client.get_instance(f"{handle.id}.as_code")
    await _audit_clean(mirror_client, writer, assert_eventually, handle, child_handle, code_handle)


async def test_registered_at_run_time_and_running_instances_keep_their_version(
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    assert_eventually: Any,
    pending_task: Any,
) -> None:
    name = f"graph_live_{uuid.uuid4().hex[:6]}"
    v1 = graphs.small_graph(
        name,
        [
            {"id": "ask", "kind": "human", "uses": "graph_review"},
            {"id": "end", "kind": "machine", "uses": "graph_pay"},
        ],
        [{"source": "ask", "target": "end"}],
        ["end"],
    )
    await mirror_client.register_graph(v1)
    first = await _start(mirror_client, worker, name, {"claim_id": "R-1", "amount": 10.0})
    task = await pending_task(first)
    v2 = graphs.small_graph(
        name,
        [{"id": "end", "kind": "machine", "uses": "graph_reject"}],
        [],
        ["end"],
        version="2.0.0",
    )
    await mirror_client.register_graph(v2)
    assert (await load_graph(db, name)).version == "2.0.0"
    second = await _start(mirror_client, worker, name, {"claim_id": "R-2", "amount": 10.0})
    assert (await second.result())["end"] == "rejected R-2"
    await first.complete_task(task.task_id, {"approved": True}, **REVIEWER)
    assert (await first.result())["end"] == "paid 10.00"  # still version 1.0.0
    await _audit_clean(mirror_client, writer, assert_eventually, first, second)


async def test_code_first_timer_skip_and_an_event_from_the_temporal_cli(
    mirror_client: WorkflowClient,
    worker: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    assert_eventually: Any,
    server: DevServer,
) -> None:
    handle = await mirror_client.start(
        graphs.graph_code_waits, graphs.Claim(claim_id="K-1", amount=50.0), task_queue=worker.task_queue
    )

    async def waiting() -> None:
        assert ("partner_report", "WEBHOOK", "RUNNING") in await _steps(db, handle)

    await assert_eventually(waiting)
    payload = json.dumps({"event": "partner_report", "key": "K-1", "payload": {"ok": True}})
    subprocess.run(
        [
            str(find_temporal_cli()),
            "workflow",
            "signal",
            "--address",
            server.target,
            "--workflow-id",
            handle.id,
            "--name",
            EVENT_SIGNAL,
            "--input",
            payload,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    assert await handle.result() == {"report": {"ok": True}}
    rows = await _steps(db, handle)
    assert ("cool_down", "TIMER", "SUCCEEDED") in rows
    assert any(n == "graph_review" and s == "SKIPPED" for n, _, s in rows)
    assert ("partner_report", "WEBHOOK", "SUCCEEDED") in rows
    await _audit_clean(mirror_client, writer, assert_eventually, handle)


async def test_a_bad_definition_fails_the_instance_cleanly(
    mirror_client: WorkflowClient, worker: Worker, writer: MirrorWriter, assert_eventually: Any
) -> None:
    bogus = {
        "definition": {"name": "broken", "start": "x", "terminals": ["x"], "steps": [], "edges": []},
        "graphs": {},
    }
    raw = await mirror_client.temporal.start_workflow(
        "dwf.graph", args=[bogus, {}], id=f"broken-{uuid.uuid4()}", task_queue=worker.task_queue
    )
    with pytest.raises(WorkflowFailureError):
        await raw.result()
    await _audit_clean(mirror_client, writer, assert_eventually, mirror_client.get_instance(raw.id))


HISTORY_FILES = sorted((Path(__file__).parents[1] / "histories" / "graphs").glob("*.json"))


@pytest.mark.parametrize("path", HISTORY_FILES, ids=lambda p: p.stem)
async def test_recorded_graph_histories_replay(path: Path) -> None:
    """Histories recorded by ``python -m tests.histories.record_graphs`` replay exactly."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[GraphWorkflow, *(d.workflow_class for d in graphs.DEFINITIONS)],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


def test_every_step_kind_has_a_recorded_history() -> None:
    kinds: set[str] = set()
    for path in HISTORY_FILES:
        started = json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]
        spec = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
        if isinstance(spec, dict) and "definition" in spec:
            for graph in [spec["definition"], *spec["graphs"].values()]:
                kinds |= {step["kind"] for step in graph["steps"]}
    assert {"machine", "human", "exclusive", "parallel", "join", "timer", "event", "subworkflow"} <= kinds


async def test_graph_histories_replay(mirror_client: WorkflowClient, worker: Worker) -> None:
    handle = await _start(mirror_client, worker, claim_graph(), {"claim_id": "P-1", "amount": 10.0})
    await handle.result()
    history = await mirror_client.temporal.get_workflow_handle(handle.id).fetch_history()
    replayer = Replayer(
        workflows=[GraphWorkflow], data_converter=pydantic_data_converter, workflow_runner=sandbox_runner()
    )
    await replayer.replay_workflow(history)


async def _dwf(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *DWF,
        *args,
        cwd=REPO,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_dwf_graph_commands_and_event_send(
    server: DevServer,
    worker: Worker,
    writer: MirrorWriter,
    database_url: str,
    db: AsyncEngine,
    mirror_client: WorkflowClient,
    assert_eventually: Any,
    tmp_path: Path,
) -> None:
    name = f"graph_cli_{uuid.uuid4().hex[:6]}"
    graph = graphs.small_graph(
        name,
        [
            {"id": "estimate", "kind": "event", "event": "estimate", "correlation": "data.claim_id"},
            {"id": "paid", "kind": "machine", "uses": "graph_pay"},
        ],
        [{"source": "estimate", "target": "paid"}],
        ["paid"],
    )
    good = tmp_path / "claim.yaml"
    good.write_text(graph.to_yaml())
    bad = tmp_path / "bad.json"
    bad.write_text(graph.to_json().replace('"target": "paid"', '"target": "limbo"'))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DWF_") or k in ("DWF_SIGNING_KEY", "DWF_COMMAND_KEYS")
    }
    env.update(
        PYTHONPATH=str(REPO),
        DWF_TEMPORAL_ADDRESS=server.target,
        DWF_TASK_QUEUE=worker.task_queue,
        DWF_DATABASE_URL=database_url,
        DWF_APP="tests.workflows.graphs",
    )

    code, out, err = await _dwf(env, "graph", "validate", str(good), "--diagram")
    assert code == 0 and "valid" in out and "flowchart TD" in out, err
    code, out, err = await _dwf(env, "graph", "validate", str(bad))
    assert code == 2 and "estimate -> limbo" in err, err
    code, out, err = await _dwf(env, "graph", "register", str(good))
    assert code == 0 and "registered" in out, err
    code, out, err = await _dwf(
        env, "--json", "start", name, "--input", '{"claim_id": "CLI-1", "amount": 7.0}'
    )
    assert code == 0, err
    started = json.loads(out)
    handle = mirror_client.get_instance(started["workflow_id"], started["run_id"])

    async def waiting() -> None:
        assert ("estimate", "WEBHOOK", "RUNNING") in await _steps(db, handle)

    await assert_eventually(waiting)
    code, out, err = await _dwf(
        env, "event", "send", "estimate", "CLI-1", "--payload", '{"garage": "Main St"}'
    )
    assert code == 0 and started["workflow_id"] in out, err
    assert (await handle.result())["estimate"] == {"garage": "Main St"}
    code, out, err = await _dwf(env, "graph", "show", "--instance", str(started["instance_id"]))
    assert code == 0 and "class n_estimate succeeded" in out and "class n_paid succeeded" in out, err
    code, out, err = await _dwf(env, "graph", "deactivate", name, "1.0.0")
    assert code == 0, err
    code, out, err = await _dwf(env, "start", name, "--input", "{}")
    assert code == 3 and "no workflow" in err, err  # no active version left
    await _audit_clean(mirror_client, writer, assert_eventually, handle)
