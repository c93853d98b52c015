"""``python -m worker`` as a real subprocess against a real Temporal dev server.

Each test starts the worker the way an operator would (environment variables only), drives
workflows with ``sdk.WorkflowClient`` from the test, and checks the process from outside:
its HTTP endpoints, its exit code, its CPU use. A small application module written to a
temporary directory adds a slow machine step whose attempts leave marker files, so a test
can tell an activity in flight from one that finished, and count how often it ran.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy.engine import make_url

from examples.expense_approval import Expense, ExpenseOutcome, expense_approval
from sdk import DevServer, WorkflowClient, registry
from sdk._devserver import free_port
from tests.integration.support import DatabaseFactory

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
GRACE = 15.0

SLOW_APP = '''
"""A test application: one slow step that records each attempt in marker files."""

import asyncio
import logging
import os
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel

from sdk import machine_step, workflow


class Job(BaseModel):
    name: str
    seconds: float


def _mark(job: Job, what: str) -> None:
    with open(Path(os.environ["DWF_TEST_MARKS"]) / f"{job.name}.{what}", "a") as fh:
        fh.write("x")


@machine_step(timeout=timedelta(seconds=3), max_attempts=20, initial_interval=timedelta(milliseconds=100))
async def slow_step(job: Job) -> str:
    _mark(job, "started")
    logging.getLogger("dwf_test_slow_app").info("working on %s", job.name)
    await asyncio.sleep(job.seconds)
    _mark(job, "finished")
    return job.name


@workflow(name="dwf_test_slow_job", version="1.0.0")
async def slow_job(job: Job) -> str:
    return await slow_step(job)
'''


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns something other than None (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = await probe()
        except Exception as exc:
            last, result = exc, None
        if result is not None:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class WorkerProcess:
    """``python -m worker`` in a subprocess, its output in files."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.http_port = int(env["DWF_HTTP_PORT"])
        self.logs = logs
        self.runs = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.runs += 1
        self.stderr_path = self.logs / f"worker-{self.http_port}-{self.runs}.log"
        with open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker"],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def output(self) -> str:
        return self.stderr_path.read_text()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def get(self, path: str) -> tuple[int, str]:
        return await asyncio.to_thread(http_get, self.http_port, path)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        async def ready() -> bool | None:
            assert self.alive(), f"worker exited with {self.process and self.process.poll()}:\n{self.output}"
            status, _ = await self.get("/readyz")
            return True if status == 200 else None

        await eventually(ready, timeout, "/readyz to answer 200")

    async def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        process = self.process
        return await eventually(lambda: _async(process.poll()), timeout, "the worker to exit")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)


async def _async(value: T) -> T:
    return value


class TcpProxy:
    """A TCP relay to ``target`` on a fixed local port that a test can cut and restore.

    Stands in for a database that goes away: :meth:`stop` closes the listener and every open
    connection, :meth:`start` listens again on the same port.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, upstream_writer}

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.transport.abort()

        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))
        self._writers -= {client_writer, upstream_writer}


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "dwf_test_slow_app.py").write_text(SLOW_APP)
    (tmp_path / "marks").mkdir()
    return app


def sqlite_mirror(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}"


def worker_env(
    server_target: str, tmp_path: Path, app_dir: Path, task_queue: str, **extra: str
) -> dict[str, str]:
    # The session's public keys stay, so the worker verifies the test client's commands.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWF_") or k == "DWF_COMMAND_KEYS"}
    env.update(
        PYTHONPATH=os.pathsep.join([str(app_dir), str(REPO)]),
        DWF_TEMPORAL_ADDRESS=server_target,
        DWF_TASK_QUEUE=task_queue,
        DWF_APP="examples.expense_approval,dwf_test_slow_app",
        DWF_DATABASE_URL=sqlite_mirror(tmp_path),
        DWF_HTTP_HOST="127.0.0.1",
        DWF_HTTP_PORT=str(free_port()),
        DWF_SHUTDOWN_GRACE=str(GRACE),
        DWF_LOG_FORMAT="json",
        DWF_TEST_MARKS=str(tmp_path / "marks"),
    )
    env.update(extra)
    return env


@pytest.fixture
async def worker_factory(tmp_path: Path) -> AsyncIterator[Callable[[dict[str, str]], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def make(env: dict[str, str]) -> WorkerProcess:
        proc = WorkerProcess(env, tmp_path)
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.kill()


def marks(tmp_path: Path, name: str, what: str) -> int:
    path = tmp_path / "marks" / f"{name}.{what}"
    return len(path.read_text()) if path.exists() else 0


async def start_slow(client: WorkflowClient, name: str, seconds: float) -> Any:
    return await client.temporal.start_workflow(
        "dwf_test_slow_job@1.0.0",
        {"name": name, "seconds": seconds},
        id=f"slow-{name}",
        task_queue=client.task_queue,
        result_type=str,
    )


async def approve(handle: Any) -> None:
    """Wait for the instance's approval task and approve it."""

    async def task_id() -> str | None:
        state = await handle.state()
        return state.pending_tasks[0].task_id if state.pending_tasks else None

    tid = await eventually(task_id, 20, f"a pending task in {handle.id}")
    await handle.complete_task(tid, {"approved": True}, user="bob", groups=["managers"])


def assert_clean_log(output: str) -> None:
    assert "Traceback" not in output, output
    for line in output.splitlines():
        entry = json.loads(line)  # every line is one JSON record
        assert {"ts", "level", "logger", "message"} <= entry.keys()


async def audit_mirror(
    client: WorkflowClient, app_dir: Path, mirror_url: str, workflow_ids: list[str]
) -> Any:
    """The mirror audit (replay each history, compare with the worker's SQLite mirror).

    Replaying needs the test application's workflow in this process's registry; it is
    imported for the audit and removed again so later tests do not see it.
    """
    from sdk.mirror import MirrorWriter, audit

    steps, workflows = dict(registry.steps), dict(registry.workflows)
    sys.path.insert(0, str(app_dir))
    writer = MirrorWriter.from_url(mirror_url)
    try:
        importlib.import_module("dwf_test_slow_app")
        return await audit(client.temporal, writer, workflow_ids)
    finally:
        await writer.close()
        sys.path.remove(str(app_dir))
        sys.modules.pop("dwf_test_slow_app", None)
        registry.steps.clear()
        registry.steps.update(steps)
        registry.workflows.clear()
        registry.workflows.update(workflows)


async def test_bad_configuration_exits_2_with_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWF_")}
    env.update(DWF_APP="examples.expense_approval", DWF_MAX_CONCURRENT_ACTIVITIES="abc")
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "worker"], cwd=REPO, env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "DWF_MAX_CONCURRENT_ACTIVITIES" in lines[0] and "'abc'" in lines[0]
    assert lines[0].startswith("python -m worker: error: DWF_MAX_CONCURRENT_ACTIVITIES: ")

    env.pop("DWF_MAX_CONCURRENT_ACTIVITIES")
    env["DWF_APP"] = "no_such_module_for_dwf"
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "worker"], cwd=REPO, env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 2
    assert "no_such_module_for_dwf" in result.stderr.decode().strip().splitlines()[-1]


async def test_unknown_namespace_exits_2(server: DevServer, tmp_path: Path, app_dir: Path) -> None:
    env = worker_env(server.target, tmp_path, app_dir, "q", DWF_TEMPORAL_NAMESPACE="no-such-namespace")
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "worker"], cwd=REPO, env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 2, result.stderr.decode()
    assert "no-such-namespace" in result.stderr.decode().strip().splitlines()[-1]


async def test_health_metrics_and_sigterm_during_work(
    server: DevServer,
    tmp_path: Path,
    app_dir: Path,
    worker_factory: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    worker = worker_factory(worker_env(server.target, tmp_path, app_dir, queue)).start()
    await worker.wait_ready()
    assert (await worker.get("/healthz"))[0] == 200
    status, body = await worker.get("/readyz")
    checks = json.loads(body)["checks"]
    assert status == 200 and checks["temporal"] == "ok" and checks["worker"] == "ok"
    assert (await worker.get("/nope"))[0] == 404

    client = await WorkflowClient.connect(server.target, task_queue=queue)
    waiting = await client.start(expense_approval, Expense(employee="ann", amount=42), tenant_id="t")
    slow = await start_slow(client, "inflight", seconds=2.0)
    await eventually(
        lambda: _async(marks(tmp_path, "inflight", "started") or None), 20, "the slow step to start"
    )

    status, page = await worker.get("/metrics")
    assert status == 200
    assert "dwf_worker_up 1" in page
    assert "# TYPE temporal_num_pollers gauge" in page  # Temporal's own SDK metrics, relayed
    assert "temporal_workflow_task_execution_latency" in page or "temporal_request" in page
    assert "dwf_mirror_rows_written_total" in page and "dwf_mirror_batches_total" in page

    # SIGTERM while a task waits for a human and an activity runs: the activity finishes.
    stopped_at = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    assert await worker.wait_exit(GRACE + 10) == 0
    assert time.monotonic() - stopped_at < GRACE
    assert marks(tmp_path, "inflight", "finished") == 1
    assert_clean_log(worker.output)
    assert "SIGTERM received" in worker.output
    # A plain logger inside a step logs with the workflow's and the step's identity.
    (record,) = [json.loads(line) for line in worker.output.splitlines() if "working on inflight" in line]
    assert (record["workflow_id"], record["step"], record["attempt"]) == ("slow-inflight", "slow_step", 1)
    assert record["workflow_type"] == "dwf_test_slow_job@1.0.0" and record["run_id"]

    # A new worker picks everything up; the finished activity is not run again.
    worker.start()
    await worker.wait_ready()
    assert await asyncio.wait_for(slow.result(), 30) == "inflight"
    await approve(waiting)
    outcome = await asyncio.wait_for(waiting.result(), 30)
    assert isinstance(outcome, ExpenseOutcome) and outcome.status == "paid"
    assert marks(tmp_path, "inflight", "started") == 1
    report = await audit_mirror(client, app_dir, sqlite_mirror(tmp_path), [waiting.id, slow.id])
    assert report.checked == 2 and report.clean, "\n".join(map(str, report.mismatches))


async def test_sigkill_then_restart_completes_every_workflow(
    server: DevServer,
    tmp_path: Path,
    app_dir: Path,
    worker_factory: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    worker = worker_factory(worker_env(server.target, tmp_path, app_dir, queue)).start()
    await worker.wait_ready()
    client = await WorkflowClient.connect(server.target, task_queue=queue)
    expenses = [
        await client.start(expense_approval, Expense(employee=f"e{i}", amount=10 + i), tenant_id="t")
        for i in range(3)
    ]
    slows = [await start_slow(client, f"k{i}", seconds=1.0) for i in range(3)]
    await eventually(
        lambda: _async(all(marks(tmp_path, f"k{i}", "started") for i in range(3)) or None),
        20,
        "every slow step to start",
    )
    worker.kill()  # SIGKILL: no shutdown at all

    worker.start()
    await worker.wait_ready()
    for handle in expenses:
        await approve(handle)
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in [*expenses, *slows])), 60)
    assert [r.status for r in results[:3]] == ["paid"] * 3
    assert results[3:] == ["k0", "k1", "k2"]
    # The killed attempts were retried after their start-to-close timeout.
    assert all(marks(tmp_path, f"k{i}", "finished") >= 1 for i in range(3))
    ids = [h.id for h in expenses] + [s.id for s in slows]
    report = await audit_mirror(client, app_dir, sqlite_mirror(tmp_path), ids)
    assert report.checked == 6 and report.clean, "\n".join(map(str, report.mismatches))


async def test_survives_temporal_restart_without_spinning(
    tmp_path: Path, app_dir: Path, worker_factory: Callable[[dict[str, str]], WorkerProcess]
) -> None:
    db = tmp_path / "temporal.db"
    port = free_port()
    server = DevServer(port=port, db_filename=db, log_file=tmp_path / "temporal-1.log").start()
    try:
        queue = f"q-{uuid.uuid4().hex[:8]}"
        worker = worker_factory(worker_env(server.target, tmp_path, app_dir, queue)).start()
        await worker.wait_ready()
        client = await WorkflowClient.connect(server.target, task_queue=queue)
        before = await client.start(expense_approval, Expense(employee="ann", amount=5), tenant_id="t")
        await eventually(lambda: _async(before.id), 5, "start")

        server.stop()

        async def not_ready() -> str | None:
            status, body = await worker.get("/readyz")
            return body if status == 503 else None

        report = json.loads(await eventually(not_ready, 20, "/readyz to answer 503 with Temporal down"))
        assert report["checks"]["temporal"] != "ok" and report["checks"]["worker"] == "ok"
        assert (await worker.get("/healthz"))[0] == 200
        cpu_before, wall_before = worker.cpu_seconds(), time.monotonic()
        await asyncio.sleep(3)  # measuring CPU use over a window, not waiting for an event
        cpu_used = worker.cpu_seconds() - cpu_before
        assert worker.alive(), worker.output
        assert cpu_used < 0.5 * (time.monotonic() - wall_before), f"worker spins: {cpu_used:.2f}s CPU in 3s"

        server = DevServer(port=port, db_filename=db, log_file=tmp_path / "temporal-2.log").start()
        await worker.wait_ready(60)
        client = await WorkflowClient.connect(server.target, task_queue=queue)
        after = await client.start(expense_approval, Expense(employee="bob", amount=7), tenant_id="t")
        for handle in (client.get_instance(before.id, tenant_id="t"), after):
            await approve(handle)
            outcome = await asyncio.wait_for(handle.result(), 30)
            status = outcome["status"] if isinstance(outcome, dict) else outcome.status
            assert status == "paid"
        assert worker.alive()
    finally:
        server.stop()


@pytest.mark.postgresql  # a PostgreSQL database behind a proxy the test stops
async def test_survives_the_database_going_away(
    server: DevServer,
    tmp_path: Path,
    app_dir: Path,
    worker_factory: Callable[[dict[str, str]], WorkerProcess],
    database_factory: DatabaseFactory,
) -> None:
    url = make_url(await database_factory.create("postgresql"))
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    try:
        mirror_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        queue = f"q-{uuid.uuid4().hex[:8]}"
        env = worker_env(server.target, tmp_path, app_dir, queue, DWF_DATABASE_URL=mirror_url)
        worker = worker_factory(env).start()
        await worker.wait_ready()
        client = await WorkflowClient.connect(server.target, task_queue=queue)
        before = await client.start(expense_approval, Expense(employee="ann", amount=5), tenant_id="t")
        await eventually(lambda: _pending(before), 20, "the first instance's task")

        await proxy.stop()

        async def database_down() -> dict[str, str] | None:
            status, body = await worker.get("/readyz")
            return json.loads(body)["checks"] if status == 503 else None

        checks = await eventually(database_down, 20, "/readyz to answer 503 with the database down")
        assert checks["database"] != "ok" and checks["temporal"] == "ok" and checks["worker"] == "ok"
        during = await client.start(expense_approval, Expense(employee="bob", amount=6), tenant_id="t")
        cpu_before, wall_before = worker.cpu_seconds(), time.monotonic()
        await asyncio.sleep(3)  # measuring CPU use over a window, not waiting for an event
        cpu_used = worker.cpu_seconds() - cpu_before
        assert worker.alive(), worker.output
        assert cpu_used < 0.5 * (time.monotonic() - wall_before), f"worker spins: {cpu_used:.2f}s CPU in 3s"

        await proxy.start()
        await worker.wait_ready()
        for handle in (before, during):
            await approve(handle)
            outcome = await asyncio.wait_for(handle.result(), 30)
            assert outcome.status == "paid"
        report = await audit_mirror(client, app_dir, mirror_url, [before.id, during.id])
        assert report.checked == 2 and report.clean, "\n".join(map(str, report.mismatches))
        page = (await worker.get("/metrics"))[1]
        outages = re.search(r"^dwf_mirror_outages_total (\S+)$", page, re.MULTILINE)
        assert outages and float(outages[1]) >= 1, "the outage is counted"
        assert re.search(r"^dwf_mirror_outage 0(\.0)?$", page, re.MULTILINE), "and it is over"
    finally:
        await proxy.stop()


async def _pending(handle: Any) -> bool | None:
    state = await handle.state()
    return True if state.pending_tasks else None


async def test_waits_for_temporal_at_start_and_stops_cleanly_while_waiting(
    tmp_path: Path, app_dir: Path, worker_factory: Callable[[dict[str, str]], WorkerProcess]
) -> None:
    port = free_port()
    queue = f"q-{uuid.uuid4().hex[:8]}"
    worker = worker_factory(worker_env(f"127.0.0.1:{port}", tmp_path, app_dir, queue)).start()
    other = tmp_path / "other"
    other.mkdir()
    patient = worker_factory(worker_env(f"127.0.0.1:{free_port()}", other, app_dir, queue)).start()

    async def retried(proc: WorkerProcess) -> bool | None:
        assert proc.alive(), proc.output
        return True if "failed (attempt 2)" in proc.output else None

    await eventually(lambda: retried(worker), 20, "a second connection attempt")
    status, body = await worker.get("/readyz")
    assert status == 503 and json.loads(body)["checks"]["temporal"].startswith("not connected")
    assert (await worker.get("/healthz"))[0] == 200

    # SIGTERM while still waiting for Temporal: a clean exit, at once.
    await eventually(lambda: retried(patient), 20, "a second connection attempt")
    patient.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    assert await patient.wait_exit(10) == 0

    # The server comes up: the worker connects and works.
    server = DevServer(port=port, log_file=tmp_path / "temporal.log").start()
    try:
        await worker.wait_ready(60)
        client = await WorkflowClient.connect(server.target, task_queue=queue)
        handle = await client.start(expense_approval, Expense(employee="cy", amount=9), tenant_id="t")
        await approve(handle)
        assert (await asyncio.wait_for(handle.result(), 30)).status == "paid"
        worker.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        assert await worker.wait_exit(GRACE + 10) == 0
        assert_clean_log(worker.output)
    finally:
        server.stop()
