"""The baseline: the expense scenario in plain temporalio (``bench/plain_expense.py``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

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
from bench.figures import ConfigResult
from bench.plain_expense import (
    PlainApproval,
    PlainExpense,
    PlainExpenseApproval,
    plain_pay_expense,
    plain_validate_expense,
)


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
