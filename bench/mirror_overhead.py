"""What the SDK and its SQL mirror cost: throughput, mirror lag and inbox query latency.

One process, one Temporal dev server (started here, stopped at the end):

1. ``plain``: the expense-approval scenario (validate activity, wait for an approval signal,
   pay activity) written directly with temporalio (``bench/plain_expense.py``), the pydantic
   data converter and the SDK's sandbox runner; N concurrent instances, each driver polls a
   query until its instance waits for the approval, signals it and awaits the result.
2. ``sdk+sqlite`` / ``sdk+postgresql``: ``examples.expense_approval`` through the SDK with the
   mirror on a temporary SQLite file, then on a fresh PostgreSQL database; each driver learns
   of its task from the mirror (one shared inbox poller, ``MirrorQueries.pending_tasks``),
   completes it with ``InstanceHandle.signal_complete_task`` and awaits the result.
   Then a few instances at a steady rate, to see the mirror's lag when nothing queues.
3. With the worker stopped, the task table is filled to ``--query-rows`` rows and the
   pending-tasks queries (``MirrorQueries.inbox`` and ``pending_tasks``) are timed.

Run from the repository root: ``.venv/bin/python bench/mirror_overhead.py [--quick]``.
See bench/README.md for what each figure means. Exit status 0 unless something failed
(the targets are informational).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

if not __package__:  # run as a script: make the repository root importable, for ``bench``
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.plain_expense import (
    PlainApproval,
    PlainExpense,
    PlainExpenseApproval,
    plain_pay_expense,
    plain_validate_expense,
)

# -- figures ----------------------------------------------------------------------------------

TARGET_RATIO = 0.8
TARGET_LAG_P95 = 0.100
TARGET_QUERY_P95 = 0.010
POLL_FIRST, POLL_FACTOR, POLL_CAP = 0.1, 1.5, 0.25  # per-driver polling of a Temporal query
PROBE_INTERVAL = 0.005  # end-to-end probes at light load
PROBE_INTERVAL_LOADED = 0.025  # during the throughput run, where lags are seconds: cheaper
TENANT = "bench"
APPROVER, APPROVER_GROUPS = "maria", ["managers"]


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (nan for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return "     -" if math.isnan(seconds) else f"{seconds * 1000:6.1f}"


def p50_p95(values: Sequence[float]) -> str:
    return f"{ms(quantile(values, 0.5))} / {ms(quantile(values, 0.95))} ms (n={len(values)})"


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "MISS")


def proc_cpu(pid: int | None, tick: float) -> float:
    """CPU seconds (user + system) of a process, from /proc (nan when unreadable)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick
    except (OSError, IndexError, ValueError):
        return math.nan


def tree_cpu(pid: int | None, tick: float) -> float:
    """CPU seconds of a process and its descendants (the dev server runs under a watchdog)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += proc_cpu(current, tick)
        try:
            with open(f"/proc/{current}/task/{current}/children") as f:
                pending += [int(child) for child in f.read().split()]
        except (OSError, ValueError):
            pass
    return total


@dataclass
class CpuSnapshot:
    wall: float
    process: float
    server: float
    machine_busy: float
    machine_total: float
    backends: dict[int, float]


class CpuMeter:
    """CPU seconds of this process, of the dev server, of this run's PostgreSQL backends, and
    of the whole machine (Linux /proc)."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def snapshot(self, backend_pids: Sequence[int] = ()) -> CpuSnapshot:
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            busy, total = (sum(values) - idle) / self.tick, sum(values) / self.tick
        except (OSError, ValueError, IndexError):
            busy = total = math.nan
        return CpuSnapshot(
            time.perf_counter(),
            time.process_time(),
            tree_cpu(self.server_pid, self.tick),
            busy,
            total,
            {pid: proc_cpu(pid, self.tick) for pid in backend_pids},
        )

    @staticmethod
    def describe(result: ThroughputResult, before: CpuSnapshot, after: CpuSnapshot) -> None:
        """Set ``result.cpu`` (text) and ``result.cpu_ms`` (ms per instance: process, server,
        postgres)."""
        wall = after.wall - before.wall
        proc = after.process - before.process
        server = after.server - before.server
        busy = after.machine_busy - before.machine_busy
        total = after.machine_total - before.machine_total
        # Backends alive at the end; one that started during the run counts from zero.
        postgres = sum(
            cpu - before.backends.get(pid, 0.0) for pid, cpu in after.backends.items() if cpu == cpu
        )
        other = busy - proc - server - postgres
        n = max(result.instances, 1)
        result.cpu_ms = (proc / n * 1000, server / n * 1000, postgres / n * 1000)
        pg = f", postgres backends {postgres:4.1f} s" if after.backends else ""
        result.cpu = (
            f"cpu: this process {proc:5.1f} s, dev server {server:5.1f} s{pg}"
            f" = {sum(result.cpu_ms):.0f} ms/instance; everything else on the machine "
            f"(other users) {other:5.1f} s; machine {100 * busy / total if total else math.nan:.0f}% "
            f"busy of {os.cpu_count() or 1} cores over {wall:.1f} s"
        )


async def backend_pids(engine: Any) -> list[int]:
    """PostgreSQL backends connected to this engine's database (none on SQLite)."""
    if engine.dialect.name != "postgresql":
        return []
    from sqlalchemy import text

    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))
        return [int(row[0]) for row in rows]


@dataclass
class ThroughputResult:
    name: str
    instances: int
    wall: float = math.nan
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu: str = ""
    cpu_ms: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    profile: str = ""
    waits: list[float] = field(default_factory=list)
    note: str = ""
    logs: str = ""

    @property
    def throughput(self) -> float:
        done = len(self.latencies)
        return done / self.wall if self.wall and done else math.nan


@dataclass
class LagSample:
    """Mirror figures over one phase."""

    metric: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    e2e: list[float] = field(default_factory=list)
    batch_write: list[float] = field(default_factory=list)
    attempt_write: list[float] = field(default_factory=list)


@dataclass
class MirrorResult:
    load: LagSample = field(default_factory=LagSample)
    light: LagSample = field(default_factory=LagSample)
    light_instances: int = 0
    poller: str = ""


@dataclass
class QueryResult:
    rows: int = 0
    seed_seconds: float = math.nan
    inbox: list[float] = field(default_factory=list)
    pending: list[float] = field(default_factory=list)
    inbox_rows: list[int] = field(default_factory=list)
    pending_rows: list[int] = field(default_factory=list)
    inbox_sql: list[float] = field(default_factory=list)  # of which inside the database driver
    pending_sql: list[float] = field(default_factory=list)
    inbox_statements: list[int] = field(default_factory=list)
    pending_statements: list[int] = field(default_factory=list)
    explain: list[str] = field(default_factory=list)


@dataclass
class ConfigResult:
    throughput: ThroughputResult
    mirror: MirrorResult | None = None
    queries: QueryResult | None = None


# -- drivers ----------------------------------------------------------------------------------


POLLS = Counter[str]()
"""Driver-side counts: query polls, and RPCs retried (an overloaded server times queries out)."""


async def poll(check: Callable[[], Awaitable[Any]], timeout: float) -> Any:
    """Call ``check`` until it returns something truthy: after 100 ms, then every 100-250 ms.

    An RPC error (under load: "query timed out before a worker could process it") counts as
    "not yet".
    """
    from temporalio.service import RPCError

    deadline = time.monotonic() + timeout
    delay = POLL_FIRST
    while True:
        await asyncio.sleep(delay)
        POLLS["calls"] += 1
        try:
            found = await check()
        except RPCError:
            POLLS["rpc retries"] += 1
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError("gave up polling")
        delay = min(POLL_CAP, delay * POLL_FACTOR)


async def retry_rpc(call: Callable[[], Awaitable[Any]], attempts: int = 6) -> Any:
    """``call()``, retried on RPC errors (timeouts of an overloaded server), with a short backoff."""
    from temporalio.service import RPCError

    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except RPCError:
            if attempt == attempts:
                raise
            POLLS["rpc retries"] += 1
            await asyncio.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def driver_note(kind: str, instances: int) -> str:
    parts = []
    if POLLS["calls"]:
        parts.append(f"{POLLS['calls'] / max(instances, 1):.1f} {kind} polls per instance")
    if POLLS["rpc retries"]:
        parts.append(f"{POLLS['rpc retries']} RPCs retried")
    return f" ({', '.join(parts)})" if parts else ""


async def start_once(start: Callable[[], Awaitable[Any]], existing: Callable[[], Any]) -> Any:
    """Start a workflow, retried on RPC errors; a retry that finds it started takes its handle."""
    from temporalio.exceptions import WorkflowAlreadyStartedError

    retried = False

    async def attempt() -> Any:
        nonlocal retried
        try:
            return await start()
        except WorkflowAlreadyStartedError:
            if not retried:
                raise
            return existing()
        finally:
            retried = True

    return await retry_rpc(attempt)


async def run_drivers(
    name: str,
    instances: int,
    driver: Callable[[int], Awaitable[float]],
    timeout: float,
    rate: float | None = None,
) -> ThroughputResult:
    """Run ``instances`` drivers at once (or ``rate`` starts per second); wall time is first
    start to last result."""
    result = ThroughputResult(name, instances)
    t0 = time.perf_counter()

    async def one(i: int) -> float | None:
        if rate:
            await asyncio.sleep(i / rate)
        started = time.perf_counter()
        try:
            result.waits.append(await asyncio.wait_for(driver(i), timeout))
        except Exception as exc:
            result.errors.append(f"{name} instance {i}: {type(exc).__name__}: {exc}")
            return None
        ended = time.perf_counter()
        result.latencies.append(ended - started)
        return ended

    ends = [end for end in await asyncio.gather(*(one(i) for i in range(instances))) if end is not None]
    result.wall = (max(ends) - t0) if ends else math.nan
    return result


async def history_profile(client: Any, workflow_ids: Sequence[str]) -> str:
    """Per instance: history events, workflow tasks, local activities, activities; WT timings."""
    from temporalio.api.enums.v1 import EventType

    counts: Counter[str] = Counter()
    sched_to_start: list[float] = []
    start_to_close: list[float] = []
    act_sched_to_start: list[float] = []
    for workflow_id in workflow_ids:
        handle = client.get_workflow_handle(workflow_id)
        times: dict[int, float] = {}
        async for event in handle.fetch_history_events():
            at = event.event_time.ToNanoseconds() / 1e9
            times[event.event_id] = at
            kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
            counts[kind] += 1
            counts["events"] += 1
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                attrs = event.workflow_task_started_event_attributes
                sched_to_start.append(at - times[attrs.scheduled_event_id])
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                attrs2 = event.workflow_task_completed_event_attributes
                start_to_close.append(at - times[attrs2.started_event_id])
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                attrs3 = event.activity_task_started_event_attributes
                act_sched_to_start.append(at - times[attrs3.scheduled_event_id])
    n = max(len(workflow_ids), 1)

    def per(kind: str) -> str:
        return f"{counts[kind] / n:.1f}"

    return (
        f"history per instance (sample of {len(workflow_ids)}): {per('events')} events, "
        f"{per('WORKFLOW_TASK_COMPLETED')} workflow tasks, {per('MARKER_RECORDED')} local activities, "
        f"{per('ACTIVITY_TASK_SCHEDULED')} activities, {per('TIMER_STARTED')} timers, "
        f"{per('WORKFLOW_EXECUTION_SIGNALED')} signals\n"
        f"      workflow task schedule-to-start {p50_p95(sched_to_start)}, "
        f"start-to-complete {p50_p95(start_to_close)}\n"
        f"      activity schedule-to-start {p50_p95(act_sched_to_start)}"
    )


def sample_ids(ids: Sequence[str], k: int) -> list[str]:
    step = max(1, len(ids) // max(k, 1))
    return list(ids[::step])[:k]


async def warm_up(name: str, driver: Callable[[int], Awaitable[float]], count: int, timeout: float) -> None:
    if count <= 0:
        return
    warm = await run_drivers(f"{name} warm-up", count, driver, timeout)
    if warm.errors:
        raise RuntimeError(f"warm-up of {name} failed: {warm.errors[0]}")


def worker_options(args: argparse.Namespace) -> dict[str, Any]:
    """Options every configuration's Worker gets (the same for all)."""
    from temporalio.worker import PollerBehaviorSimpleMaximum

    if not args.workflow_task_pollers:
        return {}
    return {"workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(args.workflow_task_pollers)}


# -- plain temporalio ---------------------------------------------------------------------------


async def run_plain(env: Env) -> ConfigResult:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from worker import sandbox_runner

    client: Client = env.plain_client
    task_queue = f"bench-plain-{env.run_id}"
    ids: list[str] = []

    def driver_for(prefix: str) -> Callable[[int], Awaitable[float]]:
        async def driver(i: int) -> float:
            workflow_id = f"{prefix}-{i:05d}"
            expense = PlainExpense(employee=f" Emp{i} ", amount=10 + i % 500, description="bench")
            handle = await start_once(
                lambda: client.start_workflow(
                    PlainExpenseApproval.run, expense, id=workflow_id, task_queue=task_queue
                ),
                lambda: client.get_workflow_handle_for(PlainExpenseApproval.run, workflow_id),
            )
            started = time.perf_counter()

            async def waiting() -> bool:
                return await handle.query(PlainExpenseApproval.waiting_for_approval)

            await poll(waiting, env.args.timeout)
            waited = time.perf_counter() - started
            decision = PlainApproval(approved=True, comment="ok")
            await retry_rpc(lambda: handle.signal(PlainExpenseApproval.approve, decision))
            outcome = await retry_rpc(handle.result)
            if outcome.status != "paid":
                raise RuntimeError(f"unexpected outcome {outcome}")
            ids.append(workflow_id)
            return waited

        return driver

    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[PlainExpenseApproval],
        activities=[plain_validate_expense, plain_pay_expense],
        workflow_runner=sandbox_runner(),
        **worker_options(env.args),
    )
    async with worker:
        await warm_up(
            "plain", driver_for(f"bench-plain-warm-{env.run_id}"), env.args.warmup, env.args.timeout
        )
        ids.clear()
        POLLS.clear()
        before = env.cpu.snapshot()
        result = await run_drivers(
            "plain", env.args.instances, driver_for(f"bench-plain-{env.run_id}"), env.args.timeout
        )
        result.note = driver_note("query", env.args.instances)
        env.cpu.describe(result, before, env.cpu.snapshot())
        result.profile = await history_profile(client, sample_ids(sorted(ids), 5))
    return ConfigResult(result)


# -- the SDK with the mirror ------------------------------------------------------------------


class InboxPoller:
    """The application's inbox: one ``pending_tasks`` query for everyone, every ``interval``.

    Drivers register the workflow id they wait for; each poll hands every newly seen pending
    task to its driver. It polls only while someone waits.
    """

    PAGE = 200

    def __init__(self, queries: Any, interval: float) -> None:
        self.queries = queries
        self.interval = interval
        self.waiting: dict[str, asyncio.Future[str]] = {}
        self.poll_seconds: list[float] = []
        self.rows = 0
        self.failures = 0

    def expect(self, workflow_id: str) -> asyncio.Future[str]:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting[workflow_id] = future
        return future

    async def run(self) -> None:
        while True:
            if self.waiting:
                started = time.perf_counter()
                try:
                    offset = 0
                    while True:
                        page = await self.queries.pending_tasks(
                            group=APPROVER_GROUPS[0], tenant_id=TENANT, limit=self.PAGE, offset=offset
                        )
                        self.rows += len(page.items)
                        for row in page.items:
                            future = self.waiting.pop(row.workflow_id, None)
                            if future is not None and not future.done():
                                future.set_result(str(row.id))
                        if len(page.items) < self.PAGE:
                            break
                        offset += self.PAGE
                except Exception as exc:
                    self.failures += 1
                    if self.failures == 1:
                        print(f"    inbox poll failed: {type(exc).__name__}: {exc}", flush=True)
                self.poll_seconds.append(time.perf_counter() - started)
            await asyncio.sleep(self.interval)

    def reset(self) -> None:
        self.poll_seconds.clear()
        self.rows = 0

    def describe(self) -> str:
        polls = len(self.poll_seconds)
        return (
            f"inbox poller: {polls} polls every {self.interval * 1000:.0f} ms, "
            f"{self.rows / max(polls, 1):.1f} rows/poll, poll time {p50_p95(self.poll_seconds)}"
        )


class CompletionProber:
    """Watches sampled task rows until they read ``completed``: one query for all of them
    every ``interval``; each lag is timed from when the client sent that workflow's signal."""

    def __init__(self, engine: Any, sent: dict[str, float], model: Any, interval: float = PROBE_INTERVAL):
        from sqlalchemy import select

        self.engine = engine
        self.sent = sent
        self.interval = interval
        self.completed = select(model.id).where(model.status == "completed")
        self.failures = 0
        self.id_column = model.id
        self.watched: dict[uuid.UUID, tuple[str, list[float], asyncio.Future[None]]] = {}

    async def watch(self, workflow_id: str, task_id: str, into: list[float]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.watched[uuid.UUID(task_id)] = (workflow_id, into, future)
        await future

    async def run(self) -> None:
        while True:
            if self.watched:
                stmt = self.completed.where(self.id_column.in_(list(self.watched)))
                try:
                    async with self.engine.connect() as conn:
                        done = (await conn.execute(stmt)).scalars().all()
                except Exception as exc:
                    self.failures += 1
                    if self.failures == 1:
                        print(f"    end-to-end probe failed: {type(exc).__name__}: {exc}", flush=True)
                    done = []
                seen = time.perf_counter()
                for task_id in done:
                    workflow_id, into, future = self.watched.pop(task_id)
                    into.append(seen - self.sent[workflow_id])
                    if not future.done():
                        future.set_result(None)
            await asyncio.sleep(self.interval)


def bench_writer_class() -> type:
    """A MirrorWriter that also times its writes and keeps batch lags by event type."""
    from sdk.mirror import MirrorWriter

    class BenchWriter(MirrorWriter):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.batch_write: list[float] = []
            self.attempt_write: list[float] = []
            self.lag_by_kind: dict[str, list[float]] = defaultdict(list)

        async def write_batch(self, batch: Any, events: Sequence[Any]) -> None:
            started = time.perf_counter()
            await super().write_batch(batch, events)
            self.batch_write.append(time.perf_counter() - started)
            now = datetime.now(UTC)
            for event in events:
                self.lag_by_kind[type(event).__name__].append((now - event.timestamp).total_seconds())

        async def step_attempt_started(self, **kwargs: Any) -> None:
            started = time.perf_counter()
            await super().step_attempt_started(**kwargs)
            self.attempt_write.append(time.perf_counter() - started)
            carried = kwargs.get("carried")
            if carried is not None:  # events the step's activity carried, now committed
                now = datetime.now(UTC)
                for event in carried[1]:
                    self.lag_by_kind[type(event).__name__].append((now - event.timestamp).total_seconds())

        async def step_attempt_finished(self, **kwargs: Any) -> None:
            started = time.perf_counter()
            await super().step_attempt_finished(**kwargs)
            self.attempt_write.append(time.perf_counter() - started)

    return BenchWriter


async def run_sdk(env: Env, backend: str, database_url: str) -> ConfigResult:

    from examples.expense_approval import Expense, ExpenseOutcome, expense_approval
    from sdk import InstanceHandle, TaskNotPendingError, WorkflowClient
    from sdk.mirror import HumanTaskModel, MirrorQueries, create_engine, session_factory
    from worker import create_worker

    name = f"sdk+{backend}"
    args = env.args
    engine_options = {}
    if args.writer_pool_size:
        engine_options = {"pool_size": args.writer_pool_size, "max_overflow": 0}
    writer = bench_writer_class().from_url(database_url, **engine_options)
    read_engine = create_engine(database_url)
    # The application's client, connected with the mirror (as the README says to): its task
    # commands are checked against the task row, not with a state query.
    client = WorkflowClient(env.sdk_client.temporal, database_url=database_url)
    try:
        await writer.upgrade_schema()
        definition_ids = await writer.register_definitions([expense_approval])
        queries = MirrorQueries(session_factory(read_engine))
        task_queue = f"bench-{backend}-{env.run_id}"
        poller = InboxPoller(queries, args.poll_interval)
        mirror = MirrorResult()
        ids: list[str] = []
        prober = CompletionProber(read_engine, env.clock.sent, HumanTaskModel)

        async def complete(handle: InstanceHandle[Any], task_id: str) -> None:
            """signal_complete_task, retried on RPC errors (its state check is a query)."""
            retried = False

            async def attempt() -> None:
                nonlocal retried
                try:
                    await handle.signal_complete_task(
                        task_id, {"approved": True, "comment": "ok"}, user=APPROVER, groups=APPROVER_GROUPS
                    )
                except TaskNotPendingError:
                    if not retried:  # an earlier attempt's signal did arrive
                        raise
                finally:
                    retried = True

            await retry_rpc(attempt)

        def driver_for(
            prefix: str, e2e: list[float] | None = None, probe_every: int = 1
        ) -> Callable[[int], Awaitable[float]]:
            async def driver(i: int) -> float:
                workflow_id = f"{prefix}-{i:05d}"
                expense = Expense(employee=f" Emp{i} ", amount=10 + i % 500, description="bench")
                found = poller.expect(workflow_id) if args.sdk_wait == "mirror" else None
                handle: InstanceHandle[Any] = await start_once(
                    lambda: client.start(
                        expense_approval,
                        expense,
                        id=workflow_id,
                        tenant_id=TENANT,
                        created_by=f"user-{i % 50}",
                        task_queue=task_queue,
                    ),
                    lambda: InstanceHandle(
                        client.temporal.get_workflow_handle(workflow_id, result_type=ExpenseOutcome),
                        expense_approval,
                        tenant_id=TENANT,
                        queries=client.queries,
                    ),
                )
                started = time.perf_counter()
                if found is not None:
                    task_id = await found
                else:

                    async def pending() -> str | None:
                        state = await handle.state()
                        return state.pending_tasks[0].task_id if state.pending_tasks else None

                    task_id = await poll(pending, args.timeout)
                waited = time.perf_counter() - started
                await complete(handle, task_id)
                probe = None
                if e2e is not None and i % probe_every == 0:
                    probe = asyncio.create_task(
                        asyncio.wait_for(prober.watch(workflow_id, task_id, e2e), args.timeout)
                    )
                outcome = await retry_rpc(handle.result)
                if probe is not None:
                    await probe
                if outcome.status != "paid":
                    raise RuntimeError(f"unexpected outcome {outcome}")
                ids.append(workflow_id)
                return waited

            return driver

        def take(sample: LagSample) -> None:
            """Move what the writer collected into ``sample``, leaving the writer empty."""
            sample.metric = list(writer.metrics.lag_seconds)
            sample.by_kind = {k: list(v) for k, v in writer.lag_by_kind.items()}
            sample.batch_write = list(writer.batch_write)
            sample.attempt_write = list(writer.attempt_write)
            writer.metrics.lag_seconds.clear()
            writer.lag_by_kind.clear()
            writer.batch_write.clear()
            writer.attempt_write.clear()

        worker = create_worker(
            client,
            task_queue=task_queue,
            workflows=[expense_approval],
            mirror=writer,
            **worker_options(args),
        )
        poll_task = asyncio.create_task(poller.run())
        probe_task = asyncio.create_task(prober.run())
        try:
            async with worker:
                warm = driver_for(f"bench-{backend}-warm-{env.run_id}")
                await warm_up(name, warm, args.warmup, args.timeout)
                take(LagSample())
                poller.reset()
                ids.clear()
                # 1. Throughput: every instance at once; a sample is probed end to end.
                prober.interval = PROBE_INTERVAL_LOADED
                POLLS.clear()
                before = env.cpu.snapshot(await backend_pids(writer.engine))
                probe_every = max(1, args.instances // max(args.lag_samples, 1))
                load = driver_for(f"bench-{backend}-{env.run_id}", mirror.load.e2e, probe_every)
                result = await run_drivers(name, args.instances, load, args.timeout)
                env.cpu.describe(result, before, env.cpu.snapshot(await backend_pids(writer.engine)))
                take(mirror.load)
                result.note = driver_note("state", args.instances)
                mirror.poller = poller.describe() if args.sdk_wait == "mirror" else ""
                result.profile = await history_profile(client.temporal, sample_ids(sorted(ids), 5))
                # 2. Lag at a light, steady load: every instance probed.
                prober.interval = PROBE_INTERVAL
                if args.lag_instances > 0:
                    light = driver_for(f"bench-{backend}-light-{env.run_id}", mirror.light.e2e)
                    paced = await run_drivers(
                        f"{name} light", args.lag_instances, light, args.timeout, rate=args.lag_rate
                    )
                    result.errors += paced.errors
                    mirror.light_instances = len(paced.latencies)
                    take(mirror.light)
        finally:
            for task in (poll_task, probe_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        queries_result = None
        if args.query_rows > 0:
            definition_id = definition_ids[expense_approval.workflow_type]
            queries_result = await query_bench(
                env, backend, writer.engine, read_engine, queries, definition_id
            )
        return ConfigResult(result, mirror, queries_result)
    finally:
        await client.close()
        await read_engine.dispose()
        await writer.close()


# -- query latency with many task rows -------------------------------------------------------

N_TENANTS, N_GROUPS, N_USERS = 10, 40, 1000
TENANT_WEIGHTS = [1 / (k + 1) for k in range(N_TENANTS)]  # tenant-0 is the biggest


def user_groups(user: int) -> list[str]:
    return sorted({f"group-{(user * m + c) % N_GROUPS:02d}" for m, c in ((1, 0), (7, 3), (13, 5))})


def synthetic_rows(
    rng: random.Random, count: int, definition_id: uuid.UUID, form_schema: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Instances, step rows and tasks: varied tenants, assignees, groups, statuses, due dates."""
    from sdk import StepStatus, StepType, TaskStatus, WorkflowStatus

    now = datetime.now(UTC)
    instances, steps, tasks = [], [], []
    tenants = rng.choices(range(N_TENANTS), TENANT_WEIGHTS, k=count)
    for k in range(count):
        instance_id, step_id, task_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        tenant = f"tenant-{tenants[k]}"
        created = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
        user = rng.randrange(N_USERS)
        roll = rng.random()
        status = (
            TaskStatus.PENDING
            if roll < 0.25
            else TaskStatus.COMPLETED
            if roll < 0.9
            else TaskStatus.CANCELED
            if roll < 0.95
            else TaskStatus.EXPIRED
        )
        done = status is not TaskStatus.PENDING
        completed_at = created + timedelta(hours=rng.uniform(0.1, 72)) if done else None
        if rng.random() < 0.3:  # assigned to a person (sometimes within a group)
            assignee_id = f"user-{user:04d}"
            assignee_group = rng.choice(user_groups(user)) if rng.random() < 0.5 else None
        else:
            assignee_id, assignee_group = None, f"group-{rng.randrange(N_GROUPS):02d}"
        due_at = created + timedelta(days=rng.uniform(1, 14)) if rng.random() < 0.8 else None
        workflow_id = f"seed-{instance_id}"
        wf_status, step_status = {
            TaskStatus.PENDING: (WorkflowStatus.WAITING, StepStatus.WAITING),
            TaskStatus.COMPLETED: (WorkflowStatus.COMPLETED, StepStatus.SUCCEEDED),
            TaskStatus.CANCELED: (WorkflowStatus.CANCELED, StepStatus.CANCELED),
            TaskStatus.EXPIRED: (WorkflowStatus.FAILED, StepStatus.FAILED),
        }[status]
        amount = round(rng.uniform(5, 5000), 2)
        expense = {"employee": f"emp{user}", "amount": amount, "description": "seeded", "flaky_bank": False}
        instances.append(
            {
                "id": instance_id,
                "definition_id": definition_id,
                "workflow_name": "expense_approval",
                "workflow_version": "1.0.0",
                "status": wf_status,
                "current_step": None if done else "manager_approval",
                "context_data": {},
                "metadata": {"input": expense, "workflow_type": "expense_approval@1.0.0"},
                "error": None,
                "started_at": created,
                "completed_at": completed_at,
                "tenant_id": tenant,
                "created_by": f"user-{rng.randrange(N_USERS):04d}",
                "workflow_id": workflow_id,
                "run_id": str(instance_id),
                "task_queue": "seed",
                "last_event_seq": 3,
                "created_at": created,
                "updated_at": completed_at or created,
            }
        )
        completer = f"user-{rng.randrange(N_USERS):04d}" if status is TaskStatus.COMPLETED else None
        steps.append(
            {
                "id": step_id,
                "instance_id": instance_id,
                "step_name": "manager_approval",
                "step_type": StepType.HUMAN,
                "status": step_status,
                "input_data": expense,
                "output_data": {"approved": True, "comment": None} if completer else None,
                "error": None,
                "started_at": created,
                "completed_at": completed_at,
                "assigned_to": assignee_id or assignee_group,
                "completed_by": completer,
                "step_seq": 2,
                "attempts": 0,
                "workflow_id": workflow_id,
                "created_at": created,
                "updated_at": completed_at or created,
            }
        )
        tasks.append(
            {
                "id": task_id,
                "instance_id": instance_id,
                "step_execution_id": step_id,
                "step_name": "manager_approval",
                "title": f"Approve {amount:.2f} for emp{user}",
                "description": "seeded",
                "form_schema": form_schema,
                "assignee_id": assignee_id,
                "assignee_group": assignee_group,
                "due_at": due_at,
                "reminder_at": due_at - timedelta(days=1) if due_at else None,
                "status": status.value,
                "completed_at": completed_at,
                "completed_by": completer,
                "tenant_id": tenant,
                "workflow_id": workflow_id,
                "claimed_by": None,
                "claimed_at": None,
                "form_data": {"approved": True, "comment": None} if completer else None,
                "comment": None,
                "require_claim": False,
                "created_at": created,
                "updated_at": completed_at or created,
            }
        )
    return instances, steps, tasks


async def seed(engine: Any, total: int, definition_id: uuid.UUID, rng: random.Random) -> tuple[int, float]:
    """Fill workflow_human_tasks up to ``total`` rows (Core inserts in chunks); ANALYZE."""
    from sqlalchemy import func, insert, select, text

    from examples.expense_approval import Approval
    from sdk.mirror import HumanTaskModel, StepExecutionModel, WorkflowInstanceModel

    tables = [m.__table__ for m in (WorkflowInstanceModel, StepExecutionModel, HumanTaskModel)]
    started = time.perf_counter()
    async with engine.connect() as conn:
        existing = (await conn.execute(select(func.count()).select_from(HumanTaskModel))).scalar_one()
    missing = max(0, total - existing)
    form_schema = Approval.model_json_schema()
    chunk = 5000
    for offset in range(0, missing, chunk):
        rows = synthetic_rows(rng, min(chunk, missing - offset), definition_id, form_schema)
        async with engine.begin() as conn:
            for table, table_rows in zip(tables, rows, strict=True):
                await conn.execute(insert(table), table_rows)
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(HumanTaskModel))).scalar_one()
    return count, time.perf_counter() - started


async def explain(engine: Any, call: Callable[[], Awaitable[Any]]) -> list[str]:
    """EXPLAIN ANALYZE every statement ``call`` runs (captured as the driver receives it)."""
    from sqlalchemy import event

    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await call()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    lines: list[str] = []
    async with engine.connect() as conn:
        for statement, parameters in captured:
            plan = await conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters
            )
            lines.append(
                "    "
                + re.sub(r"^SELECT (\S+, ){3,}\S+ FROM", "SELECT <columns> FROM", " ".join(statement.split()))
            )
            lines.append(f"    parameters: {parameters}")
            lines += ["      " + row[0] for row in plan]
    return lines


async def query_bench(
    env: Env, backend: str, write_engine: Any, read_engine: Any, queries: Any, definition_id: uuid.UUID
) -> QueryResult:
    rng = random.Random(4)
    result = QueryResult()
    print(f"  [{backend}] seeding workflow_human_tasks to {env.args.query_rows:,} rows ...", flush=True)
    result.rows, result.seed_seconds = await seed(write_engine, env.args.query_rows, definition_id, rng)

    def inbox_call() -> Callable[[], Awaitable[Any]]:
        user = rng.randrange(N_USERS)
        tenant = f"tenant-{rng.choices(range(N_TENANTS), TENANT_WEIGHTS)[0]}"
        return lambda: queries.inbox(f"user-{user:04d}", user_groups(user), tenant_id=tenant)

    def pending_call() -> Callable[[], Awaitable[Any]]:
        group = f"group-{rng.randrange(N_GROUPS):02d}"
        tenant = f"tenant-{rng.choices(range(N_TENANTS), TENANT_WEIGHTS)[0]}"
        return lambda: queries.pending_tasks(group=group, tenant_id=tenant)

    from sqlalchemy import event

    in_driver = [0.0, 0.0, 0]  # statement start, seconds inside the driver, statements

    def before(*_: Any) -> None:
        in_driver[0] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        in_driver[1] += time.perf_counter() - in_driver[0]
        in_driver[2] += statement.lstrip().upper().startswith("SELECT")  # not SQLite's BEGIN

    for make, times, rows, sql, statements in (
        (inbox_call, result.inbox, result.inbox_rows, result.inbox_sql, result.inbox_statements),
        (pending_call, result.pending, result.pending_rows, result.pending_sql, result.pending_statements),
    ):
        for _ in range(10):  # warm the pool, the statement caches and the database's buffers
            await make()()
        event.listen(read_engine.sync_engine, "before_cursor_execute", before)
        event.listen(read_engine.sync_engine, "after_cursor_execute", after)
        try:
            for _ in range(env.args.query_runs):
                call = make()
                in_driver[1:] = [0.0, 0]
                started = time.perf_counter()
                page = await call()
                times.append(time.perf_counter() - started)
                rows.append(len(page.items))
                sql.append(in_driver[1])
                statements.append(in_driver[2])
        finally:
            event.remove(read_engine.sync_engine, "before_cursor_execute", before)
            event.remove(read_engine.sync_engine, "after_cursor_execute", after)
    if backend == "postgresql":
        # The biggest tenant: the case most likely to miss an index.
        user = 7
        result.explain.append(f"  EXPLAIN inbox('user-0007', {user_groups(user)}, tenant_id='tenant-0'):")
        result.explain += await explain(
            read_engine, lambda: queries.inbox("user-0007", user_groups(user), tenant_id="tenant-0")
        )
        result.explain.append("  EXPLAIN pending_tasks(group='group-03', tenant_id='tenant-0'):")
        result.explain += await explain(
            read_engine, lambda: queries.pending_tasks(group="group-03", tenant_id="tenant-0")
        )
    return result


# -- setup, report, main ------------------------------------------------------------------------


class LogDigest:
    """A logging filter: counts warnings by logger, shows the first few of each on one line.

    Under load, attempts time out and temporalio logs each with a traceback; the count is the
    figure, the tracebacks are noise.
    """

    SHOWN = 3

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def filter(self, record: Any) -> bool:
        self.counts[record.name] += 1
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()[:200]} -- {type(exc).__name__}: {exc}"
            record.args = ()
            record.exc_info = None
        return self.counts[record.name] <= self.SHOWN

    def since(self, before: Counter[str]) -> str:
        delta = self.counts - before
        return ", ".join(f"{name} x{n}" for name, n in delta.most_common()) or "none"


LOGS = LogDigest()


def quiet_runtime() -> Any:
    """A temporalio runtime whose core logs errors only: an overloaded run otherwise prints a
    "workflow task duration exceeded 5 seconds" line per slow task (the history profile has the
    durations)."""
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))


@dataclass
class Env:
    args: argparse.Namespace
    run_id: str
    cpu: CpuMeter
    plain_client: Any
    sdk_client: Any
    clock: Any


def signal_clock() -> Any:
    """A client interceptor that notes when each workflow's last signal was sent."""
    from temporalio.client import Interceptor, OutboundInterceptor, SignalWorkflowInput

    class SignalClock(Interceptor):
        def __init__(self) -> None:
            self.sent: dict[str, float] = {}

        def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
            sent = self.sent

            class Outbound(OutboundInterceptor):
                async def signal_workflow(self, input: SignalWorkflowInput) -> None:
                    sent[input.id] = time.perf_counter()
                    await super().signal_workflow(input)

            return Outbound(next)

    return SignalClock()


async def create_database(admin_url: str, name: str) -> str:
    from sqlalchemy import make_url, text

    from sdk.mirror import create_engine

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, name: str) -> None:
    from sqlalchemy import text

    from sdk.mirror import create_engine

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


def target(values: Sequence[float], limit: float) -> str:
    p95 = quantile(values, 0.95)
    return verdict(None if math.isnan(p95) else p95 < limit)


def report(args: argparse.Namespace, results: dict[str, ConfigResult]) -> list[str]:
    """Print the summary; return the problems (errors) found."""
    problems: list[str] = []
    plain = results.get("plain")
    base = plain.throughput.throughput if plain else math.nan
    rule = "=" * 104
    print(f"\n{rule}\nSUMMARY: {args.instances} concurrent instances per configuration; SDK drivers find")
    how = "the mirror (one shared inbox query)" if args.sdk_wait == "mirror" else "the state query"
    print(f"their task via {how} and complete it with signal_complete_task.\n{rule}")
    print("Throughput, first start to last result (target: SDK/plain >= 0.80), and CPU per instance")
    print(
        f"  {'configuration':<16} {'done':>5} {'wall s':>7} {'inst/s':>7} {'ratio':>6} {'':6}"
        f"{'CPU ms/inst: process + server + postgres = total':>50}  {'CPU ratio':>9}"
    )
    base_cpu = sum(plain.throughput.cpu_ms) if plain else math.nan
    for name, res in results.items():
        t = res.throughput
        problems += t.errors
        proc, server, pg = t.cpu_ms
        cpu = f"{proc:6.1f} + {server:6.1f} + {pg:5.1f} = {proc + server + pg:6.1f}"
        if name == "plain":
            print(f"  {name:<16} {len(t.latencies):>5} {t.wall:7.1f} {t.throughput:7.2f} {'':13}{cpu:>50}")
            continue
        ratio = t.throughput / base
        ok = None if math.isnan(ratio) else ratio >= TARGET_RATIO
        done = len(t.latencies)
        print(
            f"  {name:<16} {done:>5} {t.wall:7.1f} {t.throughput:7.2f} {ratio:6.2f} {verdict(ok):6}{cpu:>50}"
            f"  {base_cpu / (proc + server + pg):9.2f}"
        )
    print(
        "  (CPU ratio = plain's CPU per instance / this one's: the throughput ratio to expect when the\n"
        "   machine is CPU-bound and all of it is the benchmark's; compare it with the measured ratio)"
    )
    mirrored = [(name, res.mirror) for name, res in results.items() if res.mirror is not None]
    if mirrored:
        print("\nMirror lag, p50 / p95 (target: p95 < 100 ms)")
        for name, m in mirrored:
            for label, phase in (
                (f"{args.instances} at once", m.load),
                (f"{m.light_instances} at {args.lag_rate:g}/s", m.light),
            ):
                print(
                    f"  {name:<16} {label:<14} writer.metrics.lag_seconds {p50_p95(phase.metric)}  "
                    f"{target(phase.metric, TARGET_LAG_P95)}"
                )
                print(
                    f"  {'':<16} {'':<14} signal sent -> row completed {p50_p95(phase.e2e)}  "
                    f"{target(phase.e2e, TARGET_LAG_P95)}"
                )
    queried = [(name, res.queries) for name, res in results.items() if res.queries is not None]
    if queried:
        print(
            "\nPending-task query latency, one MirrorQueries call, p50 / p95 "
            "(target on PostgreSQL: p95 < 10 ms)"
        )
        for name, q in queried:
            for label, times in (("inbox", q.inbox), ("pending_tasks", q.pending)):
                print(
                    f"  {name:<16} {label:<14} {q.rows:>8,} task rows  {p50_p95(times)}  "
                    f"{target(times, TARGET_QUERY_P95)}"
                )
    return problems


def report_rounds(rounds: dict[str, list[ThroughputResult]]) -> None:
    """Throughput of every round, and the ratio of the medians (the machine's speed drifts)."""
    plain = rounds.get("plain", [])
    base = statistics.median(t.throughput for t in plain) if plain else math.nan
    print("\nThroughput by round (configurations interleaved), inst/s; ratio of the medians")
    for name, runs in rounds.items():
        each = " ".join(f"{t.throughput:6.2f}" for t in runs)
        med = statistics.median(t.throughput for t in runs)
        line = f"  {name:<16} {each}   median {med:6.2f}"
        if name != "plain" and plain:
            ratio = med / base
            per_round = " ".join(
                f"{t.throughput / p.throughput:.2f}" for t, p in zip(runs, plain, strict=False)
            )
            line += f"   ratio {ratio:.2f} {verdict(ratio >= TARGET_RATIO)}  (per round: {per_round})"
        print(line)


def print_lag(label: str, sample: LagSample) -> None:
    print(f"    mirror lag, {label}:")
    print(f"      writer.metrics.lag_seconds (all samples)  {p50_p95(sample.metric)}")
    for kind in (
        "WorkflowStarted",
        "StepStarted",
        "StepCompleted",
        "HumanTaskCreated",
        "HumanTaskCompleted",
        "WorkflowCompleted",
    ):
        print(f"      batch lag {kind:<31} {p50_p95(sample.by_kind.get(kind, []))}")
    print(f"      signal sent -> task row completed         {p50_p95(sample.e2e)}")
    print(f"      write time of an event batch                {p50_p95(sample.batch_write)}")
    print(f"      write time of a step attempt (start or end) {p50_p95(sample.attempt_write)}")


def print_config(name: str, res: ConfigResult) -> None:
    t = res.throughput
    print(
        f"\n-- {name}: {len(t.latencies)}/{t.instances} instances in {t.wall:.1f} s = "
        f"{t.throughput:.2f} instances/s",
        flush=True,
    )
    print(f"    instance latency start->result {p50_p95(t.latencies)}")
    print(f"    start -> driver found the approval wait {p50_p95(t.waits)}{t.note}")
    print(f"    {t.cpu}")
    print(f"    {t.profile}")
    print(f"    warnings logged (timed-out attempts and the like): {t.logs}")
    for error in t.errors[:5]:
        print(f"    ERROR {error}")
    if res.mirror is not None:
        m = res.mirror
        print_lag(f"{t.instances} at once", m.load)
        if m.poller:
            print(f"    {m.poller}")
        print_lag(f"{m.light_instances} instances started at a steady rate", m.light)
    if res.queries is not None:
        q = res.queries
        print(f"    seeded to {q.rows:,} task rows in {q.seed_seconds:.1f} s")
        for label, times, rows, sql, statements in (
            ("inbox(user, 3 groups, tenant)", q.inbox, q.inbox_rows, q.inbox_sql, q.inbox_statements),
            ("pending_tasks(group, tenant)", q.pending, q.pending_rows, q.pending_sql, q.pending_statements),
        ):
            print(
                f"    {label:<30} {p50_p95(times)}; {mean(rows):.1f} rows/page, "
                f"{mean(statements):.2f} statements/call, in the driver {p50_p95(sql)}"
            )
        for line in q.explain:
            print(line)


async def connect_with_retry(connect: Callable[[], Awaitable[Any]], attempts: int = 20) -> Any:
    for attempt in range(attempts):
        try:
            return await connect()
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.25)
    raise AssertionError("unreachable")


async def amain(args: argparse.Namespace) -> int:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from sdk import DevServer, WorkflowClient

    run_id = uuid.uuid4().hex[:8]
    results: dict[str, ConfigResult] = {}
    rounds: dict[str, list[ThroughputResult]] = {}
    failures: list[str] = []
    pg_name = f"dwf_bench_{run_id}"
    pg_created: list[str] = []
    tmpdir = __import__("tempfile").TemporaryDirectory(prefix="dwf-bench-")
    print(
        f"mirror_overhead: {args.instances} instances, {args.query_rows:,} query rows, "
        f"SDK drivers wait via {args.sdk_wait}, run {run_id}",
        flush=True,
    )
    try:
        async with DevServer() as server:
            print(f"  dev server pid {server.pid} on {server.target}", flush=True)
            clock = signal_clock()
            runtime = quiet_runtime()
            plain_client = await connect_with_retry(
                lambda: Client.connect(server.target, data_converter=pydantic_data_converter, runtime=runtime)
            )
            sdk_client = await connect_with_retry(
                lambda: WorkflowClient.connect(server.target, interceptors=[clock], runtime=runtime)
            )
            env = Env(args, run_id, CpuMeter(server.pid), plain_client, sdk_client, clock)
            configs: list[tuple[str, Callable[[], Awaitable[ConfigResult]]]] = []
            if not args.skip_plain:
                configs.append(("plain", lambda: run_plain(env)))
            # Each round writes a fresh mirror database: the first round's query timing fills
            # its own with 100,000 task rows, which would slow the writes of a later round.
            round_no = 0
            if not args.skip_sqlite:

                async def sqlite() -> ConfigResult:
                    url = f"sqlite+aiosqlite:///{tmpdir.name}/mirror-{round_no}.db"
                    return await run_sdk(env, "sqlite", url)

                configs.append(("sdk+sqlite", sqlite))
            if not args.skip_postgres:

                async def postgres() -> ConfigResult:
                    name = f"{pg_name}_{round_no}"
                    url = await create_database(args.postgres_url, name)
                    pg_created.append(name)
                    return await run_sdk(env, "postgresql", url)

                configs.append(("sdk+postgresql", postgres))
            for round_no in range(args.rounds):
                if round_no == 1:  # later rounds time the throughput only
                    args.query_rows, args.lag_instances = 0, 0
                # Rotate the order each round: the dev server slows as its history grows, and
                # a configuration always run last would pay for it.
                shift = round_no % len(configs) if configs else 0
                for name, run in configs[shift:] + configs[:shift]:
                    label = f"{name} (round {round_no + 1} of {args.rounds})" if args.rounds > 1 else name
                    print(f"\n== {label} ...", flush=True)
                    logs_before = Counter(LOGS.counts)
                    try:
                        result = await run()
                        result.throughput.logs = LOGS.since(logs_before)
                    except Exception as exc:
                        import traceback

                        traceback.print_exc()
                        failures.append(f"{label}: {type(exc).__name__}: {exc}")
                        continue
                    results.setdefault(name, result)
                    rounds.setdefault(name, []).append(result.throughput)
                    print_config(name, result)
            await sdk_client.close()
            print("\nStopping the dev server.", flush=True)
    finally:
        for name in pg_created:
            try:
                await drop_database(args.postgres_url, name)
            except Exception as exc:
                failures.append(f"dropping database {name}: {exc}")
        tmpdir.cleanup()
    failures += report(args, results)
    if args.rounds > 1:
        report_rounds(rounds)
    if failures:
        print(f"\n{len(failures)} problem(s):")
        for problem in failures[:20]:
            print(f"  {problem}")
    return 1 if failures else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--instances", type=int, default=300, help="concurrent instances per configuration")
    parser.add_argument("--query-rows", type=int, default=100_000, help="task rows for the query timing")
    parser.add_argument("--query-runs", type=int, default=200, help="timed runs of each query")
    parser.add_argument("--skip-postgres", action="store_true", help="no PostgreSQL configuration")
    parser.add_argument("--skip-sqlite", action="store_true", help="no SQLite configuration")
    parser.add_argument("--skip-plain", action="store_true", help="no plain baseline (for profiling the SDK)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "DWF_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
        help="maintenance database; a fresh database is created next to it and dropped at the end",
    )
    parser.add_argument(
        "--sdk-wait",
        choices=("mirror", "state"),
        default="mirror",
        help="how SDK drivers learn of their task: the mirror's inbox (default) or the state query",
    )
    parser.add_argument("--poll-interval", type=float, default=0.05, help="inbox poll interval, seconds")
    parser.add_argument(
        "--lag-samples", type=int, default=20, help="instances probed end to end during the throughput run"
    )
    parser.add_argument(
        "--lag-instances", type=int, default=20, help="instances of the light-load lag run (all probed)"
    )
    parser.add_argument("--lag-rate", type=float, default=4.0, help="starts per second of the lag run")
    parser.add_argument(
        "--writer-pool-size",
        type=int,
        default=0,
        help="connections of the mirror writer's engine (default: SQLAlchemy's pool, 5 + 10 overflow)",
    )
    parser.add_argument(
        "--workflow-task-pollers",
        type=int,
        default=0,
        help="workers' maximum concurrent workflow-task polls (default: temporalio's, 5)",
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed instances before each run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the configurations this many times, interleaved (later rounds: throughput only)",
    )
    parser.add_argument("--timeout", type=float, default=240.0, help="per-instance timeout, seconds")
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 instances, 10,000 rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.instances = min(args.instances, 30)
        args.query_rows = min(args.query_rows, 10_000)
        args.warmup = min(args.warmup, 3)
        args.lag_samples = min(args.lag_samples, 10)
        args.lag_instances = min(args.lag_instances, 10)
    return args


def main() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="  [log] %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(LOGS)
    args = parse_args()
    code = asyncio.run(amain(args))
    time.sleep(1.0)  # let temporalio's Rust threads wind down (docs/temporal-facts.md)
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
