"""``dwf keys generate`` and ``dwf deploy-check``: the operator's side of signed commands and deploys.

The commands that act as a user sign through ``sdk.WorkflowClient`` (``DWF_SIGNING_KEY``); these
two make a key pair for that, and check a deploy before it strands waiting instances.
"""

from __future__ import annotations

from ._context import Context
from ._exit import CommandError, ExitCode, UsageError
from ._target import open_client

__all__ = ["deploy_check", "generate_keys"]


async def generate_keys(ctx: Context) -> int:
    """Print a new signing key (for the application) and its public key (for the workers)."""
    from sdk import generate_signing_key

    key = generate_signing_key(ctx.args.key_id)
    private, public = key.secret(), key.public_key
    if ctx.out.json_mode:
        ctx.out.json({"key_id": key.key_id, "signing_key": private, "public_key": public})
        return ExitCode.OK
    ctx.out.line(f"DWF_SIGNING_KEY={private}")
    ctx.out.line(f"DWF_COMMAND_KEYS={public}")
    ctx.out.note(
        "keep DWF_SIGNING_KEY secret (the application and operators acting as users); "
        "give DWF_COMMAND_KEYS to the workers, next to the keys they hold during a rotation"
    )
    return ExitCode.OK


async def deploy_check(ctx: Context) -> int:
    """Replay running instances against the code in ``--app``; exit 1 naming each that would break."""
    from sdk import check_running_instances

    if not ctx.target.app:
        raise UsageError(
            "dwf deploy-check replays histories with the code about to be deployed: pass --app MODULE"
        )
    async with open_client(ctx.target, database=False) as client:
        checked, problems = await check_running_instances(client, limit=ctx.args.limit)
    if ctx.out.json_mode:
        ctx.out.json([vars(p) for p in problems])
    else:
        for problem in problems:
            ctx.out.line(f"{problem.workflow_id}  {problem.workflow_type}  {problem.error.splitlines()[0]}")
    summary = f"replayed {checked} running instance(s) against {', '.join(ctx.target.app)}"
    if not problems:
        ctx.out.note(f"{summary}: every one replays")
        return ExitCode.OK
    raise CommandError(f"{summary}: {len(problems)} would break on the new code (listed above)")
