"""``dwf delegations``: set, list and end a user's substitute (out of office).

Delegations live in the SQL mirror (``workflow_delegations``); setting and ending go through
``WorkflowClient.delegations``, so only the user or an administrator (``--admin``) may, and
``--hand-over`` reassigns the user's open tasks with the client's checks and signatures.
"""

from __future__ import annotations

from ._context import Context
from ._exit import ExitCode
from ._output import Column, attr
from ._target import open_client, require_database

__all__ = ["end_delegation", "list_delegations", "set_delegation"]

DELEGATION_COLUMNS = (
    Column("ID", attr("id"), key=True),
    Column("USER", attr("user_id")),
    Column("SUBSTITUTE", attr("substitute_id")),
    Column("FROM", attr("starts_at")),
    Column("UNTIL", attr("ends_at")),
    Column("ENDED", attr("ended_at")),
    Column("BY", attr("created_by")),
    Column("REASON", attr("reason"), 40),
)


async def set_delegation(ctx: Context) -> int:
    """Name a substitute for a user (and hand their open tasks over with ``--hand-over``)."""
    a = ctx.args
    async with open_client(ctx.target) as client:
        row = await client.delegations.set(
            a.user,
            a.substitute,
            starts_at=a.starts_at,
            ends_at=a.ends_at,
            reason=a.reason,
            by=a.by,
            admin=a.admin,
            hand_over=False,
            tenant_id=a.tenant,
        )
        moved = []
        if a.hand_over:
            moved = await client.delegations.hand_over(
                a.user, a.substitute, by=a.by, admin=a.admin, reason=a.reason, tenant_id=a.tenant
            )
    if ctx.out.json_mode:
        ctx.out.json({**row.model_dump(), "handed_over": [task.task_id for task in moved]})
    else:
        ctx.out.line(f"delegation {row.id}: {row.substitute_id} stands in for {row.user_id}")
        if a.hand_over:
            ctx.out.line(f"handed over {len(moved)} open task(s)")
    return ExitCode.OK


async def list_delegations(ctx: Context) -> int:
    """The tenant's delegations, newest first."""
    from sdk.mirror import DelegationStore, create_engine

    a = ctx.args
    require_database(ctx.target)
    engine = create_engine(ctx.target.database_url)
    try:
        rows = await DelegationStore(engine).list(tenant_id=a.tenant, user=a.user, in_force_at=a.at)
    finally:
        await engine.dispose()
    if ctx.out.json_mode:
        ctx.out.json(rows)
    else:
        ctx.out.table(rows, DELEGATION_COLUMNS, empty="no delegations")
    return ExitCode.OK


async def end_delegation(ctx: Context) -> int:
    """End a delegation now (new tasks go to the user again)."""
    a = ctx.args
    async with open_client(ctx.target) as client:
        row = await client.delegations.end(a.delegation_id, by=a.by, admin=a.admin, tenant_id=a.tenant)
    if ctx.out.json_mode:
        ctx.out.json(row)
    else:
        ctx.out.line(f"delegation {row.id} ended at {row.ended_at} by {row.ended_by}")
    return ExitCode.OK
