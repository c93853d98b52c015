"""``dwf graph validate|register|show|activate|deactivate`` and ``dwf event send``.

Validation checks step implementations against the ``--app`` modules (imported first), so a
graph naming a step no worker has is refused before it is registered.
"""

from __future__ import annotations

from typing import Any

from ._context import Context
from ._exit import ExitCode, UsageError
from ._target import open_client, require_database

__all__ = ["activate_graph", "register_graph", "send_event", "show_graph", "validate_graph"]


async def validate_graph(ctx: Context) -> int:
    """Load and check a graph file; print its diagram with --diagram (exit 2 when invalid)."""
    from sdk import GraphDefinition, mermaid

    definition = GraphDefinition.load(ctx.args.file)
    _check(ctx, definition)
    if ctx.out.json_mode:
        ctx.out.json({"name": definition.name, "version": definition.version, "valid": True})
    else:
        size = f"{len(definition.steps)} steps, {len(definition.edges)} edges"
        ctx.out.line(f"{definition.workflow_type}: valid ({size})")
        if ctx.args.diagram:
            ctx.out.line(mermaid(definition).rstrip())
    return ExitCode.OK


def _check(ctx: Context, definition: Any) -> None:
    from sdk import UnknownImplementationError, check_graph

    try:
        check_graph(definition)
    except UnknownImplementationError as exc:
        if ctx.target.app:
            raise
        raise UsageError(f"{exc}; pass --app MODULE (or set DWF_APP) to import your steps") from exc


async def register_graph(ctx: Context) -> int:
    """Check a graph file and store it as a new version in workflow_definitions."""
    from sdk import GraphDefinition

    definition = GraphDefinition.load(ctx.args.file)
    _check(ctx, definition)
    require_database(ctx.target)
    async with open_client(ctx.target) as client:
        await client.register_graph(definition, active=not ctx.args.inactive)
    if ctx.out.json_mode:
        ctx.out.json(
            {"name": definition.name, "version": definition.version, "active": not ctx.args.inactive}
        )
    else:
        state = "inactive" if ctx.args.inactive else "active"
        ctx.out.line(f"registered {definition.workflow_type} ({state}); workers run it without a restart")
    return ExitCode.OK


async def activate_graph(ctx: Context) -> int:
    """Mark a registered graph version active or inactive."""
    from sdk.mirror import set_graph_active

    require_database(ctx.target)
    async with open_client(ctx.target) as client:
        await set_graph_active(client._engine, ctx.args.name, ctx.args.version, ctx.args.active)
    ctx.out.note(f"{ctx.args.name}@{ctx.args.version} is {'active' if ctx.args.active else 'inactive'}")
    return ExitCode.OK


async def show_graph(ctx: Context) -> int:
    """Print a definition's Mermaid diagram, or an instance's coloured by its steps' status."""
    from sdk import mermaid, registry
    from sdk.mirror import instance_diagram, load_graph

    require_database(ctx.target)
    async with open_client(ctx.target) as client:
        engine = client._engine
        if ctx.args.instance:
            text = await instance_diagram(engine, ctx.args.instance)
        elif registry.versions(ctx.args.name):
            text = mermaid(registry.get(ctx.args.name, ctx.args.version))
        else:
            text = mermaid(await load_graph(engine, ctx.args.name, ctx.args.version))
    if ctx.out.json_mode:
        ctx.out.json({"mermaid": text})
    else:
        ctx.out.line(text.rstrip())
    return ExitCode.OK


async def send_event(ctx: Context) -> int:
    """Send an external event to the instance waiting for it (by correlation key or workflow id)."""
    async with open_client(ctx.target, database=ctx.args.workflow_id is None) as client:
        workflow_id = await client.send_event(
            ctx.args.event, ctx.args.key, ctx.args.payload, workflow_id=ctx.args.workflow_id
        )
    if ctx.out.json_mode:
        ctx.out.json({"workflow_id": workflow_id})
    else:
        ctx.out.line(f"sent {ctx.args.event} ({ctx.args.key}) to {workflow_id}")
    return ExitCode.OK
