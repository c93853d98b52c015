"""The diagram endpoints: a definition's Mermaid flowchart, and an instance's with each step
coloured by its status in the mirror (graph definitions from the mirror; code-first workflows
from the modules this process imported, e.g. ``dwf serve --app``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from sdk import WorkflowNotFoundError, mermaid, registry
from sdk.mirror import instance_diagram, load_graph

from ._caller import Caller, get_caller
from ._instances import _instance
from ._tasks import _PROBLEMS

__all__ = ["Diagram", "router"]

router = APIRouter(responses=_PROBLEMS)  # type: ignore[arg-type]
CallerDep = Annotated[Caller, Depends(get_caller)]


class Diagram(BaseModel):
    """A Mermaid flowchart (``flowchart TD``), to render with Mermaid."""

    mermaid: str = Field(description="Mermaid source")


@router.get(
    "/definitions/{name}/diagram",
    response_model=Diagram,
    tags=["definitions"],
    summary="A definition's diagram",
)
async def definition_diagram(
    name: str,
    caller: CallerDep,
    version: Annotated[str | None, Query(description="This version (default the active one)")] = None,
) -> Diagram:
    """Every step and edge of a workflow version (the active one unless ``version`` is given)."""
    if "\x00" in name + (version or ""):
        raise WorkflowNotFoundError("a name or version cannot contain a NUL character")
    if registry.versions(name):
        return Diagram(mermaid=mermaid(registry.get(name, version)))
    return Diagram(mermaid=mermaid(await load_graph(caller.state.engine, name, version)))


@router.get(
    "/instances/{instance_id}/diagram",
    response_model=Diagram,
    tags=["instances"],
    summary="An instance's diagram",
)
async def instance_diagram_endpoint(instance_id: str, caller: CallerDep) -> Diagram:
    """The instance's definition, each step coloured by its status (another tenant's: 404)."""
    row = await _instance(caller, instance_id)
    return Diagram(mermaid=await instance_diagram(caller.state.engine, row.id))
