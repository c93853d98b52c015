"""The client's side of graph definitions: register, start, and send external events.

A graph starts as the interpreter workflow (``dwf.graph``) with the definition itself as its
first argument, so the instance keeps that definition for its life. External events go to a
waiting event step through the ``external_event`` signal: by workflow id, or found in the
mirror by the event's name and correlation key (the event step's row while it waits).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._details import instance_summary
from ._errors import InstanceNotFoundError, InvalidInputError, MirrorUnavailableError
from ._graph_check import check_graph
from ._graph_model import GraphDefinition
from ._graph_run import graph_start_input
from ._identity import ALL_TENANTS
from ._start_checks import check_against_schema, check_storable_input, refuse_unstorable
from ._types import StepStatus, StepType
from .protocol import EVENT_SIGNAL, GRAPH_WORKFLOW

if TYPE_CHECKING:
    from ._client import WorkflowClient
    from ._handle import InstanceHandle

__all__ = ["find_waiting_instance", "register_graph", "send_event", "start_graph"]


def _engine(client: WorkflowClient, what: str) -> Any:
    engine = client._engine
    if engine is None:
        raise MirrorUnavailableError(f"{what} uses the SQL mirror: connect with database_url=")
    return engine


async def register_graph(
    client: WorkflowClient, definition: GraphDefinition, *, active: bool | None = True
) -> None:
    """Validate ``definition`` (steps of this process, sub-workflows) and store it in the mirror."""
    from .mirror import register_graph as store
    from .mirror import workflow_known

    engine = _engine(client, "registering a graph")
    known: dict[tuple[str, str | None], bool] = {}
    for step in definition.steps:
        if step.kind == "subworkflow":
            known[(step.workflow, step.version)] = await workflow_known(engine, step.workflow, step.version)
    check_graph(definition, workflow_known=lambda name, version: known.get((name, version), False))
    await store(engine, definition, active=active)


async def start_graph(
    client: WorkflowClient,
    graph: GraphDefinition | str,
    data: dict[str, Any] | None = None,
    *,
    version: str | None = None,
    id: str | None = None,
    tenant_id: str | None = None,
    created_by: str | None = None,
    task_queue: str | None = None,
    subgraphs: Mapping[str, GraphDefinition] | None = None,
) -> InstanceHandle[Any]:
    """Start an instance of a graph (a definition, or a name registered in the mirror)."""
    tenant_id = client._scope(tenant_id)  # a client bound to a tenant stays in it
    if tenant_id == ALL_TENANTS:
        raise InvalidInputError("an instance belongs to one tenant: start it with tenant_id=<its tenant>")
    refuse_unstorable(tenant_id=tenant_id, created_by=created_by, id=id)
    data = dict(data or {})
    graphs: dict[str, GraphDefinition] = {}
    if isinstance(graph, str):
        from .mirror import graph_bundle, load_graph

        engine = _engine(client, f"starting graph {graph!r} by name")
        definition = await load_graph(engine, graph, version)
        graphs = await graph_bundle(engine, definition)
    else:
        definition = graph
        if client._engine is not None:
            from .mirror import graph_bundle
            from .mirror import register_graph as store

            await store(client._engine, definition, active=None)  # the instance's row needs its definition
            graphs = await graph_bundle(client._engine, definition)
        check_graph(definition)  # a stored version was checked when it was registered
    if definition.data_schema is not None:
        check_against_schema(definition.name, [definition.data_schema], [data])
    for key, sub in (subgraphs or {}).items():
        graphs[key] = check_graph(sub).definition
    check_storable_input([data])
    memo = {k: v for k, v in (("tenant_id", tenant_id), ("created_by", created_by)) if v is not None}
    handle = await client.temporal.start_workflow(
        GRAPH_WORKFLOW,
        args=[graph_start_input(definition, graphs), data],
        id=id or f"{definition.name}-{uuid.uuid4()}",
        task_queue=task_queue or client.task_queue,
        memo=memo or None,
        # Temporal's user metadata, as for code-first workflows (``sdk._details``).
        static_summary=instance_summary(
            definition.name, definition.version, tenant_id=tenant_id, created_by=created_by
        ),
        static_details=definition.description or None,
    )
    return client._handle_for(handle, None, tenant_id)


async def find_waiting_instance(client: WorkflowClient, event: str, key: str, tenant_id: str | None) -> str:
    """The workflow id of the instance whose event step waits for ``event`` with ``key``."""
    from sqlalchemy import select

    from .mirror import StepExecutionModel as S
    from .mirror import WorkflowInstanceModel as I

    engine = _engine(client, "finding an instance by correlation key")
    stmt = (
        select(S.input_data, I.workflow_id, I.tenant_id)
        .join(I, I.id == S.instance_id)
        .where(S.step_type == StepType.WEBHOOK, S.status == StepStatus.RUNNING)
        .order_by(S.started_at)
    )
    async with engine.connect() as conn:
        for input_data, workflow_id, owner in await conn.execute(stmt):
            shown = input_data or {}
            if shown.get("event") != event or shown.get("correlation_key") != key:
                continue
            if tenant_id is not None and tenant_id != ALL_TENANTS and owner != tenant_id:
                continue
            return str(workflow_id)
    raise InstanceNotFoundError(f"no instance waits for event {event!r} with key {key!r}")


async def send_event(
    client: WorkflowClient,
    event: str,
    key: str,
    payload: Any = None,
    *,
    workflow_id: str | None = None,
    tenant_id: str | None = None,
) -> str:
    """Send an external event; returns the workflow id it went to."""
    if not isinstance(event, str) or not event or not isinstance(key, str):
        raise InvalidInputError("an event needs a name and a correlation key (strings)")
    refuse_unstorable(event=event, key=key, workflow_id=workflow_id)
    check_storable_input([payload])
    scope = client._scope(tenant_id)  # a client bound to a tenant stays in it
    if workflow_id is None:
        workflow_id = await find_waiting_instance(client, event, key, scope)
    elif scope is not None and scope != ALL_TENANTS:
        await client.get_instance(workflow_id, tenant_id=scope).describe()  # another tenant's: not found
    await client.temporal.get_workflow_handle(workflow_id).signal(
        EVENT_SIGNAL, {"event": event, "key": key, "payload": payload}
    )
    return workflow_id
