"""How often a process that used temporalio crashes at interpreter exit, with and without a pause.

Measures the facts behind the pauses in ``docs/temporal-facts.md``: a process that ran a
Worker (or only connected a client) and then exits at once can die at interpreter exit while
temporalio's Rust threads wind down; a short pause with the event loop still running avoids it.

Each run is a fresh ``python`` process against one dev server; the figure is the count of
exit codes per configuration::

    python bench/exit_crash.py --runs 20
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import time

from sdk import DevServer

CHILD = """
import asyncio, sys, uuid
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio import workflow

@workflow.defn(name="exit_crash_noop")
class Noop:
    @workflow.run
    async def run(self) -> None:
        return None

async def main(target: str, mode: str, pause: float) -> None:
    client = await Client.connect(target)
    if mode == "worker":
        # Unsandboxed: the sandbox cannot re-import a workflow defined in ``python -c``.
        worker = Worker(client, task_queue=f"exit-{uuid.uuid4()}", workflows=[Noop],
                        workflow_runner=UnsandboxedWorkflowRunner())
        async with worker:
            await client.execute_workflow(Noop.run, id=f"exit-{uuid.uuid4()}", task_queue=worker.task_queue)
    await asyncio.sleep(pause)

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""

CONFIGURATIONS = (("worker", 0.0), ("worker", 1.0), ("client", 0.0), ("client", 0.02))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per configuration")
    args = parser.parse_args()
    with DevServer() as server:
        for mode, pause in CONFIGURATIONS:
            codes: collections.Counter[int] = collections.Counter()
            started = time.monotonic()
            for _ in range(args.runs):
                child = subprocess.run(
                    [sys.executable, "-c", CHILD, server.target, mode, str(pause)],
                    capture_output=True,
                    check=False,
                )
                codes[child.returncode] += 1
            took = time.monotonic() - started
            shown = ", ".join(f"rc {code}: {n}" for code, n in sorted(codes.items()))
            print(f"{mode:<6} pause {pause:4.2f}s  {shown}  ({took / args.runs:.2f}s per run)", flush=True)


if __name__ == "__main__":
    main()
