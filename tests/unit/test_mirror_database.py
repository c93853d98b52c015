"""Engines, URLs and the dialect-specific upsert statements (SQLite files only, no server)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from sdk.mirror import (
    HumanTaskModel,
    WorkflowInstanceModel,
    _postgresql,
    _sqlite,
    async_url,
    create_engine,
    session_factory,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///flows.db", "sqlite+aiosqlite:///flows.db"),
        ("sqlite+aiosqlite:///flows.db", "sqlite+aiosqlite:///flows.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://u:p%40ss@db:5432/x", "postgresql+asyncpg://u:p%40ss@db:5432/x"),
        ("postgres://u@db/x", "postgresql+asyncpg://u@db/x"),
        ("postgresql+asyncpg://u@db/x", "postgresql+asyncpg://u@db/x"),
    ],
)
def test_async_url_adds_the_async_driver(given: str, expected: str) -> None:
    assert async_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    "url", ["mysql://u@db/x", "postgresql+psycopg://u@db/x", "sqlite+pysqlite:///x.db", "oracle://db"]
)
def test_async_url_rejects_other_databases_and_drivers(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        async_url(url)


def test_async_url_hides_the_password_in_errors() -> None:
    with pytest.raises(ValueError) as info:
        async_url("mysql://user:secret@db/x")
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("dialect_module", "dialect"), [(_postgresql, postgresql.dialect()), (_sqlite, sqlite.dialect())]
)
def test_upsert_statements(dialect_module: object, dialect: sa.Dialect) -> None:
    table = HumanTaskModel.__table__
    excluded = dialect_module.excluded(table)  # type: ignore[attr-defined]
    update = dialect_module.upsert_statement(  # type: ignore[attr-defined]
        table,
        [{"id": uuid.uuid4(), "status": "pending"}],
        ["id"],
        {"status": excluded["status"]},
        WorkflowInstanceModel.last_event_seq < 3,
    )
    sql = str(update.compile(dialect=dialect))
    assert "ON CONFLICT (id) DO UPDATE SET status = excluded.status" in sql
    assert "WHERE workflow_instances.last_event_seq <" in sql
    nothing = dialect_module.upsert_statement(table, [{"id": uuid.uuid4()}], ["id"], {}, None)  # type: ignore[attr-defined]
    assert str(nothing.compile(dialect=dialect)).endswith("ON CONFLICT (id) DO NOTHING")


def test_postgresql_migration_lock_is_a_bound_advisory_lock() -> None:
    compiled = _postgresql.migration_lock().compile(dialect=postgresql.dialect())
    assert "pg_advisory_xact_lock" in str(compiled)
    assert list(compiled.params.values()) == [_postgresql.MIGRATION_LOCK_KEY]


async def _pragma(engine: sa.ext.asyncio.AsyncEngine, name: str) -> object:
    async with engine.connect() as connection:
        return (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()


async def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}", sqlite_busy_timeout=2.5)
    try:
        assert await _pragma(engine, "foreign_keys") == 1
        assert await _pragma(engine, "journal_mode") == "wal"
        assert await _pragma(engine, "busy_timeout") == 2500
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("given", "expected"), [(None, 1), ("FULL", 2), ("normal", 1), ("OFF", 0)])
async def test_sqlite_synchronous_defaults_to_normal_and_can_be_set(
    tmp_path: Path, given: str | None, expected: int
) -> None:
    options = {} if given is None else {"sqlite_synchronous": given}
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}", **options)
    try:
        assert await _pragma(engine, "synchronous") == expected
        assert await _pragma(engine, "journal_mode") == "wal"  # NORMAL is safe from corruption in WAL only
    finally:
        await engine.dispose()


def test_sqlite_synchronous_rejects_unknown_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sqlite_synchronous must be one of OFF, NORMAL, FULL, EXTRA"):
        create_engine(f"sqlite:///{tmp_path / 'x.db'}", sqlite_synchronous="fast")
    assert not (tmp_path / "x.db").exists()


async def test_sqlite_session_reads_one_snapshot(tmp_path: Path) -> None:
    # SQLAlchemy emits BEGIN itself: a session's reads share a snapshot (the driver's legacy
    # mode would run each SELECT outside any transaction and see the other session's insert).
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    sessions = session_factory(engine)
    counter = sa.table("t", sa.column("n"))
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        count = sa.select(sa.func.count()).select_from(counter)
        async with sessions() as reader:
            assert await reader.scalar(count) == 0
            async with sessions() as writer:
                await writer.execute(sa.insert(counter).values(n=1))
                await writer.commit()
            assert await reader.scalar(count) == 0
        async with sessions() as fresh:
            assert await fresh.scalar(count) == 1
    finally:
        await engine.dispose()


async def test_sqlite_begin_immediate_takes_the_write_lock_up_front(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    first = create_engine(url, sqlite_begin_immediate=True)
    second = create_engine(url, sqlite_begin_immediate=True, sqlite_busy_timeout=0.05)
    try:
        async with first.begin() as holder:
            await holder.exec_driver_sql("CREATE TABLE t (n INTEGER)")
            with pytest.raises(OperationalError, match="database is locked"):
                async with second.begin():
                    pass
        async with second.begin() as connection:
            await connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    finally:
        await first.dispose()
        await second.dispose()


@pytest.mark.parametrize(("options", "expected"), [({}, 1), ({"sqlite_synchronous": "FULL"}, 2)])
async def test_mirror_writer_passes_the_sqlite_synchronous_setting(
    tmp_path: Path, options: dict[str, str], expected: int
) -> None:
    from sdk.mirror import MirrorWriter

    writer = MirrorWriter.from_url(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", **options)
    try:
        assert await _pragma(writer.engine, "synchronous") == expected
    finally:
        await writer.close()
