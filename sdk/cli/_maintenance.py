"""``dwf db upgrade|current`` and ``dwf mirror audit|rebuild``.

Audit and rebuild replay Temporal's histories with the workflow code, so they need the
application's modules (``--app``); each shows its progress on stderr while it works (a bar on
a terminal). A workflow id may be given as a unique start of one the mirror has.
"""

from __future__ import annotations

from typing import Any

from ._context import Context
from ._exit import CannotConnectError, CommandError, ExitCode, UsageError
from ._output import Progress
from ._prefix import workflow_ids
from ._target import open_client, require_database, sqlite_path

__all__ = ["audit_mirror", "current_schema", "rebuild_mirror", "upgrade_schema"]


async def upgrade_schema(ctx: Context) -> int:
    """Create or migrate the mirror's tables (idempotent; safe while workers run)."""
    from sdk.mirror import current_revision, upgrade

    target = ctx.target
    path = sqlite_path(target.database_url)
    if path is not None and not path.parent.is_dir():
        raise CannotConnectError(f"cannot create {path}: the directory {path.parent} does not exist")
    before = await current_revision(target.database_url)
    await upgrade(target.database_url, ctx.args.revision)
    after = await current_revision(target.database_url)
    if ctx.out.json_mode:
        ctx.out.json({"database": target.database_shown, "from": before, "to": after})
    elif before == after:
        ctx.out.line(f"mirror schema already at {after} in {target.database_shown}")
    else:
        ctx.out.line(
            f"mirror schema upgraded from {before or 'nothing'} to {after} in {target.database_shown}"
        )
    return ExitCode.OK


async def current_schema(ctx: Context) -> int:
    """The mirror schema's revision, and whether it is the newest this SDK ships."""
    from sdk.mirror import current_revision, head_revision

    target = ctx.target
    path = sqlite_path(target.database_url)
    current = None if path is not None and not path.exists() else await current_revision(target.database_url)
    head = head_revision()
    if ctx.out.json_mode:
        ctx.out.json(
            {
                "database": target.database_shown,
                "current": current,
                "head": head,
                "up_to_date": current == head,
            }
        )
    elif current is None:
        ctx.out.line(f"none: no mirror schema in {target.database_shown} (run 'dwf db upgrade')")
    elif current == head:
        ctx.out.line(f"{current} (head)")
    else:
        ctx.out.line(f"{current} (head is {head}: run 'dwf db upgrade')")
    return ExitCode.OK


def _require_definitions(ctx: Context, command: str) -> None:
    if not ctx.target.app:
        raise UsageError(
            f"{command} replays histories with your workflow code: "
            "pass --app MODULE (or set DWF_APP) to import it"
        )


async def audit_mirror(ctx: Context) -> int:
    """Compare the mirror with Temporal's history; exit 1 when anything differs."""
    from sdk.mirror import MirrorWriter, audit

    _require_definitions(ctx, "dwf mirror audit")
    require_database(ctx.target)
    ids: list[str] | None = await workflow_ids(ctx.target, ctx.args.workflow_ids) or None
    progress = Progress("audited", len(ids) if ids else None, ctx.out.stderr)
    writer = MirrorWriter.from_url(ctx.target.database_url)
    try:
        async with open_client(ctx.target, database=False) as client:
            report = await audit(client.temporal, writer, ids, progress)
    finally:
        progress.close()
        await writer.close()
    if ctx.out.json_mode:
        ctx.out.json([vars(m) for m in report.mismatches])
    else:
        for mismatch in report.mismatches:
            ctx.out.line(str(mismatch))
    summary = f"audited {report.checked} instance(s)"
    if report.clean:
        ctx.out.note(f"{summary}: the mirror matches Temporal")
        return ExitCode.OK
    raise CommandError(
        f"{summary}: {len(report.mismatches)} mismatch(es); "
        "repair them with 'dwf mirror rebuild WORKFLOW_ID ...'"
    )


async def rebuild_mirror(ctx: Context) -> int:
    """Recompute instances' rows from Temporal's history (idempotent upserts)."""
    from sdk.mirror import MirrorWriter, rebuild

    a = ctx.args
    if bool(a.workflow_ids) == bool(a.all):
        raise UsageError("dwf mirror rebuild: name the WORKFLOW_IDs to rebuild, or pass --all (not both)")
    _require_definitions(ctx, "dwf mirror rebuild")
    require_database(ctx.target)
    ids: list[str] | None = await workflow_ids(ctx.target, a.workflow_ids) or None
    progress = Progress("rebuilt", len(ids) if ids else None, ctx.out.stderr)
    rebuilt: list[dict[str, Any]] = []

    def step(count: int, workflow_id: str) -> None:
        rebuilt.append({"workflow_id": workflow_id})
        progress(count, workflow_id)

    writer = MirrorWriter.from_url(ctx.target.database_url)
    try:
        async with open_client(ctx.target, database=False) as client:
            count = await rebuild(client.temporal, writer, ids, step)
    finally:
        progress.close()
        await writer.close()
    if ctx.out.json_mode:
        ctx.out.json(rebuilt)
    else:
        ctx.out.line(f"rebuilt {count} instance(s) in {ctx.target.database_shown}")
    return ExitCode.OK
