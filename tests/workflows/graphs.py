"""Steps and workflows for the graph tests: step implementations graphs name, and code-first
workflows using timers, external events and skipped steps.

Step names start with ``graph_`` because the step registry is process-wide.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from sdk import GraphDefinition, human_step, machine_step, skip_step, timer_step, wait_for_event, workflow

REVIEWERS = "reviewers"


class Claim(BaseModel):
    """A claim's start data (extra keys, the steps' outputs, are ignored by steps)."""

    claim_id: str
    amount: float
    kind: str = "auto"


class Score(BaseModel):
    """The assessment a machine step returns."""

    risk: int
    note: str


class Decision(BaseModel):
    """The reviewer's form."""

    approved: bool
    comment: str | None = None


@machine_step(timeout=timedelta(seconds=10), max_attempts=2, initial_interval=timedelta(milliseconds=50))
async def graph_assess(claim: Claim) -> Score:
    """Risk grows with the amount."""
    return Score(risk=int(claim.amount // 1000), note=f"assessed {claim.claim_id}")


@machine_step(timeout=timedelta(seconds=10), max_attempts=2, initial_interval=timedelta(milliseconds=50))
async def graph_check_fraud(claim: Claim) -> dict[str, bool]:
    return {"clean": not claim.claim_id.startswith("X")}


@machine_step(timeout=timedelta(seconds=10), max_attempts=2, initial_interval=timedelta(milliseconds=50))
async def graph_pay(claim: Claim) -> str:
    return f"paid {claim.amount:.2f}"


@machine_step(timeout=timedelta(seconds=10), max_attempts=2, initial_interval=timedelta(milliseconds=50))
async def graph_reject(claim: Claim) -> str:
    return f"rejected {claim.claim_id}"


@human_step(form=Decision, assignee_group=REVIEWERS)
def graph_review(claim: Claim) -> str:
    return f"Review claim {claim.claim_id} ({claim.amount:.2f})"


@human_step(form=Decision, assignee_group=REVIEWERS)
def graph_second_review(claim: Claim) -> str:
    return f"Second opinion on {claim.claim_id}"


@workflow(name="graph_code_child", version="1.0.0")
async def graph_code_child(claim: Claim) -> str:
    """A code-first workflow graphs run as a sub-workflow."""
    return await graph_pay(claim)


@workflow(name="graph_code_waits", version="1.0.0")
async def graph_code_waits(claim: Claim) -> dict[str, object]:
    """Code-first vocabulary: a timer, an event (with a timeout) and a skipped step."""
    await timer_step("cool_down", timedelta(milliseconds=200))
    if claim.amount < 100:
        skip_step("graph_review", "small claims need no review")
    try:
        report = await wait_for_event("partner_report", claim.claim_id, timeout=timedelta(seconds=30))
    except TimeoutError:
        report = None
    return {"report": report}


DEFINITIONS = [graph_code_child, graph_code_waits]

CLAIM_SCHEMA = Claim.model_json_schema()


def claim_graph(version: str = "1.0.0", **changes: object) -> GraphDefinition:
    """Triage (exclusive), a parallel fork of a human review and a fraud check, an event with a
    timeout, payment or rejection."""
    data = {
        "name": "graph_claim",
        "version": version,
        "description": "An insurance claim",
        "data_schema": CLAIM_SCHEMA,
        "start": "assess",
        "terminals": ["pay", "reject"],
        "steps": [
            {"id": "assess", "kind": "machine", "uses": "graph_assess"},
            {"id": "triage", "kind": "exclusive"},
            {"id": "checks", "kind": "parallel", "join": "checks_done"},
            {"id": "review", "kind": "human", "uses": "graph_review"},
            {"id": "fraud", "kind": "machine", "uses": "graph_check_fraud"},
            {"id": "checks_done", "kind": "join"},
            {"id": "decide", "kind": "exclusive"},
            {
                "id": "partner",
                "kind": "event",
                "event": "partner_report",
                "correlation": "data.claim_id",
                "timeout_seconds": 60,
            },
            {"id": "pay", "kind": "machine", "uses": "graph_pay"},
            {"id": "reject", "kind": "machine", "uses": "graph_reject"},
        ],
        "edges": [
            {"source": "assess", "target": "triage"},
            {"source": "triage", "target": "pay", "condition": "data.assess.risk < 1"},
            {"source": "triage", "target": "checks", "default": True},
            {"source": "checks", "target": "review"},
            {"source": "checks", "target": "fraud"},
            {"source": "review", "target": "checks_done"},
            {"source": "fraud", "target": "checks_done"},
            {"source": "checks_done", "target": "decide"},
            {
                "source": "decide",
                "target": "partner",
                "condition": "data.review.approved && data.fraud.clean",
            },
            {"source": "decide", "target": "reject", "default": True},
            {"source": "partner", "target": "pay"},
            {"source": "partner", "target": "reject", "on": "timeout"},
        ],
    }
    data.update(changes)
    return GraphDefinition.from_dict(data)


def small_graph(
    name: str, steps: list[dict[str, Any]], edges: list[dict[str, Any]], terminals: list[str], **extra: Any
) -> GraphDefinition:
    """A graph starting at its first step."""
    return GraphDefinition.from_dict(
        {
            "name": name,
            "start": steps[0]["id"],
            "terminals": terminals,
            "steps": steps,
            "edges": edges,
            **extra,
        }
    )


def waits_graph() -> GraphDefinition:
    """Two timers (a duration, a time from the data), then an event that times out."""
    return small_graph(
        "graph_waits",
        [
            {"id": "pause", "kind": "timer", "seconds": 0.2},
            {"id": "until", "kind": "timer", "until": "data.not_before"},
            {
                "id": "wait",
                "kind": "event",
                "event": "never",
                "correlation": "data.claim_id",
                "timeout_seconds": 1,
            },
            {"id": "paid", "kind": "machine", "uses": "graph_pay"},
            {"id": "rejected", "kind": "machine", "uses": "graph_reject"},
        ],
        [
            {"source": "pause", "target": "until"},
            {"source": "until", "target": "wait"},
            {"source": "wait", "target": "paid"},
            {"source": "wait", "target": "rejected", "on": "timeout"},
        ],
        ["paid", "rejected"],
    )


def nested_graph() -> GraphDefinition:
    """A fork of an exclusive gateway and a human step, joined on the first branch to finish."""
    return small_graph(
        "graph_nested",
        [
            {"id": "fork", "kind": "parallel", "join": "first"},
            {"id": "route", "kind": "exclusive"},
            {"id": "big", "kind": "human", "uses": "graph_review"},
            {"id": "small", "kind": "machine", "uses": "graph_assess"},
            {"id": "other", "kind": "human", "uses": "graph_second_review"},
            {"id": "first", "kind": "join", "wait": 1, "merge": "branches"},
            {"id": "done", "kind": "machine", "uses": "graph_pay"},
        ],
        [
            {"source": "fork", "target": "route"},
            {"source": "fork", "target": "other"},
            {"source": "route", "target": "big", "condition": "data.amount >= 1000.0"},
            {"source": "route", "target": "small", "default": True},
            {"source": "big", "target": "first"},
            {"source": "small", "target": "first"},
            {"source": "other", "target": "first"},
            {"source": "first", "target": "done"},
        ],
        ["done"],
        data_schema=CLAIM_SCHEMA,
    )


def child_graph() -> GraphDefinition:
    """A one-step graph other graphs run as a sub-workflow."""
    return small_graph(
        "graph_child", [{"id": "score", "kind": "machine", "uses": "graph_assess"}], [], ["score"]
    )


def parent_graph() -> GraphDefinition:
    """Runs ``graph_child`` (a graph) and ``graph_code_child`` (a @workflow) as children."""
    return small_graph(
        "graph_parent",
        [
            {"id": "as_graph", "kind": "subworkflow", "workflow": "graph_child"},
            {"id": "as_code", "kind": "subworkflow", "workflow": "graph_code_child"},
        ],
        [{"source": "as_graph", "target": "as_code"}],
        ["as_code"],
    )
