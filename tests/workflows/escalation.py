"""Escalation chains, notifications and bulk actions: one workflow, routed by the request.

``tests.escalation.flow`` runs one human step chosen by ``route``: a chain that escalates twice
and expires, a chain that reminds, escalates once and completes with the default, an
hour-long chain of one link (to escalate by command), a plain group task
(for notifications and bulk actions) and one whose events also go to the ``hooks`` and
``mail`` notifiers (``notify=``), which do not listen to every step. Deadlines are a second
or two, so the dev server reaches them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel

from sdk import Escalate, HumanTaskExpired, human_step, workflow

ANN = "ann"
LEADS = "leads"
CHIEFS = "chiefs"
BOSS = "boss"
CLERKS = "clerks"
STEP = timedelta(seconds=1)

Route = Literal["chain_expire", "chain_default", "chain_slow", "plain", "noted"]


class Request(BaseModel):
    """What the task is about, and which step handles it."""

    subject: str
    route: Route = "plain"


class Decision(BaseModel):
    """The form of every task here."""

    approved: bool
    note: str = ""


class Outcome(BaseModel):
    """What the workflow returns."""

    outcome: Literal["answered", "expired"]
    approved: bool | None = None
    note: str | None = None


@human_step(
    form=Decision,
    assignee=ANN,
    due_in=STEP,
    on_due=[
        Escalate(to_group=LEADS, due_in=STEP),
        Escalate(to=BOSS, to_group=CHIEFS, due_in=STEP, reason="leads did not answer"),
        "expire",
    ],
)
def esc_chain_expire(request: Request) -> str:
    return f"Decide {request.subject}"


@human_step(
    form=Decision,
    assignee=ANN,
    due_in=STEP,
    reminder_in=timedelta(milliseconds=500),
    on_due=[Escalate(to_group=LEADS, due_in=STEP), "complete"],
    default=Decision(approved=False, note="nobody answered"),
)
def esc_chain_default(request: Request) -> str:
    return f"Decide {request.subject}"


@human_step(
    form=Decision,
    assignee=ANN,
    due_in=timedelta(hours=1),
    on_due=[Escalate(to_group=LEADS, due_in=timedelta(hours=1), reason="moved up")],
)
def esc_chain_slow(request: Request) -> str:
    return f"Decide {request.subject}"


@human_step(form=Decision, assignee_group=CLERKS)
def esc_plain(request: Request) -> str:
    return f"Decide {request.subject}"


@human_step(form=Decision, assignee_group=CLERKS, notify=["hooks", "mail"])
def esc_noted(request: Request) -> str:
    return f"Decide {request.subject}"


@workflow(name="tests.escalation.flow", version="1.0.0")
async def escalation_flow(request: Request) -> Outcome:
    """One human task chosen by ``route``; an expired task is reported, not raised."""
    try:
        if request.route == "chain_expire":
            decision = await esc_chain_expire(request)
        elif request.route == "chain_default":
            decision = await esc_chain_default(request)
        elif request.route == "chain_slow":
            decision = await esc_chain_slow(request)
        elif request.route == "noted":
            decision = await esc_noted(request)
        else:
            decision = await esc_plain(request)
    except HumanTaskExpired:
        return Outcome(outcome="expired")
    return Outcome(outcome="answered", approved=decision.approved, note=decision.note)
