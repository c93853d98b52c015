"""The ``dwf`` commands and their options, declared with Typer.

A command only checks and collects its arguments: it returns an invocation (the async handler
to run and its arguments), which :func:`sdk.cli.main` runs and turns into an exit code, so
parsing is testable without running anything. Global options go before or after the command
name: the root takes them, and so does every command (:class:`_Command`); given in both
places, the one after the name wins.
"""

from __future__ import annotations

import functools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from sdk import WorkflowStatus

from . import _bulk, _delegations, _graphs, _instances, _maintenance, _processes, _serve, _tasks, _trust
from ._context import Handler
from ._exit import UsageError

__all__ = ["GLOBAL_NAMES", "app", "iso_datetime", "json_file", "json_value"]

_GLOBAL = "Global options (each also read from its DWF_* variable)"


# -- argument parsers: Typer also passes them the default, which is returned as is --------------


def json_value(text: Any) -> Any:
    """A JSON document given on the command line."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def json_file(path: Any) -> Any:
    """A JSON document read from a file (``-`` for stdin)."""
    if not isinstance(path, str):
        return path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def iso_datetime(text: Any) -> Any:
    """An ISO 8601 date or time; one without a timezone is taken as UTC."""
    if not isinstance(text, str):
        return text
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time (e.g. 2024-05-01 or 2024-05-01T09:30:00+02:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _status(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return WorkflowStatus(text.upper())
    except ValueError:
        choices = ", ".join(s.value for s in WorkflowStatus)
        raise typer.BadParameter(f"unknown status {text!r} (choose from {choices})") from None


# -- options shared by several commands ----------------------------------------------------------


def _option(*names: str, **kwargs: Any) -> Any:
    return typer.Option(*names, show_default=False, **kwargs)


Tenant = Annotated[str | None, _option("--tenant", metavar="TENANT", help="act within this tenant only")]
Groups = Annotated[
    list[str] | None, _option("--group", metavar="GROUP", help="a group of the user (repeatable)")
]
User = Annotated[str, _option("--user", metavar="USER", help="the user acting")]
Admin = Annotated[bool, _option("--admin", help="act as an administrator")]
TaskId = Annotated[str, typer.Argument(metavar="TASK_ID", help="a task id, or a unique start of one")]
Limit = Annotated[int, _option("--limit", min=1, metavar="N", help="rows per page (default 50)")]
Offset = Annotated[int, _option("--offset", min=0, metavar="N", help="rows to skip (default 0)")]


def _moment(text: str) -> Any:
    return _option(parser=iso_datetime, metavar="ISO", help=text)


def _port(text: str) -> Any:
    return _option(min=1, max=65535, metavar="PORT", help=text)


_HELP = {
    "address": "Temporal frontend (default localhost:7233) [DWF_TEMPORAL_ADDRESS]",
    "namespace": "Temporal namespace (default default) [DWF_TEMPORAL_NAMESPACE]",
    "task_queue": "the worker's task queue (default durable-workflows) [DWF_TASK_QUEUE]",
    "database_url": "the SQL mirror (default sqlite+aiosqlite:///dwf.db) [DWF_DATABASE_URL]",
    "app": "module(s) that define your workflows, imported first [DWF_APP]",
}


def _global(flag: str, metavar: str, text: str) -> Any:
    return _option(flag, metavar=metavar, help=text, rich_help_panel=_GLOBAL)


def _global_options(
    address: Annotated[str | None, _global("--address", "HOST:PORT", _HELP["address"])] = None,
    namespace: Annotated[str | None, _global("--namespace", "NAME", _HELP["namespace"])] = None,
    task_queue: Annotated[str | None, _global("--task-queue", "NAME", _HELP["task_queue"])] = None,
    database_url: Annotated[str | None, _global("--database-url", "URL", _HELP["database_url"])] = None,
    app: Annotated[str | None, _global("--app", "MODULE[,MODULE]", _HELP["app"])] = None,
    json: Annotated[bool, _option("--json", help="print JSON for scripts", rich_help_panel=_GLOBAL)] = False,
    debug: Annotated[
        bool, _option("--debug", help="print an error's traceback", rich_help_panel=_GLOBAL)
    ] = False,
) -> None:
    """Operate durable-workflows: run a worker or a dev setup, start workflows, list instances,
    act on human tasks, migrate and audit the SQL mirror."""


GLOBAL_NAMES = ("address", "namespace", "task_queue", "database_url", "app", "json", "debug")


@functools.cache
def _global_params() -> list[Any]:
    holder = typer.Typer(add_completion=False)
    holder.command()(_global_options)
    return list(typer.main.get_command(holder).params)


class _Command(TyperCommand):
    """A command that also takes the global options after its name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(_global_params())

    def invoke(self, ctx: Any) -> Any:
        given = {name: ctx.params.pop(name, None) for name in GLOBAL_NAMES}
        invocation = super().invoke(ctx)
        before = ctx.find_root().params
        merged = {n: given[n] if given[n] not in (None, False) else before.get(n) for n in GLOBAL_NAMES}
        invocation.json, invocation.debug = bool(merged.pop("json")), bool(merged.pop("debug"))
        invocation.flags = merged
        invocation.command = ctx.command_path.split(" ", 1)[1]
        return invocation


def _call(handler: Handler, arguments: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(handler=handler, **{k: v for k, v in arguments.items() if k != "ctx"})


def _exclusive(*given: tuple[str, Any]) -> None:
    flags = [flag for flag, value in given if value not in (None, False)]
    if len(flags) > 1:
        raise UsageError(f"{flags[1]} is not allowed with {flags[0]}")


_EXIT_CODES = (
    "Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 permission denied, "
    "5 invalid data, 6 conflict, 7 cannot connect."
)
app = typer.Typer(
    name="dwf",
    callback=_global_options,
    epilog=_EXIT_CODES,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
instances = typer.Typer(help="List and show workflow instances.")
tasks = typer.Typer(help="List, show and act on human tasks.")
db = typer.Typer(help="The mirror's schema.")
mirror = typer.Typer(help="Check and repair the mirror against Temporal.")
keys = typer.Typer(help="Signing keys for the commands that act as a user.")
graph = typer.Typer(help="Graph definitions: validate, register, (de)activate, draw.")
event = typer.Typer(help="External events for instances waiting on them.")
delegations = typer.Typer(help="Out of office: who stands in for an absent user.")
for group, name in (
    (graph, "graph"),
    (event, "event"),
    (instances, "instances"),
    (tasks, "tasks"),
    (db, "db"),
    (mirror, "mirror"),
    (keys, "keys"),
    (delegations, "delegations"),
):
    app.add_typer(group, name=name)
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command(cls=_Command)
def dev(
    port: Annotated[int | None, _port("Temporal frontend port (default 7233)")] = None,
    ui: Annotated[bool, _option("--ui", help="also serve the Temporal Web UI")] = False,
    ui_port: Annotated[int | None, _port("Web UI port (default: --port + 1000)")] = None,
    db_file: Annotated[
        str,
        _option(
            metavar="FILE", help=f"Temporal's state, a SQLite file (default {_processes.DEFAULT_DEV_DB_FILE})"
        ),
    ] = _processes.DEFAULT_DEV_DB_FILE,
    http_port: Annotated[
        int, _option(min=0, max=65535, metavar="PORT", help="worker health and metrics port (default 0: off)")
    ] = 0,
    inbox_port: Annotated[
        int, _option(min=0, max=65535, metavar="PORT", help="web inbox port (default 8080; 0: off)")
    ] = 8080,
    dev_users: Annotated[
        str | None,
        _option(metavar="FILE", help="inbox sign-in users (JSON file; default ann, bob, cara)"),
    ] = None,
) -> SimpleNamespace:
    """Run a Temporal dev server, a worker with the SQL mirror and the web inbox (Ctrl-C stops all)."""
    return _call(_processes.dev, locals())


@app.command(cls=_Command)
def serve(
    host: Annotated[
        str, _option(metavar="HOST", help="interface to listen on (default 127.0.0.1)")
    ] = "127.0.0.1",
    port: Annotated[int, _port("port to listen on (default 8080)")] = 8080,
    jwks_file: Annotated[
        str | None,
        _option(metavar="FILE", help="verify bearer tokens with the public keys of this JWKS file"),
    ] = None,
    audience: Annotated[str | None, _option(metavar="AUD", help="tokens must name this audience")] = None,
    issuer: Annotated[str | None, _option(metavar="ISS", help="tokens must come from this issuer")] = None,
    dev_users: Annotated[
        str | None, _option(metavar="FILE", help="development: users to pick at sign-in (JSON file)")
    ] = None,
    single_tenant: Annotated[
        bool, _option("--single-tenant", help="serve users without a tenant (an application without tenants)")
    ] = False,
    insecure_cookies: Annotated[
        bool, _option("--insecure-cookies", help="development over plain HTTP: cookies not marked Secure")
    ] = False,
) -> SimpleNamespace:
    """Serve the inbox's HTTP API (tokens: DWF_INBOX_JWT_SECRET or --jwks-file; see docs/inbox.md)."""
    return _call(_serve.serve, locals())


@app.command(cls=_Command, context_settings=_PASS_THROUGH, add_help_option=False)
def worker(ctx: typer.Context) -> SimpleNamespace:
    """Run the long-lived worker, exactly python -m worker (see dwf worker --help for its flags)."""
    return _call(_processes.worker, {"worker_args": list(ctx.args)})


@app.command(cls=_Command)
def start(
    workflow: Annotated[str, typer.Argument(metavar="WORKFLOW", help="workflow name (its active version)")],
    version: Annotated[str | None, _option(metavar="VERSION", help="start this version instead")] = None,
    input: Annotated[
        Any, _option("--input", parser=json_value, metavar="JSON", help="the workflow's input")
    ] = _instances.NO_INPUT,
    input_file: Annotated[
        Any,
        _option(
            "--input-file", parser=json_file, metavar="FILE", help="read the input from FILE (- for stdin)"
        ),
    ] = _instances.NO_INPUT,
    id: Annotated[str | None, _option(metavar="ID", help="workflow id (default WORKFLOW-<uuid>)")] = None,
    tenant: Tenant = None,
    created_by: Annotated[str | None, _option(metavar="USER", help="the user starting it")] = None,
    wait: Annotated[bool, _option("--wait", help="wait for the result (exit 1 if it fails)")] = False,
) -> SimpleNamespace:
    """Start a workflow instance."""
    no_input = _instances.NO_INPUT
    _exclusive(("--input", input is not no_input), ("--input-file", input_file is not no_input))
    invocation = _call(_instances.start_workflow, locals())
    invocation.input = input if input is not no_input else input_file
    return invocation


@instances.command("list", cls=_Command)
def list_instances(
    status: Annotated[
        WorkflowStatus | None,
        _option(parser=_status, metavar="STATUS", help="RUNNING, WAITING, COMPLETED, FAILED, ..."),
    ] = None,
    workflow: Annotated[str | None, _option(metavar="NAME", help="only this workflow")] = None,
    tenant: Tenant = None,
    created_by: Annotated[
        str | None, _option(metavar="USER", help="only instances this user started")
    ] = None,
    since: Annotated[datetime | None, _moment("created at or after")] = None,
    until: Annotated[datetime | None, _moment("created before")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    failing_task: Annotated[
        bool,
        _option(
            "--failing-task",
            help="running instances whose workflow task keeps failing (asks Temporal; "
            "with --workflow, --tenant, --limit)",
        ),
    ] = False,
) -> SimpleNamespace:
    """Instances in the mirror, newest first (--failing-task: those stuck on a failing workflow task)."""
    return _call(_instances.list_instances, locals())


@instances.command("show", cls=_Command)
def show_instance(
    id: Annotated[str, typer.Argument(metavar="WORKFLOW_ID_OR_INSTANCE_ID", help="or a unique start of one")],
    tenant: Tenant = None,
) -> SimpleNamespace:
    """One instance with its steps, tasks and result."""
    return _call(_instances.show_instance, locals())


@tasks.command("list", cls=_Command)
def list_tasks(
    user: Annotated[
        str | None,
        _option(metavar="USER", help="this user's inbox: assigned to them or to one of their --group"),
    ] = None,
    assignee: Annotated[str | None, _option(metavar="USER", help="only tasks assigned to this user")] = None,
    groups: Annotated[
        list[str] | None,
        _option(
            "--group", metavar="GROUP", help="with --user: a group of theirs; alone: tasks of this group"
        ),
    ] = None,
    tenant: Tenant = None,
    overdue: Annotated[bool, _option("--overdue", help="only tasks past their due time")] = False,
    due_before: Annotated[datetime | None, _moment("only tasks due before this")] = None,
    order_by: Annotated[
        str, _option(metavar="ORDER", help="due (default), priority (highest first) or follow_up")
    ] = "due",
    min_priority: Annotated[
        int | None, _option(min=0, max=100, metavar="N", help="only tasks of at least this priority")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> SimpleNamespace:
    """Pending tasks, soonest due first (or by --order-by)."""
    if order_by not in ("due", "priority", "follow_up"):
        raise UsageError(f"--order-by must be due, priority or follow_up, got {order_by!r}")
    _exclusive(("--user", user), ("--assignee", assignee))
    _exclusive(("--overdue", overdue), ("--due-before", due_before))
    groups = groups or []
    return _call(_tasks.list_tasks, locals())


@tasks.command("show", cls=_Command)
def show_task(task_id: TaskId, tenant: Tenant = None) -> SimpleNamespace:
    """One task with its comments and assignment history."""
    return _call(_tasks.show_task, locals())


@tasks.command("claim", cls=_Command)
def claim_task(
    task_id: TaskId, user: User, groups: Groups = None, admin: Admin = False, tenant: Tenant = None
) -> SimpleNamespace:
    """Claim a group task."""
    groups = groups or []
    return _call(_tasks.claim_task, locals())


@tasks.command("release", cls=_Command)
def release_task(
    task_id: TaskId, user: User, groups: Groups = None, admin: Admin = False, tenant: Tenant = None
) -> SimpleNamespace:
    """Release a claimed task to its group."""
    groups = groups or []
    return _call(_tasks.release_task, locals())


@tasks.command("complete", cls=_Command)
def complete_task(
    task_id: TaskId,
    user: User,
    data: Annotated[
        Any, _option("--data", parser=json_value, metavar="JSON", help="the form, a JSON object")
    ],
    comment: Annotated[
        str | None, _option(metavar="TEXT", help="a comment recorded with the completion")
    ] = None,
    groups: Groups = None,
    admin: Admin = False,
    tenant: Tenant = None,
) -> SimpleNamespace:
    """Complete a task with its form data."""
    groups = groups or []
    return _call(_tasks.complete_task, locals())


@tasks.command("reassign", cls=_Command)
def reassign_task(
    task_id: TaskId,
    user: User,
    reason: Annotated[str, _option(metavar="TEXT", help="why (recorded in the assignment history)")],
    to_user: Annotated[str | None, _option(metavar="USER", help="the new assignee")] = None,
    to_group: Annotated[str | None, _option(metavar="GROUP", help="the new group")] = None,
    groups: Groups = None,
    admin: Admin = False,
    tenant: Tenant = None,
) -> SimpleNamespace:
    """Reassign a task to a user and/or a group."""
    groups = groups or []
    return _call(_tasks.reassign_task, locals())


@tasks.command("comment", cls=_Command)
def comment_task(
    task_id: TaskId,
    user: User,
    body: Annotated[str, _option(metavar="TEXT", help="the comment")],
    groups: Groups = None,
    admin: Admin = False,
    tenant: Tenant = None,
) -> SimpleNamespace:
    """Comment on a task."""
    groups = groups or []
    return _call(_tasks.comment_task, locals())


@tasks.command("escalate", cls=_Command)
def escalate_task(
    task_id: TaskId,
    user: User,
    reason: Annotated[str | None, _option(metavar="TEXT", help="why (default: the link's reason)")] = None,
    groups: Groups = None,
    admin: Admin = False,
    tenant: Tenant = None,
) -> SimpleNamespace:
    """Move a task to the next link of its escalation chain now."""
    groups = groups or []
    return _call(_tasks.escalate_task, locals())


_TASK_BULK = ("reassign", "comment", "escalate", "cancel")
_INSTANCE_BULK = ("cancel", "pause", "resume")


def _choice(allowed: tuple[str, ...]) -> Any:
    def parse(text: Any) -> Any:
        if not isinstance(text, str) or text in allowed:
            return text
        raise typer.BadParameter(f"unknown action {text!r} (choose from {', '.join(allowed)})")

    return parse


DryRun = Annotated[bool, _option("--dry-run", help="count (and list) what matches; send nothing")]


@tasks.command("bulk", cls=_Command)
def bulk_tasks(
    action: Annotated[
        str,
        typer.Argument(
            metavar="ACTION", parser=_choice(_TASK_BULK), help="reassign, comment, escalate or cancel"
        ),
    ],
    user: User,
    groups: Annotated[
        list[str] | None, _option("--group", metavar="GROUP", help="only tasks of this group (repeatable)")
    ] = None,
    assignee: Annotated[str | None, _option(metavar="USER", help="only tasks assigned to this user")] = None,
    overdue: Annotated[bool, _option("--overdue", help="only tasks past their due time")] = False,
    due_before: Annotated[datetime | None, _moment("only tasks due before this")] = None,
    tenant: Tenant = None,
    to_user: Annotated[str | None, _option(metavar="USER", help="reassign: the new assignee")] = None,
    to_group: Annotated[
        str | None, _option("--to-group", "--to", metavar="GROUP", help="reassign: the new group")
    ] = None,
    reason: Annotated[str | None, _option(metavar="TEXT", help="reassign, escalate, cancel: why")] = None,
    body: Annotated[str | None, _option(metavar="TEXT", help="comment: the comment")] = None,
    user_groups: Annotated[
        list[str] | None,
        _option("--user-group", metavar="GROUP", help="a group of the acting user (repeatable)"),
    ] = None,
    admin: Admin = False,
    dry_run: DryRun = False,
) -> SimpleNamespace:
    """Apply one action to every pending task the filter matches, each checked and signed."""
    _exclusive(("--overdue", overdue), ("--due-before", due_before))
    if action == "reassign" and not ((to_user or to_group) and reason):
        raise UsageError("tasks bulk reassign: give --to-user USER and/or --to GROUP, and --reason TEXT")
    if action == "comment" and not body:
        raise UsageError("tasks bulk comment: give --body TEXT")
    groups, user_groups = groups or [], user_groups or []
    return _call(_bulk.bulk_tasks, locals())


@instances.command("bulk", cls=_Command)
def bulk_instances(
    action: Annotated[
        str, typer.Argument(metavar="ACTION", parser=_choice(_INSTANCE_BULK), help="cancel, pause or resume")
    ],
    by: Annotated[str, _option(metavar="USER", help="the user acting")],
    status: Annotated[
        WorkflowStatus | None,
        _option(parser=_status, metavar="STATUS", help="RUNNING, WAITING, PAUSED, ..."),
    ] = None,
    workflow: Annotated[str | None, _option(metavar="NAME", help="only this workflow")] = None,
    tenant: Tenant = None,
    created_by: Annotated[
        str | None, _option(metavar="USER", help="only instances this user started")
    ] = None,
    since: Annotated[datetime | None, _moment("created at or after")] = None,
    until: Annotated[datetime | None, _moment("created before")] = None,
    reason: Annotated[str | None, _option(metavar="TEXT", help="why (cancel, pause)")] = None,
    dry_run: DryRun = False,
) -> SimpleNamespace:
    """Cancel, pause or resume every instance the filter matches, each checked and signed."""
    return _call(_bulk.bulk_instances, locals())


@tasks.command("vote", cls=_Command)
def vote_task(
    task_id: TaskId,
    user: User,
    data: Annotated[
        Any, _option("--data", parser=json_value, metavar="JSON", help="the form, a JSON object (the vote)")
    ],
    comment: Annotated[str | None, _option(metavar="TEXT", help="a comment recorded with the vote")] = None,
    groups: Groups = None,
    tenant: Tenant = None,
) -> SimpleNamespace:
    """Vote on a quorum task (each eligible user once)."""
    groups = groups or []
    return _call(_tasks.vote_task, locals())


@delegations.command("set", cls=_Command)
def set_delegation(
    user: Annotated[str, typer.Argument(metavar="USER", help="the absent user")],
    substitute: Annotated[str, typer.Argument(metavar="SUBSTITUTE", help="who stands in")],
    starts_at: Annotated[datetime | None, _moment("from when (default now)")] = None,
    ends_at: Annotated[datetime | None, _moment("until when (default: until ended)")] = None,
    reason: Annotated[str | None, _option(metavar="TEXT", help="why (shown in the audit trail)")] = None,
    by: Annotated[str | None, _option(metavar="USER", help="who sets it (default USER)")] = None,
    admin: Admin = False,
    hand_over: Annotated[
        bool, _option("--hand-over", help="also hand the user's open tasks to the substitute now")
    ] = False,
    tenant: Tenant = None,
) -> SimpleNamespace:
    """Name a substitute for an absent user: their new tasks go to the substitute."""
    return _call(_delegations.set_delegation, locals())


@delegations.command("list", cls=_Command)
def list_delegations(
    user: Annotated[str | None, _option(metavar="USER", help="only delegations of or to this user")] = None,
    at: Annotated[datetime | None, _moment("only those in force at this time")] = None,
    tenant: Tenant = None,
) -> SimpleNamespace:
    """Delegations, newest first."""
    return _call(_delegations.list_delegations, locals())


@delegations.command("end", cls=_Command)
def end_delegation(
    delegation_id: Annotated[str, typer.Argument(metavar="DELEGATION_ID", help="the delegation's id")],
    by: Annotated[str, _option(metavar="USER", help="who ends it (its user or an administrator)")],
    admin: Admin = False,
    tenant: Tenant = None,
) -> SimpleNamespace:
    """End a delegation now (tasks already handed over stay with the substitute)."""
    return _call(_delegations.end_delegation, locals())


@db.command("upgrade", cls=_Command)
def upgrade_schema(
    revision: Annotated[str, _option(metavar="REVISION", help="target revision (default head)")] = "head",
) -> SimpleNamespace:
    """Create or migrate the mirror's tables."""
    return _call(_maintenance.upgrade_schema, locals())


@db.command("current", cls=_Command)
def current_schema() -> SimpleNamespace:
    """The schema revision of the mirror database."""
    return _call(_maintenance.current_schema, locals())


WorkflowIds = Annotated[
    list[str] | None,
    typer.Argument(metavar="[WORKFLOW_ID]...", help="workflow ids, or unique starts of them"),
]


@mirror.command("audit", cls=_Command)
def audit_mirror(workflow_ids: WorkflowIds = None) -> SimpleNamespace:
    """Compare the mirror with Temporal (exit 1 on mismatch); default: every instance."""
    workflow_ids = workflow_ids or []
    return _call(_maintenance.audit_mirror, locals())


@mirror.command("rebuild", cls=_Command)
def rebuild_mirror(
    workflow_ids: WorkflowIds = None,
    all: Annotated[bool, _option("--all", help="every instance of the --app workflows")] = False,
) -> SimpleNamespace:
    """Recompute instances' rows from Temporal's history."""
    workflow_ids = workflow_ids or []
    return _call(_maintenance.rebuild_mirror, locals())


@keys.command("generate", cls=_Command)
def generate_keys(
    key_id: Annotated[
        str, typer.Argument(metavar="KEY_ID", help="its id, e.g. 2026-01 (rotation adds new ids)")
    ],
) -> SimpleNamespace:
    """A new key pair: DWF_SIGNING_KEY (secret) and DWF_COMMAND_KEYS (for the workers)."""
    return _call(_trust.generate_keys, locals())


@app.command("deploy-check", cls=_Command)
def deploy_check(
    limit: Annotated[
        int, _option("--limit", min=1, metavar="N", help="instances to check (default 1000)")
    ] = 1000,
) -> SimpleNamespace:
    """Replay running instances against the --app code before deploying it (exit 1 if any would break)."""
    return _call(_trust.deploy_check, locals())


GraphFile = Annotated[str, typer.Argument(metavar="FILE", help="a graph definition (.json, .yaml or .yml)")]
GraphName = Annotated[str, typer.Argument(metavar="NAME", help="the definition's name")]
GraphVersion = Annotated[str, typer.Argument(metavar="VERSION", help="the version")]


@graph.command("validate", cls=_Command)
def validate_graph(
    file: GraphFile,
    diagram: Annotated[bool, _option("--diagram", help="also print its Mermaid diagram")] = False,
) -> SimpleNamespace:
    """Check a graph file against the --app steps (exit 2 naming the step or edge at fault)."""
    return _call(_graphs.validate_graph, locals())


@graph.command("register", cls=_Command)
def register_graph(
    file: GraphFile,
    inactive: Annotated[bool, _option("--inactive", help="register it inactive")] = False,
) -> SimpleNamespace:
    """Check a graph file and register it as a new version (no worker restart needed)."""
    return _call(_graphs.register_graph, locals())


@graph.command("activate", cls=_Command)
def activate_graph(name: GraphName, version: GraphVersion) -> SimpleNamespace:
    """Mark a graph version active: new instances by name may start it."""
    return _call(_graphs.activate_graph, {**locals(), "active": True})


@graph.command("deactivate", cls=_Command)
def deactivate_graph(name: GraphName, version: GraphVersion) -> SimpleNamespace:
    """Mark a graph version inactive (running instances are unaffected)."""
    return _call(_graphs.activate_graph, {**locals(), "active": False})


@graph.command("show", cls=_Command)
def show_graph(
    name: Annotated[str, typer.Argument(metavar="NAME", help="a graph or @workflow name")] = "",
    version: Annotated[str | None, _option(metavar="VERSION", help="this version (default: active)")] = None,
    instance: Annotated[
        str | None, _option(metavar="ID", help="an instance id: colour steps by their status")
    ] = None,
) -> SimpleNamespace:
    """Print the Mermaid diagram of a definition, or of an instance with its steps' status."""
    return _call(_graphs.show_graph, locals())


@event.command("send", cls=_Command)
def send_event(
    event_name: Annotated[str, typer.Argument(metavar="EVENT", help="the event's name")],
    key: Annotated[str, typer.Argument(metavar="KEY", help="its correlation key")],
    payload: Annotated[
        Any, _option("--payload", parser=json_value, metavar="JSON", help="its payload")
    ] = None,
    workflow_id: Annotated[
        str | None, _option(metavar="ID", help="the instance (default: the one waiting, from the mirror)")
    ] = None,
) -> SimpleNamespace:
    """Send an external event to the instance waiting for it."""
    return _call(_graphs.send_event, {**locals(), "event": event_name})
