"""Alembic environment of the mirror schema, for async URLs (aiosqlite and asyncpg).

:func:`sdk.mirror.upgrade` hands over an open connection in ``config.attributes["connection"]``;
without one (``alembic.command`` with :func:`sdk.mirror.alembic_config`), this module connects to
``config.attributes["database_url"]`` (or the ``sqlalchemy.url`` option) itself.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from sdk.mirror import _models  # noqa: F401  (registers the tables on the metadata)
from sdk.mirror._base import MirrorBase
from sdk.mirror._database import async_url, create_engine
from sdk.mirror._migrate import VERSION_TABLE

config = context.config
target_metadata = MirrorBase.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: pass one to sdk.mirror.alembic_config(database_url)")
    return str(url)


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async_migrations(database_url: str) -> None:
    engine = create_engine(database_url, sqlite_begin_immediate=True, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_migrations)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=async_url(_database_url()),
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    handed_over = config.attributes.get("connection")
    if handed_over is None:
        asyncio.run(_run_async_migrations(_database_url()))
    else:
        _run_migrations(handed_over)
