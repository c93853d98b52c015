"""A page of rows ORed from several "arms", each read in index order: the inbox's page on PostgreSQL.

The inbox is "pending tasks of the user, or of one of their groups, or of one of their open
ballots, that they may act on, soonest due first". Written as one ``WHERE`` with an ``OR``,
PostgreSQL reads every match (a ``BitmapOr`` of index scans, then the heap) and sorts them all
for a page of 50: at a million task rows, thousands of heap rows per call. Each arm alone (the
user's tasks; one group's tasks; the ballots) is served in the page's order by the pending-task
indexes (``(tenant_id, assignee_id | assignee_group, due_at, created_at, id)``), so:

- every arm reads its first ``offset + limit`` rows (``:top``) with the full filter, off its
  index in order (the groups as one ``LATERAL`` join over ``unnest(:group_array)``, a scan per
  group);
- the page is then the first ``limit`` rows after ``offset`` among those candidates.

Same rows as the ``OR``: every row of the true page is among the first ``offset + limit`` rows
of each arm it belongs to (an arm is a subset of the result, in the same order), and a row in
two arms (a user's task in one of their groups) is one candidate (``id = ANY(...)``). SQLite
has no ``LATERAL``; it keeps the plain ``OR`` (see :func:`sdk.mirror._among.among`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    BindParameter,
    Column,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    UnaryExpression,
    bindparam,
    func,
    select,
    true,
    union_all,
)

from ._among import among

__all__ = ["GROUP_ARRAY", "TOP", "page_of_arms"]

TOP: BindParameter[int] = bindparam("top", type_=Integer)
"""Rows read per arm: the page's ``offset + limit``."""

GROUP_ARRAY: BindParameter[Any] = bindparam("group_array", type_=ARRAY(String()))
"""The groups of a per-group arm, as one array (``unnest`` needs an array, not an IN list)."""


def page_of_arms(
    rows: Select[Any],
    table: Table,
    where: Sequence[ColumnElement[bool]],
    arms: Sequence[ColumnElement[bool]],
    group_column: Column[Any] | None,
    order: Sequence[UnaryExpression[Any]],
    limit: BindParameter[int],
    offset: BindParameter[int],
) -> Select[Any]:
    """``rows`` where ``where`` and (any of ``arms``, or ``group_column`` among
    ``:group_array``), in ``order``, paged: each arm's first ``:top`` ids, then the page."""

    def first_ids(*arm: ColumnElement[bool]) -> Select[Any]:
        return select(table.c.id).where(*where, *arm).order_by(*order).limit(TOP)

    parts: list[Select[Any]] = []
    for arm in arms:
        first = first_ids(arm).subquery()
        parts.append(select(first.c.id))
    if group_column is not None:
        groups = func.unnest(GROUP_ARRAY).table_valued("name").render_derived(name="arm_group")
        per_group = first_ids(group_column == groups.c.name).lateral("arm_group_first")
        parts.append(select(per_group.c.id).select_from(groups.join(per_group, true())))
    candidates = union_all(*parts)
    return rows.where(among(table.c.id, candidates)).order_by(*order).limit(limit).offset(offset)
