"""Record Temporal histories of graph instances (and of code-first waits) for replay tests.

Run from the repository root, in the virtualenv, after a deliberate change of the graph
interpreter's commands::

    python -m tests.histories.record_graphs

It starts a dev server (no mirror), runs each scenario to completion, and writes
``tests/histories/graphs/<scenario>.json``. The scenarios cover every step kind: an
exclusive gateway, a parallel fork of a human and a machine step joined, an external event,
timers, an event's timeout, nested gateways with a first-branch join, sub-workflows (graph and
code), and a code-first workflow with a timer, a skipped step and an event.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from sdk import DevServer, InstanceHandle, TaskInfo, WorkflowClient, generate_signing_key
from sdk.protocol import EVENT_SIGNAL
from tests.workflows import graphs
from worker import create_worker

HISTORY_DIR = Path(__file__).resolve().parent / "graphs"
REVIEWER = {"user": "rita", "groups": [graphs.REVIEWERS]}


async def _tasks(handle: InstanceHandle[Any], count: int = 1, timeout: float = 15.0) -> list[TaskInfo]:
    deadline = time.monotonic() + timeout
    while True:
        state = await handle.state()
        if len(state.pending_tasks) >= count:
            return state.pending_tasks
        if time.monotonic() > deadline:
            raise TimeoutError(f"{handle.id} created no task within {timeout}s")
        await asyncio.sleep(0.05)


async def _until_waiting(handle: InstanceHandle[Any], step: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while (await handle.state()).current_step != step:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{handle.id} never reached {step}")
        await asyncio.sleep(0.05)


async def run_scenarios(client: WorkflowClient, task_queue: str) -> dict[str, WorkflowHistory]:
    """Every scenario to completion on ``task_queue``; their histories by name."""
    out: dict[str, WorkflowHistory] = {}

    async def start(name: str, graph: Any, data: dict[str, Any], **kw: Any) -> InstanceHandle[Any]:
        # The workflow id is the scenario's name, the name the replay test gives the history.
        return await client.start_graph(graph, data, task_queue=task_queue, id=name, **kw)

    fast = await start("claim-fast", graphs.claim_graph(), {"claim_id": "H-1", "amount": 500.0})
    await fast.result()
    out["claim-fast"] = await fast.temporal.fetch_history()

    full = await start("claim-fork-join-event", graphs.claim_graph(), {"claim_id": "H-2", "amount": 5000.0})
    task = (await _tasks(full))[0]
    await full.complete_task(task.task_id, {"approved": True}, **REVIEWER)
    await _until_waiting(full, "partner")
    await client.send_event("partner_report", "H-2", {"estimate": 4800}, workflow_id=full.id)
    await full.result()
    out["claim-fork-join-event"] = await full.temporal.fetch_history()

    waits = await start(
        "timers-event-timeout",
        graphs.waits_graph(),
        {"claim_id": "H-3", "amount": 1.0, "not_before": "2020-01-01T00:00:00Z"},
    )
    await waits.result()
    out["timers-event-timeout"] = await waits.temporal.fetch_history()

    nested = await start("nested-first-join", graphs.nested_graph(), {"claim_id": "H-4", "amount": 5000.0})
    tasks = await _tasks(nested, 2)
    big = next(t for t in tasks if t.step_name == "graph_review")
    await nested.complete_task(big.task_id, {"approved": False}, **REVIEWER)
    await nested.result()
    out["nested-first-join"] = await nested.temporal.fetch_history()

    parent = await start(
        "sub-workflows",
        graphs.parent_graph(),
        {"claim_id": "H-5", "amount": 2500.0},
        subgraphs={"graph_child": graphs.child_graph()},
    )
    await parent.result()
    out["sub-workflows"] = await parent.temporal.fetch_history()

    code = await client.start(
        graphs.graph_code_waits,
        graphs.Claim(claim_id="H-6", amount=50.0),
        task_queue=task_queue,
        id="code-waits",
    )
    await _until_waiting(code, "partner_report")
    await code.temporal.signal(
        EVENT_SIGNAL, {"event": "partner_report", "key": "H-6", "payload": {"ok": True}}
    )
    await code.result()
    out["code-waits"] = await code.temporal.fetch_history()
    return out


async def record() -> list[Path]:
    """Run the scenarios on a fresh dev server and write their histories."""
    HISTORY_DIR.mkdir(exist_ok=True)
    key = generate_signing_key("record")
    written: list[Path] = []
    async with DevServer() as server:
        client = await WorkflowClient.connect(server.target, signing_key=key)
        task_queue = f"record-{uuid.uuid4()}"
        worker = create_worker(
            client, task_queue=task_queue, workflows=graphs.DEFINITIONS, command_keys=key.public_key
        )
        async with worker:
            histories = await run_scenarios(client, task_queue)
        for name, history in histories.items():
            path = HISTORY_DIR / f"{name}.json"
            path.write_text(history.to_json() + "\n")
            written.append(path)
    await asyncio.sleep(1.0)  # let temporalio's threads wind down
    return written


if __name__ == "__main__":
    for path in asyncio.run(record()):
        print(f"wrote {path}")
