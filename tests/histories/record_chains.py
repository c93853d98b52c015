"""Record the history of an escalation chain run to its end, for the replay tests.

Run from the repository root, in the virtualenv, after a deliberate change of the commands a
chain issues::

    python -m tests.histories.record_chains

It starts a dev server, runs ``tests.escalation.flow`` on its ``chain_expire`` route (a user
escalates the task early with the ``escalate_task`` update, the second link applies at its due
time, then the task expires) and writes
``tests/histories/chains/tests.escalation.flow-1.0.0-chain_expire.json``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from sdk import DevServer, WorkflowClient, generate_signing_key
from tests.workflows.escalation import Request, escalation_flow
from worker import create_worker

# A directory of its own: the expense example's replay test replays every history beside it.
HISTORY = Path(__file__).resolve().parent / "chains" / "tests.escalation.flow-1.0.0-chain_expire.json"


async def record() -> Path:
    key = generate_signing_key("record")
    async with DevServer() as server:
        client = await WorkflowClient.connect(server.target, signing_key=key)
        task_queue = f"record-{uuid.uuid4()}"
        worker = create_worker(
            client, task_queue=task_queue, workflows=[escalation_flow], command_keys=key.public_key
        )
        async with worker:
            handle = await client.start(
                escalation_flow, Request(subject="recorded", route="chain_expire"), task_queue=task_queue
            )
            deadline = time.monotonic() + 15
            while not (await handle.state()).pending_tasks:
                if time.monotonic() > deadline:
                    raise TimeoutError("no task")
                await asyncio.sleep(0.05)
            task = (await handle.state()).pending_tasks[0]
            await handle.escalate_task(task.task_id, user="root", admin=True, reason="recorded early")
            outcome = await handle.result()
            if outcome.outcome != "expired":
                raise AssertionError(f"the chain ended {outcome}, not expired")
            history = await handle.temporal.fetch_history()
        HISTORY.write_text(history.to_json() + "\n")
    await asyncio.sleep(1.0)  # let temporalio's threads wind down (docs/temporal-facts.md)
    return HISTORY


if __name__ == "__main__":
    print(f"wrote {asyncio.run(record())}")
