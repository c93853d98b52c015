"""The baseline: the expense scenario in plain temporalio (``bench/plain_expense.py``).

Three ways a plain driver learns that its instance waits for the approval:

- ``list`` (configuration ``plain``): the way a plain temporalio application lists pending
  work, since Temporal keeps no table of tasks: the workflow sets a search attribute while it
  waits (``BenchAwaitingApproval``) and one shared lister runs a visibility query
  (``list_workflows``) every ``--poll-interval``, like the SDK's inbox poller on the mirror;
- ``nolist`` (configuration ``plain-nolist``): never asks; the driver signals the approval right
  after the start (Temporal buffers the signal until the workflow reads it). The upper bound of
  plain temporalio: no discovery at all, one workflow task fewer per instance;
- ``query``: each driver polls a workflow query (the benchmark's earlier baseline).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

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
from bench.figures import ConfigResult, p50_p95
from bench.plain_expense import (
    AWAITING_APPROVAL,
    PlainApproval,
    PlainExpense,
    PlainExpenseApproval,
    plain_pay_expense,
    plain_validate_expense,
)


async def register_search_attribute(client: Any) -> None:
    """Add ``BenchAwaitingApproval`` to the dev server's namespace (once per server)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.service import RPCError

    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={AWAITING_APPROVAL.name: IndexedValueType.INDEXED_VALUE_TYPE_BOOL},
            )
        )
    except RPCError as exc:
        if "already" not in str(exc).lower():
            raise


class VisibilityLister:
    """The plain application's inbox: one visibility query for everyone, every ``interval``."""

    def __init__(self, client: Any, task_queue: str, interval: float) -> None:
        self.client = client
        self.query = (
            f'TaskQueue = "{task_queue}" AND ExecutionStatus = "Running" AND {AWAITING_APPROVAL.name} = true'
        )
        self.interval = interval
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.poll_seconds: list[float] = []
        self.rows = 0
        self.failures = 0

    def expect(self, workflow_id: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[workflow_id] = future
        return future

    async def run(self) -> None:
        while True:
            if self.waiting:
                started = time.perf_counter()
                try:
                    async for execution in self.client.list_workflows(self.query, page_size=1000):
                        self.rows += 1
                        future = self.waiting.pop(execution.id, None)
                        if future is not None and not future.done():
                            future.set_result(None)
                except Exception as exc:
                    self.failures += 1
                    if self.failures == 1:
                        print(f"    visibility list failed: {type(exc).__name__}: {exc}", flush=True)
                self.poll_seconds.append(time.perf_counter() - started)
            await asyncio.sleep(self.interval)

    def reset(self) -> None:
        self.poll_seconds.clear()
        self.rows = 0

    def describe(self) -> str:
        polls = len(self.poll_seconds)
        return (
            f"visibility lister: {polls} list calls every {self.interval * 1000:.0f} ms, "
            f"{self.rows / max(polls, 1):.1f} rows/call, call time {p50_p95(self.poll_seconds)}"
        )


async def run_plain(env: Env, variant: str = "list") -> ConfigResult:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from worker import sandbox_runner

    client: Client = env.plain_client
    task_queue = f"bench-plain-{variant}-{env.run_id}"
    ids: list[str] = []
    lister = VisibilityLister(client, task_queue, env.args.poll_interval)
    if variant == "list":
        await register_search_attribute(client)

    def driver_for(prefix: str) -> Callable[[int], Awaitable[tuple[float, float]]]:
        async def driver(i: int) -> tuple[float, float]:
            workflow_id = f"{prefix}-{i:05d}"
            expense = PlainExpense(
                employee=f" Emp{i} ", amount=10 + i % 500, description="bench", listed=variant == "list"
            )
            found = lister.expect(workflow_id) if variant == "list" else None
            handle = await start_once(
                lambda: client.start_workflow(
                    PlainExpenseApproval.run, expense, id=workflow_id, task_queue=task_queue
                ),
                lambda: client.get_workflow_handle_for(PlainExpenseApproval.run, workflow_id),
            )
            started = time.perf_counter()
            if found is not None:
                await found
            elif variant == "query":

                async def waiting() -> bool:
                    return await handle.query(PlainExpenseApproval.waiting_for_approval)

                await poll(waiting, env.args.timeout)
            waited = time.perf_counter() - started
            decision = PlainApproval(approved=True, comment="ok")
            approved = time.perf_counter()
            await retry_rpc(lambda: handle.signal(PlainExpenseApproval.approve, decision))
            outcome = await retry_rpc(handle.result)
            if outcome.status != "paid":
                raise RuntimeError(f"unexpected outcome {outcome}")
            ids.append(workflow_id)
            return waited, time.perf_counter() - approved

        return driver

    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[PlainExpenseApproval],
        activities=[plain_validate_expense, plain_pay_expense],
        workflow_runner=sandbox_runner(),
        **worker_options(env.args),
    )
    name = "plain" if variant == "list" else f"plain-{variant}"
    list_task = asyncio.create_task(lister.run())
    try:
        async with worker:
            await warm_up(
                name, driver_for(f"bench-{name}-warm-{env.run_id}"), env.args.warmup, env.args.timeout
            )
            ids.clear()
            POLLS.clear()
            lister.reset()
            before = env.cpu.snapshot()
            result = await run_drivers(
                name, env.args.instances, driver_for(f"bench-{name}-{env.run_id}"), env.args.timeout
            )
            result.note = driver_note("query", env.args.instances)
            if variant == "list":
                result.note += f"; {lister.describe()}"
            env.cpu.describe(result, before, env.cpu.snapshot())
            result.profile = await history_profile(client, sample_ids(sorted(ids), 5))
    finally:
        list_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await list_task
    return ConfigResult(result)
