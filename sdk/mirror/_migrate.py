"""Schema migrations, run programmatically: no ``alembic.ini`` on disk.

The revisions ship inside the package (``sdk/mirror/migrations``) and record their progress in
their own version table, ``workflow_alembic_version``, so an application that manages its own
tables with alembic in the same database keeps its ``alembic_version`` to itself.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from . import _postgresql
from ._database import create_engine

__all__ = [
    "SCRIPT_LOCATION",
    "VERSION_TABLE",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
]

SCRIPT_LOCATION = "sdk.mirror:migrations"
"""Where the revisions live, as alembic's ``package:directory`` resource path."""

VERSION_TABLE = "workflow_alembic_version"
"""The table in which alembic records the mirror schema's revision."""


def alembic_config(database_url: str | None = None) -> Config:
    """An alembic ``Config`` for the mirror's migrations, built in code.

    Use it with ``alembic.command`` for anything beyond :func:`upgrade`, e.g. to write a new
    revision: ``command.revision(alembic_config(url), "add x", autogenerate=True)``.

    Args:
        database_url: The database ``env.py`` connects to when no connection is handed over.
    """
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if database_url is not None:
        # Kept out of the ini options: configparser would read "%" in a password as interpolation.
        config.attributes["database_url"] = database_url
    return config


def _run(connection: Connection, config: Config, action: str, revision: str) -> None:
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


async def _migrate(database_url: str, action: str, revision: str) -> None:
    # BEGIN IMMEDIATE on SQLite and an advisory lock on PostgreSQL: two processes upgrading at
    # once run one after the other, and the second finds nothing left to do.
    # Alembic keeps its running context in module globals, so two migrations in one process
    # must not interleave (they would, across the awaits of an async driver): one at a time.
    async with _process_lock():
        await _migrate_locked(database_url, action, revision)


_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _process_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _LOCKS.get(loop)
    if lock is None:
        lock = _LOCKS[loop] = asyncio.Lock()
    return lock


async def _migrate_locked(database_url: str, action: str, revision: str) -> None:
    engine = create_engine(database_url, sqlite_begin_immediate=True, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(_postgresql.migration_lock())
            await connection.run_sync(_run, alembic_config(database_url), action, revision)
    finally:
        await engine.dispose()


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the mirror schema up to ``revision``, creating the tables in an empty database.

    Idempotent, atomic (one transaction on both backends), and safe to call from several
    processes at once.

    Args:
        database_url: ``sqlite+aiosqlite:///path.db`` or ``postgresql+asyncpg://...``.
        revision: The target revision; ``"head"`` for the latest.
    """
    await _migrate(database_url, "upgrade", revision)


async def downgrade(database_url: str, revision: str) -> None:
    """Take the mirror schema down to ``revision`` (``"base"`` drops every mirror table)."""
    await _migrate(database_url, "downgrade", revision)


def _current(connection: Connection) -> Any:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or None if the mirror schema was never installed."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            revision: str | None = await connection.run_sync(_current)
            return revision
    finally:
        await engine.dispose()


def head_revision() -> str:
    """The newest revision shipped with this version of the SDK."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the mirror migrations have no head revision")
    return head
