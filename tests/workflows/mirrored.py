"""Workflows for the mirror's integration tests: a flaky step, a failing step, parallel work.

The expense-approval example covers the approve/reject path; these cover what it cannot:
a step that fails some attempts and then succeeds, a step that never succeeds while a human
task of the same instance is still open, an order flow whose first step can be made flaky,
and work that starts in a run's very first workflow task (a human step first; a human step
and a machine step in parallel).
Retry intervals are short so the tests stay fast. Step names start with ``mirror_`` because
the step registry is process-wide.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity

from sdk import human_step, machine_step, workflow

CLERKS = "clerks"


class Order(BaseModel):
    """An order; ``fail_times`` makes ``mirror_prepare`` fail its first attempts."""

    item: str
    quantity: int = 1
    fail_times: int = 0


class Review(BaseModel):
    """The clerk's form."""

    approved: bool
    note: str | None = None


@machine_step(
    timeout=timedelta(seconds=5),
    max_attempts=5,
    initial_interval=timedelta(milliseconds=50),
    backoff=1.0,
)
async def mirror_prepare(order: Order) -> Order:
    """Fail the first ``order.fail_times`` attempts (retried by Temporal), then normalise."""
    attempt = activity.info().attempt
    if attempt <= order.fail_times:
        raise ConnectionError(f"warehouse unreachable (attempt {attempt})")
    return order.model_copy(update={"item": order.item.strip().lower()})


@human_step(form=Review, assignee_group=CLERKS, description=lambda order: f"{order.quantity} units")
def mirror_review(order: Order) -> str:
    return f"Review {order.item}"


@machine_step(timeout=timedelta(seconds=5), max_attempts=3, initial_interval=timedelta(milliseconds=50))
async def mirror_ship(order: Order) -> str:
    return f"shipped-{order.item}-{order.quantity}"


@machine_step(
    timeout=timedelta(seconds=5),
    max_attempts=2,
    initial_interval=timedelta(milliseconds=50),
    backoff=1.0,
)
async def mirror_explode(order: Order) -> str:
    """Never succeeds: Temporal retries it once, then the workflow fails."""
    raise ValueError(f"cannot ship {order.item} (attempt {activity.info().attempt})")


@machine_step(timeout=timedelta(seconds=5), max_attempts=1)
async def mirror_label(order: Order) -> str:
    """A step allowed a single attempt: losing it to anything but its own code is a bug."""
    return f"label-{order.item}"


@workflow(name="tests.mirror_order", version="1.0.0")
async def mirror_order(order: Order) -> str:
    order = await mirror_prepare(order)
    review = await mirror_review(order)
    if not review.approved:
        return "rejected"
    return await mirror_ship(order)


@workflow(name="tests.mirror_flaky", version="1.0.0")
async def mirror_flaky(order: Order) -> str:
    prepared = await mirror_prepare(order)
    return prepared.item


@workflow(name="tests.mirror_failing", version="1.0.0")
async def mirror_failing(order: Order) -> str:
    """A review task opens, then a step fails for good while the task is still pending."""
    review, shipped = await asyncio.gather(mirror_review(order), mirror_explode(order))
    return f"{review.approved}:{shipped}"


@workflow(name="tests.mirror_intake", version="1.0.0")
async def mirror_intake(order: Order) -> str:
    """A human step first: its task is created in the run's first workflow task."""
    review = await mirror_review(order)
    return "accepted" if review.approved else "declined"


@workflow(name="tests.mirror_parallel", version="1.0.0")
async def mirror_parallel(order: Order) -> str:
    """A review and a single-attempt step at once, both started in the first workflow task."""
    review, label = await asyncio.gather(mirror_review(order), mirror_label(order))
    return f"{label}:{review.approved}"


ORDER_EVENTS = [
    "WorkflowStarted",
    "StepStarted",
    "StepCompleted",
    "StepStarted",
    "HumanTaskCreated",
    "HumanTaskCompleted",
    "StepCompleted",
    "StepStarted",
    "StepCompleted",
    "WorkflowCompleted",
]
"""The domain events of an approved ``mirror_order`` run, in order, once each."""

WORKFLOWS = (mirror_order, mirror_flaky, mirror_failing, mirror_intake, mirror_parallel)
"""The definitions of this module, to register and to run on one worker."""
