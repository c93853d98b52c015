"""The drivers: concurrent instances started, polled and awaited, and what their histories hold."""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench.figures import POLL_CAP, POLL_FACTOR, POLL_FIRST, ThroughputResult, p50_p95

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
    driver: Callable[[int], Awaitable[Any]],
    timeout: float,
    rate: float | None = None,
) -> ThroughputResult:
    """Run ``instances`` drivers at once (or ``rate`` starts per second); wall time is first
    start to last result.

    A driver returns how long it waited to find the approval step, or that and the time from
    sending the approval to the result (approval -> done)."""
    result = ThroughputResult(name, instances)
    t0 = time.perf_counter()

    async def one(i: int) -> float | None:
        if rate:
            await asyncio.sleep(i / rate)
        started = time.perf_counter()
        try:
            returned = await asyncio.wait_for(driver(i), timeout)
        except Exception as exc:
            result.errors.append(f"{name} instance {i}: {type(exc).__name__}: {exc}")
            return None
        ended = time.perf_counter()
        if isinstance(returned, tuple):
            result.waits.append(returned[0])
            result.approval_done.append(returned[1])
        else:
            result.waits.append(returned)
        result.latencies.append(ended - started)
        return ended

    ends = [end for end in await asyncio.gather(*(one(i) for i in range(instances))) if end is not None]
    result.wall = (max(ends) - t0) if ends else math.nan
    return result


async def history_profile(
    client: Any, workflow_ids: Sequence[str], schedule_to_start: list[float] | None = None
) -> str:
    """Per instance: history events, workflow tasks, local activities, activities; WT timings.

    ``schedule_to_start`` receives each workflow task's queueing at the server."""
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
    if schedule_to_start is not None:
        schedule_to_start.extend(sched_to_start)

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
