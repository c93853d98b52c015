"""``dwf`` without a server: the parser, the global options over ``DWF_*`` variables, the exit
code of each error, the output helpers, and every error found before anything is contacted.

Commands that stop before connecting run through ``sdk.cli.main`` in a thread (it calls
``asyncio.run``, which must not touch the test session's event loop).
"""

from __future__ import annotations

import ast
import concurrent.futures
import io
import socket
import sys
import tomllib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer
from sqlalchemy.exc import OperationalError
from temporalio.service import RPCError, RPCStatusCode

import sdk._cli
from sdk import (
    FormValidationError,
    InstanceNotFoundError,
    PermissionDeniedError,
    TaskClaimConflictError,
    TaskNotFoundError,
    TaskNotPendingError,
    TaskRejectedError,
    WorkflowNotFoundError,
    WorkflowStatus,
)
from sdk.cli import ExitCode, main
from sdk.cli import parse as parse_argv
from sdk.cli._app import iso_datetime
from sdk.cli._exit import CannotConnectError, CommandError, UsageError, classify, temporal_connect_reason
from sdk.cli._instances import NO_INPUT, workflow_arguments
from sdk.cli._output import Column, Output, Progress, attr, format_value, render_table
from sdk.cli._processes import check_port_free, worker_settings
from sdk.cli._target import Target
from worker import ConfigurationError

REPO = Path(__file__).resolve().parents[2]
APP = "examples.expense_approval"


def parse(*argv: str) -> Any:
    return parse_argv(argv)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in a thread; its exit code, stdout and stderr."""
    capsys.readouterr()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            code = pool.submit(main, list(argv)).result(timeout=60)
        except SystemExit as exc:
            code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dwf: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], err
    return lines[0]


# -- the entry point -----------------------------------------------------------------------------


def test_console_script_points_at_main() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["dwf"] == "sdk._cli:main"
    assert sdk._cli.main is main


# -- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "handler", "expected"),
    [
        (
            ["dev"],
            "dev",
            {"port": None, "ui": False, "db_file": "dwf-temporal.db", "http_port": 0, "inbox_port": 8080},
        ),
        (
            ["dev", "--port", "7000", "--ui", "--db-file", "t.db", "--inbox-port", "0"],
            "dev",
            {"port": 7000, "ui": True, "db_file": "t.db", "inbox_port": 0, "dev_users": None},
        ),
        (
            ["worker", "--app", APP, "--tls"],
            "worker",
            {
                "flags": {
                    "address": None,
                    "namespace": None,
                    "task_queue": None,
                    "database_url": None,
                    "app": APP,
                },
                "worker_args": ["--tls"],
            },
        ),
        (
            ["start", "expense_approval", "--input", '{"amount": 1}', "--id", "x", "--tenant", "t", "--wait"],
            "start_workflow",
            {"workflow": "expense_approval", "input": {"amount": 1}, "id": "x", "tenant": "t", "wait": True},
        ),
        (["start", "wf"], "start_workflow", {"input": NO_INPUT, "version": None, "created_by": None}),
        (["start", "wf", "--input", "null"], "start_workflow", {"input": None}),
        (
            [
                "instances",
                "list",
                "--status",
                "waiting",
                "--since",
                "2024-05-01",
                "--limit",
                "5",
                "--offset",
                "10",
            ],
            "list_instances",
            {
                "status": WorkflowStatus.WAITING,
                "since": datetime(2024, 5, 1, tzinfo=UTC),
                "limit": 5,
                "offset": 10,
            },
        ),
        (["instances", "show", "wf-1"], "show_instance", {"id": "wf-1", "tenant": None}),
        (
            ["tasks", "list", "--user", "bob", "--group", "a", "--group", "b", "--overdue"],
            "list_tasks",
            {
                "user": "bob",
                "groups": ["a", "b"],
                "overdue": True,
                "assignee": None,
                "limit": 50,
                "offset": 0,
            },
        ),
        (
            ["tasks", "list", "--assignee", "ann", "--due-before", "2030-01-01T00:00:00+02:00"],
            "list_tasks",
            {
                "assignee": "ann",
                "due_before": datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=2))),
            },
        ),
        (["tasks", "show", "T"], "show_task", {"task_id": "T"}),
        (
            ["tasks", "claim", "T", "--user", "u", "--group", "g"],
            "claim_task",
            {"user": "u", "groups": ["g"]},
        ),
        (["tasks", "release", "T", "--user", "u", "--admin"], "release_task", {"admin": True, "groups": []}),
        (
            ["tasks", "complete", "T", "--user", "u", "--data", '{"approved": true}', "--comment", "ok"],
            "complete_task",
            {"data": {"approved": True}, "comment": "ok", "tenant": None},
        ),
        (
            ["tasks", "reassign", "T", "--user", "u", "--to-group", "g", "--reason", "r", "--tenant", "acme"],
            "reassign_task",
            {"to_group": "g", "to_user": None, "reason": "r", "tenant": "acme"},
        ),
        (["tasks", "comment", "T", "--user", "u", "--body", "hi"], "comment_task", {"body": "hi"}),
        (["db", "upgrade"], "upgrade_schema", {"revision": "head"}),
        (["db", "upgrade", "--revision", "0001"], "upgrade_schema", {"revision": "0001"}),
        (["db", "current"], "current_schema", {}),
        (["mirror", "audit"], "audit_mirror", {"workflow_ids": []}),
        (["mirror", "audit", "a", "b"], "audit_mirror", {"workflow_ids": ["a", "b"]}),
        (["mirror", "rebuild", "--all"], "rebuild_mirror", {"all": True, "workflow_ids": []}),
        (
            ["serve", "--port", "9000", "--dev-users", "u.json", "--single-tenant"],
            "serve",
            {
                "port": 9000,
                "host": "127.0.0.1",
                "dev_users": "u.json",
                "single_tenant": True,
                "jwks_file": None,
            },
        ),
        (["graph", "validate", "g.yaml"], "validate_graph", {"file": "g.yaml", "diagram": False}),
        (
            ["graph", "register", "g.json", "--inactive"],
            "register_graph",
            {"file": "g.json", "inactive": True},
        ),
        (["graph", "activate", "claim", "2.0.0"], "activate_graph", {"name": "claim", "active": True}),
        (["graph", "show", "claim", "--instance", "abc"], "show_graph", {"name": "claim", "instance": "abc"}),
        (
            ["event", "send", "report", "C-1", "--payload", '{"a": 1}'],
            "send_event",
            {"key": "C-1", "payload": {"a": 1}},
        ),
    ],
)
def test_every_command_parses(argv: list[str], handler: str, expected: dict[str, Any]) -> None:
    args = parse(*argv)
    assert args.handler.__name__ == handler
    for name, value in expected.items():
        assert getattr(args, name) == value, name


def test_global_options_go_before_or_after_the_command() -> None:
    before = parse("--json", "--address", "a:1", "--namespace", "ns", "tasks", "list")
    after = parse("tasks", "list", "--namespace", "ns", "--address", "a:1", "--json")
    for args in (before, after):
        target = Target.resolve(args.flags, environ={})
        assert (target.address, target.namespace, args.json) == ("a:1", "ns", True)
    # Given twice, the one after the command name wins (it is parsed last).
    both = parse("--address", "a:1", "tasks", "list", "--address", "b:2")
    assert Target.resolve(both.flags, environ={}).address == "b:2"


def test_defaults_are_the_workers() -> None:
    target = Target.resolve(parse("tasks", "list").flags, environ={})
    assert target.address == "localhost:7233"
    assert target.namespace == "default"
    assert target.task_queue == "durable-workflows"
    assert target.database_url == "sqlite+aiosqlite:///dwf.db"
    assert target.app == ()
    assert target.client_tls() is False


def test_flags_override_variables_which_override_defaults() -> None:
    environ = {
        "DWF_TEMPORAL_ADDRESS": "env:7233",
        "DWF_TEMPORAL_NAMESPACE": "env-ns",
        "DWF_TASK_QUEUE": "env-q",
        "DWF_DATABASE_URL": "postgresql+asyncpg://u:secret@db/dwf",
        "DWF_APP": "a.b, c",
        "DWF_TEMPORAL_API_KEY": "key",
    }
    from_env = Target.resolve(parse("tasks", "list").flags, environ)
    assert (from_env.address, from_env.namespace, from_env.task_queue) == ("env:7233", "env-ns", "env-q")
    assert from_env.app == ("a.b", "c") and from_env.client_tls() is True  # an API key implies TLS
    assert "secret" not in from_env.database_shown
    flagged = Target.resolve(
        parse("--address", "flag:1", "--app", "x", "tasks", "list", "--task-queue", "q").flags, environ
    )
    assert (flagged.address, flagged.app, flagged.task_queue, flagged.namespace) == (
        "flag:1",
        ("x",),
        "q",
        "env-ns",
    )


def test_a_dotenv_file_counts_under_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DWF_TASK_QUEUE", "DWF_TEMPORAL_NAMESPACE", "DWF_TEMPORAL_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("DWF_TASK_QUEUE=from-file\nDWF_TEMPORAL_NAMESPACE=file-ns\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DWF_TEMPORAL_NAMESPACE", "env-ns")
    target = Target.resolve(parse("--address", "flag:1", "tasks", "list").flags)
    assert (target.task_queue, target.namespace, target.address) == ("from-file", "env-ns", "flag:1")


@pytest.mark.parametrize(
    ("argv", "environ", "fragments"),
    [
        (["--address", "nowhere"], {}, ("--address", "host:port")),
        ([], {"DWF_TEMPORAL_ADDRESS": "nowhere"}, ("DWF_TEMPORAL_ADDRESS",)),
        (["--database-url", "sqlite:///x.db"], {}, ("--database-url", "sqlite+aiosqlite")),
        ([], {"DWF_DATABASE_URL": "mysql://x/y"}, ("DWF_DATABASE_URL", "mysql")),
        (["--app", "not a module"], {}, ("--app",)),
        # A URL without the async driver gets the URL to write instead (a usage error, exit 2).
        (["--database-url", "postgres://u@db/dwf"], {}, ("--database-url", "postgresql+asyncpg://")),
        ([], {"DWF_DATABASE_URL": "postgresql://u@db/dwf"}, ("DWF_DATABASE_URL", "postgresql+asyncpg://")),
    ],
)
def test_bad_global_values_name_their_flag_or_variable(
    argv: list[str], environ: dict[str, str], fragments: tuple[str, ...]
) -> None:
    with pytest.raises(UsageError) as raised:
        Target.resolve(parse(*argv, "tasks", "list").flags, environ)
    for fragment in fragments:
        assert fragment in str(raised.value)


def test_worker_takes_its_own_flags_then_global_ones_then_variables() -> None:
    args = parse("--address", "g:1", "--database-url", "sqlite+aiosqlite:///g.db", "worker", "--app", APP)
    settings = worker_settings(args)
    assert (settings.temporal_address, settings.database_url, settings.app) == (
        "g:1",
        "sqlite+aiosqlite:///g.db",
        (APP,),
    )
    own = worker_settings(parse("--address", "g:1", "worker", "--temporal-address", "w:2", "--app", APP))
    assert own.temporal_address == "w:2"
    assert worker_settings(parse("worker", "--address", "w:3", "--app", APP)).temporal_address == "w:3"


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["frobnicate"], ("No such command 'frobnicate'", "(see 'dwf --help')")),
        ([], ("Missing command", "(see 'dwf --help')")),
        (["tasks"], ("Missing command", "(see 'dwf tasks --help')")),
        (
            ["tasks", "complete", "T", "--user", "u", "--data", "{'a': 1}"],
            ("--data", "not valid JSON", "line 1"),
        ),
        (["tasks", "complete", "T", "--data", "{}"], ("--user",)),
        (["tasks", "complete", "T", "--user", "u"], ("--data",)),
        (["tasks", "reassign", "T", "--user", "u", "--to-user", "v"], ("--reason",)),
        (["tasks", "list", "--user", "u", "--assignee", "v"], ("--assignee", "not allowed with", "--user")),
        (["tasks", "list", "--overdue", "--due-before", "2024-01-01"], ("not allowed with",)),
        (["tasks", "list", "--limit", "0"], ("--limit", "greater than or equal to 1")),
        (["tasks", "list", "--offset", "-1"], ("--offset",)),
        (["instances", "list", "--since", "yesterday"], ("--since", "ISO 8601")),
        (["instances", "list", "--status", "sleepy"], ("--status", "sleepy", "WAITING")),
        (
            ["start", "wf", "--input", "{}", "--input-file", str(REPO / "tests/data/compose-spec.json")],
            ("not allowed",),
        ),
        (["start", "wf", "--input-file", "/no/such/file.json"], ("--input-file", "cannot read")),
        (["dev", "--port", "99999"], ("--port",)),
        (["tasks", "show", "T", "--bogus"], ("No such option: --bogus",)),
        (["worker", "--app", APP, "--bogus"], ("no such option: --bogus",)),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragments: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == ExitCode.USAGE and out == ""
    one_error_line(err, *fragments)


def test_input_file_is_read_as_json(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text('[1, {"a": 2}]')
    assert parse("start", "wf", "--input-file", str(tmp_path / "in.json")).input == [1, {"a": 2}]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(typer.BadParameter):
        parse("start", "wf", "--input-file", str(tmp_path / "bad.json"))


def test_times_without_a_zone_are_utc() -> None:
    assert iso_datetime("2024-05-01T10:00:00") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert iso_datetime("2024-05-01T10:00:00Z") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert iso_datetime("2024-05-01T10:00:00-05:00").utcoffset() == timedelta(hours=-5)
    with pytest.raises(typer.BadParameter):
        iso_datetime("May 1st")


# -- errors found before anything is contacted ------------------------------------------------------


def test_commands_that_fail_before_connecting(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = f"sqlite+aiosqlite:///{tmp_path / 'absent.db'}"
    cases: list[tuple[tuple[str, ...], int, tuple[str, ...]]] = [
        (
            ("--database-url", missing, "tasks", "list"),
            ExitCode.CANNOT_CONNECT,
            ("no mirror database", "db upgrade"),
        ),
        (
            ("--database-url", missing, "tasks", "claim", "T", "--user", "u"),
            ExitCode.CANNOT_CONNECT,
            ("absent.db",),
        ),
        (("--database-url", missing, "instances", "list"), ExitCode.CANNOT_CONNECT, ("no mirror database",)),
        (("--database-url", missing, "start", "wf"), ExitCode.NOT_FOUND, ("'wf'", "--app")),
        (
            ("--database-url", missing, "mirror", "audit", "--app", APP),
            ExitCode.CANNOT_CONNECT,
            ("absent.db",),
        ),
        (("mirror", "audit"), ExitCode.USAGE, ("--app",)),
        (("mirror", "rebuild", "--app", APP), ExitCode.USAGE, ("--all",)),
        (("mirror", "rebuild", "wf-1", "--all", "--app", APP), ExitCode.USAGE, ("--all",)),
        (
            ("tasks", "reassign", "T", "--user", "u", "--reason", "r"),
            ExitCode.USAGE,
            ("--to-user", "--to-group"),
        ),
        (("start", "wf", "--app", "no_such_module_for_dwf"), ExitCode.USAGE, ("no_such_module_for_dwf",)),
        (("start", "expense_approval", "--app", APP), ExitCode.USAGE, ("takes 1 argument(s)", "--input")),
        (
            ("--database-url", "sqlite+aiosqlite:///no/such/dir/x.db", "db", "upgrade"),
            ExitCode.CANNOT_CONNECT,
            (),
        ),
        (("--address", "h:1", "worker"), ExitCode.USAGE, ("DWF_APP is not set",)),
        (("serve",), ExitCode.USAGE, ("DWF_INBOX_JWT_SECRET", "--jwks-file", "--dev-users")),
        (
            ("serve", "--dev-users", str(tmp_path / "absent.json")),
            ExitCode.USAGE,
            ("--dev-users", "cannot read"),
        ),
        (("serve", "--jwks-file", str(tmp_path / "absent.json")), ExitCode.USAGE, ("token settings",)),
        (("worker", "--app", APP, "--max-concurrent-activities", "lots"), ExitCode.USAGE, ("lots",)),
    ]
    for argv, expected, fragments in cases:
        code, _, err = run(capsys, *argv)
        assert code == expected, (argv, code, err)
        one_error_line(err, *fragments)


def test_db_upgrade_and_current_on_a_new_sqlite_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    code, out, _ = run(capsys, "--database-url", url, "db", "current")
    assert code == 0 and out.startswith("none: no mirror schema")
    assert not (tmp_path / "new.db").exists()  # looking does not create the file
    code, out, _ = run(capsys, "--database-url", url, "db", "upgrade")
    assert code == 0 and "upgraded from nothing to" in out
    code, out, _ = run(capsys, "--database-url", url, "db", "current")
    assert code == 0 and out.strip().endswith("(head)")
    code, _, err = run(capsys, "--database-url", url, "db", "upgrade", "--revision", "nope")
    assert code == ExitCode.USAGE
    one_error_line(err, "nope")
    code, out, err = run(capsys, "--database-url", url, "--json", "tasks", "list")
    assert (code, out.strip(), err) == (0, "[]", "")
    code, out, _ = run(capsys, "--database-url", url, "tasks", "list")
    assert out.strip() == "no pending tasks"


class _ClosedPipe(io.StringIO):
    """A stdout whose reader went away (``dwf ... | head -0``)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_that_goes_away_ends_the_command_quietly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code, _, err = run(capsys, "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", "db", "current")
    assert (code, err) == (ExitCode.BROKEN_PIPE, "")


# -- workflow input ------------------------------------------------------------------------------


def test_workflow_arguments_fit_the_definition(module_from_source: Callable[[str], ModuleType]) -> None:
    module = module_from_source(
        """
        from pydantic import BaseModel
        from sdk import workflow

        class Item(BaseModel):
            sku: str

        @workflow(name="unit.cli_two")
        async def two(item: Item, count: int) -> None: ...

        @workflow(name="unit.cli_none")
        async def none() -> None: ...
        """
    )
    from examples.expense_approval import expense_approval

    assert workflow_arguments(expense_approval, {"a": 1}) == [{"a": 1}]
    assert workflow_arguments(expense_approval, [1, 2]) == [[1, 2]]  # one argument: the list itself
    assert workflow_arguments(module.two, [{"sku": "x"}, 3]) == [{"sku": "x"}, 3]
    assert workflow_arguments(module.none, NO_INPUT) == []
    assert workflow_arguments(None, {"a": 1}) == [{"a": 1}]
    assert workflow_arguments(None, NO_INPUT) == []
    for definition, value in (
        (module.two, {"sku": "x"}),
        (module.none, {"a": 1}),
        (expense_approval, NO_INPUT),
    ):
        with pytest.raises(UsageError, match="takes"):
            workflow_arguments(definition, value)


# -- exit codes ----------------------------------------------------------------------------------


def _rpc(status: RPCStatusCode) -> RPCError:
    return RPCError("boom", status, b"")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (TaskNotFoundError("task x not found"), ExitCode.NOT_FOUND),
        (InstanceNotFoundError("no instance"), ExitCode.NOT_FOUND),
        (WorkflowNotFoundError("no workflow"), ExitCode.NOT_FOUND),
        (PermissionDeniedError("no"), ExitCode.PERMISSION_DENIED),
        (TaskClaimConflictError("claimed"), ExitCode.CONFLICT),
        (TaskNotPendingError("t", "completed"), ExitCode.CONFLICT),
        (TaskRejectedError("refused"), ExitCode.FAILED),
        (ConfigurationError("--address: bad"), ExitCode.USAGE),
        (ValueError("a comment needs a non-empty body"), ExitCode.USAGE),
        (CannotConnectError("down"), ExitCode.CANNOT_CONNECT),
        (ConnectionRefusedError(111, "Connect call failed"), ExitCode.CANNOT_CONNECT),
        (_rpc(RPCStatusCode.UNAVAILABLE), ExitCode.CANNOT_CONNECT),
        (_rpc(RPCStatusCode.NOT_FOUND), ExitCode.NOT_FOUND),
        (_rpc(RPCStatusCode.PERMISSION_DENIED), ExitCode.PERMISSION_DENIED),
        (_rpc(RPCStatusCode.INTERNAL), ExitCode.FAILED),
        (OperationalError("SELECT", {}, Exception("unable to open database file")), ExitCode.CANNOT_CONNECT),
        (OperationalError("SELECT", {}, Exception("no such table: workflow_human_tasks")), ExitCode.FAILED),
        (RuntimeError("unexpected"), ExitCode.FAILED),
    ],
)
def test_each_error_has_its_exit_code(exc: BaseException, code: ExitCode) -> None:
    found, message, _ = classify(exc)
    assert found == code
    assert "\n" not in message and message


def test_missing_tables_point_at_db_upgrade() -> None:
    _, message, _ = classify(OperationalError("SELECT", {}, Exception("no such table: workflow_instances")))
    assert "dwf db upgrade" in message


def test_invalid_data_lists_each_field() -> None:
    errors = [
        {"field": "approved", "message": "Input should be a valid boolean", "type": "bool_parsing"},
        {"field": "amount", "message": "Field\nrequired", "type": "missing"},
    ]
    code, message, details = classify(FormValidationError("Approval", errors))
    assert code == ExitCode.INVALID_DATA and message == "invalid data for Approval:"
    assert details == ["approved: Input should be a valid boolean", "amount: Field required"]


def test_connection_errors_are_reduced_to_their_reason() -> None:
    refused = RuntimeError(
        "Failed client connect: Server connection error: tonic::transport::Error(Transport, ConnectError("
        'ConnectError("tcp connect error", 127.0.0.1:1, Os { code: 111, kind: ConnectionRefused, '
        'message: "Connection refused" })))'
    )
    assert temporal_connect_reason(refused) == "Connection refused"
    dns = RuntimeError(
        'Failed client connect: ... ConnectError("dns error", Custom { error: "failed to lookup" })'
    )
    assert temporal_connect_reason(dns) == "failed to lookup"


# -- output --------------------------------------------------------------------------------------


def test_tables_are_aligned_without_trailing_spaces() -> None:
    rows = [{"id": "a", "title": "short", "due": None}, {"id": "bbbb", "title": "x" * 50, "due": None}]
    columns = [Column("ID", attr("id")), Column("TITLE", attr("title"), 10), Column("DUE", attr("due"))]
    assert render_table(rows, columns).splitlines() == [
        "ID    TITLE       DUE",
        "a     short       -",
        "bbbb  xxxxxxxxx…  -",
    ]


def test_the_next_page_note_says_when_the_total_is_a_lower_bound() -> None:
    from sdk.mirror import Page

    columns = [Column("ID", attr("id"))]
    for exact, said in ((True, "1-2 of 5 tasks"), (False, "1-2 of at least 5 tasks")):
        out = Output(stdout=io.StringIO(), stderr=io.StringIO())
        out.page(
            Page(items=[{"id": "a"}, {"id": "b"}], total=5, total_exact=exact, limit=2, offset=0),
            columns,
            noun="tasks",
        )
        assert out.stderr.getvalue() == f"{said}; next page: --offset 2\n"


def test_values_are_formatted_for_people() -> None:
    assert (
        format_value(datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))) == "2024-05-01 10:00:00Z"
    )
    assert format_value(None) == format_value("") == "-"
    assert format_value(True) == "yes"
    assert format_value(WorkflowStatus.WAITING) == "WAITING"
    assert format_value({"b": 1, "a": [1]}) == '{"a":[1],"b":1}'
    assert format_value("two\nlines") == "two lines"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_a_bar_on_a_terminal_and_prints_lines_otherwise() -> None:
    terminal = _Terminal()
    progress = Progress("rebuilt", 2, terminal)
    progress(1, "wf-long-name")
    progress(2, "wf-2")
    progress.close()
    drawn = terminal.getvalue()
    assert "rebuilt" in drawn and "2/2" in drawn and "wf-2" in drawn  # the bar's last state
    assert "rebuilt 1/2: wf-long-name\n" not in drawn  # redrawn in place, not a line per step
    plain = io.StringIO()
    progress = Progress("audited", None, plain)
    progress(1, "a")
    progress(2, "b")
    progress.close()
    assert plain.getvalue() == "audited 1: a\naudited 2: b\n"


def test_ids_are_never_cut_even_on_a_narrow_terminal() -> None:
    workflow_id = "expense_approval-" + "7" * 36
    rows = [{"id": workflow_id, "title": "Approve a rather long expense claim for the offsite " * 2}]
    columns = [Column("WORKFLOW ID", attr("id"), key=True), Column("TITLE", attr("title"), 20)]
    for width in (None, 40, 120):
        text = render_table(rows, columns, width=width)
        assert workflow_id in text.splitlines()[1], (width, text)
    piped = render_table(rows, columns).splitlines()
    assert len(piped) == 2 and piped[1].endswith("…")  # off a terminal: one line, free text cut
    wrapped = render_table(rows, columns, width=120).splitlines()
    assert len(wrapped) > 2 and "…" not in "".join(wrapped)  # on a terminal: free text wraps


def test_a_port_in_time_wait_is_free_and_a_listened_one_is_not() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    with pytest.raises(CommandError, match=f"port {port} is in use"):
        check_port_free(port, "--port")
    accepted.close()  # the server side closes first: its end stays in TIME_WAIT
    client.close()
    listener.close()
    check_port_free(port, "--port")  # a dev server restarted within a minute can bind it again


# -- ids given by a unique prefix --------------------------------------------------------------------


async def test_ids_are_found_by_a_unique_prefix(tmp_path: Path) -> None:
    from sdk import StepStatus, StepType
    from sdk.cli._prefix import instance_key, task_id, workflow_ids
    from sdk.mirror import (
        HumanTaskModel,
        StepExecutionModel,
        WorkflowDefinitionModel,
        WorkflowInstanceModel,
        create_engine,
        session_factory,
        upgrade,
    )

    url = f"sqlite+aiosqlite:///{tmp_path / 'prefix.db'}"
    await upgrade(url)
    now = datetime(2024, 5, 1, tzinfo=UTC)
    definition = WorkflowDefinitionModel(id=uuid.uuid4(), name="wf", version="1")
    instances = {
        workflow_id: WorkflowInstanceModel(
            id=uuid.UUID(instance_id),
            definition_id=definition.id,
            workflow_name="wf",
            workflow_version="1",
            status=WorkflowStatus.WAITING,
            started_at=now,
            workflow_id=workflow_id,
            run_id=workflow_id,
            tenant_id=tenant,
        )
        for workflow_id, instance_id, tenant in (
            ("order-17", "aaaa0000-0000-4000-8000-000000000001", "acme"),
            ("order-170", "abcd0000-0000-4000-8000-000000000002", "acme"),
            ("Order-2", "bbbb0000-0000-4000-8000-000000000003", "globex"),
        )
    }
    step = StepExecutionModel(
        id=uuid.uuid4(),
        instance_id=instances["order-17"].id,
        step_name="approve",
        step_type=StepType.HUMAN,
        status=StepStatus.WAITING,
        started_at=now,
    )
    tasks = [
        HumanTaskModel(
            id=uuid.UUID(text),
            instance_id=step.instance_id,
            step_execution_id=step.id,
            step_name="approve",
            title="t",
            tenant_id=tenant,
            workflow_id="order-17",
        )
        for text, tenant in (
            ("3f2a1b00-0000-4000-8000-000000000001", "acme"),
            ("3f2a1b99-0000-4000-8000-000000000002", "acme"),
            ("3f2b0000-0000-4000-8000-000000000003", "globex"),
        )
    ]
    engine = create_engine(url)
    async with session_factory(engine)() as session, session.begin():
        for rows in ([definition], instances.values(), [step], tasks):
            session.add_all(rows)
            await session.flush()
    await engine.dispose()
    target = Target(database_url=url)

    whole = "3f2a1b00-0000-4000-8000-000000000001"
    assert await task_id(target, whole, None) == whole  # a whole id is taken as it is
    assert await task_id(target, "3f2a1b0", None) == whole
    assert await task_id(target, "3F2A1B99-0", None) == "3f2a1b99-0000-4000-8000-000000000002"
    assert await task_id(target, "3f2", "globex") == "3f2b0000-0000-4000-8000-000000000003"
    with pytest.raises(UsageError, match="ambiguous") as raised:
        await task_id(target, "3f2a", None)
    assert "3f2a1b00-" in str(raised.value) and "3f2a1b99-" in str(raised.value)
    with pytest.raises(TaskNotFoundError):
        await task_id(target, "3f2c", None)
    with pytest.raises(TaskNotFoundError):
        await task_id(target, "not-hex", None)

    assert await instance_key(target, "order-17", None) == "order-17"  # exact beats longer ids
    assert await instance_key(target, "order-170", None) == "order-170"
    assert await instance_key(target, "Ord", None) == "Order-2"  # case counts, on SQLite too
    assert await instance_key(target, "abcd", None) == "abcd0000-0000-4000-8000-000000000002"
    assert await instance_key(target, "elsewhere", None) == "elsewhere"  # left to Temporal
    with pytest.raises(UsageError, match="ambiguous") as raised:
        await instance_key(target, "a", "acme")  # a workflow id and an instance id start so
    assert "aaaa0000-" in str(raised.value) and "abcd0000-" in str(raised.value)
    assert await workflow_ids(target, ["order-17", "Order", "gone-1"]) == ["order-17", "Order-2", "gone-1"]
    with pytest.raises(UsageError, match="'order-1' is ambiguous"):
        await workflow_ids(target, ["order-1"])


def test_only_the_commands_that_run_a_worker_import_it() -> None:
    """``worker`` (and ``activities``) are imported inside ``dwf worker``'s and ``dwf dev``'s
    code only, never when ``sdk.cli`` is loaded (``lint-imports`` cannot tell the two apart)."""
    importers: dict[str, list[tuple[str, bool]]] = {}
    for path in sorted((REPO / "sdk" / "cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        at_top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            if any(name.split(".")[0] in ("worker", "activities") for name in names):
                importers.setdefault(path.name, []).append((names[0], id(node) in at_top))
    assert set(importers) == {"_processes.py"}, importers
    assert not any(top for _, top in importers["_processes.py"]), importers
