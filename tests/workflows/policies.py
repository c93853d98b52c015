"""Approval-policy workflows: quorum votes, separation of duties, priority, delegation.

``tests.policies.board`` asks listed voters for a quorum (rejected once it is unreachable), with
a priority and follow-up date computed from the input; ``tests.policies.four_eyes`` asks the
finance group for two approvals (rejected at the first rejection) and then a sign-off by a
member who neither started the instance nor voted; ``tests.policies.owned`` gives one task to
the purchase's owner (delegation and priority changes).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from sdk import human_step, workflow

FINANCE = "finance"


class Purchase(BaseModel):
    """What is to be approved."""

    item: str
    amount: float = 100.0
    approvers: list[str] = Field(default_factory=list)
    urgent: bool = False
    owner: str | None = None


class Vote(BaseModel):
    """Every policy step's form: ``approved`` is the vote."""

    approved: bool
    note: str | None = None


@human_step(
    form=Vote,
    quorum=2,
    voters=lambda p: p.approvers,
    reject_on="unreachable",
    exclude_starter=True,
    priority=lambda p: 90 if p.urgent else 40,
    follow_up_in=timedelta(hours=1),
)
def board_vote(purchase: Purchase) -> str:
    return f"Board vote on {purchase.item}"


@human_step(form=Vote, quorum=2, assignee_group=FINANCE, exclude_starter=True)
def finance_vote(purchase: Purchase) -> str:
    return f"Finance vote on {purchase.item}"


@human_step(form=Vote, assignee_group=FINANCE, exclude_starter=True, exclude_steps=("finance_vote",))
def final_sign_off(purchase: Purchase) -> str:
    return f"Sign off {purchase.item}"


@human_step(form=Vote, assignee=lambda p: p.owner, priority=lambda p: 80 if p.urgent else 20)
def owner_review(purchase: Purchase) -> str:
    return f"Review {purchase.item}"


@workflow(name="tests.policies.board", version="1.0.0")
async def board(purchase: Purchase) -> dict[str, Any]:
    """One quorum vote by listed voters; returns the outcome and who voted how."""
    decision = await board_vote(purchase)
    return {"approved": decision.approved, "votes": {v.voter: v.approved for v in decision.votes}}


@workflow(name="tests.policies.four_eyes", version="1.0.0")
async def four_eyes(purchase: Purchase) -> bool:
    """Two finance approvals, then a sign-off by a third person (never the starter)."""
    decision = await finance_vote(purchase)
    if not decision.approved:
        return False
    signed = await final_sign_off(purchase)
    return signed.approved


@workflow(name="tests.policies.owned", version="1.0.0")
async def owned(purchase: Purchase) -> bool:
    """One task for the purchase's owner."""
    review = await owner_review(purchase)
    return review.approved


DEFINITIONS = (board, four_eyes, owned)
