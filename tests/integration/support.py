"""What integration tests share besides fixtures (fixtures live in ``conftest.py``).

- :class:`DatabaseFactory`: fresh databases, on SQLite (a file under pytest's temporary
  directory) or PostgreSQL (random names on the server at ``DWF_TEST_POSTGRES_URL``, default
  ``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``, dropped when the session ends).
  ``DWF_TEST_POSTGRES=skip`` skips the PostgreSQL half (the default is to run it, and to fail
  when the server is unreachable).
- The types of the polling fixtures, for annotations: :data:`Eventually`, :data:`PendingTask`.
- Readers of the mirror's rows for one instance: :func:`instance_row`, :func:`step_rows`,
  :func:`task_rows`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL, ClauseElement, Executable, Table, make_url, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from temporalio.api.enums.v1 import EventType

from sdk import InstanceHandle, TaskInfo
from sdk.mirror import HumanTaskModel, StepExecutionModel, WorkflowInstanceModel

__all__ = [
    "BACKENDS",
    "INSTANCES",
    "STEPS",
    "TASKS",
    "DatabaseFactory",
    "Eventually",
    "PendingTask",
    "Row",
    "fetch",
    "instance_row",
    "step_rows",
    "task_rows",
]

PendingTask = Callable[..., Awaitable[TaskInfo]]
"""The ``pending_task`` fixture: ``await pending_task(handle)``."""
Eventually = Callable[..., Awaitable[Any]]
"""The ``assert_eventually`` fixture: ``await assert_eventually(check, timeout=...)``."""
Row = dict[str, Any]

BACKENDS = ("sqlite", "postgresql")

POSTGRES_URL = os.environ.get(
    "DWF_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


class _CreateDatabase(Executable, ClauseElement):
    inherit_cache = False

    def __init__(self, name: str) -> None:
        self.name = name


class _DropDatabase(Executable, ClauseElement):
    inherit_cache = False

    def __init__(self, name: str) -> None:
        self.name = name


@compiles(_CreateDatabase)
def _compile_create(element: _CreateDatabase, compiler: SQLCompiler, **kw: Any) -> str:
    return "CREATE DATABASE " + compiler.preparer.quote(element.name)


@compiles(_DropDatabase)
def _compile_drop(element: _DropDatabase, compiler: SQLCompiler, **kw: Any) -> str:
    return "DROP DATABASE IF EXISTS " + compiler.preparer.quote(element.name) + " WITH (FORCE)"


class DatabaseFactory:
    """Makes empty databases for one backend or the other, and drops the PostgreSQL ones."""

    def __init__(self, tmp_dir: Path) -> None:
        self._tmp_dir = tmp_dir
        self._server = make_url(POSTGRES_URL)
        self._created: list[str] = []

    async def create(self, backend: str) -> str:
        """A URL (with password, if any) to a new, empty database."""
        name = f"dwf_test_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            return f"sqlite+aiosqlite:///{self._tmp_dir / name}.db"
        if os.environ.get("DWF_TEST_POSTGRES") == "skip":
            pytest.skip("DWF_TEST_POSTGRES=skip")
        await self._execute(_CreateDatabase(name))
        self._created.append(name)
        return self._url(name).render_as_string(hide_password=False)

    async def drop_all(self) -> None:
        """Drop every PostgreSQL database this factory created."""
        while self._created:
            await self._execute(_DropDatabase(self._created.pop()))

    def _url(self, database: str) -> URL:
        return self._server.set(database=database)

    async def _execute(self, statement: Executable) -> None:
        engine = create_async_engine(self._server, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(statement)
        finally:
            await engine.dispose()


# -- the mirror's rows -----------------------------------------------------------------------------

INSTANCES: Table = WorkflowInstanceModel.__table__  # type: ignore[assignment]
STEPS: Table = StepExecutionModel.__table__  # type: ignore[assignment]
TASKS: Table = HumanTaskModel.__table__  # type: ignore[assignment]


async def fetch(db: AsyncEngine, table: Table, *where: Any) -> list[Row]:
    """Rows of ``table`` matching ``where``, as dicts, in a stable order."""
    # Steps in the workflow's own order: start times of a retried step and the next one can
    # come out either way under load (an attempt's clock against the workflow's).
    if "step_seq" in table.c:
        order = [table.c.step_seq, table.c.started_at, table.c.id]
    else:
        order = [table.c.started_at, table.c.id] if "started_at" in table.c else [table.c.id]
    async with db.connect() as conn:
        result = await conn.execute(select(table).where(*where).order_by(*order))
        return [dict(row) for row in result.mappings()]


async def instance_row(db: AsyncEngine, handle: InstanceHandle[Any]) -> Row:
    """The one instance row of ``handle``'s run."""
    rows = await fetch(db, INSTANCES, INSTANCES.c.id == handle.instance_id)
    assert len(rows) == 1, f"instance rows of {handle.id}: {rows}"
    return rows[0]


async def step_rows(db: AsyncEngine, handle: InstanceHandle[Any]) -> list[Row]:
    """The step rows of ``handle``'s run, in the workflow's order."""
    return await fetch(db, STEPS, STEPS.c.instance_id == handle.instance_id)


async def task_rows(db: AsyncEngine, handle: InstanceHandle[Any]) -> list[Row]:
    """The task rows of ``handle``'s run."""
    return await fetch(db, TASKS, TASKS.c.instance_id == handle.instance_id)


COMMAND_EVENTS = (
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
)
"""The history events a command leaves: a signal received, an update accepted."""


async def commands_received(handle: InstanceHandle[Any]) -> int:
    """How many signals and accepted updates the instance's history holds.

    Counting these, not every event, lets a test show that a refusal sent nothing while the
    instance's own workflow tasks may still be completing.
    """
    return len([e async for e in handle.temporal.fetch_history_events() if e.event_type in COMMAND_EVENTS])
