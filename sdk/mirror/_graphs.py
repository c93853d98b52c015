"""Graph definitions in ``workflow_definitions``: register, activate, load; instance diagrams.

A graph's row holds ``{"kind": "graph", ...the definition...}`` in ``definition_json``, keyed
like every definition by ``name@version``. A version, once registered, never changes: the
interpreter is started with the definition itself, so running instances keep theirs anyway,
and a row that said otherwise would lie about them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from sdk import (
    DefinitionError,
    GraphDefinition,
    InstanceNotFoundError,
    WorkflowNotFoundError,
    mermaid,
    registry,
)
from sdk._registry import version_key

from ._database import upsert
from ._models import StepExecutionModel, WorkflowDefinitionModel, WorkflowInstanceModel
from ._projection import definition_id_for

__all__ = [
    "GRAPH_KIND",
    "graph_bundle",
    "graph_versions",
    "instance_diagram",
    "load_graph",
    "register_graph",
    "set_graph_active",
    "workflow_known",
]

GRAPH_KIND = "graph"
"""``definition_json["kind"]`` of a graph definition's row."""

_definitions = cast(Table, WorkflowDefinitionModel.__table__)
_instances = cast(Table, WorkflowInstanceModel.__table__)
_steps = cast(Table, StepExecutionModel.__table__)


def _stored(definition: GraphDefinition) -> dict[str, Any]:
    return {"kind": GRAPH_KIND, **definition.to_dict()}


def _from_stored(stored: Any) -> GraphDefinition | None:
    if not isinstance(stored, dict) or stored.get("kind") != GRAPH_KIND:
        return None
    return GraphDefinition.from_dict({k: v for k, v in stored.items() if k != "kind"})


async def register_graph(
    engine: AsyncEngine, definition: GraphDefinition, *, active: bool | None = True
) -> uuid.UUID:
    """Store a (validated) graph version; registering the same content again changes nothing.

    ``active`` marks the version active or inactive; None leaves a stored version's mark
    (a new one is stored inactive).

    Raises:
        DefinitionError: That name and version hold a different definition already.
    """
    row_id = definition_id_for(definition.workflow_type)
    async with engine.begin() as conn:
        found = (
            await conn.execute(select(_definitions.c.definition_json).where(_definitions.c.id == row_id))
        ).first()
        if found is not None and found[0] and found[0] != _stored(definition):
            raise DefinitionError(
                f"graph {definition.name!r} version {definition.version!r} is registered with other content; "
                "bump its version (running instances keep the definition they started with)"
            )
    from sqlalchemy.ext.asyncio import AsyncSession

    async with AsyncSession(engine) as session:
        now = datetime.now(UTC)
        await upsert(
            session,
            WorkflowDefinitionModel,
            {
                "id": row_id,
                "name": definition.name,
                "version": definition.version,
                "workflow_type": definition.workflow_type,
                "description": definition.description,
                "definition_json": _stored(definition),
                "is_active": bool(active),
                "created_at": now,
                "updated_at": now,
            },
            update_columns=("description", "definition_json", *(() if active is None else ("is_active",))),
        )
        await session.commit()
    return row_id


async def set_graph_active(engine: AsyncEngine, name: str, version: str, active: bool) -> None:
    """Mark a registered graph version active (new instances may start it) or inactive.

    Raises:
        WorkflowNotFoundError: No such graph version.
    """
    async with engine.begin() as conn:
        result = await conn.execute(
            update(_definitions)
            .where(_definitions.c.name == name, _definitions.c.version == version)
            .values(is_active=active, updated_at=datetime.now(UTC))
        )
        if not result.rowcount:
            raise WorkflowNotFoundError(f"no graph {name!r} version {version!r} is registered")


async def graph_versions(engine: AsyncEngine, name: str) -> list[tuple[str, bool]]:
    """(version, active) of every registered version of graph ``name``, oldest first."""
    stmt = select(_definitions.c.version, _definitions.c.is_active, _definitions.c.definition_json).where(
        _definitions.c.name == name
    )
    async with engine.connect() as conn:
        rows = [(str(r[0]), bool(r[1])) for r in await conn.execute(stmt) if _is_graph(r[2])]
    return sorted(rows, key=lambda r: version_key(r[0]))


def _is_graph(stored: Any) -> bool:
    return isinstance(stored, dict) and stored.get("kind") == GRAPH_KIND


async def load_graph(engine: AsyncEngine, name: str, version: str | None = None) -> GraphDefinition:
    """A registered graph: that version, or the newest active one.

    Raises:
        WorkflowNotFoundError: No such graph (or no active version).
    """
    stmt = select(_definitions.c.version, _definitions.c.is_active, _definitions.c.definition_json).where(
        _definitions.c.name == name
    )
    if version is not None:
        stmt = stmt.where(_definitions.c.version == version)
    async with engine.connect() as conn:
        rows = [r for r in await conn.execute(stmt) if _is_graph(r[2]) and (version is not None or r[1])]
    if not rows:
        raise WorkflowNotFoundError(f"no graph {name!r} (version {version or 'active'}) is registered")
    newest = max(rows, key=lambda r: version_key(str(r[0])))
    graph = _from_stored(newest[2])
    assert graph is not None
    return graph


async def workflow_known(engine: AsyncEngine, name: str, version: str | None) -> bool:
    """Whether ``name`` is a registered ``@workflow`` here or a graph in the mirror."""
    try:
        registry.get(name, version)
        return True
    except WorkflowNotFoundError:
        pass
    try:
        await load_graph(engine, name, version)
        return True
    except WorkflowNotFoundError:
        return False


async def graph_bundle(engine: AsyncEngine, definition: GraphDefinition) -> dict[str, GraphDefinition]:
    """The graphs ``definition``'s sub-workflow steps run (recursively), as the interpreter keys them."""
    bundle: dict[str, GraphDefinition] = {}
    todo = [definition]
    while todo:
        graph = todo.pop()
        for step in graph.steps:
            if step.kind != "subworkflow":
                continue
            key = f"{step.workflow}@{step.version}" if step.version else step.workflow
            if key in bundle:
                continue
            try:
                registry.get(step.workflow, step.version)
                continue  # a code-first workflow: the worker has it
            except WorkflowNotFoundError:
                pass
            child = await load_graph(engine, step.workflow, step.version)
            bundle[key] = child
            todo.append(child)
    return bundle


async def instance_diagram(
    engine: AsyncEngine, instance_id: uuid.UUID | str, *, tenant_id: str | None = None
) -> str:
    """A Mermaid flowchart of an instance's definition, each step coloured by its mirror status.

    Raises:
        InstanceNotFoundError: No such instance (in ``tenant_id``, when given).
    """
    instance_id = uuid.UUID(str(instance_id))
    stmt = (
        select(
            _instances.c.workflow_name,
            _instances.c.workflow_version,
            _instances.c.tenant_id,
            _definitions.c.definition_json,
        )
        .select_from(_instances.outerjoin(_definitions, _definitions.c.id == _instances.c.definition_id))
        .where(_instances.c.id == instance_id)
    )
    steps = select(_steps.c.step_name, _steps.c.status).where(_steps.c.instance_id == instance_id)
    steps = steps.order_by(_steps.c.step_seq, _steps.c.started_at)
    async with engine.connect() as conn:
        found = (await conn.execute(stmt)).first()
        if found is None or (tenant_id is not None and found[2] != tenant_id):
            raise InstanceNotFoundError(f"no instance {instance_id}")
        statuses = {str(r[0]): str(getattr(r[1], "value", r[1])) for r in await conn.execute(steps)}
    graph = _from_stored(found[3])
    if graph is not None:
        return mermaid(graph, statuses)
    code = registry.get(str(found[0]), str(found[1]))
    return mermaid(code, statuses)
