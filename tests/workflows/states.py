"""Workflows that hold an instance in each state audit must get right.

Two tasks in a row (the first without timers, the second with a reminder and a due date),
one with timers that fire within seconds (a reminder, then an escalation), a step that runs
until the test opens its gate, and a step that fails and waits a minute before its retry.
Step names start with ``states_`` because the step registry is process-wide.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from sdk import human_step, machine_step, workflow

OPEN_GATES: set[str] = set()
"""Workflow ids whose ``states_gated`` step may finish (the step runs in the test process)."""


class Ticket(BaseModel):
    """What the workflows carry."""

    item: str


class Check(BaseModel):
    """A reviewer's form."""

    ok: bool


@human_step(form=Check, assignee_group="reviewers")
def states_first(ticket: Ticket) -> str:
    return f"First look at {ticket.item}"


@human_step(
    form=Check,
    assignee_group="reviewers",
    reminder_in=timedelta(days=1),
    due_in=timedelta(days=2),
    on_due="escalate",
    escalate_to_group="leads",
)
def states_second(ticket: Ticket) -> str:
    return f"Second look at {ticket.item}"


@human_step(
    form=Check,
    assignee_group="reviewers",
    reminder_in=timedelta(seconds=1),
    due_in=timedelta(seconds=2),
    on_due="escalate",
    escalate_to_group="leads",
)
def states_urgent(ticket: Ticket) -> str:
    return f"Urgent look at {ticket.item}"


@machine_step(timeout=timedelta(seconds=5), max_attempts=3, initial_interval=timedelta(milliseconds=50))
async def states_finish(ticket: Ticket) -> str:
    return f"done-{ticket.item}"


@machine_step(timeout=timedelta(seconds=120), heartbeat_timeout=timedelta(seconds=10), max_attempts=1)
async def states_gated(ticket: Ticket) -> str:
    """Runs until the test adds the workflow id to :data:`OPEN_GATES`."""
    while activity.info().workflow_id not in OPEN_GATES:
        activity.heartbeat()
        await asyncio.sleep(0.05)
    return f"gated-{ticket.item}"


@machine_step(timeout=timedelta(seconds=5), max_attempts=3, initial_interval=timedelta(minutes=30))
async def states_refused(ticket: Ticket) -> str:
    """Fails; Temporal retries it half an hour later, long after its test module has ended.

    The instance stays between two attempts for the whole module: a retry during it (a minute
    was once too short for a slow run) changed the step's row between a snapshot and the
    rebuild compared with it.
    """
    raise ConnectionError(f"no answer for {ticket.item} (attempt {activity.info().attempt})")


@workflow(name="tests.states_two_tasks", version="1.0.0")
async def states_two_tasks(ticket: Ticket) -> str:
    first = await states_first(ticket)
    second = await states_second(ticket)
    return await states_finish(ticket) if first.ok and second.ok else "refused"


@workflow(name="tests.states_urgent", version="1.0.0")
async def states_urgent_flow(ticket: Ticket) -> str:
    answer = await states_urgent(ticket)
    return "ok" if answer.ok else "no"


@workflow(name="tests.states_gated", version="1.0.0")
async def states_gated_flow(ticket: Ticket) -> str:
    return await states_gated(ticket)


@workflow(name="tests.states_retrying", version="1.0.0")
async def states_retrying(ticket: Ticket) -> str:
    return await states_refused(ticket)


@machine_step(timeout=timedelta(seconds=5), max_attempts=1)
async def states_explode(ticket: Ticket) -> str:
    """Fails at once, for good."""
    raise ApplicationError(f"cannot handle {ticket.item}", type="Broken", non_retryable=True)


@workflow(name="tests.states_review_then_fail", version="1.0.0")
async def states_review_then_fail(ticket: Ticket) -> str:
    """A review, then a step that fails the run while the review's update may still answer."""
    await states_first(ticket)
    return await states_explode(ticket)


WORKFLOWS = (
    states_two_tasks,
    states_urgent_flow,
    states_gated_flow,
    states_retrying,
    states_review_then_fail,
)
