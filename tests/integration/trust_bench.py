"""The trust suites' shared setup: one mirrored worker of the lifecycle workflow per module.

``test_trust`` and ``test_trust_scope`` both import :func:`fixture_bench` (a module-scoped
fixture named ``bench``), so each module gets its own database, worker and client.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sdk import InstanceHandle, TaskStatus, WorkflowClient
from sdk.mirror import MirrorQueries, MirrorWriter, TaskRow
from tests.integration.support import DatabaseFactory
from tests.workflows import lifecycle
from tests.workflows.lifecycle import Ticket

Eventually = Callable[..., Awaitable[Any]]


@dataclass
class Bench:
    """A worker running the lifecycle workflow with the mirror on, and a client on that mirror."""

    backend: str
    client: WorkflowClient
    queries: MirrorQueries
    task_queue: str
    target: str
    database_url: str

    async def start(self, tenant_id: str | None) -> InstanceHandle[Any]:
        ticket = Ticket(subject=f"trust-{uuid.uuid4().hex[:6]}", route="group")
        return await self.client.start(
            lifecycle.lifecycle_task, ticket, tenant_id=tenant_id, task_queue=self.task_queue
        )

    async def pending_row(self, handle: InstanceHandle[Any], eventually: Eventually) -> TaskRow:
        async def row() -> TaskRow:
            assert handle.instance_id is not None
            try:
                page = await self.queries.instance_tasks(handle.instance_id, status=TaskStatus.PENDING)
            except LookupError:
                raise AssertionError("not mirrored yet") from None
            assert len(page.items) == 1, page.items
            return page.items[0]

        found: TaskRow = await eventually(row)
        return found


@pytest.fixture(name="bench", scope="module")
async def fixture_bench(
    backend: str, database_factory: DatabaseFactory, server: Any, new_worker: Any
) -> AsyncIterator[Bench]:
    url = await database_factory.create(backend)
    writer = MirrorWriter.from_url(url)
    await writer.upgrade_schema()
    worker = new_worker(lifecycle.lifecycle_task, mirror=writer)
    client = await WorkflowClient.connect(server.target, database_url=url, task_queue=worker.task_queue)
    try:
        async with worker:
            yield Bench(backend, client, client.queries, worker.task_queue, server.target, url)
    finally:
        await client.close()
        await writer.close()
