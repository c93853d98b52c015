"""The SDK with its SQL mirror: throughput, the mirror's lag under load and at light load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from bench.cpu import backend_pids
from bench.drivers import (
    POLLS,
    driver_note,
    history_profile,
    poll,
    retry_rpc,
    run_drivers,
    sample_ids,
    start_once,
    warm_up,
    worker_options,
)
from bench.environment import Env
from bench.figures import (
    APPROVER,
    APPROVER_GROUPS,
    PROBE_INTERVAL,
    PROBE_INTERVAL_LOADED,
    TENANT,
    ConfigResult,
    LagSample,
    MirrorResult,
    p50_p95,
)
from bench.query_latency import query_bench


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

        async def write_batch(self, batch: Any, events: Sequence[Any], **kwargs: Any) -> bool:
            started = time.perf_counter()
            committed: bool = await super().write_batch(batch, events, **kwargs)
            self.batch_write.append(time.perf_counter() - started)
            now = datetime.now(UTC)
            for event in events:
                self.lag_by_kind[type(event).__name__].append((now - event.timestamp).total_seconds())
            return committed

        async def step_attempt_started(self, **kwargs: Any) -> bool:
            started = time.perf_counter()
            committed: bool = await super().step_attempt_started(**kwargs)
            self.attempt_write.append(time.perf_counter() - started)
            carried = kwargs.get("carried")
            if carried is not None:  # events the step's activity carried, now committed
                now = datetime.now(UTC)
                for event in carried[1]:
                    self.lag_by_kind[type(event).__name__].append((now - event.timestamp).total_seconds())
            return committed

        async def step_attempt_finished(self, **kwargs: Any) -> bool:
            started = time.perf_counter()
            committed: bool = await super().step_attempt_finished(**kwargs)
            self.attempt_write.append(time.perf_counter() - started)
            return committed

    return BenchWriter


VARIANTS = {
    "nocheck": "the completion verifier off (activities/_verify.py: one state query per completed "
    "task, one history read per instance end, 5 s later)",
    "noverify": "signals not verified (the signed-commands work: one local activity per signal)",
    "eager": "eager workflow start: the client asks the server to hand the first workflow task "
    "to the worker in its own process (temporalio's request_eager_start)",
    "local": "the example's machine steps as local activities, as @machine_step(local=True) runs "
    "them: no activity task, no workflow task of their own",
    "contexts": "temporalio's serialization contexts computed for every payload of every activation "
    "(what the worker skips when it has no payload codec and no external storage)",
    "passthrough": "the example module passed through the workflow sandbox "
    "(create_worker(sandbox_passthrough=[...])): imported once, not once per workflow run",
}
"""Experiment variants of the SDK configuration: what one part costs, measured by leaving it out.
Each is a monkeypatch undone when its run ends, except ``passthrough``: a worker option."""


EAGER = Counter[str]()
"""Starts of the ``eager`` variant the server answered with the first workflow task, or not."""


@contextlib.contextmanager
def variant_patch(variant: str) -> Iterator[None]:
    """Leave out what ``variant`` names, for one run."""
    if variant in ("", "passthrough"):
        yield
        return
    if variant == "nocheck":
        from activities._publish import EventPublisher

        target: Any = EventPublisher
        name = "_check_completions"
        replacement: Any = lambda self, *args: None  # noqa: E731
    elif variant == "noverify":
        from sdk._commands import TaskCommands

        async def unverified(self: Any, action: str, payload: dict[str, Any]) -> None:
            # Still yield once, as awaiting the local activity did: a signal is applied before
            # the other jobs of its activation, and the publish that made its task visible to
            # the workflow may be among them (without the yield, "no task" is the answer).
            from temporalio import workflow

            await workflow.wait_condition(lambda: True)

        target, name, replacement = TaskCommands, "verify_recorded", unverified
    elif variant == "eager":
        from temporalio.client import Client

        plain_start = Client.start_workflow

        async def eager_start(self: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("request_eager_start", True)
            handle = await plain_start(self, *args, **kwargs)
            EAGER["eager" if getattr(handle, "__temporal_eagerly_started", False) else "not eager"] += 1
            return handle

        target, name, replacement = Client, "start_workflow", eager_start
    elif variant == "contexts":
        import worker._build as build

        target, name, replacement = build, "_contexts_matter", lambda client: True
    elif variant == "local":
        import dataclasses

        from sdk import _steps

        regular_run = _steps.run_machine_step

        async def run_local(step: Any, args: list[Any]) -> Any:
            # The example's steps are defined once; the workflow code (in the sandbox) reaches
            # this passthrough module's function on each call, so every step runs local.
            local_options = dataclasses.replace(step.options, local=True)
            return await regular_run(dataclasses.replace(step, options=local_options), args)

        target, name, replacement = _steps, "run_machine_step", run_local
    else:
        raise ValueError(f"unknown variant {variant!r}: one of {sorted(VARIANTS)}")
    original = target.__dict__[name]
    setattr(target, name, replacement)
    try:
        yield
    finally:
        setattr(target, name, original)


async def run_sdk(env: Env, backend: str, database_url: str, variant: str = "") -> ConfigResult:
    with variant_patch(variant):
        return await _run_sdk(env, backend, database_url, variant)


async def _run_sdk(env: Env, backend: str, database_url: str, variant: str) -> ConfigResult:

    from examples.expense_approval import Expense, ExpenseOutcome, expense_approval
    from sdk import InstanceHandle, TaskNotPendingError, WorkflowClient
    from sdk.mirror import HumanTaskModel, MirrorQueries, create_engine, session_factory
    from worker import create_worker

    name = f"sdk+{backend}" + (f"/{variant}" if variant else "")
    args = env.args
    engine_options = {}
    if args.writer_pool_size:
        engine_options = {"pool_size": args.writer_pool_size, "max_overflow": 0}
    writer = bench_writer_class().from_url(database_url, **engine_options)
    read_engine = create_engine(database_url)
    # The application's client, connected with the mirror (as the README says to): its task
    # commands are checked against the task row, not with a state query.
    client = WorkflowClient(
        env.sdk_client.temporal, database_url=database_url, signing_key=os.environ.get("DWF_SIGNING_KEY")
    )
    try:
        await writer.upgrade_schema()
        definition_ids = await writer.register_definitions([expense_approval])
        queries = MirrorQueries(session_factory(read_engine))
        task_queue = f"bench-{backend}{variant}-{env.run_id}"
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
        ) -> Callable[[int], Awaitable[tuple[float, float]]]:
            async def driver(i: int) -> tuple[float, float]:
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
                approved = time.perf_counter()
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
                return waited, time.perf_counter() - approved

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
            sandbox_passthrough=[expense_approval.fn.__module__] if variant == "passthrough" else (),
            **worker_options(args),
        )
        poll_task = asyncio.create_task(poller.run())
        probe_task = asyncio.create_task(prober.run())
        try:
            async with worker:
                warm = driver_for(f"bench-{backend}{variant}-warm-{env.run_id}")
                await warm_up(name, warm, args.warmup, args.timeout)
                take(LagSample())
                poller.reset()
                ids.clear()
                # 1. Throughput: every instance at once; a sample is probed end to end.
                prober.interval = PROBE_INTERVAL_LOADED
                POLLS.clear()
                before = env.cpu.snapshot(await backend_pids(writer.engine))
                probe_every = max(1, args.instances // max(args.lag_samples, 1))
                load = driver_for(f"bench-{backend}{variant}-{env.run_id}", mirror.load.e2e, probe_every)
                result = await run_drivers(name, args.instances, load, args.timeout)
                env.cpu.describe(result, before, env.cpu.snapshot(await backend_pids(writer.engine)))
                take(mirror.load)
                result.note = driver_note("state", args.instances)
                if variant == "eager":
                    result.note += f"; eager starts: {dict(EAGER)}"
                    EAGER.clear()
                mirror.poller = poller.describe() if args.sdk_wait == "mirror" else ""
                result.profile = await history_profile(
                    client.temporal, sample_ids(sorted(ids), 20), mirror.load.temporal_queueing
                )
                # 2. Lag at a light, steady load: every instance probed.
                prober.interval = PROBE_INTERVAL
                if args.lag_instances > 0:
                    light = driver_for(f"bench-{backend}{variant}-light-{env.run_id}", mirror.light.e2e)
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
