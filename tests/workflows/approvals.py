"""Human-task workflows: one review, two reviews in a row, and two versions of one workflow."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sdk import human_step, machine_step, workflow

REVIEWERS = "reviewers"


class Request(BaseModel):
    """What is to be reviewed."""

    subject: str
    amount: int = Field(ge=0)


class Decision(BaseModel):
    """The reviewer's form."""

    approved: bool
    priority: int = Field(default=3, ge=1, le=5)
    comment: str | None = None


class Outcome(BaseModel):
    """What the review workflow returns."""

    approved: bool
    priority: int


@human_step(
    form=Decision,
    name="tests.review_step",
    assignee_group=REVIEWERS,
    description=lambda r: f"amount {r.amount}",
)
def review(request: Request) -> str:
    return f"Review {request.subject}"


@workflow(name="tests.review", version="1.0.0")
async def review_workflow(request: Request) -> Outcome:
    decision = await review(request)
    return Outcome(approved=decision.approved, priority=decision.priority)


@workflow(name="tests.two_reviews", version="1.0.0")
async def two_reviews(request: Request) -> list[bool]:
    first = await review(request)
    second = await review(request)
    return [first.approved, second.approved]


# Two versions of one workflow, registered side by side. Version 2 adds a machine step, so
# running version 1's history through version 2's code would be a determinism error.


@human_step(form=Decision, name="tests.version_gate", assignee_group=REVIEWERS)
def version_gate(request: Request) -> str:
    return f"Gate {request.subject}"


@machine_step(name="tests.shout_subject")
async def shout_subject(request: Request) -> Request:
    return request.model_copy(update={"subject": request.subject.upper()})


@workflow(name="tests.versioned", version="1.0.0")
async def versioned_v1(request: Request) -> str:
    decision = await version_gate(request)
    return f"v1:{request.subject}:{decision.approved}"


@workflow(name="tests.versioned", version="2.0.0")
async def versioned_v2(request: Request) -> str:
    request = await shout_subject(request)
    decision = await version_gate(request)
    return f"v2:{request.subject}:{decision.approved}"
