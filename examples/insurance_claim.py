"""An insurance claim defined as a graph (``examples/insurance_claim.yaml``), run end to end.

Starts a Temporal dev server on a free port and a worker with the SQL mirror in a SQLite
file, registers the graph at run time (no worker restart), and sends three claims through it:
a small one the triage fast-tracks to payment; one the adjuster approves and the repair
partner answers (an external event); one whose partner never answers, so the event step's
timeout rejects it. Prints each instance's Mermaid diagram coloured by its steps' status.

Run it with ``python -m examples.insurance_claim`` in the virtualenv.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from pydantic import BaseModel

from sdk import (
    DevServer,
    GraphDefinition,
    Identity,
    WorkflowClient,
    generate_signing_key,
    human_step,
    machine_step,
)
from sdk.mirror import MirrorWriter, instance_diagram
from worker import create_worker

GRAPH_FILE = Path(__file__).with_name("insurance_claim.yaml")
TASK_QUEUE = "claims-demo"
ADJUSTERS = "adjusters"


class Claim(BaseModel):
    """A claim (the instance's start data; steps ignore the keys other steps added)."""

    claim_id: str
    policy: str
    amount: float


class Triage(BaseModel):
    fast_track: bool
    reason: str


class Adjustment(BaseModel):
    """The adjuster's form."""

    approve: bool
    note: str | None = None


@machine_step
async def claim_triage(claim: Claim) -> Triage:
    """Small claims on a known policy go straight to payment."""
    fast = claim.amount < 500 and claim.policy.startswith("P-")
    return Triage(fast_track=fast, reason="small claim" if fast else "needs checks")


@machine_step
async def claim_fraud_check(claim: Claim) -> dict[str, bool]:
    return {"suspicious": claim.claim_id.endswith("X")}


@human_step(form=Adjustment, assignee_group=ADJUSTERS)
def claim_adjuster_decision(claim: Claim) -> str:
    return f"Assess claim {claim.claim_id}: {claim.amount:.2f} on {claim.policy}"


@machine_step
async def claim_pay(claim: Claim) -> str:
    return f"paid {claim.amount:.2f} on {claim.claim_id}"


@machine_step
async def claim_reject(claim: Claim) -> str:
    return f"rejected {claim.claim_id}"


async def who_is(user: str) -> Identity:
    return Identity(user=user, groups=(ADJUSTERS,), tenant_id="acme")


async def main() -> None:
    key = generate_signing_key("claims-demo")
    database = Path(tempfile.mkdtemp()) / "claims.db"
    url = f"sqlite+aiosqlite:///{database}"
    mirror = MirrorWriter.from_url(url)
    await mirror.upgrade_schema()
    async with DevServer() as server:
        client = await WorkflowClient.connect(
            server.target,
            task_queue=TASK_QUEUE,
            database_url=url,
            signing_key=key,
            identity_provider=who_is,
            tenant_id="acme",
        )
        async with create_worker(
            client, task_queue=TASK_QUEUE, workflows=[], mirror=mirror, command_keys=key.public_key
        ):
            graph = GraphDefinition.load(GRAPH_FILE)
            await client.register_graph(graph)  # at run time: the worker is already running
            print(f"registered {graph.workflow_type}")

            fast = await client.start_graph(
                "insurance_claim", {"claim_id": "C-1", "policy": "P-7", "amount": 120.0}
            )
            print("C-1:", (await fast.result())["pay"])

            checked = await client.start_graph(
                "insurance_claim", {"claim_id": "C-2", "policy": "P-7", "amount": 4200.0}
            )
            task = await checked.next_task(timeout=30)
            print(f"C-2: task {task.title!r} for {task.assignee_group}")
            await checked.complete_task(task.task_id, {"approve": True, "note": "photos fine"}, user="ada")
            while True:  # the partner answers once the instance waits for its estimate
                try:
                    await client.send_event("repair_estimate", "C-2", {"garage": "Main St", "estimate": 3900})
                    break
                except LookupError:
                    await asyncio.sleep(0.2)
            print("C-2:", (await checked.result())["pay"])

            silent = await client.start_graph(
                "insurance_claim", {"claim_id": "C-3", "policy": "P-9", "amount": 900.0}
            )
            task = await silent.next_task(timeout=30)
            await silent.complete_task(task.task_id, {"approve": True}, user="ada")
            print("C-3:", (await silent.result())["reject"], "(no estimate before the timeout)")
            description = await checked.describe()
            print(await instance_diagram(mirror.engine, description.instance_id))
        await client.close()
        await asyncio.sleep(1.0)  # let the worker's threads wind down before exit
    await mirror.close()


if __name__ == "__main__":
    asyncio.run(main())
