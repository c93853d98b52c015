"""``column`` among the values a subquery selects, written so PostgreSQL can use an index for it.

``x IN (SELECT ...)`` as one arm of an ``OR`` is, on PostgreSQL, a subplan run as a filter on
every row the other arms cannot rule out: the planner cannot combine it with index scans of the
other arms. ``x = ANY(ARRAY(SELECT ...))`` is the same test with an uncorrelated subquery run
once (an init plan) and an index condition on ``x``, so ``a = :u OR b IN (...) OR x =
ANY(ARRAY(...))`` becomes a ``BitmapOr`` of three index scans. SQLite plans ``IN (SELECT ...)``
inside an ``OR`` with an index already, and has no arrays: it keeps ``IN``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, CompoundSelect, Select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

__all__ = ["among"]


class _Among(ColumnElement[bool]):
    """``column`` is one of the values ``values`` selects (one column, no correlation)."""

    inherit_cache = True
    type = Boolean()
    # A test, not a boolean value: on SQLite, no "= 1" appended inside AND / OR.
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], values: Select[Any] | CompoundSelect[Any]) -> None:
        self.column = column
        self.values = values.scalar_subquery()


def among(column: ColumnElement[Any], values: Select[Any] | CompoundSelect[Any]) -> ColumnElement[bool]:
    """``column`` among the values ``values`` selects (see the module's docstring)."""
    return _Among(column, values)


@compiles(_Among)
def _in(element: _Among, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} IN {compiler.process(element.values, **kw)}"


@compiles(_Among, "postgresql")
def _any_array(element: _Among, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY(ARRAY{compiler.process(element.values, **kw)})"
