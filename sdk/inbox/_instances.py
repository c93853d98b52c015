"""The instance and definition endpoints: start, list, show with step history, cancel, pause,
resume; the registered definitions.

An instance of another tenant is not found. Control commands go through the client, which
signs them as the caller; the workflow checks them again on receipt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import Table, select

from sdk import ALL_TENANTS, InstanceHandle, InstanceNotFoundError, WorkflowNotFoundError, WorkflowStatus
from sdk._types import ENDED_STATUSES
from sdk.mirror import InstanceRow, Page, WorkflowDefinitionModel

from ._caller import Caller, get_caller
from ._schemas import ControlRequest, DefinitionSummary, InstanceDetail, InstanceStarted, StartRequest
from ._tasks import _NOT_MODIFIED, _PROBLEMS, Limit, Offset, aware, etag_response

__all__ = ["router"]

router = APIRouter(responses=_PROBLEMS)  # type: ignore[arg-type]
CallerDep = Annotated[Caller, Depends(get_caller)]
_DEFINITIONS = cast(Table, WorkflowDefinitionModel.__table__)
_STEP_LIMIT = 500


async def _instance(caller: Caller, instance_id: str) -> InstanceRow:
    row = await caller.queries.get_instance(instance_id, tenant_id=caller.scope)
    if not caller.identity.sees_tenant(row.tenant_id):
        raise InstanceNotFoundError(f"workflow instance {instance_id} not found")
    return row


@router.get("/instances", response_model=Page[InstanceRow], tags=["instances"], summary="Instances")
async def list_instances(
    caller: CallerDep,
    status: Annotated[list[WorkflowStatus] | None, Query(description="Only these statuses")] = None,
    workflow_name: str | None = None,
    workflow_version: str | None = None,
    created_by: str | None = None,
    created_after: Annotated[datetime | None, Query(description="Created at or after (inclusive)")] = None,
    created_before: Annotated[datetime | None, Query(description="Created before (exclusive)")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[InstanceRow]:
    """The instances of the caller's tenant matching every filter given, newest first."""
    page: Page[InstanceRow] = await caller.queries.instances(
        tenant_id=caller.scope,
        status=status,
        workflow_name=workflow_name,
        workflow_version=workflow_version,
        created_by=created_by,
        limit=limit,
        offset=offset,
        created_after=aware(created_after),
        created_before=aware(created_before),
    )
    return page


@router.post(
    "/instances", response_model=InstanceStarted, status_code=201, tags=["instances"], summary="Start"
)
async def start_instance(body: StartRequest, caller: CallerDep, response: Response) -> InstanceStarted:
    """Start an instance in the caller's tenant, created by the caller.

    ``input`` is the workflow's one argument; ``args`` its arguments when it takes several.
    Only an administrator of all tenants names the tenant (``tenant_id``).
    """
    identity = caller.identity
    tenant = identity.tenant_id
    if body.tenant_id is not None and body.tenant_id != tenant:
        if tenant != ALL_TENANTS:
            raise HTTPException(
                403, "only an administrator of all tenants starts instances in another tenant"
            )
        tenant = body.tenant_id
    if body.args is not None and "input" in body.model_fields_set:
        raise HTTPException(422, "give input (one argument) or args (several), not both")
    args = body.args if body.args is not None else ([body.input] if "input" in body.model_fields_set else [])
    try:
        handle: InstanceHandle[Any] = await caller.client.start(
            body.workflow,
            *args,
            id=body.workflow_id,
            version=body.version,
            tenant_id=tenant,
            created_by=identity.user,
        )
    except TypeError as exc:  # the number of arguments
        raise HTTPException(422, str(exc)) from None
    if handle.instance_id is not None:
        response.headers["Location"] = f"instances/{handle.instance_id}"
    return InstanceStarted(
        workflow_id=handle.id,
        run_id=handle.run_id,
        instance_id=str(handle.instance_id) if handle.instance_id else None,
    )


@router.get(
    "/instances/{instance_id}",
    response_model=InstanceDetail,
    tags=["instances"],
    summary="An instance",
    responses=_NOT_MODIFIED,  # type: ignore[arg-type]
)
async def show_instance(instance_id: str, request: Request, caller: CallerDep) -> Response:
    """An instance with its step history (in the workflow's order) and its tasks. Poll it with
    ``If-None-Match`` to follow its progress."""
    row = await _instance(caller, instance_id)
    steps = await caller.queries.step_history(row.id, tenant_id=caller.scope, limit=_STEP_LIMIT)
    tasks = await caller.queries.instance_tasks(row.id, tenant_id=caller.scope, limit=_STEP_LIMIT)
    return etag_response(request, InstanceDetail(instance=row, steps=steps.items, tasks=tasks.items))


async def _control(caller: Caller, instance_id: str, action: str, reason: str | None) -> InstanceRow:
    row = await _instance(caller, instance_id)
    if row.status in ENDED_STATUSES:
        raise HTTPException(409, f"instance {row.id} is {row.status.value}: it takes no {action}")
    # The command carries the caller's own tenant and admin flag: an administrator of all
    # tenants acts as one, which the workflow checks and records.
    acting = caller.acting()
    handle = caller.client.get_instance(row.workflow_id, row.run_id, tenant_id=acting["tenant_id"])
    by, admin = acting["user"], acting.get("admin")
    if action == "cancel":
        await handle.cancel(reason=reason, by=by, admin=admin)
    elif action == "pause":
        await handle.pause(reason=reason, by=by, admin=admin)
    else:
        await handle.resume(by=by, admin=admin)
    return row


@router.post("/instances/{instance_id}/cancel", status_code=202, tags=["instances"], summary="Cancel")
async def cancel_instance(instance_id: str, caller: CallerDep, body: ControlRequest | None = None) -> None:
    """Request cancellation: pending tasks become canceled, the instance CANCELED."""
    await _control(caller, instance_id, "cancel", body.reason if body else None)


@router.post("/instances/{instance_id}/pause", status_code=202, tags=["instances"], summary="Pause")
async def pause_instance(instance_id: str, caller: CallerDep, body: ControlRequest | None = None) -> None:
    """Hold the instance before its next step (status PAUSED)."""
    await _control(caller, instance_id, "pause", body.reason if body else None)


@router.post("/instances/{instance_id}/resume", status_code=202, tags=["instances"], summary="Resume")
async def resume_instance(instance_id: str, caller: CallerDep) -> None:
    """Let a paused instance go on."""
    await _control(caller, instance_id, "resume", None)


def _summary(row: Any, *, full: bool) -> DefinitionSummary:
    return DefinitionSummary(
        name=row.name,
        version=row.version,
        description=row.description,
        is_active=bool(row.is_active),
        workflow_type=row.workflow_type,
        definition=dict(row.definition_json or {}) if full else None,
    )


@router.get(
    "/definitions", response_model=list[DefinitionSummary], tags=["definitions"], summary="Definitions"
)
async def list_definitions(caller: CallerDep) -> list[DefinitionSummary]:
    """Every registered workflow version, by name then version."""
    stmt = select(_DEFINITIONS).order_by(_DEFINITIONS.c.name, _DEFINITIONS.c.version)
    async with caller.state.engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_summary(row, full=False) for row in rows]


@router.get(
    "/definitions/{name}", response_model=DefinitionSummary, tags=["definitions"], summary="A definition"
)
async def show_definition(
    name: str,
    caller: CallerDep,
    version: Annotated[str | None, Query(description="This version (default the active one)")] = None,
) -> DefinitionSummary:
    """One workflow version (the active one unless ``version`` is given), with its stored
    definition: steps, forms' JSON schemas, input schema."""
    for text in (name, version or ""):
        if "\x00" in text:
            raise HTTPException(422, "a name or version cannot contain a NUL character")
    stmt = select(_DEFINITIONS).where(_DEFINITIONS.c.name == name)
    if version is not None:
        stmt = stmt.where(_DEFINITIONS.c.version == version)
    else:
        stmt = stmt.where(_DEFINITIONS.c.is_active.is_(True))
    async with caller.state.engine.connect() as conn:
        row = (await conn.execute(stmt.order_by(_DEFINITIONS.c.version.desc()).limit(1))).first()
    if row is None:
        raise WorkflowNotFoundError(f"no workflow {name!r} (version {version or 'active'})")
    return _summary(row, full=True)
