"""What task notifications cost: the expense example with and without a notifier.

Runs ``examples.expense_approval`` (validate, a human approval, pay) for ``--instances``
instances, ``--concurrency`` at a time, against one Temporal dev server with the mirror on
SQLite, twice: with no notifier, then with one in-memory notifier that listens to every step
(so each instance starts two ``dwf.notify`` deliveries: created and completed). Prints, for each
run, the instances per second from start to result and, with the notifier, how long a
notification took from its event (workflow time) to the notifier (the delivery workflow's
start, its activity and the publish's RPC together).

    .venv/bin/python bench/notification_overhead.py [--instances 60] [--concurrency 20]

Informational only; measure on a quiet machine (the worker, the driver and the dev server share
the CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from activities import NotifierBase
from examples.expense_approval import Expense, expense_approval
from sdk import DevServer, TaskNotification, WorkflowClient, generate_signing_key
from sdk.mirror import MirrorWriter
from worker import create_worker


class Timing(NotifierBase):
    """Records how long after its event each notification arrived."""

    def __init__(self) -> None:
        super().__init__("timing")
        self.delays: list[float] = []

    async def send(self, notification: TaskNotification) -> None:
        self.delays.append((datetime.now(UTC) - notification.at).total_seconds())


async def run(
    server: DevServer, directory: Path, instances: int, concurrency: int, notifier: Timing | None
) -> float:
    key = generate_signing_key("bench")
    url = f"sqlite+aiosqlite:///{directory / uuid.uuid4().hex}.db"
    writer = MirrorWriter.from_url(url)
    await writer.upgrade_schema()
    await writer.register_definitions([expense_approval])
    client = await WorkflowClient.connect(server.target, signing_key=key, database_url=url)
    task_queue = f"bench-notify-{uuid.uuid4()}"
    worker = create_worker(
        client,
        task_queue=task_queue,
        workflows=[expense_approval],
        mirror=writer,
        command_keys=key.public_key,
        notifiers=[notifier] if notifier is not None else [],
    )
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            handle = await client.start(
                expense_approval,
                Expense(employee=f"Emp{i}", amount=10 + i, description="bench"),
                task_queue=task_queue,
                tenant_id="acme",
            )
            task = await handle.next_task(timeout=60)
            await handle.complete_task(task.task_id, {"approved": True}, user="maria", groups=["managers"])
            await handle.result()

    async with worker:
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(instances)))
        elapsed = time.perf_counter() - started
        if notifier is not None:  # the last deliveries may still be on their way
            deadline = time.monotonic() + 60
            while len(notifier.delays) < 2 * instances and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
    await client.close()
    await writer.close()
    return instances / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        async with DevServer() as server:
            await run(server, Path(tmp), 5, 5, None)  # warm up
            plain = await run(server, Path(tmp), args.instances, args.concurrency, None)
            timing = Timing()
            notified = await run(server, Path(tmp), args.instances, args.concurrency, timing)
    print(f"instances: {args.instances}, {args.concurrency} at a time, mirror on SQLite")
    print(f"without notifiers: {plain:.1f} instances/s")
    print(f"with one notifier: {notified:.1f} instances/s ({(1 - notified / plain) * 100:+.0f}% slower)")
    if timing.delays:
        delays = sorted(timing.delays)
        p95 = delays[int(0.95 * (len(delays) - 1))]
        print(
            f"notifications delivered: {len(delays)} of {2 * args.instances}; event to notifier: "
            f"median {statistics.median(delays) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
        )
    await asyncio.sleep(1.0)  # let temporalio's threads wind down before exit


if __name__ == "__main__":
    asyncio.run(main())
