"""What is particular to PostgreSQL (asyncpg): ``ON CONFLICT`` and the migration lock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, Table, func, literal, select
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.sql.base import ReadOnlyColumnCollection

__all__ = ["MIGRATION_LOCK_KEY", "excluded", "migration_lock", "upsert_statement"]

MIGRATION_LOCK_KEY = 0x6477_665F_6D69_7272  # "dwf_mirr": the advisory lock serializing upgrades


def migration_lock() -> Select[tuple[Any]]:
    """``SELECT pg_advisory_xact_lock(key)``: concurrent upgrades wait for each other.

    The lock is held until the migration transaction ends, so a second worker starting at
    the same time sees the first one's finished schema instead of racing it.
    """
    return select(func.pg_advisory_xact_lock(literal(MIGRATION_LOCK_KEY, BigInteger)))


def upsert_statement(
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    index_elements: Sequence[str],
    set_: Mapping[str, Any] | None,
    where: ColumnElement[bool] | None,
) -> Insert:
    """``INSERT ... ON CONFLICT (index_elements) DO UPDATE SET ...`` (``DO NOTHING`` without ``set_``)."""
    stmt = insert(table).values(list(rows))
    if not set_:
        return stmt.on_conflict_do_nothing(index_elements=list(index_elements))
    return stmt.on_conflict_do_update(index_elements=list(index_elements), set_=dict(set_), where=where)


def excluded(table: Table) -> ReadOnlyColumnCollection[str, Any]:
    """The ``excluded`` pseudo-table's columns, for ``set_`` values and ``where`` conditions."""
    return insert(table).excluded
