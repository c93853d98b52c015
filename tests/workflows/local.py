"""Workflows whose machine steps run as local activities (``@machine_step(local=True)``).

``local_order`` is ``mirrored.mirror_order`` with local steps (same arguments, same human
step in between), so its rows can be compared with a regular run's field by field. The
others: a local step that never succeeds, one that holds until the test lets it go (what the
mirror shows while a local step runs), and one whose retries wait on a workflow timer
(``local_retry_threshold`` below its retry interval). Step names start with ``local_``
because the step registry is process-wide.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity

from sdk import machine_step, workflow
from tests.workflows.mirrored import Order, mirror_review

RELEASE: dict[str, asyncio.Event] = {}
"""``local_hold`` of workflow id ``key`` returns once ``RELEASE[key]`` is set (tests set it)."""


@machine_step(
    local=True,
    timeout=timedelta(seconds=5),
    max_attempts=5,
    initial_interval=timedelta(milliseconds=50),
    backoff=1.0,
)
async def local_prepare(order: Order) -> Order:
    """``mirrored.mirror_prepare`` as a local step: fails the first ``order.fail_times`` attempts."""
    attempt = activity.info().attempt
    if attempt <= order.fail_times:
        raise ConnectionError(f"warehouse unreachable (attempt {attempt})")
    return order.model_copy(update={"item": order.item.strip().lower()})


@machine_step(
    local=True, timeout=timedelta(seconds=5), max_attempts=3, initial_interval=timedelta(milliseconds=50)
)
async def local_ship(order: Order) -> str:
    return f"shipped-{order.item}-{order.quantity}"


@machine_step(
    local=True,
    timeout=timedelta(seconds=5),
    max_attempts=2,
    initial_interval=timedelta(milliseconds=50),
    backoff=1.0,
)
async def local_explode(order: Order) -> str:
    """Never succeeds: retried once, then the workflow fails."""
    raise ValueError(f"cannot ship {order.item} (attempt {activity.info().attempt})")


@machine_step(local=True, timeout=timedelta(seconds=8), max_attempts=1)
async def local_hold(order: Order) -> str:
    """Wait for the test's go-ahead (the workflow id's event in :data:`RELEASE`)."""
    await RELEASE.setdefault(activity.info().workflow_id, asyncio.Event()).wait()
    return f"held-{order.item}"


@machine_step(
    local=True,
    timeout=timedelta(seconds=5),
    max_attempts=3,
    initial_interval=timedelta(milliseconds=500),
    backoff=1.0,
    local_retry_threshold=timedelta(milliseconds=100),
)
async def local_backoff(order: Order) -> str:
    """Fails like ``local_prepare``; each retry waits on a workflow timer (interval > threshold)."""
    attempt = activity.info().attempt
    if attempt <= order.fail_times:
        raise ConnectionError(f"warehouse unreachable (attempt {attempt})")
    return f"{order.item} at attempt {attempt}"


@machine_step(local=True, timeout=timedelta(seconds=5), max_attempts=1)
async def local_slow(order: Order) -> str:
    """Takes 1.5 seconds: the workflow clock moves on by that much inside the workflow task."""
    await asyncio.sleep(1.5)
    return f"slow-{order.item}"


@workflow(name="tests.local_order", version="1.0.0")
async def local_order(order: Order) -> str:
    order = await local_prepare(order)
    review = await mirror_review(order)
    if not review.approved:
        return "rejected"
    return await local_ship(order)


@workflow(name="tests.local_failing", version="1.0.0")
async def local_failing(order: Order) -> str:
    return await local_explode(order)


@workflow(name="tests.local_then_hold", version="1.0.0")
async def local_then_hold(order: Order) -> str:
    review = await mirror_review(order)
    return await local_hold(order) if review.approved else "rejected"


@workflow(name="tests.local_backoff", version="1.0.0")
async def local_backoff_flow(order: Order) -> str:
    return await local_backoff(order)


@workflow(name="tests.local_slow_end", version="1.0.0")
async def local_slow_end(order: Order) -> str:
    """Ends in the workflow task that ran a 1.5-second local step."""
    return await local_slow(order)


WORKFLOWS = (local_order, local_failing, local_then_hold, local_backoff_flow, local_slow_end)
"""The definitions of this module, to register and to run on one worker."""
