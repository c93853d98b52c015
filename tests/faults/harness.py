"""The fault suite's tools: private servers a test may stop, worker processes it may kill.

Its fixtures are registered in ``conftest``.

- :class:`Fleet` runs ``python -m worker`` processes (the operator's way, environment only)
  on one task queue and mirror, kills them with SIGKILL and starts them again.
- :class:`PrivateTemporal` is a dev server on its own port and database file, so a test can
  stop it and start it again on the same file (never the session's server).
- :class:`PrivatePostgres` is a PostgreSQL cluster of the test's own (initdb, pg_ctl as user
  postgres, its own port and socket directory), so a test can stop it (never the shared one).
- ``fault_run`` (a fixture) sets a case up: a mirror, a started fleet, a client and a
  :class:`~tests.faults.driving.Driver` (:class:`FaultRun`); :func:`settle` ends it: the audit
  clean without a rebuild, exact row counts, proof that the check can fail, the figures.
- ``tests/faults/driving.py`` drives the instances and checks the mirror afterwards.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table

from sdk import DevServer, WorkflowClient
from sdk._devserver import free_port
from sdk.mirror import (
    HumanTaskModel,
    MirrorWriter,
    StepExecutionModel,
    WorkflowInstanceModel,
)
from tests.faults.driving import Driver, assert_exact_rows, converge, prove_the_check_fails
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
        # The session's public keys stay: the workers verify the test client's signed commands.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DWF_") or k == "DWF_COMMAND_KEYS"}
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


@dataclass
class FaultRun:
    """One case's parts: the mirror's writer, the worker processes, a client and the driver."""

    client: WorkflowClient
    writer: MirrorWriter
    fleet: Fleet
    driver: Driver


@pytest.fixture(name="fault_run")
def fixture_fault_run(
    temporal: PrivateTemporal,
    fleets: Any,
    mirror_writer_factory: Callable[[str], Awaitable[MirrorWriter]],
) -> Callable[..., contextlib.AbstractAsyncContextManager[FaultRun]]:
    """``async with fault_run(database_url, count=1) as run``: a migrated mirror, ``count``
    worker processes started on it and on the private Temporal, a client and a driver."""

    @contextlib.asynccontextmanager
    async def make(database_url: str, *, count: int = 1) -> AsyncIterator[FaultRun]:
        writer = await mirror_writer_factory(database_url)
        fleet = fleets(temporal.target, database_url, count=count)
        fleet.start()
        client = await WorkflowClient.connect(
            temporal.target, database_url=database_url, task_queue=fleet.task_queue
        )
        try:
            yield FaultRun(client, writer, fleet, Driver(client, writer.engine, fleet.task_queue))
        finally:
            await client.close()

    return make


async def settle(
    run: FaultRun, case: str, *, timeout: float, recovered: float | None = None, **values: Any
) -> None:
    """End a case: the audit clean without a rebuild (waiting up to ``timeout`` s), exact row
    counts, proof that the check can fail, then the figures (``values`` first; a callable
    value is read last, e.g. a count of log lines that grows while the audit waits)."""
    ids = run.driver.ids
    converged = await converge(run.client, run.writer, ids, timeout)
    if recovered is not None:
        values["converged_after_recovery_s"] = f"{time.monotonic() - recovered:.1f}"
    await assert_exact_rows(run.writer.engine, ids)
    caught = await prove_the_check_fails(run.client, run.writer, ids)
    figures(
        case,
        **{k: v() if callable(v) else v for k, v in values.items()},
        audit_wait_s=f"{converged:.1f}",
        audit_before_rebuild="clean",
        corruptions_caught=caught,
        audit_after_rebuild="clean",
    )


__all__ = [
    "FaultRun",
    "Fleet",
    "PrivatePostgres",
    "PrivateTemporal",
    "WorkerProcess",
    "figures",
    "fixture_fault_run",
    "fixture_fleets",
    "fixture_mirror_writer_factory",
    "fixture_postgres_database",
    "fixture_private_postgres",
    "fixture_temporal",
    "settle",
]
