"""Scale and horizontal figures: many waiting instances, big task tables, several workers.

Three commands, each against its own Temporal dev server (started here) and a fresh PostgreSQL
database (created next to ``--postgres-url``, dropped at the end):

- ``waiting``: ``--instances`` (10,000) expense approvals started at once against one worker
  process, all waiting on their human task: the time until every task row is pending in the
  mirror, the worker's peak RSS and what each waiting instance costs in it (in and beyond the
  sticky workflow cache), then the time to complete them all (every task completed through
  ``signal_complete_task``, at most ``--window`` at once, until every instance row reads
  completed);
- ``queries``: the inbox and pending-task queries timed at 10,000, 100,000 and 1,000,000 task
  rows (``--rows``), the table grown with ``INSERT ... SELECT`` in SQL (``scale_queries``);
- ``horizontal``: 1, 2 and 4 worker processes (``--workers``) on one task queue against one
  PostgreSQL mirror: ``--instances`` full approvals each, throughput, CPU, and an audit of
  a sample of the instances against Temporal's histories.

Run from the repository root, e.g. ``.venv/bin/python bench/scale.py waiting --instances 1000``.
The machine's load average is printed with every figure: a shared machine's figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

if not __package__:  # run as a script: make the repository root importable, for ``bench``
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.figures import APPROVER, APPROVER_GROUPS, TENANT, loadavg, p50_p95, verdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_RSS = 1 << 30  # the worker's peak RSS with 10,000 waiting instances
CACHED_KIB = 176
"""Worker RSS per instance in the sticky cache, KiB: ``waiting --instances 1000`` (all cached)."""


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def proc_cpu(pid: int) -> float:
    from bench.cpu import proc_cpu as cpu

    return cpu(pid, os.sysconf("SC_CLK_TCK"))


class Workers:
    """Worker processes (``bench.worker_proc``) on one task queue, stopped by their pids."""

    def __init__(self, target: str, task_queue: str, database_url: str, count: int, max_cached: int) -> None:
        self.args = [target, task_queue, database_url, str(max_cached)]
        self.count = count
        self.procs: list[subprocess.Popen[str]] = []

    async def __aenter__(self) -> Workers:
        for _ in range(self.count):
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.worker_proc", *self.args],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for proc in self.procs:
            line = await asyncio.to_thread(proc.stdout.readline) if proc.stdout else ""
            if line.strip() != "ready":
                raise RuntimeError(f"worker process {proc.pid} did not start")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                await asyncio.to_thread(proc.wait, 60)
            except subprocess.TimeoutExpired:
                proc.kill()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def cpu(self) -> float:
        return sum(proc_cpu(pid) for pid in self.pids)


async def bounded(count: int, concurrency: int, one: Any) -> list[str]:
    """Run ``one(i)`` for every i below ``count``, ``concurrency`` at a time; the errors."""
    errors: list[str] = []
    queue = iter(range(count))

    async def lane() -> None:
        for i in queue:
            try:
                await one(i)
            except Exception as exc:
                errors.append(f"{i}: {type(exc).__name__}: {exc}")

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return errors


async def count_rows(engine: Any, model: Any, **where: Any) -> int:
    from sqlalchemy import func, select

    stmt = select(func.count()).select_from(model)
    for column, value in where.items():
        stmt = stmt.where(getattr(model, column) == value)
    async with engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def wait_count(engine: Any, model: Any, expected: int, timeout: float, **where: Any) -> float:
    """Poll until ``expected`` rows match; the time it took."""
    started = time.perf_counter()
    while True:
        if await count_rows(engine, model, **where) >= expected:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{model.__tablename__}: fewer than {expected} rows matching {where}")
        await asyncio.sleep(0.5)


class Setup:
    """A dev server, a fresh PostgreSQL database with the mirror's schema, and a client."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.name = f"dwf_scale_{uuid.uuid4().hex[:8]}"

    async def __aenter__(self) -> Setup:
        from bench.environment import connect_with_retry, create_database, quiet_runtime
        from examples.expense_approval import expense_approval
        from sdk import DevServer, WorkflowClient
        from sdk.mirror import MirrorWriter, create_engine

        self.server = DevServer()
        self.server.start()
        self.url = await create_database(self.args.postgres_url, self.name)
        writer = MirrorWriter.from_url(self.url)
        await writer.upgrade_schema()
        await writer.register_definitions([expense_approval])
        self.writer = writer
        self.engine = create_engine(self.url)
        temporal = await connect_with_retry(
            lambda: WorkflowClient.connect(self.server.target, runtime=quiet_runtime())
        )
        self.client = WorkflowClient(
            temporal.temporal, database_url=self.url, signing_key=os.environ.get("DWF_SIGNING_KEY")
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        from bench.environment import drop_database

        await self.client.close()
        await self.engine.dispose()
        await self.writer.close()
        self.server.stop()
        await drop_database(self.args.postgres_url, self.name)


async def start_all(setup: Setup, prefix: str, task_queue: str, count: int, concurrency: int) -> list[str]:
    from examples.expense_approval import Expense, expense_approval

    async def one(i: int) -> None:
        await setup.client.start(
            expense_approval,
            Expense(employee=f" Emp{i} ", amount=10 + i % 500, description="scale"),
            id=f"{prefix}-{i:06d}",
            tenant_id=TENANT,
            created_by=f"user-{i % 50}",
            task_queue=task_queue,
        )

    return await bounded(count, concurrency, one)


RESEND_AFTER = 330.0
"""Seconds after which a task still pending has its signal sent again (and counted).

Longer than a signed command's age limit (the worker keyring's ``max_age``, five minutes by
default): a signal still queued behind the worker's backlog is not lost, and sending it again
sooner only adds signals the worker must handle (120 s sent 10,719 extra signals for 3,000
tasks). Past the limit, a signal still unhandled will be refused, so sending it again is what a
user would do."""


async def complete_all(
    setup: Setup, concurrency: int, window: int, timeout: float
) -> tuple[list[str], int, int]:
    """Complete every pending task of the tenant, as listed by the mirror, with at most
    ``window`` approved instances not yet ended at once (``concurrency`` signals in flight);
    the errors, how many signals were sent again (an instance still unfinished ``RESEND_AFTER``
    after its signal: the workflow refused or never saw it) and how many of those found the
    task completed meanwhile (its first signal was handled late: not an error). An instance
    that ends other than completed, or is still running ``timeout`` seconds after the first
    signal, is an error.

    The window is how a crowd of approvers works through an inbox, and it keeps the approved
    instances within the worker's sticky cache: 10,000 signals sent at once each need a
    workflow task of an instance the cache let go (a replay), and each instance's next task
    (the payment's result) finds it gone again, so every instance is replayed twice or more."""
    from sqlalchemy import select

    from sdk import TaskNotPendingError, WorkflowStatus
    from sdk._types import ENDED_STATUSES
    from sdk.mirror import MirrorQueries, WorkflowInstanceModel, session_factory

    queries = MirrorQueries(session_factory(setup.engine))
    rows: list[Any] = []
    while True:
        page = await queries.pending_tasks(
            group=APPROVER_GROUPS[0], tenant_id=TENANT, limit=1000, offset=len(rows)
        )
        rows += page.items
        if len(page.items) < 1000:
            break
    errors: list[str] = []
    resent = late = completed = 0
    # workflow id -> (the end the mirror read, once it reads one; set when it does)
    unfinished: dict[str, tuple[list[str], asyncio.Event]] = {}
    slots = asyncio.Semaphore(window)
    signals = asyncio.Semaphore(concurrency)
    deadline = time.perf_counter() + timeout

    async def approve(row: Any) -> None:
        nonlocal late
        handle = setup.client.get_instance(row.workflow_id, tenant_id=TENANT)
        async with signals:
            try:
                await handle.signal_complete_task(
                    str(row.id), {"approved": True, "comment": "ok"}, user=APPROVER, groups=APPROVER_GROUPS
                )
            except TaskNotPendingError:
                late += 1

    async def one(row: Any) -> None:
        nonlocal resent, completed
        ended: list[str] = []
        finished = asyncio.Event()
        unfinished[row.workflow_id] = (ended, finished)
        try:
            await approve(row)
            while not finished.is_set():
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"still unfinished {timeout:.0f} s after the first signal")
                try:
                    await asyncio.wait_for(finished.wait(), min(RESEND_AFTER, left))
                except TimeoutError:
                    if time.perf_counter() < deadline:
                        resent += 1
                        await approve(row)
            if ended != [WorkflowStatus.COMPLETED]:
                raise RuntimeError(f"ended {ended}")
            completed += 1
        except Exception as exc:
            errors.append(f"{row.workflow_id}: {type(exc).__name__}: {exc}")
        finally:
            unfinished.pop(row.workflow_id, None)
            slots.release()

    async def watch() -> None:
        """Every 0.25 s, which of the unfinished instances the mirror reads ended; a progress
        line every minute. A failed read is reported and tried again."""
        began = last = time.perf_counter()
        while True:
            await asyncio.sleep(0.25)
            if time.perf_counter() - last >= 60:
                last = time.perf_counter()
                print(
                    f"    {last - began:.0f} s: {completed:,} of {len(rows):,} completed, "
                    f"{len(errors)} errors; load {loadavg()}",
                    flush=True,
                )
            ids = list(unfinished)
            if not ids:
                continue
            stmt = select(WorkflowInstanceModel.workflow_id, WorkflowInstanceModel.status).where(
                WorkflowInstanceModel.workflow_id.in_(ids), WorkflowInstanceModel.status.in_(ENDED_STATUSES)
            )
            try:
                async with setup.engine.connect() as conn:
                    found = (await conn.execute(stmt)).all()
            except Exception as exc:
                print(f"    watch: {type(exc).__name__}: {exc} (trying again)", flush=True)
                continue
            for workflow_id, status in found:
                if workflow_id in unfinished:
                    ended, finished = unfinished[workflow_id]
                    ended.append(status)
                    finished.set()

    watcher = asyncio.create_task(watch())
    lanes: list[asyncio.Task[None]] = []
    try:
        for row in rows:
            await slots.acquire()
            lanes.append(asyncio.create_task(one(row)))
        await asyncio.gather(*lanes)
    finally:
        watcher.cancel()
    return errors, resent, late


async def waiting(args: argparse.Namespace) -> int:
    from sdk import WorkflowStatus
    from sdk.mirror import HumanTaskModel, WorkflowInstanceModel

    run = uuid.uuid4().hex[:6]
    task_queue = f"scale-{run}"
    print(f"scale waiting: {args.instances:,} instances, one worker; load average {loadavg()}", flush=True)
    async with (
        Setup(args) as setup,
        Workers(setup.server.target, task_queue, setup.url, 1, args.max_cached) as workers,
    ):
        pid = workers.pids[0]
        await asyncio.sleep(1.0)
        base = proc_status(pid)
        cpu0 = workers.cpu()
        started = time.perf_counter()
        errors = await start_all(setup, f"scale-{run}", task_queue, args.instances, args.concurrency)
        started_rpc = time.perf_counter() - started
        await wait_count(
            setup.engine, HumanTaskModel, args.instances - len(errors), args.timeout, status="pending"
        )
        to_wait = time.perf_counter() - started
        cpu1 = workers.cpu()
        held = proc_status(pid)
        cached = min(args.instances, args.max_cached or 1000)
        print(
            f"  started {args.instances:,} ({len(errors)} errors): start RPCs done in "
            f"{started_rpc:.1f} s, "
            f"every task row pending after {to_wait:.1f} s ({args.instances / to_wait:.1f} inst/s); "
            f"worker CPU {1000 * (cpu1 - cpu0) / args.instances:.1f} ms/instance; load {loadavg()}",
            flush=True,
        )
        grown = held["VmRSS"] - base["VmRSS"]
        beyond = args.instances - cached
        print(
            f"  worker RSS: {base['VmRSS'] / 2**20:.0f} MiB idle, {held['VmRSS'] / 2**20:.0f} MiB with "
            f"{args.instances:,} waiting (sticky cache holds up to {cached:,}): "
            f"{grown / args.instances / 1024:.0f} KiB per waiting instance"
            + (
                f"; at {CACHED_KIB} KiB per cached instance (measured with 1,000 waiting), "
                f"{(grown / 1024 - cached * CACHED_KIB) / beyond:.0f} KiB per instance beyond the cache"
                if beyond > 0
                else ""
            ),
            flush=True,
        )
        started = time.perf_counter()
        completion_errors, resent, late = await complete_all(
            setup, args.concurrency, args.window, args.timeout
        )
        errors += completion_errors
        await wait_count(
            setup.engine,
            WorkflowInstanceModel,
            args.instances - len(errors),
            args.timeout,
            status=WorkflowStatus.COMPLETED,
        )
        done = time.perf_counter() - started
        cpu2 = workers.cpu()
        peak = proc_status(pid)["VmHWM"]
    print(
        f"  completed them all in {done:.1f} s ({args.instances / done:.1f} inst/s, at most "
        f"{args.window} approved and unfinished at once; {resent} signals sent again after "
        f"{RESEND_AFTER:.0f} s, {late} finding the task completed meanwhile); "
        f"worker CPU {1000 * (cpu2 - cpu1) / args.instances:.1f} ms/instance; "
        f"load {loadavg()}"
    )
    print(
        f"  worker peak RSS {peak / 2**20:.0f} MiB (target < 1 GiB) {verdict(peak < TARGET_RSS)}; "
        f"errors {len(errors)}"
    )
    for error in errors[:5]:
        print(f"    ERROR {error}")
    return 1 if errors else 0


async def horizontal(args: argparse.Namespace) -> int:
    from sdk.mirror import audit

    print(
        f"scale horizontal: {args.instances} approvals per configuration, workers {args.workers}; "
        f"load average {loadavg()}",
        flush=True,
    )
    failures = 0
    rows = []
    async with Setup(args) as setup:
        for count in args.workers:
            run = uuid.uuid4().hex[:6]
            task_queue = f"horizontal-{count}-{run}"
            async with Workers(setup.server.target, task_queue, setup.url, count, args.max_cached) as workers:
                latencies: list[float] = []
                ids: list[str] = []

                def one(
                    i: int,
                    q: str = task_queue,
                    n: int = count,
                    lat: list[float] = latencies,
                    done: list[str] = ids,
                ) -> Any:
                    return _approval(setup, args, f"h{n}-{q}-{i:05d}", q, lat, done)

                cpu0, started = workers.cpu(), time.perf_counter()
                errors = await bounded(args.instances, args.instances, one)
                wall = time.perf_counter() - started
                cpu = workers.cpu() - cpu0
                sample = sorted(ids)[:: max(1, len(ids) // args.audit_sample)][: args.audit_sample]
                report = await audit(setup.client.temporal, setup.writer, sample)
                failures += len(errors) + len(report.mismatches)
                rows.append(
                    (count, len(ids), wall, cpu, latencies, report.checked, report.clean, loadavg(), errors)
                )
                print(
                    f"  {count} worker(s): {len(ids)}/{args.instances} in {wall:.1f} s = "
                    f"{len(ids) / wall:.2f} inst/s; workers' CPU {1000 * cpu / max(len(ids), 1):.1f} "
                    f"ms/instance; latency {p50_p95(latencies)}; audit of {report.checked}: "
                    f"{'clean' if report.clean else report.mismatches[:3]}; load {loadavg()}",
                    flush=True,
                )
                for error in errors[:3]:
                    print(f"    ERROR {error}")
    base = rows[0][1] / rows[0][2] if rows else 0.0
    print("\nworkers  inst/s  speed-up  workers' CPU ms/inst  audit")
    for count, done, wall, cpu, _lat, checked, clean, load, _errors in rows:
        print(
            f"  {count:>5}  {done / wall:6.2f}  {done / wall / base:8.2f}  {1000 * cpu / max(done, 1):20.1f}"
            f"  {checked} {'clean' if clean else 'MISMATCH'}  (load {load})"
        )
    return 1 if failures else 0


async def _approval(
    setup: Setup,
    args: argparse.Namespace,
    workflow_id: str,
    task_queue: str,
    latencies: list[float],
    ids: list[str],
) -> None:
    """One full approval: start, find the task in the mirror, complete it, await the result."""
    from examples.expense_approval import Expense, ExpenseOutcome, expense_approval
    from sdk import InstanceHandle

    began = time.perf_counter()
    handle: InstanceHandle[Any] = await setup.client.start(
        expense_approval,
        Expense(employee=" Emp ", amount=10 + len(ids) % 500, description="h"),
        id=workflow_id,
        tenant_id=TENANT,
        created_by="bench",
        task_queue=task_queue,
    )
    task_id = await _pending_task(setup, workflow_id, args.timeout)
    await handle.signal_complete_task(task_id, {"approved": True}, user=APPROVER, groups=APPROVER_GROUPS)
    outcome = await handle.result()
    if not isinstance(outcome, ExpenseOutcome) or outcome.status != "paid":
        raise RuntimeError(f"unexpected outcome {outcome}")
    latencies.append(time.perf_counter() - began)
    ids.append(workflow_id)


async def _pending_task(setup: Setup, workflow_id: str, timeout: float) -> str:
    """The instance's pending task id, read from the mirror (polled)."""
    from sqlalchemy import select

    from sdk.mirror import HumanTaskModel

    stmt = select(HumanTaskModel.id).where(
        HumanTaskModel.workflow_id == workflow_id, HumanTaskModel.status == "pending"
    )
    deadline = time.perf_counter() + timeout
    while True:
        async with setup.engine.connect() as conn:
            found = (await conn.execute(stmt)).scalar_one_or_none()
        if found is not None:
            return str(found)
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{workflow_id}: no pending task")
        await asyncio.sleep(0.1)


def positive(raw: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {raw!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("command", choices=("waiting", "queries", "horizontal"))
    parser.add_argument("--instances", type=int, default=0, help="10,000 (waiting) or 300 (horizontal)")
    parser.add_argument("--concurrency", type=positive, default=200, help="start / complete RPCs at once")
    parser.add_argument(
        "--window",
        type=positive,
        default=500,
        help="waiting: approved instances not yet completed at once (default 500, half the sticky cache)",
    )
    parser.add_argument("--max-cached", type=int, default=0, help="worker's sticky cache size (default 1000)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2, 4], help="horizontal: process counts"
    )
    parser.add_argument("--audit-sample", type=int, default=30, help="horizontal: instances audited each")
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--query-runs", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "DWF_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args(argv)
    if not args.instances:
        args.instances = 10_000 if args.command == "waiting" else 300
    return args


def main() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="  [log] %(name)s: %(message)s")
    args = parse_args()
    from sdk.runtime import dev_signing_key

    dev_signing_key()  # clients and worker processes share one key (the environment carries it)
    if args.command == "queries":
        from bench.scale_queries import queries

        code = asyncio.run(queries(args))
    else:
        code = asyncio.run(waiting(args) if args.command == "waiting" else horizontal(args))
    time.sleep(1.0)
    sys.exit(code)


if __name__ == "__main__":
    main()
