"""Database fixtures shared by the mirror's tests: every test runs on SQLite and on PostgreSQL.

Import the fixtures a module uses explicitly; pytest finds them in the module and registers each
under its ``name`` (``fixture_backend`` is the fixture ``backend``), so test parameters do not
shadow the imports::

    from tests.dbfixtures import fixture_backend, fixture_database_factory  # noqa: F401

- SQLite: a fresh file under pytest's temporary directory (``sqlite+aiosqlite``).
- PostgreSQL: fresh databases on the server at ``DWF_TEST_POSTGRES_URL`` (default
  ``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``), created through that maintenance
  database with random names and dropped when the session ends. ``DWF_TEST_POSTGRES=skip`` skips
  the PostgreSQL half (the default is to run it, and to fail when the server is unreachable).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL, ClauseElement, Executable, make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from sdk.mirror import create_engine, session_factory, upgrade

__all__ = [
    "BACKENDS",
    "DatabaseFactory",
    "fixture_backend",
    "fixture_database_factory",
    "fixture_empty_database_url",
    "fixture_migrated_database_url",
    "fixture_sessions",
]

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
