"""The ``dwf`` argument parser: every command, flag and argument type.

Global options are accepted before or after the command name (``dwf --json tasks list`` and
``dwf tasks list --json``): each leaf command carries them too, with ``SUPPRESS`` defaults so a
flag given in one place is never reset by the other. A usage error is one line on stderr and
exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from sdk import WorkflowStatus
from worker._settings import OPTIONS, add_worker_arguments

from . import _instances, _maintenance, _processes, _tasks, _trust
from ._context import Command
from ._exit import ExitCode
from ._target import GLOBAL_FLAGS, global_dest

__all__ = ["CommandParser", "build_parser", "iso_datetime", "json_file", "json_value"]


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``dwf: error: ... (see 'dwf x --help')``."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"dwf: error: {message} (see '{self.prog} --help')\n")


# -- argument types: each raises ArgumentTypeError, which argparse reports as a usage error ------


def json_value(text: str) -> Any:
    """A JSON document given on the command line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def json_file(path: str) -> Any:
    """A JSON document read from a file (``-`` for stdin)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def iso_datetime(text: str) -> datetime:
    """An ISO 8601 date or time; one without a timezone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2024-05-01 or 2024-05-01T09:30:00+02:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, got {text!r}")
    return int(text)


def port_number(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {text!r}")
    return int(text)


def workflow_status(text: str) -> WorkflowStatus:
    try:
        return WorkflowStatus(text.upper())
    except ValueError:
        choices = ", ".join(s.value for s in WorkflowStatus)
        raise argparse.ArgumentTypeError(f"unknown status {text!r} (choose from {choices})") from None


# -- the parser ------------------------------------------------------------------------------


def _global_options() -> CommandParser:
    """The options every command accepts, before or after its name."""
    parent = CommandParser(add_help=False)
    group = parent.add_argument_group("global options (each also read from its DWF_* variable)")
    env = {o.field: o for o in OPTIONS}
    helps = {
        "temporal_address": ("HOST:PORT", "Temporal frontend (default localhost:7233)"),
        "temporal_namespace": ("NAME", "Temporal namespace (default default)"),
        "task_queue": ("NAME", "task queue of the worker (default durable-workflows)"),
        "database_url": ("URL", "the SQL mirror (default sqlite+aiosqlite:///dwf.db)"),
        "app": ("MODULE[,MODULE]", "module(s) that define your workflows, imported first"),
    }
    for field, flag in GLOBAL_FLAGS.items():
        metavar, text = helps[field]
        group.add_argument(
            flag,
            dest=global_dest(field),
            metavar=metavar,
            default=argparse.SUPPRESS,
            help=f"{text} [{env[field].env}]",
        )
    group.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )
    group.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="print the traceback of an error"
    )
    return parent


def _identity(parser: argparse.ArgumentParser, *, user_required: bool = True) -> None:
    group = parser.add_argument_group("who acts")
    group.add_argument("--user", required=user_required, help="the user acting")
    _groups(group, "a group of the user (repeatable)")
    group.add_argument("--admin", action="store_true", help="act as an administrator")
    _tenant(group)


def _groups(parser: argparse.ArgumentParser | argparse._ArgumentGroup, text: str) -> None:
    parser.add_argument("--group", dest="groups", action="append", default=[], metavar="GROUP", help=text)


def _tenant(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--tenant", help="act within this tenant only")


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=positive_int, default=50, help="rows per page (default 50)")
    parser.add_argument("--offset", type=non_negative_int, default=0, help="rows to skip (default 0)")


class _Commands:
    """Adds leaf commands to a subparsers action, each with the global options and a handler."""

    def __init__(self, parent: argparse.ArgumentParser, subparsers: Any) -> None:
        self.parent = parent
        self.subparsers = subparsers

    def add(self, name: str, handler: Command, text: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self.subparsers.add_parser(
            name, help=text, description=text, parents=[self.parent], **kwargs
        )
        parser.set_defaults(handler=handler)
        return parser


def _group_parser(subparsers: Any, name: str, text: str) -> Any:
    parser = subparsers.add_parser(name, help=text, description=text)
    return parser.add_subparsers(dest="action", metavar="ACTION", required=True)


def build_parser() -> CommandParser:
    """The whole ``dwf`` parser."""
    common = _global_options()
    parser = CommandParser(
        prog="dwf",
        parents=[common],
        description="Operate durable-workflows: run a worker or a dev setup, start workflows, "
        "list instances, act on human tasks, migrate and audit the SQL mirror.",
        epilog="Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 permission denied, "
        "5 invalid data, 6 conflict, 7 cannot connect.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    top = _Commands(common, commands)

    dev = top.add("dev", _processes.dev, "run a Temporal dev server and a worker (Ctrl-C stops both)")
    dev.add_argument("--port", type=port_number, help="Temporal frontend port (default 7233)")
    dev.add_argument("--ui", action="store_true", help="also serve the Temporal Web UI")
    dev.add_argument("--ui-port", type=port_number, help="Web UI port (default: --port + 1000)")
    dev.add_argument(
        "--db-file",
        default=_processes.DEFAULT_DEV_DB_FILE,
        help=f"Temporal's state, a SQLite file (default {_processes.DEFAULT_DEV_DB_FILE})",
    )
    dev.add_argument(
        "--http-port",
        type=non_negative_int,
        default=0,
        help="worker health and metrics port (default 0: off)",
    )

    worker = commands.add_parser(
        "worker",
        help="run the long-lived worker (flags over DWF_* variables)",
        description="Run the long-lived worker until SIGTERM or SIGINT (same as python -m worker).",
    )
    worker.set_defaults(handler=_processes.worker)
    add_worker_arguments(worker)
    worker.add_argument(
        "--address",
        dest=global_dest("temporal_address"),
        default=argparse.SUPPRESS,
        help="= --temporal-address",
    )
    worker.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="print tracebacks")

    start = top.add("start", _instances.start_workflow, "start a workflow instance")
    start.add_argument("workflow", metavar="WORKFLOW", help="workflow name (its active version)")
    start.add_argument("--version", help="start this version instead")
    given = start.add_mutually_exclusive_group()
    given.add_argument(
        "--input", type=json_value, default=_instances.NO_INPUT, metavar="JSON", help="the workflow's input"
    )
    given.add_argument(
        "--input-file",
        dest="input",
        type=json_file,
        metavar="FILE",
        help="read the input from FILE (- for stdin)",
    )
    start.add_argument("--id", help="workflow id (default WORKFLOW-<uuid>)")
    _tenant(start)
    start.add_argument("--created-by", metavar="USER", help="the user starting it")
    start.add_argument("--wait", action="store_true", help="wait for the result (exit 1 if it fails)")

    instances = _Commands(common, _group_parser(commands, "instances", "list and show workflow instances"))
    listing = instances.add("list", _instances.list_instances, "instances in the mirror, newest first")
    listing.add_argument("--status", type=workflow_status, help="RUNNING, WAITING, COMPLETED, FAILED, ...")
    listing.add_argument("--workflow", metavar="NAME", help="only this workflow")
    _tenant(listing)
    listing.add_argument("--created-by", metavar="USER", help="only instances this user started")
    listing.add_argument("--since", type=iso_datetime, metavar="ISO", help="created at or after")
    listing.add_argument("--until", type=iso_datetime, metavar="ISO", help="created before")
    _paging(listing)
    show = instances.add("show", _instances.show_instance, "one instance with its steps and tasks")
    show.add_argument("id", metavar="WORKFLOW_ID_OR_INSTANCE_ID")
    _tenant(show)

    tasks = _Commands(common, _group_parser(commands, "tasks", "list, show and act on human tasks"))
    listing = tasks.add("list", _tasks.list_tasks, "pending tasks, soonest due first")
    who = listing.add_mutually_exclusive_group()
    who.add_argument("--user", help="this user's inbox: assigned to them or to one of their --group")
    who.add_argument("--assignee", metavar="USER", help="only tasks assigned to this user")
    _groups(listing, "with --user: a group of theirs; alone: tasks of this group (repeatable)")
    _tenant(listing)
    due = listing.add_mutually_exclusive_group()
    due.add_argument("--overdue", action="store_true", help="only tasks past their due time")
    due.add_argument("--due-before", type=iso_datetime, metavar="ISO", help="only tasks due before this")
    _paging(listing)
    show = tasks.add("show", _tasks.show_task, "one task with its comments and assignment history")
    show.add_argument("task_id", metavar="TASK_ID")
    _tenant(show)
    for name, handler, text in (
        ("claim", _tasks.claim_task, "claim a group task"),
        ("release", _tasks.release_task, "release a claimed task to its group"),
    ):
        action = tasks.add(name, handler, text)
        action.add_argument("task_id", metavar="TASK_ID")
        _identity(action)
    complete = tasks.add("complete", _tasks.complete_task, "complete a task with its form data")
    complete.add_argument("task_id", metavar="TASK_ID")
    _identity(complete)
    complete.add_argument(
        "--data", type=json_value, required=True, metavar="JSON", help="the form, a JSON object"
    )
    complete.add_argument("--comment", help="a comment recorded with the completion")
    reassign = tasks.add("reassign", _tasks.reassign_task, "reassign a task to a user and/or a group")
    reassign.add_argument("task_id", metavar="TASK_ID")
    _identity(reassign)
    reassign.add_argument("--to-user", metavar="USER", help="the new assignee")
    reassign.add_argument("--to-group", metavar="GROUP", help="the new group")
    reassign.add_argument("--reason", required=True, help="why (recorded in the assignment history)")
    comment = tasks.add("comment", _tasks.comment_task, "comment on a task")
    comment.add_argument("task_id", metavar="TASK_ID")
    _identity(comment)
    comment.add_argument("--body", required=True, metavar="TEXT", help="the comment")

    db = _Commands(common, _group_parser(commands, "db", "the mirror's schema"))
    upgrade = db.add("upgrade", _maintenance.upgrade_schema, "create or migrate the mirror's tables")
    upgrade.add_argument("--revision", default="head", help="target revision (default head)")
    db.add("current", _maintenance.current_schema, "the schema revision of the mirror database")

    mirror = _Commands(
        common, _group_parser(commands, "mirror", "check and repair the mirror against Temporal")
    )
    audit = mirror.add(
        "audit", _maintenance.audit_mirror, "compare the mirror with Temporal (exit 1 on mismatch)"
    )
    audit.add_argument("workflow_ids", nargs="*", metavar="WORKFLOW_ID", help="default: every instance")
    rebuild = mirror.add("rebuild", _maintenance.rebuild_mirror, "recompute instances' rows from Temporal")
    rebuild.add_argument("workflow_ids", nargs="*", metavar="WORKFLOW_ID")
    rebuild.add_argument("--all", action="store_true", help="every instance of the --app workflows")

    keys = _Commands(common, _group_parser(commands, "keys", "signing keys for commands acting as a user"))
    generate = keys.add(
        "generate", _trust.generate_keys, "a new key pair: DWF_SIGNING_KEY and DWF_COMMAND_KEYS"
    )
    generate.add_argument("key_id", metavar="KEY_ID", help="its id, e.g. 2026-01 (rotation adds new ids)")
    check = top.add(
        "deploy-check",
        _trust.deploy_check,
        "replay running instances against the --app code before deploying it (exit 1 if any would break)",
    )
    check.add_argument("--limit", type=positive_int, default=1000, help="instances to check (default 1000)")

    graph = top.add("graph", _maintenance.graph, "graph definitions (not available in this version)")
    graph.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser
