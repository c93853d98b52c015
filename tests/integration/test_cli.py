"""``dwf`` end to end: the console script as a subprocess against the real Temporal dev server.

The module shares one SQLite mirror, created by ``dwf db upgrade``, and one worker running
``expense_approval`` in this process with that mirror (``create_worker(..., mirror=writer)``).
Every command runs as a real ``dwf`` process (asyncio subprocesses, so the in-process worker
keeps serving the updates they send); conditions on the mirror are polled in process with a
deadline. ``dwf dev`` and ``dwf worker`` run as long-lived subprocesses stopped with SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete
from temporalio.worker import Worker

from examples.expense_approval import Approval, Expense, expense_approval
from sdk import DevServer, StepStatus, TaskStatus, WorkflowClient, WorkflowStatus
from sdk._devserver import free_port
from sdk.mirror import (
    MirrorQueries,
    MirrorWriter,
    StepExecutionModel,
    TaskRow,
    create_engine,
    session_factory,
)

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).parent / "dwf"
DWF = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sdk._cli"]
APP = "examples.expense_approval"

Eventually = Callable[..., Awaitable[Any]]


@dataclass
class Result:
    """A finished ``dwf`` run."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"dwf {' '.join(self.args)} -> {self.code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def clean_env(**variables: str) -> dict[str, str]:
    """This process's environment without any DWF_* variable, plus ``variables``.

    The session's command keys stay: like Temporal's credentials, a deployment has them.
    """
    keys = ("DWF_SIGNING_KEY", "DWF_COMMAND_KEYS")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWF_") or k in keys}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(variables)
    return env


@dataclass
class Cli:
    """Runs ``dwf`` with the module's Temporal, task queue and mirror in ``DWF_*`` variables."""

    env: dict[str, str] = field(default_factory=dict)

    async def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
        process = await asyncio.create_subprocess_exec(
            *DWF,
            *args,
            cwd=REPO,
            env=env if env is not None else self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode is not None
        return Result(args, process.returncode, out.decode(), err.decode())


def ok(result: Result) -> Result:
    assert result.code == 0, str(result)
    assert "Traceback" not in result.stderr, str(result)
    return result


def error_line(result: Result, code: int, *fragments: str) -> str:
    """Assert ``result`` failed with ``code`` and one ``dwf: error:`` line holding ``fragments``."""
    assert result.code == code, str(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, str(result)
    assert lines[0].startswith("dwf: error: "), str(result)
    for fragment in fragments:
        assert fragment in lines[0], str(result)
    return lines[0]


@dataclass
class Setup:
    cli: Cli
    worker: Worker
    queries: MirrorQueries
    writer: MirrorWriter
    mirror_url: str
    mirror_path: Path


@pytest.fixture(scope="module")
async def setup(
    server: DevServer, new_worker: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Setup]:
    path = tmp_path_factory.mktemp("cli") / "mirror.db"
    url = f"sqlite+aiosqlite:///{path}"
    writer = MirrorWriter.from_url(url)
    worker = new_worker(expense_approval, mirror=writer)
    cli = Cli(
        clean_env(DWF_TEMPORAL_ADDRESS=server.target, DWF_TASK_QUEUE=worker.task_queue, DWF_DATABASE_URL=url)
    )
    # The schema comes from the command line; the worker only registers its definitions.
    upgraded = ok(await cli("db", "upgrade"))
    assert "upgraded from nothing to" in upgraded.stdout and path.exists()
    await writer.register_definitions([expense_approval])
    engine = create_engine(url)
    async with worker:
        yield Setup(cli, worker, MirrorQueries(session_factory(engine)), writer, url, path)
    await engine.dispose()
    await writer.close()


@pytest.fixture
def eventually(assert_eventually: Eventually) -> Eventually:
    """The shared polling helper (``conftest.assert_eventually``)."""
    return assert_eventually


async def wait_for_task(setup: Setup, eventually: Eventually, workflow_id: str) -> TaskRow:
    """The pending task of an instance, once the mirror has it."""

    async def found() -> TaskRow:
        instance = await setup.queries.instance_by_workflow_id(workflow_id)
        tasks = await setup.queries.instance_tasks(instance.id, status=TaskStatus.PENDING)
        assert tasks.items, f"no pending task for {workflow_id} yet"
        return tasks.items[0]

    return await eventually(_tolerant(found), timeout=20)


def _tolerant(probe: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """``probe`` with "not there yet" lookups turned into AssertionError, for ``assert_eventually``."""

    async def run() -> Any:
        try:
            return await probe()
        except LookupError as exc:
            raise AssertionError(str(exc)) from exc

    return run


# -- schema ------------------------------------------------------------------------------------


async def test_db_current_and_upgrade_again(setup: Setup) -> None:
    current, again = await asyncio.gather(setup.cli("db", "current"), setup.cli("--json", "db", "upgrade"))
    assert ok(current).stdout.strip().endswith("(head)")
    assert ok(again).json()["from"] == again.json()["to"] is not None


# -- start and instances -----------------------------------------------------------------------


async def test_start_then_list_and_show_instances(
    setup: Setup, client: WorkflowClient, eventually: Eventually, tmp_path: Path
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    before = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    (tmp_path / "input.json").write_text('{"employee": "Bea", "amount": 7}')
    first, second = await asyncio.gather(
        setup.cli(
            "--json", "start", "expense_approval", "--input", '{"employee": "Ann", "amount": 120}',
            "--tenant", tenant, "--created-by", "ann", "--app", APP,
        ),
        # Without --app the workflow is found in the mirror's definitions; the input comes from a file.
        setup.cli(
            "start", "expense_approval", "--input-file", str(tmp_path / "input.json"), "--tenant", tenant,
            "--id", f"cli-{tenant}",
        ),
    )  # fmt: skip
    started = ok(first).json()
    assert started["workflow_id"].startswith("expense_approval-") and started["instance_id"]
    assert ok(second).stdout.startswith(f"started cli-{tenant} (run ")
    await wait_for_task(setup, eventually, started["workflow_id"])
    await wait_for_task(setup, eventually, f"cli-{tenant}")

    cli = setup.cli
    (
        listed,
        filtered,
        nothing,
        paged,
        shown,
        by_instance,
        other_tenant,
        unknown,
        by_prefix,
        by_instance_prefix,
    ) = await asyncio.gather(
        cli("--json", "instances", "list", "--tenant", tenant),
        cli(
            "instances", "list", "--tenant", tenant, "--workflow", "expense_approval", "--status", "waiting",
            "--created-by", "ann", "--since", before,
        ),
        cli("instances", "list", "--tenant", tenant, "--until", before),
        cli("instances", "list", "--tenant", tenant, "--limit", "1"),
        cli("instances", "show", started["workflow_id"]),
        cli("--json", "instances", "show", started["instance_id"]),
        cli("instances", "show", started["workflow_id"], "--tenant", "other"),
        cli("instances", "show", "no-such-workflow"),
        cli("--json", "instances", "show", f"cli-{tenant}"[:-2], "--tenant", tenant),
        # Instance ids are Temporal run ids (UUIDv7): their first digits are the start time.
        cli("--json", "instances", "show", started["instance_id"][:-4]),
    )  # fmt: skip
    rows = ok(listed).json()
    assert {i["workflow_id"] for i in rows} == {f"cli-{tenant}", started["workflow_id"]}
    assert [i["created_at"] for i in rows] == sorted((i["created_at"] for i in rows), reverse=True)
    assert {i["status"] for i in rows} == {"WAITING"}
    header, *lines = ok(filtered).stdout.strip().splitlines()
    assert header.split()[:3] == ["WORKFLOW", "ID", "WORKFLOW"] and len(lines) == 1
    assert "WAITING" in lines[0] and "manager_approval" in lines[0] and "ann" in lines[0]
    assert lines[0].split()[0] == started["workflow_id"]  # whole: it is pasted into other commands
    assert ok(nothing).stdout.strip() == "no instances"
    assert "next page: --offset 1" in ok(paged).stderr
    text = ok(shown).stdout
    assert "Status        WAITING" in text and "Steps" in text and "Tasks" in text
    assert "validate_expense  MACHINE  SUCCEEDED" in text and "Approve 120.00 for ann" in text
    detail = ok(by_instance).json()
    assert detail["source"] == "mirror" and detail["workflow_id"] == started["workflow_id"]
    assert [s["step_name"] for s in detail["steps"]] == ["validate_expense", "manager_approval"]
    assert detail["tasks"][0]["status"] == "pending"
    error_line(other_tenant, 3)
    error_line(unknown, 3, "no-such-workflow")
    assert ok(by_prefix).json()["workflow_id"] == f"cli-{tenant}"
    assert ok(by_instance_prefix).json()["workflow_id"] == started["workflow_id"]
    assert detail["result"] is None  # still waiting

    # Not in the mirror (no worker ever ran it): Temporal's own description.
    lone = await client.temporal.start_workflow(
        expense_approval.workflow_type,
        Expense(employee="x", amount=1),
        id=f"lone-{tenant}",
        task_queue="nobody",
    )
    await lone.terminate("test")
    fallback = ok(await setup.cli("instances", "show", lone.id))
    assert "not in the mirror" in fallback.stderr and "TERMINATED" in fallback.stdout


async def test_start_wait_reports_the_result_or_the_failure(setup: Setup, eventually: Eventually) -> None:
    workflow_id = f"wait-{uuid.uuid4().hex[:8]}"
    waiting = asyncio.create_task(
        setup.cli(
            "--json", "start", "expense_approval", "--input", '{"employee": "Cy", "amount": 3}',
            "--id", workflow_id, "--wait",
        )
    )  # fmt: skip
    failing = asyncio.create_task(
        setup.cli(
            "start",
            "expense_approval",
            "--app",
            APP,
            "--input",
            '{"employee": "Dee", "amount": 20000}',
            "--wait",
        )
    )
    task = await wait_for_task(setup, eventually, workflow_id)
    ok(
        await setup.cli(
            "tasks",
            "complete",
            str(task.id),
            "--user",
            "bob",
            "--group",
            "managers",
            "--data",
            '{"approved": true}',
        )
    )
    done = ok(await asyncio.wait_for(waiting, 30)).json()
    assert done["workflow_id"] == workflow_id and done["status"] == "COMPLETED"
    assert done["result"] == {"status": "paid", "payment_id": "pay-cy-300"}

    async def closed() -> None:
        assert (await setup.queries.instance_by_workflow_id(workflow_id)).status is WorkflowStatus.COMPLETED

    await eventually(_tolerant(closed), timeout=20)
    shown, detail = await asyncio.gather(
        setup.cli("instances", "show", workflow_id), setup.cli("--json", "instances", "show", workflow_id)
    )
    assert "pay-cy-300" in next(line for line in ok(shown).stdout.splitlines() if line.startswith("Result"))
    assert ok(detail).json()["result"] == {"status": "paid", "payment_id": "pay-cy-300"}

    failed = await asyncio.wait_for(failing, 30)
    assert failed.stdout.startswith("started expense_approval-")
    error_line(failed, 1, "failed", "amount above the 10,000 limit")


# -- tasks ---------------------------------------------------------------------------------------


async def test_task_commands_end_to_end(setup: Setup, client: WorkflowClient, eventually: Eventually) -> None:
    cli, tenant, unknown = setup.cli, f"t-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())

    def act(*args: str) -> Awaitable[Result]:
        # Commands carry the tenant: leaving it out reaches only instances without one.
        return cli(*args, "--tenant", tenant)

    handle = await client.start(
        expense_approval,
        Expense(employee="eve", amount=42),
        tenant_id=tenant,
        task_queue=setup.worker.task_queue,
    )
    task_id = str((await wait_for_task(setup, eventually, handle.id)).id)

    # Reads, and refusals that do not depend on the task's state, run side by side.
    (
        table,
        inbox,
        assigned,
        grouped,
        overdue,
        soon,
        stranger,
        malformed,
        missing,
        elsewhere,
        by_prefix,
        no_prefix,
    ) = await asyncio.gather(
        cli("tasks", "list", "--tenant", tenant),
        cli("--json", "tasks", "list", "--user", "bob", "--group", "managers", "--tenant", tenant),
        cli("tasks", "list", "--tenant", tenant, "--assignee", "bob"),
        cli("--json", "tasks", "list", "--group", "managers", "--tenant", tenant),
        cli("--json", "tasks", "list", "--tenant", tenant, "--overdue"),
        cli("--json", "tasks", "list", "--tenant", tenant, "--due-before", "2999-01-01"),
        act("tasks", "claim", task_id, "--user", "mallory"),
        act(
            "tasks", "complete", task_id, "--user", "bob", "--group", "managers", "--data", '{"approved": tru'
        ),
        act("tasks", "complete", unknown, "--user", "dan", "--data", "{}"),
        cli("tasks", "show", task_id, "--tenant", "another"),
        cli("--json", "tasks", "show", task_id[:8], "--tenant", tenant),
        cli("tasks", "show", "zz"),
    )
    lines = ok(table).stdout.splitlines()
    assert lines[0].split()[:2] == ["ID", "TITLE"] and task_id in lines[1] and "managers" in lines[1]
    assert lines[1].split()[0] == task_id and lines[1].split()[-1] == handle.id  # both whole
    assert [t["id"] for t in ok(inbox).json()] == [task_id]
    assert ok(assigned).stdout.strip() == "no pending tasks"
    assert [t["id"] for t in ok(grouped).json()] == [task_id]
    assert ok(overdue).json() == []  # due in two days
    assert [t["id"] for t in ok(soon).json()] == [task_id]
    error_line(stranger, 4, "mallory")
    error_line(malformed, 2, "--data", "not valid JSON")
    error_line(missing, 3, unknown)
    error_line(elsewhere, 3)
    assert ok(by_prefix).json()["id"] == task_id
    error_line(no_prefix, 3, "'zz'")

    claimed = ok(await act("tasks", "claim", task_id, "--user", "carol", "--group", "managers"))
    assert claimed.stdout.startswith(f"claimed by carol: task {task_id}")
    conflict, not_holder, commented = await asyncio.gather(
        act("tasks", "claim", task_id, "--user", "dan", "--group", "managers"),
        act("tasks", "complete", task_id[:13], "--user", "dan", "--group", "managers", "--data", "{}"),
        act(
            "tasks", "comment", task_id, "--user", "bob", "--group", "managers", "--body", "Receipt attached?"
        ),
    )
    error_line(conflict, 6, "carol")  # a claim lost to another: conflict
    error_line(not_holder, 4, "claimed by 'carol'")  # acting on a task another holds: permission
    ok(commented)
    ok(await act("tasks", "release", task_id, "--user", "carol", "--group", "managers"))
    reassigned = ok(
        await act(
            "--json", "tasks", "reassign", task_id, "--user", "boss", "--admin", "--to-user", "dan",
            "--reason", "Dan knows Eve",
        )
    ).json()  # fmt: skip
    assert reassigned["assignee_id"] == "dan"

    invalid, not_assignee = await asyncio.gather(
        act("tasks", "complete", task_id, "--user", "dan", "--data", '{"approved": "perhaps"}'),
        act("tasks", "complete", task_id, "--user", "eve", "--data", '{"approved": true}'),
    )
    assert invalid.code == 5, str(invalid)
    first, *details = invalid.stderr.strip().splitlines()
    assert first == "dwf: error: invalid data for Approval:" and details[0].strip().startswith("approved:")
    error_line(not_assignee, 4, "eve")
    completed = ok(
        await act(
            "tasks", "complete", task_id, "--user", "dan", "--data", '{"approved": true, "comment": "fine"}',
            "--comment", "Paid from the travel budget", "--app", APP,
        )
    )  # fmt: skip
    assert completed.stdout.startswith(f"completed by dan: task {task_id}")

    async def settled() -> None:
        row = await setup.queries.get_task(task_id)
        assert row.status is TaskStatus.COMPLETED
        assert len((await setup.queries.task_assignments(task_id)).items) == 3

    await eventually(settled, timeout=20)
    again, text, detailed = await asyncio.gather(
        act("tasks", "complete", task_id, "--user", "dan", "--data", '{"approved": true}'),
        cli("tasks", "show", task_id),
        cli("--json", "tasks", "show", task_id),
    )
    error_line(again, 6, "completed")
    shown = ok(text).stdout
    assert "Status          completed" in shown and "Completed by    dan" in shown
    assert "Receipt attached?" in shown and "Dan knows Eve" in shown
    history = shown.split("Assignment history")[1]
    assert [line.split()[2] for line in history.strip().splitlines()[1:]] == ["claim", "release", "reassign"]
    detail = ok(detailed).json()
    assert detail["form_data"] == Approval(approved=True, comment="fine").model_dump()
    assert detail["comment"] == "Paid from the travel budget"
    assert [c["body"] for c in detail["comments"]] == ["Receipt attached?"]
    assert [a["action"] for a in detail["assignments"]] == ["claim", "release", "reassign"]


# -- mirror audit and rebuild --------------------------------------------------------------------


async def test_mirror_audit_finds_a_deleted_row_and_rebuild_repairs_it(
    setup: Setup, client: WorkflowClient, eventually: Eventually
) -> None:
    handle = await client.start(
        expense_approval, Expense(employee="fay", amount=9), task_queue=setup.worker.task_queue
    )
    task = await wait_for_task(setup, eventually, handle.id)
    await handle.complete_task(task.id, {"approved": True}, user="bob", groups=["managers"])
    await handle.result()

    async def finished() -> Any:
        row = await setup.queries.instance_by_workflow_id(handle.id)
        assert row.status is WorkflowStatus.COMPLETED
        steps = (await setup.queries.step_history(row.id)).items
        assert [s.status for s in steps] == [StepStatus.SUCCEEDED] * 3
        return steps

    steps = await eventually(_tolerant(finished), timeout=20)

    clean = ok(await setup.cli("mirror", "audit", handle.id, "--app", APP))
    assert clean.stdout == "" and "the mirror matches Temporal" in clean.stderr
    assert f"audited 1/1: {handle.id}" in clean.stderr  # the progress line (stderr is not a TTY)

    pay = next(s for s in steps if s.step_name == "pay_expense")
    async with setup.writer.engine.begin() as conn:
        await conn.execute(delete(StepExecutionModel).where(StepExecutionModel.id == pay.id))
    broken = await setup.cli("mirror", "audit", handle.id, "--app", APP)
    assert broken.code == 1, str(broken)
    assert broken.stdout.splitlines() == [
        f"{handle.id} workflow_step_executions {pay.id} *: expected 'row', mirror has None"
    ]
    assert (
        broken.stderr.strip().splitlines()[-1].startswith("dwf: error: audited 1 instance(s): 1 mismatch(es)")
    )
    rebuilt = ok(await setup.cli("mirror", "rebuild", "--app", APP, handle.id))
    assert (
        rebuilt.stdout.startswith("rebuilt 1 instance(s)") and f"rebuilt 1/1: {handle.id}" in rebuilt.stderr
    )
    assert ok(await setup.cli("--json", "mirror", "audit", "--app", APP, handle.id)).json() == []
    assert (await setup.queries.step_history(handle.instance_id)).total == 3


# -- bad arguments -------------------------------------------------------------------------------


async def test_each_bad_argument_gets_its_error_and_exit_code(setup: Setup, server: DevServer) -> None:
    cli = setup.cli
    absent = str(uuid.uuid4())
    dead = f"127.0.0.1:{free_port()}"
    # Errors found before anything is contacted are covered in tests/unit/test_cli_args.py.
    checks: list[tuple[tuple[str, ...], int, tuple[str, ...]]] = [
        (("frobnicate",), 2, ("No such command 'frobnicate'",)),
        (("start", "expense_approval", "--input", "{nope"), 2, ("--input", "not valid JSON")),
        (("tasks", "show", absent), 3, (absent,)),
        (("start", "no_such_workflow"), 3, ("no_such_workflow",)),
        (("start", "expense_approval", "--version", "9.9.9", "--app", APP), 3, ("9.9.9",)),
        (("start", "expense_approval", "--app", APP, "--input", '{"employee": "x", "amount": -1}'), 5, ()),
        (("--address", dead, "tasks", "claim", absent, "--user", "a"), 7, (dead, "Connection refused")),
        (("--database-url", f"postgresql+asyncpg://postgres@{dead}/x", "tasks", "list"), 7, ("cannot",)),
        (("dev", "--port", str(server.port)), 1, (f"port {server.port} is in use",)),
    ]
    results = await asyncio.gather(*(cli(*args) for args, _, _ in checks))
    for (_, code, fragments), result in zip(checks, results, strict=True):
        if code == 5:
            assert result.code == 5, str(result)
            assert result.stderr.splitlines()[1].strip().startswith("amount:"), str(result)
        else:
            error_line(result, code, *fragments)

    traced, no_app = await asyncio.gather(
        cli("--debug", "tasks", "show", absent), cli("worker", env=clean_env(DWF_HTTP_PORT="0"))
    )
    busy_inbox = await cli("dev", "--port", str(free_port()), "--inbox-port", str(server.port))
    error_line(busy_inbox, 1, f"port {server.port} is in use", "--inbox-port 0")
    assert traced.code == 3 and "Traceback" in traced.stderr and "TaskNotFoundError" in traced.stderr
    error_line(no_app, 2, "DWF_APP is not set")


# -- the long-running commands -------------------------------------------------------------------


async def _stop(process: asyncio.subprocess.Process, timeout: float = 30) -> int:
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), timeout)


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_dev_runs_a_server_and_a_worker_until_sigterm(
    setup: Setup, tmp_path: Path, eventually: Eventually
) -> None:
    port, inbox_port, mirror = free_port(), free_port(), tmp_path / "dev-mirror.db"
    env = clean_env(DWF_DATABASE_URL=f"sqlite+aiosqlite:///{mirror}", DWF_TASK_QUEUE="dev-queue")
    with open(tmp_path / "dev.log", "wb") as log:
        process = await asyncio.create_subprocess_exec(
            *DWF, "--json", "dev", "--port", str(port), "--db-file", str(tmp_path / "temporal.db"),
            "--inbox-port", str(inbox_port),
            cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=log,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        announced = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert announced["address"] == f"127.0.0.1:{port}" and announced["task_queue"] == "dev-queue"
        assert announced["app"] == [APP]
        assert announced["environment"]["TEMPORAL_ADDRESS"] == announced["address"]  # for temporal CLI
        assert announced["environment"]["DWF_TEMPORAL_ADDRESS"] == announced["address"]
        started = ok(
            await setup.cli(
                "--address", announced["address"], "--json", "start", "expense_approval", "--app", APP,
                "--input", '{"employee": "Gus", "amount": 1}', env=env,
            )
        ).json()  # fmt: skip
        await _pending_task_in(mirror, started["workflow_id"], eventually)
        listed = ok(
            await setup.cli("--address", announced["address"], "--json", "tasks", "list", env=env)
        ).json()
        assert [t["workflow_id"] for t in listed] == [started["workflow_id"]]
        # The web inbox, served beside them: the page, and a development sign-in on its API.
        assert announced["inbox"] == f"http://127.0.0.1:{inbox_port}/"
        async with httpx.AsyncClient(base_url=announced["inbox"]) as web:
            page = await web.get("")
            assert page.status_code == 200 and "<title>Task inbox</title>" in page.text
            signed_in = await web.post("api/session/dev", json={"user": "bob"})
            assert signed_in.status_code == 200 and signed_in.json()["groups"] == ["managers"]
            assert (await web.get("api/inbox")).status_code == 200
        assert await _stop(process) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = (tmp_path / "dev.log").read_text()
    assert "Traceback" not in output
    assert "stopped the worker, the web inbox and the Temporal dev server" in output
    assert not _port_open(port) and not _port_open(inbox_port)


async def _pending_task_in(mirror: Path, workflow_id: str, eventually: Eventually) -> None:
    """Wait until the mirror in the SQLite file ``mirror`` has a pending task of ``workflow_id``."""
    engine = create_engine(f"sqlite+aiosqlite:///{mirror}")
    queries = MirrorQueries(session_factory(engine))

    async def pending() -> None:
        assert mirror.exists(), f"no {mirror} yet"
        try:
            page = await queries.pending_tasks()
        except Exception as exc:  # the worker has not created the tables yet
            raise AssertionError(str(exc)) from exc
        assert [t.workflow_id for t in page.items] == [workflow_id]

    try:
        await eventually(pending, timeout=30, interval=0.2)
    finally:
        await engine.dispose()


async def test_worker_command_runs_until_sigterm(
    setup: Setup, server: DevServer, client: WorkflowClient, tmp_path: Path, eventually: Eventually
) -> None:
    mirror, queue = tmp_path / "worker-mirror.db", f"cli-worker-{uuid.uuid4().hex[:8]}"
    with open(tmp_path / "worker.log", "wb") as log:
        # A global flag before the command name, the worker's own flags after it.
        process = await asyncio.create_subprocess_exec(
            *DWF, "--address", server.target, "worker", "--app", APP, "--task-queue", queue,
            "--database-url", f"sqlite+aiosqlite:///{mirror}", "--http-port", "0",
            cwd=REPO, env=clean_env(), stdout=log, stderr=log,
        )  # fmt: skip
    try:
        handle = await client.start(expense_approval, Expense(employee="hal", amount=2), task_queue=queue)
        await _pending_task_in(mirror, handle.id, eventually)
        assert await _stop(process) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in output and "SIGTERM received" in output
