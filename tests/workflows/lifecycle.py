"""Human-task lifecycle workflows: assignment, claims, deadlines and pause/resume.

One workflow, ``tests.lifecycle.task``, runs one human step chosen by the ticket's ``route``,
so each test gets exactly the task it needs; ``tests.lifecycle.gated`` puts a machine step
after a human step, to show where a paused instance holds. Deadlines are seconds long so the
real dev server reaches them during a test.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field

from sdk import HumanTaskExpired, human_step, machine_step, workflow

CLERKS = "clerks"
CHIEFS = "chiefs"
ANN = "ann"
BOSS = "boss"
SHORT = timedelta(seconds=1)

Route = Literal[
    "user",
    "group",
    "both",
    "computed",
    "claim_first",
    "reminded",
    "overdue",
    "escalating",
    "expiring",
    "defaulting",
]


class Ticket(BaseModel):
    """What a task is about, and which step handles it (``route``)."""

    subject: str
    route: Route = "group"
    owner: str | None = None
    team: str | None = None


class Verdict(BaseModel):
    """The form every lifecycle task answers."""

    approved: bool
    score: int = Field(default=3, ge=1, le=5)
    note: str = Field(default="", max_length=40)


class Resolution(BaseModel):
    """What ``tests.lifecycle.task`` returns: the verdict, or that the task expired."""

    outcome: Literal["answered", "expired"]
    approved: bool | None = None
    score: int | None = None
    note: str | None = None
    expired_task_id: str | None = None


def _title(ticket: Ticket) -> str:
    return f"Handle {ticket.subject}"


@human_step(form=Verdict, assignee=ANN)
def lc_to_user(ticket: Ticket) -> str:
    return _title(ticket)


@human_step(form=Verdict, assignee_group=CLERKS)
def lc_to_group(ticket: Ticket) -> str:
    return _title(ticket)


@human_step(form=Verdict, assignee=ANN, assignee_group=CLERKS)
def lc_to_both(ticket: Ticket) -> str:
    return _title(ticket)


@human_step(form=Verdict, assignee=lambda t: t.owner, assignee_group=lambda t: t.team)
def lc_computed(ticket: Ticket) -> str:
    return _title(ticket)


@human_step(form=Verdict, assignee_group=CLERKS, require_claim=True)
def lc_claim_first(ticket: Ticket) -> str:
    return _title(ticket)


@human_step(form=Verdict, assignee=ANN, reminder_in=SHORT, due_in=timedelta(hours=1))
def lc_reminded(ticket: Ticket) -> str:
    return _title(ticket)


@human_step(form=Verdict, assignee_group=CLERKS, due_in=SHORT)
def lc_overdue(ticket: Ticket) -> str:
    return _title(ticket)


@human_step(
    form=Verdict,
    assignee=ANN,
    due_in=SHORT,
    on_due="escalate",
    escalate_to=BOSS,
    escalate_to_group=CHIEFS,
)
def lc_escalating(ticket: Ticket) -> str:
    return _title(ticket)


@human_step(form=Verdict, assignee=ANN, due_in=SHORT, on_due="expire")
def lc_expiring(ticket: Ticket) -> str:
    return _title(ticket)


@human_step(
    form=Verdict,
    assignee=ANN,
    due_in=SHORT,
    on_due="complete",
    default=Verdict(approved=False, score=1, note="no answer in time"),
)
def lc_defaulting(ticket: Ticket) -> str:
    return _title(ticket)


async def _ask(ticket: Ticket) -> Verdict:
    # Direct references to the steps (not a lookup table): each is a module global.
    route = ticket.route
    if route == "user":
        return await lc_to_user(ticket)
    if route == "both":
        return await lc_to_both(ticket)
    if route == "computed":
        return await lc_computed(ticket)
    if route == "claim_first":
        return await lc_claim_first(ticket)
    if route == "reminded":
        return await lc_reminded(ticket)
    if route == "overdue":
        return await lc_overdue(ticket)
    if route == "escalating":
        return await lc_escalating(ticket)
    if route == "expiring":
        return await lc_expiring(ticket)
    if route == "defaulting":
        return await lc_defaulting(ticket)
    return await lc_to_group(ticket)


@workflow(name="tests.lifecycle.task", version="1.0.0")
async def lifecycle_task(ticket: Ticket) -> Resolution:
    """One human task, routed by the ticket; an expired task is caught and reported."""
    try:
        verdict = await _ask(ticket)
    except HumanTaskExpired as expired:
        return Resolution(outcome="expired", expired_task_id=expired.task_id)
    return Resolution(outcome="answered", approved=verdict.approved, score=verdict.score, note=verdict.note)


@human_step(form=Verdict, assignee_group=CLERKS)
def lc_gate(ticket: Ticket) -> str:
    return f"Gate {ticket.subject}"


@machine_step
async def lc_after_gate(ticket: Ticket) -> str:
    return f"processed {ticket.subject}"


@workflow(name="tests.lifecycle.gated", version="1.0.0")
async def lifecycle_gated(ticket: Ticket) -> str:
    """A human gate, then a machine step: a paused instance holds between the two."""
    verdict = await lc_gate(ticket)
    processed = await lc_after_gate(ticket)
    return f"{processed}: approved={verdict.approved}"
