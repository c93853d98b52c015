"""Ids on the command line: whole, or a unique prefix of one the mirror has.

A task or instance id is a UUID; its prefix (with or without the dashes) is a range of UUIDs,
which the mirror's UUID columns compare in the same order on SQLite and PostgreSQL. A
workflow id is any text; its prefix is a ``LIKE 'prefix%'``, checked again in Python because
SQLite's ``LIKE`` ignores case. An exact match always wins over longer ids it prefixes; no
match is "not found" (exit 3); several are a usage error (exit 2) that lists them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from string import hexdigits
from typing import Any

from sdk import TaskNotFoundError

from ._exit import UsageError
from ._target import Target, require_database

__all__ = ["instance_key", "is_uuid", "task_id", "workflow_ids"]

_SHOWN = 10
"""Candidates listed in an "ambiguous prefix" error."""


def is_uuid(text: str) -> bool:
    """True when ``text`` is a whole UUID."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _uuid_range(prefix: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    digits = prefix.replace("-", "").lower()
    if not digits or len(digits) > 32 or any(c not in hexdigits for c in digits):
        return None
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def _ambiguous(what: str, prefix: str, found: Sequence[str]) -> UsageError:
    shown = ", ".join(found[:_SHOWN]) + (", ..." if len(found) > _SHOWN else "")
    return UsageError(f"{what} {prefix!r} is ambiguous: it starts {shown} (give more characters)")


async def _select(target: Target, statement: Any) -> list[Any]:
    from sdk.mirror import create_engine

    require_database(target)
    engine = create_engine(target.database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(statement.limit(_SHOWN + 1))).scalars())
    finally:
        await engine.dispose()


async def task_id(target: Target, text: str, tenant: str | None) -> str:
    """The task id ``text`` names: itself when whole, else the one mirrored task id it starts.

    Raises:
        TaskNotFoundError: No task id starts with ``text`` (within ``tenant``).
        UsageError: Several do.
    """
    if is_uuid(text):
        return text
    require_database(target)
    bounds = _uuid_range(text)
    if bounds is None:
        raise TaskNotFoundError(f"no task {text!r}: a task id is a UUID (or the start of one)")
    from sqlalchemy import select

    from sdk.mirror import HumanTaskModel as Task

    query = select(Task.id).where(Task.id.between(*bounds)).order_by(Task.id)
    if tenant is not None:
        query = query.where(Task.tenant_id == tenant)
    found = [str(i) for i in await _select(target, query)]
    if not found:
        raise TaskNotFoundError(f"no task id starts with {text!r}")
    if len(found) > 1:
        raise _ambiguous("task id prefix", text, found)
    return found[0]


async def _workflow_ids_from(target: Target, prefix: str, tenant: str | None) -> list[str]:
    from sqlalchemy import select

    from sdk.mirror import WorkflowInstanceModel as Instance

    query = (
        select(Instance.workflow_id)
        .where(Instance.workflow_id.startswith(prefix, autoescape=True))
        .distinct()
        .order_by(Instance.workflow_id)
    )
    if tenant is not None:
        query = query.where(Instance.tenant_id == tenant)
    return [w for w in await _select(target, query) if w.startswith(prefix)]


async def instance_key(target: Target, text: str, tenant: str | None) -> str:
    """The workflow id or instance id ``text`` names in the mirror (exact ids as given).

    Returns ``text`` itself when it is a whole UUID, a workflow id the mirror has, or matches
    nothing there (Temporal may still know it).

    Raises:
        UsageError: ``text`` starts several workflow ids or instance ids.
    """
    if is_uuid(text):
        return text
    workflow_ids = await _workflow_ids_from(target, text, tenant)
    if text in workflow_ids:
        return text
    found = list(workflow_ids)
    bounds = _uuid_range(text)
    if bounds is not None:
        from sqlalchemy import select

        from sdk.mirror import WorkflowInstanceModel as Instance

        query = select(Instance.id).where(Instance.id.between(*bounds)).order_by(Instance.id)
        if tenant is not None:
            query = query.where(Instance.tenant_id == tenant)
        found += [str(i) for i in await _select(target, query)]
    if len(found) > 1:
        raise _ambiguous("id prefix", text, found)
    return found[0] if found else text


async def workflow_ids(target: Target, texts: Sequence[str]) -> list[str]:
    """Each of ``texts`` as the workflow id it prefixes in the mirror (or as given, when none).

    Raises:
        UsageError: One of them starts several workflow ids and is none of them.
    """
    resolved = []
    for text in texts:
        found = await _workflow_ids_from(target, text, None)
        if len(found) > 1 and text not in found:
            raise _ambiguous("workflow id prefix", text, found)
        resolved.append(text if text in found or not found else found[0])
    return list(dict.fromkeys(resolved))
