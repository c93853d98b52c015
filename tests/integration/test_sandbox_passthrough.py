"""``create_worker(sandbox_passthrough=...)``: modules imported once per process, not per run.

Against the real dev server: each run of ``tests.workflows.passthrough.module_copy`` appends
to its module's ``SEEN`` list and returns its length. The sandbox re-imports the module for
every run, so without the option each run has a fresh list of its own; with the module passed
through, every run appends to this process's list.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from temporalio.worker import Worker

from sdk import WorkflowClient
from tests.workflows import passthrough

NewWorker = Callable[..., Worker]


async def _run(client: WorkflowClient, worker: Worker, label: str) -> int:
    handle: Any = await client.start(
        passthrough.module_copy, label, id=f"copy-{uuid.uuid4().hex[:8]}", task_queue=worker.task_queue
    )
    return int(await handle.result())


async def test_a_module_passed_through_is_imported_once_not_per_run(
    client: WorkflowClient, new_worker: NewWorker
) -> None:
    async with new_worker(passthrough.module_copy) as sandboxed:
        assert [await _run(client, sandboxed, label) for label in ("a", "b")] == [1, 1]
    assert passthrough.SEEN == []  # each run appended to its own copy of the module
    async with new_worker(passthrough.module_copy, sandbox_passthrough=[passthrough.__name__]) as passing:
        assert [await _run(client, passing, label) for label in ("c", "d")] == [1, 2]
    assert passthrough.SEEN == ["c", "d"]
