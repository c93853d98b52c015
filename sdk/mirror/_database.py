"""Engines, sessions and the idempotent upsert: the mirror's only contact with a database driver.

Two backends are supported, chosen by the URL: SQLite through aiosqlite (the embedded default)
and PostgreSQL through asyncpg (production). Dialect-specific SQL lives in one module per
dialect (:mod:`sdk.mirror._sqlite`, :mod:`sdk.mirror._postgresql`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, cast

import pydantic_core
from sqlalchemy import URL, ColumnElement, CursorResult, Table, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from . import _postgresql, _sqlite
from ._base import MirrorBase, column_values

__all__ = ["async_url", "create_engine", "session_factory", "upsert"]

_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_NEVER_UPDATED = frozenset({"id", "created_at"})
# Bound parameters per statement: PostgreSQL (asyncpg) allows 32767, SQLite 32766; stay below both.
_MAX_PARAMETERS = 30_000


def async_url(url: str | URL) -> URL:
    """The URL with its async driver: ``sqlite://`` becomes ``sqlite+aiosqlite://``,
    ``postgresql://`` (or ``postgres://``) becomes ``postgresql+asyncpg://``.

    Raises:
        ValueError: Another database, or another driver than aiosqlite / asyncpg.
    """
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    expected = _ASYNC_DRIVERS.get(backend)
    if expected is None or (parsed.drivername != backend and driver != expected):
        raise ValueError(
            f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
            "use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db"
        )
    return parsed.set(drivername=f"{backend}+{expected}")


def _json_dumps(value: Any) -> str:
    # pydantic's encoder also handles datetimes, UUIDs, enums and models inside JSON columns.
    return pydantic_core.to_json(value).decode()


def create_engine(
    url: str | URL,
    *,
    sqlite_begin_immediate: bool = False,
    sqlite_busy_timeout: float = 30.0,
    sqlite_synchronous: str = "NORMAL",
    **engine_options: Any,
) -> AsyncEngine:
    """An async engine for the mirror database.

    On SQLite every connection gets ``foreign_keys=ON`` (the ``ON DELETE CASCADE`` of the
    schema depends on it), WAL journaling (readers never block the writer) and a busy timeout,
    and SQLAlchemy emits ``BEGIN`` itself so that a session is one real transaction.

    Args:
        url: ``sqlite+aiosqlite:///path.db`` or ``postgresql+asyncpg://user@host/db`` (the
            driver is added when missing, see :func:`async_url`).
        sqlite_begin_immediate: Start SQLite transactions with ``BEGIN IMMEDIATE``. Use it for
            an engine that writes: concurrent writers then wait for each other (up to the busy
            timeout) instead of failing when a read transaction turns into a write.
        sqlite_busy_timeout: Seconds a SQLite connection waits for a lock.
        sqlite_synchronous: SQLite's ``synchronous`` setting: ``NORMAL`` (default: in WAL mode,
            no fsync per commit; a power loss or OS crash can take back the last commits,
            which ``dwf mirror rebuild`` restores from Temporal's history) or ``FULL`` (an
            fsync per commit, about 4 ms each); see docs/operations.md.
        **engine_options: Passed to ``sqlalchemy.ext.asyncio.create_async_engine``.

    Raises:
        ValueError: The URL names an unsupported database or driver, or ``sqlite_synchronous``
            is not a SQLite ``synchronous`` value.
    """
    parsed = async_url(url)
    if sqlite_synchronous.upper() not in _sqlite.SYNCHRONOUS_MODES:
        raise ValueError(
            f"sqlite_synchronous must be one of {', '.join(_sqlite.SYNCHRONOUS_MODES)}, "
            f"not {sqlite_synchronous!r}"
        )
    engine_options.setdefault("json_serializer", _json_dumps)
    # pydantic's parser: about twice as fast as json.loads on the form schemas tasks carry.
    engine_options.setdefault("json_deserializer", pydantic_core.from_json)
    if parsed.get_backend_name() == "sqlite":
        connect_args = {"timeout": sqlite_busy_timeout, **engine_options.pop("connect_args", {})}
        engine = create_async_engine(parsed, connect_args=connect_args, **engine_options)
        _sqlite.configure_engine(
            engine.sync_engine, begin_immediate=sqlite_begin_immediate, synchronous=sqlite_synchronous
        )
        return engine
    return create_async_engine(parsed, **engine_options)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for one unit of work each; objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _dialect(session: AsyncSession) -> ModuleType:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return _postgresql
    if name == "sqlite":
        return _sqlite
    raise ValueError(f"the mirror supports SQLite and PostgreSQL, not {name}")


async def upsert(
    session: AsyncSession,
    model: type[MirrorBase],
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    index_elements: Sequence[str] = ("id",),
    update_columns: Sequence[str] | None = None,
    *,
    where: Callable[[ReadOnlyColumnCollection[str, Any]], ColumnElement[bool]] | None = None,
) -> int:
    """Insert rows, or update the existing ones, with ``INSERT ... ON CONFLICT`` (one statement per batch).

    Running it twice with the same values leaves the same row (only ``updated_at`` moves), so
    replays and retries converge. The statement runs in the session's transaction; the caller
    commits. Objects already loaded in the session are not refreshed.

    Args:
        session: The unit of work.
        model: A mirror model class, e.g. ``HumanTaskModel``.
        values: One row, or several rows with the same keys (no two with the same conflict key),
            keyed by attribute names (``metadata_``) or column names (``metadata``). Omitted
            columns get their defaults on insert. Large batches are split into several
            statements (the drivers bind at most ~32k parameters per statement).
        index_elements: The columns of the primary key or unique index that identify a row.
        update_columns: Columns to overwrite on conflict; by default every given column except
            ``index_elements``, ``id`` and ``created_at``. Empty: keep an existing row untouched
            (``DO NOTHING``). ``updated_at`` is refreshed whenever something is updated.
        where: Update only when this holds; called with the ``excluded`` row's columns and
            compares them with the model's, e.g.
            ``lambda new: WorkflowInstanceModel.last_event_seq < new.last_event_seq``.

    Returns:
        The number of rows inserted or updated (0 when the conflict was skipped).

    Raises:
        KeyError: A key names no attribute or column of ``model``.
        ValueError: The rows do not all have the same keys.
    """
    rows = [values] if isinstance(values, Mapping) else list(values)
    if not rows:
        return 0
    table = cast(Table, model.__table__)
    resolved = [column_values(model, row) for row in rows]
    keys = list(resolved[0])
    if any(set(row) != set(keys) for row in resolved[1:]):
        raise ValueError("upsert rows must all have the same keys")
    conflict = list(column_values(model, dict.fromkeys(index_elements)))
    if update_columns is None:
        updated = [key for key in keys if key not in conflict and key not in _NEVER_UPDATED]
    else:
        updated = list(column_values(model, dict.fromkeys(update_columns)))
    dialect = _dialect(session)
    excluded = dialect.excluded(table)
    set_: dict[str, Any] = {name: excluded[name] for name in updated}
    if set_ and "updated_at" in table.c and "updated_at" not in set_:
        set_["updated_at"] = excluded["updated_at"]
    condition = where(excluded) if where is not None and set_ else None
    # Every column may be bound per row (defaults included): split big batches to stay under
    # the drivers' parameter limits. The statements share the caller's transaction.
    chunk = max(1, _MAX_PARAMETERS // len(table.c))
    written = 0
    for start in range(0, len(resolved), chunk):
        statement = dialect.upsert_statement(
            table, resolved[start : start + chunk], conflict, set_, condition
        )
        result = cast(CursorResult[Any], await session.execute(statement))
        written += result.rowcount
    return written
