"""One benchmark worker process: the expense example with the mirror, until SIGTERM.

``python -m bench.worker_proc TARGET TASK_QUEUE DATABASE_URL [MAX_CACHED]``, started by
``bench/scale.py`` (one process, or several on one task queue). Prints ``ready`` once polling.
Its commands keys come from the environment its parent set (``DWF_COMMAND_KEYS``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def serve(target: str, task_queue: str, database_url: str, max_cached: int) -> None:
    from bench.environment import quiet_runtime
    from examples.expense_approval import expense_approval
    from sdk import WorkflowClient
    from sdk.mirror import MirrorWriter
    from worker import create_worker

    client = await WorkflowClient.connect(target, runtime=quiet_runtime())
    writer = MirrorWriter.from_url(database_url)
    options = {"max_cached_workflows": max_cached} if max_cached > 0 else {}
    worker = create_worker(
        client, task_queue=task_queue, workflows=[expense_approval], mirror=writer, **options
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        async with worker:
            print("ready", flush=True)
            await stop.wait()
    finally:
        await writer.close()


def main() -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    target, task_queue, database_url = sys.argv[1:4]
    max_cached = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    asyncio.run(serve(target, task_queue, database_url, max_cached))


if __name__ == "__main__":
    main()
