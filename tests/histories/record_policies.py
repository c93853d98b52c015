"""Record Temporal histories of the approval-policy workflows for the replay tests.

Run from the repository root, in the virtualenv, after a deliberate change of what these
workflows' commands are::

    python -m tests.histories.record_policies

It starts a dev server and a worker with a SQLite mirror (the delegation table), runs each
scenario to completion, and writes ``tests/histories/policies/<scenario>.json``: a quorum
vote with a refused starter (``four_eyes``: votes, a recorded rejection, a sign-off under
separation of duties) and a task handed to a substitute at creation (``delegated``: the
delegation lookup's recorded answer, its patch marker).
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from sdk import DevServer, InstanceHandle, TaskInfo, WorkflowClient, generate_signing_key
from sdk.mirror import MirrorWriter
from tests.workflows import policies
from tests.workflows.policies import FINANCE, Purchase
from worker import create_worker

HISTORY_DIR = Path(__file__).resolve().parent / "policies"
"""Apart from the expense histories (``tests/integration/test_replay.py`` replays those)."""
SCENARIOS = ("four_eyes", "delegated")


def history_path(scenario: str) -> Path:
    return HISTORY_DIR / f"{scenario}.json"


async def _pending(handle: InstanceHandle[Any], step: str) -> TaskInfo:
    for _ in range(300):
        state = await handle.state()
        found = [t for t in state.pending_tasks if t.step_name == step]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{handle.id}: no pending {step}")


async def _four_eyes(client: WorkflowClient, task_queue: str) -> WorkflowHistory:
    handle = await client.start(
        policies.four_eyes, Purchase(item="laptop"), tenant_id="acme", created_by="ann", task_queue=task_queue
    )
    vote = await _pending(handle, "finance_vote")
    # The starter's own signal, signed but refused by the workflow (recorded as a rejection).
    await handle.temporal.signal(
        "vote_task",
        client._trust.sign(
            "vote",
            handle.id,
            None,
            {
                "task_id": vote.task_id,
                "user": "ann",
                "groups": [FINANCE],
                "data": {"approved": True},
                "tenant_id": "acme",
            },
        ),
    )
    for user in ("bob", "cy"):
        await handle.vote_task(vote.task_id, {"approved": True}, user=user, groups=[FINANCE])
    sign_off = await _pending(handle, "final_sign_off")
    await handle.complete_task(sign_off.task_id, {"approved": True}, user="dee", groups=[FINANCE])
    if await handle.result() is not True:
        raise AssertionError("four_eyes was not approved")
    return await handle.temporal.fetch_history()


async def _delegated(client: WorkflowClient, task_queue: str) -> WorkflowHistory:
    await client.delegations.set("olga", "sam", tenant_id="acme")
    handle = await client.start(
        policies.owned,
        Purchase(item="desk", owner="olga"),
        tenant_id="acme",
        created_by="ann",
        task_queue=task_queue,
    )
    task = await _pending(handle, "owner_review")
    if task.assignee_id != "sam":
        raise AssertionError(f"the task went to {task.assignee_id}, not the substitute")
    await handle.prioritize_task(task.task_id, user="sam", priority=90, reason="urgent")
    await handle.complete_task(task.task_id, {"approved": True}, user="sam")
    if await handle.result() is not True:
        raise AssertionError("delegated was not approved")
    return await handle.temporal.fetch_history()


async def record() -> list[Path]:
    """Run the scenarios on a fresh dev server and write their histories."""
    written: list[Path] = []
    key = generate_signing_key("record")
    url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'mirror.db'}"
    mirror = MirrorWriter.from_url(url)
    await mirror.upgrade_schema()
    await mirror.register_definitions(policies.DEFINITIONS)
    async with DevServer() as server:
        client = await WorkflowClient.connect(
            server.target, signing_key=key, database_url=url, tenant_id="acme"
        )
        task_queue = f"record-{uuid.uuid4()}"
        worker = create_worker(
            client,
            task_queue=task_queue,
            workflows=policies.DEFINITIONS,
            mirror=mirror,
            command_keys=key.public_key,
        )
        async with worker:
            histories = {
                "four_eyes": await _four_eyes(client, task_queue),
                "delegated": await _delegated(client, task_queue),
            }
        for name, history in histories.items():
            path = history_path(name)
            path.write_text(history.to_json() + "\n")
            written.append(path)
        await client.close()
    await mirror.close()
    await asyncio.sleep(1.0)  # let temporalio's threads wind down (docs/temporal-facts.md)
    return written


if __name__ == "__main__":
    for path in asyncio.run(record()):
        print(f"wrote {path}")
