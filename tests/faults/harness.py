"""The fault suite's tools: private servers a test may stop, worker processes it may kill.

Its fixtures are registered in ``conftest``.

- :class:`Fleet` runs ``python -m worker`` processes (the operator's way, environment only)
  on one task queue and mirror, kills them with SIGKILL and starts them again.
- :class:`PrivateTemporal` is a dev server on its own port and database file, so a test can
  stop it and start it again on the same file (never the session's server).
- :class:`PrivatePostgres` is a PostgreSQL cluster of the test's own (initdb, pg_ctl as user
  postgres, its own port and socket directory), so a test can stop it (never the shared one).
- :func:`drive` starts instances of ``tests/faults/app.py`` and completes their tasks as
  users would, until every instance has finished; :func:`converge` waits until the audit is
  clean and :func:`prove_the_check_fails` breaks rows on purpose and sees the audit catch it.

Every case is marked ``fault`` (``-m "not fault"`` leaves them out) and prints one line of
figures (``-s`` shows them): instances, faults, time to converge after recovery, audit
results before and after rebuild.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType

from sdk import DevServer, TaskNotFoundError, TaskNotPendingError, WorkflowClient
from sdk import WorkflowStatus as WS
from sdk._devserver import free_port
from sdk.mirror import (
    HumanTaskModel,
    MirrorWriter,
    StepExecutionModel,
    WorkflowInstanceModel,
    audit,
    create_engine,
    rebuild,
)
from tests.faults.app import FaultApproval, FaultOrder, faults_order
from tests.integration.support import DatabaseFactory

REPO = Path(__file__).resolve().parents[2]
INSTANCES: Table = WorkflowInstanceModel.__table__  # type: ignore[assignment]
STEPS: Table = StepExecutionModel.__table__  # type: ignore[assignment]
TASKS: Table = HumanTaskModel.__table__  # type: ignore[assignment]


def figures(case: str, **values: Any) -> None:
    """One line of measurements for the closing note (shown with ``pytest -s``)."""
    print(f"\n[fault] {case}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


# -- Temporal -------------------------------------------------------------------------------------


class PrivateTemporal:
    """A dev server on a fixed port and database file that can be stopped and started again."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.db_file = root / "temporal.db"
        self.log_file = root / "temporal.log"
        self.server: DevServer | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = DevServer(port=self.port, db_filename=self.db_file, log_file=self.log_file)
        await asyncio.to_thread(self.server.start, 60.0)

    async def stop(self) -> None:
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)
            self.server = None


@pytest.fixture(name="temporal")
async def fixture_temporal(tmp_path: Path) -> AsyncIterator[PrivateTemporal]:
    server = PrivateTemporal(tmp_path)
    await server.start()
    yield server
    await server.stop()


# -- PostgreSQL ------------------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise RuntimeError(f"{name} not found: the fault suite needs PostgreSQL's server binaries")


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own: its own data directory, port and socket dir."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dwf-pg-"))
        self.port = free_port()
        self.data, self.sockets, self.log = self.root / "data", self.root / "sockets", self.root / "pg.log"
        self.sockets.mkdir()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:  # the server refuses to run as root
            self.root.chmod(0o755)
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def stop(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(name="private_postgres")
async def fixture_private_postgres() -> AsyncIterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    await asyncio.to_thread(cluster.init)
    await asyncio.to_thread(cluster.start)
    yield cluster
    await asyncio.to_thread(cluster.remove)


# -- worker processes ---------------------------------------------------------------------------


class WorkerProcess:
    """``python -m worker`` in a subprocess, its output in a file per run."""

    def __init__(self, env: dict[str, str], logs: Path, name: str) -> None:
        self.env, self.logs, self.name = env, logs, name
        self.http_port = int(env["DWF_HTTP_PORT"])
        self.runs = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.runs += 1
        self.log = self.logs / f"{self.name}-{self.runs}.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker"],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def output(self) -> str:
        return "".join(path.read_text() for path in sorted(self.logs.glob(f"{self.name}-*.log")))

    async def get(self, path: str) -> tuple[int, str]:
        """An HTTP GET on the worker's health server: (status, body)."""

        def fetch() -> tuple[int, str]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=3) as answer:
                    return answer.status, answer.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        return await asyncio.to_thread(fetch)

    async def metric(self, name: str) -> float:
        """One value from the worker's ``/metrics`` page."""
        _, page = await self.get("/metrics")
        found = re.search(rf"^{name} (\S+)$", page, re.MULTILINE)
        assert found, f"{name} not in /metrics"
        return float(found[1])


class Fleet:
    """Worker processes on one task queue and one mirror."""

    def __init__(self, temporal_target: str, database_url: str, logs: Path, count: int = 1) -> None:
        self.task_queue = f"faults-{uuid.uuid4().hex[:8]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DWF_")}
        env.update(
            PYTHONPATH=str(REPO),
            DWF_TEMPORAL_ADDRESS=temporal_target,
            DWF_TASK_QUEUE=self.task_queue,
            DWF_APP="tests.faults.app",
            DWF_DATABASE_URL=database_url,
            DWF_HTTP_HOST="127.0.0.1",
            DWF_SHUTDOWN_GRACE="5",
            DWF_LOG_FORMAT="json",
        )
        self.workers = [
            WorkerProcess({**env, "DWF_HTTP_PORT": str(free_port())}, logs, f"worker{n}")
            for n in range(count)
        ]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def kill(self) -> None:
        for worker in self.workers:
            worker.kill()

    def output(self) -> str:
        return "".join(worker.output() for worker in self.workers)


@pytest.fixture(name="fleets")
def fixture_fleets(tmp_path: Path) -> Any:
    started: list[Fleet] = []

    def make(temporal_target: str, database_url: str, count: int = 1) -> Fleet:
        fleet = Fleet(temporal_target, database_url, tmp_path, count)
        started.append(fleet)
        return fleet

    yield make
    for fleet in started:
        fleet.kill()


# -- driving instances ----------------------------------------------------------------------------


async def wait_for(probe: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Poll ``probe`` until it is true; returns the seconds it took (fails after ``timeout``)."""
    began = time.monotonic()
    last: BaseException | None = None
    while time.monotonic() - began < timeout:
        try:
            if await probe():
                return time.monotonic() - began
        except Exception as exc:
            last = exc
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")


class Driver:
    """Starts instances and completes their tasks, the way users would, whatever fails."""

    def __init__(self, client: WorkflowClient, engine: AsyncEngine, task_queue: str) -> None:
        self.client, self.engine, self.task_queue = client, engine, task_queue
        self.ids: list[str] = []
        self.completed: set[str] = set()
        self.refused_then_done = 0

    async def start(self, count: int) -> None:
        for n in range(count):
            handle = await self.client.start(
                faults_order, FaultOrder(item=f"item-{n}"), task_queue=self.task_queue
            )
            self.ids.append(handle.id)

    async def complete_tasks(self, stop: asyncio.Event) -> None:
        """Complete every pending task the mirror shows, until ``stop`` is set."""
        while not stop.is_set():
            try:
                async with self.engine.connect() as conn:
                    rows = (
                        await conn.execute(
                            select(TASKS.c.id, TASKS.c.workflow_id).where(TASKS.c.status == "pending")
                        )
                    ).all()
            except Exception:
                rows = []  # the mirror may be down: try again
            # Every pending row, also one tried before: a row repaired to pending (its first
            # completion was never recorded by Temporal) must be completed again.
            await asyncio.gather(*(self._complete(task_id, wf) for task_id, wf in rows[:20]))
            await asyncio.sleep(0.1)

    async def _complete(self, task_id: Any, workflow_id: str) -> None:
        handle = self.client.get_instance(workflow_id)
        try:
            await asyncio.wait_for(
                handle.complete_task(task_id, FaultApproval(ok=True), user="olga", groups=["ops"]), 20
            )
        except (TaskNotPendingError, TaskNotFoundError):
            self.completed.add(str(task_id))  # it went through in an earlier try
        except Exception:
            return  # a kill or an outage got in the way: the next round tries again
        else:
            self.completed.add(str(task_id))

    async def unfinished(self) -> str:
        """What the instances that have not completed look like (for a failure message)."""
        lines = []
        for workflow_id in self.ids:
            handle = self.client.temporal.get_workflow_handle(workflow_id)
            status = (await handle.describe()).status
            if status is not None and status.name == "COMPLETED":
                continue
            async with self.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(TASKS.c.id, TASKS.c.status).where(TASKS.c.workflow_id == workflow_id)
                    )
                ).all()
            try:
                held = [
                    (t.task_id, t.status.value)
                    for t in (await self.client.get_instance(workflow_id).state()).tasks
                ]
            except Exception as exc:
                held = [("query failed", repr(exc))]
            lines.append(f"{workflow_id} {status}: rows {rows}, workflow holds {held}")
        return "\n".join(lines)

    async def all_finished(self) -> bool:
        async def status(workflow_id: str) -> Any:
            return (await self.client.temporal.get_workflow_handle(workflow_id).describe()).status

        statuses = await asyncio.gather(*(status(w) for w in self.ids))
        return all(s is not None and s.name == "COMPLETED" for s in statuses)


@contextlib.asynccontextmanager
async def completing(driver: Driver) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(driver.complete_tasks(stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def counts(engine: AsyncEngine, ids: list[str]) -> dict[str, int]:
    """Rows per table for these instances."""
    found: dict[str, int] = {}
    async with engine.connect() as conn:
        for name, table in (("instances", INSTANCES), ("steps", STEPS), ("tasks", TASKS)):
            found[name] = int(
                await conn.scalar(select(func.count()).select_from(table).where(table.c.workflow_id.in_(ids)))
                or 0
            )
        found["completed"] = int(
            await conn.scalar(
                select(func.count())
                .select_from(INSTANCES)
                .where(INSTANCES.c.workflow_id.in_(ids), INSTANCES.c.status == WS.COMPLETED)
            )
            or 0
        )
    return found


async def retried_steps(engine: AsyncEngine, ids: list[str]) -> int:
    """Step rows that show more than one attempt (what a kill costs)."""
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(func.count()).select_from(STEPS).where(STEPS.c.workflow_id.in_(ids), STEPS.c.attempts > 1)
        )
    return int(found or 0)


async def converge(client: WorkflowClient, writer: MirrorWriter, ids: list[str], timeout: float) -> float:
    """Seconds until the audit of ``ids`` is clean (fails, listing mismatches, after ``timeout``)."""
    last: list[str] = []
    differing: list[str] = []

    async def clean() -> bool:
        report = await audit(client.temporal, writer, ids)
        last[:] = [str(m) for m in report.mismatches[:20]]
        differing[:] = list(dict.fromkeys(m.workflow_id for m in report.mismatches))
        return report.clean and report.checked == len(ids)

    try:
        return await wait_for(clean, timeout, "a clean audit")
    except AssertionError as exc:
        histories = [await _history(client, w) for w in differing[:2]]
        raise AssertionError("\n".join([str(exc), *last, *histories])) from None


async def _history(client: WorkflowClient, workflow_id: str) -> str:
    """A compact history (event id, time, type) for a failure message."""
    history = await client.temporal.get_workflow_handle(workflow_id).fetch_history()
    events = [
        f"{e.event_id} {e.event_time.ToDatetime().time()} {EventType.Name(e.event_type)[11:]}"
        for e in history.events
    ]
    return f"history of {workflow_id}:\n  " + "\n  ".join(events)


async def assert_exact_rows(engine: AsyncEngine, ids: list[str]) -> None:
    """One instance row each, three step rows (two machine steps, one human), one task row."""
    n = len(ids)
    assert await counts(engine, ids) == {"instances": n, "steps": 3 * n, "tasks": n, "completed": n}


async def prove_the_check_fails(client: WorkflowClient, writer: MirrorWriter, ids: list[str]) -> int:
    """Break three rows (delete a step, duplicate a task, a wrong status) and see audit report
    each; rebuild, and see it clean. Returns the mismatches the audit found."""
    victims = ids[:3]
    engine = writer.engine
    async with engine.begin() as conn:
        step_id = await conn.scalar(select(STEPS.c.id).where(STEPS.c.workflow_id == victims[0]).limit(1))
        task = (await conn.execute(select(TASKS).where(TASKS.c.workflow_id == victims[1]))).mappings().one()
        await conn.execute(delete(STEPS).where(STEPS.c.id == step_id))
        duplicate_id = uuid.uuid4()
        await conn.execute(insert(TASKS).values({**task, "id": duplicate_id}))
        await conn.execute(
            update(INSTANCES).where(INSTANCES.c.workflow_id == victims[2]).values(status=WS.FAILED)
        )
    report = await audit(client.temporal, writer, victims)
    found = {(m.table, m.row_id, m.column) for m in report.mismatches}
    assert ("workflow_step_executions", str(step_id), "*") in found
    assert ("workflow_human_tasks", str(duplicate_id), "*") in found
    assert any(t == "workflow_instances" and c == "status" for t, _, c in found)
    assert len(found) == 3, found
    await rebuild(client.temporal, writer, victims)
    after = await audit(client.temporal, writer, victims)
    assert after.clean, [str(m) for m in after.mismatches]
    return len(report.mismatches)


@pytest.fixture(name="postgres_database")
async def fixture_postgres_database(tmp_path: Path) -> AsyncIterator[str]:
    """A new database on the shared PostgreSQL server (dropped afterwards)."""
    factory = DatabaseFactory(tmp_path)
    yield await factory.create("postgresql")
    await factory.drop_all()


@pytest.fixture(name="mirror_writer_factory")
async def fixture_mirror_writer_factory() -> AsyncIterator[Callable[[str], Awaitable[MirrorWriter]]]:
    writers: list[MirrorWriter] = []

    async def make(url: str) -> MirrorWriter:
        writer = MirrorWriter.from_url(url)
        await writer.upgrade_schema()
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        await writer.close()


__all__ = [
    "Driver",
    "fixture_fleets",
    "fixture_mirror_writer_factory",
    "fixture_postgres_database",
    "fixture_private_postgres",
    "fixture_temporal",
    "Fleet",
    "PrivatePostgres",
    "PrivateTemporal",
    "assert_exact_rows",
    "completing",
    "converge",
    "counts",
    "create_engine",
    "figures",
    "prove_the_check_fails",
    "retried_steps",
    "wait_for",
]
