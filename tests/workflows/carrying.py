"""Workflows for the tests of events carried by step activities (``tests/integration/test_carry.py``).

After a human step, the next transition is a machine step that waits until the test lets it
go (``carry_hold``), or a long timer: what the task's completion looks like in the mirror
meanwhile is what those tests check.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ActivityError

from sdk import human_step, machine_step, workflow
from tests.workflows.mirrored import CLERKS, Order, Review

RELEASE: dict[str, asyncio.Event] = {}
"""``carry_hold`` of workflow id ``key`` returns once ``RELEASE[key]`` is set (tests set it)."""


@human_step(form=Review, assignee_group=CLERKS)
def carry_review(order: Order) -> str:
    return f"Review {order.item}"


@machine_step(timeout=timedelta(seconds=30), max_attempts=1)
async def carry_hold(order: Order) -> str:
    """Wait for the test's go-ahead (the workflow id's event in :data:`RELEASE`)."""
    await RELEASE.setdefault(activity.info().workflow_id, asyncio.Event()).wait()
    return f"held-{order.item}"


@workflow(name="tests.carry_then_hold", version="1.0.0")
async def carry_then_hold(order: Order) -> str:
    review = await carry_review(order)
    return await carry_hold(order) if review.approved else "rejected"


@workflow(name="tests.carry_then_sleep", version="1.0.0")
async def carry_then_sleep(order: Order) -> str:
    """After the review, a day's timer: no step follows to carry the completion."""
    await carry_review(order)
    await asyncio.sleep(timedelta(days=1).total_seconds())
    return "slept"


@machine_step(timeout=timedelta(seconds=10), max_attempts=1)
async def carry_echo(order: Order) -> str:
    return order.item


@machine_step(timeout=timedelta(seconds=10), max_attempts=1)
async def carry_fail(order: Order) -> str:
    raise ValueError(f"no {order.item} today")


@workflow(name="tests.carry_past_a_failure", version="1.0.0")
async def carry_past_a_failure(order: Order) -> str:
    """A step, a failing step the workflow shrugs off, and another step in the same task."""
    first = await carry_echo(order)
    with contextlib.suppress(ActivityError):
        await carry_fail(order)
    return first + "+" + await carry_echo(order)


WORKFLOWS = (carry_then_hold, carry_then_sleep, carry_past_a_failure)
